//! What a store holds per key: [`StoredKey`] and its [`AccountName`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use tower_principal::Scopes;

use crate::{FormatError, KeyId, SecretHash, time};

/// The name of a system account, such as `order-processor`.
///
/// One to 128 printable ASCII characters without space, `"` or `\`. It becomes
/// the [`Principal`](tower_principal::Principal)'s subject, so it is kept free
/// of anything that could forge a log line.
///
/// ```
/// use tower_principal_apikey::AccountName;
///
/// assert!("order-processor".parse::<AccountName>().is_ok());
/// assert!("order processor".parse::<AccountName>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountName(Arc<str>);

impl AccountName {
    /// Checks and wraps an account name.
    pub fn new(name: &str) -> Result<Self, FormatError> {
        let valid = (1..=128).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !valid {
            return Err(FormatError::new(
                "an account name is 1 to 128 printable ASCII characters without space, '\"' or '\\'",
            ));
        }
        Ok(Self(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn to_arc(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl FromStr for AccountName {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Debug for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One key as a store keeps it: no secret, only its [`SecretHash`].
///
/// An account may own several keys at once; that is how keys rotate: add the
/// new key, move the client over, then revoke or remove the old one.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_principal::Scopes;
/// use tower_principal_apikey::{AccountName, ApiKey, KeyPrefix, StoredKey};
///
/// let key = ApiKey::generate(&KeyPrefix::default()).unwrap();
/// let account = AccountName::new("order-processor").unwrap();
/// let scopes = Scopes::parse_space_delimited("orders:read").unwrap();
/// let in_a_year = SystemTime::now() + Duration::from_secs(365 * 86_400);
///
/// let stored = StoredKey::new(key.id().clone(), account, scopes, key.secret_hash())
///     .with_expiry(in_a_year);
/// assert!(!stored.is_expired_at(SystemTime::now()));
/// assert!(stored.to_toml().starts_with("[[keys]]\n"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    id: KeyId,
    account: AccountName,
    scopes: Scopes,
    hash: SecretHash,
    expires_at: Option<SystemTime>,
    revoked: bool,
}

impl StoredKey {
    /// A live key `id` of `account`, granting `scopes`, whose secret hashes to `hash`.
    pub fn new(id: KeyId, account: AccountName, scopes: Scopes, hash: SecretHash) -> Self {
        Self {
            id,
            account,
            scopes,
            hash,
            expires_at: None,
            revoked: false,
        }
    }

    /// Makes the key expire at `expires_at` (stores keep whole seconds).
    pub fn with_expiry(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Marks the key revoked (or not).
    pub fn with_revoked(mut self, revoked: bool) -> Self {
        self.revoked = revoked;
        self
    }

    /// The key id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The account the key authenticates.
    pub fn account(&self) -> &AccountName {
        &self.account
    }

    /// The scopes the key grants.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    /// SHA-256 of the key's secret.
    pub fn hash(&self) -> &SecretHash {
        &self.hash
    }

    /// When the key stops working, if ever.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Whether the key was revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked
    }

    /// Whether the key has expired at `now` (an expiry equal to `now` counts).
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }

    /// The key as a `[[keys]]` table of a store file.
    ///
    /// The expiry is written as an RFC 3339 date-time in UTC; the result
    /// loads back into an equal key (up to sub-second expiry precision).
    pub fn to_toml(&self) -> String {
        let scopes: Vec<String> = self.scopes.iter().map(|s| format!("\"{s}\"")).collect();
        let mut toml = format!(
            "[[keys]]\nid = \"{}\"\naccount = \"{}\"\nscopes = [{}]\nsha256 = \"{}\"\n",
            self.id,
            self.account,
            scopes.join(", "),
            self.hash,
        );
        if let Some(expires_at) = self.expires_at {
            toml.push_str(&format!("expires_at = {}\n", time::to_rfc3339(expires_at)));
        }
        if self.revoked {
            toml.push_str("revoked = true\n");
        }
        toml
    }
}
