//! Inspection of one value: fast path, decoding, detectors, and turning hits into findings.

use std::ops::Range;

use super::cmdi;
use super::config::Policy;
use super::decode::{self, DecodeFlags, DecodeOptions};
use super::matchers::Matchers;
use super::report::{excerpt, Finding, Report};
use super::rules::RuleId;
use super::sqli::{self, Hit};
use super::target::{render, TargetKind};
use super::traversal;
use super::xss;

/// Set of detectors that run on a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detectors {
    /// Every detector.
    All,
    /// Only traversal, sensitive files, CRLF and decoding anomalies: the whole request path,
    /// whose segments are inspected separately with [`Detectors::Content`].
    PathStructure,
    /// Every detector except traversal and sensitive files.
    Content,
}

/// How to treat one value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ValueOptions {
    /// `+` means space (query strings and form bodies).
    pub plus_as_space: bool,
    /// Report decoding anomalies; off for file contents, which may be binary.
    pub anomalies: bool,
    pub detectors: Detectors,
}

impl ValueOptions {
    pub(crate) const QUERY: ValueOptions = ValueOptions {
        plus_as_space: true,
        anomalies: true,
        detectors: Detectors::All,
    };
    pub(crate) const PLAIN: ValueOptions = ValueOptions {
        plus_as_space: false,
        anomalies: true,
        detectors: Detectors::All,
    };
}

/// Returns whether `bytes` cannot match any rule at any paranoia level. Such a value has
/// only letters, digits and `_ . ~`, and `-` when no second `-` follows it.
pub(crate) fn is_inert(bytes: &[u8]) -> bool {
    let mut previous_dash = false;
    for &byte in bytes {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'~' => previous_dash = false,
            b'-' if !previous_dash => previous_dash = true,
            _ => return false,
        }
    }
    true
}

/// State of the inspection of one request.
pub(crate) struct Scan<'a> {
    pub matchers: &'a Matchers,
    pub policy: &'a Policy,
    pub report: &'a mut Report,
    pub decode_passes: u8,
    hits: Vec<Hit>,
    sql_scratch: sqli::Scratch,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(
        matchers: &'a Matchers,
        policy: &'a Policy,
        report: &'a mut Report,
        decode_passes: u8,
    ) -> Self {
        Scan {
            matchers,
            policy,
            report,
            decode_passes,
            hits: Vec::new(),
            sql_scratch: sqli::Scratch::default(),
        }
    }

    /// Inspects one raw value and records its findings under target `kind` + `name`.
    pub(crate) fn value(
        &mut self,
        raw: &[u8],
        kind: TargetKind,
        name: &str,
        options: ValueOptions,
    ) {
        self.inspect_value(raw, None, kind, name, options);
    }

    /// Inspects a value that is already known to be UTF-8, such as a JSON string, without
    /// validating it again. Findings are recorded as by [`Scan::value`].
    pub(crate) fn text_value(
        &mut self,
        text: &str,
        kind: TargetKind,
        name: &str,
        options: ValueOptions,
    ) {
        self.inspect_value(text.as_bytes(), Some(text), kind, name, options);
    }

    /// Inspects `raw`. `known_text` is `raw` as a `&str` when the caller has validated it.
    fn inspect_value(
        &mut self,
        raw: &[u8],
        known_text: Option<&str>,
        kind: TargetKind,
        name: &str,
        options: ValueOptions,
    ) {
        let raw_present = Present::scan(raw);
        let double_dash = raw_present.has(DASH) && follows(raw, b'-', b'-');
        if !raw_present.has(NOT_INERT) && !double_dash {
            return;
        }
        let plus_is_space = options.plus_as_space && raw_present.has(PLUS);
        let plain = !raw_present.has(NEEDS_DECODING) && !plus_is_space;
        self.hits.clear();
        let decoded;
        let plain_text = match known_text {
            Some(text) if plain => Some(text),
            None if plain => std::str::from_utf8(raw).ok(),
            _ => None,
        };
        let (text, present) = match plain_text {
            // Nothing to decode: the value is ASCII without `%`, `&`, NUL or `+`.
            Some(text) => (text, raw_present),
            None => {
                decoded = decode::decode(
                    raw,
                    DecodeOptions {
                        plus_as_space: options.plus_as_space,
                        passes: self.decode_passes,
                    },
                );
                if options.anomalies {
                    anomaly_hits(decoded.flags, kind, decoded.text.len(), &mut self.hits);
                }
                let text: &str = &decoded.text;
                (text, Present::scan(text.as_bytes()))
            }
        };
        if !is_inert(text.as_bytes()) {
            run_detectors(
                text,
                present,
                kind,
                options.detectors,
                self.matchers,
                &mut self.sql_scratch,
                self.policy.paranoia(),
                &mut self.hits,
            );
        }
        if self.hits.is_empty() {
            return;
        }
        let hits = std::mem::take(&mut self.hits);
        self.record(&hits, text, kind, name);
        self.hits = hits;
    }

    fn record(&mut self, hits: &[Hit], text: &str, kind: TargetKind, name: &str) {
        let mut target: Option<String> = None;
        for (rule, span) in hits {
            let Some(info) = rule.info() else { continue };
            if info.paranoia > self.policy.paranoia() {
                continue;
            }
            if self
                .policy
                .excludes(self.report.active_exclusions, info.id, kind, name)
            {
                continue;
            }
            let target = target.get_or_insert_with(|| render(kind, name));
            if self.report.has(info.id, target) {
                continue;
            }
            self.report.add(Finding {
                rule_id: info.id,
                category: info.category,
                severity: info.severity,
                target: target.clone(),
                excerpt: excerpt(text, span.clone()),
            });
        }
    }

    /// Records a finding that is not tied to a value, such as a malformed body.
    pub(crate) fn structural(&mut self, rule: RuleId, kind: TargetKind, name: &str, text: &str) {
        let hits = [(rule, 0..text.len().min(32))];
        self.record(&hits, text, kind, name);
    }
}

