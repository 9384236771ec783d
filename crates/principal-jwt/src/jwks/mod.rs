//! Fetching an issuer's JWKS over HTTP (directly or through discovery) and
//! caching its keys.

mod discovery;
mod fetch;
mod key;
mod refresher;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures_util::FutureExt;
use futures_util::future::{self, BoxFuture, Shared};
use http::HeaderMap;
use jsonwebtoken::Algorithm;
use tracing::Instrument;

use crate::{ConfigError, telemetry};
use discovery::MetadataUrls;
use fetch::{Answer, Limits};
pub(crate) use key::{KeySet, VerifyingKey};

/// Default time keys are trusted before a refresh when the issuer sends no
/// `Cache-Control: max-age`: 10 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default lower bound on a `Cache-Control: max-age`: 1 minute.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(60);
/// Default upper bound on a `Cache-Control: max-age`: 24 h.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default minimum time between two refreshes caused by unknown `kid`s: 30 s.
pub const DEFAULT_REFRESH_COOLDOWN: Duration = Duration::from_secs(30);
/// Default time after a failed fetch before the next one: 5 s (doubled after
/// each further failure by the background refresher).
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Default cap on the background refresher's backoff: 5 minutes.
pub const DEFAULT_MAX_RETRY_INTERVAL: Duration = Duration::from_secs(300);
/// Default time limit of one fetch, body included: 5 s.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on the JWKS (and metadata) body: 256 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// Default limit on serving keys past their expiry while the issuer is
/// unreachable: 24 h.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(24 * 3600);

const JWKS_ACCEPT: &str = "application/jwk-set+json, application/json";

/// The keys of one issuer, fetched from its `jwks_uri` and cached.
///
/// The address is configured ([`JwksCache::builder`]) or discovered from the
/// issuer's metadata ([`JwksCache::discover`]: OIDC Discovery, falling back to
/// RFC 8414; the metadata's `issuer` must equal the configured one exactly).
///
/// Validation reads an immutable snapshot of the keys without locking or
/// awaiting. A fetch happens:
/// * on [`JwksCache::refresh`] and [`JwksCache::wait_until_ready`],
/// * in the background, a quarter of the lifetime before the keys expire. The
///   lifetime is the issuer's `Cache-Control: max-age` clamped to
///   [`min_ttl`](JwksCacheBuilder::min_ttl)..=[`max_ttl`](JwksCacheBuilder::max_ttl),
///   or the [`ttl`](JwksCacheBuilder::ttl) when it sends none. The refresher is
///   one task per cache, started by [`JwksCache::start`] or the first use, and
///   stopped when the last clone of the cache is dropped;
/// * when a request finds the keys expired (the old keys keep serving while the
///   new ones load) or absent,
/// * when a token names an unknown `kid`, at most once per refresh cooldown.
///
/// Concurrent callers share one fetch. An `ETag` is sent back as
/// `If-None-Match`; a `304 Not Modified` keeps the keys and counts as a
/// successful refresh. After a failure the last good keys keep serving for
/// up to the maximum staleness past their expiry; the background refresher
/// retries with exponential backoff from the retry interval up to the maximum
/// retry interval, requests without usable keys at most once per retry
/// interval. With discovery, the metadata is fetched again after a failed
/// fetch and once per `ttl`.
///
/// Fetches use the configured `reqwest::Client` with a per-request timeout, a
/// body cap, and no redirects; entries that cannot be used safely (private
/// members, `use` other than `sig`, unknown `kty`/`crv`, weak RSA, a
/// non-fitting `alg`, a repeated `kid`) are skipped and the rest of the set
/// still works.
///
/// ```no_run
/// # #![allow(dead_code)]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tower_principal_jwt::JwksCache;
///
/// let keys = JwksCache::discover("https://idp.example.com/")
///     .min_ttl(Duration::from_secs(30))
///     .build()?;
/// let count = keys.wait_until_ready(Duration::from_secs(10)).await?;
/// println!("{count} signing keys");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    client: reqwest::Client,
    settings: Settings,
    snapshot: ArcSwapOption<Snapshot>,
    state: Mutex<FetchState>,
    refresher: OnceLock<tokio::task::AbortHandle>,
}

