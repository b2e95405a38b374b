//! Path traversal and sensitive-file detector.
//!
//! The value has already been percent-decoded (every configured pass, so `%2e%2e%2f` and
//! `%252e%252e%255c` arrive as `../` and `..\`), overlong UTF-8 has been mapped to ASCII
//! (`..%c0%af` arrives as `../`), and null bytes removed. Here both `/` and `\` separate
//! segments. A segment of two or more dots is a parent reference, because `....//` survives
//! filters that strip `../` once. A segment such as `..;jsessionid` counts too, because some
//! servlet containers drop the `;` parameter before resolving the path.

use std::borrow::Cow;
use std::ops::Range;

use super::matchers::Matchers;
use super::rules::RuleId;
use super::sqli::Hit;

fn is_separator(byte: u8) -> bool {
    byte == b'/' || byte == b'\\'
}

fn is_parent_segment(segment: &[u8]) -> bool {
    let name = match memchr::memchr(b';', segment) {
        Some(at) => &segment[..at],
        None => segment,
    };
    // Windows ignores trailing spaces in a path segment.
    let mut end = name.len();
    while end > 0 && name[end - 1] == b' ' {
        end -= 1;
    }
    let name = &name[..end];
    name.len() >= 2 && name.iter().all(|&b| b == b'.')
}

/// Reports traversal sequences. `in_path` is set for the request path, where a single
/// parent segment is already decisive.
pub(crate) fn detect_traversal(text: &str, in_path: bool, hits: &mut Vec<Hit>) {
    let bytes = text.as_bytes();
    if !memchr::memchr_iter(b'.', bytes).any(|at| bytes.get(at + 1) == Some(&b'.')) {
        return;
    }
    let mut count = 0;
    let mut first: Option<Range<usize>> = None;
    let mut at_start = false;
    let mut segment_start = 0;
    for end in 0..=bytes.len() {
        if end < bytes.len() && !is_separator(bytes[end]) {
            continue;
        }
        let segment = &bytes[segment_start..end];
        let bounded = segment_start > 0 || end < bytes.len();
        if bounded && is_parent_segment(segment) {
            count += 1;
            if first.is_none() {
                first = Some(segment_start..(end + 1).min(bytes.len()));
                at_start = segment_start == 0
                    || (segment_start == 1 && is_separator(bytes[0]))
                    || bytes[..segment_start]
                        .iter()
                        .all(|&b| is_separator(b) || b == b' ');
            }
        }
        segment_start = end + 1;
    }
    let Some(span) = first else { return };
    let span = span.start..(span.start + 24).min(bytes.len()).max(span.end);
    if count >= 2 || at_start || in_path {
        hits.push((RuleId::TRAVERSAL, span));
    } else {
        hits.push((RuleId::TRAVERSAL_SINGLE, span));
    }
}

/// Reports well-known sensitive files, after folding `\` to `/`, repeated separators and
/// `/./` segments.
pub(crate) fn detect_sensitive_files(text: &str, matchers: &Matchers, hits: &mut Vec<Hit>) {
    let normalized = normalize_separators(text);
    let bytes = normalized.as_bytes();
    let mut strong = None;
    let mut weak = None;
    for found in matchers.sensitive_files.find_iter(bytes) {
        let name = matchers
            .sensitive_file_name(found.pattern().as_usize())
            .as_bytes();
        let before_ok = found.start() == 0
            || !bytes[found.start() - 1].is_ascii_alphanumeric()
            || name.first() == Some(&b'/')
            || name.first() == Some(&b'.');
        // A name that goes on with `-` and a letter or digit (`passwd-free`) is another
        // word, but a trailing `-` is a backup file such as `/etc/shadow-`.
        let after_ok = name.last().is_some_and(|&b| b == b'/')
            || match bytes.get(found.end()) {
                None => true,
                Some(b'-') => !bytes
                    .get(found.end() + 1)
                    .is_some_and(|b| b.is_ascii_alphanumeric()),
                Some(b) => !b.is_ascii_alphanumeric() && *b != b'_',
            };
        if !(before_ok && after_ok) {
            continue;
        }
        let span = found.start()..found.end();
        if matchers.sensitive_file_is_strong(found.pattern().as_usize()) {
            strong.get_or_insert(span);
        } else {
            weak.get_or_insert(span);
        }
    }
    // Spans refer to the normalized text; map them back only when nothing was folded.
    let map = |span: Range<usize>| match normalized {
        Cow::Borrowed(_) => span,
        Cow::Owned(_) => 0..text.len().min(32),
    };
    if let Some(span) = strong {
        hits.push((RuleId::SENSITIVE_FILE, map(span)));
    }
    if let Some(span) = weak {
        hits.push((RuleId::SENSITIVE_FILE_WEAK, map(span)));
    }
}

fn normalize_separators(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let needs = memchr::memchr(b'\\', bytes).is_some()
        || memchr::memmem::find(bytes, b"//").is_some()
        || memchr::memmem::find(bytes, b"/./").is_some();
    if !needs {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        let ch = if ch == '\\' { '/' } else { ch };
        if ch == '/' && out.ends_with('/') {
            continue;
        }
        out.push(ch);
        if out.ends_with("/./") {
            out.truncate(out.len() - 2);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traversal(text: &str, in_path: bool) -> Vec<u32> {
        let mut hits = Vec::new();
        detect_traversal(text, in_path, &mut hits);
        hits.iter().map(|(rule, _)| rule.0).collect()
    }

    fn sensitive(text: &str) -> Vec<u32> {
        let matchers = Matchers::build().unwrap();
        let mut hits = Vec::new();
        detect_sensitive_files(text, &matchers, &mut hits);
        hits.iter().map(|(rule, _)| rule.0).collect()
    }

    #[test]
    fn traversal_forms() {
        assert_eq!(traversal("../../etc/passwd", false), [3001]);
        assert_eq!(traversal("..\\..\\windows\\win.ini", false), [3001]);
        assert_eq!(traversal("....//....//etc", false), [3001]);
        assert_eq!(traversal("../config.php", false), [3001]);
        assert_eq!(traversal("/static/..;/admin", true), [3001]);
        assert_eq!(traversal("images/.. /x", false), [3003]);
        assert_eq!(traversal("see [notes](docs/../x.md)", false), [3003]);
    }

    #[test]
    fn traversal_ignores_ellipses() {
        assert!(traversal("Wait... what?", false).is_empty());
        assert!(traversal("..", false).is_empty());
        assert!(traversal("and so on...", false).is_empty());
        assert!(traversal("v1.2..1.4", false).is_empty());
        assert!(traversal("[x](../y)", false).is_empty());
    }

    #[test]
    fn sensitive_files_found() {
        assert_eq!(sensitive("/etc/passwd"), [3002]);
        assert_eq!(sensitive("..\\..\\Windows\\win.ini"), [3002]);
        assert_eq!(sensitive("/etc/./shadow"), [3002]);
        assert_eq!(sensitive("/.git/config"), [3002]);
        assert_eq!(sensitive("/.env"), [3002]);
        assert_eq!(sensitive("/etc/hosts"), [3005]);
    }

    #[test]
    fn sensitive_files_need_boundaries() {
        assert!(sensitive("/.environment").is_empty());
        assert!(sensitive("netc/passwdx").is_empty());
        assert!(sensitive("apples, oranges, etc/passwd-free").is_empty());
        assert_eq!(sensitive("/etc/shadow-"), [3002]);
        assert_eq!(sensitive("/etc/passwd-%00"), [3002]);
        assert!(sensitive("https://example.com/a/b").is_empty());
        assert!(sensitive("swin.ini2").is_empty());
    }
}
