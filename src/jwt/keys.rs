//! Verification keys: parsing of JWKS entries and HMAC secrets, algorithm pinning and signature
//! checks. Signature arithmetic comes from `jwt-compact`, and from `p384` for ES384.

use std::fmt;

use jwt_compact::alg::{
    Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa, RsaPublicKey,
};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmSignature};
use p384::ecdsa::signature::Verifier as _;

/// A JWS algorithm that meshguard can verify. Names are case-sensitive (RFC 7515, section 4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Hs256,
    Hs384,
    Hs512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Alg {
    /// Every supported algorithm, in the order used in messages.
    pub const ALL: [Alg; 12] = [
        Alg::Hs256,
        Alg::Hs384,
        Alg::Hs512,
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::EdDsa,
    ];

    /// Parses an `alg` value exactly as written; `none` and unknown names return `None`.
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// Returns the `alg` header value of this algorithm.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Key material of one verification key. HMAC secrets are never printed.
pub enum KeyMaterial {
    Hmac(Vec<u8>),
    Rsa(Box<RsaPublicKey>),
    P256(Box<<Es256 as Algorithm>::VerifyingKey>),
    P384(Box<p384::ecdsa::VerifyingKey>),
    Ed25519(Box<<Ed25519 as Algorithm>::VerifyingKey>),
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            KeyMaterial::Hmac(_) => "Hmac(<redacted>)",
            KeyMaterial::Rsa(_) => "Rsa",
            KeyMaterial::P256(_) => "P256",
            KeyMaterial::P384(_) => "P384",
            KeyMaterial::Ed25519(_) => "Ed25519",
        };
        f.write_str(kind)
    }
}

impl KeyMaterial {
    /// Algorithms this kind of key can verify; a key is never used outside its family, so a
    /// public key is never an HMAC secret.
    fn family(&self) -> &'static [Alg] {
        match self {
            KeyMaterial::Hmac(_) => &[Alg::Hs256, Alg::Hs384, Alg::Hs512],
            KeyMaterial::Rsa(_) => &[
                Alg::Rs256,
                Alg::Rs384,
                Alg::Rs512,
                Alg::Ps256,
                Alg::Ps384,
                Alg::Ps512,
            ],
            KeyMaterial::P256(_) => &[Alg::Es256],
            KeyMaterial::P384(_) => &[Alg::Es384],
            KeyMaterial::Ed25519(_) => &[Alg::EdDsa],
        }
    }

    /// The algorithm a key of this kind is pinned to when neither the key nor the provider
    /// names one. HMAC and RSA keys have no default because the hash is a choice.
    fn default_alg(&self) -> Option<Alg> {
        match self {
            KeyMaterial::Hmac(_) | KeyMaterial::Rsa(_) => None,
            KeyMaterial::P256(_) => Some(Alg::Es256),
            KeyMaterial::P384(_) => Some(Alg::Es384),
            KeyMaterial::Ed25519(_) => Some(Alg::EdDsa),
        }
    }
}

/// A verification key with the algorithms it is pinned to.
#[derive(Debug)]
pub struct Key {
    /// Key id (`kid`), if the key has one.
    pub kid: Option<String>,
    /// Algorithms this key verifies; never empty.
    pub algs: Vec<Alg>,
    material: KeyMaterial,
}

/// Why a configured key is unusable; the caller adds the field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("invalid JWK: {0}")]
    InvalidJwk(String),
    #[error("unsupported key type {0:?}")]
    UnsupportedKeyType(String),
    #[error("unsupported curve {0:?}")]
    UnsupportedCurve(String),
    #[error("algorithm {alg:?} cannot be used with a key of this type")]
    AlgorithmMismatch { alg: String },
    #[error("unknown algorithm {0:?}")]
    UnknownAlgorithm(String),
    #[error("the key names no algorithm and its type has no default; set \"alg\"")]
    AlgorithmRequired,
    #[error("HMAC secret of {len} bytes is shorter than the {min} bytes that {alg} requires")]
    WeakHmacSecret { alg: Alg, len: usize, min: usize },
    #[error("RSA modulus of {0} bits is shorter than 2048 bits")]
    WeakRsaKey(usize),
    #[error("key use {0:?} is not \"sig\"")]
    NotASigningKey(String),
}

