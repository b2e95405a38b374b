//! The plugin configuration: JSON as Envoy's `configuration` and Istio's `pluginConfig` deliver
//! it, parsed and compiled once when the plugin is configured.
//!
//! Unknown fields and invalid values are errors naming the field path and the value, so the
//! plugin never runs on a partly understood configuration.

use serde::Deserialize;

use crate::access::{AccessPolicy, DefaultAction, RuleSettings};
use crate::claims::{ClaimHeaderSettings, ClaimHeaders};
use crate::headers::{SecurityHeaderSettings, SecurityHeaders};
use crate::inspection::{Inspection, InspectionRouteSettings};
use crate::jwt::{ProviderSettings, Verifier};
use crate::path::PathSettings;
use crate::ratelimit::{RateLimitSettings, RateLimiter};
use crate::sources::{TokenSettings, TokenSources};
use crate::waf::WafSettings;

/// A configuration error: the field path and what is wrong with its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Field path such as `rules[2].match.path.prefix`; empty for the whole document.
    pub path: String,
    /// Description of the problem, with the offending value where there is one.
    pub message: String,
}

impl ConfigError {
    /// Creates an error at `path`.
    pub fn new(path: &str, message: &str) -> Self {
        Self {
            path: path.to_owned(),
            message: message.to_owned(),
        }
    }

    /// Creates an error for the invalid `value` at `path`.
    pub fn invalid(path: &str, value: &str, reason: &str) -> Self {
        Self::new(path, &format!("invalid value {value:?}: {reason}"))
    }
}

/// The whole plugin configuration as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Token issuers.
    #[serde(default)]
    pub providers: Vec<ProviderSettings>,
    /// Token sources and the token size limit.
    #[serde(default)]
    pub token: TokenSettings,
    /// Claims forwarded to the upstream as request headers.
    #[serde(default)]
    pub claim_headers: Vec<ClaimHeaderSettings>,
    /// Whether the original `Authorization` header goes to the upstream.
    #[serde(default)]
    pub forward_authorization: bool,
    /// Ordered access rules; the first match decides.
    #[serde(default)]
    pub rules: Vec<RuleSettings>,
    /// Decision for paths that no rule matches.
    #[serde(default)]
    pub default_action: DefaultAction,
    /// Path normalization.
    #[serde(default)]
    pub path: PathSettings,
    /// Security response headers.
    #[serde(default)]
    pub security_headers: SecurityHeaderSettings,
    /// Contents of the 401, 403 and 400 replies.
    #[serde(default)]
    pub replies: ReplySettings,
    /// Audit events.
    #[serde(default)]
    pub audit: AuditSettings,
    /// Attack-pattern inspection; absent disables it.
    #[serde(default)]
    pub waf: Option<WafSettings>,
    /// Per-route overrides of the inspection policy; the first match applies.
    #[serde(default)]
    pub waf_routes: Vec<InspectionRouteSettings>,
    /// Rate limiting through an RLS v3 service; absent disables it.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSettings>,
}

/// The `audit` section. Denials and dry-run denials are always logged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Also log an event for every admitted request.
    #[serde(default)]
    pub log_allowed: bool,
}

/// Settings of the filter's own replies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplySettings {
    /// The `realm` of `WWW-Authenticate: Bearer`.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Whether `error_description` and the body's `message` say why a token was rejected.
    #[serde(default = "default_true")]
    pub error_description: bool,
}

impl Default for ReplySettings {
    fn default() -> Self {
        Self {
            realm: default_realm(),
            error_description: true,
        }
    }
}

fn default_realm() -> String {
    "meshguard".to_owned()
}

fn default_true() -> bool {
    true
}

/// The compiled configuration that every request is checked against.
#[derive(Debug)]
pub struct Config {
    pub verifier: Verifier,
    pub sources: TokenSources,
    pub claim_headers: ClaimHeaders,
    pub forward_authorization: bool,
    pub access: AccessPolicy,
    pub path: PathSettings,
    pub security_headers: SecurityHeaders,
    pub replies: ReplySettings,
    pub audit: AuditSettings,
    pub inspection: Option<Inspection>,
    pub rate_limit: Option<RateLimiter>,
    providers: usize,
    rules: usize,
}

