//! One JWK, checked and turned into a verification key.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::AlgorithmSet;

/// Issuers sometimes pad key components; tokens are held to the strict form.
const LENIENT_B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// RFC 8725 §3.5 / NIST: RSA keys below 2048 bits are refused.
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// A public key from a JWKS, with the algorithms it may verify.
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<Arc<str>>,
    pub(crate) algorithms: AlgorithmSet,
    verifier: Verifier,
}

/// How signatures are checked.
enum Verifier {
    /// One aws-lc key per algorithm, parsed once when the JWKS is loaded
    /// rather than on every verification.
    Public(Vec<(Algorithm, ParsedPublicKey)>),
    /// An HMAC secret, checked by jsonwebtoken (constant-time comparison).
    Secret(DecodingKey),
}

impl VerifyingKey {
    /// A key for an HMAC shared secret (never from a JWKS).
    pub(crate) fn from_secret(secret: &[u8], algorithms: AlgorithmSet) -> Option<Self> {
        Some(Self {
            kid: None,
            algorithms,
            verifier: Verifier::Secret(DecodingKey::from_secret(secret).ok()?),
        })
    }

    /// Whether `signature` (decoded; `encoded` is its base64url text) signs
    /// `message` under `alg`. An `alg` the key was not parsed for is `false`.
    pub(crate) fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
        encoded: &str,
    ) -> bool {
        match &self.verifier {
            Verifier::Public(parsed) => parsed
                .iter()
                .find(|(parsed_alg, _)| *parsed_alg == alg)
                .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok()),
            Verifier::Secret(key) => {
                jsonwebtoken::crypto::verify(encoded, message, key, alg).unwrap_or(false)
            }
        }
    }
}

/// The aws-lc algorithm for a curve-based `alg` (RFC 7518 §3.4, RFC 8037);
/// RSA keys go through [`rsa_parameters`].
fn point_algorithm(alg: Algorithm) -> Option<&'static dyn sig::VerificationAlgorithm> {
    Some(match alg {
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &sig::ED25519,
        _ => return None,
    })
}

/// The RSA parameters for an RS*/PS* `alg` (RFC 7518 §3.3, §3.5).
fn rsa_parameters(alg: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// Why a JWK entry was left out of the key set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    NotAnObject,
    PrivateMaterial,
    NotForSignatures,
    UnsupportedKeyType,
    UnsupportedCurve,
    BadComponent,
    WeakKey,
    UnknownAlgorithm,
    AlgorithmMismatch,
}

impl Skip {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::NotAnObject => "not a well-formed JWK object",
            Self::PrivateMaterial => "contains private key material",
            Self::NotForSignatures => "not meant for signature verification",
            Self::UnsupportedKeyType => "unsupported key type",
            Self::UnsupportedCurve => "unsupported curve",
            Self::BadComponent => "malformed key component",
            Self::WeakKey => "RSA modulus shorter than 2048 bits",
            Self::UnknownAlgorithm => "unknown alg",
            Self::AlgorithmMismatch => "alg does not fit the key type",
        }
    }
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    public_key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    // Private members: their presence disqualifies the entry.
    d: Option<IgnoredAny>,
    p: Option<IgnoredAny>,
    q: Option<IgnoredAny>,
    dp: Option<IgnoredAny>,
    dq: Option<IgnoredAny>,
    qi: Option<IgnoredAny>,
    k: Option<IgnoredAny>,
}

impl RawJwk {
    fn has_private_material(&self) -> bool {
        [
            &self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qi, &self.k,
        ]
        .iter()
        .any(|member| member.is_some())
    }
}

/// Checks one JWKS entry and builds its key.
pub(crate) fn parse_jwk(value: serde_json::Value) -> Result<VerifyingKey, (Option<String>, Skip)> {
    let raw: RawJwk = serde_json::from_value(value).map_err(|_| (None, Skip::NotAnObject))?;
    let kid = raw.kid.clone();
    build_key(raw).map_err(|skip| (kid, skip))
}

