//! [`IssuerSet`]: several trusted issuers behind one authenticator.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http::request::Parts;
use serde_json::json;
use tower_principal::{
    AuthError, Authenticator, BoxFuture, ClientCertificate, Credential, Principal, Reason,
    UserToken,
};

use crate::validator::unverified_issuer;
use crate::{ConfigError, JwtValidator, KeyStatus, telemetry};

/// The metrics `issuer` label of tokens no configured issuer was chosen for:
/// a value taken from a token is never used as a label.
const UNSELECTED: &str = "<unselected>";

/// Several trusted issuers, each with its own [`JwtValidator`] (audiences,
/// algorithms, key source), behind one [`Authenticator`].
///
/// The token's `iss` is read *before* verification, with the same size and
/// segment checks as a validation, only to choose among the configured
/// issuers; the chosen validator then checks everything, `iss` included. A
/// token naming any other issuer is a 401 `invalid_token`
/// ([`Reason::WrongIssuer`]) and causes no fetch: no address is ever taken
/// from a token.
///
/// ```no_run
/// # #![allow(dead_code)]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tower_principal::AuthLayer;
/// use tower_principal_jwt::{IssuerSet, JwksCache, JwtValidator};
///
/// let employees = JwtValidator::builder("https://login.example.com/")
///     .audience("orders-api")
///     .jwks(JwksCache::discover("https://login.example.com/").build()?)
///     .build()?;
/// let partners = JwtValidator::builder("https://partners.example.net")
///     .audience("https://orders.example.com")
///     .jwks(JwksCache::builder("https://partners.example.net/keys").build()?)
///     .build()?;
/// let issuers = IssuerSet::builder().issuer(employees).issuer(partners).build()?;
///
/// // Wait up to 10 s for keys; requests are answered 503 until they arrive.
/// let readiness = issuers.wait_until_ready(Duration::from_secs(10)).await;
/// if !readiness.is_ready() {
///     eprintln!("starting without keys: {}", readiness.to_json());
/// }
/// let layer = AuthLayer::new(issuers.clone());
/// # let _ = layer; Ok(()) }
/// ```
#[derive(Clone)]
pub struct IssuerSet {
    inner: Arc<Inner>,
}

struct Inner {
    by_issuer: BTreeMap<String, JwtValidator>,
    max_token_bytes: usize,
}

impl IssuerSet {
    /// Starts configuring a set of issuers.
    pub fn builder() -> IssuerSetBuilder {
        IssuerSetBuilder {
            validators: Vec::new(),
        }
    }

    /// Validates `token` with the validator of its issuer. `client_certificate`
    /// is needed only for certificate-bound tokens.
    pub async fn validate(
        &self,
        token: &str,
        client_certificate: Option<&ClientCertificate>,
    ) -> Result<UserToken, AuthError> {
        let validator = self.select(token).inspect_err(|error| {
            telemetry::validation(UNSELECTED, error.reason().as_str());
        })?;
        validator.validate(token, client_certificate).await
    }

    fn select(&self, token: &str) -> Result<&JwtValidator, AuthError> {
        let issuer = unverified_issuer(token, self.inner.max_token_bytes)?;
        self.inner
            .by_issuer
            .get(&issuer)
            .ok_or(AuthError::invalid_token(Reason::WrongIssuer))
    }

    /// The validator of `issuer`, if it is trusted.
    pub fn validator(&self, issuer: &str) -> Option<&JwtValidator> {
        self.inner.by_issuer.get(issuer)
    }

    /// The trusted issuers, in lexical order.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.inner.by_issuer.keys().map(String::as_str)
    }

    /// Starts the background refresher of every issuer's key cache and returns
    /// at once; requests are answered 503 until an issuer's keys arrive.
    pub fn start(&self) {
        for cache in self.inner.by_issuer.values().filter_map(JwtValidator::jwks) {
            cache.start();
        }
    }

    /// Starts the refreshers and waits at most `timeout` for every issuer's
    /// keys (concurrently), then reports where each one stands.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Readiness {
        let caches = self.inner.by_issuer.values().filter_map(JwtValidator::jwks);
        futures_util::future::join_all(caches.map(|cache| cache.wait_until_ready(timeout))).await;
        self.readiness()
    }

    /// Where each issuer's keys stand: for a readiness route.
    ///
    /// ```
    /// # #![allow(dead_code)]
    /// # fn route(issuers: tower_principal_jwt::IssuerSet) {
    /// let readiness = issuers.readiness();
    /// let (status, body) = (readiness.status_code(), readiness.to_json().to_string());
    /// # let _ = (status, body); }
    /// ```
    pub fn readiness(&self) -> Readiness {
        let issuers = self.inner.by_issuer.iter().map(|(issuer, validator)| {
            let keys = validator.jwks().map(|cache| cache.status());
            IssuerStatus {
                issuer: issuer.clone(),
                ready: keys.as_ref().is_none_or(|keys| keys.ready),
                keys,
            }
        });
        Readiness {
            issuers: issuers.collect(),
        }
    }
}

