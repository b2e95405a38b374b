//! Request matching on host, path and method, shared by access rules, inspection routes and
//! rate-limit rules.

use serde::Deserialize;

use crate::config::ConfigError;

/// How a rule selects paths. Paths are compared after normalization.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum PathPatternSettings {
    /// The whole path equals the value.
    Exact(String),
    /// The path equals the value or continues it after a `/`: `/api` matches `/api` and
    /// `/api/x` but not `/apix`. A value ending in `/` matches only below it.
    Prefix(String),
    /// Segment glob: `*` matches exactly one segment, a final `**` matches zero or more.
    Glob(String),
}

/// The `match` block of a rule.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MatchSettings {
    /// Host names (case-insensitive, default port ignored); empty matches every host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path pattern; absent matches every path.
    #[serde(default)]
    pub path: Option<PathPatternSettings>,
    /// HTTP methods (upper case); empty matches every method.
    #[serde(default)]
    pub methods: Vec<String>,
}

/// Request attributes that rules match on.
#[derive(Debug, Clone, Copy)]
pub struct RequestTarget<'a> {
    /// Lower-case host without the default port of the scheme.
    pub host: &'a str,
    /// Normalized path.
    pub path: &'a str,
    /// Request method.
    pub method: &'a str,
}

#[derive(Debug, Clone)]
enum PathPattern {
    Any,
    Exact(String),
    Prefix(String),
    Glob(Vec<GlobSegment>),
}

#[derive(Debug, Clone, PartialEq)]
enum GlobSegment {
    Literal(String),
    AnyOne,
    AnyRest,
}

/// A compiled `match` block.
#[derive(Debug, Clone)]
pub struct Matcher {
    hosts: Vec<String>,
    path: PathPattern,
    methods: Vec<String>,
}

const KNOWN_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

impl Matcher {
    /// Compiles a `match` block; `field` is its path in the configuration for error messages.
    pub fn compile(settings: &MatchSettings, field: &str) -> Result<Self, ConfigError> {
        let hosts = settings
            .hosts
            .iter()
            .enumerate()
            .map(|(i, host)| compile_host(host, &format!("{field}.hosts[{i}]")))
            .collect::<Result<_, _>>()?;
        let methods = settings
            .methods
            .iter()
            .enumerate()
            .map(|(i, method)| compile_method(method, &format!("{field}.methods[{i}]")))
            .collect::<Result<_, _>>()?;
        let path = match &settings.path {
            None => PathPattern::Any,
            Some(pattern) => compile_path(pattern, &format!("{field}.path"))?,
        };
        Ok(Self {
            hosts,
            path,
            methods,
        })
    }

    /// Returns whether the request meets every condition of the block.
    pub fn matches(&self, target: &RequestTarget<'_>) -> bool {
        let host_matches = self.hosts.is_empty() || self.hosts.iter().any(|h| h == target.host);
        let method_matches =
            self.methods.is_empty() || self.methods.iter().any(|m| m == target.method);
        host_matches && method_matches && self.path_matches(target.path)
    }

