//! The JWKS cache against a local issuer that misbehaves on command: outages,
//! slow and hostile answers, rotation under load, HTTP caching. Every test
//! counts the requests the issuer got.
#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::json;
use tower_principal::{AuthLayer, Principal, Reason};
use tower_principal_jwt::{FetchError, JwksCache, JwksCacheBuilder, JwtValidator};
use tower_principal_testing::{JwksBehaviour, SigningKey, TestIssuer, TestServer};

struct Rig {
    issuer: TestIssuer,
    cache: JwksCache,
    validator: JwtValidator,
    server: TestServer,
    client: reqwest::Client,
}

fn app(validator: JwtValidator) -> Router {
    Router::new()
        .route(
            "/whoami",
            get(|p: Principal| async move { p.subject().to_owned() }),
        )
        .layer(AuthLayer::new(validator))
}

impl Rig {
    async fn start(configure: impl FnOnce(JwksCacheBuilder) -> JwksCacheBuilder) -> Self {
        Self::with(TestIssuer::start().await.unwrap(), configure).await
    }

    async fn with(
        issuer: TestIssuer,
        configure: impl FnOnce(JwksCacheBuilder) -> JwksCacheBuilder,
    ) -> Self {
        let cache = configure(JwksCache::builder(issuer.jwks_uri()))
            .build()
            .unwrap();
        let validator = JwtValidator::builder(issuer.issuer())
            .audience("orders-api")
            .jwks(cache.clone())
            .build()
            .unwrap();
        let server = TestServer::start(app(validator.clone())).await.unwrap();
        Self {
            issuer,
            cache,
            validator,
            server,
            client: reqwest::Client::new(),
        }
    }

