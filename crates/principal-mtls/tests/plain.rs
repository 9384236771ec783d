//! `serve_plain`: plain HTTP with the same connection bounds as the TLS server.
#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start(header_read_timeout: Duration) -> SocketAddr {
    start_with(|serve| serve.header_read_timeout(header_read_timeout)).await
}

async fn start_with(
    configure: impl FnOnce(tower_principal_mtls::Serve) -> tower_principal_mtls::Serve,
) -> SocketAddr {
    let app = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = configure(tower_principal_mtls::serve_plain(listener, app));
    tokio::spawn(async move { server.await.unwrap() });
    addr
}

/// Reads until the server closes the connection; how long that took.
async fn time_until_closed(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let deadline = Duration::from_secs(10);
    loop {
        match tokio::time::timeout(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server kept the connection open for {deadline:?}"),
        }
    }
}

#[tokio::test]
async fn serves_requests_with_the_peer_address() {
    let addr = start(Duration::from_secs(30)).await;
    let body = reqwest::get(format!("http://{addr}/peer"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "127.0.0.1");
}

#[tokio::test]
async fn idle_connection_is_closed_after_the_header_read_timeout() {
    let addr = start(Duration::from_millis(300)).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let waited = time_until_closed(stream).await;
    assert!(
        waited >= Duration::from_millis(250),
        "closed too early: {waited:?}"
    );
}

#[tokio::test]
async fn slow_request_head_is_cut_off() {
    let addr = start(Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.write_all(b"X-a: b\r\n").await.is_err() {
                return;
            }
        }
        panic!("the server accepted header lines for 5 s");
    };
    trickle.await;
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_a_request() {
    let addr = start(Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    time_until_closed(stream).await;
}

#[tokio::test]
async fn request_headers_are_bounded_as_configured() {
    let limit = 32 * 1024;
    let bounded = start_with(|serve| serve.max_header_list_bytes(limit)).await;
    // By default hyper's HTTP/1.1 bound (about 400 KB) applies, so that an
    // oversized token still reaches the validator (and is 401 there).
    let default = start(Duration::from_secs(30)).await;
    let client = reqwest::Client::new();
    let with_header = |addr: SocketAddr, bytes: usize| {
        client
            .get(format!("http://{addr}/peer"))
            .header("x-filler", "a".repeat(bytes))
            .send()
    };
    assert_eq!(with_header(bounded, 16 * 1024).await.unwrap().status(), 200);
    let too_large = with_header(bounded, limit + 1).await;
    assert_eq!(too_large.unwrap().status(), 431);
    let default = with_header(default, 100 * 1024).await;
    assert_eq!(default.unwrap().status(), 200);
}

/// Opens an HTTP/2 connection with prior knowledge: the preface and an empty
/// SETTINGS frame (length 0, type 4, no flags, stream 0); returns once the
/// server has sent its SETTINGS.
async fn start_http2(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(head[3], 4, "the server answers with its SETTINGS");
    stream
}

#[tokio::test]
async fn idle_http2_connection_is_closed_after_the_idle_timeout() {
    let addr = start_with(|serve| serve.idle_timeout(Duration::from_millis(300))).await;
    let stream = start_http2(addr).await;
    let waited = time_until_closed(stream).await;
    assert!(
        waited >= Duration::from_millis(250),
        "closed too early: {waited:?}"
    );
}

#[tokio::test]
async fn shutdown_does_not_wait_forever_for_a_silent_http2_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tower_principal_mtls::serve_plain(listener, Router::new())
        .idle_timeout(Duration::from_millis(300))
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        });
    let server = tokio::spawn(std::future::IntoFuture::into_future(server));

    let stream = start_http2(addr).await;

    // The peer stays connected and never answers the GOAWAY ping.
    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(matches!(finished, Ok(Ok(Ok(())))), "{finished:?}");
    drop(stream);
}

#[tokio::test]
async fn http2_peer_that_only_pings_is_closed() {
    let addr = start_with(|serve| serve.idle_timeout(Duration::from_millis(300))).await;
    let (mut read, mut write) = start_http2(addr).await.into_split();
    // A PING (length 8, type 6) every 50 ms: bytes move, no request ever.
    tokio::spawn(async move {
        let ping = b"\0\0\x08\x06\0\0\0\0\0pingpong";
        while write.write_all(ping).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    // The server answers every ping, so read until the end of the stream
    // under one overall deadline.
    let started = Instant::now();
    let until_closed = async {
        let mut buf = [0u8; 256];
        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    let closed = tokio::time::timeout(Duration::from_secs(5), until_closed).await;
    assert!(closed.is_ok(), "a pinging peer kept the connection for 5 s");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_response_streaming_longer_than_the_idle_timeout_is_not_cut() {
    use futures_util::StreamExt;

    let chunks = || {
        let ticks = futures_util::stream::iter(0..20).then(|i| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, std::convert::Infallible>(format!("chunk {i}\n"))
        });
        axum::body::Body::from_stream(ticks)
    };
    let app = Router::new().route("/stream", get(move || async move { chunks() }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        tower_principal_mtls::serve_plain(listener, app).idle_timeout(Duration::from_millis(300));
    tokio::spawn(std::future::IntoFuture::into_future(server));

    for client in [
        reqwest::Client::new(),
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap(),
    ] {
        let response = client.get(format!("http://{addr}/stream")).send().await;
        let body = response.unwrap().text().await.unwrap();
        assert_eq!(body.lines().count(), 20, "{body}");
    }
}
