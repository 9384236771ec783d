//! [`JwtValidator`]: checks one bearer token and builds a [`UserToken`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use tower_principal::{
    AuthError, AuthMethod, Authenticator, BoxFuture, ClientCertificate, Credential, Principal,
    Reason, UserToken,
};

use crate::claims::{RegisteredClaims, parse_actor};
use crate::jwks::{KeyLookupError, VerifyingKey};
use crate::{AlgorithmSet, ConfigError, JwksCache, telemetry};

/// Default size cap of a token: 8 KiB.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Default clock leeway for `exp`, `nbf` and `iat`: 60 s.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Shortest HMAC secret accepted: 32 bytes (RFC 7518 §3.2 for HS256).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// Which JOSE `typ` header values are accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypPolicy {
    /// Absent, `JWT`, `at+jwt` or `application/at+jwt` (case-insensitive).
    #[default]
    Lenient,
    /// RFC 9068 §4: only `at+jwt` or `application/at+jwt` (case-insensitive).
    Strict,
}

impl TypPolicy {
    fn accepts(self, typ: Option<&str>) -> bool {
        let is = |value: &str| typ.is_some_and(|typ| typ.eq_ignore_ascii_case(value));
        let access_token = is("at+jwt") || is("application/at+jwt");
        match self {
            Self::Strict => access_token,
            Self::Lenient => access_token || typ.is_none() || is("JWT"),
        }
    }
}

/// Validates JWT access tokens of one issuer for a set of audiences.
///
/// Checks, in order, before trusting anything in the token:
/// size cap, three non-empty base64url segments without padding, the JOSE
/// header (no unknown `crit`, `typ` policy, `alg` in the allowlist; `jku`,
/// `jwk`, `x5u` and `x5c` are never used), the key chosen by `kid` from the
/// issuer's JWKS (and fitting `alg` by type and curve), the signature; then the
/// claims: `iss` exact, `aud` (one must match), `exp`, `nbf` and `iat` with
/// leeway, `sub`, and a certificate binding (`cnf.x5t#S256`, RFC 8705) when the
/// token has one.
///
/// It is an [`Authenticator`] for bearer credentials; clones share the key cache.
///
/// ```no_run
/// # #![allow(dead_code)]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_principal::AuthLayer;
/// use tower_principal_jwt::{JwksCache, JwtValidator};
///
/// let keys = JwksCache::builder("https://idp.example.com/jwks.json").build()?;
/// keys.refresh().await?;
/// let validator = JwtValidator::builder("https://idp.example.com/")
///     .audience("orders-api")
///     .jwks(keys)
///     .build()?;
/// let layer = AuthLayer::new(validator);
/// # let _ = layer; Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwtValidator {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    algorithms: AlgorithmSet,
    leeway: f64,
    typ: TypPolicy,
    max_token_bytes: usize,
    keys: KeySource,
}

#[derive(Clone)]
enum KeySource {
    Jwks(JwksCache),
    Secret(Arc<VerifyingKey>),
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

struct Segments<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    signed: &'a str,
}