fn anomaly_hits(flags: DecodeFlags, kind: TargetKind, length: usize, hits: &mut Vec<Hit>) {
    let span = 0..length.min(32);
    let mut push = |rule: RuleId| hits.push((rule, span.clone()));
    if flags.invalid_utf8 {
        push(RuleId::INVALID_UTF8);
    }
    if flags.overlong_utf8 {
        push(RuleId::OVERLONG_UTF8);
    }
    if flags.null_byte {
        push(if kind.is_body() {
            RuleId::NULL_BYTE_BODY
        } else {
            RuleId::NULL_BYTE
        });
    }
    if flags.multiple_encoding {
        push(RuleId::MULTIPLE_ENCODING);
    }
    if flags.residual_encoding {
        push(RuleId::RESIDUAL_ENCODING);
    }
    if flags.unicode_percent {
        push(RuleId::UNICODE_PERCENT);
    }
    if flags.truncated {
        push(RuleId::DECODE_LIMIT);
    }
}

const QUOTE: u32 = 1;
const SQL_PUNCTUATION: u32 = 1 << 1;
const DASH: u32 = 1 << 2;
const SLASH: u32 = 1 << 3;
const DOT: u32 = 1 << 4;
const DIGIT: u32 = 1 << 5;
const SIGNATURE: u32 = 1 << 6;
const XSS: u32 = 1 << 7;
const SHELL: u32 = 1 << 8;
const STAR: u32 = 1 << 9;
const LESS_THAN: u32 = 1 << 10;
const BANG: u32 = 1 << 11;
/// Whitespace other than the plain space, which comment and whitespace folding rewrites.
const OTHER_SPACE: u32 = 1 << 12;
/// Any byte other than letters, digits, `_`, `.`, `~` and `-`.
const NOT_INERT: u32 = 1 << 13;
/// `%`, `&`, NUL and non-ASCII bytes, which the decoding pipeline may change.
const NEEDS_DECODING: u32 = 1 << 14;
const PLUS: u32 = 1 << 15;
const COLON: u32 = 1 << 16;
const EQUALS: u32 = 1 << 17;
const PAREN: u32 = 1 << 18;
const BACKTICK: u32 = 1 << 19;
/// `\r` and `\n`, without which [`detect_crlf`] finds nothing.
const LINE_BREAK: u32 = 1 << 20;

