//! Target names (`query:q`, `body:json:/user/name`, ...) and exclusion patterns over them.

/// Source of an inspected value. The rendered target is `prefix` followed by the name, such
/// as `query:q` or `header:user-agent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TargetKind {
    Path,
    Query,
    QueryName,
    Header,
    Cookie,
    CookieName,
    /// Body inspected as a whole (text bodies, and JSON or multipart that failed to parse).
    Body,
    Json,
    JsonKey,
    Form,
    FormName,
    Multipart,
    MultipartName,
    MultipartFilename,
}

/// Maximum name length, in characters, in a rendered target. Longer names are cut and end
/// in `...`.
const MAX_NAME_CHARS: usize = 64;

impl TargetKind {
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            TargetKind::Path => "path",
            TargetKind::Query => "query:",
            TargetKind::QueryName => "query-name:",
            TargetKind::Header => "header:",
            TargetKind::Cookie => "cookie:",
            TargetKind::CookieName => "cookie-name:",
            TargetKind::Body => "body",
            TargetKind::Json => "body:json:",
            TargetKind::JsonKey => "body:json-key:",
            TargetKind::Form => "body:form:",
            TargetKind::FormName => "body:form-name:",
            TargetKind::Multipart => "body:multipart:",
            TargetKind::MultipartName => "body:multipart-name:",
            TargetKind::MultipartFilename => "body:multipart-filename:",
        }
    }

    pub(crate) fn is_body(self) -> bool {
        !matches!(
            self,
            TargetKind::Path
                | TargetKind::Query
                | TargetKind::QueryName
                | TargetKind::Header
                | TargetKind::Cookie
                | TargetKind::CookieName
        )
    }

    /// Returns the kind whose exclusion pattern also covers this one, because a pattern for a
    /// parameter covers its name as well as its value.
    fn value_kind(self) -> TargetKind {
        match self {
            TargetKind::QueryName => TargetKind::Query,
            TargetKind::CookieName => TargetKind::Cookie,
            TargetKind::JsonKey => TargetKind::Json,
            TargetKind::FormName => TargetKind::Form,
            TargetKind::MultipartName | TargetKind::MultipartFilename => TargetKind::Multipart,
            other => other,
        }
    }
}

/// Renders a target name, escaping control characters and cutting long names.
pub(crate) fn render(kind: TargetKind, name: &str) -> String {
    let mut out = String::with_capacity(kind.prefix().len() + name.len().min(MAX_NAME_CHARS));
    out.push_str(kind.prefix());
    for (count, ch) in name.chars().enumerate() {
        if count == MAX_NAME_CHARS {
            out.push_str("...");
            break;
        }
        if ch.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(ch)));
        } else {
            out.push(ch);
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PatternKind {
    Kind(TargetKind),
    /// `body:field:NAME`: a form or multipart field, or a JSON member, named NAME.
    BodyField,
}

/// A compiled exclusion target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TargetPattern {
    kind: PatternKind,
    name: String,
    /// The name ends in `*` and matches as a prefix.
    prefix: bool,
}

const PATTERN_KINDS: &[(&str, TargetKind)] = &[
    ("query-name:", TargetKind::QueryName),
    ("query:", TargetKind::Query),
    ("header:", TargetKind::Header),
    ("cookie-name:", TargetKind::CookieName),
    ("cookie:", TargetKind::Cookie),
    ("body:json-key:", TargetKind::JsonKey),
    ("body:json:", TargetKind::Json),
    ("body:form-name:", TargetKind::FormName),
    ("body:form:", TargetKind::Form),
    ("body:multipart-filename:", TargetKind::MultipartFilename),
    ("body:multipart-name:", TargetKind::MultipartName),
    ("body:multipart:", TargetKind::Multipart),
];

