//! The background task that refreshes one cache before its keys expire.

use std::sync::Weak;

use super::{Inner, Trigger};

/// Sleeps until the next refresh is due, fetches, and repeats; ends when the
/// cache is dropped (it holds only a weak reference between fetches).
pub(super) async fn run(cache: Weak<Inner>) {
    loop {
        let Some(inner) = cache.upgrade() else { return };
        let due = inner.next_refresh();
        drop(inner);
        tokio::time::sleep_until(due.into()).await;

        let Some(inner) = cache.upgrade() else { return };
        // Someone else may have refreshed meanwhile; then just sleep again.
        if inner.next_refresh() > std::time::Instant::now() {
            continue;
        }
        let fetch = inner.start_fetch(Trigger::Background);
        drop(inner);
        if let Some(fetch) = fetch {
            // The outcome is recorded in the cache; errors are logged there.
            let _ = fetch.await;
        }
    }
}
