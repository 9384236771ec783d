//! [`CachingValidator`]: an opt-in cache of verified tokens in front of a
//! [`JwtValidator`].
//!
//! A repeat bearer token costs one SHA-256 of the token and a cache lookup
//! instead of a signature verification and two JSON parses. Nothing is cached
//! unless this wrapper is used; see its documentation for the trade-off.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use http::request::Parts;
use moka::Expiry;
use moka::future::Cache;
use sha2::{Digest, Sha256};
use tower_principal::{
    AuthError, AuthMethod, Authenticator, BoxFuture, ClientCertificate, Credential, Principal,
    Reason, UserToken,
};

use crate::{ConfigError, JwtValidator};

/// Default upper bound on how long one verified token stays cached: 5 minutes.
pub const DEFAULT_CACHE_MAX_TTL: Duration = Duration::from_secs(300);
/// Default maximum number of cached tokens: 10 000.
pub const DEFAULT_CACHE_MAX_ENTRIES: u64 = 10_000;

/// Longer tokens are never hashed nor cached: the default validator size cap.
const MAX_CACHED_TOKEN_BYTES: usize = crate::DEFAULT_MAX_TOKEN_BYTES;

/// SHA-256 of the whole token: the cache key. A collision would let one token
/// stand for another, so a 64-bit or non-cryptographic hash is not an option.
type TokenKey = [u8; 32];

/// Caches tokens that a [`JwtValidator`] has accepted, keyed by the SHA-256
/// of the whole token, and answers repeats without verifying them again.
///
/// Off by default: plain [`JwtValidator`] caches nothing. Wrap it only when
/// signature verification is a measurable share of request cost.
///
/// # What stays exact
///
/// * **Expiry.** An entry lives at most `min(max_ttl, exp - now)`, and every
///   hit checks `exp` against the clock again; a token at or past its `exp` is
///   never answered from the cache but handed to the validator, which applies
///   its leeway exactly as without a cache.
/// * **Key removal.** Every hit checks that the `kid` which verified the token
///   is still in the issuer's current JWKS ([`JwksCache::contains_kid`]); once
///   a refresh drops the key, its tokens are evicted on their next use and
///   re-validated (and so refused). Keys past their maximum staleness
///   ([`JwksCache::is_ready`] false) likewise send every token back to the
///   validator, which answers 503 as it would without a cache.
/// * **Scopes** are not decided here; route layers check them per request.
/// * Only successes are cached; a rejected token is verified every time.
///
/// # What is bypassed
///
/// Tokens that are validated every time and never cached:
/// * certificate-bound tokens (any `cnf` claim, RFC 8705): the binding to the
///   presented client certificate is checked on every request;
/// * tokens without a `kid`, whose key cannot be checked on a hit;
/// * tokens longer than 8 KiB (the default size cap), which are not hashed;
/// * everything when the validator uses a shared secret instead of a JWKS
///   (HMAC is cheap enough that caching buys little).
///
/// # Trade-off
///
/// * A token revoked at the issuer keeps working until its entry expires
///   (at most `max_ttl`). Local JWT validation cannot see such revocation
///   either, but the cache also hides a *key* that was swapped under the same
///   `kid` until the entry expires.
/// * To refuse revoked tokens, give the builder a
///   [`revocation_check`](CachingValidatorBuilder::revocation_check) (say, a
///   denylist of `jti`s or subjects): it runs on every request, hit or miss.
///   [`evict_token`](Self::evict_token) and [`evict_where`](Self::evict_where)
///   only drop entries, so the next use is verified afresh (and, signature
///   still being valid, accepted unless the check refuses it). Revoke by
///   `jti` or `sub`, not by token text: ECDSA signatures are malleable, so one
///   token has several valid spellings.
/// * Memory: each entry holds a 32-byte key and the shared [`UserToken`]
///   (subject, issuer, audiences, scopes and the raw claims), plus the
///   cache's own bookkeeping: roughly 1 to 2 KiB for a typical access token,
///   so the default 10 000 entries take on the order of 10 to 20 MiB.
///
/// ```no_run
/// # #[allow(dead_code, reason = "compiled only")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tower_principal::AuthLayer;
/// use tower_principal_jwt::{CachingValidator, JwksCache, JwtValidator};
///
/// let keys = JwksCache::builder("https://idp.example.com/jwks.json").build()?;
/// keys.refresh().await?;
/// let validator = JwtValidator::builder("https://idp.example.com/")
///     .audience("orders-api")
///     .jwks(keys)
///     .build()?;
/// let cached = CachingValidator::builder(validator)
///     .max_ttl(Duration::from_secs(60))
///     .max_entries(50_000)
///     .revocation_check(|user| user.jwt_id() == Some("stolen-jti"))
///     .build()?;
/// let layer = AuthLayer::new(cached.clone());
///
/// // Free the memory of a departed user's entries at once:
/// cached.evict_where(|user| user.subject() == "mallory");
/// # let _ = layer; Ok(()) }
/// ```
///
/// [`JwksCache::contains_kid`]: crate::JwksCache::contains_kid
/// [`JwksCache::is_ready`]: crate::JwksCache::is_ready
#[derive(Clone)]
pub struct CachingValidator {
    inner: Arc<Inner>,
}