fn build_key(raw: RawJwk) -> Result<VerifyingKey, Skip> {
    if raw.has_private_material() {
        return Err(Skip::PrivateMaterial);
    }
    if raw.public_key_use.as_deref().is_some_and(|u| u != "sig") {
        return Err(Skip::NotForSignatures);
    }
    if raw
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return Err(Skip::NotForSignatures);
    }

    let (key, fitting) = match raw.kty.as_str() {
        "RSA" => rsa_key(&raw)?,
        "EC" => ec_key(&raw)?,
        "OKP" => okp_key(&raw)?,
        _ => return Err(Skip::UnsupportedKeyType),
    };
    let algorithms = match raw.alg.as_deref() {
        None => fitting,
        Some(alg) => {
            let alg: Algorithm = alg.parse().map_err(|_| Skip::UnknownAlgorithm)?;
            if !fitting.contains(alg) {
                return Err(Skip::AlgorithmMismatch);
            }
            AlgorithmSet::of(alg)
        }
    };

    let parsed = algorithms
        .iter()
        .map(|alg| key.parse(alg).map(|parsed| (alg, parsed)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VerifyingKey {
        kid: raw.kid.map(Arc::from),
        algorithms,
        verifier: Verifier::Public(parsed),
    })
}

fn component(value: Option<&String>) -> Result<Vec<u8>, Skip> {
    let value = value.ok_or(Skip::BadComponent)?;
    LENIENT_B64URL.decode(value).map_err(|_| Skip::BadComponent)
}

/// Public key material, checked for shape, before aws-lc parses it per algorithm.
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed EC point (`0x04 || x || y`) or a raw Ed25519 key.
    Point(Vec<u8>),
}

impl Material {
    fn parse(&self, alg: Algorithm) -> Result<ParsedPublicKey, Skip> {
        let parsed = match self {
            Self::Rsa { n, e } => {
                let params = rsa_parameters(alg).ok_or(Skip::AlgorithmMismatch)?;
                RsaPublicKeyComponents { n, e }.to_parsed_public_key(params)
            }
            Self::Point(bytes) => {
                let algorithm = point_algorithm(alg).ok_or(Skip::AlgorithmMismatch)?;
                ParsedPublicKey::new(algorithm, bytes)
            }
        };
        parsed.map_err(|_| Skip::BadComponent)
    }
}

fn rsa_key(raw: &RawJwk) -> Result<(Material, AlgorithmSet), Skip> {
    let n = component(raw.n.as_ref())?;
    let e = component(raw.e.as_ref())?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    if n.len() < MIN_RSA_MODULUS_BYTES {
        return Err(Skip::WeakKey);
    }
    if e.is_empty() || e.len() > 8 {
        return Err(Skip::BadComponent);
    }
    let (n, e) = (n.to_vec(), e.to_vec());
    Ok((Material::Rsa { n, e }, AlgorithmSet::RSA))
}

fn ec_key(raw: &RawJwk) -> Result<(Material, AlgorithmSet), Skip> {
    let (alg, size) = match raw.crv.as_deref() {
        Some("P-256") => (Algorithm::ES256, 32),
        Some("P-384") => (Algorithm::ES384, 48),
        _ => return Err(Skip::UnsupportedCurve),
    };
    let x = component(raw.x.as_ref())?;
    let y = component(raw.y.as_ref())?;
    if x.len() != size || y.len() != size {
        return Err(Skip::BadComponent);
    }
    let point = [&[0x04][..], &x, &y].concat();
    Ok((Material::Point(point), AlgorithmSet::of(alg)))
}

fn okp_key(raw: &RawJwk) -> Result<(Material, AlgorithmSet), Skip> {
    if raw.crv.as_deref() != Some("Ed25519") {
        return Err(Skip::UnsupportedCurve);
    }
    let x = component(raw.x.as_ref())?;
    if x.len() != 32 {
        return Err(Skip::BadComponent);
    }
    Ok((Material::Point(x), AlgorithmSet::of(Algorithm::EdDSA)))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The usable keys of one JWKS document, by `kid`.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<Arc<str>, Arc<VerifyingKey>>,
    all: Vec<Arc<VerifyingKey>>,
}

/// What parsing a JWKS document left out.
#[derive(Debug, Default)]
pub(crate) struct ParseReport {
    pub(crate) skipped: usize,
    pub(crate) duplicates: usize,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Parses a JWKS document, skipping entries that cannot be used safely.
    pub(crate) fn parse(body: &[u8]) -> Result<(Self, ParseReport), serde_json::Error> {
        let raw: RawSet = serde_json::from_slice(body)?;
        let mut set = Self::default();
        let mut report = ParseReport::default();

        for entry in raw.keys {
            match parse_jwk(entry) {
                Ok(key) => set.insert(key, &mut report),
                Err((kid, skip)) => {
                    report.skipped += 1;
                    tracing::warn!(kid = kid.as_deref(), reason = skip.as_str(), "skipping JWK");
                }
            }
        }
        Ok((set, report))
    }

