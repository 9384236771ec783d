//! A small set of JWS algorithms, for allowlists per issuer and per key.

use std::fmt;

use jsonwebtoken::Algorithm;

const ALL: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// A set of [`Algorithm`]s, copied by value.
///
/// ```
/// use jsonwebtoken::Algorithm;
/// use tower_principal_jwt::AlgorithmSet;
///
/// let set = AlgorithmSet::ASYMMETRIC;
/// assert!(set.contains(Algorithm::ES256));
/// assert!(!set.contains(Algorithm::HS256));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// No algorithm.
    pub const EMPTY: Self = Self(0);
    /// RS256/384/512, PS256/384/512, ES256/384 and EdDSA: the default allowlist.
    pub const ASYMMETRIC: Self = Self(0b1111_1111_1000);
    /// HS256/384/512, only usable with an explicitly configured shared secret.
    pub const HMAC: Self = Self(0b0000_0000_0111);
    /// RS* and PS*: what an RSA key may verify.
    pub const RSA: Self = Self(0b0001_1111_1000);

    /// The set holding just `alg`.
    ///
    /// An algorithm this crate does not know yet gives the empty set.
    pub const fn of(alg: Algorithm) -> Self {
        match index(alg) {
            Some(index) => Self(1 << index),
            None => Self::EMPTY,
        }
    }

    /// Whether `alg` is in the set.
    pub const fn contains(self, alg: Algorithm) -> bool {
        match index(alg) {
            Some(index) => self.0 & (1 << index) != 0,
            None => false,
        }
    }

    /// The algorithms in both sets.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The algorithms in either set.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The algorithms in a fixed order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        ALL.into_iter().filter(move |alg| self.contains(*alg))
    }
}

const fn index(alg: Algorithm) -> Option<u32> {
    let index = match alg {
        Algorithm::HS256 => 0,
        Algorithm::HS384 => 1,
        Algorithm::HS512 => 2,
        Algorithm::RS256 => 3,
        Algorithm::RS384 => 4,
        Algorithm::RS512 => 5,
        Algorithm::PS256 => 6,
        Algorithm::PS384 => 7,
        Algorithm::PS512 => 8,
        Algorithm::ES256 => 9,
        Algorithm::ES384 => 10,
        Algorithm::EdDSA => 11,
        _ => return None,
    };
    Some(index)
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter()
            .fold(Self::EMPTY, |set, alg| set.union(Self::of(alg)))
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_members() {
        let asym: AlgorithmSet = [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ]
        .into_iter()
        .collect();
        assert_eq!(asym, AlgorithmSet::ASYMMETRIC);
        let hmac: AlgorithmSet = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
            .into_iter()
            .collect();
        assert_eq!(hmac, AlgorithmSet::HMAC);
        assert!(
            AlgorithmSet::ASYMMETRIC
                .intersection(AlgorithmSet::HMAC)
                .is_empty()
        );
        assert_eq!(AlgorithmSet::RSA.iter().count(), 6);
    }
}