impl Key {
    /// Builds a key from one JWKS entry. `provider_algs` are the provider's allowed
    /// algorithms, used to pin keys that carry no `alg`.
    pub fn from_jwk(jwk: &serde_json::Value, provider_algs: &[Alg]) -> Result<Key, KeyError> {
        let object = jwk
            .as_object()
            .ok_or_else(|| KeyError::InvalidJwk("expected a JSON object".into()))?;
        let kid = optional_string(object, "kid")?;
        let declared_alg = optional_string(object, "alg")?;
        if let Some(key_use) = optional_string(object, "use")? {
            if key_use != "sig" {
                return Err(KeyError::NotASigningKey(key_use));
            }
        }
        let material = material_from_jwk(jwk)?;
        let algs = pin_algorithms(&material, declared_alg.as_deref(), provider_algs)?;
        Ok(Key {
            kid,
            algs,
            material,
        })
    }

    /// Builds an HMAC key from raw secret bytes pinned to `alg`.
    pub fn hmac(kid: Option<String>, alg: Alg, secret: Vec<u8>) -> Result<Key, KeyError> {
        let material = KeyMaterial::Hmac(secret);
        let algs = pin_algorithms(&material, Some(alg.name()), &[])?;
        check_hmac_strength(&material, &algs)?;
        Ok(Key {
            kid,
            algs,
            material,
        })
    }

    /// Checks `signature` over `message` with `alg`. Returns false when the key is not pinned
    /// to `alg` or the signature does not verify.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        if !self.algs.contains(&alg) {
            return false;
        }
        match &self.material {
            KeyMaterial::Hmac(secret) => verify_hmac(alg, secret, message, signature),
            KeyMaterial::Rsa(key) => {
                let rsa = Rsa::with_name(alg.name());
                verify_with(&rsa, key, message, signature)
            }
            KeyMaterial::P256(key) => verify_with(&Es256, key, message, signature),
            KeyMaterial::P384(key) => match p384::ecdsa::Signature::from_slice(signature) {
                Ok(parsed) => key.verify(message, &parsed).is_ok(),
                Err(_) => false,
            },
            KeyMaterial::Ed25519(key) => verify_with(&Ed25519, key, message, signature),
        }
    }
}

fn verify_with<A: Algorithm>(
    alg: &A,
    key: &A::VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    if let Some(expected) = A::Signature::LENGTH {
        if expected.get() != signature.len() {
            return false;
        }
    }
    match A::Signature::try_from_slice(signature) {
        Ok(parsed) => alg.verify_signature(&parsed, key, message),
        Err(_) => false,
    }
}

fn verify_hmac(alg: Alg, secret: &[u8], message: &[u8], signature: &[u8]) -> bool {
    match alg {
        Alg::Hs256 => verify_with(&Hs256, &Hs256Key::new(secret), message, signature),
        Alg::Hs384 => verify_with(&Hs384, &Hs384Key::new(secret), message, signature),
        Alg::Hs512 => verify_with(&Hs512, &Hs512Key::new(secret), message, signature),
        _ => false,
    }
}

