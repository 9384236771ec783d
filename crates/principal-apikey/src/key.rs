//! The key format `<prefix>_<key id>_<secret>` and its parts.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::SecretHash;

/// Longest prefix accepted, in bytes.
const MAX_PREFIX_LEN: usize = 16;
/// Longest key id accepted, in bytes.
const MAX_ID_LEN: usize = 64;
/// Length of generated key ids: 62^12, about 71 bits, keeps collisions unlikely.
const GENERATED_ID_LEN: usize = 12;
/// Bytes of randomness in a generated secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Shortest secret accepted: 22 base64url characters carry 128 bits.
const MIN_SECRET_LEN: usize = 22;
/// Longest secret accepted: 86 base64url characters carry 512 bits.
const MAX_SECRET_LEN: usize = 86;
/// Longest key accepted; anything longer is rejected before it is split.
const MAX_KEY_LEN: usize = MAX_PREFIX_LEN + MAX_ID_LEN + MAX_SECRET_LEN + 2;

/// Text that is not a valid key, key part, hash or account name.
///
/// The message names the rule that was broken, never the rejected text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(&'static str);

impl FormatError {
    pub(crate) const fn new(message: &'static str) -> Self {
        Self(message)
    }
}

/// The prefix that starts every key of a deployment, `tp` by default.
///
/// One to 16 lowercase ASCII letters or digits. A distinct prefix makes leaked
/// keys easy to find with secret scanners and tells deployments apart.
///
/// ```
/// use tower_principal_apikey::KeyPrefix;
///
/// assert_eq!(KeyPrefix::default().as_str(), "tp");
/// assert!("shop".parse::<KeyPrefix>().is_ok());
/// assert!("Shop".parse::<KeyPrefix>().is_err());
/// assert!("my_shop".parse::<KeyPrefix>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyPrefix(Arc<str>);

impl KeyPrefix {
    /// Checks and wraps a prefix.
    pub fn new(prefix: &str) -> Result<Self, FormatError> {
        let valid = (1..=MAX_PREFIX_LEN).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(FormatError::new(
                "a key prefix is 1 to 16 lowercase ASCII letters or digits",
            ));
        }
        Ok(Self(prefix.into()))
    }

    /// The prefix as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for KeyPrefix {
    /// `tp`.
    fn default() -> Self {
        Self("tp".into())
    }
}

impl FromStr for KeyPrefix {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The public identifier of one key, such as `a1b2c3d4e5f6`.
///
/// One to 64 ASCII letters or digits. Stores look keys up by it; it is not a
/// secret and may be logged, and it becomes the `key_id` of
/// [`AuthMethod::ApiKey`](tower_principal::AuthMethod::ApiKey).
///
/// ```
/// use tower_principal_apikey::KeyId;
///
/// let id: KeyId = "a1b2C3".parse().unwrap();
/// assert_eq!(id.as_str(), "a1b2C3");
/// assert!("a1-b2".parse::<KeyId>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Arc<str>);

impl KeyId {
    /// Checks and wraps a key id.
    pub fn new(id: &str) -> Result<Self, FormatError> {
        let valid =
            (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            return Err(FormatError::new(
                "a key id is 1 to 64 ASCII letters or digits",
            ));
        }
        Ok(Self(id.into()))
    }

    /// A new random key id of 12 letters and digits, from the OS random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        const ALPHABET: &[u8; 62] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

        let mut id = String::with_capacity(GENERATED_ID_LEN);
        let mut buf = [0u8; 32];
        while id.len() < GENERATED_ID_LEN {
            getrandom::fill(&mut buf)?;
            // 248 = 4 * 62: dropping larger bytes keeps every character equally likely.
            let chars = buf
                .iter()
                .filter(|&&b| b < 248)
                .map(|&b| ALPHABET[usize::from(b % 62)]);
            id.extend(chars.take(GENERATED_ID_LEN - id.len()).map(char::from));
        }
        Ok(Self(id.into()))
    }

    /// The key id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A whole API key, `<prefix>_<key id>_<secret>`, as a client presents it.
///
/// The secret is base64url without padding of at least 128 bits (generated
/// keys carry 256 bits from the OS random source). Base64url may itself
/// contain `_` and `-`, so a key is split at its *first two* underscores only;
/// neither prefix nor key id contains one.
///
/// `Debug` and `Display` show the prefix and key id but redact the secret;
/// [`ApiKey::expose_secret`] is the one way to the full text. There is no
/// `PartialEq`: compare [`ApiKey::secret_hash`]es, which compare in constant time.
///
/// ```
/// use tower_principal_apikey::{ApiKey, KeyPrefix};
///
/// let key = ApiKey::generate(&KeyPrefix::default()).unwrap();
/// let full = key.expose_secret().to_owned();
/// assert!(full.starts_with(&format!("tp_{}_", key.id())));
///
/// let parsed = ApiKey::parse(&full).unwrap();
/// assert_eq!(parsed.id(), key.id());
/// assert_eq!(parsed.secret_hash(), key.secret_hash());
/// assert_eq!(parsed.to_string(), format!("tp_{}_<redacted>", key.id()));
/// assert!(!format!("{parsed:?}").contains(&full[full.len() - 10..]));
/// ```
#[derive(Clone)]
pub struct ApiKey {
    full: String,
    prefix: KeyPrefix,
    id: KeyId,
    /// Byte offset of the secret in `full`.
    secret_at: usize,
}

impl ApiKey {
    /// A new key with `prefix`, a random key id and a random 256-bit secret.
    pub fn generate(prefix: &KeyPrefix) -> Result<Self, getrandom::Error> {
        let id = KeyId::generate()?;
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret)?;

