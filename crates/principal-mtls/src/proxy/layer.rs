//! [`ClientCertHeaderLayer`]: RFC 9440 `Client-Cert` from trusted proxies.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, Request};
use serde::Deserialize;
use tower_layer::Layer;
pub use tower_principal::layer::future::ResponseFuture;
use tower_principal::{AuthError, ClientCertificate, Reason};
use tower_service::Service;

use crate::{TrustedProxies, parse_certificate};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The RFC 9440 header carrying the client's leaf certificate.
pub const CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");

/// The RFC 9440 header carrying the rest of the client's chain.
pub const CLIENT_CERT_CHAIN: HeaderName = HeaderName::from_static("client-cert-chain");

/// The default bound on the `Client-Cert` value: 16 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// RFC 8941 byte sequences use the standard alphabet; RFC 8941 §3.3.5 asks
/// parsers not to insist on padding.
const BYTE_SEQUENCE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The configuration of a [`ClientCertHeaderLayer`], deserializable from a file.
///
/// ```
/// use tower_principal_mtls::{ClientCertHeaderConfig, ClientCertHeaderLayer};
///
/// let config: ClientCertHeaderConfig = toml::from_str(r#"
///     trusted_proxies = ["10.0.0.5", "fd00:1::/64"]
///     max_header_bytes = 8192
/// "#).unwrap();
/// let layer = ClientCertHeaderLayer::from(config);
/// # drop(layer);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientCertHeaderConfig {
    /// The peers whose `Client-Cert` header is believed.
    pub trusted_proxies: TrustedProxies,
    /// The longest `Client-Cert` value accepted, in bytes.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
}

fn default_max_header_bytes() -> usize {
    DEFAULT_MAX_HEADER_BYTES
}

/// Takes the client certificate from an RFC 9440 `Client-Cert` header, but
/// only from trusted proxies.
///
/// For each request, the peer address is read from the
/// [`ConnectInfo<SocketAddr>`](ConnectInfo) extension (put there by
/// [`serve`](crate::serve), or by axum's
/// `into_make_service_with_connect_info::<SocketAddr>()`):
///
/// * **trusted peer**: any [`ClientCertificate`] already in the extensions is
///   removed (it would be the *proxy's* own TLS certificate), and a
///   `Client-Cert` header, if present, is parsed into a new one. A header
///   that is repeated, longer than the limit, not an RFC 8941 byte sequence
///   (`:<base64 DER>:`, no parameters) or not an X.509 certificate is
///   answered with 400 `invalid_request`. `Client-Cert-Chain` is left as is
///   and not used.
/// * **any other peer**, or no `ConnectInfo` at all: `Client-Cert` and
///   `Client-Cert-Chain` are removed (logged at `debug`), and a certificate
///   from this server's own TLS handshake is kept.
///
/// The certificate is trusted as verified by the proxy: the proxy must verify
/// client chains against the right CAs, and must itself remove these headers
/// from what clients send. Put this layer outside the
/// [`AuthLayer`](tower_principal::AuthLayer), so it runs first:
///
/// ```
/// use std::net::{IpAddr, SocketAddr};
///
/// use axum::{Router, routing::get};
/// use tower_principal::{AuthLayer, Principal};
/// use tower_principal_mtls::{
///     CertificateMapper, ClientCertHeaderLayer, MappingConfig, MappingRule, Matcher,
///     TrustedProxies,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let rule = MappingRule::new(
///     Matcher::UriSan("spiffe://ecommerce/order-processor".into()),
///     "order-processor",
///     ["orders:process"],
/// );
/// let mapper = CertificateMapper::new(MappingConfig::new([rule])).unwrap();
/// let proxies = TrustedProxies::new([IpAddr::from([10, 0, 0, 5])]);
///
/// let app = Router::new()
///     .route("/", get(|p: Principal| async move { p.subject().to_owned() }))
///     .layer(AuthLayer::builder().client_certificate(mapper).build().unwrap())
///     .layer(ClientCertHeaderLayer::new(proxies));
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let server =
/// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>());
/// # drop(server);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ClientCertHeaderLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    trusted: TrustedProxies,
    max_header_bytes: usize,
}

impl ClientCertHeaderLayer {
    /// Honours `Client-Cert` from `trusted` peers only, up to 16 KiB.
    pub fn new(trusted: TrustedProxies) -> Self {
        Self {
            shared: Arc::new(Shared {
                trusted,
                max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            }),
        }
    }

    /// Sets the longest `Client-Cert` value accepted, in bytes.
    pub fn max_header_bytes(self, max: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                trusted: self.shared.trusted.clone(),
                max_header_bytes: max,
            }),
        }
    }
}

impl From<ClientCertHeaderConfig> for ClientCertHeaderLayer {
    fn from(config: ClientCertHeaderConfig) -> Self {
        Self::new(config.trusted_proxies).max_header_bytes(config.max_header_bytes)
    }
}

impl fmt::Debug for ClientCertHeaderLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertHeaderLayer")
            .field("trusted", &self.shared.trusted)
            .field("max_header_bytes", &self.shared.max_header_bytes)
            .finish()
    }
}

impl<S> Layer<S> for ClientCertHeaderLayer {
    type Service = ClientCertHeader<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientCertHeader {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service built by [`ClientCertHeaderLayer`].
#[derive(Clone)]
pub struct ClientCertHeader<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for ClientCertHeader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertHeader")
            .field("inner", &self.inner)
            .field("trusted", &self.shared.trusted)
            .field("max_header_bytes", &self.shared.max_header_bytes)
            .finish()
    }
}

