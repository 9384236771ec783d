//! RFC 8705 certificate-bound access tokens over real TLS: the JWT validator
//! and the mTLS server together, with certificates from the test PKI.
#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower_principal::{AuthLayer, Principal};
use tower_principal_jwt::{JwksCache, JwtValidator};
use tower_principal_mtls::{
    CertificateMapper, ClientAuth, MappingConfig, MappingRule, Matcher, TlsServerConfig,
};
use tower_principal_testing::TestIssuer;
use tower_principal_testing::pki::{ORDER_PROCESSOR, Pem, TestPki};

struct Harness {
    issuer: TestIssuer,
    pki: TestPki,
    url: String,
    _server: tokio::task::JoinHandle<()>,
}

async fn whoami(principal: Principal) -> Json<Value> {
    Json(json!({ "kind": principal.kind(), "subject": principal.subject() }))
}

async fn start() -> Harness {
    let issuer = TestIssuer::start().await.unwrap();
    let keys = JwksCache::builder(issuer.jwks_uri()).build().unwrap();
    let validator = JwtValidator::builder(issuer.issuer())
        .audience("orders-api")
        .jwks(keys)
        .build()
        .unwrap();
    let rule = MappingRule::new(
        Matcher::UriSan(ORDER_PROCESSOR.to_owned()),
        "order-processor",
        vec!["orders:read".to_owned()],
    );
    let mapper = CertificateMapper::new(MappingConfig::new(vec![rule])).unwrap();
    let layer = AuthLayer::builder()
        .bearer(validator)
        .client_certificate(mapper)
        .build()
        .unwrap();
    let router = Router::new().route("/whoami", get(whoami)).layer(layer);

    let pki = TestPki::new();
    let tls: Arc<rustls::ServerConfig> = TlsServerConfig::builder()
        .server_cert_pem(&pki.server.cert)
        .server_key_pem(&pki.server.key)
        .client_ca_pem(pki.ca.cert_pem())
        .client_auth(ClientAuth::Optional)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/whoami", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        tower_principal_mtls::serve(listener, tls, router)
            .await
            .unwrap();
    });
    Harness {
        issuer,
        pki,
        url,
        _server: server,
    }
}

impl Harness {
    fn client(&self, identity: Option<&Pem>) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.pki.ca.cert_pem().as_bytes()).unwrap();
        let mut builder = reqwest::Client::builder().no_proxy().tls_certs_only([ca]);
        if let Some(identity) = identity {
            builder = builder
                .identity(reqwest::Identity::from_pem(identity.identity().as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    fn bound_token(&self, certificate: &Pem) -> String {
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(certificate.der()));
        self.issuer
            .token()
            .claim("cnf", json!({ "x5t#S256": thumbprint }))
            .sign()
    }

    async fn call(&self, identity: Option<&Pem>, token: &str) -> (u16, String, Value) {
        let response = self
            .client(identity)
            .get(&self.url)
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, challenge, response.json().await.unwrap())
    }
}

#[tokio::test]
async fn bound_token_with_its_certificate_is_a_user() {
    let h = start().await;
    let cert = h.pki.order_processor();
    let (status, _, body) = h.call(Some(&cert), &h.bound_token(&cert)).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "kind": "user", "subject": "alice" }));
}

#[tokio::test]
async fn bound_token_with_another_certificate_is_401() {
    let h = start().await;
    let bound_to = h.pki.order_processor();
    let presented = h.pki.order_processor();
    let (status, challenge, _) = h.call(Some(&presented), &h.bound_token(&bound_to)).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn bound_token_without_a_certificate_is_401() {
    let h = start().await;
    let cert = h.pki.order_processor();
    let (status, challenge, _) = h.call(None, &h.bound_token(&cert)).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn unbound_token_over_mtls_is_the_user_not_the_certificate() {
    let h = start().await;
    let cert = h.pki.order_processor();
    let (status, _, body) = h.call(Some(&cert), &h.issuer.token().sign()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["kind"], "user",
        "a header credential wins over the transport certificate"
    );
}