/// Decides whether a validated token has been revoked (true: refuse it).
type RevocationCheck = Arc<dyn Fn(&UserToken) -> bool + Send + Sync>;

struct Inner {
    validator: JwtValidator,
    cache: Cache<TokenKey, UserToken>,
    is_revoked: Option<RevocationCheck>,
    max_ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Counters of a [`CachingValidator`], for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Tokens answered from the cache.
    pub hits: u64,
    /// Tokens handed to the validator (absent, expired, evicted or bypassed).
    pub misses: u64,
    /// Entries currently held (approximate: eviction is lazy).
    pub entries: u64,
}

impl CachingValidator {
    /// Starts configuring a cache in front of `validator`.
    pub fn builder(validator: JwtValidator) -> CachingValidatorBuilder {
        CachingValidatorBuilder {
            validator,
            max_ttl: DEFAULT_CACHE_MAX_TTL,
            max_entries: DEFAULT_CACHE_MAX_ENTRIES,
            is_revoked: None,
        }
    }

    /// The wrapped validator.
    pub fn validator(&self) -> &JwtValidator {
        &self.inner.validator
    }

    /// The longest time one entry is kept.
    pub fn max_ttl(&self) -> Duration {
        self.inner.max_ttl
    }

    /// Validates `token` like [`JwtValidator::validate`], answering from the
    /// cache when the same token was accepted before and is still fresh.
    pub async fn validate(
        &self,
        token: &str,
        client_certificate: Option<&ClientCertificate>,
    ) -> Result<UserToken, AuthError> {
        let inner = &*self.inner;
        if token.len() > MAX_CACHED_TOKEN_BYTES {
            // Not worth hashing; the validator's size cap usually refuses it.
            inner.misses.fetch_add(1, Ordering::Relaxed);
            return inner.validator.validate(token, client_certificate).await;
        }
        let key = token_key(token);
        if let Some(user) = inner.cache.get(&key).await {
            if inner.still_valid(&user) {
                inner.hits.fetch_add(1, Ordering::Relaxed);
                return inner.unless_revoked(&key, user).await;
            }
            inner.cache.invalidate(&key).await;
        }

        inner.misses.fetch_add(1, Ordering::Relaxed);
        let user = inner.validator.validate(token, client_certificate).await?;
        if inner.is_revoked(&user) {
            return Err(AuthError::invalid_token(Reason::Revoked));
        }
        if inner.cacheable(&user) {
            inner.cache.insert(key, user.clone()).await;
        }
        Ok(user)
    }

    /// Drops `token` from the cache: its next use is verified afresh. This
    /// does not refuse the token; see
    /// [`revocation_check`](CachingValidatorBuilder::revocation_check).
    pub async fn evict_token(&self, token: &str) {
        self.inner.cache.invalidate(&token_key(token)).await;
    }

    /// Drops every cached token for which `predicate` holds, such as all of
    /// one subject (`user.subject() == "mallory"`) or one `jti`. Takes effect
    /// at once for lookups; memory is reclaimed in the background. Like
    /// [`evict_token`](Self::evict_token), it does not refuse the tokens.
    pub fn evict_where<F>(&self, predicate: F)
    where
        F: Fn(&UserToken) -> bool + Send + Sync + 'static,
    {
        let result = self
            .inner
            .cache
            .invalidate_entries_if(move |_, user| predicate(user));
        if let Err(error) = result {
            // Only possible if the cache was built without closure support.
            tracing::error!(%error, "token cache eviction failed");
        }
    }

    /// Drops every cached token.
    pub fn clear(&self) {
        self.inner.cache.invalidate_all();
    }

    /// Hit and miss counters and the current number of entries.
    pub fn stats(&self) -> CacheStats {
        let inner = &*self.inner;
        CacheStats {
            hits: inner.hits.load(Ordering::Relaxed),
            misses: inner.misses.load(Ordering::Relaxed),
            entries: inner.cache.entry_count(),
        }
    }
}

impl Inner {
    fn is_revoked(&self, user: &UserToken) -> bool {
        self.is_revoked.as_ref().is_some_and(|check| check(user))
    }

