//! JWT bearer authentication end to end: a real issuer serving its JWKS over
//! loopback HTTP, the real `AuthLayer` in an axum server, and reqwest as client.
#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_principal::{AuthLayer, Principal, RequireScopesLayer};
use tower_principal_jwt::{JwksCache, JwtValidator, TypPolicy};
use tower_principal_testing::{JwksBehaviour, SigningKey, TestIssuer, TestServer, encode_raw};

const REALM: &str = "orders";
const INVALID_TOKEN: &str = r#"Bearer realm="orders", error="invalid_token", error_description="the credential is invalid""#;

struct Harness {
    issuer: TestIssuer,
    server: TestServer,
    client: reqwest::Client,
}

async fn whoami(principal: Principal) -> Json<Value> {
    let user = principal.as_user();
    Json(json!({
        "kind": principal.kind(),
        "subject": principal.subject(),
        "scopes": principal.scopes(),
        "issuer": user.map(|u| u.issuer()),
        "audiences": user.map(|u| u.audiences()),
        "actor": user.and_then(|u| u.actor()),
    }))
}

async fn maybe(principal: Option<Principal>) -> String {
    principal.map_or("anonymous".to_owned(), |p| p.subject().to_owned())
}

fn app(validator: JwtValidator) -> Router {
    let layer = AuthLayer::new(validator).with_realm(REALM).unwrap();
    let orders = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .route_layer(RequireScopesLayer::all(["orders:read"]));
    let optional = Router::new()
        .route("/optional", get(maybe))
        .layer(layer.clone().optional());
    Router::new()
        .route("/whoami", get(whoami))
        .merge(orders)
        .layer(layer)
        .merge(optional)
}

impl Harness {
    async fn start() -> Self {
        Self::with(|cache| cache, |validator| validator).await
    }

    async fn with(
        cache: impl FnOnce(
            tower_principal_jwt::JwksCacheBuilder,
        ) -> tower_principal_jwt::JwksCacheBuilder,
        validator: impl FnOnce(
            tower_principal_jwt::JwtValidatorBuilder,
        ) -> tower_principal_jwt::JwtValidatorBuilder,
    ) -> Self {
        let issuer = TestIssuer::start().await.unwrap();
        let keys =
            cache(JwksCache::builder(issuer.jwks_uri()).refresh_cooldown(Duration::from_secs(30)))
                .build()
                .unwrap();
        let validator = validator(
            JwtValidator::builder(issuer.issuer())
                .audience("orders-api")
                .jwks(keys),
        )
        .build()
        .unwrap();
        let server = TestServer::start(app(validator)).await.unwrap();
        Self {
            issuer,
            server,
            client: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.server.url(path))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
    }

    async fn warm(&self) {
        let token = self.issuer.token().sign();
        assert_eq!(self.get("/whoami", &token).await.status(), StatusCode::OK);
    }
}

fn challenge(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap())
        .unwrap_or("<none>")
}

async fn assert_invalid_token(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&response), INVALID_TOKEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": "invalid_token", "error_description": "the credential is invalid" })
    );
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn valid_tokens_of_each_key_type_are_200_with_the_user_principal() {
    let h = Harness::start().await;
    for kid in ["rsa-1", "ec-1", "ed-1"] {
        let token = h
            .issuer
            .token()
            .signed_by(h.issuer.key(kid).unwrap())
            .scope("orders:read orders:write")
            .sign();
        let response = h.get("/whoami", &token).await;
        assert_eq!(response.status(), StatusCode::OK, "{kid}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["kind"], "user");
        assert_eq!(body["subject"], "alice");
        assert_eq!(body["scopes"], json!(["orders:read", "orders:write"]));
        assert_eq!(body["issuer"], h.issuer.issuer());
        assert_eq!(body["audiences"], json!(["orders-api"]));
    }
    assert_eq!(h.issuer.jwks_requests(), 1, "one fetch serves every key");
}

#[tokio::test]
async fn no_credentials_is_401_with_a_bare_challenge() {
    let h = Harness::start().await;
    let response = h.client.get(h.server.url("/whoami")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&response), r#"Bearer realm="orders""#);
}

#[tokio::test]
async fn token_in_query_string_is_ignored() {
    let h = Harness::start().await;
    let token = h.issuer.token().sign();
    let url = h.server.url(&format!("/whoami?access_token={token}"));
    let response = h.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&response), r#"Bearer realm="orders""#);
}

