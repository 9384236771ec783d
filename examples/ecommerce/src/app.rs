//! The e-commerce resource server: orders for users and services, reports for
//! the reporting service only.

use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_principal::{AuthError, AuthLayer, Principal, RequireScopesLayer, Scopes, User};

use tower_principal_jwt::IssuerSet;

use crate::config::Mechanisms;

/// The realm named in every challenge.
pub(crate) const REALM: &str = "ecommerce";

#[derive(Default)]
struct Orders {
    next_id: u64,
    items: Vec<Value>,
}

type Shared = Arc<Mutex<Orders>>;

/// Builds the whole application. The orders API takes bearer tokens, and API
/// keys and client certificates when configured; the reports API takes only
/// bearer tokens issued for the reports audience.
pub(crate) fn router(mechanisms: Mechanisms) -> Router {
    let issuers = mechanisms.orders.clone();
    let mut orders_auth = AuthLayer::builder().bearer(mechanisms.orders).realm(REALM);
    if let Some((api_keys, header)) = mechanisms.api_keys {
        orders_auth = orders_auth.api_key(api_keys).api_key_header(header);
    }
    if let Some(certificates) = mechanisms.certificates {
        orders_auth = orders_auth.client_certificate(certificates);
    }
    let orders_auth = orders_auth
        .build()
        .expect("a bearer mechanism and a valid realm");
    let reports_auth = AuthLayer::new(mechanisms.reports)
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
        .route("/ready", get(move || ready(issuers.clone())))
        .merge(orders_api)
        .merge(reports_api)
}

/// 200 when every trusted issuer's keys are loaded, else 503; JSON per issuer.
async fn ready(issuers: IssuerSet) -> (StatusCode, Json<Value>) {
    let readiness = issuers.readiness();
    (readiness.status_code(), Json(readiness.to_json()))
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

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
}

/// `GET /orders` needs `orders:read`; the processing queue
/// (`?status=pending`) also needs `orders:process`.
async fn list_orders(
    State(store): State<Shared>,
    principal: Principal,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, AuthError> {
    let status = query.status.as_deref();
    if status == Some("pending") && !principal.has_scope("orders:process") {
        let required = Scopes::parse_space_delimited("orders:process").unwrap_or_default();
        let error = AuthError::insufficient_scope(required);
        error.log();
        return Err(error);
    }
    let orders = store.lock().unwrap_or_else(PoisonError::into_inner);
    let selected: Vec<&Value> = orders
        .items
        .iter()
        .filter(|order| status.is_none_or(|status| order["status"] == status))
        .collect();
    Ok(Json(json!({ "orders": selected })))
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
