//! Helpers shared by the integration tests: a real server on loopback and a client.
//!
//! These are specific to API keys (stores, keys, a scope-guarded echo app), so
//! they live here rather than in `tower-principal-testing`.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower_principal::{
    AuthError, AuthLayer, AuthMethod, Authenticator, BoxFuture, Credential, Principal, Reason,
    RequireScopesLayer, Scopes,
};
use tower_principal_apikey::{AccountName, ApiKey, ApiKeyAuthenticator, KeyPrefix, StoredKey};

/// A fresh key with the default prefix.
pub(crate) fn new_key() -> ApiKey {
    ApiKey::generate(&KeyPrefix::default()).unwrap()
}

/// The store entry for `key`, owned by `account` with space-delimited `scopes`.
pub(crate) fn stored(key: &ApiKey, account: &str, scopes: &str) -> StoredKey {
    StoredKey::new(
        key.id().clone(),
        AccountName::new(account).unwrap(),
        Scopes::parse_space_delimited(scopes).unwrap(),
        key.secret_hash(),
    )
}

/// Rejects every bearer token, so the layer also reads `Authorization: Bearer`.
struct NoBearer;

impl Authenticator for NoBearer {
    fn authenticate<'a>(
        &'a self,
        _: &'a Credential,
        _: &'a http::request::Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(async { Err(AuthError::invalid_token(Reason::BadSignature)) })
    }
}

/// Echoes who called: kind, subject, scopes and key id.
async fn whoami(principal: Principal) -> Json<Value> {
    let key_id = match principal.method() {
        AuthMethod::ApiKey { key_id } => Some(key_id.clone()),
        _ => None,
    };
    Json(json!({
        "kind": principal.kind(),
        "subject": principal.subject(),
        "scopes": principal.scopes(),
        "key_id": key_id,
    }))
}

/// The app under test: `/whoami` for any caller, `/orders` needs `orders:read`,
/// `/admin` needs `admin:write`.
pub(crate) fn app(authenticator: ApiKeyAuthenticator) -> Router {
    let auth = AuthLayer::builder()
        .bearer(NoBearer)
        .api_key(authenticator)
        .realm("orders")
        .build()
        .unwrap();
    Router::new()
        .route("/whoami", get(whoami))
        .route(
            "/orders",
            get(whoami).route_layer(RequireScopesLayer::all(["orders:read"])),
        )
        .route(
            "/admin",
            get(whoami).route_layer(RequireScopesLayer::all(["admin:write"])),
        )
        .layer(auth)
}

/// A running server on 127.0.0.1 and a client for it.
pub(crate) struct Server {
    base: String,
    client: reqwest::Client,
}

/// What came back, reduced to what the tests compare.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) challenge: Option<String>,
    pub(crate) body: String,
}

impl Reply {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

impl Server {
    /// Serves `app(authenticator)` on an ephemeral loopback port.
    pub(crate) async fn start(authenticator: ApiKeyAuthenticator) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app(authenticator)).await });

        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Self { base, client }
    }

    /// `GET path` with `headers`.
    pub(crate) async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        Reply {
            status,
            challenge,
            body,
        }
    }

    /// `GET path` with the key in `X-Api-Key`.
    pub(crate) async fn get_with_key(&self, path: &str, key: &str) -> Reply {
        self.get(path, &[("x-api-key", key)]).await
    }

    /// Retries `GET path` with `key` until it answers `status`, for up to 2 s.
    pub(crate) async fn wait_for_status(&self, path: &str, key: &str, status: StatusCode) -> Reply {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let reply = self.get_with_key(path, key).await;
            if reply.status == status || tokio::time::Instant::now() > deadline {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A new empty directory for one test.
pub(crate) fn temp_dir(test: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("apikey-{test}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Replaces `path` atomically with `text` (write a sibling, then rename).
pub(crate) fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// A store file holding `keys`.
pub(crate) fn store_file(keys: &[StoredKey]) -> String {
    keys.iter()
        .map(StoredKey::to_toml)
        .collect::<Vec<_>>()
        .join("\n")
}
