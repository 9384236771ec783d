//! Shared test helpers: the PKI comes from the testing crate.
#![allow(dead_code, unreachable_pub)]

pub use tower_principal_testing::pki::*;

pub mod server;
