//! The e-commerce resource server: orders for users and services, reports for
//! the reporting service only.

use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_principal::{AuthLayer, Principal, RequireScopesLayer, User};
use tower_principal_jwt::JwtValidator;

/// The realm named in every challenge.
pub(crate) const REALM: &str = "ecommerce";

#[derive(Default)]
struct Orders {
    next_id: u64,
    items: Vec<Value>,
}

type Shared = Arc<Mutex<Orders>>;

/// Builds the whole application from the two validators.
pub(crate) fn router(orders: JwtValidator, reports: JwtValidator) -> Router {
    let orders_auth = AuthLayer::new(orders)
        .with_realm(REALM)
        .expect("the realm is a valid quoted string");
    let reports_auth = AuthLayer::new(reports)
        .with_realm(REALM)
        .expect("the realm is a valid quoted string");
    let store: Shared = Arc::default();

    let read = get(list_orders).route_layer(RequireScopesLayer::all(["orders:read"]));
    let write = post(create_order).route_layer(RequireScopesLayer::all(["orders:write"]));
    let orders_api = Router::new()
        .route("/whoami", get(whoami))
        .route("/orders", read.merge(write))
        .with_state(store)
        .layer(orders_auth);

    let reports_api = Router::new()
        .route(
            "/reports",
            post(generate_report).route_layer(RequireScopesLayer::all(["reports:generate"])),
        )
        .layer(reports_auth);

    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(orders_api)
        .merge(reports_api)
}

async fn whoami(principal: Principal) -> Json<Value> {
    let user = principal.as_user();
    Json(json!({
        "kind": principal.kind(),
        "subject": principal.subject(),
        "scopes": principal.scopes(),
        "issuer": user.map(|u| u.issuer()),
        "audiences": user.map_or(&[][..], |u| u.audiences()),
        "method": principal.method().name(),
    }))
}

async fn list_orders(State(store): State<Shared>) -> Json<Value> {
    let orders = store.lock().unwrap_or_else(PoisonError::into_inner);
    Json(json!({ "orders": orders.items }))
}

#[derive(Deserialize)]
struct NewOrder {
    item: String,
    #[serde(default = "one")]
    quantity: u32,
}

fn one() -> u32 {
    1
}

async fn create_order(
    State(store): State<Shared>,
    principal: Principal,
    Json(order): Json<NewOrder>,
) -> (StatusCode, Json<Value>) {
    let mut orders = store.lock().unwrap_or_else(PoisonError::into_inner);
    orders.next_id += 1;
    let created = json!({
        "id": orders.next_id,
        "item": order.item,
        "quantity": order.quantity,
        "status": "pending",
        "placed_by": principal.subject(),
    });
    orders.items.push(created.clone());
    (StatusCode::CREATED, Json(created))
}

async fn generate_report(User(user): User) -> (StatusCode, Json<Value>) {
    let chain: Vec<&str> = user
        .actor()
        .map(|actor| actor.chain().map(|a| a.subject.as_str()).collect())
        .unwrap_or_default();
    tracing::info!(
        target: "audit",
        sub = user.subject(),
        act = ?chain,
        client_id = user.client_id(),
        jti = user.jwt_id(),
        "report generated"
    );
    (
        StatusCode::ACCEPTED,
        Json(json!({ "report": "queued", "for": user.subject(), "actors": chain })),
    )
}