impl Config {
    /// Describes the configuration in one line for the startup log, naming no key or secret.
    pub fn summary(&self) -> String {
        format!(
            "{} providers, {} access rules, {} security headers, inspection {}, rate limiting {}",
            self.providers,
            self.rules,
            self.security_headers.set.len(),
            if self.inspection.is_some() {
                "on"
            } else {
                "off"
            },
            if self.rate_limit.is_some() {
                "on"
            } else {
                "off"
            }
        )
    }

    /// Parses and compiles a JSON configuration. `env` reads environment variables of the
    /// Wasm VM, for HMAC secrets.
    pub fn from_json(
        json: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let settings = parse(json)?;
        Self::compile(&settings, env)
    }

    /// Compiles parsed settings.
    pub fn compile(
        settings: &Settings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let sources = TokenSources::compile(&settings.token)?;
        let verifier = Verifier::compile_with_cache(
            &settings.providers,
            sources.max_token_bytes(),
            sources.cache_size(),
            env,
        )?;
        let access = AccessPolicy::compile(&settings.rules, settings.default_action)?;
        if access.needs_tokens() && settings.providers.is_empty() {
            return Err(ConfigError::new(
                "providers",
                "rules require tokens, but no provider is configured",
            ));
        }
        let realm_valid = settings
            .replies
            .realm
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if !realm_valid {
            return Err(ConfigError::invalid(
                "replies.realm",
                &settings.replies.realm,
                "expected printable ASCII without quotes or backslashes",
            ));
        }
        Ok(Self {
            verifier,
            sources,
            claim_headers: ClaimHeaders::compile(&settings.claim_headers)?,
            forward_authorization: settings.forward_authorization,
            access,
            path: settings.path.clone(),
            security_headers: SecurityHeaders::compile(&settings.security_headers)?,
            replies: settings.replies.clone(),
            audit: settings.audit.clone(),
            inspection: compile_inspection(settings)?,
            rate_limit: settings
                .rate_limit
                .as_ref()
                .map(RateLimiter::compile)
                .transpose()?,
            providers: settings.providers.len(),
            rules: settings.rules.len(),
        })
    }
}

fn compile_inspection(settings: &Settings) -> Result<Option<Inspection>, ConfigError> {
    match &settings.waf {
        Some(waf) => Inspection::compile(waf, &settings.waf_routes).map(Some),
        None if !settings.waf_routes.is_empty() => Err(ConfigError::new(
            "waf_routes",
            "route overrides need a \"waf\" section",
        )),
        None => Ok(None),
    }
}

/// Parses the JSON document; errors carry the field path from `serde_path_to_error`.
pub fn parse(json: &[u8]) -> Result<Settings, ConfigError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ConfigError::new(&path, &err.inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn empty_document_is_valid() {
        let config = Config::from_json(b"{}", &no_env).unwrap();
        assert!(!config.forward_authorization);
    }

    #[test]
    fn unknown_top_level_field_named() {
        let err = Config::from_json(br#"{"ruless": []}"#, &no_env).unwrap_err();
        assert!(err.message.contains("unknown field `ruless`"), "{err}");
    }

    #[test]
    fn unknown_nested_field_has_path() {
        let json = br#"{"rules": [{"name": "a", "require": "public", "match": {"pth": {}}}]}"#;
        let err = Config::from_json(json, &no_env).unwrap_err();
        assert_eq!(err.path, "rules[0].match.pth");
        assert!(err.message.contains("pth"), "{err}");
    }

    #[test]
    fn wrong_type_names_field() {
        let err = Config::from_json(br#"{"forward_authorization": "yes"}"#, &no_env).unwrap_err();
        assert_eq!(err.path, "forward_authorization");
    }

    #[test]
    fn not_json_rejected() {
        assert!(Config::from_json(b"rules:", &no_env).is_err());
    }

    #[test]
    fn rules_needing_tokens_need_a_provider() {
        let json = br#"{"rules": [{"name": "a", "require": "authenticated"}]}"#;
        let err = Config::from_json(json, &no_env).unwrap_err();
        assert_eq!(err.path, "providers");
    }

    #[test]
    fn realm_with_quote_rejected() {
        let err = Config::from_json(br#"{"replies": {"realm": "a\"b"}}"#, &no_env).unwrap_err();
        assert_eq!(err.path, "replies.realm");
    }
}
