//! The TLS server over real loopback connections, with reqwest clients.
#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{StatusCode, Version};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tower_principal::AuthLayer;
use tower_principal_mtls::{ClientAuth, TlsConfigError, TlsServerConfig, serve};

use common::server::{
    FixedToken, TOKEN, app, certificate_app, client, client_builder, https, mapper, spawn_tls, tls,
};
use common::{Pem, TestPki};

/// Collects log lines of the current thread (tests run on a current-thread
/// runtime, so the server's tasks log here too).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> (StatusCode, Version, Value) {
    let response = client.get(url).send().await.expect("request");
    let (status, version) = (response.status(), response.version());
    (status, version, response.json().await.expect("JSON body"))
}

fn thumbprint(pem: &Pem) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(pem.der()))
}

#[tokio::test]
async fn valid_certificate_over_http1_maps_to_system_principal() {
    let pki = TestPki::new();
    let addr = spawn_tls(tls(&pki, ClientAuth::Required, None), certificate_app()).await;
    let cert = pki.order_processor();
    let client = client_builder(&pki, Some(&cert))
        .http1_only()
        .build()
        .unwrap();

    let (status, version, body) = get_json(&client, &https(addr, "/orders")).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(version, Version::HTTP_11);
    assert_eq!(body["kind"], "system");
    assert_eq!(body["subject"], "order-processor");
    assert_eq!(
        body["scopes"],
        serde_json::json!(["orders:process", "orders:read"])
    );
    assert_eq!(body["method"], "client_certificate");
    assert_eq!(body["thumbprint"], thumbprint(&cert));
    assert_eq!(body["peer_ip"], "127.0.0.1");
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let pki = TestPki::new();
    let addr = spawn_tls(tls(&pki, ClientAuth::Required, None), certificate_app()).await;
    let client = client(&pki, Some(&pki.order_processor()));

    let (status, version, body) = get_json(&client, &https(addr, "/orders")).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(version, Version::HTTP_2);
    assert_eq!(body["subject"], "order-processor");
}

/// The handshake with `bad` fails and is logged with `reason`; the server
/// keeps serving valid clients.
async fn assert_handshake_rejected(
    pki: &TestPki,
    config: Arc<rustls::ServerConfig>,
    bad: Option<&Pem>,
    reason: &str,
) {
    let (logs, _guard) = Logs::capture();
    let addr = spawn_tls(config, certificate_app()).await;
    let url = https(addr, "/orders");

    let rejected = client(pki, bad).get(&url).send().await;
    assert!(
        rejected.is_err(),
        "expected a TLS failure, got {rejected:?}"
    );

    let good = client(pki, Some(&pki.order_processor()));
    let (status, _, _) = get_json(&good, &url).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the server must survive a failed handshake"
    );

    let logs = logs.text();
    assert!(logs.contains("TLS handshake failed"), "{logs}");
    assert!(
        logs.contains(reason),
        "expected {reason:?} in the logs:\n{logs}"
    );
}

#[tokio::test]
async fn certificate_from_another_ca_fails_handshake() {
    let pki = TestPki::new();
    let config = tls(&pki, ClientAuth::Required, None);
    assert_handshake_rejected(
        &pki,
        config,
        Some(&pki.signed_by_other_ca()),
        "UnknownIssuer",
    )
    .await;
}

#[tokio::test]
async fn expired_certificate_fails_handshake() {
    let pki = TestPki::new();
    let config = tls(&pki, ClientAuth::Required, None);
    assert_handshake_rejected(&pki, config, Some(&pki.expired()), "certificate expired").await;
}

#[tokio::test]
async fn not_yet_valid_certificate_fails_handshake() {
    let pki = TestPki::new();
    let config = tls(&pki, ClientAuth::Required, None);
    let reason = "certificate not valid yet";
    assert_handshake_rejected(&pki, config, Some(&pki.not_yet_valid()), reason).await;
}

#[tokio::test]
async fn server_auth_only_certificate_fails_handshake() {
    let pki = TestPki::new();
    let config = tls(&pki, ClientAuth::Required, None);
    let reason = "does not allow extended key usage";
    assert_handshake_rejected(&pki, config, Some(&pki.server_auth_only()), reason).await;
}

#[tokio::test]
async fn missing_certificate_fails_handshake_when_required() {
    let pki = TestPki::new();
    let config = tls(&pki, ClientAuth::Required, None);
    assert_handshake_rejected(&pki, config, None, "peer sent no certificates").await;
}

#[tokio::test]
async fn revoked_certificate_fails_handshake() {
    let pki = TestPki::new();
    let revoked = pki.order_processor();
    let crl = pki.ca.crl(&[revoked.serial]);
    let config = tls(&pki, ClientAuth::Required, Some(crl));
    assert_handshake_rejected(&pki, config, Some(&revoked), "Revoked").await;
}

