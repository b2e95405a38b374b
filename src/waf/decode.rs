//! The decoding pipeline that turns a raw value into the text the detectors match.
//!
//! Steps, in order: `+` to space (query strings and form bodies only), up to `passes` rounds of
//! percent-decoding (including `%uXXXX`), UTF-8 decoding that maps overlong forms to the
//! character they encode, HTML entities, NFKC normalization with lowercase folding (only for
//! non-ASCII text, because every detector matches ASCII case-insensitively), and null-byte
//! removal. Each step returns the input unchanged, without allocating, when it has nothing
//! to do. No step grows its input by more than a fixed factor: percent-decoding, entity
//! decoding and null removal only shrink, UTF-8 repair at most triples (U+FFFD is 3 bytes),
//! and normalization is cut at [`MAX_NORMALIZED_GROWTH`] times the input plus 64 bytes.
//!
//! NOTE: JavaScript escapes (`\u003c`, `\x3c`) are decoded only inside JSON bodies, by the
//! JSON walker. In a query or header value they reach the detectors undecoded.

use crate::path::hex_value;
use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

/// Output-size factor at which NFKC normalization and case folding stop.
pub(crate) const MAX_NORMALIZED_GROWTH: usize = 4;

/// Anomalies met while decoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DecodeFlags {
    pub invalid_utf8: bool,
    pub overlong_utf8: bool,
    pub null_byte: bool,
    /// A second or later percent-decoding pass changed the value.
    pub multiple_encoding: bool,
    /// Valid percent-escapes remained after the last pass.
    pub residual_encoding: bool,
    pub unicode_percent: bool,
    pub truncated: bool,
}

/// A decoded value.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub text: Cow<'a, str>,
    pub flags: DecodeFlags,
}

/// Options of one decoding run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DecodeOptions {
    pub plus_as_space: bool,
    pub passes: u8,
}

/// Runs the whole pipeline over `raw`.
pub(crate) fn decode(raw: &[u8], options: DecodeOptions) -> Decoded<'_> {
    let mut flags = DecodeFlags::default();
    let mut bytes: Cow<'_, [u8]> = Cow::Borrowed(raw);

    if options.plus_as_space && memchr::memchr(b'+', &bytes).is_some() {
        bytes = Cow::Owned(
            bytes
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        );
    }

    for pass in 0..options.passes {
        match percent_decode_pass(&bytes, &mut flags) {
            Some(decoded) => {
                if pass > 0 {
                    flags.multiple_encoding = true;
                }
                bytes = Cow::Owned(decoded);
            }
            None => break,
        }
    }
    if has_percent_escape(&bytes) {
        flags.residual_encoding = true;
    }

    let text = decode_utf8(bytes, &mut flags);
    let text = match decode_html_entities(&text) {
        Some(decoded) => Cow::Owned(decoded),
        None => text,
    };
    let text = match normalize_unicode(&text, &mut flags) {
        Some(normalized) => Cow::Owned(normalized),
        None => text,
    };
    let text = match remove_null_bytes(&text) {
        Some(cleaned) => {
            flags.null_byte = true;
            Cow::Owned(cleaned)
        }
        None => text,
    };
    Decoded { text, flags }
}

fn hex_pair(bytes: &[u8], at: usize) -> Option<u8> {
    let high = hex_value(*bytes.get(at)?)?;
    let low = hex_value(*bytes.get(at + 1)?)?;
    Some(high << 4 | low)
}

fn hex_quad(bytes: &[u8], at: usize) -> Option<u32> {
    let mut value = 0u32;
    for offset in 0..4 {
        value = value << 4 | u32::from(hex_value(*bytes.get(at + offset)?)?);
    }
    Some(value)
}

fn has_percent_escape(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'%', bytes).any(|at| {
        hex_pair(bytes, at + 1).is_some()
            || (matches!(bytes.get(at + 1), Some(b'u' | b'U')) && hex_quad(bytes, at + 2).is_some())
    })
}