    fn insert(&mut self, key: VerifyingKey, report: &mut ParseReport) {
        let key = Arc::new(key);
        if let Some(kid) = &key.kid {
            if self.by_kid.contains_key(kid) {
                // Two keys under one kid: keep the first, so a lookup stays unambiguous.
                report.duplicates += 1;
                tracing::warn!(kid = &**kid, "skipping JWK with duplicate kid");
                return;
            }
            self.by_kid.insert(kid.clone(), key.clone());
        }
        self.all.push(key);
    }

    /// The key named `kid`; without a `kid`, the only key that fits `alg`.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&Arc<VerifyingKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None => {
                let mut fitting = self.all.iter().filter(|key| key.algorithms.contains(alg));
                let first = fitting.next()?;
                fitting.next().is_none().then_some(first)
            }
        }
    }

    /// How many usable keys the set holds.
    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether `kid` names a key of this set.
    pub(crate) fn contains_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpadded(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    use serde_json::json;

    const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn ec(extra: serde_json::Value) -> serde_json::Value {
        let mut jwk = json!({ "kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "ec" });
        jwk.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        jwk
    }

    #[test]
    fn ec_key_fits_only_es256() {
        let key = parse_jwk(ec(json!({}))).unwrap();
        assert_eq!(key.algorithms, AlgorithmSet::of(Algorithm::ES256));
    }

    #[test]
    fn enc_use_and_wrong_key_ops_are_skipped() {
        let skip = |v| parse_jwk(v).unwrap_err().1;
        assert_eq!(skip(ec(json!({ "use": "enc" }))), Skip::NotForSignatures);
        assert_eq!(
            skip(ec(json!({ "key_ops": ["encrypt"] }))),
            Skip::NotForSignatures
        );
        assert!(parse_jwk(ec(json!({ "use": "sig", "key_ops": ["verify"] }))).is_ok());
    }

    #[test]
    fn alg_must_fit_key_type() {
        let skip = |v| parse_jwk(v).unwrap_err().1;
        assert_eq!(skip(ec(json!({ "alg": "RS256" }))), Skip::AlgorithmMismatch);
        assert_eq!(skip(ec(json!({ "alg": "none" }))), Skip::UnknownAlgorithm);
        assert_eq!(skip(ec(json!({ "alg": "HS256" }))), Skip::AlgorithmMismatch);
    }

    #[test]
    fn private_members_are_skipped() {
        assert_eq!(
            parse_jwk(ec(json!({ "d": "AAAA" }))).unwrap_err().1,
            Skip::PrivateMaterial
        );
    }

    #[test]
    fn short_rsa_is_skipped() {
        let n = unpadded(&[0xC5; 128]);
        let jwk = json!({ "kty": "RSA", "n": n, "e": "AQAB" });
        assert_eq!(parse_jwk(jwk).unwrap_err().1, Skip::WeakKey);
    }

    #[test]
    fn symmetric_and_unknown_types_are_skipped() {
        let skip = |v| parse_jwk(v).unwrap_err().1;
        assert_eq!(
            skip(json!({ "kty": "oct", "k": "c2VjcmV0" })),
            Skip::PrivateMaterial
        );
        assert_eq!(
            skip(json!({ "kty": "PQC", "x": X })),
            Skip::UnsupportedKeyType
        );
        assert_eq!(
            skip(json!({ "kty": "EC", "crv": "P-521", "x": X, "y": Y })),
            Skip::UnsupportedCurve
        );
    }

    #[test]
    fn set_keeps_good_entries_and_first_duplicate() {
        let doc = json!({ "keys": [ec(json!({})), { "kty": "weird" }, ec(json!({})), 42] });
        let (set, report) = KeySet::parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(report.skipped, 2);
        assert_eq!(report.duplicates, 1);
        assert!(set.find(Some("ec"), Algorithm::ES256).is_some());
        assert!(set.find(None, Algorithm::ES256).is_some());
        assert!(set.find(None, Algorithm::RS256).is_none());
    }
}
