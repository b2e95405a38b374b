//! JWT verification: providers chosen by issuer, pinned keys, and claim checks.
//!
//! The order of checks is fixed so that nothing about a token's claims is trusted before its
//! signature verifies: size, structure, header, issuer, key selection, signature, then the
//! time, audience, type and revocation claims.

mod keys;

use std::cell::RefCell;
use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lru::LruCache;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::ConfigError;
pub use keys::{Alg, Key, KeyError};

/// Default clock skew allowance for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 60;

/// Settings of one token issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// Name used in logs and metrics.
    pub name: String,
    /// Exact `iss` value of this provider's tokens.
    pub issuer: String,
    /// Accepted audiences; a token's `aud` must contain one of them. Empty accepts any `aud`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Allowed algorithms; empty allows each key's pinned algorithm.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Inline JSON Web Key Set (RFC 7517): `{"keys": [...]}`.
    // TODO: remote JWKS (a `jwks_uri` fetched with dispatch_http_call on the root timer and
    // kept per VM); until then keys must be given inline or as HMAC secrets.
    #[serde(default)]
    pub jwks: Option<Value>,
    /// HMAC secrets read from environment variables of the Wasm VM.
    #[serde(default)]
    pub hmac_secrets: Vec<HmacSecretSettings>,
    /// Allowed clock skew in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Whether tokens without `exp` are rejected.
    #[serde(default = "default_true")]
    pub require_expiration: bool,
    /// Token-type claim check, such as `{"claim": "type", "values": ["access"]}`.
    #[serde(default)]
    pub token_type: Option<TokenTypeSettings>,
    /// Claim holding the roles: an array of strings or a space-separated string. Dots
    /// descend into objects: `realm_access.roles`.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// `jti` values of revoked tokens.
    #[serde(default)]
    pub revoked_token_ids: Vec<String>,
}

/// An HMAC secret taken from an environment variable of the Wasm VM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacSecretSettings {
    /// Key id the tokens carry in `kid`; absent for tokens without `kid`.
    #[serde(default)]
    pub kid: Option<String>,
    /// One of HS256, HS384, HS512.
    pub alg: String,
    /// Name of the environment variable.
    pub env: String,
    /// Encoding of the secret in the variable's value.
    #[serde(default)]
    pub encoding: SecretEncoding,
}

/// Encoding of an HMAC secret in an environment variable.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SecretEncoding {
    /// The bytes of the value as they are.
    #[default]
    Raw,
    /// Base64url without padding, as in a JWK `k`.
    Base64url,
}

/// The claim that distinguishes access tokens from refresh or ID tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenTypeSettings {
    /// Claim name, such as `type` or `token_use`.
    pub claim: String,
    /// Accepted values of that claim.
    pub values: Vec<String>,
}

fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECONDS
}

fn default_true() -> bool {
    true
}

fn default_roles_claim() -> String {
    "roles".to_owned()
}

/// Cause of a rejected token. Each variant maps to one documented reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is larger than {0} bytes")]
    TooLarge(usize),
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("token header has a critical parameter that is not supported")]
    UnsupportedCritical,
    #[error("token issuer is unknown")]
    UnknownIssuer,
    #[error("no key matches the token")]
    UnknownKey,
    #[error("token signature is invalid")]
    InvalidSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued in the future")]
    IssuedInFuture,
    #[error("token has no expiration time")]
    MissingExpiration,
    #[error("token claim {0} is not of the expected type")]
    InvalidClaim(&'static str),
    #[error("token audience is not accepted")]
    AudienceMismatch,
    #[error("token type is not accepted")]
    WrongTokenType,
    #[error("token has been revoked")]
    Revoked,
}