enum Source {
    Jwks(reqwest::Url),
    Discovery(MetadataUrls),
}

#[derive(Clone, Debug)]
struct Settings {
    ttl: Duration,
    min_ttl: Duration,
    max_ttl: Duration,
    refresh_cooldown: Duration,
    retry_interval: Duration,
    max_retry_interval: Duration,
    fetch_timeout: Duration,
    max_body_bytes: usize,
    max_staleness: Duration,
    background_refresh: bool,
}

impl Settings {
    fn lifetime(&self, headers: &HeaderMap) -> Duration {
        fetch::max_age(headers).map_or(self.ttl, |age| age.clamp(self.min_ttl, self.max_ttl))
    }

    /// The background refresher's wait after `failures` failures in a row.
    fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.retry_interval
            .saturating_mul(1 << doublings)
            .min(self.max_retry_interval.max(self.retry_interval))
    }

    fn limits(&self) -> Limits {
        Limits {
            timeout: self.fetch_timeout,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

struct Snapshot {
    keys: Arc<KeySet>,
    fetched_at: Instant,
    expires_at: Instant,
    etag: Option<String>,
    jwks_uri: reqwest::Url,
}

impl Snapshot {
    /// When the background refresher fetches: a quarter of the lifetime early.
    fn refresh_at(&self) -> Instant {
        self.expires_at - (self.expires_at - self.fetched_at) / 4
    }

    fn usable(&self, settings: &Settings) -> bool {
        Instant::now() < self.expires_at + settings.max_staleness
    }
}

type SharedFetch = Shared<BoxFuture<'static, Result<Arc<Snapshot>, FetchError>>>;

#[derive(Default)]
struct FetchState {
    in_flight: Option<SharedFetch>,
    last_unknown_kid_fetch: Option<Instant>,
    last_failure: Option<Instant>,
    failures: u32,
    last_error: Option<FetchError>,
    discovered: Option<(reqwest::Url, Instant)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// [`JwksCache::refresh`]: always fetches.
    Explicit,
    /// [`JwksCache::wait_until_ready`]: fetches unless keys arrived meanwhile.
    Startup,
    Background,
    /// No usable or no fresh keys: fetches unless keys arrived meanwhile.
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

/// Why fetching a JWKS (or the issuer metadata pointing at it) failed.
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
    /// The issuer metadata is not a JSON object with a usable `jwks_uri`.
    #[error("issuer metadata is malformed or lacks a usable jwks_uri")]
    InvalidMetadata,
    /// The issuer metadata names another `issuer` than the configured one.
    #[error("issuer metadata names another issuer")]
    IssuerMismatch,
    /// A fetch was refused because the previous one failed very recently.
    #[error("jwks fetch skipped: the previous attempt failed moments ago")]
    Throttled,
}

impl FetchError {
    /// A stable snake-case name, used in logs and as the metrics `result` label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Transport(_) => "transport",
            Self::Redirected => "redirected",
            Self::Status(_) => "status",
            Self::TooLarge(_) => "too_large",
            Self::InvalidDocument => "invalid_document",
            Self::NoUsableKeys => "no_usable_keys",
            Self::InvalidMetadata => "invalid_metadata",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::Throttled => "throttled",
        }
    }
}

/// The state of one key cache, for readiness checks and dashboards.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStatus {
    /// Usable keys are loaded (not past expiry plus the maximum staleness).
    pub ready: bool,
    /// The keys are past their expiry (still served while `ready`).
    pub stale: bool,
    /// How many usable keys the current snapshot holds.
    pub keys: usize,
    /// Time since the last successful fetch (or `304`), if any.
    pub age: Option<Duration>,
    /// Failed fetches since the last success.
    pub consecutive_failures: u32,
    /// The error of the last failed fetch, until one succeeds.
    pub last_error: Option<FetchError>,
}

impl JwksCache {
    /// Starts configuring a cache for the JWKS at `jwks_uri`.
    pub fn builder(jwks_uri: impl Into<String>) -> JwksCacheBuilder {
        JwksCacheBuilder::new(Target::Jwks(jwks_uri.into()))
    }

