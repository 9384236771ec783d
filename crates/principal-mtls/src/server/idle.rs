//! Closing connections on which nothing moves: I/O that notes whether it
//! read or wrote a byte, and a watchdog that fires once nothing has moved for
//! too long.
//!
//! hyper bounds the arrival of HTTP/1.1 request heads, but an HTTP/2
//! connection that exchanged its settings and then sends nothing is kept
//! forever; this bounds both.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, MissedTickBehavior};

/// Whether a connection moved a byte lately, shared between its I/O and its
/// watchdog. The I/O only sets a flag (no clock read per read or write); the
/// watchdog looks at it a few times per timeout.
#[derive(Debug, Default)]
pub(super) struct Activity {
    moved: AtomicBool,
}

/// How many quiet looks in a row make a connection idle.
const QUIET_LOOKS: u32 = 4;

impl Activity {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub(super) fn touch(&self) {
        self.moved.store(true, Ordering::Relaxed);
    }

    /// Completes once no byte has moved for at least `timeout` (and at most
    /// a quarter more), counted from the last activity or from this call,
    /// whichever is later.
    pub(super) async fn idle_for(&self, timeout: Duration) {
        let look = (timeout / QUIET_LOOKS).max(Duration::from_millis(1));
        let mut looks = tokio::time::interval_at(Instant::now() + look, look);
        looks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut quiet = 0;
        while quiet < QUIET_LOOKS {
            looks.tick().await;
            quiet = if self.moved.swap(false, Ordering::Relaxed) {
                0
            } else {
                quiet + 1
            };
        }
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

    #[tokio::test]
    async fn the_watchdog_fires_only_after_a_quiet_timeout() {
        let activity = Activity::new();
        let timeout = Duration::from_millis(400);

        // Bytes moving every 20 ms keep the connection alive.
        let busy = async {
            for _ in 0..30 {
                activity.touch();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let started = Instant::now();
        tokio::select! {
            () = activity.idle_for(timeout) => panic!("idle while busy"),
            () = busy => {}
        }
        assert!(started.elapsed() >= Duration::from_millis(600));

        // Then silence: idle no sooner than the timeout after the last byte.
        let quiet_since = Instant::now();
        activity.idle_for(timeout).await;
        assert!(
            quiet_since.elapsed() >= timeout,
            "{:?}",
            quiet_since.elapsed()
        );
    }
}
