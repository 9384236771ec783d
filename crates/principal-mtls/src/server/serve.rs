//! [`serve`]: an accept loop for axum routers over rustls, and [`serve_plain`],
//! the same loop without TLS.

use std::convert::Infallible;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower_principal::ClientCertificate;
use tower_service::Service;

use super::idle::{Activity, Guarded, GuardedBody, Tracked};
use crate::parse_certificate;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// hyper refuses HTTP/1.1 read buffers below 8 KiB.
const MIN_HEADER_LIST_BYTES: usize = 8 * 1024;

/// The default bound on the TLS handshake of one connection.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The default bound on receiving an HTTP/1.1 request head, idle keep-alive
/// connections included.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The default time a connection may be idle (see [`Serve::idle_timeout`])
/// before it is closed (gracefully: requests in flight finish).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves `router` over TLS on `listener` with the rustls configuration `tls`.
///
/// Await the returned [`Serve`] to run the server; it accepts until the
/// [graceful shutdown](Serve::with_graceful_shutdown) signal, if any, fires.
/// Each connection is handled on its own task:
///
/// 1. the TLS handshake runs, bounded by [`Serve::handshake_timeout`] (10 s
///    by default); a failed handshake (say, an expired or unknown client
///    certificate) is logged at `debug` with rustls' reason and closes only
///    that connection;
/// 2. the verified leaf certificate, if the client sent one, is parsed into a
///    [`ClientCertificate`] (see [`parse_certificate`]);
/// 3. HTTP/1.1 or HTTP/2 (as negotiated by ALPN) is served, and every request
///    gets the [`ClientCertificate`] and the peer's
///    [`ConnectInfo<SocketAddr>`](ConnectInfo) in its extensions. The first
///    bytes after the handshake, and every HTTP/1.1 request head, must arrive
///    within [`Serve::header_read_timeout`] (30 s by default), which also
///    closes idle keep-alive connections; a connection of either version
///    that is idle for [`Serve::idle_timeout`] (60 s: no byte moved, or no
///    request begun while none was in flight) is closed gracefully, and
///    dropped if it then stays idle that long again.
///
/// The certificate is trusted as verified: `tls` should come from
/// [`TlsServerConfig`](crate::TlsServerConfig), or at least use a verifying
/// client certificate verifier.
///
/// ```no_run
/// use std::sync::Arc;
///
/// use axum::{Router, routing::get};
/// use tokio::net::TcpListener;
///
/// # fn tls_config() -> Arc<rustls::ServerConfig> { unimplemented!() }
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// # let tls = tls_config();
/// let app = Router::new().route("/", get(|| async { "hello" }));
/// let listener = TcpListener::bind("0.0.0.0:8443").await?;
/// tower_principal_mtls::serve(listener, tls, app)
///     .with_graceful_shutdown(async {
///         let _ = tokio::signal::ctrl_c().await;
///     })
///     .await
/// # }
/// ```
pub fn serve(listener: TcpListener, tls: Arc<ServerConfig>, router: Router) -> Serve {
    Serve::new(listener, Some(TlsAcceptor::from(tls)), router)
}

/// Serves `router` over plain HTTP/1.1 and HTTP/2 (prior knowledge) on
/// `listener`, with the same per-connection bounds and graceful shutdown as
/// [`serve`] and the peer's [`ConnectInfo<SocketAddr>`](ConnectInfo) in every
/// request. Unlike `axum::serve`, slow or idle clients are cut off after the
/// [header read timeout](Serve::header_read_timeout).
///
/// Put it behind a TLS-terminating proxy, with
/// [`ClientCertHeaderLayer`](crate::ClientCertHeaderLayer) if the proxy
/// forwards client certificates.
pub fn serve_plain(listener: TcpListener, router: Router) -> Serve {
    Serve::new(listener, None, router)
}

/// A server, returned by [`serve`] or [`serve_plain`]; await it to run it.
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve {
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    limits: Limits,
    shutdown: Option<BoxFuture<()>>,
}