    /// Starts configuring a cache that finds the JWKS through the metadata of
    /// `issuer`: `{issuer}/.well-known/openid-configuration`, then RFC 8414's
    /// `/.well-known/oauth-authorization-server{path}` if that is not served.
    /// Metadata whose `issuer` is not exactly `issuer` is refused.
    pub fn discover(issuer: impl Into<String>) -> JwksCacheBuilder {
        JwksCacheBuilder::new(Target::Issuer(issuer.into()))
    }

    /// The configured address: the JWKS URI, or the issuer with discovery.
    pub fn uri(&self) -> &str {
        self.inner.label()
    }

    /// The JWKS address the current keys came from, if any were fetched.
    pub fn jwks_uri(&self) -> Option<String> {
        match &self.inner.source {
            Source::Jwks(uri) => Some(uri.to_string()),
            Source::Discovery(_) => {
                (self.inner.snapshot.load().as_ref()).map(|snapshot| snapshot.jwks_uri.to_string())
            }
        }
    }

    /// Fetches the keys now (sharing a fetch already running) and returns how
    /// many usable keys the issuer publishes.
    pub async fn refresh(&self) -> Result<usize, FetchError> {
        self.start();
        let fetch = self
            .inner
            .start_fetch(Trigger::Explicit)
            .ok_or(FetchError::Throttled)?;
        fetch.await.map(|snapshot| snapshot.keys.len())
    }

    /// Starts the background refresher, if enabled and not yet running, and
    /// returns at once: requests are answered 503 until keys arrive. Outside
    /// a tokio runtime it does nothing (the first use starts it).
    pub fn start(&self) {
        self.inner.ensure_refresher();
    }

    /// Starts the refresher and waits at most `timeout` for usable keys,
    /// retrying failed fetches; returns the number of keys, or the last error
    /// ([`FetchError::Timeout`] if none finished).
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<usize, FetchError> {
        self.start();
        let mut last_error = FetchError::Timeout;
        let attempts = async {
            let mut failures = 0;
            loop {
                if let Some(snapshot) = self.inner.usable_snapshot() {
                    return Ok(snapshot.keys.len());
                }
                let fetch = self.inner.start_fetch(Trigger::Startup);
                match fetch.ok_or(FetchError::Throttled)?.await {
                    Ok(snapshot) => return Ok(snapshot.keys.len()),
                    Err(error) => last_error = error,
                }
                failures += 1;
                tokio::time::sleep(self.inner.settings.backoff(failures)).await;
            }
        };
        match tokio::time::timeout(timeout, attempts).await {
            Ok(result) => result,
            Err(_) => Err(last_error),
        }
    }

    /// Whether usable keys are loaded (not past expiry plus maximum staleness).
    pub fn is_ready(&self) -> bool {
        self.inner.usable_snapshot().is_some()
    }