impl JwtValidator {
    /// Starts configuring a validator for tokens whose `iss` is exactly `issuer`.
    pub fn builder(issuer: impl Into<String>) -> JwtValidatorBuilder {
        JwtValidatorBuilder {
            issuer: issuer.into(),
            audiences: Vec::new(),
            algorithms: None,
            leeway: DEFAULT_LEEWAY,
            typ: TypPolicy::default(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            jwks: None,
            secret: None,
        }
    }

    /// The same validator for other audiences, sharing the key cache: one
    /// router per audience (a reporting service accepts only its own tokens).
    pub fn for_audiences<I, T>(&self, audiences: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let audiences = checked_audiences(audiences.into_iter().map(Into::into).collect())?;
        let inner = &self.inner;
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: inner.issuer.clone(),
                audiences,
                algorithms: inner.algorithms,
                leeway: inner.leeway,
                typ: inner.typ,
                max_token_bytes: inner.max_token_bytes,
                keys: inner.keys.clone(),
            }),
        })
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.inner.audiences
    }

    /// The JWKS cache, if keys come from one.
    pub fn jwks(&self) -> Option<&JwksCache> {
        match &self.inner.keys {
            KeySource::Jwks(cache) => Some(cache),
            KeySource::Secret(_) => None,
        }
    }

    /// Validates `token`. `client_certificate` is the TLS client certificate of
    /// the request, needed only for certificate-bound tokens.
    pub async fn validate(
        &self,
        token: &str,
        client_certificate: Option<&ClientCertificate>,
    ) -> Result<UserToken, AuthError> {
        let result = self.check(token, client_certificate).await;
        let outcome = result
            .as_ref()
            .map_or_else(|e| e.reason().as_str(), |_| "valid");
        telemetry::validation(&self.inner.issuer, outcome);
        result
    }

    /// The largest token this validator looks at.
    pub(crate) fn max_token_bytes(&self) -> usize {
        self.inner.max_token_bytes
    }

    async fn check(
        &self,
        token: &str,
        client_certificate: Option<&ClientCertificate>,
    ) -> Result<UserToken, AuthError> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_bytes {
            return Err(invalid(Reason::TooLarge));
        }
        let segments = split(token).ok_or(invalid(Reason::MalformedToken))?;
        let header: JoseHeader = decode_json(segments.header).ok_or(invalid(Reason::BadHeader))?;
        let alg = inner.check_header(&header)?;

        let key = inner.key(header.kid.as_deref(), alg).await?;
        if !key.algorithms.contains(alg) {
            return Err(invalid(Reason::AlgorithmNotAllowed));
        }
        verify_signature(&segments, &key, alg)?;

        let payload = URL_SAFE_NO_PAD
            .decode(segments.payload)
            .map_err(|_| invalid(Reason::MalformedToken))?;
        let claims: RegisteredClaims =
            serde_json::from_slice(&payload).map_err(|_| invalid(Reason::MalformedClaims))?;
        inner.check_claims(&claims, client_certificate)?;

        build_user(claims, payload, header.kid)
    }
}

impl Inner {
    fn check_header(&self, header: &JoseHeader) -> Result<Algorithm, AuthError> {
        // RFC 7515 §4.1.11: we understand no extension, so any `crit` is fatal.
        if header.crit.is_some() || !self.typ.accepts(header.typ.as_deref()) {
            return Err(invalid(Reason::BadHeader));
        }
        // `none` (any case) and unknown names do not parse into an `Algorithm`.
        let alg: Algorithm = header
            .alg
            .parse()
            .map_err(|_| invalid(Reason::AlgorithmNotAllowed))?;
        if !self.algorithms.contains(alg) {
            return Err(invalid(Reason::AlgorithmNotAllowed));
        }
        Ok(alg)
    }

    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<VerifyingKey>, AuthError> {
        match &self.keys {
            KeySource::Secret(key) => Ok(key.clone()),
            KeySource::Jwks(cache) => cache.key_for(kid, alg).await.map_err(|error| match error {
                KeyLookupError::UnknownKey => invalid(Reason::UnknownKey),
                KeyLookupError::Unavailable => AuthError::unavailable(Reason::KeysUnavailable),
            }),
        }
    }

    fn check_claims(
        &self,
        claims: &RegisteredClaims,
        client_certificate: Option<&ClientCertificate>,
    ) -> Result<(), AuthError> {
        match claims.iss.as_deref() {
            None => return Err(invalid(Reason::MissingClaim)),
            Some(iss) if iss != self.issuer => return Err(invalid(Reason::WrongIssuer)),
            Some(_) => {}
        }

        let Some(aud) = &claims.aud else {
            return Err(invalid(Reason::MissingClaim));
        };
        let accepted = match aud {
            crate::claims::Audience::One(aud) => self.audiences.contains(aud),
            crate::claims::Audience::Many(auds) => auds.iter().any(|a| self.audiences.contains(a)),
        };
        if !accepted {
            return Err(invalid(Reason::WrongAudience));
        }

        let now = now_secs();
        let exp = claims.exp.ok_or(invalid(Reason::MissingClaim))?;
        if now > exp.secs() + self.leeway {
            return Err(invalid(Reason::Expired));
        }
        let in_future = |date: Option<crate::claims::NumericDate>| {
            date.is_some_and(|date| date.secs() > now + self.leeway)
        };
        if in_future(claims.nbf) || in_future(claims.iat) {
            return Err(invalid(Reason::NotYetValid));
        }

        if claims.sub.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(Reason::MissingClaim));
        }
        check_binding(claims, client_certificate)
    }
}