#[tokio::test]
async fn scheme_is_case_insensitive() {
    let h = Harness::start().await;
    let token = h.issuer.token().sign();
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let response = h
            .client
            .get(h.server.url("/whoami"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn two_authorization_headers_are_400() {
    let h = Harness::start().await;
    let token = h.issuer.token().sign();
    let response = h
        .client
        .get(h.server.url("/whoami"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        challenge(&response),
        r#"Bearer realm="orders", error="invalid_request", error_description="the request is malformed or carries more than one credential""#
    );
}

#[tokio::test]
async fn expired_beyond_leeway_is_401_within_leeway_is_200() {
    let h = Harness::start().await;
    assert_invalid_token(
        h.get("/whoami", &h.issuer.token().expires_in(-120).sign())
            .await,
    )
    .await;
    let within = h
        .get("/whoami", &h.issuer.token().expires_in(-30).sign())
        .await;
    assert_eq!(within.status(), StatusCode::OK);
}

#[tokio::test]
async fn nbf_in_the_future_beyond_leeway_is_401() {
    let h = Harness::start().await;
    let now = tower_principal_testing::unix_now();
    let token = h.issuer.token().claim("nbf", json!(now + 300)).sign();
    assert_invalid_token(h.get("/whoami", &token).await).await;
    let token = h.issuer.token().claim("nbf", json!(now + 30)).sign();
    assert_eq!(h.get("/whoami", &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn fractional_numeric_dates_are_accepted_strings_are_not() {
    let h = Harness::start().await;
    let now = tower_principal_testing::unix_now() as f64;
    let token = h.issuer.token().claim("exp", json!(now + 600.5)).sign();
    assert_eq!(h.get("/whoami", &token).await.status(), StatusCode::OK);
    let token = h
        .issuer
        .token()
        .claim("exp", json!((now as i64 + 600).to_string()))
        .sign();
    assert_invalid_token(h.get("/whoami", &token).await).await;
}

#[tokio::test]
async fn wrong_or_missing_registered_claims_are_401() {
    let h = Harness::start().await;
    let cases = [
        (
            "wrong iss",
            h.issuer
                .token()
                .claim("iss", json!("https://evil.example/")),
        ),
        ("missing iss", h.issuer.token().without_claim("iss")),
        ("missing aud", h.issuer.token().without_claim("aud")),
        (
            "wrong aud",
            h.issuer.token().audience(&["reporting-service"]),
        ),
        ("empty aud list", h.issuer.token().claim("aud", json!([]))),
        ("missing sub", h.issuer.token().without_claim("sub")),
        ("empty sub", h.issuer.token().subject("")),
        ("missing exp", h.issuer.token().without_claim("exp")),
        (
            "scope of wrong type",
            h.issuer.token().claim("scope", json!(["orders:read"])),
        ),
    ];
    for (name, token) in cases {
        let response = h.get("/whoami", &token.sign()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(challenge(&response), INVALID_TOKEN, "{name}");
    }
}

#[tokio::test]
async fn one_matching_audience_in_an_array_is_enough() {
    let h = Harness::start().await;
    let token = h.issuer.token().audience(&["other", "orders-api"]).sign();
    assert_eq!(h.get("/whoami", &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn alg_none_is_401_in_any_case() {
    let h = Harness::start().await;
    let claims = h.issuer.token().claims();
    for alg in ["none", "None", "NONE"] {
        let header = json!({ "alg": alg, "typ": "JWT" });
        let unsigned = format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()));
        assert_invalid_token(h.get("/whoami", &unsigned).await).await;
        let with_junk = format!("{unsigned}{}", b64("sig"));
        assert_invalid_token(h.get("/whoami", &with_junk).await).await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_401() {
    let h = Harness::start().await;
    let rsa = h.issuer.key("rsa-1").unwrap();
    let claims = h.issuer.token().claims();
    for secret in [
        rsa.public_key_pem().as_bytes().to_vec(),
        rsa.jwk()["n"].to_string().into_bytes(),
    ] {
        let header = json!({ "alg": "HS256", "kid": "rsa-1", "typ": "JWT" });
        let token = encode_raw(
            &header,
            &claims,
            &EncodingKey::from_secret(&secret).unwrap(),
            Algorithm::HS256,
        );
        assert_invalid_token(h.get("/whoami", &token).await).await;
    }
}

#[tokio::test]
async fn embedded_jwk_header_with_an_attacker_key_is_401() {
    let h = Harness::start().await;
    let attacker = SigningKey::generate(Algorithm::ES256, "ec-1").unwrap();
    for kid in ["ec-1", "attacker"] {
        let token = h
            .issuer
            .token()
            .header("jwk", attacker.jwk().clone())
            .header("kid", json!(kid))
            .signed_by(attacker.clone())
            .sign();
        assert_invalid_token(h.get("/whoami", &token).await).await;
    }
}

#[tokio::test]
async fn jku_and_x5u_pointing_at_another_server_are_never_fetched() {
    let h = Harness::start().await;
    let attacker = TestIssuer::start().await.unwrap();
    let token = h
        .issuer
        .token()
        .header("jku", json!(attacker.jwks_uri()))
        .header("x5u", json!(attacker.jwks_uri()))
        .signed_by(attacker.key("rsa-1").unwrap())
        .header("kid", json!("attacker-kid"))
        .sign();
    assert_invalid_token(h.get("/whoami", &token).await).await;
    assert_eq!(
        attacker.jwks_requests(),
        0,
        "the attacker's server got a request"
    );
}

#[tokio::test]
async fn unknown_crit_is_401() {
    let h = Harness::start().await;
    for crit in [json!(["exp"]), json!(["urn:example:unknown"]), json!([])] {
        let token = h
            .issuer
            .token()
            .header("crit", crit.clone())
            .header("exp", json!(1))
            .header("urn:example:unknown", json!(true))
            .sign();
        assert_invalid_token(h.get("/whoami", &token).await).await;
    }
}

#[tokio::test]
async fn es256_signature_of_zero_bytes_is_401() {
    let h = Harness::start().await;
    let valid = h
        .issuer
        .token()
        .signed_by(h.issuer.key("ec-1").unwrap())
        .sign();
    let (signed, _) = valid.rsplit_once('.').unwrap();
    let forged = format!("{signed}.{}", b64([0u8; 64]));
    assert_invalid_token(h.get("/whoami", &forged).await).await;
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` of a raw P-256 signature.
fn der_signature(raw: &[u8]) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let bytes = &bytes[bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1)..];
        let mut out = vec![0x02];
        if bytes[0] & 0x80 != 0 {
            out.push(bytes.len() as u8 + 1);
            out.push(0);
        } else {
            out.push(bytes.len() as u8);
        }
        out.extend_from_slice(bytes);
        out
    };
    let (r, s) = raw.split_at(32);
    let body = [integer(r), integer(s)].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

#[tokio::test]
async fn der_encoded_es256_signature_is_401() {
    let h = Harness::start().await;
    let valid = h
        .issuer
        .token()
        .signed_by(h.issuer.key("ec-1").unwrap())
        .sign();
    assert_eq!(h.get("/whoami", &valid).await.status(), StatusCode::OK);

    let (signed, signature) = valid.rsplit_once('.').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let der = format!("{signed}.{}", b64(der_signature(&raw)));
    assert_invalid_token(h.get("/whoami", &der).await).await;
}

#[tokio::test]
async fn hundred_thousand_dots_is_401_without_a_fetch() {
    let h = Harness::start().await;
    h.warm().await;
    assert_invalid_token(h.get("/whoami", &".".repeat(100_000)).await).await;
    assert_eq!(h.issuer.jwks_requests(), 1);
}

#[tokio::test]
async fn oversized_and_malformed_tokens_are_401() {
    let h = Harness::start().await;
    let valid = h.issuer.token().sign();
    let big = h
        .issuer
        .token()
        .claim("pad", json!("x".repeat(9000)))
        .sign();
    let cases = [
        big,
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        format!("{valid}.extra"),
        "not-base64!.x.y".to_owned(),
        format!("{}.{}.c2ln", b64("[1,2]"), b64("{}")),
        format!("{}.{}.c2ln", b64("{\"alg\":\"RS256\""), b64("{}")),
    ];
    for token in cases {
        assert_invalid_token(h.get("/whoami", &token).await).await;
    }
}

#[tokio::test]
async fn padded_base64_is_401() {
    let h = Harness::start().await;
    let valid = h.issuer.token().sign();
    let mut segments: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let padded_header = base64::engine::general_purpose::URL_SAFE
        .encode(URL_SAFE_NO_PAD.decode(&segments[0]).unwrap());
    assert!(
        padded_header.ends_with('='),
        "test needs a header that pads"
    );
    segments[0] = padded_header;
    assert_invalid_token(h.get("/whoami", &segments.join(".")).await).await;
    assert_invalid_token(h.get("/whoami", &format!("{valid}==")).await).await;
}

#[tokio::test]
async fn jwk_meant_for_encryption_is_not_used_and_the_rest_still_works() {
    let h = Harness::start().await;
    let enc = SigningKey::generate(Algorithm::ES256, "enc-1").unwrap();
    let mut entry = enc.jwk().clone();
    entry["use"] = json!("enc");
    h.issuer.publish_raw_entry(entry);
    h.issuer
        .publish_raw_entry(json!({ "kty": "unknown", "kid": "odd" }));

    let token = h.issuer.token().signed_by(enc).sign();
    assert_invalid_token(h.get("/whoami", &token).await).await;
    assert_eq!(
        h.get("/whoami", &h.issuer.token().sign()).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn jwk_alg_must_match_the_token_alg() {
    let h = Harness::start().await;
    let ps = SigningKey::generate(Algorithm::PS256, "rsa-ps").unwrap();
    h.issuer.add_key(ps.clone());
    // The same private key, but a token claiming RS256 where the JWK pins PS256.
    let claims = h.issuer.token().claims();
    let header = json!({ "alg": "RS256", "kid": "rsa-ps", "typ": "JWT" });
    let token = encode_raw(&header, &claims, ps.encoding_key(), Algorithm::RS256);
    assert_invalid_token(h.get("/whoami", &token).await).await;

    let good = h.issuer.token().signed_by(ps).sign();
    assert_eq!(h.get("/whoami", &good).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_kid_from_50_concurrent_requests_causes_exactly_one_fetch() {
    let h = Harness::start().await;
    h.warm().await;
    assert_eq!(h.issuer.jwks_requests(), 1);

    let token = h.issuer.token().header("kid", json!("no-such-key")).sign();
    let requests = (0..50).map(|_| h.get("/whoami", &token));
    for response in futures_join_all(requests).await {
        assert_invalid_token(response).await;
    }
    assert_eq!(
        h.issuer.jwks_requests(),
        2,
        "one refresh for all 50 requests"
    );

    // Within the cooldown, more unknown kids cause no more fetches.
    for kid in ["a", "b", "c"] {
        let token = h.issuer.token().header("kid", json!(kid)).sign();
        assert_invalid_token(h.get("/whoami", &token).await).await;
    }
    assert_eq!(h.issuer.jwks_requests(), 2);
}

#[tokio::test]
async fn rotated_key_is_picked_up_by_50_concurrent_requests_with_one_fetch() {
    let h = Harness::start().await;
    h.warm().await;

    let rotated = SigningKey::generate(Algorithm::RS256, "rsa-2").unwrap();
    h.issuer.add_key(rotated.clone());
    let old = h.issuer.unpublish_key("rsa-1").unwrap();

    let token = h.issuer.token().signed_by(rotated).sign();
    let requests = (0..50).map(|_| h.get("/whoami", &token));
    for response in futures_join_all(requests).await {
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(h.issuer.jwks_requests(), 2);

    let with_removed_key = h.issuer.token().signed_by(old).sign();
    assert_invalid_token(h.get("/whoami", &with_removed_key).await).await;
}

#[tokio::test]
async fn token_without_kid_uses_the_only_fitting_key() {
    let h = Harness::start().await;
    let token = h
        .issuer
        .token()
        .signed_by(h.issuer.key("ed-1").unwrap())
        .header("kid", Value::Null)
        .sign();
    assert_eq!(h.get("/whoami", &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_scope_is_403_with_scope() {
    let h = Harness::start().await;
    let token = h.issuer.token().scope("orders:write").sign();
    let response = h.get("/orders", &token).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&response),
        r#"Bearer realm="orders", error="insufficient_scope", error_description="the credential lacks a required scope", scope="orders:read""#
    );
    let ok = h.get("/orders", &h.issuer.token().sign()).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn scopes_are_case_sensitive() {
    let h = Harness::start().await;
    let token = h.issuer.token().scope("Orders:Read").sign();
    assert_eq!(
        h.get("/orders", &token).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn optional_route_runs_without_a_token_and_still_rejects_a_bad_one() {
    let h = Harness::start().await;
    let anonymous = h
        .client
        .get(h.server.url("/optional"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
    assert_eq!(anonymous.text().await.unwrap(), "anonymous");

    let signed_in = h.get("/optional", &h.issuer.token().sign()).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    assert_eq!(signed_in.text().await.unwrap(), "alice");

    let bad = h.issuer.token().expires_in(-3600).sign();
    assert_invalid_token(h.get("/optional", &bad).await).await;
}

#[tokio::test]
async fn act_chain_is_exposed() {
    let h = Harness::start().await;
    let token = h
        .issuer
        .token()
        .claim(
            "act",
            json!({ "sub": "reporting-service", "act": { "sub": "scheduler" } }),
        )
        .sign();
    let body: Value = h.get("/whoami", &token).await.json().await.unwrap();
    assert_eq!(
        body["actor"],
        json!({ "subject": "reporting-service", "actor": { "subject": "scheduler" } })
    );
}

#[tokio::test]
async fn strict_typ_policy_requires_at_jwt() {
    let h = Harness::with(|c| c, |v| v.typ_policy(TypPolicy::Strict)).await;
    let plain = h.issuer.token().header("typ", json!("JWT")).sign();
    assert_invalid_token(h.get("/whoami", &plain).await).await;
    let absent = h.issuer.token().without_header("typ").sign();
    assert_invalid_token(h.get("/whoami", &absent).await).await;
    let at = h
        .issuer
        .token()
        .header("typ", json!("application/AT+JWT"))
        .sign();
    assert_eq!(h.get("/whoami", &at).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn algorithm_outside_the_allowlist_is_401() {
    let h = Harness::with(|c| c, |v| v.algorithms([Algorithm::ES256])).await;
    assert_invalid_token(h.get("/whoami", &h.issuer.token().sign()).await).await;
    let es = h
        .issuer
        .token()
        .signed_by(h.issuer.key("ec-1").unwrap())
        .sign();
    assert_eq!(h.get("/whoami", &es).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn certificate_bound_token_without_a_certificate_is_401() {
    let h = Harness::start().await;
    let token = h
        .issuer
        .token()
        .claim("cnf", json!({ "x5t#S256": b64([7u8; 32]) }))
        .sign();
    assert_invalid_token(h.get("/whoami", &token).await).await;
}

#[tokio::test]
async fn confirmation_methods_we_cannot_check_fail_closed() {
    let h = Harness::start().await;
    for cnf in [
        json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" }),
        json!({}),
        json!("x"),
    ] {
        let token = h.issuer.token().claim("cnf", cnf.clone()).sign();
        assert_invalid_token(h.get("/whoami", &token).await).await;
    }
}

#[tokio::test]
async fn jwks_unreachable_is_503_not_a_client_error() {
    let h = Harness::with(|c| c.retry_interval(Duration::from_millis(1)), |v| v).await;
    h.issuer.set_behaviour(JwksBehaviour::Status(500));
    let response = h.get("/whoami", &h.issuer.token().sign()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get("www-authenticate").is_none());

    h.issuer.set_behaviour(JwksBehaviour::Normal);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        h.get("/whoami", &h.issuer.token().sign()).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn jwks_redirect_is_not_followed() {
    let h = Harness::start().await;
    let elsewhere = TestIssuer::start().await.unwrap();
    h.issuer
        .set_behaviour(JwksBehaviour::Redirect(elsewhere.jwks_uri().to_owned()));
    let response = h.get("/whoami", &h.issuer.token().sign()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(elsewhere.jwks_requests(), 0);
}

#[tokio::test]
async fn error_bodies_never_echo_the_token() {
    let h = Harness::start().await;
    let token = h.issuer.token().expires_in(-3600).sign();
    let body = h.get("/whoami", &token).await.text().await.unwrap();
    assert!(!body.contains(&token[..20]));
    assert!(body.len() < 200);
}

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    futures_util::future::join_all(futures).await
}

#[tokio::test]
async fn shared_secret_validates_hs256_only_with_that_secret() {
    let secret = b"a shared secret of at least thirty-two bytes".to_vec();
    let validator = JwtValidator::builder("https://hmac-issuer.example/")
        .audience("orders-api")
        .shared_secret(secret.clone())
        .build()
        .unwrap();
    let now = tower_principal_testing::unix_now();
    let claims = json!({
        "iss": "https://hmac-issuer.example/", "sub": "svc", "aud": "orders-api",
        "exp": now + 60, "scope": "orders:read",
    });
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let sign = |key: &[u8], alg| {
        encode_raw(
            &header,
            &claims,
            &EncodingKey::from_secret(key).unwrap(),
            alg,
        )
    };

    let user = validator
        .validate(&sign(&secret, Algorithm::HS256), None)
        .await
        .unwrap();
    assert_eq!(user.subject(), "svc");
    let wrong = validator
        .validate(
            &sign(
                b"another secret, also thirty-two bytes long",
                Algorithm::HS256,
            ),
            None,
        )
        .await;
    assert_eq!(
        wrong.unwrap_err().reason(),
        tower_principal::Reason::BadSignature
    );
    let hs512 = validator
        .validate(&sign(&secret, Algorithm::HS512), None)
        .await;
    assert_eq!(
        hs512.unwrap_err().reason(),
        tower_principal::Reason::BadSignature,
        "header says HS256"
    );
}
