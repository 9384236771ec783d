//! Discovery (OIDC and RFC 8414) and several trusted issuers behind one
//! `IssuerSet`, over real loopback HTTP, counting every request the issuers get.
#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_principal::{AuthLayer, Principal, Reason};
use tower_principal_jwt::{FetchError, IssuerSet, JwksCache, JwksCacheBuilder, JwtValidator};
use tower_principal_testing::{Discovery, JwksBehaviour, TestIssuer, TestServer};

fn app(issuers: IssuerSet) -> Router {
    let readiness = issuers.clone();
    Router::new()
        .route(
            "/whoami",
            get(|p: Principal| async move { p.subject().to_owned() }),
        )
        .layer(AuthLayer::new(issuers))
        .route(
            "/ready",
            get(move || async move {
                let readiness = readiness.readiness();
                (readiness.status_code(), axum::Json(readiness.to_json()))
            }),
        )
}

fn discovered(issuer: &TestIssuer, audience: &str) -> JwtValidator {
    discovered_with(issuer, audience, |b| b)
}

fn discovered_with(
    issuer: &TestIssuer,
    audience: &str,
    configure: impl FnOnce(JwksCacheBuilder) -> JwksCacheBuilder,
) -> JwtValidator {
    let keys = JwksCache::discover(issuer.issuer())
        .retry_interval(Duration::from_millis(20))
        .max_retry_interval(Duration::from_millis(200));
    let keys = configure(keys).build().unwrap();
    JwtValidator::builder(issuer.issuer())
        .audience(audience)
        .jwks(keys)
        .build()
        .unwrap()
}

/// No background refresher, a long retry interval: every fetch is the test's.
fn on_demand(builder: JwksCacheBuilder) -> JwksCacheBuilder {
    builder
        .background_refresh(false)
        .retry_interval(Duration::from_secs(30))
}

struct Rig {
    server: TestServer,
    client: reqwest::Client,
}

