//! Fetching an issuer's JWKS over HTTP and caching its keys.

mod key;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use http::header;
use jsonwebtoken::Algorithm;

use crate::ConfigError;
pub(crate) use key::{KeySet, VerifyingKey};

/// Default time keys are trusted before a refresh: 10 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default minimum time between two refreshes caused by unknown `kid`s: 30 s.
pub const DEFAULT_REFRESH_COOLDOWN: Duration = Duration::from_secs(30);
/// Default minimum time between a failed fetch and the next attempt: 5 s.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Default time limit of one fetch, body included: 5 s.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on the JWKS body: 256 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// Default limit on serving keys past their TTL while the issuer is unreachable: 24 h.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(24 * 3600);

/// The keys of one issuer, fetched from its `jwks_uri` and cached.
///
/// Validation reads an immutable snapshot of the keys without locking. A fetch
/// happens:
/// * on [`JwksCache::refresh`] (call it at start-up to fail fast),
/// * when the snapshot is older than the TTL; the old keys keep serving while
///   the new ones load, for at most the maximum staleness,
/// * when a token names an unknown `kid`, at most once per refresh cooldown.
///
/// Concurrent callers share one fetch. Fetches use the configured
/// `reqwest::Client` with a per-request timeout, a body cap, and no redirects;
/// entries that cannot be used safely (private members, `use` other than
/// `sig`, unknown `kty`/`crv`, weak RSA, a non-fitting `alg`) are skipped and
/// the rest of the set still works.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tower_principal_jwt::JwksCache;
///
/// let keys = JwksCache::builder("https://idp.example.com/.well-known/jwks.json")
///     .ttl(Duration::from_secs(300))
///     .build()?;
/// let count = keys.refresh().await?;
/// println!("{count} signing keys");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

struct Inner {
    uri: reqwest::Url,
    client: reqwest::Client,
    settings: Settings,
    snapshot: ArcSwapOption<Snapshot>,
    state: Mutex<FetchState>,
}

#[derive(Clone, Debug)]
struct Settings {
    ttl: Duration,
    refresh_cooldown: Duration,
    retry_interval: Duration,
    fetch_timeout: Duration,
    max_body_bytes: usize,
    max_staleness: Duration,
}

struct Snapshot {
    keys: KeySet,
    fetched_at: Instant,
}

type SharedFetch = Shared<BoxFuture<'static, Result<Arc<Snapshot>, FetchError>>>;

#[derive(Default)]
struct FetchState {
    in_flight: Option<SharedFetch>,
    last_unknown_kid_fetch: Option<Instant>,
    last_failure: Option<Instant>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Explicit,
    Expired,
    UnknownKid,
}

/// Why a key could not be had for a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyLookupError {
    /// The keys are known, but none fits the token.
    UnknownKey,
    /// No usable key set: never fetched, or too stale and the issuer is down.
    Unavailable,
}

/// Why fetching a JWKS failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The fetch did not finish in time.
    #[error("jwks fetch timed out")]
    Timeout,
    /// Connecting or reading failed.
    #[error("jwks fetch failed: {0}")]
    Transport(String),
    /// The issuer answered with a redirect, which is not followed.
    #[error("jwks endpoint answered with a redirect")]
    Redirected,
    /// The issuer answered with a non-success status.
    #[error("jwks endpoint answered with status {0}")]
    Status(u16),
    /// The body exceeds the configured cap.
    #[error("jwks body exceeds {0} bytes")]
    TooLarge(usize),
    /// The body is not a JWKS document.
    #[error("jwks body is not a JWK set")]
    InvalidDocument,
    /// The document holds no usable key; the previous keys are kept.
    #[error("jwks holds no usable signing key")]
    NoUsableKeys,
    /// A fetch was refused because the previous one failed very recently.
    #[error("jwks fetch skipped: the previous attempt failed moments ago")]
    Throttled,
}

