//! [`ApiKeyAuthenticator`]: API keys to [`Principal::System`].

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use http::request::Parts;
use subtle::ConstantTimeEq;
use tower_principal::{
    AuthError, AuthMethod, Authenticator, BoxFuture, Credential, Principal, Reason, SystemAccount,
};

use crate::{ApiKey, KeyPrefix, KeyStore, SecretHash};

/// Compared against when the key id is unknown, so that path hashes and
/// compares like the others. No secret hashes to all zeros.
const DUMMY_HASH: SecretHash = SecretHash::from_bytes([0; 32]);

/// Verifies API keys against a [`KeyStore`] and yields [`Principal::System`].
///
/// Give it to [`AuthLayerBuilder::api_key`](tower_principal::AuthLayerBuilder::api_key),
/// which reads keys from `Authorization: ApiKey <key>` or the `X-Api-Key`
/// header (never from the query string). For each key it:
///
/// 1. parses `<prefix>_<key id>_<secret>` and checks the prefix;
/// 2. looks the key id up in the store (one lookup, no scan);
/// 3. hashes the secret with SHA-256 and compares it in constant time with
///    the stored hash, or with a fixed dummy hash if the id is unknown, so
///    both failures cost the same;
/// 4. refuses revoked and expired keys.
///
/// Every refusal is 401 `invalid_token` with the same body; only the logged
/// [`Reason`] differs: `malformed_token` (shape or prefix), `unknown_key`,
/// `bad_signature` (wrong secret), `revoked`, `expired`. A store that cannot
/// answer gives 503 (`keys_unavailable`), a credential other than an API key
/// 500 (`misconfigured`). The key is never logged; the layer logs each
/// rejection once.
///
/// On success the principal is the key's account, with the key's scopes and
/// [`AuthMethod::ApiKey`] naming the key id.
///
/// ```
/// use tower_principal::{AuthLayer, Credential, Scopes, Authenticator};
/// use tower_principal_apikey::{
///     AccountName, ApiKey, ApiKeyAuthenticator, KeyPrefix, MemoryStore, StoredKey,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let key = ApiKey::generate(&KeyPrefix::default()).unwrap();
/// let scopes = Scopes::parse_space_delimited("orders:read").unwrap();
/// let account = AccountName::new("order-processor").unwrap();
/// let store = MemoryStore::new([
///     StoredKey::new(key.id().clone(), account, scopes, key.secret_hash()),
/// ]).unwrap();
/// let authenticator = ApiKeyAuthenticator::new(store);
///
/// let (parts, ()) = http::Request::new(()).into_parts();
/// let credential = Credential::ApiKey(key.expose_secret().to_owned());
/// let principal = authenticator.authenticate(&credential, &parts).await.unwrap();
/// assert_eq!(principal.subject(), "order-processor");
/// assert!(principal.has_scope("orders:read"));
///
/// let wrong = Credential::ApiKey(format!("tp_{}_{}", key.id(), "A".repeat(43)));
/// let error = authenticator.authenticate(&wrong, &parts).await.unwrap_err();
/// assert_eq!(error.kind().status(), 401);
///
/// let layer = AuthLayer::builder().api_key(authenticator).build().unwrap();
/// # let _ = layer;
/// # }
/// ```
pub struct ApiKeyAuthenticator {
    store: Arc<dyn KeyStore>,
    prefix: KeyPrefix,
}

impl ApiKeyAuthenticator {
    /// Verifies keys with the default prefix `tp` against `store`.
    pub fn new(store: impl KeyStore) -> Self {
        Self {
            store: Arc::new(store),
            prefix: KeyPrefix::default(),
        }
    }

    /// Accepts only keys starting with `prefix` instead of `tp`.
    pub fn with_prefix(mut self, prefix: KeyPrefix) -> Self {
        self.prefix = prefix;
        self
    }

    /// The accepted prefix.
    pub fn prefix(&self) -> &KeyPrefix {
        &self.prefix
    }

    async fn verify(&self, presented: &str) -> Result<Principal, AuthError> {
        let key = ApiKey::parse(presented).map_err(|_| reject(Reason::MalformedToken))?;
        if key.prefix() != &self.prefix {
            return Err(reject(Reason::MalformedToken));
        }

        let stored = self.store.lookup(key.id()).await.map_err(|error| {
            tracing::warn!(error = %error, "API key store lookup failed");
            AuthError::unavailable(Reason::KeysUnavailable)
        })?;

        let expected = stored
            .as_deref()
            .map_or(&DUMMY_HASH, |stored| stored.hash());
        let matches = bool::from(key.secret_hash().ct_eq(expected));
        let Some(stored) = stored else {
            return Err(reject(Reason::UnknownKey));
        };
        if !matches {
            return Err(reject(Reason::BadSignature));
        }
        if stored.is_revoked() {
            return Err(reject(Reason::Revoked));
        }
        if stored.is_expired_at(SystemTime::now()) {
            return Err(reject(Reason::Expired));
        }

        tracing::trace!(key_id = %stored.id(), account = %stored.account(), "API key accepted");
        let method = AuthMethod::ApiKey {
            key_id: stored.id().to_string(),
        };
        let account =
            SystemAccount::new(stored.account().to_arc(), stored.scopes().clone(), method);
        Ok(Principal::System(account))
    }
}

