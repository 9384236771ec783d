//! Signing keys and raw token assembly.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// A private signing key with its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    public_key_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Errors of key generation.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The algorithm is not one this issuer can generate keys for.
    #[error("unsupported algorithm {0:?}")]
    Unsupported(Algorithm),
    /// Key generation or encoding failed.
    #[error("key generation failed: {0}")]
    Generation(String),
}

impl SigningKey {
    /// Generates a fresh key for `alg` (RS*, PS*, ES256, ES384, EdDSA) named `kid`.
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Result<Self, KeyError> {
        let rcgen_alg = match alg {
            Algorithm::RS256 | Algorithm::PS256 => &rcgen::PKCS_RSA_SHA256,
            Algorithm::RS384 | Algorithm::PS384 => &rcgen::PKCS_RSA_SHA384,
            Algorithm::RS512 | Algorithm::PS512 => &rcgen::PKCS_RSA_SHA512,
            Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Algorithm::EdDSA => &rcgen::PKCS_ED25519,
            other => return Err(KeyError::Unsupported(other)),
        };
        let pair = rcgen::KeyPair::generate_for(rcgen_alg)
            .map_err(|e| KeyError::Generation(e.to_string()))?;
        let pem = pair.serialize_pem();
        let encoding = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .map_err(|e| KeyError::Generation(e.to_string()))?;

        let kid = kid.into();
        let mut jwk = match alg {
            // jsonwebtoken cannot derive an OKP JWK from a private key; the raw
            // public key is the `x` member (RFC 8037 §2).
            Algorithm::EdDSA => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key_raw()),
            }),
            _ => {
                let jwk = Jwk::from_encoding_key(&encoding, alg)
                    .map_err(|e| KeyError::Generation(e.to_string()))?;
                serde_json::to_value(jwk).map_err(|e| KeyError::Generation(e.to_string()))?
            }
        };
        if let Some(object) = jwk.as_object_mut() {
            object.insert("kid".into(), json!(kid));
            object.insert("use".into(), json!("sig"));
            object.insert("alg".into(), json!(alg));
        }
        Ok(Self {
            kid,
            alg,
            encoding,
            jwk,
            public_key_pem: pair.public_key_pem(),
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The private key, for signing.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The public JWK (with `kid`, `use: sig` and `alg`).
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The public key as SPKI PEM.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// Signs a token with this key. `alg` is set from the key; so is `kid`
    /// unless `header` has one (a `null` `kid` is removed instead).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let mut header = header.clone();
        if let Some(object) = header.as_object_mut() {
            object.insert("alg".into(), json!(self.alg));
            match object.get("kid") {
                None => {
                    object.insert("kid".into(), json!(self.kid));
                }
                Some(Value::Null) => {
                    object.remove("kid");
                }
                Some(_) => {}
            }
        }
        encode_raw(&header, claims, &self.encoding, self.alg)
    }
}

/// Assembles and signs a token from exactly this header and these claims,
/// whatever they say: for building hostile tokens in tests.
///
/// # Panics
///
/// If the key does not fit `alg`.
pub fn encode_raw(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(signed.as_bytes(), key, alg)
        .expect("the signing key must fit the algorithm");
    format!("{signed}.{signature}")
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
