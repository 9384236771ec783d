//! The TOML store format, shared by files and environment variables.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use tower_principal::{Scope, Scopes};

use crate::store::LoadError;
use crate::{AccountName, FormatError, KeyId, SecretHash, StoredKey, time};

/// Keys by id: the snapshot every store serves lookups from.
pub(crate) type KeyMap = HashMap<KeyId, Arc<StoredKey>>;

/// The whole document. `keys` is required, so an empty or truncated file is
/// an error rather than a store that silently lost every key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    keys: Vec<Entry>,
}

/// One `[[keys]]` table. Unknown fields are errors: a misspelt `revoked`
/// must not leave a key live.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    account: String,
    #[serde(default)]
    scopes: Vec<String>,
    sha256: String,
    expires_at: Option<toml::Value>,
    #[serde(default)]
    revoked: bool,
}

/// Parses a store document into keys by id.
pub(crate) fn parse(text: &str) -> Result<KeyMap, LoadError> {
    let document: Document = toml::from_str(text).map_err(|e| LoadError::Syntax(Box::new(e)))?;
    let keys = document
        .keys
        .into_iter()
        .enumerate()
        .map(|(index, entry)| entry.into_key(index));
    index_by_id(keys)
}

/// Builds the map, refusing duplicate ids.
pub(crate) fn index_by_id(
    keys: impl IntoIterator<Item = Result<StoredKey, LoadError>>,
) -> Result<KeyMap, LoadError> {
    let mut map = KeyMap::new();
    for key in keys {
        let key = key?;
        if map.contains_key(key.id()) {
            return Err(LoadError::DuplicateKeyId(key.id().clone()));
        }
        map.insert(key.id().clone(), Arc::new(key));
    }
    Ok(map)
}

impl Entry {
    fn into_key(self, index: usize) -> Result<StoredKey, LoadError> {
        let invalid = |field| {
            move |source| LoadError::InvalidEntry {
                index,
                field,
                source,
            }
        };

        let id = KeyId::new(&self.id).map_err(invalid("id"))?;
        let account = AccountName::new(&self.account).map_err(invalid("account"))?;
        let scopes = parse_scopes(&self.scopes).map_err(invalid("scopes"))?;
        let hash = SecretHash::from_hex(&self.sha256).map_err(invalid("sha256"))?;

        let key = StoredKey::new(id, account, scopes, hash).with_revoked(self.revoked);
        match &self.expires_at {
            None => Ok(key),
            Some(value) => Ok(key.with_expiry(parse_expiry(value).map_err(invalid("expires_at"))?)),
        }
    }
}

fn parse_scopes(scopes: &[String]) -> Result<Scopes, FormatError> {
    scopes
        .iter()
        .map(|scope| Scope::new(scope))
        .collect::<Option<Scopes>>()
        .ok_or(FormatError::new("a scope is an RFC 6749 scope token"))
}

fn parse_expiry(value: &toml::Value) -> Result<std::time::SystemTime, FormatError> {
    match value {
        toml::Value::Integer(seconds) => time::from_unix(*seconds),
        toml::Value::Datetime(datetime) => time::from_datetime(datetime),
        _ => Err(FormatError::new(
            "expires_at is Unix seconds or an RFC 3339 date-time, not a string",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn entry(id: &str, extra: &str) -> String {
        format!(
            "[[keys]]\nid = \"{id}\"\naccount = \"order-processor\"\n\
             scopes = [\"orders:read\", \"orders:process\"]\nsha256 = \"{HASH}\"\n{extra}\n"
        )
    }

    fn error_of(text: &str) -> LoadError {
        match parse(text) {
            Ok(_) => panic!("{text:?} should not load"),
            Err(e) => e,
        }
    }

    #[test]
    fn loads_every_field() {
        let text = entry("k1", "expires_at = 1767225600\nrevoked = true")
            + &entry("k2", "expires_at = 2026-01-01T00:00:00Z");
        let keys = parse(&text).unwrap();

        let k1 = &keys[&KeyId::new("k1").unwrap()];
        assert_eq!(k1.account().as_str(), "order-processor");
        assert!(k1.scopes().contains("orders:process"));
        assert_eq!(k1.hash().to_hex(), HASH);
        assert!(k1.is_revoked());
        let expiry = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        assert_eq!(k1.expires_at(), Some(expiry));

        let k2 = &keys[&KeyId::new("k2").unwrap()];
        assert!(!k2.is_revoked());
        assert_eq!(k2.expires_at(), Some(expiry));
    }

    #[test]
    fn to_toml_loads_back() {
        let text = entry("k1", "expires_at = 1767225600\nrevoked = true");
        let key = parse(&text).unwrap().into_values().next().unwrap();
        let again = parse(&key.to_toml()).unwrap().into_values().next().unwrap();
        assert_eq!(again, key);
    }

    #[test]
    fn empty_document_is_an_error_but_empty_list_is_not() {
        assert!(matches!(error_of(""), LoadError::Syntax(_)));
        assert!(parse("keys = []").unwrap().is_empty());
    }

    #[test]
    fn inline_form_fits_one_line() {
        let text = format!(
            "keys = [{{ id = \"k1\", account = \"a\", scopes = [\"s\"], sha256 = \"{HASH}\" }}]"
        );
        assert_eq!(parse(&text).unwrap().len(), 1);
    }

    #[test]
    fn duplicate_ids_are_an_error() {
        let text = entry("k1", "") + &entry("k1", "");
        assert!(matches!(error_of(&text), LoadError::DuplicateKeyId(id) if id.as_str() == "k1"));
    }

    #[test]
    fn unknown_fields_are_an_error() {
        assert!(matches!(
            error_of(&entry("k1", "revoke = true")),
            LoadError::Syntax(_)
        ));
    }

    #[test]
    fn invalid_fields_are_named() {
        let cases = [
            (entry("k-1", ""), "id"),
            (
                entry("k1", "").replace("order-processor", "order processor"),
                "account",
            ),
            (
                entry("k1", "").replace("orders:read", "orders read"),
                "scopes",
            ),
            (entry("k1", "").replace(HASH, &HASH[1..]), "sha256"),
            (entry("k1", "expires_at = -5"), "expires_at"),
            (
                entry("k1", "expires_at = \"2026-01-01T00:00:00Z\""),
                "expires_at",
            ),
            (
                entry("k1", "expires_at = 2026-01-01T00:00:00"),
                "expires_at",
            ),
        ];
        for (text, expected) in cases {
            match error_of(&text) {
                LoadError::InvalidEntry {
                    index: 0, field, ..
                } => assert_eq!(field, expected),
                other => panic!("{expected}: unexpected {other:?}"),
            }
        }
    }
}
