//! jwt-authorizer's `Authorizer::check_auth` on a warm JWKS, per algorithm;
//! the peer counterpart of `b_validator` in `crates/principal-bench`.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jwt_authorizer::{Authorizer, JwtAuthorizer, Validation};
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
    let (issuer, authorizer) = rt.block_on(async {
        let issuer = TestIssuer::start().await.unwrap();
        let validation = Validation::new()
            .iss(&[issuer.issuer()])
            .aud(&["orders-api"]);
        let authorizer: Authorizer<Claims> = JwtAuthorizer::from_jwks_url(issuer.jwks_uri())
            .validation(validation)
            .check(|c: &Claims| c.scope.split(' ').any(|s| s == "orders:read"))
            .build()
            .await
            .unwrap();
        (issuer, authorizer)
    });

    for (name, kid) in [("rs256", "rsa-1"), ("es256", "ec-1"), ("eddsa", "ed-1")] {
        let token = issuer.token().signed_by(issuer.key(kid).unwrap()).sign();
        // The first call fetches the JWKS (jwt-authorizer loads lazily).
        rt.block_on(authorizer.check_auth(&token)).unwrap();

        let mut group = c.benchmark_group(name);
        group.bench_function("peer_jwt_authorizer", |b| {
            b.to_async(&rt)
                .iter(|| async { authorizer.check_auth(&token).await.unwrap() })
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