impl TargetPattern {
    /// Parses a pattern, returning an error message that names it.
    pub(crate) fn parse(pattern: &str) -> Result<Self, String> {
        let (kind, name) = if pattern == "path" {
            (PatternKind::Kind(TargetKind::Path), "")
        } else if pattern == "body" {
            (PatternKind::Kind(TargetKind::Body), "")
        } else if let Some(name) = pattern.strip_prefix("body:field:") {
            (PatternKind::BodyField, name)
        } else if let Some((kind, name)) = PATTERN_KINDS
            .iter()
            .find_map(|(prefix, kind)| pattern.strip_prefix(prefix).map(|name| (*kind, name)))
        {
            (PatternKind::Kind(kind), name)
        } else {
            return Err(format!(
                "invalid target {pattern:?}: expected path, body, query:NAME, query-name:NAME, \
                 header:NAME, cookie:NAME, cookie-name:NAME, body:json:/POINTER, \
                 body:json-key:/POINTER, body:form:NAME, body:multipart:NAME or body:field:NAME"
            ));
        };
        let needs_name = !matches!(kind, PatternKind::Kind(TargetKind::Path | TargetKind::Body));
        if needs_name && name.is_empty() {
            return Err(format!(
                "invalid target {pattern:?}: the name is empty; use NAME or *"
            ));
        }
        let (name, prefix) = match name.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (name, false),
        };
        if name.contains('*') {
            return Err(format!(
                "invalid target {pattern:?}: '*' is allowed only at the end"
            ));
        }
        let name = if kind == PatternKind::Kind(TargetKind::Header) {
            name.to_ascii_lowercase()
        } else {
            name.to_owned()
        };
        Ok(TargetPattern { kind, name, prefix })
    }

    fn name_matches(&self, name: &str) -> bool {
        if self.prefix {
            name.starts_with(&self.name)
        } else {
            name == self.name
        }
    }

    pub(crate) fn matches(&self, kind: TargetKind, name: &str) -> bool {
        match &self.kind {
            PatternKind::Kind(pattern_kind) => {
                (*pattern_kind == kind || *pattern_kind == kind.value_kind())
                    && self.name_matches(name)
            }
            PatternKind::BodyField => match kind.value_kind() {
                TargetKind::Form | TargetKind::Multipart => self.name_matches(name),
                TargetKind::Json => {
                    let last = name.rsplit('/').next().unwrap_or(name);
                    if last.contains('~') {
                        self.name_matches(&last.replace("~1", "/").replace("~0", "~"))
                    } else {
                        self.name_matches(last)
                    }
                }
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> TargetPattern {
        TargetPattern::parse(text).unwrap()
    }

    #[test]
    fn exact_and_prefix_patterns() {
        assert!(pattern("query:q").matches(TargetKind::Query, "q"));
        assert!(pattern("query:q").matches(TargetKind::QueryName, "q"));
        assert!(!pattern("query:q").matches(TargetKind::Query, "qq"));
        assert!(pattern("query:utm_*").matches(TargetKind::Query, "utm_source"));
        assert!(pattern("header:X-Foo").matches(TargetKind::Header, "x-foo"));
        assert!(pattern("cookie:*").matches(TargetKind::CookieName, "session"));
        assert!(pattern("path").matches(TargetKind::Path, ""));
        assert!(!pattern("path").matches(TargetKind::Query, ""));
    }

    #[test]
    fn body_field_patterns() {
        let password = pattern("body:field:password");
        assert!(password.matches(TargetKind::Form, "password"));
        assert!(password.matches(TargetKind::Multipart, "password"));
        assert!(password.matches(TargetKind::Json, "/user/password"));
        assert!(password.matches(TargetKind::JsonKey, "/password"));
        assert!(!password.matches(TargetKind::Json, "/password/hint"));
        assert!(!password.matches(TargetKind::Query, "password"));
        assert!(pattern("body:field:a/b").matches(TargetKind::Json, "/x/a~1b"));
        assert!(pattern("body:json:/user/*").matches(TargetKind::Json, "/user/bio"));
    }

    #[test]
    fn invalid_patterns() {
        assert!(TargetPattern::parse("headers:x").is_err());
        assert!(TargetPattern::parse("query:").is_err());
        assert!(TargetPattern::parse("query:a*b").is_err());
    }

    #[test]
    fn render_escapes_and_cuts() {
        assert_eq!(render(TargetKind::Query, "a\nb"), "query:a\\u{a}b");
        assert_eq!(render(TargetKind::Path, ""), "path");
        let long = "x".repeat(100);
        assert!(render(TargetKind::Header, &long).ends_with("..."));
    }
}
