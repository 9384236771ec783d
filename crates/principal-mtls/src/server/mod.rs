//! The TLS server: configuration and accept loop.

pub(crate) mod config;
mod idle;
pub(crate) mod serve;