impl TokenError {
    /// Stable reason code for replies, logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::TooLarge(_) => "token_too_large",
            TokenError::Malformed(_) => "token_malformed",
            TokenError::AlgorithmNotAllowed => "algorithm_not_allowed",
            TokenError::UnsupportedCritical => "unsupported_crit",
            TokenError::UnknownIssuer => "unknown_issuer",
            TokenError::UnknownKey => "unknown_key",
            TokenError::InvalidSignature => "signature_invalid",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::IssuedInFuture => "token_issued_in_future",
            TokenError::MissingExpiration => "missing_expiration",
            TokenError::InvalidClaim(_) => "invalid_claim",
            TokenError::AudienceMismatch => "audience_mismatch",
            TokenError::WrongTokenType => "wrong_token_type",
            TokenError::Revoked => "token_revoked",
        }
    }
}

/// A compiled provider.
#[derive(Debug)]
pub struct Provider {
    pub name: String,
    issuer: String,
    audiences: Vec<String>,
    allowed_algs: Vec<Alg>,
    keys: Vec<Key>,
    leeway: u64,
    require_expiration: bool,
    token_type: Option<TokenTypeSettings>,
    roles_claim: Vec<String>,
    revoked: HashSet<String>,
}

/// A token whose signature and claims were verified.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// Name of the provider that issued it.
    pub provider: String,
    /// The `sub` claim, when it is a string.
    pub subject: Option<String>,
    /// Roles read from the provider's roles claim.
    pub roles: Vec<String>,
    /// Every claim of the payload.
    pub claims: Map<String, Value>,
}

/// The time claims of a token, kept with cached tokens so they are checked on every use.
#[derive(Debug, Clone, Copy)]
struct TimeClaims {
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
}

/// A verified token in the cache, with what must be checked again at each use.
#[derive(Debug)]
struct CachedToken {
    provider: usize,
    times: TimeClaims,
    token: Rc<VerifiedToken>,
}

/// Every configured provider, looked up by issuer, and a cache of verified tokens.
///
/// The cache is keyed by the whole token text, so an entry is only ever used for the
/// byte-identical token; `exp`, `nbf` and `iat` are checked again on every use. Rejected
/// tokens are not cached. Wasm VMs are single-threaded, hence `RefCell`.
#[derive(Debug)]
pub struct Verifier {
    providers: Vec<Provider>,
    max_token_bytes: usize,
    cache: Option<RefCell<LruCache<String, CachedToken>>>,
}

impl Verifier {
    /// Compiles the providers. `env` returns environment variables of the Wasm VM.
    pub fn compile(
        settings: &[ProviderSettings],
        max_token_bytes: usize,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::compile_with_cache(settings, max_token_bytes, 0, env)
    }

    /// Compiles the providers with a cache of up to `cache_size` verified tokens (0: none).
    pub fn compile_with_cache(
        settings: &[ProviderSettings],
        max_token_bytes: usize,
        cache_size: usize,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut providers = Vec::with_capacity(settings.len());
        for (i, provider) in settings.iter().enumerate() {
            let field = format!("providers[{i}]");
            let compiled = compile_provider(provider, &field, env)?;
            if providers
                .iter()
                .any(|p: &Provider| p.issuer == compiled.issuer)
            {
                return Err(ConfigError::invalid(
                    &format!("{field}.issuer"),
                    &compiled.issuer,
                    "another provider has the same issuer",
                ));
            }
            providers.push(compiled);
        }
        Ok(Self {
            providers,
            max_token_bytes,
            cache: NonZeroUsize::new(cache_size).map(|size| RefCell::new(LruCache::new(size))),
        })
    }

    /// Verifies a compact JWS token at time `now` (seconds since the Unix epoch).
    pub fn verify(&self, token: &str, now: u64) -> Result<Rc<VerifiedToken>, TokenError> {
        if token.len() > self.max_token_bytes {
            return Err(TokenError::TooLarge(self.max_token_bytes));
        }
        if let Some(result) = self.verify_cached(token, now) {
            return result;
        }
        let (provider, times, verified) = self.verify_uncached(token, now)?;
        let verified = Rc::new(verified);
        if let Some(cache) = &self.cache {
            let entry = CachedToken {
                provider,
                times,
                token: Rc::clone(&verified),
            };
            cache.borrow_mut().put(token.to_owned(), entry);
        }
        Ok(verified)
    }

