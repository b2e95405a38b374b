//! Request path normalization (RFC 3986 section 6.2.2) before rule matching.
//!
//! The normalized path keeps reserved characters percent-encoded, so it can be sent upstream as
//! the new `:path` and the service receives exactly the path the rules were matched against.

use serde::Deserialize;

/// Handling of `%2F` (an encoded `/`) and `%5C` or `\` (a backslash) in a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SlashHandling {
    /// Reply 400, because the path is ambiguous between the proxy and the service.
    #[default]
    Reject,
    /// Turn it into a plain `/` before dot segments are resolved.
    Normalize,
}

/// Path normalization settings of the plugin configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PathSettings {
    /// Handling of `%2F` in the path.
    #[serde(default)]
    pub encoded_slash: SlashHandling,
    /// Handling of `\` and `%5C` in the path.
    #[serde(default)]
    pub backslash: SlashHandling,
}

/// Cause of a path that could not be normalized. The request gets 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path does not start with '/'")]
    NotAbsolute,
    #[error("path contains an invalid percent-encoding")]
    InvalidEscape,
    #[error("path contains an encoded slash")]
    EncodedSlash,
    #[error("path contains a backslash")]
    Backslash,
    #[error("path contains a control character or a NUL byte")]
    ControlCharacter,
    #[error("path is not valid UTF-8")]
    NotUtf8,
    #[error("path contains a dot segment with parameters")]
    DotSegmentParameters,
}

/// A `:path` split into its normalized path and its untouched query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath {
    /// Normalized path, starting with `/`.
    pub path: String,
    /// Query string without its leading `?`, exactly as received.
    pub query: Option<String>,
}

impl NormalizedPath {
    /// Returns the path and query in the form of a `:path` header value.
    pub fn to_header_value(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{}", self.path, query),
            None => self.path.clone(),
        }
    }
}

/// Normalizes the raw `:path` value: decodes percent-encoded unreserved characters, applies
/// the slash and backslash settings, merges repeated slashes and removes dot segments.
pub fn normalize(raw: &str, settings: &PathSettings) -> Result<NormalizedPath, PathError> {
    let (path, query) = match raw.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (raw, None),
    };
    // A fragment is never sent by a conforming client; treat it as part of nothing.
    let path = path.split('#').next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_normal(path) {
        return Ok(NormalizedPath {
            path: path.to_owned(),
            query,
        });
    }
    let decoded = decode_unreserved(path, settings)?;
    // Servlet containers strip `;` parameters before resolving dot segments, so `/..;x/admin`
    // reaches their `/admin`. Such segments have no legitimate use.
    let has_dot_parameters = decoded.split('/').any(|segment| {
        let name = segment.split(';').next().unwrap_or_default();
        segment.contains(';') && (name == "." || name == "..")
    });
    if has_dot_parameters {
        return Err(PathError::DotSegmentParameters);
    }
    Ok(NormalizedPath {
        path: remove_dot_segments(&decoded),
        query,
    })
}

/// Returns whether a path starting with `/` is already in normal form, as most paths are:
/// printable ASCII without escapes or backslashes, no `//`, and no segment that starts with a
/// dot.
fn is_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    let plain = bytes
        .iter()
        .all(|&b| (0x21..0x7f).contains(&b) && b != b'%' && b != b'\\');
    plain
        && !bytes
            .windows(2)
            .any(|pair| pair[0] == b'/' && (pair[1] == b'/' || pair[1] == b'.'))
}

/// Decodes `%XX` escapes of unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`), keeps
/// every other escape in upper-case hex and applies the slash settings.
fn decode_unreserved(path: &str, settings: &PathSettings) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b'%' => {
                let high = bytes.get(i + 1).and_then(|b| hex_value(*b));
                let low = bytes.get(i + 2).and_then(|b| hex_value(*b));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(PathError::InvalidEscape);
                };
                let decoded = high << 4 | low;
                push_decoded(&mut out, decoded, settings)?;
                i += 3;
            }
            b'\\' => {
                if settings.backslash == SlashHandling::Reject {
                    return Err(PathError::Backslash);
                }
                out.push('/');
                i += 1;
            }
            0x00..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
            _ => {
                // The input is a &str, so multi-byte characters are copied whole.
                let len = utf8_len(byte);
                let end = (i + len).min(bytes.len());
                out.push_str(path.get(i..end).unwrap_or_default());
                i = end;
            }
        }
    }
    Ok(out)
}

