//! Fixtures shared by the Envoy integration tests: a plugin configuration trusting every test
//! key, token builders, and a started Envoy with the echo upstream behind it.
#![allow(dead_code)]

use meshguard_dev::echo::EchoServer;
use meshguard_dev::envoy::{Envoy, EnvoyConfig};
use meshguard_dev::tokens::{now, SigningKey};
use serde_json::{json, Value};

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "orders-api";

/// The public JWKS of every test key, each pinned to one algorithm.
pub fn test_jwks() -> Value {
    let keys = [
        ("hs256", Some("HS256")),
        ("rsa", Some("RS256")),
        ("p256", None),
        ("p384", None),
        ("ed25519", None),
    ];
    let keys: Vec<Value> = keys
        .iter()
        .map(|(name, alg)| key(name).public_jwk(*alg))
        .collect();
    json!({ "keys": keys })
}

/// Loads a key fixture.
pub fn key(name: &str) -> SigningKey {
    SigningKey::load(name).expect("key fixture")
}

/// A plugin configuration with one provider trusting every test key, and rules:
/// `/healthz` and `/public` public, `/admin` for role `admin`, `/api` for any token,
/// `/audit` for role `auditor` in dry run; other paths denied.
pub fn plugin_config() -> Value {
    json!({
        "providers": [{
            "name": "test",
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "jwks": test_jwks(),
            "token_type": {"claim": "type", "values": ["access"]},
        }],
        "claim_headers": [
            {"claim": "sub", "header": "x-user"},
            {"claim": "roles", "header": "x-roles"},
        ],
        "rules": [
            {"name": "health", "match": {"path": {"exact": "/healthz"}}, "require": "public"},
            {"name": "public", "match": {"path": {"prefix": "/public"}}, "require": "public"},
            {"name": "admin", "match": {"path": {"prefix": "/admin"}}, "require": {"any_role": ["admin"]}},
            {"name": "api", "match": {"path": {"prefix": "/api"}}, "require": "authenticated"},
            {"name": "audit", "match": {"path": {"prefix": "/audit"}}, "require": {"any_role": ["auditor"]}, "dry_run": true},
        ],
    })
}

/// Claims of a valid access token for `sub` with `roles`.
pub fn claims(sub: &str, roles: &[&str]) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "roles": roles,
        "type": "access",
        "iat": now,
        "exp": now + 600,
    })
}

/// Returns `base` with the members of `changes` set, or removed where they are `null`.
pub fn with(mut base: Value, changes: Value) -> Value {
    if let (Some(target), Some(changes)) = (base.as_object_mut(), changes.as_object()) {
        for (name, value) in changes {
            if value.is_null() {
                target.remove(name);
            } else {
                target.insert(name.clone(), value.clone());
            }
        }
    }
    base
}

/// A token signed by the fixture `key_name` with `alg`.
pub fn token(key_name: &str, alg: &str, claims: &Value) -> String {
    key(key_name)
        .sign(alg, claims, &json!({}))
        .expect("signing")
}

/// A running Envoy with the filter and an echo upstream.
pub struct Stack {
    pub envoy: Envoy,
    pub upstream: EchoServer,
}

impl Stack {
    /// Starts Envoy with `plugin_config` and the given VM environment.
    pub fn start_with(plugin_config: Value, vm_env: &[(&str, &str)]) -> Self {
        let upstream = EchoServer::start().expect("echo upstream");
        let mut config = EnvoyConfig::new(plugin_config, upstream.addr);
        config.vm_env = vm_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let envoy = Envoy::start(&config).unwrap_or_else(|e| panic!("{e:#}"));
        Self { envoy, upstream }
    }

    /// Starts Envoy with the default test configuration.
    pub fn start() -> Self {
        Self::start_with(plugin_config(), &[])
    }

    /// The listener port.
    pub fn port(&self) -> u16 {
        self.envoy.port
    }
}