    /// The cache's state, for a readiness route or a dashboard.
    pub fn status(&self) -> KeyStatus {
        let inner = &self.inner;
        let snapshot = inner.snapshot.load_full();
        let state = inner.lock();
        KeyStatus {
            ready: snapshot.as_ref().is_some_and(|s| s.usable(&inner.settings)),
            stale: snapshot
                .as_ref()
                .is_some_and(|s| Instant::now() >= s.expires_at),
            keys: snapshot.as_ref().map_or(0, |s| s.keys.len()),
            age: snapshot.as_ref().map(|s| s.fetched_at.elapsed()),
            consecutive_failures: state.failures,
            last_error: state.last_error.clone(),
        }
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
    ///
    /// On a warm cache this neither locks nor awaits.
    pub(crate) async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<VerifyingKey>, KeyLookupError> {
        let inner = &self.inner;
        inner.ensure_refresher();

        let Some(current) = inner.usable_snapshot() else {
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

        // Expired: refresh in the background, keep serving what we have.
        let background = (Instant::now() >= current.expires_at)
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
            .field("uri", &self.inner.label())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(refresher) = self.refresher.get() {
            refresher.abort();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, FetchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn label(&self) -> &str {
        match &self.source {
            Source::Jwks(uri) => uri.as_str(),
            Source::Discovery(urls) => &urls.issuer,
        }
    }

    fn usable_snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .load_full()
            .filter(|snapshot| snapshot.usable(&self.settings))
    }

    fn ensure_refresher(self: &Arc<Self>) {
        if !self.settings.background_refresh || self.refresher.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.refresher.get_or_init(|| {
            let task = refresher::run(Arc::downgrade(self));
            runtime.spawn(task).abort_handle()
        });
    }

    /// When the background refresher should fetch next.
    fn next_refresh(&self) -> Instant {
        let now = Instant::now();
        let due = (self.snapshot.load().as_ref()).map_or(now, |snapshot| snapshot.refresh_at());
        let state = self.lock();
        match state.last_failure {
            Some(at) => due.max(at + self.settings.backoff(state.failures)),
            None => due,
        }
    }

    /// The running fetch, or a new one if the throttling rules allow it.
    fn start_fetch(self: &Arc<Self>, trigger: Trigger) -> Option<SharedFetch> {
        let mut state = self.lock();
        if let Some(fetch) = &state.in_flight {
            return Some(fetch.clone());
        }

        let now = Instant::now();
        // The caller looked at the keys before taking this lock; a fetch may
        // have stored fresh ones since (it clears `in_flight` and stores the
        // snapshot under this lock). Then there is nothing to fetch.
        let current = self.snapshot.load_full();
        match trigger {
            Trigger::Startup | Trigger::Expired => {
                if let Some(snapshot) = current.filter(|s| now < s.expires_at) {
                    return Some(future::ready(Ok(snapshot)).boxed().shared());
                }
            }
            Trigger::Background => {
                if current.is_some_and(|s| now < s.refresh_at()) {
                    return None;
                }
            }
            Trigger::Explicit | Trigger::UnknownKid => {}
        }
        let within = |at: Option<Instant>, window: Duration| {
            at.is_some_and(|at| now.duration_since(at) < window)
        };
        let retry_after = match trigger {
            Trigger::Explicit | Trigger::Startup => Duration::ZERO,
            Trigger::Background => self.settings.backoff(state.failures),
            Trigger::Expired | Trigger::UnknownKid => self.settings.retry_interval,
        };
        if within(state.last_failure, retry_after) {
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
        let span = tracing::info_span!(
            "jwks_fetch",
            source = self.label(),
            uri = tracing::field::Empty,
            status = tracing::field::Empty,
            keys = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = self.fetch().instrument(span.clone()).await;
        let elapsed = started.elapsed();
        span.record("duration_ms", elapsed.as_millis() as u64);

        let mut state = self.lock();
        state.in_flight = None;
        let outcome = match result {
            Ok((snapshot, not_modified)) => {
                span.record("uri", snapshot.jwks_uri.as_str());
                span.record("status", if not_modified { 304 } else { 200 });
                span.record("keys", snapshot.keys.len());
                span.in_scope(|| tracing::debug!(not_modified, "jwks fetched"));
                self.snapshot.store(Some(snapshot.clone()));
                state.last_failure = None;
                state.failures = 0;
                state.last_error = None;
                let label = if not_modified { "not_modified" } else { "ok" };
                telemetry::fetch(self.label(), label, elapsed);
                Ok(snapshot)
            }
            Err(error) => {
                if let FetchError::Status(status) = error {
                    span.record("status", status);
                }
                span.in_scope(|| tracing::warn!(%error, "jwks fetch failed"));
                state.last_failure = Some(Instant::now());
                state.failures = state.failures.saturating_add(1);
                state.last_error = Some(error.clone());
                // The address may have moved: ask the metadata again next time.
                state.discovered = None;
                telemetry::fetch(self.label(), error.as_str(), elapsed);
                Err(error)
            }
        };
        drop(state);

        if let Some(snapshot) = self.snapshot.load().as_ref() {
            telemetry::cache(
                self.label(),
                snapshot.keys.len(),
                snapshot.fetched_at.elapsed(),
            );
        }
        outcome
    }

    /// The JWKS address: configured, or discovered (again once per `ttl`).
    async fn jwks_uri(&self) -> Result<reqwest::Url, FetchError> {
        let urls = match &self.source {
            Source::Jwks(uri) => return Ok(uri.clone()),
            Source::Discovery(urls) => urls,
        };
        let cached = self.lock().discovered.clone();
        if let Some((uri, _)) = cached.filter(|(_, at)| at.elapsed() < self.settings.ttl) {
            return Ok(uri);
        }
        let uri = urls.jwks_uri(&self.client, self.settings.limits()).await?;
        self.lock().discovered = Some((uri.clone(), Instant::now()));
        Ok(uri)
    }

    /// One fetch; `true` alongside the snapshot for a `304 Not Modified`.
    async fn fetch(&self) -> Result<(Arc<Snapshot>, bool), FetchError> {
        let jwks_uri = self.jwks_uri().await?;
        let previous = self
            .snapshot
            .load_full()
            .filter(|previous| previous.jwks_uri == jwks_uri && previous.etag.is_some());
        let etag = previous.as_ref().and_then(|p| p.etag.as_deref());

        let answer = fetch::get(
            &self.client,
            &jwks_uri,
            JWKS_ACCEPT,
            etag,
            self.settings.limits(),
        )
        .await?;
        let now = Instant::now();
        let (keys, headers, not_modified) = match (answer, &previous) {
            (Answer::NotModified { headers }, Some(previous)) => {
                (previous.keys.clone(), headers, true)
            }
            (Answer::NotModified { .. }, None) => return Err(FetchError::Status(304)),
            (Answer::Body { headers, body }, _) => (Arc::new(self.parse(&body)?), headers, false),
        };

        let snapshot = Snapshot {
            keys,
            fetched_at: now,
            expires_at: now + self.settings.lifetime(&headers),
            etag: fetch::etag(&headers).or_else(|| previous.and_then(|p| p.etag.clone())),
            jwks_uri,
        };
        Ok((Arc::new(snapshot), not_modified))
    }

    fn parse(&self, body: &[u8]) -> Result<KeySet, FetchError> {
        let (keys, report) = KeySet::parse(body).map_err(|_| FetchError::InvalidDocument)?;
        if report.skipped + report.duplicates > 0 {
            tracing::debug!(
                skipped = report.skipped,
                duplicates = report.duplicates,
                "jwks entries left out"
            );
        }
        if keys.len() == 0 {
            return Err(FetchError::NoUsableKeys);
        }
        Ok(keys)
    }
}

enum Target {
    Jwks(String),
    Issuer(String),
}

/// Configures a [`JwksCache`].
pub struct JwksCacheBuilder {
    target: Target,
    client: Option<reqwest::Client>,
    settings: Settings,
}

impl fmt::Debug for JwksCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, address) = match &self.target {
            Target::Jwks(uri) => ("jwks_uri", uri),
            Target::Issuer(issuer) => ("issuer", issuer),
        };
        f.debug_struct("JwksCacheBuilder")
            .field(kind, address)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl JwksCacheBuilder {
    fn new(target: Target) -> Self {
        Self {
            target,
            client: None,
            settings: Settings {
                ttl: DEFAULT_TTL,
                min_ttl: DEFAULT_MIN_TTL,
                max_ttl: DEFAULT_MAX_TTL,
                refresh_cooldown: DEFAULT_REFRESH_COOLDOWN,
                retry_interval: DEFAULT_RETRY_INTERVAL,
                max_retry_interval: DEFAULT_MAX_RETRY_INTERVAL,
                fetch_timeout: DEFAULT_FETCH_TIMEOUT,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                max_staleness: DEFAULT_MAX_STALENESS,
                background_refresh: true,
            },
        }
    }

    /// Uses this HTTP client (proxies, extra roots). It should not follow
    /// redirects; a redirected answer is refused either way. By default a
    /// client without redirects is built.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// How long fetched keys are trusted when the issuer sends no
    /// `Cache-Control: max-age` (default 10 min); also how long discovered
    /// metadata is trusted.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.settings.ttl = ttl;
        self
    }

    /// Lower bound on the issuer's `Cache-Control: max-age` (default 1 min);
    /// `no-cache` and `no-store` count as zero, so as this bound.
    pub fn min_ttl(mut self, ttl: Duration) -> Self {
        self.settings.min_ttl = ttl;
        self
    }

    /// Upper bound on the issuer's `Cache-Control: max-age` (default 24 h).
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.settings.max_ttl = ttl;
        self
    }

    /// Minimum time between two fetches caused by unknown `kid`s (default 30 s).
    pub fn refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.settings.refresh_cooldown = cooldown;
        self
    }

    /// Time after a failed fetch before the next one (default 5 s); the
    /// background refresher doubles it after each further failure.
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.settings.retry_interval = interval;
        self
    }