    fn path_matches(&self, path: &str) -> bool {
        match &self.path {
            PathPattern::Any => true,
            PathPattern::Exact(exact) => path == exact,
            PathPattern::Prefix(prefix) => prefix_matches(prefix, path),
            PathPattern::Glob(segments) => glob_matches(segments, path),
        }
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn glob_matches(pattern: &[GlobSegment], path: &str) -> bool {
    let mut segments = path.strip_prefix('/').unwrap_or(path).split('/');
    for glob in pattern {
        match glob {
            GlobSegment::AnyRest => return true,
            GlobSegment::AnyOne => match segments.next() {
                Some(segment) if !segment.is_empty() => {}
                _ => return false,
            },
            GlobSegment::Literal(literal) => match segments.next() {
                Some(segment) if segment == literal => {}
                _ => return false,
            },
        }
    }
    segments.next().is_none()
}

/// Lower-cases a host and removes a default port, as done for request hosts.
pub fn canonical_host(authority: &str, scheme: &str) -> String {
    let host = authority.to_ascii_lowercase();
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    match host.strip_suffix(default_port) {
        Some(stripped) => stripped.to_owned(),
        None => host,
    }
}

fn compile_host(host: &str, field: &str) -> Result<String, ConfigError> {
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !valid {
        return Err(ConfigError::invalid(field, host, "expected a host name"));
    }
    let lower = host.to_ascii_lowercase();
    // Rules name hosts without the default port, as requests are compared without it.
    let stripped = lower
        .strip_suffix(":80")
        .or_else(|| lower.strip_suffix(":443"))
        .unwrap_or(&lower);
    Ok(stripped.to_owned())
}

fn compile_method(method: &str, field: &str) -> Result<String, ConfigError> {
    if KNOWN_METHODS.contains(&method) {
        Ok(method.to_owned())
    } else {
        Err(ConfigError::invalid(
            field,
            method,
            "expected an upper-case HTTP method such as GET or POST",
        ))
    }
}

fn compile_path(pattern: &PathPatternSettings, field: &str) -> Result<PathPattern, ConfigError> {
    match pattern {
        PathPatternSettings::Exact(exact) => {
            check_rule_path(exact, &format!("{field}.exact"))?;
            Ok(PathPattern::Exact(exact.clone()))
        }
        PathPatternSettings::Prefix(prefix) => {
            check_rule_path(prefix, &format!("{field}.prefix"))?;
            Ok(PathPattern::Prefix(prefix.clone()))
        }
        PathPatternSettings::Glob(glob) => compile_glob(glob, &format!("{field}.glob")),
    }
}

/// A rule path must already be in normalized form, or it could never match.
fn check_rule_path(path: &str, field: &str) -> Result<(), ConfigError> {
    let normalized = crate::path::normalize(path, &crate::path::PathSettings::default())
        .map_err(|e| ConfigError::invalid(field, path, &e.to_string()))?;
    if normalized.path != path || normalized.query.is_some() {
        return Err(ConfigError::invalid(
            field,
            path,
            &format!(
                "expected a normalized path without a query, such as {:?}",
                normalized.path
            ),
        ));
    }
    Ok(())
}

fn compile_glob(glob: &str, field: &str) -> Result<PathPattern, ConfigError> {
    if !glob.starts_with('/') {
        return Err(ConfigError::invalid(
            field,
            glob,
            "expected a path starting with '/'",
        ));
    }
    let parts: Vec<&str> = glob[1..].split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let segment = match *part {
            "**" if i + 1 == parts.len() => GlobSegment::AnyRest,
            "**" => {
                return Err(ConfigError::invalid(
                    field,
                    glob,
                    "'**' is allowed only at the end",
                ))
            }
            "*" => GlobSegment::AnyOne,
            literal if literal.contains('*') => {
                return Err(ConfigError::invalid(
                    field,
                    glob,
                    "'*' must be a whole segment; partial wildcards are not supported",
                ))
            }
            literal => {
                check_rule_path(&format!("/{literal}"), field)?;
                GlobSegment::Literal(literal.to_owned())
            }
        };
        segments.push(segment);
    }
    Ok(PathPattern::Glob(segments))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(json: &str) -> Matcher {
        let settings: MatchSettings = serde_json::from_str(json).unwrap();
        Matcher::compile(&settings, "rules[0].match").unwrap()
    }

    fn target<'a>(host: &'a str, path: &'a str, method: &'a str) -> RequestTarget<'a> {
        RequestTarget { host, path, method }
    }

    #[test]
    fn prefix_matches_on_segment_boundary() {
        let m = matcher(r#"{"path": {"prefix": "/api"}}"#);
        assert!(m.matches(&target("h", "/api", "GET")));
        assert!(m.matches(&target("h", "/api/x", "GET")));
        assert!(!m.matches(&target("h", "/apix", "GET")));
    }

    #[test]
    fn prefix_with_trailing_slash_matches_below() {
        let m = matcher(r#"{"path": {"prefix": "/api/"}}"#);
        assert!(m.matches(&target("h", "/api/x", "GET")));
        assert!(!m.matches(&target("h", "/api", "GET")));
    }

    #[test]
    fn exact_matches_whole_path() {
        let m = matcher(r#"{"path": {"exact": "/healthz"}}"#);
        assert!(m.matches(&target("h", "/healthz", "GET")));
        assert!(!m.matches(&target("h", "/healthz/", "GET")));
    }

    #[test]
    fn glob_star_matches_one_segment() {
        let m = matcher(r#"{"path": {"glob": "/users/*/profile"}}"#);
        assert!(m.matches(&target("h", "/users/42/profile", "GET")));
        assert!(!m.matches(&target("h", "/users/profile", "GET")));
        assert!(!m.matches(&target("h", "/users/1/2/profile", "GET")));
        assert!(!m.matches(&target("h", "/users//profile", "GET")));
    }

    #[test]
    fn glob_double_star_matches_rest() {
        let m = matcher(r#"{"path": {"glob": "/files/**"}}"#);
        assert!(m.matches(&target("h", "/files", "GET")));
        assert!(m.matches(&target("h", "/files/a/b/c", "GET")));
        assert!(!m.matches(&target("h", "/filesx", "GET")));
    }

    #[test]
    fn methods_and_hosts_restrict() {
        let m = matcher(r#"{"hosts": ["API.example.com:443"], "methods": ["POST"]}"#);
        assert!(m.matches(&target("api.example.com", "/", "POST")));
        assert!(!m.matches(&target("api.example.com", "/", "GET")));
        assert!(!m.matches(&target("other.example.com", "/", "POST")));
    }

    #[test]
    fn canonical_host_drops_default_port_only() {
        assert_eq!(canonical_host("Example.COM:80", "http"), "example.com");
        assert_eq!(canonical_host("example.com:443", "https"), "example.com");
        assert_eq!(
            canonical_host("example.com:8080", "http"),
            "example.com:8080"
        );
        assert_eq!(canonical_host("example.com:443", "http"), "example.com:443");
    }

    #[test]
    fn rejects_unnormalized_rule_path() {
        let settings: MatchSettings =
            serde_json::from_str(r#"{"path": {"prefix": "/a/../admin"}}"#).unwrap();
        let err = Matcher::compile(&settings, "rules[3].match").unwrap_err();
        assert!(
            err.to_string().starts_with("rules[3].match.path.prefix"),
            "{err}"
        );
    }

    #[test]
    fn rejects_lower_case_method() {
        let settings: MatchSettings = serde_json::from_str(r#"{"methods": ["get"]}"#).unwrap();
        let err = Matcher::compile(&settings, "rules[0].match").unwrap_err();
        assert!(
            err.to_string().contains("rules[0].match.methods[0]"),
            "{err}"
        );
        assert!(err.to_string().contains("\"get\""), "{err}");
    }

    #[test]
    fn rejects_partial_glob() {
        let settings: MatchSettings =
            serde_json::from_str(r#"{"path": {"glob": "/a*/b"}}"#).unwrap();
        assert!(Matcher::compile(&settings, "m").is_err());
    }
}
