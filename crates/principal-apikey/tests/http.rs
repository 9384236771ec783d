//! API keys over real loopback HTTP through `AuthLayer` and `RequireScopesLayer`.

#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::json;
use tower_principal::BoxFuture;
use tower_principal_apikey::{
    ApiKeyAuthenticator, KeyId, KeyStore, MemoryStore, StoreError, StoredKey,
};

use common::{Reply, Server, new_key, stored};

const ACCOUNT: &str = "order-processor";
const SCOPES: &str = "orders:read orders:process";

async fn server_with(store: &MemoryStore) -> Server {
    Server::start(ApiKeyAuthenticator::new(store.clone())).await
}

fn assert_invalid_token(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}: {reply:?}");
    let challenge = reply.challenge.as_deref().unwrap_or_default();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{what}: {challenge}"
    );
}

#[tokio::test]
async fn valid_key_in_authorization_header_is_a_system_principal() {
    let key = new_key();
    let store = MemoryStore::new([stored(&key, ACCOUNT, SCOPES)]).unwrap();
    let server = server_with(&store).await;

    let authorization = format!("ApiKey {}", key.expose_secret());
    let reply = server
        .get("/orders", &[("authorization", &authorization)])
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let expected = json!({
        "kind": "system",
        "subject": ACCOUNT,
        "scopes": ["orders:process", "orders:read"],
        "key_id": key.id().as_str(),
    });
    assert_eq!(reply.json(), expected);
}

#[tokio::test]
async fn valid_key_in_x_api_key_header_is_a_system_principal() {
    let key = new_key();
    let store = MemoryStore::new([stored(&key, ACCOUNT, SCOPES)]).unwrap();
    let server = server_with(&store).await;

    let reply = server.get_with_key("/orders", key.expose_secret()).await;

    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["kind"], "system");
    assert_eq!(body["subject"], ACCOUNT);
    assert_eq!(body["scopes"], json!(["orders:process", "orders:read"]));
}

#[tokio::test]
async fn every_refused_key_gets_the_same_401_invalid_token() {
    let (good, expired, revoked) = (new_key(), new_key(), new_key());
    let past = SystemTime::now() - Duration::from_secs(60);
    let store = MemoryStore::new([
        stored(&good, ACCOUNT, SCOPES),
        stored(&expired, ACCOUNT, SCOPES).with_expiry(past),
        stored(&revoked, ACCOUNT, SCOPES).with_revoked(true),
    ])
    .unwrap();
    let server = server_with(&store).await;

    let forged_secret = "A".repeat(43);
    let wrong_secret = format!("tp_{}_{forged_secret}", good.id());
    let unknown_id = format!("tp_unknown1_{forged_secret}");
    let secret_of_good = &good.expose_secret()[good.expose_secret().len() - 43..];
    let unknown_id_real_secret = format!("tp_unknown2_{secret_of_good}");
    let wrong_prefix = good.expose_secret().replacen("tp_", "xx_", 1);
    let cases = [
        ("wrong secret", wrong_secret.as_str()),
        ("unknown id", &unknown_id),
        ("unknown id with a real secret", &unknown_id_real_secret),
        ("expired", expired.expose_secret()),
        ("revoked", revoked.expose_secret()),
        ("wrong prefix", &wrong_prefix),
        ("malformed", "tp_nosecret"),
    ];

    let mut replies = Vec::new();
    for (what, key) in cases {
        let reply = server.get_with_key("/orders", key).await;
        assert_invalid_token(&reply, what);
        replies.push(reply);
    }
    assert!(
        replies.windows(2).all(|pair| pair[0] == pair[1]),
        "refusals differ: {replies:#?}"
    );
    assert!(!replies[0].body.contains(good.id().as_str()));

    let reply = server.get_with_key("/orders", good.expose_secret()).await;
    assert_eq!(reply.status, StatusCode::OK, "the good key still works");
}

#[tokio::test]
async fn rotation_keeps_both_keys_live_until_the_old_one_is_revoked() {
    let old = new_key();
    let store = MemoryStore::new([stored(&old, ACCOUNT, SCOPES)]).unwrap();
    let server = server_with(&store).await;

    let new = new_key();
    assert!(store.insert(stored(&new, ACCOUNT, SCOPES)).is_none());
    for key in [&old, &new] {
        let reply = server.get_with_key("/orders", key.expose_secret()).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.json()["subject"], ACCOUNT);
        assert_eq!(reply.json()["key_id"], key.id().as_str());
    }

    assert!(store.revoke(old.id()));
    assert_invalid_token(
        &server.get_with_key("/orders", old.expose_secret()).await,
        "old",
    );
    let reply = server.get_with_key("/orders", new.expose_secret()).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
}

#[tokio::test]
async fn key_in_query_string_is_ignored() {
    let key = new_key();
    let store = MemoryStore::new([stored(&key, ACCOUNT, SCOPES)]).unwrap();
    let server = server_with(&store).await;

    let path = format!("/orders?api_key={}", key.expose_secret());
    let reply = server.get(&path, &[]).await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.challenge.as_deref(), Some(r#"Bearer realm="orders""#));
}

#[tokio::test]
async fn key_with_a_second_credential_is_400_invalid_request() {
    let key = new_key();
    let store = MemoryStore::new([stored(&key, ACCOUNT, SCOPES)]).unwrap();
    let server = server_with(&store).await;
    let scheme = format!("ApiKey {}", key.expose_secret());

    let with_bearer = [
        ("x-api-key", key.expose_secret()),
        ("authorization", "Bearer a.b.c"),
    ];
    let twice = [
        ("x-api-key", key.expose_secret()),
        ("authorization", scheme.as_str()),
    ];
    for headers in [with_bearer, twice] {
        let reply = server.get("/orders", &headers).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
        let challenge = reply.challenge.unwrap_or_default();
        assert!(
            challenge.contains(r#"error="invalid_request""#),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope() {
    let key = new_key();
    let store = MemoryStore::new([stored(&key, ACCOUNT, SCOPES)]).unwrap();
    let server = server_with(&store).await;

    let reply = server.get_with_key("/admin", key.expose_secret()).await;

    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    let challenge = reply.challenge.unwrap_or_default();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="admin:write""#), "{challenge}");
}

/// A store that cannot answer, like a database that is down.
struct Down;

impl KeyStore for Down {
    fn lookup<'a>(
        &'a self,
        _: &'a KeyId,
    ) -> BoxFuture<'a, Result<Option<Arc<StoredKey>>, StoreError>> {
        Box::pin(async { Err(StoreError::new("connection refused")) })
    }
}

#[tokio::test]
async fn store_failure_is_503_not_401() {
    let server = Server::start(ApiKeyAuthenticator::new(Down)).await;

    let reply = server
        .get_with_key("/whoami", new_key().expose_secret())
        .await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.challenge, None);
}
