//! API keys for system accounts, verified into [`Principal::System`] by the
//! shared [`AuthLayer`].
//!
//! Services such as `order-processor` authenticate with a long-lived key:
//!
//! ```text
//! tp_a1b2c3d4e5f6_Vq3Xk1…   <prefix>_<key id>_<secret>
//! ```
//!
//! * the **prefix** (`tp` by default, [`KeyPrefix`]) marks the deployment and
//!   lets secret scanners find leaked keys;
//! * the **key id** ([`KeyId`]) is public: stores look keys up by it, logs and
//!   [`AuthMethod::ApiKey`](tower_principal::AuthMethod::ApiKey) name it;
//! * the **secret** is 256 bits from the OS random source, base64url without
//!   padding (so it may hold `_` and `-`; a key splits at its first two `_`).
//!
//! Servers never hold secrets: a [`StoredKey`] keeps the key id, the account,
//! its scopes, an optional expiry, a revoked flag, and the SHA-256 of the
//! secret ([`SecretHash`] explains why a fast hash is right here). The
//! [`ApiKeyAuthenticator`] compares hashes in constant time and answers every
//! refusal with the same 401 `invalid_token`.
//!
//! Keys live in a [`KeyStore`]: [`MemoryStore`] (from code, TOML text, or an
//! environment variable) or [`FileStore`] (a TOML file, reloaded on change
//! and on `SIGHUP`). The trait is asynchronous and object-safe, so a database
//! can back it too. An account may hold several live keys at once, which is
//! how keys rotate without downtime.
//!
//! The `tower-principal` binary of this crate (feature `cli`, on by default)
//! mints keys:
//!
//! ```text
//! $ tower-principal apikey new --account order-processor \
//!       --scope orders:read --scope orders:process --expires-in-days 365
//! ```
//!
//! It prints the key once, for the client, and the `[[keys]]` entry for the
//! server's store file. `tower-principal apikey hash` reads an existing key
//! from standard input and prints its entry.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_principal::{AuthLayer, RequireScopesLayer, System};
//! use tower_principal_apikey::{ApiKey, ApiKeyAuthenticator, KeyPrefix, MemoryStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // What `tower-principal apikey new` does: a key for the client, an entry for the server.
//! let key = ApiKey::generate(&KeyPrefix::default()).unwrap();
//! let store = MemoryStore::from_toml(&format!(
//!     r#"
//!     [[keys]]
//!     id = "{}"
//!     account = "order-processor"
//!     scopes = ["orders:read", "orders:process"]
//!     sha256 = "{}"
//!     "#,
//!     key.id(),
//!     key.secret_hash(),
//! ))
//! .unwrap();
//!
//! let auth = AuthLayer::builder()
//!     .api_key(ApiKeyAuthenticator::new(store))
//!     .build()
//!     .unwrap();
//! let app = Router::new()
//!     .route("/orders", get(|System(account): System| async move { account.name().to_owned() }))
//!     .route_layer(RequireScopesLayer::all(["orders:read"]))
//!     .layer(auth);
//!
//! let request = Request::get("/orders")
//!     .header("x-api-key", key.expose_secret())
//!     .body(axum::body::Body::empty())
//!     .unwrap();
//! let response = app.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let forged = format!("tp_{}_{}", key.id(), "A".repeat(43));
//! let request = Request::get("/orders")
//!     .header("authorization", format!("ApiKey {forged}"))
//!     .body(axum::body::Body::empty())
//!     .unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert!(response.headers()["www-authenticate"]
//!     .to_str()
//!     .unwrap()
//!     .contains(r#"error="invalid_token""#));
//! # }
//! ```
//!
//! # Limitations
//!
//! * Secrets are not wiped from memory after use (no `zeroize`); they live in
//!   the request's header map anyway.
//! * [`FileStore`] reads the whole file on each poll; it is meant for
//!   hundreds of keys, not millions (use a database-backed [`KeyStore`]).
//! * Expiry is checked against the server clock, in whole seconds.
//!
//! [`Principal::System`]: tower_principal::Principal::System
//! [`AuthLayer`]: tower_principal::AuthLayer
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod authenticator;
mod hash;
mod key;
mod record;
mod store;
mod time;

pub use authenticator::ApiKeyAuthenticator;
pub use hash::SecretHash;
pub use key::{ApiKey, FormatError, KeyId, KeyPrefix};
pub use record::{AccountName, StoredKey};
pub use store::file::{FileStore, FileStoreBuilder};
pub use store::memory::MemoryStore;
pub use store::{KeyStore, LoadError, StoreError};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_shareable<T: Send + Sync + 'static>() {}
    fn assert_cloneable<T: Clone + Send + Sync + 'static>() {}

    #[test]
    fn stores_and_authenticator_are_send_and_sync() {
        assert_shareable::<ApiKeyAuthenticator>();
        assert_cloneable::<MemoryStore>();
        assert_cloneable::<FileStore>();
        assert_shareable::<Box<dyn KeyStore>>();
        assert_cloneable::<ApiKey>();
        assert_shareable::<LoadError>();
    }
}
