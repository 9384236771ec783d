//! Mutual TLS for [`tower_principal`]: verified client certificates become
//! system-account principals.
//!
//! Three pieces, usable together or apart:
//!
//! * **Transport**: [`TlsServerConfig`] builds a rustls configuration that
//!   verifies client certificates (required or optional, with CRLs), and
//!   [`serve`] runs an axum [`Router`](axum::Router) over it (HTTP/1.1 and
//!   HTTP/2 by ALPN). Every request carries the verified leaf as a
//!   [`ClientCertificate`](tower_principal::ClientCertificate) and the peer
//!   address as [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo).
//! * **Mapping**: [`CertificateMapper`] is the
//!   [`Authenticator`](tower_principal::Authenticator) for client
//!   certificates. It maps a pinned SHA-256 fingerprint, a URI SAN (such as a
//!   SPIFFE ID) or a DNS SAN to a configured system account and its scopes
//!   ([`MappingConfig`], deserializable from TOML or any serde format). A
//!   valid certificate that maps to nobody is refused with 403.
//! * **Proxies**: [`ClientCertHeaderLayer`] accepts the RFC 9440
//!   `Client-Cert` header from [`TrustedProxies`] only, and strips it from
//!   everybody else.
//!
//! # Example
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use tower_principal::{AuthLayer, Principal, RequireScopesLayer};
//! use tower_principal_mtls::{CertificateMapper, ClientAuth, MappingConfig, TlsServerConfig};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mapping: MappingConfig = toml::from_str(r#"
//!     [[rules]]
//!     uri_san = "spiffe://ecommerce/order-processor"
//!     account = "order-processor"
//!     scopes = ["orders:read", "orders:process"]
//! "#)?;
//! let auth = AuthLayer::builder()
//!     .client_certificate(CertificateMapper::new(mapping)?)
//!     .build()?;
//!
//! let app = Router::new()
//!     .route("/orders", get(|p: Principal| async move { format!("hello {}", p.subject()) }))
//!     .route_layer(RequireScopesLayer::all(["orders:read"]))
//!     .layer(auth);
//!
//! let tls = TlsServerConfig::builder()
//!     .server_cert_pem(std::fs::read("server-chain.pem")?)
//!     .server_key_pem(std::fs::read("server-key.pem")?)
//!     .client_ca_pem(std::fs::read("client-ca.pem")?)
//!     .crl_pem(std::fs::read("client-ca.crl.pem")?)
//!     .client_auth(ClientAuth::Required)
//!     .build()?;
//!
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! tower_principal_mtls::serve(listener, tls, app)
//!     .with_graceful_shutdown(async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! A client without a valid certificate never reaches the router: the
//! handshake fails. A valid but unmapped certificate gets 403; a mapped one
//! without `orders:read` gets 403 `insufficient_scope`.
//!
//! # Optional client certificates
//!
//! With [`ClientAuth::Optional`], clients may connect without a certificate
//! and authenticate otherwise: give the `AuthLayer` a bearer or API key
//! authenticator as well. A request with an `Authorization` credential uses
//! it; the certificate then is only transport context (for RFC 8705 bound
//! tokens), not a second credential. A certificate that is sent must still be
//! valid, or the handshake fails.
//!
//! # Deployment caveats
//!
//! * **Behind a TLS-terminating proxy** (a load balancer, an ingress), this
//!   server never sees the client's handshake. The proxy must verify client
//!   certificates itself and forward the leaf in the RFC 9440 `Client-Cert`
//!   header; add [`ClientCertHeaderLayer`] with the proxy's addresses as
//!   [`TrustedProxies`], outside the `AuthLayer`.
//! * **Trust `Client-Cert` only from the proxy.** Anybody who can reach the
//!   server directly can send the header; that is why it is stripped from
//!   every peer not listed. List the proxy's own addresses, not the clients'
//!   networks, and make sure clients cannot reach the server around the
//!   proxy, or through a hop that does not remove the header. Behind several
//!   hops, the peer is the last hop: it must be the one that verified the
//!   certificate.
//! * **The proxy's certificate is not the client's.** When the proxy connects
//!   to [`serve`] with its own client certificate, requests from a trusted
//!   peer drop that certificate and use only the forwarded one.
//! * **Subject common names** are not identities: map SANs or fingerprints.
//!   [`MappingConfig::dangerous_match_subject_cn`] exists for legacy CAs whose
//!   every issued name you control.
//! * **Revocation** is checked only against the CRLs given at start-up;
//!   rebuild the configuration to pick up a new CRL. OCSP is not supported.
//! * **Clock skew**: certificate validity is checked against this host's
//!   clock, without leeway.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod certificate;
mod mapping;
pub mod proxy;
mod server;

pub use certificate::{CertificateParseError, parse_certificate};
pub use mapping::{
    CertificateMapper, InvalidFingerprint, MapperConfigError, MappingConfig, MappingRule, Matcher,
    Sha256Fingerprint,
};
pub use proxy::{
    CLIENT_CERT, CLIENT_CERT_CHAIN, ClientCertHeader, ClientCertHeaderConfig,
    ClientCertHeaderLayer, DEFAULT_MAX_HEADER_BYTES, InvalidNetwork, IpNetwork, TrustedProxies,
};
pub use server::config::{ClientAuth, TlsConfigError, TlsServerConfig, TlsServerConfigBuilder};
pub use server::serve::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, Serve, serve,
    serve_plain,
};
