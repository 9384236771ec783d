//! [`MemoryStore`]: keys held in process, from code, TOML text or the environment.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tower_principal::BoxFuture;

use crate::store::format::{self, KeyMap};
use crate::store::{KeyStore, LoadError, StoreError};
use crate::{KeyId, StoredKey};

/// Keys in memory, looked up by id in a hash map.
///
/// Lookups read an immutable snapshot without locking; changes
/// ([`insert`](MemoryStore::insert), [`revoke`](MemoryStore::revoke),
/// [`replace`](MemoryStore::replace), …) swap in a new snapshot, so requests
/// in flight are never blocked or dropped. Clones share the same keys.
///
/// # From the environment
///
/// [`MemoryStore::from_env`] reads the same TOML as a store file from a
/// variable. TOML's inline form puts a store on one line, which suits
/// container environments:
///
/// ```text
/// TP_API_KEYS='keys = [{ id = "a1b2c3d4e5f6", account = "order-processor", scopes = ["orders:read"], sha256 = "…" }]'
/// ```
///
/// # Example
///
/// ```
/// use tower_principal_apikey::MemoryStore;
///
/// let store = MemoryStore::from_toml(r#"
///     [[keys]]
///     id = "a1b2c3d4e5f6"
///     account = "order-processor"
///     scopes = ["orders:read", "orders:process"]
///     sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// "#).unwrap();
/// assert_eq!(store.len(), 1);
///
/// assert!(MemoryStore::from_toml("keys = [{ id = 'a' }]").is_err());
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    keys: Arc<ArcSwap<KeyMap>>,
}

impl MemoryStore {
    /// A store of `keys`; two keys with one id are an error.
    pub fn new(keys: impl IntoIterator<Item = StoredKey>) -> Result<Self, LoadError> {
        let keys = format::index_by_id(keys.into_iter().map(Ok))?;
        Ok(Self::from_map(keys))
    }

    /// A store from TOML text in the store file format.
    pub fn from_toml(text: &str) -> Result<Self, LoadError> {
        format::parse(text).map(Self::from_map)
    }

    /// A store from the TOML held by the environment variable `name`.
    ///
    /// An unset variable is an error: a deployment that forgot its keys
    /// should not start.
    pub fn from_env(name: &str) -> Result<Self, LoadError> {
        let text = std::env::var(name).map_err(|source| LoadError::Env {
            name: name.to_owned(),
            source,
        })?;
        Self::from_toml(&text)
    }

    pub(crate) fn from_map(keys: KeyMap) -> Self {
        Self {
            keys: Arc::new(ArcSwap::from_pointee(keys)),
        }
    }

    /// Adds `key`, or replaces the key with its id; returns the replaced key.
    pub fn insert(&self, key: StoredKey) -> Option<Arc<StoredKey>> {
        let key = Arc::new(key);
        let mut replaced = None;
        self.keys.rcu(|keys| {
            let mut keys = KeyMap::clone(keys);
            replaced = keys.insert(key.id().clone(), key.clone());
            keys
        });
        replaced
    }

    /// Marks key `id` revoked; returns whether the store holds it.
    pub fn revoke(&self, id: &KeyId) -> bool {
        let mut found = false;
        self.keys.rcu(|keys| {
            let mut keys = KeyMap::clone(keys);
            found = match keys.get_mut(id) {
                Some(key) => {
                    *key = Arc::new(StoredKey::clone(key).with_revoked(true));
                    true
                }
                None => false,
            };
            keys
        });
        found
    }

    /// Removes key `id`; returns it if the store held it.
    pub fn remove(&self, id: &KeyId) -> Option<Arc<StoredKey>> {
        let mut removed = None;
        self.keys.rcu(|keys| {
            let mut keys = KeyMap::clone(keys);
            removed = keys.remove(id);
            keys
        });
        removed
    }

    /// Replaces every key at once; on a duplicate id nothing changes.
    pub fn replace(&self, keys: impl IntoIterator<Item = StoredKey>) -> Result<(), LoadError> {
        let keys = format::index_by_id(keys.into_iter().map(Ok))?;
        self.replace_map(keys);
        Ok(())
    }

    pub(crate) fn replace_map(&self, keys: KeyMap) {
        self.keys.store(Arc::new(keys));
    }

    /// The key with `id`, if any, without going through [`KeyStore`].
    pub fn get(&self, id: &KeyId) -> Option<Arc<StoredKey>> {
        self.keys.load().get(id).cloned()
    }

    /// How many keys the store holds (revoked and expired ones included).
    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.load().is_empty()
    }
}

impl KeyStore for MemoryStore {
    fn lookup<'a>(
        &'a self,
        id: &'a KeyId,
    ) -> BoxFuture<'a, Result<Option<Arc<StoredKey>>, StoreError>> {
        let key = self.get(id);
        Box::pin(async move { Ok(key) })
    }
}

/// Lists key ids only.
impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.load();
        let mut ids: Vec<&KeyId> = keys.keys().collect();
        ids.sort();
        f.debug_struct("MemoryStore")
            .field("key_ids", &ids)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use tower_principal::Scopes;

    use super::*;
    use crate::{AccountName, SecretHash};

    fn key(id: &str) -> StoredKey {
        StoredKey::new(
            KeyId::new(id).unwrap(),
            AccountName::new("svc").unwrap(),
            Scopes::new(),
            SecretHash::of_secret(id),
        )
    }

    #[test]
    fn changes_are_seen_by_clones() {
        let store = MemoryStore::new([key("a")]).unwrap();
        let clone = store.clone();
        let a = KeyId::new("a").unwrap();

        assert!(clone.insert(key("b")).is_none());
        assert!(store.revoke(&a));
        assert!(store.get(&a).unwrap().is_revoked());
        assert_eq!(store.len(), 2);
        assert!(clone.remove(&a).is_some());
        assert!(!store.revoke(&a));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn duplicates_are_refused_and_leave_keys_alone() {
        assert!(MemoryStore::new([key("a"), key("a")]).is_err());
        let store = MemoryStore::new([key("a")]).unwrap();
        assert!(store.replace([key("b"), key("b")]).is_err());
        assert!(store.get(&KeyId::new("a").unwrap()).is_some());
    }

    #[test]
    fn unset_env_var_is_an_error() {
        let err = MemoryStore::from_env("TP_API_KEYS_SURELY_UNSET_5F2A").unwrap_err();
        assert!(matches!(err, LoadError::Env { .. }));
    }
}
