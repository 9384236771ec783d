//! A load-test server: `GET /orders` (scope `orders:read`) and `GET /healthz`,
//! shaped like the peer servers in `bench-peers/`, trusting an external issuer.
//!
//! ```text
//! bench-server --listen ADDR --issuer ISS --jwks-uri URI [--audience AUD] [--cache]
//! ```
//!
//! With `--cache` the validator is wrapped in a
//! `tower_principal_jwt::CachingValidator`.
#![forbid(unsafe_code)]

use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_principal::{AuthLayer, Authenticator, RequireScopesLayer};
use tower_principal_jwt::{CachingValidator, JwksCache, JwtValidator};

fn arg(args: &[String], name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

fn router(authenticator: impl Authenticator) -> Router {
    Router::new()
        .route("/orders", get(|| async { Json(json!({ "orders": [] })) }))
        .route_layer(RequireScopesLayer::all(["orders:read"]))
        .layer(AuthLayer::new(authenticator))
        .route("/healthz", get(|| async { "ok" }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen").unwrap_or_else(|| "127.0.0.1:8090".into());
    let issuer = arg(&args, "--issuer").ok_or("--issuer is required")?;
    let jwks_uri = arg(&args, "--jwks-uri").ok_or("--jwks-uri is required")?;
    let audience = arg(&args, "--audience").unwrap_or_else(|| "orders-api".into());

    let keys = JwksCache::builder(jwks_uri).build()?;
    keys.refresh().await?;
    let validator = JwtValidator::builder(issuer)
        .audience(audience)
        .jwks(keys)
        .build()?;
    let app = if args.iter().any(|a| a == "--cache") {
        router(CachingValidator::builder(validator).build()?)
    } else {
        router(validator)
    };

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