/// Character classes of each byte, for [`Present::scan`].
const BYTE_CLASSES: [u32; 256] = {
    let mut table = [0u32; 256];
    table[b'\'' as usize] = QUOTE | XSS;
    table[b'"' as usize] = QUOTE | XSS;
    table[b'`' as usize] = QUOTE | XSS | SHELL | BACKTICK;
    table[b'=' as usize] = SQL_PUNCTUATION | EQUALS;
    table[b'>' as usize] = SQL_PUNCTUATION;
    table[b'!' as usize] = SQL_PUNCTUATION | BANG;
    table[b'*' as usize] = SQL_PUNCTUATION | STAR;
    table[b',' as usize] = SQL_PUNCTUATION;
    table[b'@' as usize] = SQL_PUNCTUATION;
    table[b'#' as usize] = SQL_PUNCTUATION;
    table[b'<' as usize] = SQL_PUNCTUATION | XSS | LESS_THAN;
    table[b';' as usize] = SQL_PUNCTUATION | SHELL;
    table[b'&' as usize] = SQL_PUNCTUATION | SHELL;
    table[b'|' as usize] = SQL_PUNCTUATION | SHELL | SIGNATURE;
    table[b'(' as usize] = SQL_PUNCTUATION | XSS | SIGNATURE | PAREN;
    table[b'-' as usize] = DASH;
    table[b'/' as usize] = SLASH | SIGNATURE;
    table[b'\\' as usize] = SLASH | SIGNATURE;
    table[b'$' as usize] = SHELL | SIGNATURE;
    table[b'{' as usize] = SIGNATURE;
    table[b'+' as usize] = PLUS;
    table[b':' as usize] = SIGNATURE | XSS | COLON;
    table[b'.' as usize] = DOT | XSS;
    table[b'\n' as usize] = SHELL | OTHER_SPACE | LINE_BREAK;
    table[b'\r' as usize] = SHELL | OTHER_SPACE | LINE_BREAK;
    table[b'\t' as usize] = OTHER_SPACE;
    table[0x0B] = OTHER_SPACE;
    table[0x0C] = OTHER_SPACE;
    let mut digit = b'0';
    while digit <= b'9' {
        table[digit as usize] = DIGIT;
        digit += 1;
    }
    let mut byte = 0usize;
    while byte < 256 {
        let inert =
            (byte as u8).is_ascii_alphanumeric() || matches!(byte as u8, b'_' | b'.' | b'~' | b'-');
        if !inert {
            table[byte] |= NOT_INERT;
        }
        if byte >= 0x80 || matches!(byte as u8, b'%' | b'&' | 0) {
            table[byte] |= NEEDS_DECODING;
        }
        byte += 1;
    }
    table
};

/// Character classes present in a value, gathered in one pass so that a detector whose
/// trigger characters are all absent is skipped.
#[derive(Clone, Copy, Debug, Default)]
struct Present(u32);

impl Present {
    fn scan(bytes: &[u8]) -> Self {
        Present(
            bytes
                .iter()
                .fold(0, |classes, &byte| classes | BYTE_CLASSES[byte as usize]),
        )
    }

    fn xss_hints(self) -> xss::Hints {
        xss::Hints {
            less_than: self.has(LESS_THAN),
            colon: self.has(COLON),
            quote: self.has(QUOTE),
            equals: self.has(EQUALS),
            paren: self.has(PAREN),
            backtick: self.has(BACKTICK),
            dot: self.has(DOT),
            dash: self.has(DASH),
        }
    }

