//! axum-jwt-auth's `RemoteJwksDecoder::decode` on a warm JWKS, per algorithm;
//! the peer counterpart of `b_validator` in `crates/principal-bench`.

use std::time::Duration;

use axum_jwt_auth::{JwtDecoder, RemoteJwksDecoder};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use tower_principal_testing::TestIssuer;

#[derive(Clone, Debug, Deserialize)]
#[allow(dead_code, reason = "parsed as an application would")]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: String,
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let issuer = rt.block_on(TestIssuer::start()).unwrap();

    for (name, kid, alg) in [
        ("rs256", "rsa-1", Algorithm::RS256),
        ("es256", "ec-1", Algorithm::ES256),
        ("eddsa", "ed-1", Algorithm::EdDSA),
    ] {
        // jsonwebtoken wants one key family per Validation: one decoder per algorithm.
        let mut validation = Validation::new(alg);
        validation.set_audience(&["orders-api"]);
        validation.set_issuer(&[issuer.issuer()]);
        let decoder = RemoteJwksDecoder::builder()
            .jwks_url(issuer.jwks_uri().to_owned())
            .validation(validation)
            .build()
            .unwrap();
        let _refresh = rt.block_on(decoder.initialize()).unwrap();
        let token = issuer.token().signed_by(issuer.key(kid).unwrap()).sign();
        rt.block_on(JwtDecoder::<Claims>::decode(&decoder, &token))
            .unwrap();

        let mut group = c.benchmark_group(name);
        group.bench_function("peer_axum_jwt_auth", |b| {
            b.to_async(&rt).iter(|| async {
                JwtDecoder::<Claims>::decode(&decoder, &token)
                    .await
                    .unwrap()
            })
        });
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

criterion_group! {
    name = peer;
    config = config();
    targets = benches
}
criterion_main!(peer);
