//! Forwarding of verified claims to the upstream as request headers.
//!
//! Encoding of a claim value in its header:
//! - a string is sent as it is, unless it contains a control character, in which case it is
//!   sent as its JSON string literal (quoted, with escapes);
//! - a number or boolean is sent as its JSON text;
//! - an array of strings, numbers or booleans is sent as its elements joined with `,`, unless
//!   an element contains a `,` or a control character, in which case the whole array is sent
//!   as compact JSON;
//! - an object, a nested array or `null` is sent as compact JSON.
//!
//! A missing claim sends no header. Every client-sent copy of a configured header is removed
//! from every request, with or without a token.

use serde::Deserialize;
use serde_json::Value;

use crate::config::ConfigError;
use crate::jwt::VerifiedToken;

/// One claim-to-header mapping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimHeaderSettings {
    /// Claim name; dots descend into objects (`realm_access.roles`).
    pub claim: String,
    /// Request header to set.
    pub header: String,
}

/// Header names that carry framing, routing or credentials and so cannot hold a claim.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "cookie",
    "host",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The compiled mappings.
#[derive(Debug, Clone, Default)]
pub struct ClaimHeaders {
    entries: Vec<(Vec<String>, String)>,
    /// Every configured header name, and the same name with `_` for `-`, which CGI, WSGI,
    /// PHP and Rails read as the same header.
    removed: Vec<String>,
}

impl ClaimHeaders {
    /// Checks claim names and header names.
    pub fn compile(settings: &[ClaimHeaderSettings]) -> Result<Self, ConfigError> {
        let mut entries = Vec::with_capacity(settings.len());
        for (i, entry) in settings.iter().enumerate() {
            let header = entry.header.to_ascii_lowercase();
            if !is_header_name(&header) || RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(ConfigError::invalid(
                    &format!("claim_headers[{i}].header"),
                    &entry.header,
                    "expected a header name that is not a pseudo-header, hop-by-hop or \
                     credential header",
                ));
            }
            if entry.claim.is_empty() || entry.claim.split('.').any(str::is_empty) {
                return Err(ConfigError::invalid(
                    &format!("claim_headers[{i}].claim"),
                    &entry.claim,
                    "expected a claim name, with dots only between names",
                ));
            }
            let path = entry.claim.split('.').map(str::to_owned).collect();
            entries.push((path, header));
        }
        let mut removed = Vec::with_capacity(entries.len() * 2);
        for (_, header) in &entries {
            removed.push(header.clone());
            let underscored = header.replace('-', "_");
            if &underscored != header {
                removed.push(underscored);
            }
        }
        Ok(Self { entries, removed })
    }

    /// Names to remove from requests as received: every configured header and its spelling
    /// with underscores.
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        self.removed.iter().map(String::as_str)
    }

    /// Headers to add for a verified token.
    pub fn values(&self, token: &VerifiedToken) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter_map(|(path, header)| {
                let value = lookup(&token.claims, path)?;
                Some((header.clone(), encode(value)))
            })
            .collect()
    }
}

/// Returns whether `name` is a lower-case HTTP token usable as a header name.
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

fn lookup<'a>(claims: &'a serde_json::Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.get(first)?;
    for segment in rest {
        value = value.get(segment)?;
    }
    Some(value)
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

fn encode(value: &Value) -> String {
    match value {
        Value::String(text) if !has_control(text) => text.clone(),
        Value::Array(items) => encode_array(items).unwrap_or_else(|| value.to_string()),
        other => other.to_string(),
    }
}

fn encode_array(items: &[Value]) -> Option<String> {
    let mut parts = Vec::with_capacity(items.len());
    for item in items {
        let part = match item {
            Value::String(text) if !text.contains(',') && !has_control(text) => text.clone(),
            Value::Number(_) | Value::Bool(_) => item.to_string(),
            _ => return None,
        };
        parts.push(part);
    }
    Some(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(claims: Value) -> VerifiedToken {
        VerifiedToken {
            provider: "p".into(),
            subject: None,
            roles: Vec::new(),
            claims: claims.as_object().cloned().unwrap_or_default(),
        }
    }

    fn headers(json: &str) -> ClaimHeaders {
        let settings: Vec<ClaimHeaderSettings> = serde_json::from_str(json).unwrap();
        ClaimHeaders::compile(&settings).unwrap()
    }

    #[test]
    fn encodes_each_kind() {
        let h = headers(
            r#"[{"claim": "sub", "header": "x-sub"}, {"claim": "roles", "header": "x-roles"},
                {"claim": "n", "header": "x-n"}, {"claim": "org.id", "header": "x-org"},
                {"claim": "odd", "header": "x-odd"}, {"claim": "nl", "header": "x-nl"}]"#,
        );
        let values = h.values(&token(json!({
            "sub": "alice", "roles": ["admin", "ops"], "n": 5, "org": {"id": "acme"},
            "odd": ["a,b", "c"], "nl": "a\r\nx-admin: 1"
        })));
        assert_eq!(
            values,
            vec![
                ("x-sub".into(), "alice".into()),
                ("x-roles".into(), "admin,ops".into()),
                ("x-n".into(), "5".into()),
                ("x-org".into(), "acme".into()),
                ("x-odd".into(), r#"["a,b","c"]"#.into()),
                ("x-nl".into(), r#""a\r\nx-admin: 1""#.into()),
            ]
        );
    }

    #[test]
    fn missing_claim_sends_nothing() {
        let h = headers(r#"[{"claim": "email", "header": "x-email"}]"#);
        assert!(h.values(&token(json!({"sub": "a"}))).is_empty());
    }

    #[test]
    fn reserved_header_rejected() {
        let settings: Vec<ClaimHeaderSettings> =
            serde_json::from_str(r#"[{"claim": "sub", "header": "Host"}]"#).unwrap();
        let err = ClaimHeaders::compile(&settings).unwrap_err();
        assert_eq!(err.path, "claim_headers[0].header");
    }

    #[test]
    fn pseudo_header_rejected() {
        let settings: Vec<ClaimHeaderSettings> =
            serde_json::from_str(r#"[{"claim": "sub", "header": ":path"}]"#).unwrap();
        assert!(ClaimHeaders::compile(&settings).is_err());
    }

    #[test]
    fn header_names_are_lower_case_with_underscore_spelling() {
        let h = headers(r#"[{"claim": "sub", "header": "X-User"}]"#);
        assert_eq!(
            h.header_names().collect::<Vec<_>>(),
            vec!["x-user", "x_user"]
        );
    }
}
