//! `GET /orders` (scope `orders:read`) and `GET /healthz` behind jwt-authorizer,
//! trusting the JWKS of an external issuer.
//!
//! Usage: peer-jwt-authorizer --listen ADDR --issuer ISS --jwks-uri URI [--audience AUD]

use axum::routing::get;
use axum::{Json, Router};
use jwt_authorizer::{Authorizer, IntoLayer, JwtAuthorizer, JwtClaims, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone, Debug, Deserialize)]
struct Claims {
    #[allow(dead_code, reason = "deserialized like the other servers do")]
    sub: String,
    #[serde(default)]
    scope: String,
}

fn arg(name: &str, default: Option<&str>) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|at| args.get(at + 1).cloned())
        .or(default.map(str::to_owned))
        .unwrap_or_else(|| panic!("missing {name}"))
}

async fn orders(JwtClaims(_claims): JwtClaims<Claims>) -> Json<Value> {
    Json(json!({ "orders": [] }))
}

#[tokio::main]
async fn main() {
    let listen = arg("--listen", Some("127.0.0.1:8081"));
    let issuer = arg("--issuer", None);
    let jwks_uri = arg("--jwks-uri", None);
    let audience = arg("--audience", Some("orders-api"));

    let validation = Validation::new().iss(&[issuer]).aud(&[audience]);
    let authorizer: Authorizer<Claims> = JwtAuthorizer::from_jwks_url(&jwks_uri)
        .validation(validation)
        // jwt-authorizer answers 403 when this returns false.
        .check(|c: &Claims| c.scope.split(' ').any(|s| s == "orders:read"))
        .build()
        .await
        .expect("jwt-authorizer starts");

    let app = Router::new()
        .route("/orders", get(orders))
        .layer(authorizer.into_layer())
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("addr")
    );
    axum::serve(listener, app).await.expect("serve");
}