    fn has(self, class: u32) -> bool {
        self.0 & class != 0
    }

    /// Whether a signature pattern can match: each one contains `$ { | : / \\ (` or a
    /// command-line flag (a blank, `-` and a letter, as in ` -enc`).
    fn may_match_signature(self, bytes: &[u8]) -> bool {
        self.has(SIGNATURE) || (self.has(DASH) && has_flag(bytes))
    }

    /// Whether [`decode::fold_comments_and_whitespace`] can change the value.
    fn may_fold(self, bytes: &[u8]) -> bool {
        self.has(OTHER_SPACE)
            || (self.has(STAR) && self.has(SLASH))
            || (self.has(LESS_THAN) && self.has(BANG))
            || follows(bytes, b' ', b' ')
    }

    /// Whether the SQL detector can match. Without punctuation, quotes or digits, only a
    /// select list of NULLs (`x union select null from t`) or a bare statement (level 2) is
    /// left to find.
    fn may_contain_sql(self, bytes: &[u8], paranoia: u8) -> bool {
        self.has(QUOTE | SQL_PUNCTUATION | SLASH | DIGIT)
            || (self.has(DASH) && follows(bytes, b'-', b'-'))
            || paranoia >= 2
            || xss::find_ignore_case(bytes, b"null").is_some()
    }
}

/// Whether `bytes` contains a blank followed by `-` and a letter.
fn has_flag(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'-', bytes).any(|at| {
        at > 0
            && matches!(bytes[at - 1], b' ' | b'\t')
            && bytes.get(at + 1).is_some_and(|b| b.is_ascii_alphabetic())
    })
}

/// Whether `second` directly follows some `first` in `bytes`.
fn follows(bytes: &[u8], first: u8, second: u8) -> bool {
    memchr::memchr_iter(first, bytes).any(|at| bytes.get(at + 1) == Some(&second))
}