impl Authenticator for IssuerSet {
    fn authenticate<'a>(
        &'a self,
        credential: &'a Credential,
        request: &'a Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        crate::validator::authenticate_bearer(credential, request, |token, certificate| {
            self.validate(token, certificate)
        })
    }
}

impl fmt::Debug for IssuerSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerSet")
            .field("issuers", &self.inner.by_issuer.values())
            .finish()
    }
}

/// Configures an [`IssuerSet`].
#[derive(Debug)]
pub struct IssuerSetBuilder {
    validators: Vec<JwtValidator>,
}

impl IssuerSetBuilder {
    /// Trusts the issuer of `validator`, with its audiences, algorithms and keys.
    pub fn issuer(mut self, validator: JwtValidator) -> Self {
        self.validators.push(validator);
        self
    }

    /// Checks that there is at least one issuer and none is given twice.
    pub fn build(self) -> Result<IssuerSet, ConfigError> {
        let max_token_bytes = (self.validators.iter())
            .map(JwtValidator::max_token_bytes)
            .max()
            .ok_or(ConfigError::NoIssuers)?;
        let mut by_issuer = BTreeMap::new();
        for validator in self.validators {
            let issuer = validator.issuer().to_owned();
            if by_issuer.insert(issuer.clone(), validator).is_some() {
                return Err(ConfigError::DuplicateIssuer(issuer));
            }
        }
        Ok(IssuerSet {
            inner: Arc::new(Inner {
                by_issuer,
                max_token_bytes,
            }),
        })
    }
}

/// Where the keys of every trusted issuer stand; see [`IssuerSet::readiness`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    issuers: Vec<IssuerStatus>,
}

/// The readiness of one trusted issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuerStatus {
    /// The issuer identifier.
    pub issuer: String,
    /// Its tokens can be validated now.
    pub ready: bool,
    /// Its key cache, unless it verifies with a shared secret.
    pub keys: Option<KeyStatus>,
}

impl Readiness {
    /// Whether every issuer's tokens can be validated now.
    pub fn is_ready(&self) -> bool {
        self.issuers.iter().all(|issuer| issuer.ready)
    }

    /// Each issuer's status, in lexical order of the issuers.
    pub fn issuers(&self) -> &[IssuerStatus] {
        &self.issuers
    }

    /// `200 OK` when ready, `503 Service Unavailable` otherwise.
    pub fn status_code(&self) -> StatusCode {
        if self.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }

    /// A JSON body for a readiness route: `ready`, and per issuer `ready`,
    /// `keys`, `stale`, `age_ms`, `consecutive_failures` and `last_error`
    /// (key material is never included).
    pub fn to_json(&self) -> serde_json::Value {
        let issuers: Vec<_> = self.issuers.iter().map(IssuerStatus::to_json).collect();
        json!({ "ready": self.is_ready(), "issuers": issuers })
    }
}

impl IssuerStatus {
    fn to_json(&self) -> serde_json::Value {
        let Some(keys) = &self.keys else {
            return json!({ "issuer": self.issuer, "ready": self.ready, "source": "shared_secret" });
        };
        json!({
            "issuer": self.issuer,
            "ready": self.ready,
            "keys": keys.keys,
            "stale": keys.stale,
            "age_ms": keys.age.map(|age| age.as_millis() as u64),
            "consecutive_failures": keys.consecutive_failures,
            "last_error": keys.last_error.as_ref().map(ToString::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator(issuer: &str) -> JwtValidator {
        JwtValidator::builder(issuer)
            .audience("api")
            .shared_secret(vec![7; 32])
            .build()
            .unwrap()
    }

    #[test]
    fn set_and_cache_are_send_and_sync() {
        fn assert<T: Send + Sync + Clone + 'static>() {}
        assert::<IssuerSet>();
        assert::<crate::JwksCache>();
        assert::<Readiness>();
    }

    #[test]
    fn empty_and_duplicate_sets_are_refused() {
        assert_eq!(
            IssuerSet::builder().build().unwrap_err(),
            ConfigError::NoIssuers
        );
        assert_eq!(
            IssuerSet::builder()
                .issuer(validator("https://a/"))
                .issuer(validator("https://a/"))
                .build()
                .unwrap_err(),
            ConfigError::DuplicateIssuer("https://a/".into())
        );
    }

    #[test]
    fn shared_secret_issuers_are_always_ready() {
        let set = IssuerSet::builder()
            .issuer(validator("https://b/"))
            .issuer(validator("https://a/"))
            .build()
            .unwrap();
        assert_eq!(
            set.issuers().collect::<Vec<_>>(),
            ["https://a/", "https://b/"]
        );
        assert!(set.readiness().is_ready());
        assert_eq!(set.readiness().status_code(), StatusCode::OK);
    }
}
