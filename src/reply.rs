//! The filter's own replies: status, `WWW-Authenticate` challenge (RFC 6750) and JSON body.

use serde_json::json;

use crate::config::ReplySettings;
use crate::decision::{BearerError, Denial};
use crate::headers::SecurityHeaders;

/// A complete local reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Builds the reply for a denial, with the security headers.
pub fn for_denial(
    denial: &Denial,
    request_id: Option<&str>,
    settings: &ReplySettings,
    security: &SecurityHeaders,
) -> LocalReply {
    let mut headers = Vec::new();
    if let Some(challenge) = challenge(denial, settings) {
        headers.push(("www-authenticate".to_owned(), challenge));
    }
    let error = denial.bearer_error.code().unwrap_or(match denial.status {
        400 => "invalid_request",
        401 => "unauthorized",
        _ => "forbidden",
    });
    let mut body = json!({"error": error, "reason": denial.reason});
    if settings.error_description {
        body["message"] = json!(denial.description);
    }
    if let Some(id) = request_id {
        body["request_id"] = json!(id);
    }
    json_reply(denial.status, headers, &body, security)
}

/// Builds a JSON reply with the security headers and `cache-control: no-store`.
pub fn json_reply(
    status: u16,
    mut headers: Vec<(String, String)>,
    body: &serde_json::Value,
    security: &SecurityHeaders,
) -> LocalReply {
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    headers.push(("cache-control".to_owned(), "no-store".to_owned()));
    for (name, value) in security.for_local_reply() {
        if !headers.iter().any(|(n, _)| n == name) {
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    LocalReply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Builds the `WWW-Authenticate` value for 401 replies and for 403 `insufficient_scope`.
fn challenge(denial: &Denial, settings: &ReplySettings) -> Option<String> {
    let applies = denial.status == 401 || denial.bearer_error == BearerError::InsufficientScope;
    if !applies {
        return None;
    }
    let mut challenge = format!("Bearer realm=\"{}\"", settings.realm);
    if let Some(code) = denial.bearer_error.code() {
        challenge.push_str(&format!(", error=\"{code}\""));
        if settings.error_description {
            challenge.push_str(&format!(
                ", error_description=\"{}\"",
                quoted_string_safe(&denial.description)
            ));
        }
    }
    Some(challenge)
}

/// RFC 6750 restricts `error_description` to printable ASCII without `"` and `\`.
fn quoted_string_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::SecurityHeaderSettings;

    fn denial(status: u16, reason: &'static str, error: BearerError) -> Denial {
        Denial {
            status,
            reason,
            bearer_error: error,
            description: "token has expired".into(),
            rule: "r".into(),
            path: None,
            subject: None,
        }
    }

    fn security() -> SecurityHeaders {
        SecurityHeaders::compile(&SecurityHeaderSettings::default()).unwrap()
    }

    fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn invalid_token_challenge_has_error_and_description() {
        let d = denial(401, "token_expired", BearerError::InvalidToken);
        let reply = for_denial(&d, Some("req-1"), &ReplySettings::default(), &security());
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some(
                "Bearer realm=\"meshguard\", error=\"invalid_token\", \
                 error_description=\"token has expired\""
            )
        );
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["reason"], "token_expired");
        assert_eq!(body["request_id"], "req-1");
        assert_eq!(body["message"], "token has expired");
    }

    #[test]
    fn missing_token_challenge_has_no_error() {
        let d = denial(401, "missing_token", BearerError::None);
        let reply = for_denial(&d, None, &ReplySettings::default(), &security());
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some("Bearer realm=\"meshguard\"")
        );
    }

    #[test]
    fn description_can_be_turned_off() {
        let settings = ReplySettings {
            error_description: false,
            ..ReplySettings::default()
        };
        let d = denial(401, "token_expired", BearerError::InvalidToken);
        let reply = for_denial(&d, None, &settings, &security());
        let challenge = header(&reply, "www-authenticate").unwrap();
        assert!(!challenge.contains("error_description"), "{challenge}");
        assert!(!reply.body.contains("message"));
    }

    #[test]
    fn forbidden_role_has_insufficient_scope() {
        let d = denial(403, "role_missing", BearerError::InsufficientScope);
        let reply = for_denial(&d, None, &ReplySettings::default(), &security());
        assert!(header(&reply, "www-authenticate")
            .unwrap()
            .contains("error=\"insufficient_scope\""));
    }

    #[test]
    fn no_rule_forbidden_has_no_challenge() {
        let d = denial(403, "no_matching_rule", BearerError::None);
        let reply = for_denial(&d, None, &ReplySettings::default(), &security());
        assert_eq!(header(&reply, "www-authenticate"), None);
        assert_eq!(header(&reply, "x-frame-options"), Some("DENY"));
    }

    #[test]
    fn description_is_quoted_string_safe() {
        assert_eq!(quoted_string_safe("a\"b\\c\u{e9}\n"), "a'b'c??");
    }
}