impl Rig {
    async fn start(validators: Vec<JwtValidator>) -> (Self, IssuerSet) {
        let set = validators
            .into_iter()
            .fold(IssuerSet::builder(), |b, v| b.issuer(v))
            .build()
            .unwrap();
        let server = TestServer::start(app(set.clone())).await.unwrap();
        let rig = Self {
            server,
            client: reqwest::Client::new(),
        };
        (rig, set)
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

    async fn ready(&self) -> (StatusCode, Value) {
        let response = self
            .client
            .get(self.server.url("/ready"))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

#[tokio::test]
async fn oidc_discovery_finds_the_jwks() {
    let issuer = TestIssuer::start().await.unwrap();
    let (rig, _) = Rig::start(vec![discovered(&issuer, "orders-api")]).await;

    assert_eq!(rig.status(&issuer.token().sign()).await, StatusCode::OK);
    assert_eq!(issuer.requests_to("/.well-known/openid-configuration"), 1);
    assert_eq!(issuer.metadata_requests(), 1);
    assert_eq!(issuer.jwks_requests(), 1);
}

#[tokio::test]
async fn rfc8414_fallback_inserts_the_well_known_segment_before_the_path() {
    let issuer = TestIssuer::start_at_path("/tenant-a").await.unwrap();
    issuer.set_discovery(Discovery::OAuth);
    assert!(issuer.issuer().ends_with("/tenant-a"));
    let (rig, _) = Rig::start(vec![discovered(&issuer, "orders-api")]).await;

    assert_eq!(rig.status(&issuer.token().sign()).await, StatusCode::OK);
    assert_eq!(
        issuer.requests_to("/tenant-a/.well-known/openid-configuration"),
        1,
        "OIDC first, answered 404"
    );
    assert_eq!(
        issuer.requests_to("/.well-known/oauth-authorization-server/tenant-a"),
        1
    );
    assert_eq!(issuer.requests_to("/tenant-a/jwks.json"), 1);
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_refused_and_no_jwks_is_fetched() {
    let issuer = TestIssuer::start().await.unwrap();
    issuer.set_metadata_issuer(Some("https://evil.example".to_owned()));
    let validator = discovered_with(&issuer, "orders-api", on_demand);
    let keys = validator.jwks().unwrap().clone();
    let (rig, _) = Rig::start(vec![validator]).await;

    assert_eq!(keys.refresh().await, Err(FetchError::IssuerMismatch));
    assert_eq!(
        rig.status(&issuer.token().sign()).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(issuer.jwks_requests(), 0);
    assert_eq!(issuer.metadata_requests(), 1, "the request was throttled");
}

#[tokio::test]
async fn a_failed_jwks_fetch_makes_the_next_one_discover_again() {
    let issuer = TestIssuer::start().await.unwrap();
    let validator = discovered_with(&issuer, "orders-api", on_demand);
    let keys = validator.jwks().unwrap().clone();
    assert_eq!(keys.refresh().await, Ok(3));
    assert_eq!((issuer.metadata_requests(), issuer.jwks_requests()), (1, 1));

    issuer.set_behaviour(JwksBehaviour::Status(500));
    assert_eq!(keys.refresh().await, Err(FetchError::Status(500)));
    assert_eq!((issuer.metadata_requests(), issuer.jwks_requests()), (1, 2));

    issuer.set_behaviour(JwksBehaviour::Normal);
    assert_eq!(keys.refresh().await, Ok(3));
    assert_eq!((issuer.metadata_requests(), issuer.jwks_requests()), (2, 3));
    assert_eq!(keys.jwks_uri().as_deref(), Some(issuer.jwks_uri()));
}

#[tokio::test]
async fn each_issuer_has_its_own_audiences_and_keys() {
    let a = TestIssuer::start().await.unwrap();
    let b = TestIssuer::start().await.unwrap();
    let (rig, _) = Rig::start(vec![
        discovered(&a, "orders-api"),
        discovered(&b, "partner-api"),
    ])
    .await;

    assert_eq!(rig.status(&a.token().sign()).await, StatusCode::OK);
    let for_partners = b.token().audience(&["partner-api"]).sign();
    assert_eq!(rig.status(&for_partners).await, StatusCode::OK);

    let b_for_orders = b.token().sign();
    assert_eq!(rig.status(&b_for_orders).await, StatusCode::UNAUTHORIZED);
    let a_signed_by_b = a.token().signed_by(b.key("rsa-1").unwrap()).sign();
    assert_eq!(rig.status(&a_signed_by_b).await, StatusCode::UNAUTHORIZED);
    assert_eq!((a.jwks_requests(), b.jwks_requests()), (1, 1));
}

#[tokio::test]
async fn token_from_an_untrusted_issuer_is_401_without_any_request() {
    let trusted = TestIssuer::start().await.unwrap();
    let attacker = TestIssuer::start().await.unwrap();
    let (rig, set) = Rig::start(vec![discovered(&trusted, "orders-api")]).await;

    let foreign = attacker.token().sign();
    let response = rig
        .client
        .get(rig.server.url("/whoami"))
        .bearer_auth(&foreign)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    let rejected = set.validate(&foreign, None).await.unwrap_err();
    assert_eq!(rejected.reason(), Reason::WrongIssuer);

    let without_iss = trusted.token().without_claim("iss").sign();
    assert_eq!(rig.status(&without_iss).await, StatusCode::UNAUTHORIZED);
    let look_alike = trusted
        .token()
        .claim("iss", json!(format!("{}/", trusted.issuer())))
        .sign();
    assert_eq!(rig.status(&look_alike).await, StatusCode::UNAUTHORIZED);

    assert_eq!(attacker.metadata_requests() + attacker.jwks_requests(), 0);
    assert_eq!(trusted.metadata_requests() + trusted.jwks_requests(), 0);
}

#[tokio::test]
async fn readiness_reports_each_issuer_until_all_have_keys() {
    let up = TestIssuer::start().await.unwrap();
    let down = TestIssuer::start().await.unwrap();
    down.stop().await;
    let (rig, set) = Rig::start(vec![
        discovered(&up, "orders-api"),
        discovered(&down, "orders-api"),
    ])
    .await;

    let readiness = set.wait_until_ready(Duration::from_millis(200)).await;
    assert!(!readiness.is_ready());
    let (status, body) = rig.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let by_issuer = |body: &Value, issuer: &str| {
        body["issuers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["issuer"] == issuer)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_issuer(&body, up.issuer())["ready"], true);
    assert_eq!(by_issuer(&body, up.issuer())["keys"], 3);
    assert_eq!(by_issuer(&body, down.issuer())["ready"], false);
    assert_eq!(rig.status(&up.token().sign()).await, StatusCode::OK);
    assert_eq!(
        rig.status(&down.token().sign()).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    down.restart().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while rig.ready().await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rig.status(&down.token().sign()).await, StatusCode::OK);
    assert_eq!((up.metadata_requests(), up.jwks_requests()), (1, 1));
    assert_eq!((down.metadata_requests(), down.jwks_requests()), (1, 1));
}