/// Decodes `%HH` and `%uXXXX` once. Returns `None` when `bytes` contains no escape. A `%`
/// that starts no valid escape stays as it is, so `100%` survives.
pub(crate) fn percent_decode_pass(bytes: &[u8], flags: &mut DecodeFlags) -> Option<Vec<u8>> {
    let first = memchr::memchr(b'%', bytes)?;
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut changed = false;
    let mut i = first;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            if let Some(value) = hex_pair(bytes, i + 1) {
                out.push(value);
                i += 3;
                changed = true;
                continue;
            }
            if matches!(bytes.get(i + 1), Some(b'u' | b'U')) {
                if let Some(code) = hex_quad(bytes, i + 2) {
                    let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                    let mut buffer = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buffer).as_bytes());
                    flags.unicode_percent = true;
                    i += 6;
                    changed = true;
                    continue;
                }
            }
        }
        out.push(byte);
        i += 1;
    }
    changed.then_some(out)
}

fn is_continuation(byte: Option<&u8>) -> bool {
    matches!(byte, Some(0x80..=0xBF))
}

/// Decodes one overlong UTF-8 sequence at the start of `bytes`, returning the code point it
/// encodes and its length.
fn decode_overlong(bytes: &[u8]) -> Option<(u32, usize)> {
    let lead = *bytes.first()?;
    match lead {
        0xC0 | 0xC1 if is_continuation(bytes.get(1)) => Some((
            (u32::from(lead) & 0x1F) << 6 | (u32::from(bytes[1]) & 0x3F),
            2,
        )),
        0xE0 if matches!(bytes.get(1), Some(0x80..=0x9F)) && is_continuation(bytes.get(2)) => {
            let code = (u32::from(bytes[1]) & 0x3F) << 6 | (u32::from(bytes[2]) & 0x3F);
            Some((code, 3))
        }
        0xF0 if matches!(bytes.get(1), Some(0x80..=0x8F))
            && is_continuation(bytes.get(2))
            && is_continuation(bytes.get(3)) =>
        {
            let code = (u32::from(bytes[1]) & 0x3F) << 12
                | (u32::from(bytes[2]) & 0x3F) << 6
                | (u32::from(bytes[3]) & 0x3F);
            Some((code, 4))
        }
        _ => None,
    }
}

/// Converts bytes to text. Overlong sequences become the character they encode (so that
/// `%c0%af` is seen as `/`) and set `overlong_utf8`. Other invalid bytes become U+FFFD and set
/// `invalid_utf8`.
pub(crate) fn decode_utf8<'a>(bytes: Cow<'a, [u8]>, flags: &mut DecodeFlags) -> Cow<'a, str> {
    match bytes {
        Cow::Borrowed(slice) => match std::str::from_utf8(slice) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => Cow::Owned(repair_utf8(slice, flags)),
        },
        Cow::Owned(vec) => match String::from_utf8(vec) {
            Ok(text) => Cow::Owned(text),
            Err(error) => Cow::Owned(repair_utf8(error.as_bytes(), flags)),
        },
    }
}

fn repair_utf8(mut bytes: &[u8], flags: &mut DecodeFlags) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    while !bytes.is_empty() {
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                out.push_str(text);
                break;
            }
            Err(error) => {
                let (valid, rest) = bytes.split_at(error.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                if let Some((code, length)) = decode_overlong(rest) {
                    flags.overlong_utf8 = true;
                    out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                    bytes = &rest[length..];
                } else {
                    flags.invalid_utf8 = true;
                    out.push(char::REPLACEMENT_CHARACTER);
                    let skip = error.error_len().unwrap_or(rest.len()).max(1);
                    bytes = &rest[skip.min(rest.len())..];
                }
            }
        }
    }
    out
}

/// Named entities decoded by [`decode_html_entities`]: the ones HTML requires, plus the
/// punctuation names HTML5 added that are used to hide `javascript:` and parentheses.
/// Sorted by name for binary search.
const NAMED_ENTITIES: &[(&str, char)] = &[
    ("AMP", '&'),
    ("GT", '>'),
    ("LT", '<'),
    ("NewLine", '\n'),
    ("QUOT", '"'),
    ("Tab", '\t'),
    ("amp", '&'),
    ("apos", '\''),
    ("ast", '*'),
    ("bsol", '\\'),
    ("colon", ':'),
    ("comma", ','),
    ("commat", '@'),
    ("dollar", '$'),
    ("equals", '='),
    ("excl", '!'),
    ("grave", '`'),
    ("gt", '>'),
    ("hyphen", '-'),
    ("lbrack", '['),
    ("lcub", '{'),
    ("lowbar", '_'),
    ("lpar", '('),
    ("lsqb", '['),
    ("lt", '<'),
    ("nbsp", '\u{a0}'),
    ("num", '#'),
    ("percnt", '%'),
    ("period", '.'),
    ("plus", '+'),
    ("quest", '?'),
    ("quot", '"'),
    ("rbrack", ']'),
    ("rcub", '}'),
    ("rpar", ')'),
    ("rsqb", ']'),
    ("semi", ';'),
    ("sol", '/'),
    ("verbar", '|'),
];