    async fn status(&self, token: &str) -> StatusCode {
        self.client
            .get(self.server.url("/whoami"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }

    fn token(&self, kid: &str) -> String {
        let key = self.issuer.key(kid).unwrap();
        self.issuer.token().signed_by(key).sign()
    }
}

/// No background refresher and a long retry interval: every fetch is one the
/// test caused.
fn on_demand(builder: JwksCacheBuilder) -> JwksCacheBuilder {
    builder
        .background_refresh(false)
        .retry_interval(Duration::from_secs(30))
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn issuer_down_at_start_is_503_until_it_comes_up() {
    let issuer = TestIssuer::start().await.unwrap();
    issuer.stop().await;
    let rig = Rig::with(issuer, |b| {
        b.retry_interval(Duration::from_millis(20))
            .max_retry_interval(Duration::from_millis(40))
    })
    .await;

    let waited = rig.cache.wait_until_ready(Duration::from_millis(150)).await;
    assert!(
        matches!(waited, Err(FetchError::Transport(_))),
        "{waited:?}"
    );
    assert!(!rig.cache.is_ready());
    let token = rig.token("rsa-1");
    assert_eq!(rig.status(&token).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rig.issuer.jwks_requests(), 0);

    rig.issuer.restart().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while rig.status(&token).await != StatusCode::OK {
        assert!(Instant::now() < deadline, "keys never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rig.issuer.jwks_requests(), 1, "one successful fetch");
    assert_eq!(rig.cache.status().consecutive_failures, 0);
}

#[tokio::test]
async fn issuer_down_after_start_serves_stale_keys_until_the_maximum_staleness() {
    let rig = Rig::start(|b| {
        b.ttl(Duration::from_millis(100))
            .max_staleness(Duration::from_millis(500))
            .retry_interval(Duration::from_millis(20))
            .max_retry_interval(Duration::from_millis(40))
    })
    .await;
    assert_eq!(
        rig.cache.wait_until_ready(Duration::from_secs(2)).await,
        Ok(3)
    );
    let fetched = Instant::now();
    rig.issuer.stop().await;

    tokio::time::sleep(Duration::from_millis(150)).await;
    let token = rig.token("ec-1");
    assert_eq!(rig.status(&token).await, StatusCode::OK, "stale keys serve");
    let status = rig.cache.status();
    assert!(status.ready && status.stale, "{status:?}");
    assert!(status.consecutive_failures >= 1, "{status:?}");

    tokio::time::sleep(
        (fetched + Duration::from_millis(750)).saturating_duration_since(Instant::now()),
    )
    .await;
    assert_eq!(rig.status(&token).await, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!rig.cache.is_ready());
    assert_eq!(
        rig.issuer.jwks_requests(),
        1,
        "only the fetch before the outage"
    );
}

#[tokio::test]
async fn issuer_slower_than_the_timeout_is_503_and_retried_after_the_interval() {
    let rig = Rig::start(|b| on_demand(b).fetch_timeout(Duration::from_millis(200))).await;
    rig.issuer
        .set_behaviour(JwksBehaviour::Delay(Duration::from_secs(3)));

    let token = rig.token("rsa-1");
    assert_eq!(rig.status(&token).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rig.cache.status().last_error, Some(FetchError::Timeout));
    assert_eq!(rig.issuer.jwks_requests(), 1);

    // Within the retry interval, requests do not fetch again.
    rig.issuer.set_behaviour(JwksBehaviour::Normal);
    assert_eq!(rig.status(&token).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rig.issuer.jwks_requests(), 1);

    assert_eq!(rig.cache.refresh().await, Ok(3));
    assert_eq!(rig.status(&token).await, StatusCode::OK);
    assert_eq!(rig.issuer.jwks_requests(), 2);
}

#[tokio::test]
async fn unusable_answers_are_refused_with_one_request_each() {
    let elsewhere = TestIssuer::start().await.unwrap();
    let private_only = SigningKey::generate(Algorithm::ES256, "ec-private").unwrap();
    let mut private_jwk = private_only.jwk().clone();
    private_jwk["d"] = json!("c2VjcmV0LXNjYWxhcg");
    let cases = [
        (
            JwksBehaviour::Redirect(elsewhere.jwks_uri().to_owned()),
            FetchError::Redirected,
        ),
        (JwksBehaviour::Html, FetchError::InvalidDocument),
        (JwksBehaviour::Status(500), FetchError::Status(500)),
        (
            JwksBehaviour::Huge(10 * 1024 * 1024),
            FetchError::TooLarge(256 * 1024),
        ),
        (
            JwksBehaviour::Body(json!({ "keys": [private_jwk] }).to_string()),
            FetchError::NoUsableKeys,
        ),
    ];

    for (behaviour, expected) in cases {
        let name = format!("{behaviour:?}");
        let rig = Rig::start(on_demand).await;
        rig.issuer.set_behaviour(behaviour);
        assert_eq!(rig.cache.refresh().await, Err(expected), "{name:.40}");
        let token = rig.token("rsa-1");
        assert_eq!(
            rig.status(&token).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "{name:.40}"
        );
        assert_eq!(rig.issuer.jwks_requests(), 1, "{name:.40}");
    }
    assert_eq!(elsewhere.jwks_requests(), 0, "the redirect was followed");
}

#[tokio::test]
async fn private_members_duplicate_kids_and_unknown_types_are_skipped_the_rest_works() {
    let rig = Rig::start(on_demand).await;
    let private = SigningKey::generate(Algorithm::ES256, "ec-private").unwrap();
    let mut private_jwk = private.jwk().clone();
    private_jwk["d"] = json!("c2VjcmV0LXNjYWxhcg");
    rig.issuer.publish_raw_entry(private_jwk);
    let impostor = SigningKey::generate(Algorithm::RS256, "rsa-1").unwrap();
    rig.issuer.publish_raw_entry(impostor.jwk().clone());
    rig.issuer
        .publish_raw_entry(json!({ "kty": "PQC", "kid": "pq-1", "x": "AAAA" }));

    for kid in ["rsa-1", "ec-1", "ed-1"] {
        assert_eq!(rig.status(&rig.token(kid)).await, StatusCode::OK, "{kid}");
    }
    assert_eq!(rig.issuer.jwks_requests(), 1);
    assert!(!rig.cache.contains_kid("ec-private") && !rig.cache.contains_kid("pq-1"));

    // The first `rsa-1` entry wins; the impostor's signature does not verify.
    let forged = rig.issuer.token().signed_by(impostor).sign();
    assert_eq!(rig.status(&forged).await, StatusCode::UNAUTHORIZED);
    assert_eq!(rig.issuer.jwks_requests(), 1);

    // An unknown kid: one refresh, then the key is still refused.
    let with_private = rig.issuer.token().signed_by(private).sign();
    assert_eq!(rig.status(&with_private).await, StatusCode::UNAUTHORIZED);
    assert_eq!(rig.issuer.jwks_requests(), 2);
}

#[tokio::test]
async fn rotation_while_200_requests_run_fails_none_and_fetches_once() {
    let rig = Rig::start(|b| b.refresh_cooldown(Duration::from_secs(30))).await;
    assert_eq!(rig.status(&rig.token("rsa-1")).await, StatusCode::OK);
    assert_eq!(rig.issuer.jwks_requests(), 1);

    let rotated = SigningKey::generate(Algorithm::RS256, "rsa-2").unwrap();
    rig.issuer.add_key(rotated.clone());
    rig.issuer.unpublish_key("rsa-1").unwrap();
    let new_token = rig.issuer.token().signed_by(rotated).sign();
    let steady_token = rig.token("ec-1");

    let requests = (0..200).map(|i| {
        let token = if i % 2 == 0 {
            &new_token
        } else {
            &steady_token
        };
        rig.status(token)
    });
    let statuses = futures_util::future::join_all(requests).await;
    let failed = statuses.iter().filter(|s| **s != StatusCode::OK).count();
    assert_eq!(failed, 0, "{statuses:?}");
    assert_eq!(rig.issuer.jwks_requests(), 2, "exactly one refresh");
}

#[tokio::test]
async fn removed_kid_is_rejected_once_the_background_refresh_ran() {
    let rig = Rig::start(|b| b.ttl(Duration::from_secs(1))).await;
    let old_token = rig.token("rsa-1");
    assert_eq!(rig.status(&old_token).await, StatusCode::OK);

    let rotated = SigningKey::generate(Algorithm::RS256, "rsa-2").unwrap();
    rig.issuer.add_key(rotated.clone());
    rig.issuer.unpublish_key("rsa-1").unwrap();
    assert_eq!(
        rig.status(&old_token).await,
        StatusCode::OK,
        "until refreshed"
    );
    assert_eq!(rig.issuer.jwks_requests(), 1);

    eventually("the background refresh", || {
        !rig.cache.contains_kid("rsa-1")
    })
    .await;
    assert_eq!(rig.issuer.jwks_requests(), 2);
    let new_token = rig.issuer.token().signed_by(rotated).sign();
    assert_eq!(rig.status(&new_token).await, StatusCode::OK);
    assert_eq!(rig.issuer.jwks_requests(), 2, "the refresher fetched ahead");

    // The removed kid is now unknown: one unknown-kid refresh, then refused.
    assert_eq!(rig.status(&old_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(rig.status(&old_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(rig.issuer.jwks_requests(), 3);
}

/// A token naming `kid`, with a signature that is never checked: the key
/// lookup fails first.
fn unknown_kid_token(rig: &Rig, kid: &str) -> String {
    let header = json!({ "alg": "RS256", "kid": kid, "typ": "at+jwt" });
    let claims = rig.issuer.token().claims();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

#[tokio::test]
async fn ten_thousand_random_kids_cause_one_fetch_per_cooldown() {
    let rig = Rig::start(|b| b.refresh_cooldown(Duration::from_secs(30))).await;
    assert_eq!(rig.status(&rig.token("rsa-1")).await, StatusCode::OK);

    let seed = std::process::id() as u64 ^ tower_principal_testing::unix_now() as u64;
    let tokens: Vec<String> = (0..10_000u64)
        .map(|i| {
            let kid = format!("{:016x}", (seed ^ i).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            unknown_kid_token(&rig, &kid)
        })
        .collect();
    for chunk in tokens.chunks(500) {
        let checks = chunk
            .iter()
            .map(|token| rig.validator.validate(token, None));
        for result in futures_util::future::join_all(checks).await {
            assert_eq!(result.unwrap_err().reason(), Reason::UnknownKey);
        }
    }
    assert_eq!(rig.issuer.jwks_requests(), 2, "one refresh for 10 000 kids");

    for token in &tokens[..20] {
        assert_eq!(rig.status(token).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(rig.status(&rig.token("ed-1")).await, StatusCode::OK);
    assert_eq!(rig.issuer.jwks_requests(), 2);
}

#[tokio::test]
async fn cache_control_max_age_sets_the_lifetime() {
    let rig = Rig::start(|b| {
        b.ttl(Duration::from_secs(600))
            .min_ttl(Duration::from_millis(10))
            .max_ttl(Duration::from_secs(3600))
    })
    .await;
    rig.issuer.set_cache_control(Some("public, max-age=1"));
    assert_eq!(rig.cache.refresh().await, Ok(3));

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.status(&rig.token("rsa-1")).await, StatusCode::OK);
    assert_eq!(rig.issuer.jwks_requests(), 1, "fresh for a second");

    // Refreshed in the background a quarter of the lifetime early.
    // The server counts the request before the client has stored the answer:
    // wait for both.
    eventually("the refresh after max-age", || {
        rig.issuer.jwks_requests() == 2 && rig.cache.status().age < Some(Duration::from_millis(700))
    })
    .await;
    assert!(!rig.cache.status().stale);
    assert_eq!(rig.status(&rig.token("rsa-1")).await, StatusCode::OK);
}

#[tokio::test]
async fn cache_control_max_age_is_clamped_to_the_bounds() {
    let rig = Rig::start(|b| {
        b.ttl(Duration::from_secs(600))
            .min_ttl(Duration::from_millis(10))
            .max_ttl(Duration::from_millis(400))
    })
    .await;
    rig.issuer.set_cache_control(Some("max-age=86400"));
    assert_eq!(rig.cache.refresh().await, Ok(3));
    assert_eq!(rig.issuer.jwks_requests(), 1);

    // Without the clamp the keys would be fresh for a day (or the 10 min ttl).
    eventually("the refresh after max_ttl", || {
        rig.issuer.jwks_requests() == 2
    })
    .await;
    assert_eq!(rig.status(&rig.token("ec-1")).await, StatusCode::OK);
}

#[tokio::test]
async fn etag_and_304_keep_the_keys_and_count_as_a_refresh() {
    let rig = Rig::start(|b| on_demand(b).ttl(Duration::from_millis(300))).await;
    rig.issuer.set_etag(true);
    assert_eq!(rig.cache.refresh().await, Ok(3));
    assert_eq!(rig.issuer.not_modified_responses(), 0);

    // Expired: the request is served from the old keys, a conditional
    // refresh runs in the background and is answered 304.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(rig.status(&rig.token("rsa-1")).await, StatusCode::OK);
    // The server counts the 304 before the client has processed it: wait for both.
    eventually("the 304", || {
        rig.issuer.not_modified_responses() == 1 && !rig.cache.status().stale
    })
    .await;
    assert_eq!(rig.issuer.jwks_requests(), 2);
    let status = rig.cache.status();
    assert!(!status.stale && status.keys == 3, "{status:?}");
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(rig.status(&rig.token("ed-1")).await, StatusCode::OK);
    assert_eq!(rig.issuer.jwks_requests(), 2);

    // A changed set gets a new ETag and a full answer.
    let rotated = SigningKey::generate(Algorithm::ES256, "ec-2").unwrap();
    rig.issuer.add_key(rotated.clone());
    tokio::time::sleep(Duration::from_millis(350)).await;
    let token = rig.issuer.token().signed_by(rotated).sign();
    assert_eq!(rig.status(&token).await, StatusCode::OK);
    assert_eq!(rig.issuer.jwks_requests(), 3);
    assert_eq!(rig.issuer.not_modified_responses(), 1);
}

#[tokio::test]
async fn dropping_the_cache_stops_its_refresher() {
    let issuer = TestIssuer::start().await.unwrap();
    let cache = JwksCache::builder(issuer.jwks_uri())
        .ttl(Duration::from_millis(40))
        .build()
        .unwrap();
    assert_eq!(cache.refresh().await, Ok(3));
    eventually("background refreshes", || issuer.jwks_requests() >= 3).await;

    drop(cache);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after_drop = issuer.jwks_requests();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        issuer.jwks_requests(),
        after_drop,
        "the refresher still runs"
    );
}

// The refresher's first fetch and the waiter's race: the waiter may find no
// keys, the refresher's fetch then finishes, and only then does the waiter ask
// for a fetch. Many fresh caches on two worker threads make that window likely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_at_start_up_beside_the_refresher_fetches_once() {
    let issuer = TestIssuer::start().await.unwrap();
    let rounds = 100;
    for round in 1..=rounds {
        let cache = JwksCache::builder(issuer.jwks_uri()).build().unwrap();
        assert_eq!(cache.wait_until_ready(Duration::from_secs(5)).await, Ok(3));
        // A request for a key right after start-up must not fetch again either.
        let validator = JwtValidator::builder(issuer.issuer())
            .audience("orders-api")
            .jwks(cache.clone())
            .build()
            .unwrap();
        assert!(
            validator
                .validate(&issuer.token().sign(), None)
                .await
                .is_ok()
        );
        assert_eq!(issuer.jwks_requests(), round, "round {round}");
    }
}
