//! Structured audit events, one JSON object per decision, written to Envoy's log.
//!
//! Events carry the method, the normalized path without its query, the rule, the outcome and
//! the verified subject. They never carry a token, a header value, a query string or a body,
//! since any of those can hold a credential.

use serde::Serialize;

/// One audit event.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent<'a> {
    /// Always `meshguard.access` so log pipelines can select the events.
    pub event: &'static str,
    /// `allow`, `deny` or `dry_run_deny`.
    pub decision: &'static str,
    pub status: u16,
    pub reason: &'a str,
    pub rule: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
}

impl AuditEvent<'_> {
    /// The event as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Returns `path` without its query string, for logging.
pub fn path_without_query(path: &str) -> &str {
    path.split('?').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_serializes_without_empty_fields() {
        let event = AuditEvent {
            event: "meshguard.access",
            decision: "deny",
            status: 401,
            reason: "token_expired",
            rule: "admin",
            method: "GET",
            path: "/admin",
            subject: None,
            provider: None,
            request_id: Some("abc"),
        };
        let json: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(json["decision"], "deny");
        assert_eq!(json["request_id"], "abc");
        assert!(json.get("subject").is_none());
    }

    #[test]
    fn query_is_dropped() {
        assert_eq!(path_without_query("/a?token=secret"), "/a");
    }
}