fn optional_string(
    object: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<String>, KeyError> {
    match object.get(name) {
        None => Ok(None),
        Some(serde_json::Value::String(value)) => Ok(Some(value.clone())),
        Some(other) => Err(KeyError::InvalidJwk(format!(
            "\"{name}\" must be a string, found {other}"
        ))),
    }
}

fn material_from_jwk(jwk: &serde_json::Value) -> Result<KeyMaterial, KeyError> {
    let kty = jwk.get("kty").and_then(|v| v.as_str()).unwrap_or_default();
    if !matches!(kty, "oct" | "RSA" | "EC" | "OKP") {
        return Err(KeyError::UnsupportedKeyType(kty.to_owned()));
    }
    let parsed: JsonWebKey<'_> =
        serde_json::from_value(jwk.clone()).map_err(|e| KeyError::InvalidJwk(e.to_string()))?;
    match &parsed {
        JsonWebKey::Symmetric { secret } => Ok(KeyMaterial::Hmac(secret.to_vec())),
        JsonWebKey::Rsa { modulus, .. } => {
            let bits = modulus_bits(modulus);
            if bits < 2048 {
                return Err(KeyError::WeakRsaKey(bits));
            }
            let key =
                RsaPublicKey::try_from(&parsed).map_err(|e| KeyError::InvalidJwk(e.to_string()))?;
            Ok(KeyMaterial::Rsa(Box::new(key)))
        }
        JsonWebKey::EllipticCurve { curve, x, y, .. } => match curve.as_ref() {
            "P-256" => {
                let key = <Es256 as Algorithm>::VerifyingKey::try_from(&parsed)
                    .map_err(|e| KeyError::InvalidJwk(e.to_string()))?;
                Ok(KeyMaterial::P256(Box::new(key)))
            }
            "P-384" => p384_key(x, y).map(|key| KeyMaterial::P384(Box::new(key))),
            other => Err(KeyError::UnsupportedCurve(other.to_owned())),
        },
        JsonWebKey::KeyPair { curve, .. } => {
            if curve != "Ed25519" {
                return Err(KeyError::UnsupportedCurve(curve.to_string()));
            }
            let key = <Ed25519 as Algorithm>::VerifyingKey::try_from(&parsed)
                .map_err(|e| KeyError::InvalidJwk(e.to_string()))?;
            Ok(KeyMaterial::Ed25519(Box::new(key)))
        }
        _ => Err(KeyError::UnsupportedKeyType(kty.to_owned())),
    }
}

fn p384_key(x: &[u8], y: &[u8]) -> Result<p384::ecdsa::VerifyingKey, KeyError> {
    const COORDINATE_BYTES: usize = 48;
    if x.len() != COORDINATE_BYTES || y.len() != COORDINATE_BYTES {
        return Err(KeyError::InvalidJwk(format!(
            "P-384 coordinates must be {COORDINATE_BYTES} bytes each"
        )));
    }
    let mut sec1 = Vec::with_capacity(1 + 2 * COORDINATE_BYTES);
    sec1.push(0x04);
    sec1.extend_from_slice(x);
    sec1.extend_from_slice(y);
    p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| KeyError::InvalidJwk("P-384 point is not on the curve".into()))
}

