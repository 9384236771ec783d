//! [`TestIssuer`]: a JWKS endpoint on loopback and a token factory.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
    /// The normal answer after this delay.
    Delay(Duration),
}

struct State_ {
    keys: Vec<SigningKey>,
    extra_entries: Vec<Value>,
    behaviour: JwksBehaviour,
}

struct Shared {
    state: Mutex<State_>,
    jwks_requests: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running local issuer: serves `GET /jwks.json` on `127.0.0.1` over real
/// HTTP, counts the requests it gets, and signs tokens.
///
/// Default keys: `rsa-1` (RS256), `ec-1` (ES256) and `ed-1` (EdDSA). Tokens
/// from [`TestIssuer::token`] are signed with `rsa-1` unless told otherwise.
/// The server stops when the issuer is dropped.
pub struct TestIssuer {
    addr: SocketAddr,
    issuer: String,
    jwks_uri: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
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
        self.server.abort();
    }
}

impl TestIssuer {
    /// Starts an issuer with the three default keys on a free loopback port.
    pub async fn start() -> Result<Self, KeyError> {
        let keys = vec![
            SigningKey::generate(Algorithm::RS256, "rsa-1")?,
            SigningKey::generate(Algorithm::ES256, "ec-1")?,
            SigningKey::generate(Algorithm::EdDSA, "ed-1")?,
        ];
        Self::start_with(keys, "127.0.0.1:0".parse().expect("a valid address")).await
    }

    /// Starts an issuer publishing `keys`, listening on `addr`.
    pub async fn start_with(keys: Vec<SigningKey>, addr: SocketAddr) -> Result<Self, KeyError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| KeyError::Generation(format!("bind {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| KeyError::Generation(e.to_string()))?;

        let shared = Arc::new(Shared {
            state: Mutex::new(State_ {
                keys,
                extra_entries: Vec::new(),
                behaviour: JwksBehaviour::Normal,
            }),
            jwks_requests: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/jwks.json", get(serve_jwks))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "test issuer stopped");
            }
        });

        Ok(Self {
            addr,
            issuer: format!("http://{addr}"),
            jwks_uri: format!("http://{addr}/jwks.json"),
            shared,
            server,
        })
    }

    /// The issuer identifier tokens carry in `iss`: `http://127.0.0.1:PORT`.
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

    /// How many JWKS requests the issuer has answered so far.
    pub fn jwks_requests(&self) -> usize {
        self.shared.jwks_requests.load(Ordering::SeqCst)
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

async fn serve_jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let (behaviour, body) = {
        let state = shared.lock();
        let mut keys: Vec<Value> = state.keys.iter().map(|key| key.jwk().clone()).collect();
        keys.extend(state.extra_entries.iter().cloned());
        (state.behaviour.clone(), json!({ "keys": keys }).to_string())
    };

    let normal = || {
        (
            [(header::CONTENT_TYPE, "application/jwk-set+json")],
            body.clone(),
        )
    };
    match behaviour {
        JwksBehaviour::Normal => normal().into_response(),
        JwksBehaviour::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        JwksBehaviour::Redirect(location) => {
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        JwksBehaviour::Body(raw) => raw.into_response(),
        JwksBehaviour::Delay(delay) => {
            tokio::time::sleep(delay).await;
            normal().into_response()
        }
    }
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
