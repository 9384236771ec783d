//! [`SecretHash`]: what a store keeps instead of the secret.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::FormatError;

/// SHA-256 of a key's secret part, the only trace of the secret a server keeps.
///
/// # Why plain SHA-256, and no password hash
///
/// Password hashes (Argon2, bcrypt, scrypt) are deliberately slow and salted
/// because passwords are chosen by people and can be guessed: the cost per
/// guess is what protects a leaked password database. A generated API key
/// secret has at least 128 (by default 256) bits from the OS random source,
/// so there is nothing to guess: even at 10^12 SHA-256 evaluations per
/// second, finding a 128-bit preimage takes about 10^19 years, and a salt adds
/// nothing because no two secrets are alike and no dictionary covers them.
/// A slow hash would only cost milliseconds of CPU on every request and hand
/// attackers a cheap way to load the server. SHA-256 keeps a leaked store
/// useless to an attacker at the cost of one fast hash per request.
///
/// The hash covers the secret's text (the part after the second `_`), so
/// `printf %s "$SECRET" | sha256sum` gives the same value. It is written as 64
/// lowercase hex digits in store files.
///
/// Equality is constant-time ([`ConstantTimeEq`]), so comparing a presented
/// hash against a stored one leaks no prefix length through timing.
///
/// ```
/// use tower_principal_apikey::SecretHash;
///
/// let hash = SecretHash::of_secret("abc");
/// assert_eq!(
///     hash.to_hex(),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// assert_eq!(hash.to_hex().parse::<SecretHash>().unwrap(), hash);
/// ```
#[derive(Clone, Copy)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// The hash of a secret (the text after a key's second `_`).
    pub fn of_secret(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// A hash from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex: &str) -> Result<Self, FormatError> {
        const INVALID: FormatError = FormatError::new("a SHA-256 hash is 64 hex digits");

        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return Err(INVALID);
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let (Some(high), Some(low)) = (hex_digit(pair[0]), hex_digit(pair[1])) else {
                return Err(INVALID);
            };
            *byte = high << 4 | low;
        }
        Ok(Self(bytes))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits, as in store files.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(64);
        for byte in self.0 {
            hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        hex
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl ConstantTimeEq for SecretHash {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

/// Constant-time, through [`ConstantTimeEq`].
impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for SecretHash {}

impl FromStr for SecretHash {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({})", self.to_hex())
    }
}

/// 64 lowercase hex digits.
impl fmt::Display for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_secret_matches_known_digest() {
        assert_eq!(
            SecretHash::of_secret("").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_round_trip_and_case() {
        let hash = SecretHash::of_secret("secret");
        let upper = hash.to_hex().to_uppercase();
        assert_eq!(SecretHash::from_hex(&upper).unwrap(), hash);
    }

    #[test]
    fn bad_hex_is_rejected() {
        let good = SecretHash::of_secret("x").to_hex();
        for bad in [
            &good[..63],
            &format!("{good}0"),
            &format!("g{}", &good[1..]),
            "",
        ] {
            assert!(SecretHash::from_hex(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn equality_compares_every_byte() {
        let a = SecretHash::from_bytes([7; 32]);
        let mut last = [7; 32];
        last[31] = 8;
        assert_eq!(a, SecretHash::from_bytes([7; 32]));
        assert_ne!(a, SecretHash::from_bytes(last));
    }
}
