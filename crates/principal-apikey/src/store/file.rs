//! [`FileStore`]: keys from a TOML file, reloaded while the server runs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::task::AbortHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tower_principal::BoxFuture;

use crate::store::format;
use crate::store::{KeyStore, LoadError, StoreError};
use crate::{KeyId, MemoryStore, StoredKey};

const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Keys from a TOML file, reloaded when the file changes or on `SIGHUP`.
///
/// The file is read once by [`FileStoreBuilder::build`]; a missing or invalid
/// file is an error there, so a server with a bad store does not start. After
/// that a background task (on the current Tokio runtime) re-reads the file
/// every [poll interval](FileStoreBuilder::poll_interval) and whenever the
/// process receives `SIGHUP`. When the content changed and parses, the new
/// keys replace the old ones in one atomic swap: requests in flight finish
/// with the snapshot they started with, none waits or fails. When it does not
/// parse (or cannot be read), the previous keys stay in use and the failure
/// is logged once at `warn`; successful reloads are logged at `info`.
///
/// The task stops when the last clone of the store is dropped.
///
/// # File format
///
/// ```toml
/// [[keys]]
/// id = "a1b2c3d4e5f6"                  # [A-Za-z0-9]{1,64}
/// account = "order-processor"          # the principal's subject
/// scopes = ["orders:read", "orders:process"]
/// sha256 = "ba7816bf…"                 # 64 hex digits: SHA-256 of the secret part
/// expires_at = 2026-01-01T00:00:00Z    # optional; or Unix seconds: 1767225600
/// revoked = false                      # optional
/// ```
///
/// `keys` is required (write `keys = []` for an empty store), unknown fields
/// and duplicate ids are errors. The `tower-principal apikey new` command
/// prints such entries.
///
/// # Deployment notes
///
/// * Replace the file atomically (write a temporary file, then rename it over
///   the old one). A reload that catches a half-written file only keeps the
///   old keys until the next poll, but an edit cut exactly between two
///   entries would parse.
/// * Listening for `SIGHUP` replaces its default action (terminating the
///   process) for the whole process, for as long as it runs. Turn it off
///   with [`FileStoreBuilder::reload_on_sighup`] if something else owns it.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use tower_principal::AuthLayer;
/// use tower_principal_apikey::{ApiKeyAuthenticator, FileStore};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = FileStore::builder("/etc/orders/api-keys.toml")
///     .poll_interval(Duration::from_secs(5))
///     .build()?;
/// let layer = AuthLayer::builder()
///     .api_key(ApiKeyAuthenticator::new(store))
///     .build()?;
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct FileStore {
    keys: MemoryStore,
    file: Arc<WatchedFile>,
    watcher: Option<Arc<Watcher>>,
}

/// Builds a [`FileStore`]; see [`FileStore::builder`].
#[derive(Clone, Debug)]
pub struct FileStoreBuilder {
    path: PathBuf,
    poll_interval: Option<Duration>,
    reload_on_sighup: bool,
}

impl FileStore {
    /// Starts a store reading `path`: polling every 10 seconds and reloading
    /// on `SIGHUP` unless configured otherwise.
    pub fn builder(path: impl Into<PathBuf>) -> FileStoreBuilder {
        FileStoreBuilder {
            path: path.into(),
            poll_interval: Some(DEFAULT_POLL_INTERVAL),
            reload_on_sighup: true,
        }
    }

    /// A store of `path` with the default watching; see [`FileStore::builder`].
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, LoadError> {
        Self::builder(path).build()
    }

    /// Re-reads the file now, whether or not it changed, and returns how many
    /// keys it holds. On error the previous keys stay in use.
    ///
    /// This blocks on file I/O; from async code, call it through
    /// `tokio::task::spawn_blocking`.
    pub fn reload(&self) -> Result<usize, LoadError> {
        self.file.reload(&self.keys, true).map(|_| self.keys.len())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// How many keys the current snapshot holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the current snapshot holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl FileStoreBuilder {
    /// How often to check the file for changes (10 seconds by default).
    ///
    /// Each check reads the file and compares a digest of its content, so a
    /// change is seen even when the modification time is not.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval.max(MIN_POLL_INTERVAL));
        self
    }

