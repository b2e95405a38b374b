//! Security response headers, set on every response including the filter's own replies.

use serde::Deserialize;

use crate::claims::is_header_name;
use crate::config::ConfigError;

const DEFAULT_HSTS: &str = "max-age=31536000; includeSubDomains; preload";
const DEFAULT_CSP: &str = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; \
                           base-uri 'self'; form-action 'self'";
const DEFAULT_PERMISSIONS: &str = "accelerometer=(), ambient-light-sensor=(), camera=(), \
                                   geolocation=(), gyroscope=(), magnetometer=(), \
                                   microphone=(), payment=(), usb=()";

/// Settings of one header. Every field is optional; absent ones keep the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderSetting {
    /// `false` leaves the header out entirely.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The value to send.
    #[serde(default)]
    pub value: Option<String>,
    /// `true` replaces a value sent by the upstream, `false` keeps it.
    #[serde(default)]
    pub overwrite: Option<bool>,
}

/// A further header with its value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraHeader {
    pub name: String,
    pub value: String,
    #[serde(default = "default_true")]
    pub overwrite: bool,
}

fn default_true() -> bool {
    true
}

/// The `security_headers` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityHeaderSettings {
    #[serde(default)]
    pub strict_transport_security: HeaderSetting,
    #[serde(default)]
    pub content_security_policy: HeaderSetting,
    #[serde(default)]
    pub x_content_type_options: HeaderSetting,
    #[serde(default)]
    pub x_frame_options: HeaderSetting,
    #[serde(default)]
    pub referrer_policy: HeaderSetting,
    #[serde(default)]
    pub permissions_policy: HeaderSetting,
    /// Further headers to set.
    #[serde(default)]
    pub extra: Vec<ExtraHeader>,
    /// Response headers to remove; `server` by default.
    #[serde(default = "default_remove")]
    pub remove: Vec<String>,
}

impl Default for SecurityHeaderSettings {
    fn default() -> Self {
        Self {
            strict_transport_security: HeaderSetting::default(),
            content_security_policy: HeaderSetting::default(),
            x_content_type_options: HeaderSetting::default(),
            x_frame_options: HeaderSetting::default(),
            referrer_policy: HeaderSetting::default(),
            permissions_policy: HeaderSetting::default(),
            extra: Vec::new(),
            remove: default_remove(),
        }
    }
}

fn default_remove() -> Vec<String> {
    vec!["server".to_owned()]
}

/// One header to set on responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    pub name: String,
    pub value: String,
    pub overwrite: bool,
}

/// One change to a response's headers, made with one host call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderEdit<'a> {
    /// Replaces every value of the header with this one, or adds it.
    Set(&'a str, &'a str),
    /// Removes every value of the header.
    Remove(&'a str),
}

/// The compiled header set.
#[derive(Debug, Clone, Default)]
pub struct SecurityHeaders {
    pub set: Vec<ResponseHeader>,
    pub remove: Vec<String>,
}

