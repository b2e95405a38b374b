//! Signing of test and development tokens with the private JWK fixtures in `dev/keys/`.
//!
//! Tokens are assembled by hand, so tests can build headers that no well-behaved library
//! would emit: `alg` none, a `crit` list, a public key used as an HMAC secret.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key};
use jwt_compact::alg::{Rsa, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmSignature};
use p384::ecdsa::signature::Signer as _;
use serde_json::{json, Map, Value};

/// Private members of a JWK, dropped from the public form.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth"];

/// A private key from `dev/keys/test-NAME.private.jwk.json`.
#[derive(Debug, Clone)]
pub struct SigningKey {
    jwk: Value,
}

impl SigningKey {
    /// Loads the fixture `dev/keys/test-NAME.private.jwk.json`, for example `rsa` or `p384`.
    pub fn load(name: &str) -> anyhow::Result<Self> {
        let path = keys_dir().join(format!("test-{name}.private.jwk.json"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read key fixture {}", path.display()))?;
        let jwk = serde_json::from_str(&text)
            .with_context(|| format!("key fixture {} is not JSON", path.display()))?;
        Ok(Self { jwk })
    }

    /// Builds an HMAC key from secret bytes.
    pub fn hmac(kid: &str, secret: &[u8]) -> Self {
        Self {
            jwk: json!({"kty": "oct", "kid": kid, "k": URL_SAFE_NO_PAD.encode(secret)}),
        }
    }

    /// The key id of the fixture.
    pub fn kid(&self) -> &str {
        self.jwk
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The public JWK, with `alg` set when given; HMAC keys are returned whole.
    pub fn public_jwk(&self, alg: Option<&str>) -> Value {
        let mut jwk = self.jwk.clone();
        if let Some(object) = jwk.as_object_mut() {
            for member in PRIVATE_MEMBERS {
                object.remove(*member);
            }
            if let Some(alg) = alg {
                object.insert("alg".into(), Value::String(alg.into()));
            }
        }
        jwk
    }

    /// Signs `claims` with `alg`. The header gets `alg`, `typ` and this key's `kid`; members
    /// of `extra_header` are added or override them (`null` removes one).
    pub fn sign(&self, alg: &str, claims: &Value, extra_header: &Value) -> anyhow::Result<String> {
        let mut header = Map::new();
        header.insert("alg".into(), Value::String(alg.into()));
        header.insert("typ".into(), Value::String("JWT".into()));
        if !self.kid().is_empty() {
            header.insert("kid".into(), Value::String(self.kid().into()));
        }
        if let Some(extra) = extra_header.as_object() {
            for (name, value) in extra {
                if value.is_null() {
                    header.remove(name);
                } else {
                    header.insert(name.clone(), value.clone());
                }
            }
        }
        let signed = signing_input(&Value::Object(header), claims)?;
        let signature = self.signature(alg, signed.as_bytes())?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    fn signature(&self, alg: &str, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let parsed: JsonWebKey<'_> =
            serde_json::from_value(self.jwk.clone()).context("fixture is not a valid JWK")?;
        let bytes = match alg {
            "HS256" | "HS384" | "HS512" => hmac_signature(alg, &self.hmac_secret()?, message),
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
                let key = RsaPrivateKey::try_from(&parsed).map_err(|e| anyhow!("{e}"))?;
                bytes_of(Rsa::with_name(alg).sign(&key, message))
            }
            "ES256" => {
                let key = <Es256 as Algorithm>::SigningKey::try_from(&parsed)
                    .map_err(|e| anyhow!("{e}"))?;
                bytes_of(Es256.sign(&key, message))
            }
            "ES384" => {
                let secret = self.member_bytes("d")?;
                let key = p384::ecdsa::SigningKey::from_slice(&secret)?;
                let signature: p384::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            "EdDSA" => {
                let key = <Ed25519 as Algorithm>::SigningKey::try_from(&parsed)
                    .map_err(|e| anyhow!("{e}"))?;
                bytes_of(Ed25519.sign(&key, message))
            }
            other => bail!("cannot sign with algorithm {other:?}"),
        };
        Ok(bytes)
    }

    fn hmac_secret(&self) -> anyhow::Result<Vec<u8>> {
        self.member_bytes("k")
    }

    fn member_bytes(&self, name: &str) -> anyhow::Result<Vec<u8>> {
        let value = self
            .jwk
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("key has no {name:?} member"))?;
        Ok(URL_SAFE_NO_PAD.decode(value)?)
    }
}

/// Signs with HMAC using arbitrary secret bytes, such as the text of a public key, to build
/// the algorithm-confusion token of that attack.
pub fn hmac_signature(alg: &str, secret: &[u8], message: &[u8]) -> Vec<u8> {
    match alg {
        "HS384" => bytes_of(Hs384.sign(&Hs384Key::new(secret), message)),
        "HS512" => bytes_of(Hs512.sign(&Hs512Key::new(secret), message)),
        _ => bytes_of(Hs256.sign(&Hs256Key::new(secret), message)),
    }
}

/// Encodes `header.payload` in base64url, the part a signature covers.
pub fn signing_input(header: &Value, claims: &Value) -> anyhow::Result<String> {
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header)?);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
    Ok(format!("{header}.{payload}"))
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn bytes_of<S: AlgorithmSignature>(signature: S) -> Vec<u8> {
    signature.as_bytes().into_owned()
}

fn keys_dir() -> PathBuf {
    crate::workspace_root().join("dev").join("keys")
}