fn push_decoded(out: &mut String, decoded: u8, settings: &PathSettings) -> Result<(), PathError> {
    match decoded {
        b'/' => {
            if settings.encoded_slash == SlashHandling::Reject {
                return Err(PathError::EncodedSlash);
            }
            out.push('/');
        }
        b'\\' => {
            if settings.backslash == SlashHandling::Reject {
                return Err(PathError::Backslash);
            }
            out.push('/');
        }
        0x00..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
            out.push(char::from(decoded));
        }
        _ => {
            out.push('%');
            out.push(hex_digit(decoded >> 4));
            out.push(hex_digit(decoded & 0x0f));
        }
    }
    Ok(())
}

/// Resolves `.` and `..` segments and merges repeated slashes. A `..` above the root stays at
/// the root. A trailing slash is kept, because `/a/` and `/a` can be different resources.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split('/') {
        trailing_slash = false;
        match segment {
            "" | "." => trailing_slash = true,
            ".." => {
                segments.pop();
                trailing_slash = true;
            }
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}

/// Returns the value of one hexadecimal digit, either case.
pub(crate) fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn hex_digit(value: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(value & 0x0f)])
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, PathError> {
        normalize(raw, &PathSettings::default()).map(|p| p.path)
    }

    fn lenient() -> PathSettings {
        PathSettings {
            encoded_slash: SlashHandling::Normalize,
            backslash: SlashHandling::Normalize,
        }
    }

    /// Runs the full normalization, without the shortcut for paths already in normal form.
    fn full(raw: &str) -> Result<String, PathError> {
        let decoded = decode_unreserved(raw, &PathSettings::default())?;
        Ok(remove_dot_segments(&decoded))
    }

    #[test]
    fn shortcut_agrees_with_full_normalization() {
        let paths = [
            "/",
            "/admin",
            "/admin/",
            "/a/b/c",
            "/a-b_c~d",
            "/a;b=c",
            "/a.b",
            "/a/b.",
            "/a..",
            "/a/..b",
            "/api/v1/users/42",
            "/x/",
            "/@me",
            "/a:b",
            "/a!$&'()*+,=",
            "//a",
            "/./a",
            "/a/.",
            "/a/..",
            "/.well-known/x",
            "/a%20b",
            "/a\\b",
            "/a b",
            "/café",
            "/a//",
            "/a/./b",
            "/a/../b",
        ];
        for path in paths {
            if is_normal(path) {
                assert_eq!(full(path).as_deref(), Ok(path), "{path}");
            }
        }
        assert!(is_normal("/api/v1/users/42"));
        // Every path of up to six characters over an alphabet of the characters that matter.
        let alphabet = ['/', '.', 'a', ';', '%', '\\'];
        let mut paths = vec![String::from("/")];
        for _ in 0..5 {
            let longer: Vec<String> = paths
                .iter()
                .filter(|path| path.len() == paths.last().map_or(0, String::len))
                .flat_map(|path| alphabet.iter().map(move |c| format!("{path}{c}")))
                .collect();
            paths.extend(longer);
        }
        assert_eq!(paths.len(), 1 + 6 + 36 + 216 + 1296 + 7776);
        for path in &paths {
            if is_normal(path) {
                assert_eq!(full(path).as_deref(), Ok(path.as_str()), "{path}");
                assert_eq!(norm(path).as_deref(), Ok(path.as_str()), "{path}");
            }
        }
        for path in [
            "//a",
            "/./a",
            "/a/..",
            "/.well-known/x",
            "/a%20b",
            "/a\\b",
            "/café",
        ] {
            assert!(!is_normal(path), "{path}");
        }
    }

    #[test]
    fn admin_variants_normalize_to_admin() {
        for raw in [
            "/admin",
            "//admin",
            "/./admin",
            "/public/../admin",
            "/%61dmin",
            "/%2e/admin",
            "/%2E%2E/admin",
            "///admin",
            "/x/y/../../admin",
        ] {
            assert_eq!(norm(raw).as_deref(), Ok("/admin"), "{raw}");
        }
    }

    #[test]
    fn dot_dot_above_root_stays_at_root() {
        assert_eq!(norm("/../../etc").as_deref(), Ok("/etc"));
        assert_eq!(norm("/..").as_deref(), Ok("/"));
    }

    #[test]
    fn trailing_slash_is_kept() {
        assert_eq!(norm("/admin/").as_deref(), Ok("/admin/"));
        assert_eq!(norm("/admin/.").as_deref(), Ok("/admin/"));
        assert_eq!(norm("/").as_deref(), Ok("/"));
    }

    #[test]
    fn reserved_escapes_stay_encoded_in_upper_case() {
        assert_eq!(norm("/a%20b%3f").as_deref(), Ok("/a%20b%3F"));
        assert_eq!(norm("/caf%c3%a9").as_deref(), Ok("/caf%C3%A9"));
    }

    #[test]
    fn query_is_split_on_first_question_mark_and_kept() {
        let normalized = normalize("/a/../b?x=/../y?z", &PathSettings::default()).unwrap();
        assert_eq!(normalized.path, "/b");
        assert_eq!(normalized.query.as_deref(), Some("x=/../y?z"));
        assert_eq!(normalized.to_header_value(), "/b?x=/../y?z");
    }

    #[test]
    fn encoded_slash_rejected_by_default() {
        assert_eq!(norm("/a%2Fb"), Err(PathError::EncodedSlash));
        assert_eq!(norm("/a%2fb"), Err(PathError::EncodedSlash));
    }

    #[test]
    fn encoded_slash_normalized_when_configured() {
        let path = normalize("/public%2F..%2Fadmin", &lenient()).unwrap().path;
        assert_eq!(path, "/admin");
    }

    #[test]
    fn backslash_rejected_by_default() {
        assert_eq!(norm("/a\\b"), Err(PathError::Backslash));
        assert_eq!(norm("/a%5cb"), Err(PathError::Backslash));
    }

    #[test]
    fn backslash_normalized_when_configured() {
        let path = normalize("/public\\..\\admin", &lenient()).unwrap().path;
        assert_eq!(path, "/admin");
    }

    #[test]
    fn invalid_escapes_rejected() {
        assert_eq!(norm("/a%"), Err(PathError::InvalidEscape));
        assert_eq!(norm("/a%4"), Err(PathError::InvalidEscape));
        assert_eq!(norm("/a%zz"), Err(PathError::InvalidEscape));
    }

    #[test]
    fn control_characters_rejected() {
        assert_eq!(norm("/a%00b"), Err(PathError::ControlCharacter));
        assert_eq!(norm("/a\u{1}b"), Err(PathError::ControlCharacter));
        assert_eq!(norm("/a%0d%0a"), Err(PathError::ControlCharacter));
    }

    #[test]
    fn dot_segment_with_parameters_rejected() {
        for raw in [
            "/public/..;/admin",
            "/public/..;x=1/admin",
            "/a/.;b/c",
            "/a/%2e%2e;/b",
        ] {
            assert_eq!(norm(raw), Err(PathError::DotSegmentParameters), "{raw}");
        }
        assert_eq!(norm("/a;b/c").as_deref(), Ok("/a;b/c"));
        assert_eq!(norm("/a/..b;c").as_deref(), Ok("/a/..b;c"));
    }

    #[test]
    fn relative_path_rejected() {
        assert_eq!(norm("admin"), Err(PathError::NotAbsolute));
        assert_eq!(norm("*"), Err(PathError::NotAbsolute));
    }

    #[test]
    fn multibyte_characters_copied_whole() {
        assert_eq!(norm("/caf\u{e9}/./x").as_deref(), Ok("/caf\u{e9}/x"));
    }
}
