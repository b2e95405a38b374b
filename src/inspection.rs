//! Attack-pattern inspection per route: the `waf` section's default policy, overridden by the
//! first `waf_routes` entry whose `match` fits the request.

use serde::Deserialize;
use serde_json::json;

use crate::access::check_rule_name;
use crate::config::ConfigError;
use crate::headers::SecurityHeaders;
use crate::matcher::{MatchSettings, Matcher, RequestTarget};
use crate::reply::{json_reply, LocalReply};
use crate::waf::{Policy, Report, RoutePolicySettings, Verdict, Waf, WafConfigError, WafSettings};

/// One entry of `waf_routes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectionRouteSettings {
    /// Name used in logs.
    pub name: String,
    /// Requests the override applies to.
    #[serde(rename = "match", default)]
    pub matcher: MatchSettings,
    /// Mode, threshold, paranoia and further exclusions for these requests.
    #[serde(default)]
    pub policy: RoutePolicySettings,
}

/// The compiled inspector with its route policies.
#[derive(Debug)]
pub struct Inspection {
    pub waf: Waf,
    routes: Vec<(Matcher, Policy)>,
}

impl Inspection {
    /// Compiles the `waf` section and the `waf_routes` overrides.
    pub fn compile(
        settings: &WafSettings,
        routes: &[InspectionRouteSettings],
    ) -> Result<Self, ConfigError> {
        let waf = Waf::compile(settings).map_err(config_error)?;
        let mut compiled = Vec::with_capacity(routes.len());
        for (i, route) in routes.iter().enumerate() {
            let field = format!("waf_routes[{i}]");
            check_rule_name(&route.name, &format!("{field}.name"))?;
            let matcher = Matcher::compile(&route.matcher, &format!("{field}.match"))?;
            let policy = waf
                .compile_route(&route.policy)
                .map_err(|err| config_error(err.within(&format!("{field}.policy"))))?;
            compiled.push((matcher, policy));
        }
        Ok(Self {
            waf,
            routes: compiled,
        })
    }

    /// Returns the policy for a request: the first matching route's, else the default.
    pub fn policy_for(&self, target: &RequestTarget<'_>) -> &Policy {
        self.routes
            .iter()
            .find(|(matcher, _)| matcher.matches(target))
            .map_or(self.waf.default_policy(), |(_, policy)| policy)
    }
}

/// Returns the name of a verdict in audit events.
pub fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allow",
        Verdict::Block => "block",
        Verdict::DetectOnly => "detect",
    }
}

/// Words that mark a target whose value is a credential, compared case-insensitively.
const SENSITIVE_TARGET_WORDS: &[&str] = &[
    "auth",
    "cookie",
    "credential",
    "key",
    "pass",
    "pin",
    "secret",
    "session",
    "token",
];

/// Returns the excerpt to log for a finding: `[redacted]` when the target looks like a
/// credential (a cookie, or a name containing `pass`, `token`, `secret`, ...), since the
/// inspector's own redaction only replaces long token-like runs.
pub fn logged_excerpt(target: &str, excerpt: &str) -> String {
    let lower = target.to_ascii_lowercase();
    if SENSITIVE_TARGET_WORDS
        .iter()
        .any(|word| lower.contains(word))
    {
        "[redacted]".to_owned()
    } else {
        excerpt.to_owned()
    }
}

/// Builds one audit event per finding, as JSON lines, with credential excerpts redacted.
pub fn finding_events(report: &Report, verdict: Verdict, request_id: &str) -> Vec<String> {
    report
        .findings
        .iter()
        .map(|finding| {
            json!({
                "event": "meshguard.waf",
                "decision": verdict_name(verdict),
                "score": report.score,
                "rule_id": finding.rule_id,
                "category": finding.category,
                "severity": finding.severity,
                "target": finding.target,
                "excerpt": logged_excerpt(&finding.target, &finding.excerpt),
                "request_id": request_id,
            })
            .to_string()
        })
        .collect()
}

/// Builds the 403 reply for a blocked request, naming the rule ids and the request id.
pub fn block_reply(report: &Report, request_id: &str, security: &SecurityHeaders) -> LocalReply {
    let body = json!({
        "error": "forbidden",
        "reason": "attack_detected",
        "message": "request blocked by attack-pattern inspection",
        "rule_ids": report.rule_ids(),
        "request_id": request_id,
    });
    json_reply(403, Vec::new(), &body, security)
}

/// Builds the reply for a request whose body cannot be inspected: `reason` is
/// `conflicting_content_type` (400) or `body_too_large` (the configured status, 413 by default).
pub fn body_reply(
    status: u16,
    reason: &str,
    request_id: &str,
    security: &SecurityHeaders,
) -> LocalReply {
    let message = if reason == "conflicting_content_type" {
        "request has conflicting Content-Type headers"
    } else {
        "request body is larger than the inspection limit"
    };
    let body = json!({
        "error": if status == 400 { "invalid_request" } else { "payload_too_large" },
        "reason": reason,
        "message": message,
        "request_id": request_id,
    });
    json_reply(status, Vec::new(), &body, security)
}

fn config_error(err: WafConfigError) -> ConfigError {
    ConfigError::new(err.field(), err.message())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::Mode;

    fn compile(routes: &str) -> Result<Inspection, ConfigError> {
        let settings: WafSettings = serde_json::from_str("{}").unwrap();
        let routes: Vec<InspectionRouteSettings> = serde_json::from_str(routes).unwrap();
        Inspection::compile(&settings, &routes)
    }

    fn target(path: &str) -> RequestTarget<'_> {
        RequestTarget {
            host: "h",
            path,
            method: "POST",
        }
    }

    #[test]
    fn route_override_applies_to_its_paths() {
        let inspection =
            compile(r#"[{"name": "legacy", "match": {"path": {"prefix": "/legacy"}}, "policy": {"mode": "detect"}}]"#)
                .unwrap();
        assert_eq!(
            inspection.policy_for(&target("/legacy/x")).mode(),
            Mode::Detect
        );
        assert_eq!(inspection.policy_for(&target("/api")).mode(), Mode::Block);
    }

    #[test]
    fn credential_excerpts_are_redacted() {
        for target in [
            "body:json:/password",
            "cookie:session",
            "header:x-api-key",
            "query:access_token",
            "body:field:Passwd",
        ] {
            assert_eq!(
                logged_excerpt(target, "x' OR 1=1"),
                "[redacted]",
                "{target}"
            );
        }
        assert_eq!(logged_excerpt("query:q", "x' OR 1=1"), "x' OR 1=1");
        assert_eq!(logged_excerpt("path", "../etc"), "../etc");
    }

    #[test]
    fn route_errors_carry_route_path() {
        let err = compile(r#"[{"name": "a", "policy": {"paranoia": 9}}]"#).unwrap_err();
        assert!(err.path.starts_with("waf_routes[0].policy"), "{err}");
    }
}
