//! The e-commerce resource server: orders for users and services, reports for
//! the reporting service only.

use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_principal::{
    AuthError, AuthLayer, Challenge, Principal, RequireScopesLayer, ResourceMetadata,
    ResourceMetadataBuilder, Scopes, User,
};

use tower_principal_jwt::IssuerSet;

use crate::config::Mechanisms;

/// The realm named in every challenge.
pub(crate) const REALM: &str = "ecommerce";

/// Every scope a route of this application asks for.
pub(crate) const SCOPES: [&str; 4] = [
    "orders:read",
    "orders:write",
    "orders:process",
    "reports:generate",
];

/// The RFC 9728 document one listener publishes.
#[derive(Clone)]
pub(crate) struct Published {
    pub(crate) metadata: ResourceMetadata,
    /// Whether every challenge names it (`resource_metadata="…"`).
    pub(crate) in_challenges: bool,
}

/// The RFC 9728 document of this application, for the resource identified
/// by `resource` (the URL its clients use).
pub(crate) fn metadata(resource: &str) -> ResourceMetadataBuilder {
    ResourceMetadata::builder(resource)
        .scopes(SCOPES)
        .resource_name("tower-principal e-commerce example")
}

#[derive(Default)]
struct Orders {
    next_id: u64,
    items: Vec<Value>,
}

type Shared = Arc<Mutex<Orders>>;

/// The application: what authenticates, and the orders every listener shares.
#[derive(Clone)]
pub(crate) struct App {
    mechanisms: Mechanisms,
    store: Shared,
}

impl App {
    pub(crate) fn new(mechanisms: Mechanisms) -> Self {
        Self {
            mechanisms,
            store: Shared::default(),
        }
    }

    /// The router of one listener; `published` is served at its well-known
    /// path (and named in challenges if it says so).
    pub(crate) fn router(&self, published: Option<&Published>) -> Router {
        router(&self.mechanisms, self.store.clone(), published)
    }
}

/// Builds the whole application. Both APIs read the same credentials (bearer
/// tokens, and API keys and client certificates when configured), so two
/// credentials are refused alike everywhere; they differ in the audience a
/// bearer token must carry: the reports API accepts only tokens for the
/// reports audience.
fn router(mechanisms: &Mechanisms, store: Shared, published: Option<&Published>) -> Router {
    let issuers = mechanisms.orders.clone();
    let auth = |bearer: IssuerSet| {
        let mut builder = AuthLayer::builder().bearer(bearer).realm(REALM);
        if let Some(published) = published.filter(|p| p.in_challenges) {
            builder = builder.resource_metadata(&published.metadata);
        }
        if let Some((api_keys, header)) = &mechanisms.api_keys {
            builder = builder
                .api_key(api_keys.clone())
                .api_key_header(header.clone());
        }
        if let Some(certificates) = &mechanisms.certificates {
            builder = builder.client_certificate(certificates.clone());
        }
        builder
            .build()
            .expect("a bearer mechanism and a valid realm")
    };
    let orders_auth = auth(mechanisms.orders.clone());
    let reports_auth = auth(mechanisms.reports.clone());

    let read = get(list_orders).route_layer(RequireScopesLayer::all(["orders:read"]));
    let write = post(create_order)
        .layer(DefaultBodyLimit::max(MAX_ORDER_BODY_BYTES))
        .route_layer(RequireScopesLayer::all(["orders:write"]));
    let orders_api = Router::new()
        .route("/whoami", get(whoami))
        .route("/orders", read.merge(write))
        .with_state(store)
        // `route_layer`: unknown paths answer 404 instead of being authenticated.
        .route_layer(orders_auth);

    let reports_api = Router::new()
        .route(
            "/reports",
            post(generate_report).route_layer(RequireScopesLayer::all(["reports:generate"])),
        )
        .route_layer(reports_auth);

    let open = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/ready", get(move || ready(issuers.clone())));
    let open = match published {
        Some(published) => open.merge(published.metadata.router()),
        None => open,
    };
    open.merge(orders_api).merge(reports_api)
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
    challenge: Challenge,
    principal: Principal,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, axum::response::Response> {
    let Query(query) = query.map_err(|rejection| {
        let description = "the query string could not be read (status=…)";
        refused(
            rejection.status(),
            "invalid_query",
            description,
            &rejection.body_text(),
        )
        .into_response()
    })?;
    let status = query.status.as_deref();
    if status == Some("pending") && !principal.has_scope("orders:process") {
        let required = Scopes::parse_space_delimited("orders:process").unwrap_or_default();
        let error = AuthError::insufficient_scope(required).with_challenge(&challenge);
        error.log();
        return Err(error.into_response());
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

/// Bounds of the in-memory store: an order's item name, its quantity, and
/// how many orders it keeps.
const MAX_ITEM_CHARS: usize = 200;
const MAX_QUANTITY: u32 = 10_000;
const MAX_ORDERS: usize = 10_000;
/// An order body is small; axum's default cap (2 MB) is far more than one needs.
const MAX_ORDER_BODY_BYTES: usize = 16 * 1024;

/// A refused request: the status axum chose (or 422) and a fixed text; what
/// exactly was wrong goes to the debug log, not to the client.
fn refused(
    status: StatusCode,
    error: &str,
    description: &str,
    why: &dyn std::fmt::Display,
) -> (StatusCode, Json<Value>) {
    tracing::debug!(%status, error, %why, "request refused");
    let body = json!({ "error": error, "error_description": description });
    (status, Json(body))
}

fn bad_order(status: StatusCode, why: &dyn std::fmt::Display) -> (StatusCode, Json<Value>) {
    let description = format!(
        "the body must be JSON {{\"item\": a name of 1 to {MAX_ITEM_CHARS} characters, \
         \"quantity\": 1 to {MAX_QUANTITY} (default 1)}}"
    );
    refused(status, "invalid_order", &description, why)
}

async fn create_order(
    State(store): State<Shared>,
    principal: Principal,
    order: Result<Json<NewOrder>, JsonRejection>,
) -> (StatusCode, Json<Value>) {
    let order = match order {
        Ok(Json(order)) => order,
        Err(rejection) => return bad_order(rejection.status(), &rejection.body_text()),
    };
    let name_chars = order.item.chars().count();
    if !(1..=MAX_ITEM_CHARS).contains(&name_chars) || order.item.chars().any(char::is_control) {
        return bad_order(StatusCode::UNPROCESSABLE_ENTITY, &"item name");
    }
    if !(1..=MAX_QUANTITY).contains(&order.quantity) {
        return bad_order(StatusCode::UNPROCESSABLE_ENTITY, &"quantity");
    }

    let mut orders = store.lock().unwrap_or_else(PoisonError::into_inner);
    if orders.items.len() >= MAX_ORDERS {
        let description = format!("the example keeps at most {MAX_ORDERS} orders; restart it");
        let status = StatusCode::INSUFFICIENT_STORAGE;
        return refused(status, "store_full", &description, &"store full");
    }
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