impl JwksCache {
    /// Starts configuring a cache for the JWKS at `jwks_uri`.
    pub fn builder(jwks_uri: impl Into<String>) -> JwksCacheBuilder {
        JwksCacheBuilder {
            uri: jwks_uri.into(),
            client: None,
            settings: Settings {
                ttl: DEFAULT_TTL,
                refresh_cooldown: DEFAULT_REFRESH_COOLDOWN,
                retry_interval: DEFAULT_RETRY_INTERVAL,
                fetch_timeout: DEFAULT_FETCH_TIMEOUT,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                max_staleness: DEFAULT_MAX_STALENESS,
            },
        }
    }

    /// The JWKS address.
    pub fn uri(&self) -> &str {
        self.inner.uri.as_str()
    }

    /// Fetches the keys now (sharing a fetch already running) and returns how
    /// many usable keys the issuer publishes.
    pub async fn refresh(&self) -> Result<usize, FetchError> {
        let fetch = self
            .inner
            .start_fetch(Trigger::Explicit)
            .ok_or(FetchError::Throttled)?;
        fetch.await.map(|snapshot| snapshot.keys.len())
    }

    /// Whether keys are loaded and not older than the maximum staleness.
    pub fn is_ready(&self) -> bool {
        self.inner.snapshot.load().as_ref().is_some_and(|snapshot| {
            snapshot.fetched_at.elapsed() < self.inner.settings.max_staleness
        })
    }