/// The per-connection bounds a [`Serve`] hands to each connection.
#[derive(Clone, Copy, Debug)]
struct Limits {
    handshake_timeout: Duration,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_header_list_bytes: Option<usize>,
}

impl Serve {
    fn new(listener: TcpListener, acceptor: Option<TlsAcceptor>, router: Router) -> Self {
        Self {
            listener,
            acceptor,
            router,
            limits: Limits {
                handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
                header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
                idle_timeout: DEFAULT_IDLE_TIMEOUT,
                max_header_list_bytes: None,
            },
            shutdown: None,
        }
    }

    /// Bounds the arrival of each HTTP/1.1 request head, and the idle time
    /// of keep-alive connections (30 s by default).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// Closes idle connections, HTTP/2 ones included: those on which, for
    /// this long (60 s by default; the check may take up to a quarter more),
    /// no byte has moved in either direction, or no request has begun while
    /// none was in flight (peers that trickle HTTP/2 headers or only ping).
    /// The close is graceful: requests in flight finish, no new ones are
    /// taken; a connection that then stays idle as long again is dropped.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// Bounds the size of a request's headers on both HTTP versions (at
    /// least 8 KiB): HTTP/1.1 requests with more are answered 431, larger
    /// HTTP/2 header lists are refused. Without it hyper's own limits apply:
    /// about 400 KB of HTTP/1.1 request head, 16 KiB of HTTP/2 header list.
    /// (Tokens above the validator's own cap, 8 KiB by default, are 401
    /// `invalid_token` as long as they get through this bound.)
    pub fn max_header_list_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_header_list_bytes = Some(bytes.max(MIN_HEADER_LIST_BYTES));
        self
    }

    /// Bounds the TLS handshake of each connection (10 s by default).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.limits.handshake_timeout = timeout;
        self
    }

    /// Stops accepting when `signal` completes, lets open connections finish
    /// their requests (HTTP/2 `GOAWAY`, HTTP/1.1 `Connection: close`), and
    /// completes once every connection is closed.
    pub fn with_graceful_shutdown<F>(mut self, signal: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.shutdown = Some(Box::pin(signal));
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    async fn run(self) -> io::Result<()> {
        let mut shutdown = self
            .shutdown
            .unwrap_or_else(|| Box::pin(std::future::pending()));
        let (stop_tx, stop_rx) = watch::channel(());

        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            };

            let connection = Connection {
                acceptor: self.acceptor.clone(),
                router: self.router.clone(),
                peer,
                limits: self.limits,
                stop: stop_rx.clone(),
            };
            tokio::spawn(connection.run(stream));
        }

        drop(self.listener);
        drop(stop_rx);
        stop_tx.send_replace(());
        stop_tx.closed().await;
        tracing::debug!("server stopped");
        Ok(())
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = BoxFuture<io::Result<()>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl fmt::Debug for Serve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("tls", &self.acceptor.is_some())
            .field("limits", &self.limits)
            .field("graceful_shutdown", &self.shutdown.is_some())
            .finish_non_exhaustive()
    }
}

