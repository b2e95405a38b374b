//! The limits file: its YAML form, validation with field paths, and descriptor matching.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::window::{parse_window, DisplayWindow};

/// Storage key prefix used when the limits file sets none.
pub const DEFAULT_KEY_PREFIX: &str = "meshguard:rl";

/// Maximum `requests` of a sliding-window log limit. The log stores one sorted-set member per
/// counted hit, so memory per key grows with the limit. Larger limits should use the
/// sliding-window counter, which keeps three numbers per key.
pub const MAX_LOG_REQUESTS: u32 = 100_000;

/// Counting algorithm of a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Exact: one timestamp per counted hit, trimmed to the window on every check.
    #[default]
    SlidingLog,
    /// Approximate, constant memory: the current fixed window's count plus the previous
    /// window's count weighted by how much of it still overlaps the sliding window.
    SlidingCounter,
}

impl Algorithm {
    /// Short name used in storage keys and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::SlidingLog => "log",
            Algorithm::SlidingCounter => "counter",
        }
    }
}

/// A validated limits file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub domain: String,
    /// Whether descriptor values are replaced by their SHA-256 digest in storage keys.
    pub hash_values: bool,
    pub key_prefix: String,
    pub rules: Vec<Rule>,
}

/// One descriptor pattern and the limits that apply to descriptors it matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub entries: Vec<EntryPattern>,
    pub limits: Vec<Limit>,
}

/// Pattern for one descriptor entry: an exact key and a value pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryPattern {
    pub key: String,
    pub value: ValuePattern,
}

/// Pattern for a descriptor entry's value. Each distinct matching value gets its own counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ValuePattern {
    /// Any value (the value is omitted or `"*"` in the file).
    Any,
    /// Values that start with the prefix (written `"prefix*"`).
    Prefix(String),
    /// Exactly this value.
    Exact(String),
}

impl ValuePattern {
    fn parse(value: Option<&str>) -> ValuePattern {
        match value {
            None | Some("*") => ValuePattern::Any,
            Some(text) => match text.strip_suffix('*') {
                Some(prefix) => ValuePattern::Prefix(prefix.to_owned()),
                None => ValuePattern::Exact(text.to_owned()),
            },
        }
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            ValuePattern::Any => true,
            ValuePattern::Prefix(prefix) => value.starts_with(prefix.as_str()),
            ValuePattern::Exact(exact) => value == exact,
        }
    }
}

/// One limit: at most `requests` hits in any window of length `window`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub name: String,
    pub requests: u32,
    pub window: Duration,
    pub algorithm: Algorithm,
    /// A shadow limit counts and logs hits over it but never rejects a request.
    pub shadow: bool,
}

impl Config {
    /// Finds the first rule, in file order, whose entries match the descriptor's entries
    /// one for one. Returns `None` for another domain or when no rule matches.
    pub fn find_rule<'a, K, V>(&self, domain: &str, entries: &'a [(K, V)]) -> Option<&Rule>
    where
        K: AsRef<str> + 'a,
        V: AsRef<str> + 'a,
    {
        if domain != self.domain {
            return None;
        }
        self.rules.iter().find(|rule| {
            rule.entries.len() == entries.len()
                && rule
                    .entries
                    .iter()
                    .zip(entries)
                    .all(|(pattern, (key, value))| {
                        pattern.key == key.as_ref() && pattern.value.matches(value.as_ref())
                    })
        })
    }
}

/// One problem in a limits file: the field path (`descriptors[2].limits[0].window`) and what
/// is wrong with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Error from loading a limits file: unreadable, not valid YAML for the schema, or failing
/// validation (then with every problem found).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read limits file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid limits file: {}", join_errors(.0))]
    Invalid(Vec<FieldError>),
}

fn join_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    domain: String,
    #[serde(default)]
    hash_values: bool,
    #[serde(default)]
    key_prefix: Option<String>,
    #[serde(default)]
    descriptors: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    entries: Vec<RawEntry>,
    limits: Vec<RawLimit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    #[serde(default)]
    name: Option<String>,
    requests: u32,
    window: String,
    #[serde(default)]
    algorithm: Algorithm,
    #[serde(default)]
    shadow: bool,
}

/// Reads and validates a limits file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}

/// Parses and validates limits-file text, reporting every validation problem it finds.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    // serde_yaml's message already starts with the field path and ends with the position.
    let raw: RawFile = serde_yaml::from_str(text).map_err(|error| {
        ConfigError::Invalid(vec![FieldError {
            path: String::new(),
            message: error.to_string(),
        }])
    })?;
    validate(raw).map_err(ConfigError::Invalid)
}