impl SecurityHeaders {
    /// Applies the settings to the built-in defaults and checks names and values.
    pub fn compile(settings: &SecurityHeaderSettings) -> Result<Self, ConfigError> {
        let builtin = [
            (
                "strict-transport-security",
                "strict_transport_security",
                DEFAULT_HSTS,
                &settings.strict_transport_security,
            ),
            (
                "content-security-policy",
                "content_security_policy",
                DEFAULT_CSP,
                &settings.content_security_policy,
            ),
            (
                "x-content-type-options",
                "x_content_type_options",
                "nosniff",
                &settings.x_content_type_options,
            ),
            (
                "x-frame-options",
                "x_frame_options",
                "DENY",
                &settings.x_frame_options,
            ),
            (
                "referrer-policy",
                "referrer_policy",
                "strict-origin-when-cross-origin",
                &settings.referrer_policy,
            ),
            (
                "permissions-policy",
                "permissions_policy",
                DEFAULT_PERMISSIONS,
                &settings.permissions_policy,
            ),
        ];
        let mut set = Vec::new();
        for (name, field, default, setting) in builtin {
            if setting.enabled == Some(false) {
                continue;
            }
            let value = setting.value.clone().unwrap_or_else(|| default.to_owned());
            check_value(&value, &format!("security_headers.{field}.value"))?;
            set.push(ResponseHeader {
                name: name.to_owned(),
                value,
                overwrite: setting.overwrite.unwrap_or(true),
            });
        }
        for (i, extra) in settings.extra.iter().enumerate() {
            let name = checked_name(&extra.name, &format!("security_headers.extra[{i}].name"))?;
            check_value(&extra.value, &format!("security_headers.extra[{i}].value"))?;
            set.push(ResponseHeader {
                name,
                value: extra.value.clone(),
                overwrite: extra.overwrite,
            });
        }
        let remove = settings
            .remove
            .iter()
            .enumerate()
            .map(|(i, name)| checked_name(name, &format!("security_headers.remove[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Self { set, remove })
    }

    /// Returns whether the edits depend on the headers the upstream sent, which is the case
    /// when some header keeps the upstream's value.
    pub fn reads_upstream(&self) -> bool {
        self.set.iter().any(|header| !header.overwrite)
    }

    /// Returns the edits that apply the header set to a response: each removed header, then
    /// each header set, replacing every upstream value. `present(name)` returns whether the
    /// upstream sent the header. A header that keeps the upstream's value is set only when
    /// absent, and an absent header needs no removal.
    ///
    /// One host call per edit costs a Wasm VM far less than a read and a write of the whole
    /// map (see `docs/benchmarks.md`), so the map is read only when [`Self::reads_upstream`].
    pub fn edits(&self, present: impl Fn(&str) -> bool) -> Vec<HeaderEdit<'_>> {
        let removals = self
            .remove
            .iter()
            .filter(|name| present(name))
            .map(|name| HeaderEdit::Remove(name));
        let sets = self
            .set
            .iter()
            .filter(|header| header.overwrite || !present(&header.name))
            .map(|header| HeaderEdit::Set(&header.name, &header.value));
        removals.chain(sets).collect()
    }

    /// Headers for a reply the filter sends itself, where no upstream value exists.
    pub fn for_local_reply(&self) -> impl Iterator<Item = (&str, &str)> {
        self.set.iter().map(|h| (h.name.as_str(), h.value.as_str()))
    }
}

fn checked_name(name: &str, field: &str) -> Result<String, ConfigError> {
    let lower = name.to_ascii_lowercase();
    if is_header_name(&lower) {
        Ok(lower)
    } else {
        Err(ConfigError::invalid(
            field,
            name,
            "expected an HTTP header name",
        ))
    }
}

fn check_value(value: &str, field: &str) -> Result<(), ConfigError> {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(ConfigError::invalid(
            field,
            value,
            "expected a non-empty value without control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(json: &str) -> Result<SecurityHeaders, ConfigError> {
        let settings: SecurityHeaderSettings = serde_json::from_str(json).unwrap();
        SecurityHeaders::compile(&settings)
    }

    fn value<'a>(headers: &'a SecurityHeaders, name: &str) -> Option<&'a ResponseHeader> {
        headers.set.iter().find(|h| h.name == name)
    }

    #[test]
    fn defaults_are_secure() {
        let h = compile("{}").unwrap();
        assert_eq!(
            value(&h, "x-content-type-options").unwrap().value,
            "nosniff"
        );
        assert_eq!(value(&h, "x-frame-options").unwrap().value, "DENY");
        assert_eq!(
            value(&h, "strict-transport-security").unwrap().value,
            DEFAULT_HSTS
        );
        assert_eq!(
            value(&h, "referrer-policy").unwrap().value,
            "strict-origin-when-cross-origin"
        );
        let permissions = &value(&h, "permissions-policy").unwrap().value;
        for feature in [
            "camera=()",
            "microphone=()",
            "geolocation=()",
            "payment=()",
            "usb=()",
        ] {
            assert!(permissions.contains(feature), "{feature}");
        }
        assert!(value(&h, "content-security-policy").is_some());
        assert_eq!(h.remove, vec!["server"]);
        assert!(h.set.iter().all(|header| header.overwrite));
    }

    #[test]
    fn header_can_be_disabled_changed_and_kept() {
        let h = compile(
            r#"{"x_frame_options": {"enabled": false},
                "referrer_policy": {"value": "no-referrer"},
                "content_security_policy": {"overwrite": false}}"#,
        )
        .unwrap();
        assert!(value(&h, "x-frame-options").is_none());
        assert_eq!(value(&h, "referrer-policy").unwrap().value, "no-referrer");
        assert!(!value(&h, "content-security-policy").unwrap().overwrite);
    }

