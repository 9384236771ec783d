//! Micro benchmarks, per algorithm (RS256, ES256, EdDSA):
//!
//! * `a_raw`: `jsonwebtoken::decode` with a prepared `DecodingKey` and an
//!   equivalent `Validation` (iss, aud, exp, nbf, required claims, 60 s leeway);
//! * `b_validator`: `JwtValidator::validate` on a warm JWKS cache, fetched once
//!   over loopback from a real `TestIssuer`;
//! * `c_layer`: one request through `AuthLayer` + `RequireScopesLayer` to a
//!   trivial axum handler with `oneshot`;
//! * `d_no_auth`: the same router without the two layers;
//! * `e_cache_hit`: the same token again through `CachingValidator`.
//!
//! `scripts/bench.sh` turns the estimates into the ratio table of BENCHMARKS.md.
#![allow(clippy::unwrap_used, missing_docs, reason = "benchmark harness")]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tower::ServiceExt;
use tower_principal::{AuthLayer, RequireScopesLayer};
use tower_principal_jwt::{CachingValidator, JwksCache, JwtValidator};
use tower_principal_testing::TestIssuer;

/// What an application would deserialize with plain jsonwebtoken.
#[derive(Deserialize)]
#[allow(dead_code, reason = "fields are parsed, as an application would")]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    scope: String,
}

fn raw_validation(alg: Algorithm, issuer: &str) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&["orders-api"]);
    validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = 60;
    validation
}

fn router(protected: bool, validator: JwtValidator) -> Router {
    let router = Router::new().route("/orders", get(|| async { "[]" }));
    if protected {
        router
            .route_layer(RequireScopesLayer::all(["orders:read"]))
            .layer(AuthLayer::new(validator))
    } else {
        router
    }
}

fn request(token: &str) -> Request<Body> {
    Request::get("/orders")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (issuer, validator) = rt.block_on(async {
        let issuer = TestIssuer::start().await.unwrap();
        let keys = JwksCache::builder(issuer.jwks_uri()).build().unwrap();
        keys.refresh().await.unwrap();
        let validator = JwtValidator::builder(issuer.issuer())
            .audience("orders-api")
            .jwks(keys)
            .build()
            .unwrap();
        (issuer, validator)
    });
    let cached = CachingValidator::builder(validator.clone())
        .build()
        .unwrap();
    let with_auth = router(true, validator.clone());
    let without_auth = router(false, validator.clone());

    for (name, kid, alg) in [
        ("rs256", "rsa-1", Algorithm::RS256),
        ("es256", "ec-1", Algorithm::ES256),
        ("eddsa", "ed-1", Algorithm::EdDSA),
    ] {
        let key = issuer.key(kid).unwrap();
        let token = issuer.token().signed_by(key.clone()).sign();
        let jwk: Jwk = serde_json::from_value(key.jwk().clone()).unwrap();
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();
        let validation = raw_validation(alg, issuer.issuer());
        // Every variant must accept the token, or the numbers mean nothing.
        jsonwebtoken::decode::<Claims>(&token, &decoding, &validation).unwrap();
        rt.block_on(cached.validate(&token, None)).unwrap();
        let status = rt.block_on(with_auth.clone().oneshot(request(&token)));
        assert_eq!(status.unwrap().status(), 200);

        let mut group = c.benchmark_group(name);
        group.bench_function("a_raw", |b| {
            b.iter(|| jsonwebtoken::decode::<Claims>(&token, &decoding, &validation).unwrap())
        });
        group.bench_function("b_validator", |b| {
            b.to_async(&rt)
                .iter(|| async { validator.validate(&token, None).await.unwrap() })
        });
        group.bench_function("c_layer", |b| {
            b.to_async(&rt)
                .iter(|| async { with_auth.clone().oneshot(request(&token)).await.unwrap() })
        });
        group.bench_function("d_no_auth", |b| {
            b.to_async(&rt)
                .iter(|| async { without_auth.clone().oneshot(request(&token)).await.unwrap() })
        });
        group.bench_function("e_cache_hit", |b| {
            b.to_async(&rt)
                .iter(|| async { cached.validate(&token, None).await.unwrap() })
        });
        group.finish();
    }
    assert!(cached.stats().hits > 0);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

criterion_group! {
    name = auth;
    config = config();
    targets = benches
}
criterion_main!(auth);
