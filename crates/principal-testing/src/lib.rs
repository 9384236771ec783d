//! A local token issuer for tests and demos: signing keys, a JWKS served over
//! real HTTP on loopback, and token minting.
//!
//! Not for production: keys live in memory and the issuer signs whatever it is
//! asked to. The `ecommerce` example uses it as its embedded demo issuer; the
//! integration tests use it as the identity provider they validate against.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use tower_principal_testing::TestIssuer;
//!
//! let issuer = TestIssuer::start().await.unwrap();
//! let token = issuer.token().subject("alice").scope("orders:read").sign();
//! assert_eq!(token.split('.').count(), 3);
//!
//! let jwks: serde_json::Value = reqwest_free_get(issuer.jwks_uri()).await;
//! assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
//! assert_eq!(issuer.jwks_requests(), 1);
//! # }
//! # async fn reqwest_free_get(uri: &str) -> serde_json::Value {
//! #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! #     let addr = uri.trim_start_matches("http://").split('/').next().unwrap().to_owned();
//! #     let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
//! #     stream.write_all(b"GET /jwks.json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
//! #     let mut response = String::new();
//! #     stream.read_to_string(&mut response).await.unwrap();
//! #     serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap()
//! # }
//! ```
#![forbid(unsafe_code)]

mod issuer;
mod keys;
pub mod pki;
mod server;

pub use issuer::{Discovery, JwksBehaviour, TestIssuer, TokenBuilder};
pub use keys::{KeyError, SigningKey, encode_raw, unix_now};
pub use server::TestServer;
