//! [`TestIssuer`]: a JWKS endpoint and issuer metadata on loopback, a token
//! factory, and faults on command.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value, json};

use crate::keys::{KeyError, SigningKey, unix_now};

/// How the JWKS endpoint answers; switch it at any time to simulate faults.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum JwksBehaviour {
    /// The published keys as a JWK set.
    #[default]
    Normal,
    /// An empty response with this status.
    Status(u16),
    /// A 302 to this location.
    Redirect(String),
    /// This body with status 200.
    Body(String),
    /// An HTML error page with status 200, as a misconfigured proxy sends.
    Html,
    /// This many bytes of a JSON-looking body with status 200, streamed in
    /// chunks without a `Content-Length`.
    Huge(usize),
    /// The normal answer after this delay.
    Delay(Duration),
}

/// Which issuer metadata documents are served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Discovery {
    /// OIDC: `{issuer}/.well-known/openid-configuration`.
    #[default]
    Oidc,
    /// RFC 8414 only: `/.well-known/oauth-authorization-server{issuer path}`.
    OAuth,
    /// Both documents.
    Both,
    /// None (404 for both).
    Off,
}

struct State_ {
    keys: Vec<SigningKey>,
    extra_entries: Vec<Value>,
    behaviour: JwksBehaviour,
    discovery: Discovery,
    metadata_issuer: Option<String>,
    cache_control: Option<String>,
    etag: bool,
    requests: HashMap<String, usize>,
}

struct Shared {
    state: Mutex<State_>,
    paths: Paths,
    jwks_requests: AtomicUsize,
    not_modified: AtomicUsize,
}

#[derive(Clone, Debug)]
struct Paths {
    issuer: String,
    jwks: String,
    oidc: String,
    oauth: String,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running local issuer over real HTTP on `127.0.0.1`: serves its JWKS at
/// `{issuer}/jwks.json` and its metadata (see [`Discovery`]), counts the
/// requests it gets per path, and signs tokens.
///
/// Default keys: `rsa-1` (RS256), `ec-1` (ES256) and `ed-1` (EdDSA). Tokens
/// from [`TestIssuer::token`] are signed with `rsa-1` unless told otherwise.
/// Every answer carries `Connection: close`, so [`TestIssuer::stop`] really
/// makes the issuer unreachable. The server stops when the issuer is dropped.
pub struct TestIssuer {
    addr: SocketAddr,
    issuer: String,
    jwks_uri: String,
    shared: Arc<Shared>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.issuer)
            .field("jwks_uri", &self.jwks_uri)
            .finish_non_exhaustive()
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        let server = self
            .server
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = server.take() {
            server.abort();
        }
    }
}

