//! Splitting the request head into targets: path, query parameters, headers, cookies.

use std::borrow::Cow;

use super::inspect::{Detectors, Scan, ValueOptions};
use super::target::TargetKind;

/// The parts of a request head that are inspected.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// The raw `:path` pseudo-header, query string included.
    pub path_and_query: &'a str,
    /// Header names in lowercase, each value of a repeated header as its own entry.
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// Splits the raw `:path` on its first literal `?`, before any decoding, so that an encoded
/// `%3F` stays part of the path.
pub(crate) fn split_path(path_and_query: &str) -> (&str, Option<&str>) {
    match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    }
}

/// Decodes a parameter or cookie name for display and exclusion matching: one round of
/// percent-decoding, `+` as space when `plus_as_space`, invalid UTF-8 replaced.
pub(crate) fn display_name(raw: &[u8], plus_as_space: bool) -> Cow<'_, str> {
    let needs_work = raw
        .iter()
        .any(|&b| b == b'%' || (plus_as_space && b == b'+'));
    if !needs_work {
        return String::from_utf8_lossy(raw);
    }
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if plus_as_space && b == b'+' { b' ' } else { b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

/// Path used to match exclusion prefixes: percent-decoded once, with `.` and `..` segments
/// resolved, so that `/login/../admin` does not get the exclusions of `/login`.
pub(crate) fn normalized_path(path: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || decoded.ends_with('/') {
        out.push('/');
    }
    out
}

/// Inspects the path as a whole (traversal and sensitive files) and each segment (content
/// detectors). Both report under the target `path`.
pub(crate) fn inspect_path(scan: &mut Scan<'_>, path: &str) {
    let structure = ValueOptions {
        detectors: Detectors::PathStructure,
        ..ValueOptions::PLAIN
    };
    scan.value(path.as_bytes(), TargetKind::Path, "", structure);
    let content = ValueOptions {
        detectors: Detectors::Content,
        anomalies: false,
        ..ValueOptions::PLAIN
    };
    for segment in path.split('/') {
        if !segment.is_empty() {
            scan.value(segment.as_bytes(), TargetKind::Path, "", content);
        }
    }
}

/// Inspects `a=1&b=2` style data: names and values. Used for query strings and
/// form-urlencoded bodies.
pub(crate) fn inspect_pairs(
    scan: &mut Scan<'_>,
    data: &[u8],
    value_kind: TargetKind,
    name_kind: TargetKind,
) {
    for pair in data.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(at) => (&pair[..at], Some(&pair[at + 1..])),
            None => (pair, None),
        };
        let shown = display_name(name, true);
        scan.value(name, name_kind, &shown, ValueOptions::QUERY);
        if let Some(value) = value {
            scan.value(value, value_kind, &shown, ValueOptions::QUERY);
        }
    }
}

/// Inspects one `Cookie` header value: `name=value` pairs separated by `;`.
pub(crate) fn inspect_cookies(scan: &mut Scan<'_>, header: &[u8]) {
    for pair in header.split(|&b| b == b';') {
        let pair = trim(pair);
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(at) => (trim(&pair[..at]), &pair[at + 1..]),
            None => (&pair[..0], pair),
        };
        let shown = display_name(name, false);
        scan.value(name, TargetKind::CookieName, &shown, ValueOptions::PLAIN);
        scan.value(value, TargetKind::Cookie, &shown, ValueOptions::PLAIN);
    }
}

/// Returns whether the headers declare an empty body with `content-length: 0`.
pub(crate) fn declares_empty_body(headers: &[(&str, &[u8])]) -> bool {
    headers
        .iter()
        .any(|(name, value)| name.eq_ignore_ascii_case("content-length") && trim(value) == b"0")
}

pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &bytes[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_split_on_first_literal_question_mark() {
        assert_eq!(split_path("/a%3Fb?c=1?d"), ("/a%3Fb", Some("c=1?d")));
        assert_eq!(split_path("/plain"), ("/plain", None));
        assert_eq!(split_path("/x?"), ("/x", Some("")));
    }

    #[test]
    fn names_are_decoded_for_display() {
        assert_eq!(display_name(b"user+name", true), "user name");
        assert_eq!(display_name(b"a%5Bb%5D", true), "a[b]");
        assert_eq!(display_name(b"a+b", false), "a+b");
        assert_eq!(display_name(b"\xff", false), "\u{fffd}");
    }

    #[test]
    fn normalized_path_resolves_dot_segments() {
        assert_eq!(normalized_path("/login/../admin"), "/admin");
        assert_eq!(normalized_path("/login/%2e%2e/admin"), "/admin");
        assert_eq!(normalized_path("//a/./b/"), "/a/b/");
        assert_eq!(normalized_path(""), "/");
        assert_eq!(normalized_path("/../../x"), "/x");
    }

    #[test]
    fn trim_strips_ascii_whitespace() {
        assert_eq!(trim(b"  a b \t"), b"a b");
        assert_eq!(trim(b"   "), b"");
    }
}