    /// Returns the cached outcome for `token`, or `None` when it is not cached.
    fn verify_cached(
        &self,
        token: &str,
        now: u64,
    ) -> Option<Result<Rc<VerifiedToken>, TokenError>> {
        let mut cache = self.cache.as_ref()?.borrow_mut();
        let entry = cache.get(token)?;
        let provider = self.providers.get(entry.provider)?;
        match provider.check_times(&entry.times, now) {
            Ok(()) => Some(Ok(Rc::clone(&entry.token))),
            Err(err) => {
                cache.pop(token);
                Some(Err(err))
            }
        }
    }

    fn verify_uncached(
        &self,
        token: &str,
        now: u64,
    ) -> Result<(usize, TimeClaims, VerifiedToken), TokenError> {
        let parts = split_token(token)?;
        let header = decode_json_object(parts.header, "header is not a base64url JSON object")?;
        let alg = header_alg(&header)?;
        check_critical(&header)?;
        let claims = decode_json_object(parts.payload, "payload is not a base64url JSON object")?;
        let index = self.provider_for(&claims)?;
        let provider = &self.providers[index];
        let signature = URL_SAFE_NO_PAD
            .decode(parts.signature)
            .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
        provider.verify_signature(&header, alg, parts.signed.as_bytes(), &signature)?;
        let times = provider.check_claims(&claims, now)?;
        Ok((index, times, provider.verified(claims)))
    }

    fn provider_for(&self, claims: &Map<String, Value>) -> Result<usize, TokenError> {
        let issuer = match claims.get("iss") {
            Some(Value::String(issuer)) => issuer,
            Some(_) => return Err(TokenError::InvalidClaim("iss")),
            None => return Err(TokenError::UnknownIssuer),
        };
        self.providers
            .iter()
            .position(|p| &p.issuer == issuer)
            .ok_or(TokenError::UnknownIssuer)
    }
}

struct TokenParts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    signed: &'a str,
}

fn split_token(token: &str) -> Result<TokenParts<'_>, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    };
    if header.is_empty() || payload.is_empty() {
        return Err(TokenError::Malformed("empty header or payload"));
    }
    if signature.is_empty() {
        // An unsecured JWS (`alg` none) has an empty signature; it never verifies.
        return Err(TokenError::AlgorithmNotAllowed);
    }
    let signed = &token[..header.len() + 1 + payload.len()];
    Ok(TokenParts {
        header,
        payload,
        signature,
        signed,
    })
}

fn decode_json_object(part: &str, error: &'static str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(error))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed(error)),
    }
}

fn header_alg(header: &Map<String, Value>) -> Result<Alg, TokenError> {
    match header.get("alg") {
        Some(Value::String(name)) => Alg::from_name(name).ok_or(TokenError::AlgorithmNotAllowed),
        _ => Err(TokenError::Malformed("header has no string \"alg\"")),
    }
}

/// RFC 7515, section 4.1.11: a recipient that does not understand a listed extension must
/// reject the token. meshguard understands none, so any `crit` rejects it.
fn check_critical(header: &Map<String, Value>) -> Result<(), TokenError> {
    match header.get("crit") {
        None => Ok(()),
        Some(_) => Err(TokenError::UnsupportedCritical),
    }
}