    /// Cap on the background refresher's backoff (default 5 min).
    pub fn max_retry_interval(mut self, interval: Duration) -> Self {
        self.settings.max_retry_interval = interval;
        self
    }

    /// Time limit of one fetch, body included (default 5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.settings.fetch_timeout = timeout;
        self
    }

    /// Cap on the JWKS and metadata bodies (default 256 KiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_body_bytes = bytes;
        self
    }

    /// How long past their expiry keys keep serving while the issuer is
    /// unreachable (default 24 h).
    pub fn max_staleness(mut self, staleness: Duration) -> Self {
        self.settings.max_staleness = staleness;
        self
    }

    /// Whether a background task refreshes the keys before they expire
    /// (default `true`). Without it, keys are only fetched on demand: by
    /// [`JwksCache::refresh`], or by a request finding them expired or absent.
    pub fn background_refresh(mut self, enabled: bool) -> Self {
        self.settings.background_refresh = enabled;
        self
    }

    /// Checks the settings and builds the cache. Fetches nothing yet.
    pub fn build(self) -> Result<JwksCache, ConfigError> {
        let source = match self.target {
            Target::Jwks(uri) => Source::Jwks(checked_uri(uri)?),
            Target::Issuer(issuer) => Source::Discovery(
                MetadataUrls::for_issuer(&issuer).ok_or(ConfigError::InvalidIssuerUrl(issuer))?,
            ),
        };
        let s = &self.settings;
        if s.ttl.is_zero() || s.fetch_timeout.is_zero() || s.max_body_bytes == 0 {
            return Err(ConfigError::InvalidSetting(
                "jwks ttl, timeout and body cap must be non-zero",
            ));
        }
        if s.min_ttl.is_zero() || s.min_ttl > s.max_ttl {
            return Err(ConfigError::InvalidSetting(
                "jwks min_ttl must be non-zero and at most max_ttl",
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
                source,
                client,
                settings: self.settings,
                snapshot: ArcSwapOption::empty(),
                state: Mutex::new(FetchState::default()),
                refresher: OnceLock::new(),
            }),
        })
    }
}

