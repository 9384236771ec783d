//! [`serve`]: an accept loop for axum routers over rustls.

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
use axum::extract::ConnectInfo;
use axum::response::Response;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower_principal::ClientCertificate;
use tower_service::Service;

use crate::parse_certificate;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The default bound on the TLS handshake of one connection.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
///    [`ConnectInfo<SocketAddr>`](ConnectInfo) in its extensions. HTTP/1.1
///    request heads must arrive within hyper's header read timeout (30 s).
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
    Serve {
        listener,
        acceptor: TlsAcceptor::from(tls),
        router,
        handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        shutdown: None,
    }
}

/// A TLS server, returned by [`serve`]; await it to run it.
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    handshake_timeout: Duration,
    shutdown: Option<BoxFuture<()>>,
}

impl Serve {
    /// Bounds the TLS handshake of each connection (10 s by default).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
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
                handshake_timeout: self.handshake_timeout,
                stop: stop_rx.clone(),
            };
            tokio::spawn(connection.run(stream));
        }

        drop(self.listener);
        drop(stop_rx);
        stop_tx.send_replace(());
        stop_tx.closed().await;
        tracing::debug!("TLS server stopped");
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
            .field("handshake_timeout", &self.handshake_timeout)
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
    acceptor: TlsAcceptor,
    router: Router,
    peer: SocketAddr,
    handshake_timeout: Duration,
    stop: watch::Receiver<()>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let peer = self.peer;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }

        let handshake = tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(stream));
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

        let service = WithConnection {
            router: self.router.clone(),
            certificate,
            peer,
        };
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // With a timer, hyper enforces its HTTP/1 header read timeout (30 s).
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(service));
        tokio::pin!(connection);

        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = self.stop.changed() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = result {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}

/// The router, with the connection's extensions added to each request.
#[derive(Clone)]
struct WithConnection {
    router: Router,
    certificate: Option<ClientCertificate>,
    peer: SocketAddr,
}

impl Service<Request<Incoming>> for WithConnection {
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as Service<Request<Incoming>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<Incoming>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let extensions = request.extensions_mut();
        if let Some(certificate) = &self.certificate {
            extensions.insert(certificate.clone());
        }
        extensions.insert(ConnectInfo(self.peer));
        self.router.call(request)
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