fn validate(raw: RawFile) -> Result<Config, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fail = |path: String, message: String| errors.push(FieldError { path, message });

    if raw.domain.is_empty() {
        fail("domain".into(), "must not be empty".into());
    }
    let key_prefix = raw
        .key_prefix
        .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
    if key_prefix.is_empty() {
        fail("key_prefix".into(), "must not be empty".into());
    }
    if key_prefix.contains(['{', '}']) {
        fail(
            "key_prefix".into(),
            format!("{key_prefix:?} must not contain '{{' or '}}', which Redis Cluster reads as a hash tag"),
        );
    }

    let mut rules = Vec::with_capacity(raw.descriptors.len());
    let mut rule_names = HashSet::new();
    let mut patterns: Vec<(Vec<(String, ValuePattern)>, usize)> = Vec::new();
    for (rule_index, raw_rule) in raw.descriptors.into_iter().enumerate() {
        let rule_path = format!("descriptors[{rule_index}]");
        if raw_rule.name.is_empty() {
            fail(format!("{rule_path}.name"), "must not be empty".into());
        } else if !rule_names.insert(raw_rule.name.clone()) {
            fail(
                format!("{rule_path}.name"),
                format!("duplicate descriptor name {:?}", raw_rule.name),
            );
        }

        if raw_rule.entries.is_empty() {
            fail(
                format!("{rule_path}.entries"),
                "must list at least one entry".into(),
            );
        }
        let mut entries = Vec::with_capacity(raw_rule.entries.len());
        for (entry_index, raw_entry) in raw_rule.entries.into_iter().enumerate() {
            if raw_entry.key.is_empty() {
                fail(
                    format!("{rule_path}.entries[{entry_index}].key"),
                    "must not be empty".into(),
                );
            }
            entries.push(EntryPattern {
                value: ValuePattern::parse(raw_entry.value.as_deref()),
                key: raw_entry.key,
            });
        }
        let signature: Vec<(String, ValuePattern)> = entries
            .iter()
            .map(|entry| (entry.key.clone(), entry.value.clone()))
            .collect();
        if let Some((_, first)) = patterns.iter().find(|(other, _)| *other == signature) {
            fail(
                format!("{rule_path}.entries"),
                format!(
                    "same entries as descriptors[{first}], so this descriptor would never match"
                ),
            );
        } else {
            patterns.push((signature, rule_index));
        }

        if raw_rule.limits.is_empty() {
            fail(
                format!("{rule_path}.limits"),
                "must list at least one limit".into(),
            );
        }
        let mut limits: Vec<Limit> = Vec::with_capacity(raw_rule.limits.len());
        for (limit_index, raw_limit) in raw_rule.limits.into_iter().enumerate() {
            let limit_path = format!("{rule_path}.limits[{limit_index}]");
            if raw_limit.requests == 0 {
                fail(
                    format!("{limit_path}.requests"),
                    "must be at least 1".into(),
                );
            }
            if raw_limit.algorithm == Algorithm::SlidingLog && raw_limit.requests > MAX_LOG_REQUESTS
            {
                fail(
                    format!("{limit_path}.requests"),
                    format!(
                        "{} exceeds the sliding_log maximum of {MAX_LOG_REQUESTS}; use algorithm: sliding_counter",
                        raw_limit.requests
                    ),
                );
            }
            let window = match parse_window(&raw_limit.window) {
                Ok(window) => window,
                Err(error) => {
                    fail(format!("{limit_path}.window"), error.to_string());
                    continue;
                }
            };
            let name = raw_limit
                .name
                .unwrap_or_else(|| format!("{} per {}", raw_limit.requests, DisplayWindow(window)));
            if limits.iter().any(|other| other.name == name) {
                fail(
                    format!("{limit_path}.name"),
                    format!("duplicate limit name {name:?} in this descriptor"),
                );
            }
            if let Some(other) = limits.iter().find(|other| {
                other.window == window
                    && other.algorithm == raw_limit.algorithm
                    && other.shadow == raw_limit.shadow
            }) {
                let kind = if raw_limit.shadow { "shadow " } else { "" };
                fail(
                    format!("{limit_path}.window"),
                    format!(
                        "{} with {kind}{} repeats limit {:?}, and both would share one counter",
                        raw_limit.window,
                        raw_limit.algorithm.as_str(),
                        other.name
                    ),
                );
            }
            limits.push(Limit {
                name,
                requests: raw_limit.requests,
                window,
                algorithm: raw_limit.algorithm,
                shadow: raw_limit.shadow,
            });
        }
        rules.push(Rule {
            name: raw_rule.name,
            entries,
            limits,
        });
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Config {
        domain: raw.domain,
        hash_values: raw.hash_values,
        key_prefix,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
domain: meshguard
descriptors:
  - name: login
    entries:
      - key: endpoint
        value: login
      - key: remote_address
      - key: subject
    limits:
      - requests: 5
        window: 15m
      - name: burst
        requests: 2
        window: 1s
        algorithm: sliding_counter
        shadow: true
  - name: api
    entries:
      - key: path
        value: "/api/*"
    limits:
      - requests: 100
        window: 1h
"#;

    fn errors_of(text: &str) -> Vec<String> {
        match parse(text) {
            Err(ConfigError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    #[test]
    fn parses_sample() {
        let config = parse(SAMPLE).unwrap();
        assert_eq!(config.domain, "meshguard");
        assert_eq!(config.key_prefix, DEFAULT_KEY_PREFIX);
        assert!(!config.hash_values);
        let login = &config.rules[0];
        assert_eq!(login.entries[1].value, ValuePattern::Any);
        assert_eq!(login.limits[0].name, "5 per 15m");
        assert_eq!(login.limits[0].window, Duration::from_secs(900));
        assert_eq!(login.limits[0].algorithm, Algorithm::SlidingLog);
        assert_eq!(login.limits[1].algorithm, Algorithm::SlidingCounter);
        assert!(login.limits[1].shadow);
        assert_eq!(
            config.rules[1].entries[0].value,
            ValuePattern::Prefix("/api/".into())
        );
    }

    #[test]
    fn matches_first_rule_in_order() {
        let config = parse(SAMPLE).unwrap();
        let login = [
            ("endpoint", "login"),
            ("remote_address", "10.0.0.1"),
            ("subject", "u"),
        ];
        assert_eq!(config.find_rule("meshguard", &login).unwrap().name, "login");
        assert_eq!(
            config
                .find_rule("meshguard", &[("path", "/api/x")])
                .unwrap()
                .name,
            "api"
        );
    }

    #[test]
    fn unmatched_descriptors_find_no_rule() {
        let config = parse(SAMPLE).unwrap();
        let unknown = [
            ("endpoint", "other"),
            ("remote_address", "a"),
            ("subject", "u"),
        ];
        assert!(config.find_rule("meshguard", &unknown).is_none());
        let short = [("endpoint", "login"), ("remote_address", "a")];
        assert!(config.find_rule("meshguard", &short).is_none());
        let reordered = [
            ("remote_address", "a"),
            ("endpoint", "login"),
            ("subject", "u"),
        ];
        assert!(config.find_rule("meshguard", &reordered).is_none());
        assert!(config.find_rule("other", &[("path", "/api/x")]).is_none());
        assert!(config.find_rule("meshguard", &[("path", "/web")]).is_none());
    }

    #[test]
    fn reports_field_path_for_schema_errors() {
        let errors = errors_of("domain: d\ndescriptors:\n  - name: a\n    entries: []\n    limits:\n      - requests: many\n        window: 1s\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("descriptors[0].limits[0].requests: invalid type"),
            "{errors:?}"
        );
        let errors = errors_of("domain: d\nlimits: []\n");
        assert!(errors[0].contains("unknown field `limits`"), "{errors:?}");
        let errors = errors_of("descriptors: []\n");
        assert!(errors[0].contains("missing field `domain`"), "{errors:?}");
    }

    #[test]
    fn reports_every_validation_error() {
        let text = r#"
domain: ""
key_prefix: "a{b}"
descriptors:
  - name: a
    entries: []
    limits: []
  - name: a
    entries:
      - key: ""
    limits:
      - requests: 0
        window: 15x
      - requests: 200000
        window: 1s
      - requests: 3
        window: 1000ms
"#;
        let errors = errors_of(text);
        let expected = [
            "domain: must not be empty",
            "key_prefix: \"a{b}\" must not contain",
            "descriptors[0].entries: must list at least one entry",
            "descriptors[0].limits: must list at least one limit",
            "descriptors[1].name: duplicate descriptor name \"a\"",
            "descriptors[1].entries[0].key: must not be empty",
            "descriptors[1].limits[0].requests: must be at least 1",
            "descriptors[1].limits[0].window: invalid window \"15x\": unknown unit \"x\"",
            "descriptors[1].limits[1].requests: 200000 exceeds the sliding_log maximum",
            "descriptors[1].limits[2].window: 1000ms with log repeats limit \"200000 per 1s\"",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (error, prefix) in errors.iter().zip(expected) {
            assert!(
                error.starts_with(prefix),
                "{error:?} should start with {prefix:?}"
            );
        }
    }

    #[test]
    fn rejects_unreachable_duplicate_pattern() {
        let text = r#"
domain: d
descriptors:
  - name: a
    entries: [{key: k}]
    limits: [{requests: 1, window: 1s}]
  - name: b
    entries: [{key: k, value: "*"}]
    limits: [{requests: 1, window: 1s}]
"#;
        let errors = errors_of(text);
        assert_eq!(
            errors,
            ["descriptors[1].entries: same entries as descriptors[0], so this descriptor would never match"]
        );
    }
}