    /// A cache hit, unless the revocation check now refuses it.
    async fn unless_revoked(
        &self,
        key: &TokenKey,
        user: UserToken,
    ) -> Result<UserToken, AuthError> {
        if self.is_revoked(&user) {
            self.cache.invalidate(key).await;
            return Err(AuthError::invalid_token(Reason::Revoked));
        }
        Ok(user)
    }

    /// Checks made on every hit: not yet at `exp`, key still published.
    fn still_valid(&self, user: &UserToken) -> bool {
        SystemTime::now() < user.expires_at() && self.key_published(user)
    }

    fn key_published(&self, user: &UserToken) -> bool {
        match (self.validator.jwks(), user.method()) {
            (Some(jwks), AuthMethod::BearerJwt { key_id: Some(kid) }) => {
                jwks.is_ready() && jwks.contains_kid(kid)
            }
            _ => false,
        }
    }

    /// Whether an accepted token may be cached at all (see the type docs).
    fn cacheable(&self, user: &UserToken) -> bool {
        user.certificate_thumbprint().is_none() && self.key_published(user)
    }
}

/// SHA-256 of the whole token.
fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

/// Entry lifetime: until `exp`, at most the configured maximum.
struct UntilExpiry {
    max_ttl: Duration,
}

impl UntilExpiry {
    fn ttl(&self, user: &UserToken) -> Duration {
        let left = user
            .expires_at()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        left.min(self.max_ttl)
    }
}

impl Expiry<TokenKey, UserToken> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenKey,
        user: &UserToken,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(self.ttl(user))
    }

    fn expire_after_update(
        &self,
        _key: &TokenKey,
        user: &UserToken,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl(user))
    }
}

impl Authenticator for CachingValidator {
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

impl fmt::Debug for CachingValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingValidator")
            .field("validator", &self.inner.validator)
            .field("max_ttl", &self.inner.max_ttl)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Configures a [`CachingValidator`].
pub struct CachingValidatorBuilder {
    validator: JwtValidator,
    max_ttl: Duration,
    max_entries: u64,
    is_revoked: Option<RevocationCheck>,
}

impl fmt::Debug for CachingValidatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingValidatorBuilder")
            .field("validator", &self.validator)
            .field("max_ttl", &self.max_ttl)
            .field("max_entries", &self.max_entries)
            .field("revocation_check", &self.is_revoked.is_some())
            .finish()
    }
}

impl CachingValidatorBuilder {
    /// Longest time one token stays cached, however far its `exp` (default
    /// 5 min). This bounds how long a revoked token or a replaced key can go
    /// unnoticed.
    pub fn max_ttl(mut self, max_ttl: Duration) -> Self {
        self.max_ttl = max_ttl;
        self
    }

    /// Maximum number of cached tokens (default 10 000); the least useful
    /// entries are evicted beyond it.
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Refuses (401 `invalid_token`, reason `revoked`) every validated token
    /// for which `is_revoked` returns true, on cache hits and misses alike;
    /// a refused cached entry is evicted. Keep it fast: it runs on every
    /// request (an in-memory denylist of `jti`s or subjects, refreshed
    /// elsewhere).
    pub fn revocation_check<F>(mut self, is_revoked: F) -> Self
    where
        F: Fn(&UserToken) -> bool + Send + Sync + 'static,
    {
        self.is_revoked = Some(Arc::new(is_revoked));
        self
    }

    /// Checks the settings and builds the cache.
    pub fn build(self) -> Result<CachingValidator, ConfigError> {
        if self.max_ttl.is_zero() || self.max_entries == 0 {
            return Err(ConfigError::InvalidSetting(
                "token cache max_ttl and max_entries must be non-zero",
            ));
        }
        let cache = Cache::builder()
            .max_capacity(self.max_entries)
            .expire_after(UntilExpiry {
                max_ttl: self.max_ttl,
            })
            .support_invalidation_closures()
            .build();
        Ok(CachingValidator {
            inner: Arc::new(Inner {
                validator: self.validator,
                cache,
                is_revoked: self.is_revoked,
                max_ttl: self.max_ttl,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_sha256_of_the_whole_token() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let hex: String = token_key("abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
        assert_ne!(token_key("a.b.c"), token_key("a.b.d"));
    }

    #[test]
    fn ttl_is_capped_by_exp_and_max() {
        let expiry = UntilExpiry {
            max_ttl: Duration::from_secs(60),
        };
        let user =
            |secs| UserToken::builder("alice", "https://idp/", SystemTime::now() + secs).build();
        assert_eq!(
            expiry.ttl(&user(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
        assert!(expiry.ttl(&user(Duration::from_secs(10))) <= Duration::from_secs(10));
        let past = UserToken::builder("a", "i", SystemTime::now() - Duration::from_secs(5)).build();
        assert_eq!(expiry.ttl(&past), Duration::ZERO);
    }
}
