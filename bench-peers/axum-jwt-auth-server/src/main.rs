//! `GET /orders` (scope `orders:read`) and `GET /healthz` behind axum-jwt-auth,
//! trusting the JWKS of an external issuer.
//!
//! Usage: peer-axum-jwt-auth --listen ADDR --issuer ISS --jwks-uri URI [--audience AUD] [--alg ES256]

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use axum_jwt_auth::{Claims, Decoder, RemoteJwksDecoder};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone, Debug, Deserialize)]
struct OrderClaims {
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

/// The crate has no scope support; the check is done in the handler.
async fn orders(claims: Claims<OrderClaims>) -> Result<Json<Value>, StatusCode> {
    if !claims.claims.scope.split(' ').any(|s| s == "orders:read") {
        return Err(StatusCode::FORBIDDEN);
    }
    Ok(Json(json!({ "orders": [] })))
}

#[tokio::main]
async fn main() {
    let listen = arg("--listen", Some("127.0.0.1:8082"));
    let issuer = arg("--issuer", None);
    let jwks_uri = arg("--jwks-uri", None);
    let audience = arg("--audience", Some("orders-api"));
    let alg: Algorithm = arg("--alg", Some("ES256")).parse().expect("an algorithm");

    let mut validation = Validation::new(alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    let decoder = RemoteJwksDecoder::builder()
        .jwks_url(jwks_uri)
        .validation(validation)
        .build()
        .expect("decoder");
    let _refresh = decoder.initialize().await.expect("jwks fetched");
    let decoder: Decoder<OrderClaims> = Arc::new(decoder);

    let app = Router::new()
        .route("/orders", get(orders))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(decoder);
    let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("addr")
    );
    axum::serve(listener, app).await.expect("serve");
}
