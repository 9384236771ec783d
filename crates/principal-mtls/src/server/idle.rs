//! Closing connections that do nothing: I/O that notes whether it read or
//! wrote a byte, guards that count the requests in flight (until their
//! response bodies end), and a watchdog that fires once a connection has been
//! idle for too long.
//!
//! hyper bounds the arrival of HTTP/1.1 request heads, but not of HTTP/2 ones,
//! and keeps an HTTP/2 connection that exchanged its settings and then sends
//! nothing (or only pings) forever; this bounds both.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, MissedTickBehavior};

/// What a connection did lately, shared between its I/O, its requests and its
/// watchdog. The hot path only sets flags and counts (no clock reads); the
/// watchdog looks at them a few times per timeout.
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// A byte was read or written since the watchdog last looked.
    moved: AtomicBool,
    /// A request began since the watchdog last looked.
    requested: AtomicBool,
    /// Requests whose response has not ended yet.
    in_flight: AtomicUsize,
}

/// How many quiet looks in a row make a connection idle.
const QUIET_LOOKS: u32 = 4;

impl Activity {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn touch(&self) {
        self.moved.store(true, Ordering::Relaxed);
    }

    /// Counts a request as in flight until the returned guard is dropped.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.requested.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Completes once, for at least `timeout` (and at most a quarter more),
    /// counted from this call: no byte has moved, or no request has begun
    /// while none was in flight. The first catches silent peers, the second
    /// peers that keep a connection busy without ever finishing a request
    /// (trickled HTTP/2 headers, pings).
    pub(super) async fn idle_for(&self, timeout: Duration) {
        let look = (timeout / QUIET_LOOKS).max(Duration::from_millis(1));
        let mut looks = tokio::time::interval_at(Instant::now() + look, look);
        looks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut silent, mut unused) = (0, 0);
        while silent < QUIET_LOOKS && unused < QUIET_LOOKS {
            looks.tick().await;
            let moved = self.moved.swap(false, Ordering::Relaxed);
            let requested = self.requested.swap(false, Ordering::Relaxed);
            let serving = self.in_flight.load(Ordering::Relaxed) > 0;
            silent = if moved { 0 } else { silent + 1 };
            unused = if requested || serving { 0 } else { unused + 1 };
        }
    }
}

/// One request in flight; see [`Activity::begin`].
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project! {
    /// A service's response future that counts its request as in flight
    /// from the call until the response body ends ([`GuardedBody`]).
    pub(super) struct Guarded<F> {
        #[pin]
        inner: F,
        guard: Option<InFlight>,
    }
}

impl<F> Guarded<F> {
    pub(super) fn new(inner: F, activity: &Arc<Activity>) -> Self {
        Self {
            inner,
            guard: Some(activity.begin()),
        }
    }
}

impl<F, B> Future for Guarded<F>
where
    F: Future<Output = Result<http::Response<B>, Infallible>>,
{
    type Output = Result<http::Response<GuardedBody<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match std::task::ready!(this.inner.poll(cx)) {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let guard = this.guard.take();
        Poll::Ready(Ok(response.map(|body| GuardedBody { body, guard })))
    }
}

pin_project! {
    /// A response body that keeps its request counted as in flight until it
    /// ends or is dropped.
    pub(super) struct GuardedBody<B> {
        #[pin]
        body: B,
        guard: Option<InFlight>,
    }
}

impl<B: Body<Data = Bytes>> Body for GuardedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = this.body.poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) {
            this.guard.take();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

pin_project! {
    /// I/O that records its activity.
    pub(super) struct Tracked<I> {
        #[pin]
        io: I,
        activity: Arc<Activity>,
    }
}

impl<I> Tracked<I> {
    pub(super) fn new(io: I, activity: Arc<Activity>) -> Self {
        Self { io, activity }
    }
}

impl<I: AsyncRead> AsyncRead for Tracked<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.io.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        result
    }
}

impl<I: AsyncWrite> AsyncWrite for Tracked<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(400);

    /// Runs `busy` against the watchdog: it must not fire before `busy` ends.
    async fn survives(activity: &Activity, busy: impl Future<Output = ()>) {
        tokio::select! {
            () = activity.idle_for(TIMEOUT) => panic!("idle while busy"),
            () = busy => {}
        }
    }

    #[tokio::test]
    async fn bytes_and_requests_keep_a_connection_alive_and_silence_does_not() {
        let activity = Activity::new();

        // Bytes and a short request every 20 ms.
        survives(&activity, async {
            for _ in 0..30 {
                activity.touch();
                drop(activity.begin());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;

        let quiet_since = Instant::now();
        activity.idle_for(TIMEOUT).await;
        assert!(
            quiet_since.elapsed() >= TIMEOUT,
            "{:?}",
            quiet_since.elapsed()
        );
    }

    #[tokio::test]
    async fn bytes_without_requests_are_idle_but_a_request_in_flight_is_not() {
        let activity = Activity::new();

        // A peer that only pings: bytes move, no request ever begins.
        let pinging = async {
            loop {
                activity.touch();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let started = Instant::now();
        tokio::select! {
            () = activity.idle_for(TIMEOUT) => {}
            () = pinging => {}
        }
        assert!(started.elapsed() >= TIMEOUT, "{:?}", started.elapsed());

        // A long response streaming its body: one request in flight.
        let guard = activity.begin();
        survives(&activity, async {
            for _ in 0..30 {
                activity.touch();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        drop(guard);
        assert_eq!(activity.in_flight.load(Ordering::Relaxed), 0);
    }
}