        let full = format!("{prefix}_{id}_{}", URL_SAFE_NO_PAD.encode(secret));
        let secret_at = prefix.as_str().len() + id.as_str().len() + 2;
        Ok(Self {
            full,
            prefix: prefix.clone(),
            id,
            secret_at,
        })
    }

    /// Parses a presented key, whatever its prefix.
    ///
    /// Checks the shape only: prefix, key id, and a secret that is canonical
    /// base64url without padding of 128 to 512 bits. The error does not say
    /// which part failed, as a client has no use for it.
    pub fn parse(key: &str) -> Result<Self, FormatError> {
        const MALFORMED: FormatError =
            FormatError::new("an API key is <prefix>_<key id>_<base64url secret>");

        if key.len() > MAX_KEY_LEN {
            return Err(MALFORMED);
        }
        let mut parts = key.splitn(3, '_');
        let (Some(prefix), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(MALFORMED);
        };

        let prefix = KeyPrefix::new(prefix).map_err(|_| MALFORMED)?;
        let id = KeyId::new(id).map_err(|_| MALFORMED)?;
        if !is_secret(secret) {
            return Err(MALFORMED);
        }
        Ok(Self {
            full: key.to_owned(),
            secret_at: key.len() - secret.len(),
            prefix,
            id,
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &KeyPrefix {
        &self.prefix
    }

    /// The key id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// SHA-256 of the secret part, as a store keeps it.
    pub fn secret_hash(&self) -> SecretHash {
        SecretHash::of_secret(self.secret())
    }

    /// The full key text, secret included: give it to the client once, never log it.
    pub fn expose_secret(&self) -> &str {
        &self.full
    }

    fn secret(&self) -> &str {
        &self.full[self.secret_at..]
    }
}

/// Whether `secret` is canonical base64url without padding, of 128 to 512 bits.
fn is_secret(secret: &str) -> bool {
    (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len())
        && URL_SAFE_NO_PAD.decode(secret).is_ok()
}

impl FromStr for ApiKey {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Redacts the secret.
impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("prefix", &self.prefix)
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `<prefix>_<key id>_<redacted>`.
impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}_<redacted>", self.prefix, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 32 zero bytes, base64url: `AAAA…A` (43 characters).
    fn zero_secret() -> String {
        URL_SAFE_NO_PAD.encode([0u8; 32])
    }

    #[test]
    fn splits_at_the_first_two_underscores() {
        let secret = format!("_-{}", &zero_secret()[2..]);
        let key = ApiKey::parse(&format!("tp_abc123_{secret}")).unwrap();
        assert_eq!(key.prefix().as_str(), "tp");
        assert_eq!(key.id().as_str(), "abc123");
        assert_eq!(key.secret(), secret);
    }

    #[test]
    fn rejects_bad_shapes() {
        let secret = zero_secret();
        let bad = [
            String::new(),
            "tp".into(),
            "tp_abc".into(),
            format!("tp__{secret}"),
            format!("_abc_{secret}"),
            format!("TP_abc_{secret}"),
            format!("tp_ab-c_{secret}"),
            format!("tp_abc_{}", &secret[..21]),
            format!("tp_abc_{secret}="),
            format!("tp_abc_{}+", &secret[..42]),
            format!("tp_abc_{}", "A".repeat(87)),
            format!("tp_{}_{secret}", "a".repeat(65)),
        ];
        for key in bad {
            assert!(ApiKey::parse(&key).is_err(), "{key:?} should be rejected");
        }
    }

    #[test]
    fn rejects_non_canonical_base64() {
        // 22 characters carry 132 bits: the last 4 must be zero.
        let canonical = format!("tp_abc_{}", "A".repeat(22));
        let trailing_bits = format!("tp_abc_{}B", "A".repeat(21));
        assert!(ApiKey::parse(&canonical).is_ok());
        assert!(ApiKey::parse(&trailing_bits).is_err());
    }

    #[test]
    fn generated_keys_parse_and_differ() {
        let prefix = KeyPrefix::new("shop1").unwrap();
        let a = ApiKey::generate(&prefix).unwrap();
        let b = ApiKey::generate(&prefix).unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.id().as_str().len(), GENERATED_ID_LEN);
        assert_eq!(a.secret().len(), 43);

        let parsed = ApiKey::parse(a.expose_secret()).unwrap();
        assert_eq!(parsed.expose_secret(), a.expose_secret());
        assert_eq!((parsed.prefix(), parsed.id()), (&prefix, a.id()));
    }

    #[test]
    fn display_and_debug_redact() {
        let key = ApiKey::parse(&format!("tp_abc_{}", zero_secret())).unwrap();
        assert_eq!(key.to_string(), "tp_abc_<redacted>");
        let debug = format!("{key:?}");
        assert!(!debug.contains("AAAA"), "{debug}");
        assert!(debug.contains("\"abc\""), "{debug}");
    }

    #[test]
    fn prefix_rules() {
        assert!(KeyPrefix::new("").is_err());
        assert!(KeyPrefix::new("a".repeat(17).as_str()).is_err());
        assert!(KeyPrefix::new("a1").is_ok());
    }
}
