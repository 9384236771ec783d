//! The registered claims we check, parsed strictly.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_principal::{Actor, Scope, Scopes};

/// An RFC 7519 NumericDate: seconds since the epoch, integer or fractional,
/// never a string.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
pub(crate) struct NumericDate(f64);

impl NumericDate {
    pub(crate) fn secs(self) -> f64 {
        self.0
    }

    pub(crate) fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumericDateVisitor;

        impl Visitor<'_> for NumericDateVisitor {
            type Value = NumericDate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative number of seconds")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                self.visit_f64(v as f64)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                self.visit_f64(v as f64)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                // Up to the year 10000; keeps `Duration::from_secs_f64` in range.
                if v.is_finite() && (0.0..253_402_300_800.0).contains(&v) {
                    Ok(NumericDate(v))
                } else {
                    Err(E::custom("NumericDate out of range"))
                }
            }
        }

        deserializer.deserialize_any(NumericDateVisitor)
    }
}

/// `aud`: one string or an array of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(aud) => vec![aud],
            Self::Many(auds) => auds,
        }
    }
}

/// `scp`: an array of scopes, or (as some issuers send) a space-delimited string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ScopeList {
    Delimited(String),
    List(Vec<String>),
}

/// The claims the validator reads. Unknown claims are kept in the raw JSON only.
///
/// Parsed from the payload bytes, so a duplicated registered claim is an error
/// rather than a silent pick of one value.
#[derive(Debug, Deserialize)]
pub(crate) struct RegisteredClaims {
    pub(crate) iss: Option<String>,
    pub(crate) sub: Option<String>,
    pub(crate) aud: Option<Audience>,
    pub(crate) exp: Option<NumericDate>,
    pub(crate) nbf: Option<NumericDate>,
    pub(crate) iat: Option<NumericDate>,
    pub(crate) jti: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) scp: Option<ScopeList>,
    pub(crate) act: Option<Value>,
    pub(crate) cnf: Option<Confirmation>,
}

/// RFC 7800 / RFC 8705 confirmation claim; only `x5t#S256` is understood.
/// Any other member (DPoP's `jkt`, `jwk`, ...) names a proof we cannot check.
#[derive(Debug, Deserialize)]
pub(crate) struct Confirmation {
    #[serde(rename = "x5t#S256")]
    pub(crate) x5t_s256: Option<String>,
    #[serde(flatten)]
    pub(crate) other: serde_json::Map<String, Value>,
}

impl RegisteredClaims {
    /// The granted scopes from `scope` and `scp`; `None` if any is malformed.
    pub(crate) fn scopes(&self) -> Option<Scopes> {
        let mut scopes = match &self.scope {
            Some(scope) => Scopes::parse_space_delimited(scope).ok()?,
            None => Scopes::new(),
        };
        match &self.scp {
            Some(ScopeList::Delimited(list)) => {
                scopes.extend(Scopes::parse_space_delimited(list).ok()?.iter().cloned())
            }
            Some(ScopeList::List(list)) => {
                for scope in list {
                    scopes.insert(Scope::new(scope)?);
                }
            }
            None => {}
        }
        Some(scopes)
    }
}

/// Delegation chains deeper than this are refused as malformed.
const MAX_ACTOR_DEPTH: usize = 8;

/// Parses an RFC 8693 `act` claim into a chain of actors.
pub(crate) fn parse_actor(value: &Value) -> Option<Actor> {
    parse_actor_at(value, 0)
}

fn parse_actor_at(value: &Value, depth: usize) -> Option<Actor> {
    if depth >= MAX_ACTOR_DEPTH {
        return None;
    }
    let object = value.as_object()?;
    let text = |name: &str| match object.get(name) {
        None => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    let actor = match object.get("act") {
        None => None,
        Some(nested) => Some(Box::new(parse_actor_at(nested, depth + 1)?)),
    };
    Some(Actor {
        subject: text("sub")??,
        issuer: text("iss")?,
        client_id: text("client_id")?,
        actor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Result<RegisteredClaims, serde_json::Error> {
        serde_json::from_slice(value.to_string().as_bytes())
    }

    #[test]
    fn numeric_date_accepts_integers_and_floats_only() {
        assert_eq!(
            claims(json!({ "exp": 10 })).unwrap().exp,
            Some(NumericDate(10.0))
        );
        assert_eq!(
            claims(json!({ "exp": 10.5 })).unwrap().exp,
            Some(NumericDate(10.5))
        );
        assert!(claims(json!({ "exp": "10" })).is_err());
        assert!(claims(json!({ "exp": -1 })).is_err());
        assert!(claims(json!({ "exp": 1e300 })).is_err());
        assert!(claims(json!({ "exp": null })).unwrap().exp.is_none());
    }

    #[test]
    fn duplicate_claims_are_rejected() {
        let raw = br#"{"sub":"alice","sub":"mallory"}"#;
        assert!(serde_json::from_slice::<RegisteredClaims>(raw).is_err());
    }

    #[test]
    fn scopes_merge_scope_and_scp() {
        let c = claims(json!({ "scope": "a b", "scp": ["c", "a"] })).unwrap();
        assert_eq!(c.scopes().unwrap().to_string(), "a b c");
        let c = claims(json!({ "scp": "x y" })).unwrap();
        assert_eq!(c.scopes().unwrap().to_string(), "x y");
        let c = claims(json!({ "scope": "a \"b" })).unwrap();
        assert!(c.scopes().is_none());
    }

    #[test]
    fn actor_chain() {
        let act = json!({ "sub": "svc-b", "act": { "sub": "svc-a", "iss": "https://i/" } });
        let actor = parse_actor(&act).unwrap();
        let subjects: Vec<_> = actor.chain().map(|a| a.subject.as_str()).collect();
        assert_eq!(subjects, ["svc-b", "svc-a"]);
        assert!(parse_actor(&json!({ "iss": "no-sub" })).is_none());
        assert!(parse_actor(&json!({ "sub": 5 })).is_none());

        let mut deep = json!({ "sub": "x" });
        for _ in 0..MAX_ACTOR_DEPTH {
            deep = json!({ "sub": "x", "act": deep });
        }
        assert!(parse_actor(&deep).is_none());
    }
}