fn invalid(reason: Reason) -> AuthError {
    AuthError::invalid_token(reason)
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// Exactly three non-empty segments of the base64url alphabet (no padding).
fn split(token: &str) -> Option<Segments<'_>> {
    let is_b64url = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let (signed, signature) = token.rsplit_once('.')?;
    let (header, payload) = signed.split_once('.')?;
    [header, payload, signature]
        .into_iter()
        .all(is_b64url)
        .then_some(Segments {
            header,
            payload,
            signature,
            signed,
        })
}

/// The `iss` of a token that is not verified yet, to pick the validator.
///
/// Applies the same size and segment checks as a validation; the payload is
/// read for `iss` only, and nothing about it is trusted.
pub(crate) fn unverified_issuer(token: &str, max_bytes: usize) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    if token.len() > max_bytes {
        return Err(invalid(Reason::TooLarge));
    }
    let segments = split(token).ok_or(invalid(Reason::MalformedToken))?;
    let claims: Issuer = decode_json(segments.payload).ok_or(invalid(Reason::MalformedClaims))?;
    claims.iss.ok_or(invalid(Reason::MissingClaim))
}

fn decode_json<T: serde::de::DeserializeOwned>(segment: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn verify_signature(
    segments: &Segments<'_>,
    key: &VerifyingKey,
    alg: Algorithm,
) -> Result<(), AuthError> {
    let signature = URL_SAFE_NO_PAD
        .decode(segments.signature)
        .map_err(|_| invalid(Reason::MalformedToken))?;
    // RFC 7518 §3.4: ECDSA signatures are raw R||S; a DER signature is refused
    // here by length rather than left to the crypto library's parser.
    let expected_len = match alg {
        Algorithm::ES256 | Algorithm::EdDSA => Some(64),
        Algorithm::ES384 => Some(96),
        _ => None,
    };
    if expected_len.is_some_and(|len| signature.len() != len) {
        return Err(invalid(Reason::BadSignature));
    }

    let message = segments.signed.as_bytes();
    if key.verify(alg, message, &signature, segments.signature) {
        Ok(())
    } else {
        Err(invalid(Reason::BadSignature))
    }
}

/// RFC 8705 §3: a token with `cnf.x5t#S256` needs the matching client
/// certificate. A `cnf` we cannot check (another confirmation method, such as
/// DPoP's `jkt`, or none at all) fails closed: the token is sender-constrained
/// by a proof this validator does not verify.
fn check_binding(
    claims: &RegisteredClaims,
    client_certificate: Option<&ClientCertificate>,
) -> Result<(), AuthError> {
    let Some(cnf) = &claims.cnf else {
        return Ok(());
    };
    let Some(expected) = cnf.x5t_s256.as_deref().filter(|_| cnf.other.is_empty()) else {
        return Err(invalid(Reason::BindingMismatch));
    };
    let presented = client_certificate.map(|cert| URL_SAFE_NO_PAD.encode(cert.sha256()));
    if presented.as_deref() == Some(expected) {
        Ok(())
    } else {
        Err(invalid(Reason::BindingMismatch))
    }
}

/// `payload` was parsed into `claims` already (so it is a JSON object); the
/// user's raw claims keep its text and parse it again only on demand.
fn build_user(
    claims: RegisteredClaims,
    payload: Vec<u8>,
    kid: Option<String>,
) -> Result<UserToken, AuthError> {
    let scopes = claims.scopes().ok_or(invalid(Reason::MalformedClaims))?;
    let actor = match &claims.act {
        Some(act) => Some(parse_actor(act).ok_or(invalid(Reason::MalformedClaims))?),
        None => None,
    };
    let thumbprint = claims.cnf.and_then(|cnf| cnf.x5t_s256);

    // `check_claims` has made sure these are present.
    let (Some(sub), Some(iss), Some(exp)) = (claims.sub, claims.iss, claims.exp) else {
        return Err(invalid(Reason::MissingClaim));
    };
    Ok(UserToken::builder(sub, iss, exp.to_system_time())
        .audiences(claims.aud.map(|aud| aud.into_vec()).unwrap_or_default())
        .issued_at(claims.iat.map(|iat| iat.to_system_time()))
        .jwt_id(claims.jti)
        .client_id(claims.client_id)
        .scopes(scopes)
        .actor(actor)
        .method(AuthMethod::BearerJwt { key_id: kid })
        .certificate_thumbprint(thumbprint)
        .claims_json(payload)
        .build())
}

/// The [`Authenticator`] of every bearer validator of this crate: takes the
/// token and the request's client certificate (for RFC 8705 binding) and
/// wraps the user in a [`Principal`].
pub(crate) fn authenticate_bearer<'a, F, Fut>(
    credential: &'a Credential,
    request: &'a Parts,
    validate: F,
) -> BoxFuture<'a, Result<Principal, AuthError>>
where
    F: FnOnce(&'a str, Option<&'a ClientCertificate>) -> Fut + Send + 'a,
    Fut: std::future::Future<Output = Result<UserToken, AuthError>> + Send + 'a,
{
    Box::pin(async move {
        let Credential::Bearer(token) = credential else {
            // Registered for another mechanism by mistake.
            return Err(AuthError::internal(Reason::Misconfigured));
        };
        let certificate = request.extensions.get::<ClientCertificate>();
        validate(token, certificate).await.map(Principal::User)
    })
}