fn default_keys() -> Result<Vec<SigningKey>, KeyError> {
    Ok(vec![
        SigningKey::generate(Algorithm::RS256, "rsa-1")?,
        SigningKey::generate(Algorithm::ES256, "ec-1")?,
        SigningKey::generate(Algorithm::EdDSA, "ed-1")?,
    ])
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl TestIssuer {
    /// Starts an issuer with the three default keys on a free loopback port.
    pub async fn start() -> Result<Self, KeyError> {
        Self::start_with(default_keys()?, loopback()).await
    }

    /// Starts an issuer whose identifier has a path: `http://127.0.0.1:PORT{path}`
    /// (`path` starts with `/`), as multi-tenant identity providers use.
    pub async fn start_at_path(path: &str) -> Result<Self, KeyError> {
        Self::start_full(default_keys()?, loopback(), path).await
    }

    /// Starts an issuer publishing `keys`, listening on `addr`.
    pub async fn start_with(keys: Vec<SigningKey>, addr: SocketAddr) -> Result<Self, KeyError> {
        Self::start_full(keys, addr, "").await
    }

    async fn start_full(
        keys: Vec<SigningKey>,
        addr: SocketAddr,
        path: &str,
    ) -> Result<Self, KeyError> {
        let listener = bind(addr).await?;
        let addr = listener
            .local_addr()
            .map_err(|e| KeyError::Generation(e.to_string()))?;

        let path = path.trim_end_matches('/');
        let paths = Paths {
            issuer: path.to_owned(),
            jwks: format!("{path}/jwks.json"),
            oidc: format!("{path}/.well-known/openid-configuration"),
            oauth: format!("/.well-known/oauth-authorization-server{path}"),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State_ {
                keys,
                extra_entries: Vec::new(),
                behaviour: JwksBehaviour::Normal,
                discovery: Discovery::default(),
                metadata_issuer: None,
                cache_control: None,
                etag: false,
                requests: HashMap::new(),
            }),
            jwks_requests: AtomicUsize::new(0),
            not_modified: AtomicUsize::new(0),
            paths: paths.clone(),
        });

        Ok(Self {
            addr,
            issuer: format!("http://{addr}{}", paths.issuer),
            jwks_uri: format!("http://{addr}{}", paths.jwks),
            server: Mutex::new(Some(serve(listener, shared.clone()))),
            shared,
        })
    }

    /// The issuer identifier tokens carry in `iss`: `http://127.0.0.1:PORT`
    /// (followed by the path given to [`TestIssuer::start_at_path`]).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The JWKS address.
    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// The socket the issuer listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many JWKS requests the issuer has answered so far (`304`s included).
    pub fn jwks_requests(&self) -> usize {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// How many requests for `path` (e.g. `/jwks.json`) the issuer got so far.
    pub fn requests_to(&self, path: &str) -> usize {
        self.shared.lock().requests.get(path).copied().unwrap_or(0)
    }

    /// How many requests for either metadata document the issuer got so far.
    pub fn metadata_requests(&self) -> usize {
        let paths = &self.shared.paths;
        self.requests_to(&paths.oidc) + self.requests_to(&paths.oauth)
    }

    /// How many JWKS requests were answered `304 Not Modified`.
    pub fn not_modified_responses(&self) -> usize {
        self.shared.not_modified.load(Ordering::SeqCst)
    }

    /// Publishes and signs with one more key.
    pub fn add_key(&self, key: SigningKey) {
        self.shared.lock().keys.push(key);
    }

    /// Stops publishing the key `kid` (tokens can still be signed with it, as
    /// by an attacker who kept an old key).
    pub fn unpublish_key(&self, kid: &str) -> Option<SigningKey> {
        let mut state = self.shared.lock();
        let at = state.keys.iter().position(|key| key.kid() == kid)?;
        Some(state.keys.remove(at))
    }

    /// Publishes an arbitrary JWK entry next to the real keys.
    pub fn publish_raw_entry(&self, entry: Value) {
        self.shared.lock().extra_entries.push(entry);
    }

    /// Changes how the JWKS endpoint answers.
    pub fn set_behaviour(&self, behaviour: JwksBehaviour) {
        self.shared.lock().behaviour = behaviour;
    }

    /// Changes which metadata documents are served (default [`Discovery::Oidc`]).
    pub fn set_discovery(&self, discovery: Discovery) {
        self.shared.lock().discovery = discovery;
    }

    /// Makes the metadata name this `issuer` instead of the real one (`None`
    /// restores it), as a misconfigured or hostile server would.
    pub fn set_metadata_issuer(&self, issuer: Option<String>) {
        self.shared.lock().metadata_issuer = issuer;
    }

    /// Sends this `Cache-Control` value with the JWKS (`None`: no header).
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.shared.lock().cache_control = value.map(str::to_owned);
    }

    /// Sends an `ETag` with the JWKS and answers a matching `If-None-Match`
    /// with `304 Not Modified`.
    pub fn set_etag(&self, enabled: bool) {
        self.shared.lock().etag = enabled;
    }

    /// Stops listening: connections are refused until [`TestIssuer::restart`].
    pub async fn stop(&self) {
        let server = self
            .server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(server) = server {
            server.abort();
            let _ = server.await;
        }
    }

    /// Listens again on the same address after [`TestIssuer::stop`].
    pub async fn restart(&self) -> Result<(), KeyError> {
        self.stop().await;
        let listener = bind(self.addr).await?;
        let server = serve(listener, self.shared.clone());
        *self.server.lock().unwrap_or_else(PoisonError::into_inner) = Some(server);
        Ok(())
    }

    /// The key `kid`, published or not.
    pub fn key(&self, kid: &str) -> Option<SigningKey> {
        self.shared
            .lock()
            .keys
            .iter()
            .find(|key| key.kid() == kid)
            .cloned()
    }

    /// A token for `alice` with `orders:read`, audience `orders-api`, valid for
    /// an hour, signed with `rsa-1`; change any of it with the builder.
    pub fn token(&self) -> TokenBuilder {
        let now = unix_now();
        let claims = json!({
            "iss": self.issuer,
            "sub": "alice",
            "aud": "orders-api",
            "exp": now + 3600,
            "iat": now,
            "scope": "orders:read",
        });
        TokenBuilder {
            key: self.key("rsa-1"),
            header: Map::from_iter([("typ".to_owned(), json!("at+jwt"))]),
            claims: claims.as_object().cloned().unwrap_or_default(),
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, KeyError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| KeyError::Generation(format!("bind {addr}: {e}")))
}

fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    let app = Router::new().fallback(route).with_state(shared);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "test issuer stopped");
        }
    })
}

