//! The verified-token cache against a real issuer over loopback.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::time::Duration;

use tower_principal::{ErrorKind, Reason};
use tower_principal_jwt::{CachingValidator, JwksCache, JwtValidator};
use tower_principal_testing::{JwksBehaviour, TestIssuer, unix_now};

struct Setup {
    issuer: TestIssuer,
    jwks: JwksCache,
    cached: CachingValidator,
}

async fn setup(max_ttl: Duration) -> Setup {
    let issuer = TestIssuer::start().await.unwrap();
    let jwks = JwksCache::builder(issuer.jwks_uri()).build().unwrap();
    jwks.refresh().await.unwrap();
    let validator = JwtValidator::builder(issuer.issuer())
        .audience("orders-api")
        .leeway(Duration::ZERO)
        .jwks(jwks.clone())
        .build()
        .unwrap();
    let cached = CachingValidator::builder(validator)
        .max_ttl(max_ttl)
        .build()
        .unwrap();
    Setup {
        issuer,
        jwks,
        cached,
    }
}

fn reason(error: &tower_principal::AuthError) -> Reason {
    assert_eq!(error.kind(), ErrorKind::InvalidToken);
    error.reason()
}

#[tokio::test]
async fn repeat_token_is_served_from_cache() {
    let s = setup(Duration::from_secs(60)).await;
    let token = s.issuer.token().sign();

    let first = s.cached.validate(&token, None).await.unwrap();
    let second = s.cached.validate(&token, None).await.unwrap();

    assert_eq!(second.subject(), first.subject());
    let stats = s.cached.stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
    assert_eq!(s.issuer.jwks_requests(), 1);
}

#[tokio::test]
async fn distinct_tokens_do_not_share_an_entry() {
    let s = setup(Duration::from_secs(60)).await;
    let alice = s.issuer.token().subject("alice").sign();
    let bob = s.issuer.token().subject("bob").sign();

    s.cached.validate(&alice, None).await.unwrap();
    let user = s.cached.validate(&bob, None).await.unwrap();

    assert_eq!(user.subject(), "bob");
    assert_eq!(s.cached.stats().hits, 0);
}

#[tokio::test]
async fn rejected_tokens_are_not_cached() {
    let s = setup(Duration::from_secs(60)).await;
    let foreign = s.issuer.token().audience(&["billing-api"]).sign();

    for _ in 0..2 {
        let error = s.cached.validate(&foreign, None).await.unwrap_err();
        assert_eq!(reason(&error), Reason::WrongAudience);
    }
    assert_eq!(s.cached.stats().hits, 0);
}

#[tokio::test]
async fn cached_token_stops_working_at_exp() {
    let s = setup(Duration::from_secs(60)).await;
    let exp = unix_now() + 2;
    let token = s.issuer.token().claim("exp", serde_json::json!(exp)).sign();
    s.cached.validate(&token, None).await.unwrap();
    s.cached.validate(&token, None).await.unwrap();
    assert_eq!(s.cached.stats().hits, 1);

    // Past `exp` (leeway zero): the entry must not answer any more.
    let wait = (exp + 1 - unix_now()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait * 1000 + 100)).await;
    let error = s.cached.validate(&token, None).await.unwrap_err();

    assert_eq!(reason(&error), Reason::Expired);
    assert_eq!(s.cached.stats().hits, 1);
}

#[tokio::test]
async fn entries_live_at_most_max_ttl() {
    let s = setup(Duration::from_millis(300)).await;
    let token = s.issuer.token().sign();
    s.cached.validate(&token, None).await.unwrap();

    tokio::time::sleep(Duration::from_millis(600)).await;
    s.cached.validate(&token, None).await.unwrap();

    let stats = s.cached.stats();
    assert_eq!((stats.hits, stats.misses), (0, 2));
}

#[tokio::test]
async fn removed_key_evicts_its_cached_tokens() {
    let s = setup(Duration::from_secs(60)).await;
    let ec = s.issuer.key("ec-1").unwrap();
    let token = s.issuer.token().signed_by(ec).sign();
    let other = s.issuer.token().sign(); // rsa-1, stays published
    s.cached.validate(&token, None).await.unwrap();
    s.cached.validate(&other, None).await.unwrap();

    s.issuer.unpublish_key("ec-1").unwrap();
    s.jwks.refresh().await.unwrap();
    assert!(!s.jwks.contains_kid("ec-1"));

    let error = s.cached.validate(&token, None).await.unwrap_err();
    assert_eq!(reason(&error), Reason::UnknownKey);
    s.cached.validate(&other, None).await.unwrap();
    assert_eq!(s.cached.stats().hits, 1, "only the rsa-1 token is a hit");
}

#[tokio::test]
async fn keys_past_max_staleness_stop_cached_tokens() {
    let issuer = TestIssuer::start().await.unwrap();
    let jwks = JwksCache::builder(issuer.jwks_uri())
        .ttl(Duration::from_millis(200))
        .min_ttl(Duration::from_millis(100))
        .max_staleness(Duration::from_millis(600))
        .build()
        .unwrap();
    jwks.refresh().await.unwrap();
    let validator = JwtValidator::builder(issuer.issuer())
        .audience("orders-api")
        .jwks(jwks.clone())
        .build()
        .unwrap();
    let cached = CachingValidator::builder(validator).build().unwrap();
    let token = issuer.token().sign();
    cached.validate(&token, None).await.unwrap();

    // The issuer goes down; once the keys are too stale the validator answers
    // "unavailable", and the cache must not keep answering for it.
    issuer.set_behaviour(JwksBehaviour::Status(500));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!jwks.is_ready());
    let error = cached.validate(&token, None).await.unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(cached.stats().hits, 0);
}

