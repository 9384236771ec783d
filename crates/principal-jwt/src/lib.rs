//! JWT bearer-token authentication for `tower-principal`, against an issuer's
//! JWKS fetched over HTTP.
//!
//! * [`JwksCache`] fetches and caches one issuer's keys, from a configured
//!   `jwks_uri` or through discovery (OIDC, then RFC 8414; the metadata's
//!   `issuer` must match exactly): refreshed in the background before expiry
//!   (`Cache-Control: max-age` within bounds, `ETag`/`304`), unknown-`kid`
//!   refresh with a cooldown, one shared fetch for all waiters, the last good
//!   keys served through an outage up to a maximum staleness, exponential
//!   backoff, body cap, timeout, no redirects, unusable entries skipped.
//! * [`JwtValidator`] checks a token against one issuer and a set of
//!   audiences and yields a [`tower_principal::UserToken`]; it is the
//!   [`Authenticator`](tower_principal::Authenticator) to give to an
//!   [`AuthLayer`](tower_principal::AuthLayer).
//! * [`CachingValidator`] (off unless you use it) remembers validated tokens
//!   by the SHA-256 of their text, for repeat callers; see its trade-offs.
//! * [`IssuerSet`] trusts several issuers, each with its own validator; the
//!   token's unverified `iss` only selects among them, so an unknown issuer is
//!   refused before any fetch. [`IssuerSet::readiness`] feeds a readiness route.
//!
//! # Start-up
//!
//! Either wait for keys, bounded ([`JwksCache::wait_until_ready`],
//! [`IssuerSet::wait_until_ready`]), or start at once ([`JwksCache::start`],
//! [`IssuerSet::start`]) and answer 503 until the keys arrive. Either way the
//! background refresher runs from then on.
//!
//! # Observability
//!
//! Each fetch runs in a `jwks_fetch` span (`source`, `uri`, `status`, `keys`,
//! `duration_ms`); failures are logged at `warn`. Rejections are logged by the
//! layer at `debug` with their reason, never the token.
//!
//! With the cargo feature **`metrics`**, these are emitted through the
//! [`metrics`](https://docs.rs/metrics) facade (install any recorder):
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `tower_principal_jwt_validations_total` | counter | `issuer`, `outcome` | validations; `outcome` is `valid` or a [`Reason`](tower_principal::Reason) name such as `expired`; `issuer` is a configured issuer, or `<unselected>` when none was chosen |
//! | `tower_principal_jwt_jwks_fetches_total` | counter | `source`, `result` | fetches; `result` is `ok`, `not_modified` or a [`FetchError::as_str`] name |
//! | `tower_principal_jwt_jwks_fetch_duration_seconds` | histogram | `source` | duration of each fetch, discovery included |
//! | `tower_principal_jwt_jwks_keys` | gauge | `source` | usable keys in the cache, after each fetch |
//! | `tower_principal_jwt_jwks_age_seconds` | gauge | `source` | age of the keys, set after each fetch attempt (it grows during an outage) |
//!
//! `source` is the configured JWKS URI, or the issuer with discovery. No label
//! ever holds a value taken from a token.
//!
//! # Example
//!
//! ```no_run
//! # #![allow(dead_code)]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::get};
//! use tower_principal::{AuthLayer, Principal, RequireScopesLayer};
//! use tower_principal_jwt::{JwksCache, JwtValidator};
//!
//! let keys = JwksCache::builder("https://idp.example.com/.well-known/jwks.json").build()?;
//! keys.refresh().await?; // fail fast at start-up if the issuer is unreachable
//!
//! let orders = JwtValidator::builder("https://idp.example.com/")
//!     .audience("orders-api")
//!     .jwks(keys)
//!     .build()?;
//! let reports = orders.for_audiences(["reporting-service"])?;
//!
//! let app: Router = Router::new()
//!     .route("/orders", get(|p: Principal| async move { p.subject().to_owned() }))
//!     .route_layer(RequireScopesLayer::all(["orders:read"]))
//!     .layer(AuthLayer::new(orders))
//!     .merge(
//!         Router::new()
//!             .route("/reports", get(|| async { "ok" }))
//!             .layer(AuthLayer::new(reports)),
//!     );
//! # let _ = app; Ok(()) }
//! ```
//!
//! # What is refused
//!
//! Tokens over the size cap; anything but three non-empty unpadded base64url
//! segments; a header that is not a JSON object, names `crit`, has a `typ` the
//! policy refuses, or an `alg` outside the allowlist (`none` never parses);
//! a `kid` the JWKS does not hold (after at most one refresh per cooldown); a
//! key whose type, curve, `use`, `key_ops` or `alg` does not fit the token's
//! `alg`; ECDSA signatures that are not raw `R||S` of the right length; a bad
//! signature; claims that are not a JSON object, repeat a registered claim, or
//! hold a NumericDate that is not a number; a missing or wrong `iss`, a
//! missing `aud` or none accepted, a missing `exp` or `sub`; `exp` past or
//! `nbf`/`iat` ahead beyond the leeway; an unmatched `cnf.x5t#S256`.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod algorithms;
mod claims;
mod issuers;
pub mod jwks;
mod telemetry;
mod token_cache;
mod validator;

