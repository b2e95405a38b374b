//! Access rules: ordered rules on host, path and method, each requiring public access, any
//! valid token, or any of a set of roles. The first rule that matches decides.

use serde::Deserialize;

use crate::config::ConfigError;
use crate::matcher::{MatchSettings, Matcher, RequestTarget};

/// One rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Name used in logs, metrics and rate-limit descriptors.
    pub name: String,
    /// Requests the rule applies to.
    #[serde(rename = "match", default)]
    pub matcher: MatchSettings,
    /// Requirement the request must meet.
    pub require: Requirement,
    /// Log and count a denial, but let the request through.
    #[serde(default)]
    pub dry_run: bool,
}

/// Requirement of a rule.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Requirement {
    /// No token needed. A token that is sent is still verified.
    Public,
    /// Any valid token.
    Authenticated,
    /// A valid token with at least one of these roles.
    AnyRole(Vec<String>),
}

/// Decision for requests that no rule matches.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    /// Reply 403 `no_matching_rule`.
    #[default]
    Deny,
    /// Let the request through as if a public rule matched.
    Allow,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct AccessRule {
    pub name: String,
    pub requirement: Requirement,
    pub dry_run: bool,
    matcher: Matcher,
}

/// The result of matching a request against the rules.
#[derive(Debug, Clone, Copy)]
pub enum RuleMatch<'a> {
    /// A rule matched.
    Rule(&'a AccessRule),
    /// No rule matched; the default action applies.
    Default(DefaultAction),
}

impl RuleMatch<'_> {
    /// Whether a token is needed, which decides how a non-Bearer `Authorization` is treated.
    pub fn is_protected(&self) -> bool {
        match self {
            RuleMatch::Rule(rule) => rule.requirement != Requirement::Public,
            RuleMatch::Default(DefaultAction::Allow) => false,
            RuleMatch::Default(DefaultAction::Deny) => true,
        }
    }

    /// Returns the rule name for logs and metrics.
    pub fn name(&self) -> &str {
        match self {
            RuleMatch::Rule(rule) => &rule.name,
            RuleMatch::Default(_) => "default",
        }
    }
}

/// The compiled rule list.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    rules: Vec<AccessRule>,
    default: DefaultAction,
}

impl AccessPolicy {
    /// Compiles the rules; names must be unique and role lists non-empty.
    pub fn compile(settings: &[RuleSettings], default: DefaultAction) -> Result<Self, ConfigError> {
        let mut rules: Vec<AccessRule> = Vec::with_capacity(settings.len());
        for (i, rule) in settings.iter().enumerate() {
            let field = format!("rules[{i}]");
            check_rule_name(&rule.name, &format!("{field}.name"))?;
            if rules.iter().any(|r| r.name == rule.name) {
                return Err(ConfigError::invalid(
                    &format!("{field}.name"),
                    &rule.name,
                    "another rule has the same name",
                ));
            }
            if let Requirement::AnyRole(roles) = &rule.require {
                if roles.is_empty() || roles.iter().any(String::is_empty) {
                    return Err(ConfigError::new(
                        &format!("{field}.require.any_role"),
                        "expected at least one non-empty role",
                    ));
                }
            }
            rules.push(AccessRule {
                name: rule.name.clone(),
                requirement: rule.require.clone(),
                dry_run: rule.dry_run,
                matcher: Matcher::compile(&rule.matcher, &format!("{field}.match"))?,
            });
        }
        Ok(Self { rules, default })
    }

    /// Finds the first rule matching the request.
    pub fn find(&self, target: &RequestTarget<'_>) -> RuleMatch<'_> {
        self.rules
            .iter()
            .find(|rule| rule.matcher.matches(target))
            .map_or(RuleMatch::Default(self.default), RuleMatch::Rule)
    }

    /// Returns whether any rule needs a verified token.
    pub fn needs_tokens(&self) -> bool {
        self.rules
            .iter()
            .any(|rule| rule.requirement != Requirement::Public)
    }
}

/// Rule names appear in metric names and descriptors, so they are restricted to a safe set.
pub fn check_rule_name(name: &str, field: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            name,
            "expected 1 to 64 letters, digits, '_' or '-'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> AccessPolicy {
        let rules: Vec<RuleSettings> = serde_json::from_str(json).unwrap();
        AccessPolicy::compile(&rules, DefaultAction::Deny).unwrap()
    }

    fn target(path: &str) -> RequestTarget<'_> {
        RequestTarget {
            host: "h",
            path,
            method: "GET",
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let p = policy(
            r#"[{"name": "health", "match": {"path": {"exact": "/admin/health"}}, "require": "public"},
                {"name": "admin", "match": {"path": {"prefix": "/admin"}}, "require": {"any_role": ["admin"]}}]"#,
        );
        assert_eq!(p.find(&target("/admin/health")).name(), "health");
        assert_eq!(p.find(&target("/admin/users")).name(), "admin");
        assert_eq!(p.find(&target("/other")).name(), "default");
    }

    #[test]
    fn default_deny_is_protected() {
        let p = policy("[]");
        assert!(p.find(&target("/x")).is_protected());
    }

    #[test]
    fn requirement_parses_each_form() {
        let rules: Vec<RuleSettings> = serde_json::from_str(
            r#"[{"name": "a", "require": "public"}, {"name": "b", "require": "authenticated"},
                {"name": "c", "require": {"any_role": ["x"]}}]"#,
        )
        .unwrap();
        assert_eq!(rules[0].require, Requirement::Public);
        assert_eq!(rules[1].require, Requirement::Authenticated);
        assert_eq!(rules[2].require, Requirement::AnyRole(vec!["x".into()]));
    }

    #[test]
    fn empty_role_list_rejected() {
        let rules: Vec<RuleSettings> =
            serde_json::from_str(r#"[{"name": "a", "require": {"any_role": []}}]"#).unwrap();
        let err = AccessPolicy::compile(&rules, DefaultAction::Deny).unwrap_err();
        assert_eq!(err.path, "rules[0].require.any_role");
    }

    #[test]
    fn duplicate_names_rejected() {
        let rules: Vec<RuleSettings> = serde_json::from_str(
            r#"[{"name": "a", "require": "public"}, {"name": "a", "require": "public"}]"#,
        )
        .unwrap();
        let err = AccessPolicy::compile(&rules, DefaultAction::Deny).unwrap_err();
        assert_eq!(err.path, "rules[1].name");
    }

    #[test]
    fn unsafe_rule_name_rejected() {
        let rules: Vec<RuleSettings> =
            serde_json::from_str(r#"[{"name": "a b", "require": "public"}]"#).unwrap();
        assert!(AccessPolicy::compile(&rules, DefaultAction::Deny).is_err());
    }
}