impl<S, B, ResBody> Service<Request<B>> for ClientCertHeader<S>
where
    S: Service<Request<B>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match self.shared.apply(&mut request) {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(error) => {
                error.log();
                ResponseFuture::ready(error.into_response())
            }
        }
    }
}

impl Shared {
    fn apply<B>(&self, request: &mut Request<B>) -> Result<(), AuthError> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());

        if !peer.is_some_and(|ip| self.trusted.contains(ip)) {
            strip(request.headers_mut(), peer);
            return Ok(());
        }

        request.extensions_mut().remove::<ClientCertificate>();
        if let Some(certificate) = self.forwarded(request.headers())? {
            request.extensions_mut().insert(certificate);
        }
        Ok(())
    }

    /// The certificate a trusted proxy forwarded, if any.
    fn forwarded(&self, headers: &HeaderMap) -> Result<Option<ClientCertificate>, AuthError> {
        let mut values = headers.get_all(&CLIENT_CERT).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(AuthError::invalid_request(Reason::MalformedHeader));
        }
        if value.len() > self.max_header_bytes {
            return Err(AuthError::invalid_request(Reason::TooLarge));
        }

        let der = parse_byte_sequence(value.as_bytes())
            .ok_or(AuthError::invalid_request(Reason::MalformedHeader))?;
        let certificate = parse_certificate(der)
            .map_err(|_| AuthError::invalid_request(Reason::MalformedHeader))?;
        Ok(Some(certificate))
    }
}

fn strip(headers: &mut HeaderMap, peer: Option<IpAddr>) {
    let had_cert = headers.remove(&CLIENT_CERT).is_some();
    let had_chain = headers.remove(&CLIENT_CERT_CHAIN).is_some();
    if had_cert || had_chain {
        tracing::debug!(?peer, "removed Client-Cert headers from an untrusted peer");
    }
}

/// An RFC 8941 byte sequence item without parameters: `:<base64>:`.
fn parse_byte_sequence(value: &[u8]) -> Option<Vec<u8>> {
    let value = value.trim_ascii();
    let inner = value.strip_prefix(b":")?.strip_suffix(b":")?;
    if inner.contains(&b':') {
        return None;
    }
    BYTE_SEQUENCE.decode(inner).ok()
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::Ipv4Addr;

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn layer_and_service_are_send_sync() {
        assert_send_sync::<ClientCertHeaderLayer>();
        assert_send_sync::<ClientCertHeader<axum::Router>>();
    }

    /// Never ready.
    #[derive(Clone)]
    struct Busy;

    impl Service<Request<Body>> for Busy {
        type Response = Response;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Pending
        }

        fn call(&mut self, _: Request<Body>) -> Self::Future {
            std::future::ready(Ok(Response::new(Body::empty())))
        }
    }

    #[test]
    fn poll_ready_is_the_inner_services() {
        let mut service = ClientCertHeaderLayer::new(TrustedProxies::default()).layer(Busy);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(service.poll_ready(&mut cx).is_pending());
    }

    fn request_from(peer: Option<IpAddr>, client_cert: &str) -> Request<Body> {
        let mut request = Request::get("/").header(CLIENT_CERT, client_cert);
        if let Some(ip) = peer {
            request = request.extension(ConnectInfo(SocketAddr::new(ip, 4000)));
        }
        request.body(Body::empty()).unwrap()
    }

    /// The status, and whether the inner service saw the header.
    async fn outcome(peer: Option<IpAddr>, client_cert: &str) -> (u16, bool) {
        let inner = tower::service_fn(|request: Request<Body>| async move {
            let seen = request.headers().contains_key(CLIENT_CERT);
            Ok::<_, Infallible>(Response::new(Body::from(seen.to_string())))
        });
        let trusted = TrustedProxies::new([IpAddr::from(Ipv4Addr::LOCALHOST)]);
        let service = ClientCertHeaderLayer::new(trusted).layer(inner);

        let response = service
            .oneshot(request_from(peer, client_cert))
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, body == "true")
    }

    #[tokio::test]
    async fn header_is_dropped_without_a_trusted_peer() {
        let elsewhere = IpAddr::from([192, 0, 2, 1]);
        assert_eq!(outcome(Some(elsewhere), ":AAAA:").await, (200, false));
        assert_eq!(
            outcome(None, ":AAAA:").await,
            (200, false),
            "no ConnectInfo"
        );
    }

    #[tokio::test]
    async fn garbage_from_a_trusted_peer_is_400() {
        let loopback = IpAddr::from(Ipv4Addr::LOCALHOST);
        assert_eq!(outcome(Some(loopback), ":AAAA:").await, (400, false));
        let mapped = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            outcome(Some(mapped), ":AAAA:").await.0,
            400,
            "IPv4-mapped peer is trusted"
        );
    }

    #[test]
    fn byte_sequence_syntax() {
        assert_eq!(parse_byte_sequence(b":aGVsbG8=:"), Some(b"hello".to_vec()));
        assert_eq!(
            parse_byte_sequence(b"  :aGVsbG8:\t"),
            Some(b"hello".to_vec())
        );
        assert_eq!(parse_byte_sequence(b"::"), Some(Vec::new()));
        for bad in [
            &b"aGVsbG8="[..],
            b":aGVsbG8=",
            b":aGVs:bG8=:",
            b":aGVsbG8=:;a=1",
            b":aGV-bG8=:",
            b":aGVsbG8=\n:",
        ] {
            assert_eq!(parse_byte_sequence(bad), None, "{bad:?}");
        }
    }
}