/// Errors of one connection end only that connection; others (such as running
/// out of file descriptors) are ours, and are retried after a pause.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};

    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        tracing::debug!(%error, "connection failed before accept");
        return;
    }
    tracing::error!(%error, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One accepted TCP connection, before and after its handshake.
struct Connection {
    acceptor: Option<TlsAcceptor>,
    router: Router,
    peer: SocketAddr,
    limits: Limits,
    stop: watch::Receiver<()>,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        let peer = self.peer;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let Some(acceptor) = self.acceptor.clone() else {
            return self.serve_http(stream, None, Protocol::Detect).await;
        };

        let handshake =
            tokio::time::timeout(self.limits.handshake_timeout, acceptor.accept(stream));
        let tls = match handshake.await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };

        let leaf = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first());
        let certificate = match leaf.map(|der| parse_certificate(der.to_vec())).transpose() {
            Ok(certificate) => certificate,
            Err(error) => {
                tracing::debug!(%peer, %error, "verified client certificate cannot be parsed");
                return;
            }
        };

        // ALPN decided the protocol; no sniffing.
        let protocol = match tls.get_ref().1.alpn_protocol() {
            Some(b"h2") => Protocol::Http2,
            _ => Protocol::Http1,
        };
        self.serve_http(tls, certificate, protocol).await;
    }

    async fn serve_http<I>(
        mut self,
        io: I,
        certificate: Option<ClientCertificate>,
        protocol: Protocol,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // hyper's header read timeout runs from the first byte of a request
        // head, so a connection that sends nothing at all (after its TLS
        // handshake, or at all) would be kept forever: cut it off here.
        let mut io = BufReader::new(io);
        match tokio::time::timeout(self.limits.header_read_timeout, io.fill_buf()).await {
            Ok(Ok(bytes)) if !bytes.is_empty() => {}
            Ok(_) => return,
            Err(_) => {
                tracing::debug!(peer = %self.peer, "connection sent nothing in time");
                return;
            }
        }

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder = match protocol {
            Protocol::Http1 => builder.http1_only(),
            Protocol::Http2 => builder.http2_only(),
            Protocol::Detect => builder,
        };
        // hyper enforces the header read timeout only with a timer.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        if let Some(bytes) = self.limits.max_header_list_bytes {
            // hyper's HTTP/1.1 read buffer bounds the request head.
            builder.http1().max_buf_size(bytes);
            let header_list = u32::try_from(bytes).unwrap_or(u32::MAX);
            builder.http2().max_header_list_size(header_list);
        }
        let activity = Activity::new();
        let io = TokioIo::new(Tracked::new(io, activity.clone()));
        let service = WithConnection {
            router: self.router.clone(),
            certificate,
            peer: self.peer,
            activity: activity.clone(),
        };
        let connection =
            builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
        tokio::pin!(connection);

        let finished = tokio::select! {
            result = connection.as_mut() => Some(result),
            _ = self.stop.changed() => None,
            () = activity.idle_for(self.limits.idle_timeout) => {
                tracing::debug!(peer = %self.peer, "connection idle; closing it");
                None
            }
        };
        let result = match finished {
            Some(result) => result,
            None => {
                // Requests in flight may finish while their bytes move; a
                // peer that stops answering (an HTTP/2 client that never
                // acknowledges the GOAWAY ping, or only pings) is dropped
                // after another idle timeout.
                connection.as_mut().graceful_shutdown();
                tokio::select! {
                    result = connection.as_mut() => result,
                    () = activity.idle_for(self.limits.idle_timeout) => {
                        tracing::debug!(peer = %self.peer, "connection did not close in time; dropped");
                        return;
                    }
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(peer = %self.peer, %error, "connection ended with an error");
        }
    }
}

/// How a connection's HTTP version is chosen.
#[derive(Clone, Copy, Debug)]
enum Protocol {
    Http1,
    Http2,
    /// From the client's first bytes (plain connections: HTTP/2 prior knowledge).
    Detect,
}

/// The router, with the connection's extensions added to each request.
#[derive(Clone)]
struct WithConnection {
    router: Router,
    certificate: Option<ClientCertificate>,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl Service<Request<Incoming>> for WithConnection {
    type Response = http::Response<GuardedBody<Body>>;
    type Error = Infallible;
    type Future = Guarded<<Router as Service<Request<Incoming>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<Incoming>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let extensions = request.extensions_mut();
        if let Some(certificate) = &self.certificate {
            extensions.insert(certificate.clone());
        }
        extensions.insert(ConnectInfo(self.peer));
        Guarded::new(self.router.call(request), &self.activity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_futures_can_be_spawned() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<Serve>();
        assert_send::<<Serve as IntoFuture>::IntoFuture>();
    }
}