/// Entities that browsers also accept without the closing `;`.
const LEGACY_ENTITIES: &[(&str, char)] = &[
    ("amp", '&'),
    ("gt", '>'),
    ("lt", '<'),
    ("quot", '"'),
    ("AMP", '&'),
    ("LT", '<'),
];

/// Decodes one entity at the start of `text` (which begins with `&`), returning the
/// character and the entity length.
fn decode_entity(text: &str) -> Option<(char, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(1) == Some(&b'#') {
        let (radix, digits_start) = match bytes.get(2) {
            Some(b'x' | b'X') => (16, 3),
            _ => (10, 2),
        };
        let mut end = digits_start;
        let mut value: u32 = 0;
        while let Some(&byte) = bytes.get(end) {
            let digit = match (radix, byte) {
                (_, b'0'..=b'9') => u32::from(byte - b'0'),
                (16, b'a'..=b'f') => u32::from(byte - b'a' + 10),
                (16, b'A'..=b'F') => u32::from(byte - b'A' + 10),
                _ => break,
            };
            // Saturate so that a long run of digits cannot overflow; it decodes to U+FFFD.
            value = value.saturating_mul(radix).saturating_add(digit);
            end += 1;
        }
        if end == digits_start {
            return None;
        }
        if bytes.get(end) == Some(&b';') {
            end += 1;
        }
        let ch = match value {
            0 => '\0',
            _ => char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER),
        };
        return Some((ch, end));
    }
    let name_end = bytes[1..]
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
        .map_or(bytes.len(), |p| p + 1);
    let name = text.get(1..name_end)?;
    if bytes.get(name_end) == Some(&b';') {
        if let Ok(index) = NAMED_ENTITIES.binary_search_by_key(&name, |(n, _)| n) {
            return NAMED_ENTITIES.get(index).map(|&(_, ch)| (ch, name_end + 1));
        }
    }
    // Legacy entities match as a prefix without `;`, as in `&ltscript`.
    LEGACY_ENTITIES
        .iter()
        .find(|(legacy, _)| name.starts_with(legacy))
        .map(|&(legacy, ch)| (ch, legacy.len() + 1))
}