pub use algorithms::AlgorithmSet;
pub use issuers::{IssuerSet, IssuerSetBuilder, IssuerStatus, Readiness};
pub use jsonwebtoken::Algorithm;
pub use jwks::{FetchError, JwksCache, JwksCacheBuilder, KeyStatus};
pub use token_cache::{
    CacheStats, CachingValidator, CachingValidatorBuilder, DEFAULT_CACHE_MAX_ENTRIES,
    DEFAULT_CACHE_MAX_TTL,
};
pub use validator::{
    DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES, JwtValidator, JwtValidatorBuilder,
    MIN_HMAC_SECRET_BYTES, TypPolicy,
};

/// A configuration the validator or cache refuses to be built with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No issuer was given.
    #[error("an issuer is required")]
    NoIssuer,
    /// No (or an empty) audience was given; `aud` is always checked.
    #[error("at least one non-empty audience is required")]
    NoAudience,
    /// The algorithm allowlist is empty.
    #[error("the algorithm allowlist is empty")]
    NoAlgorithms,
    /// HS* was allowed without a shared secret (RFC 8725 §3.1).
    #[error("HMAC algorithms need an explicitly configured shared secret")]
    HmacWithoutSecret,
    /// Asymmetric algorithms were allowed with a shared secret.
    #[error("a shared secret only verifies HMAC algorithms")]
    AsymmetricWithSecret,
    /// The shared secret is shorter than 32 bytes.
    #[error("the shared secret must be at least 32 bytes")]
    SecretTooShort,
    /// Neither a JWKS nor a shared secret was given.
    #[error("a key source (jwks or shared secret) is required")]
    NoKeySource,
    /// Both a JWKS and a shared secret were given.
    #[error("configure either a jwks or a shared secret, not both")]
    ConflictingKeySources,
    /// The JWKS address is not an http(s) URL.
    #[error("invalid jwks uri {0:?}")]
    InvalidJwksUri(String),
    /// The issuer to discover is not an http(s) URL without query or fragment.
    #[error("invalid issuer url {0:?}")]
    InvalidIssuerUrl(String),
    /// An [`IssuerSet`] was given no issuer.
    #[error("at least one trusted issuer is required")]
    NoIssuers,
    /// An [`IssuerSet`] was given two validators for one issuer.
    #[error("issuer {0:?} is configured twice")]
    DuplicateIssuer(String),
    /// A numeric setting is out of range.
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
    /// The HTTP client could not be built.
    #[error("the http client could not be built")]
    HttpClient,
    /// jsonwebtoken has no crypto provider (both or neither backend enabled).
    #[error("jsonwebtoken has no default crypto provider; enable exactly one backend")]
    NoCryptoProvider,
}
