//! Servers, apps and clients shared by the integration tests.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower_principal::{
    AuthError, AuthLayer, AuthMethod, Authenticator, BoxFuture, Credential, Principal, Reason,
    RequireScopesLayer, Scopes, SystemAccount,
};
use tower_principal_mtls::{CertificateMapper, ClientAuth, MappingConfig, TlsServerConfig, serve};

use super::{Pem, TestPki};

/// The mapping the tests use, as an operator would write it.
pub const MAPPING_TOML: &str = r#"
[[rules]]
uri_san = "spiffe://ecommerce/order-processor"
account = "order-processor"
scopes = ["orders:read", "orders:process"]
"#;

/// The one token [`FixedToken`] accepts.
pub const TOKEN: &str = "let-me-in";

/// The mapper from [`MAPPING_TOML`].
pub fn mapper() -> CertificateMapper {
    let config: MappingConfig = toml::from_str(MAPPING_TOML).expect("mapping TOML");
    CertificateMapper::new(config).expect("mapping")
}

/// Accepts the bearer token [`TOKEN`] as the system account `bearer-client`.
pub struct FixedToken;

impl Authenticator for FixedToken {
    fn authenticate<'a>(
        &'a self,
        credential: &'a Credential,
        _request: &'a http::request::Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        let result = match credential {
            Credential::Bearer(token) if token == TOKEN => {
                let scopes = Scopes::parse_space_delimited("orders:read").expect("scopes");
                let method = AuthMethod::BearerJwt { key_id: None };
                Ok(Principal::System(SystemAccount::new(
                    "bearer-client",
                    scopes,
                    method,
                )))
            }
            _ => Err(AuthError::invalid_token(Reason::BadSignature)),
        };
        Box::pin(std::future::ready(result))
    }
}

/// `/orders` needs `orders:read`, `/admin` needs `orders:admin`; both echo the caller.
pub fn app(auth: AuthLayer) -> Router {
    let orders = Router::new()
        .route("/orders", get(whoami))
        .route_layer(RequireScopesLayer::all(["orders:read"]));
    let admin = Router::new()
        .route("/admin", get(whoami))
        .route_layer(RequireScopesLayer::all(["orders:admin"]));
    orders.merge(admin).layer(auth)
}

/// Certificate mapping only.
pub fn certificate_app() -> Router {
    app(AuthLayer::builder()
        .client_certificate(mapper())
        .build()
        .expect("auth layer"))
}

async fn whoami(ConnectInfo(peer): ConnectInfo<SocketAddr>, principal: Principal) -> Json<Value> {
    let thumbprint = match principal.method() {
        AuthMethod::ClientCertificate { sha256_thumbprint } => Some(sha256_thumbprint.clone()),
        _ => None,
    };
    Json(json!({
        "kind": principal.kind(),
        "subject": principal.subject(),
        "scopes": principal.scopes(),
        "method": principal.method().name(),
        "thumbprint": thumbprint,
        "peer_ip": peer.ip().to_string(),
    }))
}

/// The server side TLS configuration of `pki`.
pub fn tls(
    pki: &TestPki,
    client_auth: ClientAuth,
    crl: Option<String>,
) -> Arc<rustls::ServerConfig> {
    let mut builder = TlsServerConfig::builder()
        .server_cert_pem(&pki.server.cert)
        .server_key_pem(&pki.server.key)
        .client_ca_pem(pki.ca.cert_pem())
        .client_auth(client_auth);
    if let Some(crl) = crl {
        builder = builder.crl_pem(crl);
    }
    builder.build().expect("TLS config")
}

/// Serves `app` over TLS on a fresh loopback port; stops with the test's runtime.
pub async fn spawn_tls(tls: Arc<rustls::ServerConfig>, app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(serve(listener, tls, app).into_future());
    addr
}

/// Serves `app` over plain HTTP with `ConnectInfo`, as behind a proxy.
pub async fn spawn_plain(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    addr
}

/// A client trusting only the test CA, presenting `identity` if given.
pub fn client_builder(pki: &TestPki, identity: Option<&Pem>) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(pki.ca.cert_pem().as_bytes()).expect("CA PEM");
    let mut builder = reqwest::Client::builder().no_proxy().tls_certs_only([ca]);
    if let Some(identity) = identity {
        let identity = reqwest::Identity::from_pem(identity.identity().as_bytes());
        builder = builder.identity(identity.expect("identity PEM"));
    }
    builder
}

/// [`client_builder`], built.
pub fn client(pki: &TestPki, identity: Option<&Pem>) -> reqwest::Client {
    client_builder(pki, identity).build().expect("client")
}

/// `https://127.0.0.1:<port><path>`.
pub fn https(addr: SocketAddr, path: &str) -> String {
    format!("https://{addr}{path}")
}
