//! RFC 9440 `Client-Cert` headers, from trusted and untrusted peers.

mod common;

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_principal::ClientCertificate;
use tower_principal_mtls::{ClientAuth, ClientCertHeaderLayer, TrustedProxies};

use common::server::{certificate_app, client, https, spawn_plain, spawn_tls, tls};
use common::{Pem, TestPki};

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const ELSEWHERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

fn header_value(pem: &Pem) -> String {
    format!(":{}:", STANDARD.encode(pem.der()))
}

fn behind(trusted: IpAddr, app: Router) -> Router {
    app.layer(ClientCertHeaderLayer::new(TrustedProxies::new([trusted])))
}

/// Reports what the layer left for the handler.
fn inspect_app() -> Router {
    async fn inspect(request: Request) -> Json<Value> {
        let headers = request.headers();
        let certificate = request.extensions().get::<ClientCertificate>();
        Json(json!({
            "client_cert_header": headers.contains_key("client-cert"),
            "client_cert_chain_header": headers.contains_key("client-cert-chain"),
            "uri_sans": certificate.map(|cert| cert.uri_sans().to_vec()),
        }))
    }
    Router::new().route("/inspect", get(inspect))
}

async fn plain_get(addr: SocketAddr, path: &str, client_cert: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!("http://{addr}{path}"));
    if let Some(value) = client_cert {
        request = request
            .header("client-cert", value)
            .header("client-cert-chain", ":AAAA:");
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn client_cert_from_trusted_proxy_is_mapped() {
    let pki = TestPki::new();
    let addr = spawn_plain(behind(LOOPBACK, certificate_app())).await;
    let header = header_value(&pki.order_processor());

    let response = plain_get(addr, "/orders", Some(&header)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["kind"], "system");
    assert_eq!(body["subject"], "order-processor");
    assert_eq!(body["method"], "client_certificate");
}

#[tokio::test]
async fn client_cert_from_untrusted_peer_is_stripped() {
    let pki = TestPki::new();
    let header = header_value(&pki.order_processor());

    let addr = spawn_plain(behind(ELSEWHERE, certificate_app())).await;
    let response = plain_get(addr, "/orders", Some(&header)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let addr = spawn_plain(behind(ELSEWHERE, inspect_app())).await;
    let body: Value = plain_get(addr, "/inspect", Some(&header))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({ "client_cert_header": false, "client_cert_chain_header": false, "uri_sans": null })
    );
}

#[tokio::test]
async fn trusted_proxy_headers_reach_the_handler() {
    let pki = TestPki::new();
    let addr = spawn_plain(behind(LOOPBACK, inspect_app())).await;
    let header = header_value(&pki.order_processor());

    let body: Value = plain_get(addr, "/inspect", Some(&header))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(body["client_cert_header"], true);
    assert_eq!(body["client_cert_chain_header"], true);
    assert_eq!(body["uri_sans"], json!([common::ORDER_PROCESSOR]));
}

#[tokio::test]
async fn malformed_client_cert_from_trusted_proxy_is_400() {
    let pki = TestPki::new();
    let addr = spawn_plain(behind(LOOPBACK, certificate_app())).await;
    let der = STANDARD.encode(pki.order_processor().der());
    let not_a_certificate = format!(":{}:", STANDARD.encode(b"not a certificate"));
    let unwrapped = der.clone();
    let with_params = format!(":{der}:;x=1");

    for value in [
        unwrapped.as_str(),
        ":!!!!:",
        "::",
        &not_a_certificate,
        &with_params,
    ] {
        let response = plain_get(addr, "/orders", Some(value)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{value:.40}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn oversized_client_cert_from_trusted_proxy_is_400() {
    let pki = TestPki::new();
    let header = header_value(&pki.order_processor());
    let layer = ClientCertHeaderLayer::new(TrustedProxies::new([LOOPBACK]))
        .max_header_bytes(header.len() - 1);
    let addr = spawn_plain(certificate_app().layer(layer)).await;

    let response = plain_get(addr, "/orders", Some(&header)).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn trusted_proxy_over_tls_uses_the_forwarded_certificate_not_its_own() {
    let pki = TestPki::new();
    let config = tls(&pki, ClientAuth::Required, None);
    let addr = spawn_tls(config, behind(LOOPBACK, certificate_app())).await;
    let url = https(addr, "/orders");
    // The proxy's own certificate would map to order-processor: it must not count.
    let proxy = client(&pki, Some(&pki.order_processor()));

    let response = proxy.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let forwarded = header_value(&pki.unmapped());
    let response = proxy
        .get(&url)
        .header("client-cert", forwarded)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "the forwarded cert is unmapped"
    );
}

#[tokio::test]
async fn untrusted_tls_peer_keeps_its_own_certificate() {
    let pki = TestPki::new();
    let config = tls(&pki, ClientAuth::Required, None);
    let addr = spawn_tls(config, behind(ELSEWHERE, certificate_app())).await;
    let spoofer = client(&pki, Some(&pki.unmapped()));
    let spoofed = header_value(&pki.order_processor());

    let response = spoofer
        .get(https(addr, "/orders"))
        .header("client-cert", spoofed)
        .send()
        .await
        .unwrap();

    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "its own, unmapped certificate"
    );
}
