//! OAuth 2.0 scopes (RFC 6749 §3.3) as validated newtypes.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// One OAuth 2.0 scope token, such as `orders:read`.
///
/// Scopes are case-sensitive (RFC 6749 §3.3) and made of the printable ASCII
/// characters other than space, `"` and `\`. A scope is cheap to clone.
///
/// ```
/// use tower_principal::Scope;
///
/// let scope: Scope = "orders:read".parse().unwrap();
/// assert_eq!(scope.as_str(), "orders:read");
/// assert!("orders read".parse::<Scope>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(Arc<str>);

impl Scope {
    /// Parses one scope token, or returns `None` if it is empty or holds a character
    /// that RFC 6749 does not allow in a scope.
    pub fn new(token: &str) -> Option<Self> {
        is_scope_token(token).then(|| Self(Arc::from(token)))
    }

    /// The scope as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// The error returned when text is not a valid scope token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope token")]
pub struct InvalidScope;

impl std::str::FromStr for Scope {
    type Err = InvalidScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s).ok_or(InvalidScope)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A set of scopes, kept sorted and free of duplicates.
///
/// ```
/// use tower_principal::Scopes;
///
/// let scopes = Scopes::parse_space_delimited("orders:read  orders:write orders:read").unwrap();
/// assert_eq!(scopes.len(), 2);
/// assert!(scopes.contains("orders:write"));
/// assert!(!scopes.contains("Orders:Write"), "scopes are case-sensitive");
/// assert_eq!(scopes.to_string(), "orders:read orders:write");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// An empty set.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Parses a space-delimited `scope` value (RFC 6749 §3.3, RFC 9068 §2.2.3).
    ///
    /// Runs of spaces are tolerated; any invalid token fails the whole value.
    pub fn parse_space_delimited(value: &str) -> Result<Self, InvalidScope> {
        value
            .split(' ')
            .filter(|token| !token.is_empty())
            .map(str::parse)
            .collect()
    }

    /// Whether `scope` is in the set (exact, case-sensitive match).
    pub fn contains(&self, scope: &str) -> bool {
        self.0
            .binary_search_by(|probe| probe.as_str().cmp(scope))
            .is_ok()
    }

    /// Whether every scope of `required` is in the set.
    pub fn contains_all(&self, required: &Scopes) -> bool {
        required.iter().all(|scope| self.contains(scope.as_str()))
    }

    /// Whether at least one scope of `wanted` is in the set.
    pub fn contains_any(&self, wanted: &Scopes) -> bool {
        wanted.iter().any(|scope| self.contains(scope.as_str()))
    }

    /// Adds one scope.
    pub fn insert(&mut self, scope: Scope) {
        if let Err(at) = self.0.binary_search(&scope) {
            self.0.insert(at, scope);
        }
    }

    /// Adds every scope of `other`.
    pub fn extend(&mut self, other: impl IntoIterator<Item = Scope>) {
        for scope in other {
            self.insert(scope);
        }
    }

    /// The scopes in sorted order.
    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.0.iter()
    }

    /// How many scopes the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut scopes: Vec<Scope> = iter.into_iter().collect();
        scopes.sort_unstable();
        scopes.dedup();
        Self(scopes)
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

/// Formats the set as one space-delimited string, as in a `scope` claim.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_rejects_forbidden_characters() {
        for bad in ["", "a b", "a\"b", "a\\b", "é", "a\tb"] {
            assert!(Scope::new(bad).is_none(), "{bad:?} should be rejected");
        }
        assert!(Scope::new("!#[]~").is_some());
    }

    #[test]
    fn parse_rejects_whole_value_on_one_bad_token() {
        assert_eq!(Scopes::parse_space_delimited("a b\"c"), Err(InvalidScope));
    }

    #[test]
    fn empty_value_is_empty_set() {
        assert!(Scopes::parse_space_delimited("   ").unwrap().is_empty());
    }

    #[test]
    fn any_and_all() {
        let have = Scopes::parse_space_delimited("a b").unwrap();
        let want = Scopes::parse_space_delimited("b c").unwrap();
        assert!(!have.contains_all(&want));
        assert!(have.contains_any(&want));
    }
}