/// Decodes HTML character references once. Returns `None` when `text` has no `&` or no
/// entity.
pub(crate) fn decode_html_entities(text: &str) -> Option<String> {
    let first = memchr::memchr(b'&', text.as_bytes())?;
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    let mut next = Some(first);
    while let Some(at) = next {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        match decode_entity(candidate) {
            Some((ch, length)) => {
                out.push(ch);
                rest = &candidate[length..];
                changed = true;
            }
            None => {
                out.push('&');
                rest = &candidate[1..];
            }
        }
        next = memchr::memchr(b'&', rest.as_bytes());
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Applies NFKC and lowercase folding to text that contains non-ASCII characters, so that
/// fullwidth `＜ｓｃｒｉｐｔ＞` reads as `<script>`. Returns `None` for ASCII text.
pub(crate) fn normalize_unicode(text: &str, flags: &mut DecodeFlags) -> Option<String> {
    if text.is_ascii() {
        return None;
    }
    let limit = text
        .len()
        .saturating_mul(MAX_NORMALIZED_GROWTH)
        .saturating_add(64);
    let mut out = String::with_capacity(text.len() + 16);
    for ch in text.nfkc().flat_map(char::to_lowercase) {
        if out.len() + ch.len_utf8() > limit {
            flags.truncated = true;
            break;
        }
        out.push(ch);
    }
    Some(out)
}

/// Removes null bytes. Returns `None` when there are none.
pub(crate) fn remove_null_bytes(text: &str) -> Option<String> {
    memchr::memchr(0, text.as_bytes())?;
    Some(text.chars().filter(|&ch| ch != '\0').collect())
}

/// Replaces SQL block comments and HTML comments with one space (keeping the contents of
/// MySQL executable comments `/*! ... */`, which the server runs) and folds every run of
/// whitespace into one space. Returns the input borrowed when nothing changes.
pub(crate) fn fold_comments_and_whitespace(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let needs_work = bytes.windows(2).any(|pair| {
        matches!(pair, b"/*" | b"<!")
            || (pair[0].is_ascii_whitespace() && (pair[1].is_ascii_whitespace() || pair[0] != b' '))
    }) || bytes
        .last()
        .is_some_and(|&b| b.is_ascii_whitespace() && b != b' ');
    if !needs_work {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_executable = false;
    let mut last_space = false;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let (replacement, skip) = if rest.starts_with(b"/*!") {
            in_executable = true;
            let digits = rest[3..].iter().take_while(|b| b.is_ascii_digit()).count();
            (Some(' '), 3 + digits)
        } else if rest.starts_with(b"*/") && in_executable {
            in_executable = false;
            (Some(' '), 2)
        } else if rest.starts_with(b"/*") {
            let end = find(&rest[2..], b"*/").map_or(rest.len(), |p| p + 4);
            (Some(' '), end)
        } else if rest.starts_with(b"<!--") {
            let end = find(&rest[4..], b"-->").map_or(rest.len(), |p| p + 7);
            (Some(' '), end)
        } else if rest[0].is_ascii_whitespace() {
            (Some(' '), 1)
        } else {
            (None, 0)
        };
        match replacement {
            Some(space) => {
                if !last_space {
                    out.push(space);
                    last_space = true;
                }
                i += skip;
            }
            None => {
                let ch_len = utf8_len(rest[0]);
                out.push_str(text.get(i..i + ch_len).unwrap_or_default());
                last_space = false;
                i += ch_len;
            }
        }
    }
    Cow::Owned(out)
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Finds `needle` in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(raw: &str, passes: u8) -> Decoded<'_> {
        decode(
            raw.as_bytes(),
            DecodeOptions {
                plus_as_space: true,
                passes,
            },
        )
    }

    #[test]
    fn percent_decoding_repeats_up_to_passes() {
        let decoded = run("%252527", 3);
        assert_eq!(decoded.text, "'");
        assert!(decoded.flags.multiple_encoding);
        assert!(!decoded.flags.residual_encoding);

        let decoded = run("%25252527", 3);
        assert_eq!(decoded.text, "%27");
        assert!(decoded.flags.residual_encoding);
    }

    #[test]
    fn percent_decoding_keeps_stray_percent() {
        let decoded = run("100%", 3);
        assert_eq!(decoded.text, "100%");
        assert!(matches!(decoded.text, Cow::Borrowed(_)));
        assert_eq!(run("50%+off", 3).text, "50% off");
        assert_eq!(run("%zz%4", 3).text, "%zz%4");
    }

    #[test]
    fn unicode_percent_escape() {
        let decoded = run("%u003cscript%u003E", 2);
        assert_eq!(decoded.text, "<script>");
        assert!(decoded.flags.unicode_percent);
        assert_eq!(run("%uD800", 1).text, "\u{fffd}");
    }

    #[test]
    fn plus_is_space_only_when_asked() {
        let raw = b"a+b";
        let form = decode(
            raw,
            DecodeOptions {
                plus_as_space: true,
                passes: 1,
            },
        );
        let header = decode(
            raw,
            DecodeOptions {
                plus_as_space: false,
                passes: 1,
            },
        );
        assert_eq!(form.text, "a b");
        assert_eq!(header.text, "a+b");
    }

    #[test]
    fn overlong_utf8_decodes_and_flags() {
        let decoded = run("..%c0%af..%e0%80%afetc", 2);
        assert_eq!(decoded.text, "../../etc");
        assert!(decoded.flags.overlong_utf8);
        assert!(!decoded.flags.invalid_utf8);
        let four = decode(
            &[0xF0, 0x80, 0x80, 0xAF],
            DecodeOptions {
                plus_as_space: false,
                passes: 0,
            },
        );
        assert_eq!(four.text, "/");
    }

    #[test]
    fn invalid_utf8_becomes_replacement() {
        let decoded = run("caf%e9", 2);
        assert_eq!(decoded.text, "caf\u{fffd}");
        assert!(decoded.flags.invalid_utf8);
        let truncated = decode(
            &[b'a', 0xE2, 0x82],
            DecodeOptions {
                plus_as_space: false,
                passes: 0,
            },
        );
        assert_eq!(truncated.text, "a\u{fffd}");
    }

    #[test]
    fn html_entities_named_decimal_hex() {
        assert_eq!(decode_html_entities("&lt;b&gt;").as_deref(), Some("<b>"));
        assert_eq!(
            decode_html_entities("&#60;&#x3C;&#X3c;").as_deref(),
            Some("<<<")
        );
        assert_eq!(
            decode_html_entities("&#0000106;ava").as_deref(),
            Some("java")
        );
        assert_eq!(decode_html_entities("&#106ava").as_deref(), Some("java"));
        assert_eq!(
            decode_html_entities("javascript&colon;alert&lpar;1&rpar;").as_deref(),
            Some("javascript:alert(1)")
        );
        assert_eq!(
            decode_html_entities("&ltscript").as_deref(),
            Some("<script")
        );
        assert_eq!(
            decode_html_entities("jav&Tab;ascript").as_deref(),
            Some("jav\tascript")
        );
    }

    #[test]
    fn html_entities_leave_plain_ampersands() {
        assert_eq!(decode_html_entities("Tom & Jerry"), None);
        assert_eq!(decode_html_entities("AT&T"), None);
        assert_eq!(decode_html_entities("a&unknown;b"), None);
        assert_eq!(
            decode_html_entities("&#99999999999999999999;").as_deref(),
            Some("\u{fffd}")
        );
        assert_eq!(decode_html_entities("&#;"), None);
    }

    #[test]
    fn named_entities_sorted() {
        for pair in NAMED_ENTITIES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
    }

    #[test]
    fn nfkc_folds_fullwidth_and_case() {
        let mut flags = DecodeFlags::default();
        let folded = normalize_unicode("＜ＳＣＲＩＰＴ＞", &mut flags);
        assert_eq!(folded.as_deref(), Some("<script>"));
        assert_eq!(normalize_unicode("plain ascii", &mut flags), None);
        assert_eq!(
            normalize_unicode("ſelect", &mut flags).as_deref(),
            Some("select")
        );
        assert!(!flags.truncated);
    }

    #[test]
    fn nfkc_growth_is_bounded() {
        let mut flags = DecodeFlags::default();
        let input = "\u{fdfa}".repeat(100);
        let folded = normalize_unicode(&input, &mut flags).unwrap_or_default();
        assert!(flags.truncated);
        assert!(folded.len() <= input.len() * MAX_NORMALIZED_GROWTH + 64);
    }

    #[test]
    fn null_bytes_removed_and_flagged() {
        let decoded = run("<scr%00ipt>", 2);
        assert_eq!(decoded.text, "<script>");
        assert!(decoded.flags.null_byte);
        assert!(remove_null_bytes("clean").is_none());
    }

    #[test]
    fn comment_and_whitespace_folding() {
        assert_eq!(
            fold_comments_and_whitespace("union/**/select"),
            "union select"
        );
        assert_eq!(
            fold_comments_and_whitespace("/*!50000union*/ select"),
            " union select"
        );
        assert_eq!(fold_comments_and_whitespace("a \t\n b"), "a b");
        assert_eq!(
            fold_comments_and_whitespace("<scr<!-- x -->ipt>"),
            "<scr ipt>"
        );
        assert_eq!(fold_comments_and_whitespace("open /* comment"), "open ");
        assert!(matches!(
            fold_comments_and_whitespace("plain text"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn ascii_without_escapes_is_borrowed() {
        let decoded = run("hello world", 3);
        assert!(matches!(decoded.text, Cow::Borrowed(_)));
        assert_eq!(decoded.flags, DecodeFlags::default());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            let length = (state % 64) as usize;
            let mut raw = Vec::with_capacity(length);
            for _ in 0..length {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let choices = b"%uU0123456789abcdefABCDEF&#x;+<>\xc0\xaf\xe0\x80\xff\x00 lt";
                raw.push(choices[(state % choices.len() as u64) as usize]);
            }
            let decoded = decode(
                &raw,
                DecodeOptions {
                    plus_as_space: true,
                    passes: 4,
                },
            );
            assert!(decoded.text.len() <= raw.len() * 3 * MAX_NORMALIZED_GROWTH + 64);
            let _ = fold_comments_and_whitespace(&decoded.text);
        }
    }
}