    #[test]
    fn extra_header_added() {
        let h = compile(
            r#"{"extra": [{"name": "Cross-Origin-Opener-Policy", "value": "same-origin"}]}"#,
        )
        .unwrap();
        assert_eq!(
            value(&h, "cross-origin-opener-policy").unwrap().value,
            "same-origin"
        );
    }

    fn response(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    /// Applies the edits as Envoy does: a set replaces every value, a removal drops them all.
    fn apply(h: &SecurityHeaders, headers: &mut Vec<(String, Vec<u8>)>) -> usize {
        let snapshot = headers.clone();
        let edits = h.edits(|name| snapshot.iter().any(|(n, _)| n == name));
        for edit in &edits {
            match *edit {
                HeaderEdit::Remove(name) => headers.retain(|(n, _)| n != name),
                HeaderEdit::Set(name, value) => {
                    headers.retain(|(n, _)| n != name);
                    headers.push((name.to_owned(), value.as_bytes().to_vec()));
                }
            }
        }
        edits.len()
    }

    fn values_of<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Vec<&'a [u8]> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    #[test]
    fn edits_replace_upstream_values_and_remove_server() {
        let h = compile("{}").unwrap();
        let mut headers = response(&[
            (":status", "200"),
            ("server", "upstream"),
            ("x-frame-options", "ALLOWALL"),
            ("x-frame-options", "SAMEORIGIN"),
            ("content-type", "text/plain"),
        ]);
        assert!(!h.reads_upstream());
        assert_eq!(apply(&h, &mut headers), 7);
        assert_eq!(
            values_of(&headers, "x-frame-options"),
            vec![b"DENY".as_slice()]
        );
        assert!(values_of(&headers, "server").is_empty());
        assert_eq!(values_of(&headers, ":status"), vec![b"200".as_slice()]);
        assert_eq!(
            values_of(&headers, "content-type"),
            vec![b"text/plain".as_slice()]
        );
        assert_eq!(
            values_of(&headers, "x-content-type-options"),
            vec![b"nosniff".as_slice()]
        );
    }

    #[test]
    fn edits_keep_upstream_value_when_not_overwriting() {
        let h = compile(r#"{"content_security_policy": {"overwrite": false}}"#).unwrap();
        assert!(h.reads_upstream());
        let mut headers = response(&[("content-security-policy", "default-src https:")]);
        assert_eq!(apply(&h, &mut headers), 5);
        assert_eq!(
            values_of(&headers, "content-security-policy"),
            vec![b"default-src https:".as_slice()]
        );
        let mut headers = response(&[]);
        assert_eq!(apply(&h, &mut headers), 6);
        assert_eq!(values_of(&headers, "content-security-policy").len(), 1);
    }

    #[test]
    fn absent_header_needs_no_removal() {
        let h = compile("{}").unwrap();
        let edits = h.edits(|name| name != "server");
        assert!(!edits.contains(&HeaderEdit::Remove("server")));
        assert!(h.edits(|_| true).contains(&HeaderEdit::Remove("server")));
    }

    #[test]
    fn no_edits_when_nothing_to_do() {
        let settings: SecurityHeaderSettings = serde_json::from_str(
            r#"{"strict_transport_security": {"enabled": false},
                "content_security_policy": {"enabled": false},
                "x_content_type_options": {"enabled": false},
                "x_frame_options": {"enabled": false},
                "referrer_policy": {"enabled": false},
                "permissions_policy": {"enabled": false}}"#,
        )
        .unwrap();
        let h = SecurityHeaders::compile(&settings).unwrap();
        let mut headers = response(&[(":status", "200")]);
        assert_eq!(apply(&h, &mut headers), 0);
    }

    #[test]
    fn value_with_newline_rejected() {
        let err = compile(r#"{"referrer_policy": {"value": "a\r\nb"}}"#).unwrap_err();
        assert_eq!(err.path, "security_headers.referrer_policy.value");
    }

    #[test]
    fn invalid_remove_name_rejected() {
        let err = compile(r#"{"remove": ["bad name"]}"#).unwrap_err();
        assert_eq!(err.path, "security_headers.remove[0]");
    }
}