fn modulus_bits(modulus: &[u8]) -> usize {
    let significant: Vec<u8> = modulus.iter().copied().skip_while(|b| *b == 0).collect();
    match significant.first() {
        Some(first) => (significant.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

/// Chooses the algorithms a key verifies: its own `alg`, else the provider's algorithms of
/// the key's family, else the family default. A result outside the family is an error.
fn pin_algorithms(
    material: &KeyMaterial,
    declared: Option<&str>,
    provider_algs: &[Alg],
) -> Result<Vec<Alg>, KeyError> {
    let family = material.family();
    let algs = match declared {
        Some(name) => {
            let alg =
                Alg::from_name(name).ok_or_else(|| KeyError::UnknownAlgorithm(name.to_owned()))?;
            vec![alg]
        }
        None => {
            let from_provider: Vec<Alg> = provider_algs
                .iter()
                .copied()
                .filter(|alg| family.contains(alg))
                .collect();
            if from_provider.is_empty() {
                vec![material.default_alg().ok_or(KeyError::AlgorithmRequired)?]
            } else {
                from_provider
            }
        }
    };
    if let Some(alg) = algs.iter().find(|alg| !family.contains(alg)) {
        return Err(KeyError::AlgorithmMismatch {
            alg: alg.name().to_owned(),
        });
    }
    check_hmac_strength(material, &algs)?;
    Ok(algs)
}

/// RFC 7518, section 3.2: an HMAC key must be at least as long as the hash output.
fn check_hmac_strength(material: &KeyMaterial, algs: &[Alg]) -> Result<(), KeyError> {
    let KeyMaterial::Hmac(secret) = material else {
        return Ok(());
    };
    for alg in algs {
        let min = match alg {
            Alg::Hs256 => 32,
            Alg::Hs384 => 48,
            _ => 64,
        };
        if secret.len() < min {
            return Err(KeyError::WeakHmacSecret {
                alg: *alg,
                len: secret.len(),
                min,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET_B64: &str = "bWVzaGd1YXJkLWRldmVsb3BtZW50LWtleS0zMi1ieXRlcyEh";

    #[test]
    fn alg_names_are_case_sensitive() {
        assert_eq!(Alg::from_name("HS256"), Some(Alg::Hs256));
        assert_eq!(Alg::from_name("hs256"), None);
        assert_eq!(Alg::from_name("none"), None);
        assert_eq!(Alg::from_name("EdDSA"), Some(Alg::EdDsa));
    }

    #[test]
    fn oct_key_without_alg_needs_provider_alg() {
        let jwk = json!({"kty": "oct", "k": SECRET_B64});
        assert_eq!(
            Key::from_jwk(&jwk, &[]).unwrap_err(),
            KeyError::AlgorithmRequired
        );
        let key = Key::from_jwk(&jwk, &[Alg::Hs256, Alg::Rs256]).unwrap();
        assert_eq!(key.algs, vec![Alg::Hs256]);
    }

    #[test]
    fn oct_key_rejects_public_key_alg() {
        let jwk = json!({"kty": "oct", "k": SECRET_B64, "alg": "RS256"});
        assert!(matches!(
            Key::from_jwk(&jwk, &[]),
            Err(KeyError::AlgorithmMismatch { .. })
        ));
    }

    #[test]
    fn short_hmac_secret_rejected() {
        let err = Key::hmac(None, Alg::Hs256, b"tiny!".to_vec()).unwrap_err();
        assert!(matches!(err, KeyError::WeakHmacSecret { len: 5, .. }));
        assert!(!err.to_string().contains("tiny!"));
    }

    #[test]
    fn encryption_key_rejected() {
        let jwk = json!({"kty": "oct", "k": SECRET_B64, "alg": "HS256", "use": "enc"});
        assert!(matches!(
            Key::from_jwk(&jwk, &[]),
            Err(KeyError::NotASigningKey(_))
        ));
    }

    #[test]
    fn unknown_key_type_rejected() {
        let jwk = json!({"kty": "XYZ"});
        assert!(matches!(
            Key::from_jwk(&jwk, &[]),
            Err(KeyError::UnsupportedKeyType(_))
        ));
    }

    #[test]
    fn debug_never_prints_secret() {
        let key = Key::hmac(None, Alg::Hs256, vec![b'z'; 40]).unwrap();
        assert!(!format!("{key:?}").contains("zzzz"));
    }

    #[test]
    fn hmac_verification_checks_pinned_alg() {
        let key = Key::hmac(None, Alg::Hs256, vec![7; 32]).unwrap();
        let sig = Hs256.sign(&Hs256Key::new([7; 32]), b"msg");
        assert!(key.verify(Alg::Hs256, b"msg", sig.as_bytes().as_ref()));
        assert!(!key.verify(Alg::Hs256, b"msh", sig.as_bytes().as_ref()));
        assert!(!key.verify(Alg::Hs384, b"msg", sig.as_bytes().as_ref()));
    }

    #[test]
    fn modulus_bits_ignore_leading_zeros() {
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0x01]), 1);
        assert_eq!(modulus_bits(&[]), 0);
    }
}