impl Authenticator for JwtValidator {
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

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("JwtValidator")
            .field("issuer", &inner.issuer)
            .field("audiences", &inner.audiences)
            .field("algorithms", &inner.algorithms)
            .field("leeway", &inner.leeway)
            .field("typ", &inner.typ)
            .field("max_token_bytes", &inner.max_token_bytes)
            .field("jwks", &self.jwks().map(JwksCache::uri))
            .finish_non_exhaustive()
    }
}

fn checked_audiences(audiences: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if audiences.is_empty() || audiences.iter().any(String::is_empty) {
        return Err(ConfigError::NoAudience);
    }
    Ok(audiences)
}

/// Configures a [`JwtValidator`]; every choice is checked by [`build`](Self::build).
pub struct JwtValidatorBuilder {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Option<AlgorithmSet>,
    leeway: Duration,
    typ: TypPolicy,
    max_token_bytes: usize,
    jwks: Option<JwksCache>,
    secret: Option<Vec<u8>>,
}

impl JwtValidatorBuilder {
    /// Accepts tokens whose `aud` holds `audience` (call once per audience;
    /// at least one is required).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts tokens whose `aud` holds any of `audiences`.
    pub fn audiences<I, T>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// The allowed algorithms; by default [`AlgorithmSet::ASYMMETRIC`] (with a
    /// JWKS) or HS256 (with a shared secret).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Which `typ` headers are accepted (default [`TypPolicy::Lenient`]).
    pub fn typ_policy(mut self, typ: TypPolicy) -> Self {
        self.typ = typ;
        self
    }

    /// Size cap of a token in bytes (default 8 KiB).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Verifies signatures with keys from this issuer's JWKS.
    pub fn jwks(mut self, cache: JwksCache) -> Self {
        self.jwks = Some(cache);
        self
    }

    /// Verifies HMAC signatures with a shared secret (at least 32 bytes). Only
    /// then may HS256/384/512 be allowed; a secret excludes a JWKS.
    pub fn shared_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<JwtValidator, ConfigError> {
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(ConfigError::NoCryptoProvider);
        }
        if self.issuer.is_empty() {
            return Err(ConfigError::NoIssuer);
        }
        let audiences = checked_audiences(self.audiences)?;
        if self.max_token_bytes == 0 {
            return Err(ConfigError::InvalidSetting(
                "max_token_bytes must be non-zero",
            ));
        }