fn compile_provider(
    settings: &ProviderSettings,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Provider, ConfigError> {
    if settings.name.is_empty() {
        return Err(ConfigError::new(
            &format!("{field}.name"),
            "must not be empty",
        ));
    }
    if settings.issuer.is_empty() {
        return Err(ConfigError::new(
            &format!("{field}.issuer"),
            "must not be empty",
        ));
    }
    let allowed_algs = compile_algorithms(&settings.algorithms, field)?;
    let mut keys = jwks_keys(settings.jwks.as_ref(), &allowed_algs, field)?;
    for (i, secret) in settings.hmac_secrets.iter().enumerate() {
        keys.push(hmac_key(
            secret,
            &format!("{field}.hmac_secrets[{i}]"),
            env,
        )?);
    }
    if keys.is_empty() {
        return Err(ConfigError::new(
            field,
            "provider has no keys; set \"jwks\" or \"hmac_secrets\"",
        ));
    }
    if let Some(token_type) = &settings.token_type {
        if token_type.claim.is_empty() || token_type.values.is_empty() {
            return Err(ConfigError::new(
                &format!("{field}.token_type"),
                "needs a claim name and at least one value",
            ));
        }
    }
    Ok(Provider {
        name: settings.name.clone(),
        issuer: settings.issuer.clone(),
        audiences: settings.audiences.clone(),
        allowed_algs,
        keys,
        leeway: settings.leeway_seconds,
        require_expiration: settings.require_expiration,
        token_type: settings.token_type.clone(),
        roles_claim: settings.roles_claim.split('.').map(str::to_owned).collect(),
        revoked: settings.revoked_token_ids.iter().cloned().collect(),
    })
}

fn compile_algorithms(names: &[String], field: &str) -> Result<Vec<Alg>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Alg::from_name(name).ok_or_else(|| {
                ConfigError::invalid(
                    &format!("{field}.algorithms[{i}]"),
                    name,
                    "unknown algorithm; expected one of HS256, HS384, HS512, RS256, RS384, \
                     RS512, PS256, PS384, PS512, ES256, ES384, EdDSA",
                )
            })
        })
        .collect()
}

fn jwks_keys(
    jwks: Option<&Value>,
    allowed_algs: &[Alg],
    field: &str,
) -> Result<Vec<Key>, ConfigError> {
    let Some(jwks) = jwks else {
        return Ok(Vec::new());
    };
    let entries = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| ConfigError::new(&format!("{field}.jwks"), "expected {\"keys\": [...]}"))?;
    let mut keys = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let key_field = format!("{field}.jwks.keys[{i}]");
        let key = Key::from_jwk(entry, allowed_algs)
            .map_err(|e| ConfigError::new(&key_field, &e.to_string()))?;
        check_provider_allows(&key, allowed_algs, &key_field)?;
        keys.push(key);
    }
    Ok(keys)
}