    /// Does not poll; the file is then reloaded only on `SIGHUP` or
    /// [`FileStore::reload`].
    pub fn no_polling(mut self) -> Self {
        self.poll_interval = None;
        self
    }

    /// Whether `SIGHUP` reloads the file (on by default; Unix only).
    pub fn reload_on_sighup(mut self, enabled: bool) -> Self {
        self.reload_on_sighup = enabled;
        self
    }

    /// Loads the file and starts watching it.
    ///
    /// Fails if the file cannot be read or parsed, or if watching is on and
    /// no Tokio runtime is running (or `SIGHUP` cannot be listened for).
    pub fn build(self) -> Result<FileStore, LoadError> {
        let file = Arc::new(WatchedFile {
            path: self.path,
            seen: Mutex::new(Seen::default()),
        });
        let keys = MemoryStore::from_map(file.load()?);

        let hangup = self.reload_on_sighup && cfg!(unix);
        let watcher = if self.poll_interval.is_some() || hangup {
            let runtime =
                tokio::runtime::Handle::try_current().map_err(|_| LoadError::NoRuntime)?;
            let hangup = Hangup::new(hangup)?;
            let task = watch(file.clone(), keys.clone(), self.poll_interval, hangup);
            Some(Arc::new(Watcher(runtime.spawn(task).abort_handle())))
        } else {
            None
        };

        Ok(FileStore {
            keys,
            file,
            watcher,
        })
    }
}

impl KeyStore for FileStore {
    fn lookup<'a>(
        &'a self,
        id: &'a KeyId,
    ) -> BoxFuture<'a, Result<Option<Arc<StoredKey>>, StoreError>> {
        self.keys.lookup(id)
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.file.path)
            .field("keys", &self.keys)
            .field("watching", &self.watcher.is_some())
            .finish()
    }
}

/// The file and what was last read from it.
struct WatchedFile {
    path: PathBuf,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// SHA-256 of the content last parsed, successfully or not.
    digest: Option<[u8; 32]>,
    /// Whether the last read failed, so a missing file warns once.
    read_failed: bool,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Replaced,
}

impl WatchedFile {
    /// Reads and parses the file, remembering its digest.
    fn load(&self) -> Result<format::KeyMap, LoadError> {
        let text = self.read()?;
        self.lock().digest = Some(Sha256::digest(text.as_bytes()).into());
        format::parse(&text)
    }

    /// Replaces the keys if the content changed (or always, if `force`).
    fn reload(&self, keys: &MemoryStore, force: bool) -> Result<Outcome, LoadError> {
        let text = self.read()?;
        let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        let previous = self.lock().digest.replace(digest);
        if previous == Some(digest) && !force {
            return Ok(Outcome::Unchanged);
        }

        keys.replace_map(format::parse(&text)?);
        Ok(Outcome::Replaced)
    }