#[tokio::test]
async fn evict_token_drops_the_entry() {
    let s = setup(Duration::from_secs(60)).await;
    let token = s.issuer.token().sign();
    s.cached.validate(&token, None).await.unwrap();

    s.cached.evict_token(&token).await;
    s.cached.validate(&token, None).await.unwrap();

    let stats = s.cached.stats();
    assert_eq!((stats.hits, stats.misses), (0, 2));
}

#[tokio::test]
async fn evict_where_spares_other_subjects() {
    let s = setup(Duration::from_secs(60)).await;
    let alice = s.issuer.token().subject("alice").sign();
    let bob = s.issuer.token().subject("bob").sign();
    s.cached.validate(&alice, None).await.unwrap();
    s.cached.validate(&bob, None).await.unwrap();

    s.cached.evict_where(|user| user.subject() == "alice");
    s.cached.validate(&alice, None).await.unwrap();
    s.cached.validate(&bob, None).await.unwrap();

    let stats = s.cached.stats();
    assert_eq!((stats.hits, stats.misses), (1, 3), "only bob is a hit");
}

#[tokio::test]
async fn certificate_bound_tokens_bypass_the_cache() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use tower_principal::ClientCertificate;

    let s = setup(Duration::from_secs(60)).await;
    let certificate = ClientCertificate::new(vec![0x30, 0x03], [7; 32], vec![], vec![], None);
    let thumbprint = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let token = s
        .issuer
        .token()
        .claim("cnf", serde_json::json!({ "x5t#S256": thumbprint }))
        .sign();

    // With the bound certificate: accepted every time, never from the cache.
    for _ in 0..2 {
        s.cached.validate(&token, Some(&certificate)).await.unwrap();
    }
    assert_eq!(s.cached.stats().hits, 0);

    // Without it the binding is checked again and the token refused.
    let error = s.cached.validate(&token, None).await.unwrap_err();
    assert_eq!(reason(&error), Reason::BindingMismatch);
}

#[tokio::test]
async fn tokens_without_kid_bypass_the_cache() {
    let s = setup(Duration::from_secs(60)).await;
    let token = s
        .issuer
        .token()
        .header("kid", serde_json::Value::Null)
        .sign();
    s.cached.validate(&token, None).await.unwrap();
    s.cached.validate(&token, None).await.unwrap();
    assert_eq!(s.cached.stats().hits, 0);
}

#[tokio::test]
async fn works_as_the_layer_authenticator() {
    use axum::{Router, body::Body, routing::get};
    use http::{Request, StatusCode};
    use tower::ServiceExt;
    use tower_principal::{AuthLayer, Principal, RequireScopesLayer};

    let s = setup(Duration::from_secs(60)).await;
    let app = Router::new()
        .route(
            "/orders",
            get(|p: Principal| async move { p.subject().to_owned() }),
        )
        .route_layer(RequireScopesLayer::all(["orders:read"]))
        .layer(AuthLayer::new(s.cached.clone()));
    let call = |token: String| {
        let request = Request::get("/orders")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request)
    };

    let token = s.issuer.token().sign();
    assert_eq!(call(token.clone()).await.unwrap().status(), StatusCode::OK);
    assert_eq!(call(token).await.unwrap().status(), StatusCode::OK);
    // Scopes are still checked per request, cached or not.
    let profile = s.issuer.token().scope("profile").sign();
    for _ in 0..2 {
        let status = call(profile.clone()).await.unwrap().status();
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    assert_eq!(s.cached.stats().hits, 2);
}

#[tokio::test]
async fn revocation_check_refuses_cached_and_fresh_tokens() {
    use std::sync::{Arc, Mutex};

    let issuer = TestIssuer::start().await.unwrap();
    let jwks = JwksCache::builder(issuer.jwks_uri()).build().unwrap();
    let validator = JwtValidator::builder(issuer.issuer())
        .audience("orders-api")
        .jwks(jwks)
        .build()
        .unwrap();
    let denied: Arc<Mutex<Vec<String>>> = Arc::default();
    let list = denied.clone();
    let cached = CachingValidator::builder(validator)
        .revocation_check(move |user| {
            let list = list.lock().unwrap();
            user.jwt_id()
                .is_some_and(|jti| list.iter().any(|d| d == jti))
        })
        .build()
        .unwrap();

    let stolen = issuer.token().claim("jti", serde_json::json!("t-1")).sign();
    let other = issuer.token().claim("jti", serde_json::json!("t-2")).sign();
    cached.validate(&stolen, None).await.unwrap();
    cached.validate(&other, None).await.unwrap();

    denied.lock().unwrap().push("t-1".to_owned());
    let hit = cached.validate(&stolen, None).await.unwrap_err();
    assert_eq!(reason(&hit), Reason::Revoked, "refused on a cache hit");
    let fresh = cached.validate(&stolen, None).await.unwrap_err();
    assert_eq!(
        reason(&fresh),
        Reason::Revoked,
        "and after eviction, when verified afresh"
    );
    assert!(
        cached.validate(&other, None).await.is_ok(),
        "other tokens unaffected"
    );
}
