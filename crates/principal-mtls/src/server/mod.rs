//! The TLS server: configuration and accept loop.

pub(crate) mod config;
pub(crate) mod serve;