    fn read(&self) -> Result<String, LoadError> {
        let result = std::fs::read_to_string(&self.path);
        self.lock().read_failed = result.is_err();
        result.map_err(|source| LoadError::Read {
            path: self.path.clone(),
            source,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Aborts the watch task when the last [`FileStore`] clone goes.
struct Watcher(AbortHandle);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Polls and listens for `SIGHUP` until aborted.
async fn watch(
    file: Arc<WatchedFile>,
    keys: MemoryStore,
    poll_interval: Option<Duration>,
    mut hangup: Hangup,
) {
    let mut ticker = poll_interval.map(|period| {
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    });

    loop {
        let force = tokio::select! {
            () = tick(&mut ticker) => false,
            () = hangup.recv() => true,
        };
        let (file, keys) = (file.clone(), keys.clone());
        let was_failing = file.lock().read_failed;
        let result = tokio::task::spawn_blocking(move || {
            let outcome = file.reload(&keys, force);
            (outcome, keys.len(), file)
        })
        .await;
        if let Ok((outcome, count, file)) = result {
            report(&file.path, outcome, count, force, was_failing);
        }
    }
}

/// Logs a reload: `info` when keys changed, `warn` once per failure.
fn report(
    path: &Path,
    outcome: Result<Outcome, LoadError>,
    keys: usize,
    forced: bool,
    was_failing: bool,
) {
    let path = path.display();
    match outcome {
        Ok(Outcome::Replaced) => tracing::info!(%path, keys, forced, "API key store reloaded"),
        Ok(Outcome::Unchanged) => tracing::trace!(%path, "API key store unchanged"),
        Err(LoadError::Read { .. }) if was_failing && !forced => {
            tracing::debug!(%path, "API key store still unreadable");
        }
        Err(error) => tracing::warn!(
            %path,
            error = %error_chain(&error),
            "API key store reload failed; keeping the previous keys"
        ),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// `SIGHUP` deliveries, or nothing on other platforms or when turned off.
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    /// Must run inside a Tokio runtime when `enabled`.
    fn new(enabled: bool) -> Result<Self, LoadError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};

            let signal = if enabled {
                Some(signal(SignalKind::hangup()).map_err(LoadError::Signal)?)
            } else {
                None
            };
            Ok(Self { signal })
        }
        #[cfg(not(unix))]
        {
            let _ = enabled;
            Ok(Self {})
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
            // The signal driver is gone; stop listening.
            self.signal = None;
        }
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn store_text(ids: &[&str]) -> String {
        ids.iter()
            .map(|id| format!("[[keys]]\nid = \"{id}\"\naccount = \"a\"\nsha256 = \"{HASH}\"\n"))
            .collect()
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tp-apikey-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn without_watching_needs_no_runtime() {
        let path = temp_file("no-runtime.toml", &store_text(&["a"]));
        let store = FileStore::builder(&path)
            .no_polling()
            .reload_on_sighup(false);
        assert_eq!(store.clone().build().unwrap().len(), 1);

        let err = FileStore::builder(&path).build().unwrap_err();
        assert!(matches!(err, LoadError::NoRuntime));
    }

    #[tokio::test]
    async fn watcher_stops_with_the_last_clone() {
        let path = temp_file("drop.toml", &store_text(&["a"]));
        let store = FileStore::builder(&path)
            .reload_on_sighup(false)
            .build()
            .unwrap();
        let task = store.watcher.as_ref().unwrap().0.clone();
        let clone = store.clone();

        drop(store);
        tokio::task::yield_now().await;
        assert!(!task.is_finished(), "a clone is still alive");

        drop(clone);
        for _ in 0..100 {
            if task.is_finished() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the watch task outlived every store");
    }

    #[test]
    fn reload_replaces_only_on_change_and_keeps_keys_on_error() {
        let path = temp_file("reload.toml", &store_text(&["a"]));
        let file = WatchedFile {
            path: path.clone(),
            seen: Mutex::new(Seen::default()),
        };
        let keys = MemoryStore::from_map(file.load().unwrap());

        assert_eq!(file.reload(&keys, false).unwrap(), Outcome::Unchanged);
        std::fs::write(&path, store_text(&["a", "b"])).unwrap();
        assert_eq!(file.reload(&keys, false).unwrap(), Outcome::Replaced);
        assert_eq!(keys.len(), 2);

        std::fs::write(&path, "keys = [").unwrap();
        assert!(file.reload(&keys, false).is_err());
        assert_eq!(file.reload(&keys, false).unwrap(), Outcome::Unchanged);
        assert!(file.reload(&keys, true).is_err());
        assert_eq!(keys.len(), 2);

        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            file.reload(&keys, false),
            Err(LoadError::Read { .. })
        ));
        assert!(file.lock().read_failed);
        assert_eq!(keys.len(), 2);
    }
}
