//! Where keys live: the [`KeyStore`] trait and its errors.

use std::path::PathBuf;
use std::sync::Arc;

use tower_principal::BoxFuture;

use crate::{FormatError, KeyId, StoredKey};

pub(crate) mod file;
pub(crate) mod format;
pub(crate) mod memory;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Looks keys up by their id.
///
/// Object-safe and asynchronous, so a database-backed store fits behind the
/// same [`ApiKeyAuthenticator`](crate::ApiKeyAuthenticator) as the in-memory
/// and file stores of this crate. A lookup must be by id (an index, a hash
/// map), never a scan comparing secrets.
///
/// ```
/// use std::sync::Arc;
/// use tower_principal::BoxFuture;
/// use tower_principal_apikey::{KeyId, KeyStore, StoreError, StoredKey};
///
/// /// A store that is always down, as a database might be.
/// struct Down;
///
/// impl KeyStore for Down {
///     fn lookup<'a>(
///         &'a self,
///         _id: &'a KeyId,
///     ) -> BoxFuture<'a, Result<Option<Arc<StoredKey>>, StoreError>> {
///         Box::pin(async { Err(StoreError::new("connection refused")) })
///     }
/// }
///
/// let authenticator = tower_principal_apikey::ApiKeyAuthenticator::new(Down);
/// # let _ = authenticator;
/// ```
pub trait KeyStore: Send + Sync + 'static {
    /// The key with `id`, `Ok(None)` if there is none, or an error if the
    /// store cannot answer (answered with 503, not 401).
    fn lookup<'a>(
        &'a self,
        id: &'a KeyId,
    ) -> BoxFuture<'a, Result<Option<Arc<StoredKey>>, StoreError>>;
}

impl<S: KeyStore + ?Sized> KeyStore for Arc<S> {
    fn lookup<'a>(
        &'a self,
        id: &'a KeyId,
    ) -> BoxFuture<'a, Result<Option<Arc<StoredKey>>, StoreError>> {
        (**self).lookup(id)
    }
}

/// A store could not answer a lookup (a database down, say).
#[derive(Debug, thiserror::Error)]
#[error("key store unavailable: {0}")]
pub struct StoreError(#[source] BoxError);

impl StoreError {
    /// Wraps the underlying cause.
    pub fn new(cause: impl Into<BoxError>) -> Self {
        Self(cause.into())
    }
}

/// Keys could not be loaded: a missing or malformed file or variable.
///
/// Returned by constructors, so a bad configuration stops start-up instead of
/// failing requests. Messages name the place (file, entry, field) but never
/// quote secrets, which a store does not hold anyway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The store file could not be read.
    #[error("cannot read key store {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The environment variable is unset or not Unicode.
    #[error("cannot read key store from environment variable {name}")]
    Env {
        /// The variable.
        name: String,
        /// Why it could not be read.
        #[source]
        source: std::env::VarError,
    },
    /// The text is not TOML of the store format.
    #[error("key store is not valid TOML of the expected form")]
    Syntax(#[source] BoxError),
    /// One entry has an invalid field.
    #[error("key store entry {index} (from 0): invalid {field}")]
    InvalidEntry {
        /// The position of the entry in `keys`.
        index: usize,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        #[source]
        source: FormatError,
    },
    /// Two entries share one key id.
    #[error("key id {0} appears more than once in the key store")]
    DuplicateKeyId(KeyId),
    /// Watching for changes needs a Tokio runtime, and none is running.
    #[error("watching the key store needs a running Tokio runtime")]
    NoRuntime,
    /// The SIGHUP handler could not be installed.
    #[error("cannot listen for SIGHUP")]
    Signal(#[source] std::io::Error),
}
