//! Authenticate every request of a tower/axum service into one typed [`Principal`].
//!
//! A resource server must know, on each request, *who* is calling and *what*
//! they may do. This crate provides the mechanism-independent parts:
//!
//! * [`Principal`]: either a [`SystemAccount`] (a service such as
//!   `order-processor`) or a [`UserToken`] (a validated access token), with
//!   its [`Scopes`] and the [`AuthMethod`] that proved it;
//! * [`AuthLayer`]: reads exactly one credential per request
//!   ([`CredentialSources`]), hands it to an [`Authenticator`], and inserts the
//!   principal into the request extensions, or answers per RFC 6750;
//! * [`RequireScopesLayer`]: per-route scope requirements (all-of or any-of),
//!   403 `insufficient_scope` otherwise;
//! * axum extractors: [`Principal`], `Option<Principal>`, [`User`], [`System`];
//! * [`AuthError`]: one table from rejection kind to status, RFC 6750 code and
//!   public description, used by every mechanism;
//! * [`ResourceMetadata`]: the RFC 9728 document that tells clients which
//!   authorization servers and scopes this resource accepts, named in every
//!   challenge as `resource_metadata="…"` when configured ([`Challenge`]).
//!
//! Mechanisms live in their own crates: `tower-principal-jwt` validates JWT
//! bearer tokens against an issuer's JWKS.
//!
//! # Example
//!
//! ```
//! # #![allow(dead_code)]
//! use axum::{Router, routing::get};
//! use tower_principal::{AuthLayer, Authenticator, Principal, RequireScopesLayer};
//!
//! fn app(authenticator: impl Authenticator) -> Router {
//!     Router::new()
//!         .route("/orders", get(|p: Principal| async move { format!("orders of {}", p.subject()) }))
//!         .route_layer(RequireScopesLayer::all(["orders:read"]))
//!         .layer(AuthLayer::new(authenticator))
//! }
//! ```
//!
//! # Answers on the wire
//!
//! | situation | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no credentials | 401 | `Bearer realm="…"` |
//! | malformed request, two credentials | 400 | `Bearer error="invalid_request"` |
//! | bad, expired, foreign token | 401 | `Bearer error="invalid_token"` |
//! | missing scope | 403 | `Bearer error="insufficient_scope", scope="…"` |
//! | issuer keys unavailable | 503 | none |
//!
//! With a realm ([`AuthLayer::with_realm`]) or resource metadata
//! ([`AuthLayer::with_resource_metadata`]) every challenge names them too.
//! Bodies are small JSON objects with a fixed `error` and `error_description`;
//! they never echo the credential or a library's error text.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod authenticator;
mod challenge;
mod credential;
mod error;
mod extract;
pub mod layer;
pub mod metadata;
mod principal;
mod scope;

pub use authenticator::{Authenticator, BoxFuture};
pub use challenge::Challenge;
pub use credential::{ClientCertificate, Credential, CredentialKind, CredentialSources};
pub use error::{AuthError, ErrorKind, Reason};
pub use extract::{System, User};
pub use layer::auth::{AuthLayer, AuthLayerBuilder, LayerConfigError};
pub use layer::scopes::RequireScopesLayer;
pub use metadata::{MetadataError, ResourceMetadata, ResourceMetadataBuilder};
pub use principal::{Actor, AuthMethod, Principal, SystemAccount, UserToken, UserTokenBuilder};
pub use scope::{InvalidScope, Scope, Scopes};