fn reject(reason: Reason) -> AuthError {
    AuthError::invalid_token(reason)
}

impl Authenticator for ApiKeyAuthenticator {
    fn authenticate<'a>(
        &'a self,
        credential: &'a Credential,
        _request: &'a Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(async move {
            match credential {
                Credential::ApiKey(key) => self.verify(key).await,
                _ => Err(AuthError::internal(Reason::Misconfigured)),
            }
        })
    }
}

impl fmt::Debug for ApiKeyAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyAuthenticator")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tower_principal::Scopes;

    use super::*;
    use crate::{AccountName, MemoryStore, StoreError, StoredKey};

    struct Fixture {
        authenticator: ApiKeyAuthenticator,
        store: MemoryStore,
        key: ApiKey,
    }

    fn fixture() -> Fixture {
        let key = ApiKey::generate(&KeyPrefix::default()).unwrap();
        let stored = StoredKey::new(
            key.id().clone(),
            AccountName::new("order-processor").unwrap(),
            Scopes::parse_space_delimited("orders:read").unwrap(),
            key.secret_hash(),
        );
        let store = MemoryStore::new([stored]).unwrap();
        let authenticator = ApiKeyAuthenticator::new(store.clone());
        Fixture {
            authenticator,
            store,
            key,
        }
    }

    async fn reason(authenticator: &ApiKeyAuthenticator, credential: Credential) -> Reason {
        let (parts, ()) = http::Request::new(()).into_parts();
        let error = authenticator
            .authenticate(&credential, &parts)
            .await
            .unwrap_err();
        error.reason()
    }

    async fn api_key_reason(authenticator: &ApiKeyAuthenticator, key: &str) -> Reason {
        reason(authenticator, Credential::ApiKey(key.to_owned())).await
    }

    fn stored(fixture: &Fixture) -> StoredKey {
        StoredKey::clone(&fixture.store.get(fixture.key.id()).unwrap())
    }

    #[tokio::test]
    async fn valid_key_is_a_system_principal() {
        let f = fixture();
        let (parts, ()) = http::Request::new(()).into_parts();
        let credential = Credential::ApiKey(f.key.expose_secret().to_owned());
        let principal = f
            .authenticator
            .authenticate(&credential, &parts)
            .await
            .unwrap();

        let account = principal.as_system().unwrap();
        assert_eq!(account.name(), "order-processor");
        assert_eq!(account.scopes().to_string(), "orders:read");
        let key_id = f.key.id().to_string();
        assert_eq!(account.method(), &AuthMethod::ApiKey { key_id });
    }

    #[tokio::test]
    async fn each_failure_has_its_reason() {
        let f = fixture();
        let id = f.key.id();
        let other_secret = "A".repeat(43);

        let cases = [
            ("garbage".to_owned(), Reason::MalformedToken),
            (format!("xx_{id}_{other_secret}"), Reason::MalformedToken),
            (format!("tp_zzzz_{other_secret}"), Reason::UnknownKey),
            (format!("tp_{id}_{other_secret}"), Reason::BadSignature),
        ];
        for (key, expected) in cases {
            assert_eq!(
                api_key_reason(&f.authenticator, &key).await,
                expected,
                "{key}"
            );
        }
    }

    #[tokio::test]
    async fn revoked_and_expired_keys_are_refused() {
        let f = fixture();
        let full = f.key.expose_secret();

        f.store
            .insert(stored(&f).with_expiry(SystemTime::now() - Duration::from_secs(1)));
        assert_eq!(
            api_key_reason(&f.authenticator, full).await,
            Reason::Expired
        );

        f.store.insert(stored(&f).with_revoked(true));
        assert_eq!(
            api_key_reason(&f.authenticator, full).await,
            Reason::Revoked
        );
    }

    #[tokio::test]
    async fn custom_prefix_refuses_the_default() {
        let f = fixture();
        let authenticator =
            ApiKeyAuthenticator::new(f.store.clone()).with_prefix(KeyPrefix::new("shop").unwrap());
        let reason = api_key_reason(&authenticator, f.key.expose_secret()).await;
        assert_eq!(reason, Reason::MalformedToken);
    }

    #[tokio::test]
    async fn other_credentials_are_a_misconfiguration() {
        let f = fixture();
        let bearer = Credential::Bearer(f.key.expose_secret().to_owned());
        assert_eq!(
            reason(&f.authenticator, bearer).await,
            Reason::Misconfigured
        );
    }

    #[tokio::test]
    async fn store_failure_is_unavailable() {
        struct Down;
        impl KeyStore for Down {
            fn lookup<'a>(
                &'a self,
                _: &'a crate::KeyId,
            ) -> BoxFuture<'a, Result<Option<Arc<StoredKey>>, StoreError>> {
                Box::pin(async { Err(StoreError::new("down")) })
            }
        }

        let f = fixture();
        let authenticator = ApiKeyAuthenticator::new(Down);
        let (parts, ()) = http::Request::new(()).into_parts();
        let credential = Credential::ApiKey(f.key.expose_secret().to_owned());
        let error = authenticator
            .authenticate(&credential, &parts)
            .await
            .unwrap_err();
        assert_eq!(error, AuthError::unavailable(Reason::KeysUnavailable));
    }
}