async fn route(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    *shared.lock().requests.entry(path.clone()).or_default() += 1;

    let paths = &shared.paths;
    let mut response = if path == paths.jwks {
        serve_jwks(&shared, &headers).await
    } else if path == paths.oidc || path == paths.oauth {
        serve_metadata(&shared, &headers, path == paths.oidc)
    } else {
        StatusCode::NOT_FOUND.into_response()
    };
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `http://HOST` as the client addressed the issuer.
fn origin(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    format!("http://{}", host.unwrap_or("127.0.0.1"))
}

fn serve_metadata(shared: &Shared, headers: &HeaderMap, oidc: bool) -> Response {
    let state = shared.lock();
    let served = match state.discovery {
        Discovery::Oidc => oidc,
        Discovery::OAuth => !oidc,
        Discovery::Both => true,
        Discovery::Off => false,
    };
    if !served {
        return StatusCode::NOT_FOUND.into_response();
    }
    let origin = origin(headers);
    let issuer = (state.metadata_issuer.clone())
        .unwrap_or_else(|| format!("{origin}{}", shared.paths.issuer));
    let document = json!({
        "issuer": issuer,
        "jwks_uri": format!("{origin}{}", shared.paths.jwks),
        "response_types_supported": ["code"],
    });
    axum::Json(document).into_response()
}

async fn serve_jwks(shared: &Shared, request: &HeaderMap) -> Response {
    shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let (behaviour, body, cache_control, etag) = {
        let state = shared.lock();
        let mut keys: Vec<Value> = state.keys.iter().map(|key| key.jwk().clone()).collect();
        keys.extend(state.extra_entries.iter().cloned());
        let body = json!({ "keys": keys }).to_string();
        let etag = state.etag.then(|| etag_of(&body));
        (
            state.behaviour.clone(),
            body,
            state.cache_control.clone(),
            etag,
        )
    };

    let mut headers = HeaderMap::new();
    let mut put = |name, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    if let Some(value) = &cache_control {
        put(header::CACHE_CONTROL, value);
    }
    if let Some(value) = &etag {
        put(header::ETAG, value);
    }
    let matches = |etag: &str| {
        request.get_all(header::IF_NONE_MATCH).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|v| v.trim() == etag))
        })
    };
    let normal = |headers: HeaderMap| {
        if etag.as_deref().is_some_and(matches) {
            shared.not_modified.fetch_add(1, Ordering::SeqCst);
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        let content_type = [(header::CONTENT_TYPE, "application/jwk-set+json")];
        (headers, content_type, body.clone()).into_response()
    };

    match behaviour {
        JwksBehaviour::Normal => normal(headers),
        JwksBehaviour::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        JwksBehaviour::Redirect(location) => {
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        JwksBehaviour::Body(raw) => raw.into_response(),
        JwksBehaviour::Html => (
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        JwksBehaviour::Huge(bytes) => huge_body(bytes),
        JwksBehaviour::Delay(delay) => {
            tokio::time::sleep(delay).await;
            normal(headers)
        }
    }
}

fn etag_of(body: &str) -> String {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

/// `{"keys":[` followed by spaces up to `bytes`, in 64 KiB chunks.
fn huge_body(bytes: usize) -> Response {
    const CHUNK: usize = 64 * 1024;
    let prefix = Bytes::from_static(b"{\"keys\":[");
    let chunks = (0..bytes.div_ceil(CHUNK)).map(move |i| {
        let len = CHUNK.min(bytes - i * CHUNK);
        Ok::<_, std::convert::Infallible>(Bytes::from(vec![b' '; len]))
    });
    let stream = futures_util::stream::iter(std::iter::once(Ok(prefix)).chain(chunks));
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Builds and signs one token; see [`TestIssuer::token`].
#[derive(Clone, Debug)]
pub struct TokenBuilder {
    key: Option<SigningKey>,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl TokenBuilder {
    /// Sets `sub`.
    pub fn subject(self, sub: &str) -> Self {
        self.claim("sub", json!(sub))
    }

    /// Sets `scope` (space-delimited).
    pub fn scope(self, scope: &str) -> Self {
        self.claim("scope", json!(scope))
    }

    /// Sets `aud`: one string, or an array when given several.
    pub fn audience(self, audiences: &[&str]) -> Self {
        match audiences {
            [one] => self.claim("aud", json!(one)),
            many => self.claim("aud", json!(many)),
        }
    }

    /// Sets `exp` to now plus `secs` (negative for the past).
    pub fn expires_in(self, secs: i64) -> Self {
        self.claim("exp", json!(unix_now() + secs))
    }

    /// Sets any claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.to_owned(), value);
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets a header member (`alg` and `kid` are set from the key on signing).
    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.header.insert(name.to_owned(), value);
        self
    }

    /// Removes a header member.
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Signs with `key` instead of the default.
    pub fn signed_by(mut self, key: SigningKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The claims as JSON.
    pub fn claims(&self) -> Value {
        Value::Object(self.claims.clone())
    }

    /// The header as JSON, without `alg` and `kid`.
    pub fn header_json(&self) -> Value {
        Value::Object(self.header.clone())
    }

    /// Signs the token.
    ///
    /// # Panics
    ///
    /// If the issuer has no key to sign with.
    pub fn sign(&self) -> String {
        let key = self.key.as_ref().expect("the issuer has a signing key");
        key.sign(&self.header_json(), &self.claims())
    }
}