    /// Whether the current snapshot holds a key named `kid`.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.inner
            .snapshot
            .load()
            .as_ref()
            .is_some_and(|snapshot| snapshot.keys.contains_kid(kid))
    }

    /// The key for a token's `kid` and `alg`, fetching when the rules allow.
    pub(crate) async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<VerifyingKey>, KeyLookupError> {
        let inner = &self.inner;
        let current = inner.snapshot.load_full();

        let Some(current) =
            current.filter(|s| s.fetched_at.elapsed() < inner.settings.max_staleness)
        else {
            // Nothing usable: wait for keys.
            let fetch = inner
                .start_fetch(Trigger::Expired)
                .ok_or(KeyLookupError::Unavailable)?;
            let fresh = fetch.await.map_err(|_| KeyLookupError::Unavailable)?;
            return fresh
                .keys
                .find(kid, alg)
                .cloned()
                .ok_or(KeyLookupError::UnknownKey);
        };

        // Past the TTL: refresh in the background, keep serving what we have.
        let background = (current.fetched_at.elapsed() >= inner.settings.ttl)
            .then(|| inner.start_fetch(Trigger::Expired))
            .flatten();
        if let Some(key) = current.keys.find(kid, alg) {
            return Ok(key.clone());
        }

        let fetch = background
            .or_else(|| inner.start_fetch(Trigger::UnknownKid))
            .ok_or(KeyLookupError::UnknownKey)?;
        match fetch.await {
            Ok(fresh) => fresh
                .keys
                .find(kid, alg)
                .cloned()
                .ok_or(KeyLookupError::UnknownKey),
            Err(_) => Err(KeyLookupError::UnknownKey),
        }
    }
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("uri", &self.inner.uri.as_str())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// The running fetch, or a new one if the throttling rules allow it.
    fn start_fetch(self: &Arc<Self>, trigger: Trigger) -> Option<SharedFetch> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(fetch) = &state.in_flight {
            return Some(fetch.clone());
        }

        let now = Instant::now();
        let within = |at: Option<Instant>, window: Duration| {
            at.is_some_and(|at| now.duration_since(at) < window)
        };
        if trigger != Trigger::Explicit && within(state.last_failure, self.settings.retry_interval)
        {
            return None;
        }
        if trigger == Trigger::UnknownKid {
            if within(state.last_unknown_kid_fetch, self.settings.refresh_cooldown) {
                return None;
            }
            state.last_unknown_kid_fetch = Some(now);
        }

        let this = self.clone();
        let fetch = async move { this.fetch_and_store().await }.boxed().shared();
        // Driven to completion even if every waiter goes away.
        tokio::spawn(fetch.clone());
        state.in_flight = Some(fetch.clone());
        Some(fetch)
    }

    async fn fetch_and_store(self: Arc<Self>) -> Result<Arc<Snapshot>, FetchError> {
        let started = Instant::now();
        let result = self.fetch().await;
        let elapsed_ms = started.elapsed().as_millis() as u64;

        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.in_flight = None;
        match result {
            Ok(keys) => {
                tracing::debug!(uri = %self.uri, keys = keys.len(), elapsed_ms, "jwks fetched");
                let snapshot = Arc::new(Snapshot {
                    keys,
                    fetched_at: Instant::now(),
                });
                self.snapshot.store(Some(snapshot.clone()));
                state.last_failure = None;
                Ok(snapshot)
            }
            Err(error) => {
                tracing::warn!(uri = %self.uri, %error, elapsed_ms, "jwks fetch failed");
                state.last_failure = Some(Instant::now());
                Err(error)
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, FetchError> {
        let response = self
            .client
            .get(self.uri.clone())
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .timeout(self.settings.fetch_timeout)
            .send()
            .await
            .map_err(transport_error)?;

        // A client that follows redirects may have been passed in; refuse the result.
        if response.status().is_redirection() || response.url() != &self.uri {
            return Err(FetchError::Redirected);
        }
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }

        let body = read_capped(response, self.settings.max_body_bytes).await?;
        let (keys, report) = KeySet::parse(&body).map_err(|_| FetchError::InvalidDocument)?;
        if keys.len() == 0 {
            return Err(FetchError::NoUsableKeys);
        }
        if report.skipped + report.duplicates > 0 {
            tracing::debug!(
                uri = %self.uri,
                skipped = report.skipped,
                duplicates = report.duplicates,
                "jwks entries left out"
            );
        }
        Ok(keys)
    }
}

fn transport_error(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Transport(error.without_url().to_string())
    }
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, FetchError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(FetchError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > cap {
            return Err(FetchError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Configures a [`JwksCache`].
#[derive(Debug)]
pub struct JwksCacheBuilder {
    uri: String,
    client: Option<reqwest::Client>,
    settings: Settings,
}

impl JwksCacheBuilder {
    /// Uses this HTTP client (proxies, extra roots). It should not follow
    /// redirects; a redirected answer is refused either way. By default a
    /// client without redirects is built.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// How long fetched keys are trusted before a refresh (default 10 min).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.settings.ttl = ttl;
        self
    }

    /// Minimum time between two fetches caused by unknown `kid`s (default 30 s).
    pub fn refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.settings.refresh_cooldown = cooldown;
        self
    }

    /// Minimum time after a failed fetch before the next one (default 5 s).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.settings.retry_interval = interval;
        self
    }

    /// Time limit of one fetch, body included (default 5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.settings.fetch_timeout = timeout;
        self
    }

    /// Cap on the JWKS body (default 256 KiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_body_bytes = bytes;
        self
    }

    /// How long past the TTL keys keep serving while the issuer is unreachable
    /// (default 24 h).
    pub fn max_staleness(mut self, staleness: Duration) -> Self {
        self.settings.max_staleness = staleness;
        self
    }

    /// Checks the settings and builds the cache. Fetches nothing yet.
    pub fn build(self) -> Result<JwksCache, ConfigError> {
        let uri = reqwest::Url::parse(&self.uri)
            .map_err(|_| ConfigError::InvalidJwksUri(self.uri.clone()))?;
        if !matches!(uri.scheme(), "https" | "http") {
            return Err(ConfigError::InvalidJwksUri(self.uri));
        }
        let s = &self.settings;
        if s.ttl.is_zero() || s.fetch_timeout.is_zero() || s.max_body_bytes == 0 {
            return Err(ConfigError::InvalidSetting(
                "jwks ttl, timeout and body cap must be non-zero",
            ));
        }

        let client = match self.client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(s.fetch_timeout)
                .build()
                .map_err(|_| ConfigError::HttpClient)?,
        };
        Ok(JwksCache {
            inner: Arc::new(Inner {
                uri,
                client,
                settings: self.settings,
                snapshot: ArcSwapOption::empty(),
                state: Mutex::new(FetchState::default()),
            }),
        })
    }
}