#[tokio::test]
async fn unmapped_certificate_is_403() {
    let pki = TestPki::new();
    let addr = spawn_tls(tls(&pki, ClientAuth::Required, None), certificate_app()).await;
    let client = client(&pki, Some(&pki.unmapped()));

    let (status, _, body) = get_json(&client, &https(addr, "/orders")).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "access_denied");
}

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope() {
    let pki = TestPki::new();
    let addr = spawn_tls(tls(&pki, ClientAuth::Required, None), certificate_app()).await;
    let client = client(&pki, Some(&pki.order_processor()));

    let response = client.get(https(addr, "/admin")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="orders:admin""#), "{challenge}");
}

#[tokio::test]
async fn optional_client_auth_falls_back_to_bearer_tokens() {
    let pki = TestPki::new();
    let auth = AuthLayer::builder()
        .client_certificate(mapper())
        .bearer(FixedToken)
        .build()
        .unwrap();
    let addr = spawn_tls(tls(&pki, ClientAuth::Optional, None), app(auth)).await;
    let url = https(addr, "/orders");
    let anonymous = client(&pki, None);

    let response = anonymous.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["subject"], "bearer-client");
    assert_eq!(body["method"], "bearer_jwt");

    let response = anonymous.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    let with_cert = client(&pki, Some(&pki.order_processor()));
    let (status, _, body) = get_json(&with_cert, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["subject"], "order-processor");
}

#[tokio::test]
async fn optional_client_auth_still_rejects_invalid_certificates() {
    let pki = TestPki::new();
    let config = tls(&pki, ClientAuth::Optional, None);
    assert_handshake_rejected(&pki, config, Some(&pki.expired()), "certificate expired").await;
}

#[tokio::test]
async fn stalled_handshake_is_closed_after_the_timeout() {
    let pki = TestPki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = serve(
        listener,
        tls(&pki, ClientAuth::Required, None),
        certificate_app(),
    )
    .handshake_timeout(Duration::from_millis(200));
    tokio::spawn(server.into_future());

    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf)).await;

    assert!(
        matches!(read, Ok(Ok(0))),
        "expected EOF from the server, got {read:?}"
    );
}

/// Completes a TLS handshake offering `alpn`, then sends nothing; how long
/// the server keeps the connection open.
async fn idle_after_handshake(
    pki: &TestPki,
    addr: std::net::SocketAddr,
    alpn: &[&[u8]],
) -> Duration {
    use rustls_pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls_pki_types::CertificateDer::from_pem_slice(pki.ca.cert_pem().as_bytes());
    roots.add(ca.unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await;
    assert!(read.is_ok(), "the server kept an idle connection for 10 s");
    started.elapsed()
}

#[tokio::test]
async fn connection_idle_after_the_handshake_is_closed_after_the_header_read_timeout() {
    let pki = TestPki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = serve(
        listener,
        tls(&pki, ClientAuth::Optional, None),
        certificate_app(),
    )
    .header_read_timeout(Duration::from_millis(300));
    tokio::spawn(server.into_future());

    for alpn in [&[][..], &[&b"http/1.1"[..]], &[&b"h2"[..]]] {
        let waited = idle_after_handshake(&pki, addr, alpn).await;
        assert!(
            waited >= Duration::from_millis(250),
            "closed too early ({alpn:?}): {waited:?}"
        );
    }
}

#[tokio::test]
async fn graceful_shutdown_stops_the_server() {
    let pki = TestPki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = serve(
        listener,
        tls(&pki, ClientAuth::Required, None),
        certificate_app(),
    )
    .with_graceful_shutdown(async {
        let _ = stopped.await;
    });
    let server = tokio::spawn(server.into_future());

    let client = client(&pki, Some(&pki.order_processor()));
    let (status, _, _) = get_json(&client, &https(addr, "/orders")).await;
    assert_eq!(status, StatusCode::OK);

    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(matches!(finished, Ok(Ok(Ok(())))), "{finished:?}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn configuration_errors_are_reported_at_build() {
    let pki = TestPki::new();
    let missing_ca = TlsServerConfig::builder()
        .server_cert_pem(&pki.server.cert)
        .server_key_pem(&pki.server.key)
        .build();
    assert!(matches!(missing_ca, Err(TlsConfigError::MissingClientCa)));

    let not_pem = TlsServerConfig::builder()
        .server_cert_pem("garbage")
        .server_key_pem(&pki.server.key)
        .client_ca_pem(pki.ca.cert_pem())
        .build();
    assert!(matches!(not_pem, Err(TlsConfigError::Pem { .. })));

    let wrong_key = TlsServerConfig::builder()
        .server_cert_pem(&pki.server.cert)
        .server_key_pem(pki.order_processor().key)
        .client_ca_pem(pki.ca.cert_pem())
        .build();
    assert!(
        matches!(wrong_key, Err(TlsConfigError::Rustls(_))),
        "{wrong_key:?}"
    );
}