#[allow(clippy::too_many_arguments)]
fn run_detectors(
    text: &str,
    present: Present,
    kind: TargetKind,
    detectors: Detectors,
    matchers: &Matchers,
    sql_scratch: &mut sqli::Scratch,
    paranoia: u8,
    hits: &mut Vec<Hit>,
) {
    let bytes = text.as_bytes();
    let structure = detectors != Detectors::Content;
    let content = detectors != Detectors::PathStructure;
    if structure {
        if present.has(DOT) {
            traversal::detect_traversal(text, kind == TargetKind::Path, hits);
        }
        if present.has(SLASH | DOT) {
            traversal::detect_sensitive_files(text, matchers, hits);
        }
    }
    if present.has(LINE_BREAK) {
        detect_crlf(bytes, kind, hits);
    }
    if !content {
        return;
    }
    if present.may_contain_sql(bytes, paranoia) {
        sqli::Detector::new(text).detect(sql_scratch, hits);
    }
    if present.has(XSS) {
        xss::Detector::new(text, matchers).detect_with(present.xss_hints(), hits);
    }
    if present.has(SHELL) {
        let context = if kind.is_body() {
            cmdi::Context::Body
        } else {
            cmdi::Context::Head
        };
        cmdi::Detector::new(text, context).detect(hits);
    }
    if !present.may_match_signature(bytes) {
        return;
    }
    let folded = if present.may_fold(bytes) {
        decode::fold_comments_and_whitespace(text)
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    // `is_match` stops at the first match and allocates nothing; `matches` runs only when
    // there is something to report.
    if matchers.signatures.is_match(&folded) {
        let matches = matchers.signatures.matches(&folded);
        let span = 0..text.len().min(32);
        for index in matches.iter() {
            if let Some(&rule) = matchers.signature_rules.get(index) {
                if !hits.iter().any(|(existing, _)| *existing == rule) {
                    hits.push((rule, span.clone()));
                }
            }
        }
    }
}

/// Response header names that a CRLF payload typically adds.
const INJECTED_HEADERS: &[&str] = &[
    "access-control-allow-credentials",
    "access-control-allow-origin",
    "cache-control",
    "connection",
    "content-disposition",
    "content-length",
    "content-security-policy",
    "content-type",
    "location",
    "refresh",
    "set-cookie",
    "transfer-encoding",
    "x-xss-protection",
];

fn header_line_at(bytes: &[u8], mut at: usize, after_cr: bool) -> bool {
    let start = at;
    while bytes
        .get(at)
        .is_some_and(|&b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
    {
        at += 1;
    }
    let rest = &bytes[at.min(bytes.len())..];
    // A CRLF blank line ends the header block, so what follows is an injected body. A bare
    // `\n\n` is an ordinary paragraph break in text.
    let line_breaks = &bytes[start.min(bytes.len())..at.min(bytes.len())];
    if line_breaks
        .windows(2)
        .filter(|pair| pair == b"\r\n")
        .count()
        >= 2
    {
        return !rest.is_empty();
    }
    if rest.len() >= 6 && rest[..5].eq_ignore_ascii_case(b"http/") && rest[5].is_ascii_digit() {
        return true;
    }
    let name_length = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count();
    if name_length == 0 || rest.get(name_length) != Some(&b':') {
        return false;
    }
    let name = &rest[..name_length];
    after_cr
        || INJECTED_HEADERS
            .iter()
            .any(|known| known.as_bytes().eq_ignore_ascii_case(name))
}

fn detect_crlf(bytes: &[u8], kind: TargetKind, hits: &mut Vec<Hit>) {
    let Some(first) = memchr::memchr2(b'\r', b'\n', bytes) else {
        return;
    };
    let header_rule = if kind.is_body() {
        RuleId::CRLF_BODY_HEADER
    } else {
        RuleId::CRLF_HEADER
    };
    for at in memchr::memchr2_iter(b'\r', b'\n', bytes) {
        if header_line_at(bytes, at, bytes[at] == b'\r') {
            hits.push((header_rule, span_from(at, bytes.len())));
            break;
        }
    }
    match kind {
        TargetKind::Query => hits.push((RuleId::CRLF_QUERY, span_from(first, bytes.len()))),
        kind if !kind.is_body() => hits.push((RuleId::CRLF_HEAD, span_from(first, bytes.len()))),
        _ => {}
    }
}

fn span_from(at: usize, length: usize) -> Range<usize> {
    at..(at + 24).min(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inert_values() {
        assert!(is_inert(b"hello-world_1.2~x"));
        assert!(is_inert(b""));
        assert!(!is_inert(b"1--"));
        assert!(!is_inert(b"a b"));
        assert!(!is_inert(b"%41"));
    }

    fn crlf(text: &str, kind: TargetKind) -> Vec<u32> {
        let mut hits = Vec::new();
        detect_crlf(text.as_bytes(), kind, &mut hits);
        hits.iter().map(|(rule, _)| rule.0).collect()
    }

    #[test]
    fn crlf_header_lines() {
        assert_eq!(
            crlf("x\r\nSet-Cookie: a=b", TargetKind::Query),
            [5001, 5003]
        );
        assert_eq!(
            crlf("x\nLocation: //evil.example", TargetKind::Header),
            [5001, 5002]
        );
        assert_eq!(crlf("x\r\nX-Anything: 1", TargetKind::Cookie), [5001, 5002]);
        assert_eq!(
            crlf("x\r\n\r\nHTTP/1.1 200 OK", TargetKind::Path),
            [5001, 5002]
        );
        assert_eq!(crlf("line one\nNote: two", TargetKind::Query), [5003]);
        assert_eq!(
            crlf("line one\nNote: two", TargetKind::Json),
            Vec::<u32>::new()
        );
        assert_eq!(crlf("a\nSet-Cookie: x", TargetKind::Json), [5004]);
    }
}