        let (keys, algorithms) = match (self.jwks, self.secret) {
            (Some(_), Some(_)) => return Err(ConfigError::ConflictingKeySources),
            (None, None) => return Err(ConfigError::NoKeySource),
            (Some(cache), None) => {
                let algorithms = self.algorithms.unwrap_or(AlgorithmSet::ASYMMETRIC);
                if !algorithms.intersection(AlgorithmSet::HMAC).is_empty() {
                    return Err(ConfigError::HmacWithoutSecret);
                }
                (KeySource::Jwks(cache), algorithms)
            }
            (None, Some(secret)) => {
                let algorithms = self
                    .algorithms
                    .unwrap_or(AlgorithmSet::of(Algorithm::HS256));
                if !algorithms.intersection(AlgorithmSet::ASYMMETRIC).is_empty() {
                    return Err(ConfigError::AsymmetricWithSecret);
                }
                if secret.len() < MIN_HMAC_SECRET_BYTES {
                    return Err(ConfigError::SecretTooShort);
                }
                let key = VerifyingKey::from_secret(&secret, algorithms)
                    .ok_or(ConfigError::SecretTooShort)?;
                (KeySource::Secret(Arc::new(key)), algorithms)
            }
        };
        if algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms);
        }

        Ok(JwtValidator {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audiences,
                algorithms,
                leeway: self.leeway.as_secs_f64(),
                typ: self.typ,
                max_token_bytes: self.max_token_bytes,
                keys,
            }),
        })
    }
}

/// Redacts the shared secret.
impl fmt::Debug for JwtValidatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidatorBuilder")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("jwks", &self.jwks)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_requires_three_nonempty_b64url_segments() {
        assert!(split("a.b.c").is_some());
        for bad in [
            "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.", "a=.b.c", "a.b+.c", "a.b/.c", "...",
        ] {
            assert!(split(bad).is_none(), "{bad:?}");
        }
        let segments = split("h.p.s").unwrap();
        assert_eq!(
            (segments.header, segments.payload, segments.signature),
            ("h", "p", "s")
        );
        assert_eq!(segments.signed, "h.p");
    }

    #[test]
    fn typ_policy() {
        for typ in [
            None,
            Some("JWT"),
            Some("jwt"),
            Some("at+JWT"),
            Some("application/at+jwt"),
        ] {
            assert!(TypPolicy::Lenient.accepts(typ), "{typ:?}");
        }
        assert!(!TypPolicy::Lenient.accepts(Some("dpop+jwt")));
        assert!(TypPolicy::Strict.accepts(Some("AT+JWT")));
        assert!(!TypPolicy::Strict.accepts(None));
        assert!(!TypPolicy::Strict.accepts(Some("JWT")));
    }

    #[test]
    fn builder_rejects_unsafe_configuration() {
        let cache = || {
            JwksCache::builder("http://127.0.0.1:1/jwks")
                .build()
                .unwrap()
        };
        let base = || JwtValidator::builder("https://idp/").audience("api");

        assert_eq!(
            JwtValidator::builder("https://idp/")
                .jwks(cache())
                .build()
                .unwrap_err(),
            ConfigError::NoAudience
        );
        assert_eq!(base().build().unwrap_err(), ConfigError::NoKeySource);
        assert_eq!(
            base()
                .jwks(cache())
                .algorithms([Algorithm::HS256])
                .build()
                .unwrap_err(),
            ConfigError::HmacWithoutSecret
        );
        assert_eq!(
            base().shared_secret(vec![7; 16]).build().unwrap_err(),
            ConfigError::SecretTooShort
        );
        assert_eq!(
            base()
                .shared_secret(vec![7; 32])
                .algorithms([Algorithm::RS256])
                .build()
                .unwrap_err(),
            ConfigError::AsymmetricWithSecret
        );
        assert_eq!(
            base()
                .jwks(cache())
                .shared_secret(vec![7; 32])
                .build()
                .unwrap_err(),
            ConfigError::ConflictingKeySources
        );
        assert!(base().jwks(cache()).build().is_ok());
        assert!(base().shared_secret(vec![7; 32]).build().is_ok());
    }
}