fn hmac_key(
    settings: &HmacSecretSettings,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Key, ConfigError> {
    let alg = match Alg::from_name(&settings.alg) {
        Some(alg @ (Alg::Hs256 | Alg::Hs384 | Alg::Hs512)) => alg,
        _ => {
            return Err(ConfigError::invalid(
                &format!("{field}.alg"),
                &settings.alg,
                "expected HS256, HS384 or HS512",
            ))
        }
    };
    let value = env(&settings.env).ok_or_else(|| {
        ConfigError::new(
            &format!("{field}.env"),
            &format!(
                "environment variable {:?} is not set in the Wasm VM \
                 (Envoy vm_config.environment_variables, Istio vmConfig.env)",
                settings.env
            ),
        )
    })?;
    let secret = match settings.encoding {
        SecretEncoding::Raw => value.into_bytes(),
        SecretEncoding::Base64url => URL_SAFE_NO_PAD.decode(value.trim()).map_err(|_| {
            ConfigError::new(
                &format!("{field}.env"),
                &format!("environment variable {:?} is not base64url", settings.env),
            )
        })?,
    };
    Key::hmac(settings.kid.clone(), alg, secret)
        .map_err(|e| ConfigError::new(field, &e.to_string()))
}

fn check_provider_allows(key: &Key, allowed: &[Alg], field: &str) -> Result<(), ConfigError> {
    if allowed.is_empty() || key.algs.iter().all(|alg| allowed.contains(alg)) {
        return Ok(());
    }
    let names: Vec<&str> = key.algs.iter().map(|alg| alg.name()).collect();
    Err(ConfigError::new(
        field,
        &format!(
            "key algorithm {} is not in the provider's \"algorithms\"",
            names.join(", ")
        ),
    ))
}

impl Provider {
    fn verify_signature(
        &self,
        header: &Map<String, Value>,
        alg: Alg,
        signed: &[u8],
        signature: &[u8],
    ) -> Result<(), TokenError> {
        if !self.allowed_algs.is_empty() && !self.allowed_algs.contains(&alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(TokenError::Malformed("\"kid\" is not a string")),
        };
        // With a kid, only keys of that id are candidates; without one, every key pinned to
        // the algorithm is tried in configuration order.
        let mut candidates = self
            .keys
            .iter()
            .filter(|key| kid.is_none() || key.kid.as_deref() == kid)
            .filter(|key| key.algs.contains(&alg))
            .peekable();
        if candidates.peek().is_none() {
            let kid_known =
                kid.is_some_and(|kid| self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
            return Err(if kid_known {
                TokenError::AlgorithmNotAllowed
            } else {
                TokenError::UnknownKey
            });
        }
        if candidates.any(|key| key.verify(alg, signed, signature)) {
            Ok(())
        } else {
            Err(TokenError::InvalidSignature)
        }
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<TimeClaims, TokenError> {
        let times = TimeClaims {
            exp: numeric_claim(claims, "exp")?,
            nbf: numeric_claim(claims, "nbf")?,
            iat: numeric_claim(claims, "iat")?,
        };
        self.check_times(&times, now)?;
        self.check_audience(claims)?;
        self.check_token_type(claims)?;
        self.check_revocation(claims)?;
        Ok(times)
    }

    fn check_times(&self, times: &TimeClaims, now: u64) -> Result<(), TokenError> {
        let now = now as f64;
        let leeway = self.leeway as f64;
        match times.exp {
            Some(exp) if now >= exp + leeway => return Err(TokenError::Expired),
            None if self.require_expiration => return Err(TokenError::MissingExpiration),
            _ => {}
        }
        if times.nbf.is_some_and(|nbf| now + leeway < nbf) {
            return Err(TokenError::NotYetValid);
        }
        if times.iat.is_some_and(|iat| now + leeway < iat) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(())
    }

    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        if self.audiences.is_empty() {
            return Ok(());
        }
        let accepted = |aud: &str| self.audiences.iter().any(|a| a == aud);
        match claims.get("aud") {
            Some(Value::String(aud)) if accepted(aud) => Ok(()),
            Some(Value::Array(auds)) => {
                let mut found = false;
                for aud in auds {
                    let aud = aud.as_str().ok_or(TokenError::InvalidClaim("aud"))?;
                    found |= accepted(aud);
                }
                if found {
                    Ok(())
                } else {
                    Err(TokenError::AudienceMismatch)
                }
            }
            Some(Value::String(_)) | None => Err(TokenError::AudienceMismatch),
            Some(_) => Err(TokenError::InvalidClaim("aud")),
        }
    }

    fn check_token_type(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        let Some(token_type) = &self.token_type else {
            return Ok(());
        };
        match claims.get(&token_type.claim) {
            Some(Value::String(value)) if token_type.values.contains(value) => Ok(()),
            _ => Err(TokenError::WrongTokenType),
        }
    }

    fn check_revocation(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        if self.revoked.is_empty() {
            return Ok(());
        }
        match claims.get("jti") {
            Some(Value::String(jti)) if self.revoked.contains(jti) => Err(TokenError::Revoked),
            _ => Ok(()),
        }
    }

    fn verified(&self, claims: Map<String, Value>) -> VerifiedToken {
        let subject = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        let roles = roles_from(&claims, &self.roles_claim);
        VerifiedToken {
            provider: self.name.clone(),
            subject,
            roles,
            claims,
        }
    }
}

/// Reads an optional NumericDate claim; RFC 7519 allows fractional seconds.
fn numeric_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<f64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => number
            .as_f64()
            .filter(|value| value.is_finite())
            .map(Some)
            .ok_or(TokenError::InvalidClaim(name)),
        Some(_) => Err(TokenError::InvalidClaim(name)),
    }
}

fn roles_from(claims: &Map<String, Value>, path: &[String]) -> Vec<String> {
    let mut current: Option<&Value> = None;
    for (i, segment) in path.iter().enumerate() {
        current = if i == 0 {
            claims.get(segment)
        } else {
            current.and_then(|value| value.get(segment))
        };
    }
    match current {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(list)) => list.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