fn checked_uri(uri: String) -> Result<reqwest::Url, ConfigError> {
    match reqwest::Url::parse(&uri) {
        Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(url),
        _ => Err(ConfigError::InvalidJwksUri(uri)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let settings = JwksCache::builder("http://127.0.0.1:1/jwks")
            .retry_interval(Duration::from_secs(1))
            .max_retry_interval(Duration::from_secs(5))
            .settings;
        let waits: Vec<u64> = (1..=5).map(|n| settings.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(settings.backoff(u32::MAX).as_secs(), 5);
    }

    #[test]
    fn max_age_is_clamped_and_absent_means_ttl() {
        let settings = JwksCache::builder("http://127.0.0.1:1/jwks")
            .ttl(Duration::from_secs(600))
            .min_ttl(Duration::from_secs(60))
            .max_ttl(Duration::from_secs(3600))
            .settings;
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CACHE_CONTROL, value.parse().unwrap());
            settings.lifetime(&headers).as_secs()
        };
        assert_eq!(settings.lifetime(&HeaderMap::new()).as_secs(), 600);
        assert_eq!(with("max-age=5"), 60);
        assert_eq!(with("max-age=120"), 120);
        assert_eq!(with("max-age=86400"), 3600);
        assert_eq!(with("no-store"), 60);
    }

    #[test]
    fn discovery_needs_a_usable_issuer_url() {
        assert_eq!(
            JwksCache::discover("not a url").build().unwrap_err(),
            ConfigError::InvalidIssuerUrl("not a url".into())
        );
        assert!(JwksCache::discover("https://idp/tenant").build().is_ok());
        assert!(
            JwksCache::builder("http://127.0.0.1:1/jwks")
                .min_ttl(Duration::from_secs(10))
                .max_ttl(Duration::from_secs(1))
                .build()
                .is_err()
        );
    }
}
