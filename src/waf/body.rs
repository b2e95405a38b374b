//! Request bodies: choosing whether to inspect, and walking JSON, form and multipart bodies.

use super::encoding::{self, ContentEncoding};
use super::head::{self, trim};
use super::inspect::{Scan, ValueOptions};
use super::rules::RuleId;
use super::target::TargetKind;

/// Maximum nesting of JSON arrays and objects. Deeper documents are inspected as text.
pub const MAX_JSON_DEPTH: usize = 64;

/// Body format used for inspection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`, `*/json`, `*+json`, `application/x-json` and
    /// `application/csp-report`.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `multipart/form-data`.
    Multipart,
    /// `text/*`, XML, GraphQL, JavaScript, and bodies without a `Content-Type`.
    Text,
    /// Any other type that is not clearly binary, such as `application/octet-stream`,
    /// `application/grpc` or `multipart/mixed`. Many backends parse such a body as JSON
    /// whatever its type says, so it is inspected as JSON when it parses as JSON, else as
    /// text without the decoding-anomaly rules, because it may hold binary data.
    Other,
}

/// Action the filter takes on the request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyPlan {
    /// Forward the body without inspection (mode off, or a content type that is not
    /// inspected, such as images or `application/octet-stream`).
    Skip,
    /// Buffer the whole body. If it grows past `max_bytes`, respond with
    /// `over_limit_status` without forwarding it, else pass it to
    /// [`super::Waf::inspect_body`].
    Inspect {
        kind: BodyKind,
        /// Content coding to undo before inspection; pass it to
        /// [`super::Waf::inspect_encoded_body`]. A coding the inspector cannot decode is
        /// reported by [`super::Waf::inspect_head`] with rule 1012 and shows here as
        /// `Identity`.
        encoding: ContentEncoding,
        max_bytes: usize,
        over_limit_status: u16,
    },
    /// More than one distinct `Content-Type`, or a list of types in one header. The filter
    /// responds with 400.
    ConflictingContentType,
}

/// Returns the lowercase media type of a `Content-Type` value (the part before `;`).
fn media_type(value: &[u8]) -> String {
    let end = memchr::memchr(b';', value).unwrap_or(value.len());
    String::from_utf8_lossy(trim(&value[..end])).to_ascii_lowercase()
}

/// Media types that are not inspected because their bodies are binary and no backend reads
/// them as text. `application/octet-stream` is not among them, because clients send JSON
/// and form bodies with it. Every `image/*` type except SVG, and every `audio/*`, `video/*`
/// and `font/*` type, is binary too.
const BINARY_MEDIA_TYPES: &[&str] = &[
    "application/gzip",
    "application/pdf",
    "application/vnd.rar",
    "application/wasm",
    "application/x-7z-compressed",
    "application/x-bzip2",
    "application/x-gzip",
    "application/x-tar",
    "application/x-xz",
    "application/zip",
    "application/zstd",
];

fn is_binary_media_type(media: &str) -> bool {
    let top_level_binary = ["image/", "audio/", "video/", "font/"]
        .iter()
        .any(|prefix| media.starts_with(prefix));
    (top_level_binary && !media.ends_with("+xml")) || BINARY_MEDIA_TYPES.contains(&media)
}

fn is_json_media_type(media: &str) -> bool {
    media.ends_with("/json")
        || media.ends_with("+json")
        || media == "application/x-json"
        || media == "application/csp-report"
}

/// Returns the body format for a `Content-Type` value, `None` for a binary type that is
/// not inspected.
pub(crate) fn body_kind(content_type: Option<&[u8]>) -> Option<BodyKind> {
    let Some(value) = content_type else {
        return Some(BodyKind::Text);
    };
    let media = media_type(value);
    if media.is_empty() {
        return Some(BodyKind::Text);
    }
    if is_json_media_type(&media) {
        Some(BodyKind::Json)
    } else if media == "application/x-www-form-urlencoded" {
        Some(BodyKind::Form)
    } else if media == "multipart/form-data" {
        Some(BodyKind::Multipart)
    } else if media.starts_with("text/")
        || media.ends_with("/xml")
        || media.ends_with("+xml")
        || media == "application/graphql"
        || media == "application/javascript"
    {
        Some(BodyKind::Text)
    } else if is_binary_media_type(&media) {
        None
    } else {
        Some(BodyKind::Other)
    }
}

/// Chooses the body plan from the request headers.
pub(crate) fn plan(
    headers: &[(&str, &[u8])],
    max_bytes: usize,
    over_limit_status: u16,
) -> BodyPlan {
    let mut content_type: Option<&[u8]> = None;
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("content-type") {
            continue;
        }
        let value = trim(value);
        let media_end = memchr::memchr(b';', value).unwrap_or(value.len());
        if memchr::memchr(b',', &value[..media_end]).is_some() {
            return BodyPlan::ConflictingContentType;
        }
        match content_type {
            Some(previous) if !previous.eq_ignore_ascii_case(value) => {
                return BodyPlan::ConflictingContentType;
            }
            _ => content_type = Some(value),
        }
    }
    match body_kind(content_type) {
        Some(kind) => BodyPlan::Inspect {
            kind,
            encoding: encoding::content_encoding(headers).unwrap_or(ContentEncoding::Identity),
            max_bytes,
            over_limit_status,
        },
        None => BodyPlan::Skip,
    }
}

/// Inspects a body of the given kind.
pub(crate) fn inspect(
    scan: &mut Scan<'_>,
    content_type: Option<&[u8]>,
    body: &[u8],
    inspect_file_uploads: bool,
) {
    let Some(kind) = body_kind(content_type) else {
        return;
    };
    match kind {
        BodyKind::Json => {
            // JSON is UTF-8 (RFC 8259), so the body is validated once and strings are sliced
            // from it without further checks.
            let walked = match std::str::from_utf8(body) {
                Ok(text) => JsonWalker::new(text).walk(scan),
                Err(_) => Err(JsonError),
            };
            if walked.is_err() {
                scan.structural(RuleId::INVALID_JSON, TargetKind::Body, "", "");
                scan.value(body, TargetKind::Body, "", ValueOptions::PLAIN);
            }
        }
        BodyKind::Form => head::inspect_pairs(scan, body, TargetKind::Form, TargetKind::FormName),
        BodyKind::Multipart => {
            let boundary = content_type.and_then(boundary_parameter);
            let parsed = boundary.and_then(|b| multipart_parts(body, &b));
            match parsed {
                Some(parts) => {
                    for part in parts {
                        inspect_part(scan, &part, inspect_file_uploads);
                    }
                }
                None => {
                    scan.structural(RuleId::MALFORMED_MULTIPART, TargetKind::Body, "", "");
                    let options = ValueOptions {
                        anomalies: false,
                        ..ValueOptions::PLAIN
                    };
                    scan.value(body, TargetKind::Body, "", options);
                }
            }
        }
        BodyKind::Text => scan.value(body, TargetKind::Body, "", ValueOptions::PLAIN),
        BodyKind::Other => {
            let walked = match std::str::from_utf8(body) {
                Ok(text) if looks_like_json(body) => JsonWalker::new(text).walk(scan).is_ok(),
                _ => false,
            };
            if !walked {
                // A partial JSON walk may have reported findings already; the text pass
                // adds no duplicates because a rule reports once per target.
                let options = ValueOptions {
                    anomalies: false,
                    ..ValueOptions::PLAIN
                };
                scan.value(body, TargetKind::Body, "", options);
            }
        }
    }
}

/// Returns whether the first non-blank byte opens a JSON object or array.
fn looks_like_json(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{' || b == b'[')
}

#[derive(Debug)]
struct JsonError;

/// Validating JSON scanner that inspects keys and string values without building a tree.
/// It tracks the JSON Pointer (RFC 6901) of the current value for target names.
struct JsonWalker<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    pointer: String,
    scratch: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Container {
    Object { pointer_len: usize },
    Array { pointer_len: usize, index: usize },
}

impl<'a> JsonWalker<'a> {
    fn new(text: &'a str) -> Self {
        JsonWalker {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            pointer: String::new(),
            scratch: Vec::new(),
        }
    }

    fn skip_space(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        self.skip_space();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(JsonError)
        }
    }

    fn walk(&mut self, scan: &mut Scan<'_>) -> Result<(), JsonError> {
        let mut stack: Vec<Container> = Vec::new();
        self.value(scan, &mut stack)?;
        loop {
            self.skip_space();
            let Some(top) = stack.last_mut() else { break };
            match top {
                Container::Object { pointer_len } => {
                    let pointer_len = *pointer_len;
                    self.pointer.truncate(pointer_len);
                    match self.peek() {
                        Some(b',') => {
                            self.pos += 1;
                            self.member(scan, &mut stack, pointer_len)?;
                        }
                        Some(b'}') => {
                            self.pos += 1;
                            stack.pop();
                        }
                        _ => return Err(JsonError),
                    }
                }
                Container::Array { pointer_len, index } => {
                    let pointer_len = *pointer_len;
                    self.pointer.truncate(pointer_len);
                    match self.peek() {
                        Some(b',') => {
                            self.pos += 1;
                            *index += 1;
                            let index = *index;
                            self.push_index(index);
                            self.value(scan, &mut stack)?;
                        }
                        Some(b']') => {
                            self.pos += 1;
                            stack.pop();
                        }
                        _ => return Err(JsonError),
                    }
                }
            }
        }
        self.skip_space();
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(JsonError)
        }
    }

    fn push_index(&mut self, index: usize) {
        use std::fmt::Write;
        self.pointer.push('/');
        let _ = write!(self.pointer, "{index}");
    }

    /// Reads `"key": value` inside an object whose pointer has length `pointer_len`.
    fn member(
        &mut self,
        scan: &mut Scan<'_>,
        stack: &mut Vec<Container>,
        pointer_len: usize,
    ) -> Result<(), JsonError> {
        self.skip_space();
        if self.peek() != Some(b'"') {
            return Err(JsonError);
        }
        let (start, end, escaped) = self.string_span()?;
        let borrowed = self.string_text(start, end, escaped)?;
        let scratch = std::mem::take(&mut self.scratch);
        let key = match borrowed {
            Some(text) => text,
            None => std::str::from_utf8(&scratch).map_err(|_| JsonError)?,
        };
        self.pointer.truncate(pointer_len);
        self.pointer.push('/');
        if memchr::memchr2(b'~', b'/', key.as_bytes()).is_some() {
            for ch in key.chars() {
                match ch {
                    '~' => self.pointer.push_str("~0"),
                    '/' => self.pointer.push_str("~1"),
                    ch => self.pointer.push(ch),
                }
            }
        } else {
            self.pointer.push_str(key);
        }
        scan.text_value(key, TargetKind::JsonKey, &self.pointer, ValueOptions::PLAIN);
        self.scratch = scratch;
        self.expect(b':')?;
        self.value(scan, stack)
    }

    /// Reads one value; containers are pushed on `stack` and continued by [`Self::walk`].
    fn value(&mut self, scan: &mut Scan<'_>, stack: &mut Vec<Container>) -> Result<(), JsonError> {
        self.skip_space();
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                if stack.len() >= MAX_JSON_DEPTH {
                    return Err(JsonError);
                }
                let pointer_len = self.pointer.len();
                stack.push(Container::Object { pointer_len });
                self.skip_space();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    stack.pop();
                    return Ok(());
                }
                self.member(scan, stack, pointer_len)
            }
            Some(b'[') => {
                self.pos += 1;
                if stack.len() >= MAX_JSON_DEPTH {
                    return Err(JsonError);
                }
                let pointer_len = self.pointer.len();
                stack.push(Container::Array {
                    pointer_len,
                    index: 0,
                });
                self.skip_space();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    stack.pop();
                    return Ok(());
                }
                self.push_index(0);
                self.value(scan, stack)
            }
            Some(b'"') => {
                let (start, end, escaped) = self.string_span()?;
                let borrowed = self.string_text(start, end, escaped)?;
                let scratch = std::mem::take(&mut self.scratch);
                let text = match borrowed {
                    Some(text) => text,
                    None => std::str::from_utf8(&scratch).map_err(|_| JsonError)?,
                };
                scan.text_value(text, TargetKind::Json, &self.pointer, ValueOptions::PLAIN);
                self.scratch = scratch;
                Ok(())
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(JsonError),
        }
    }

    /// Checks a number against the JSON grammar: `-? int frac? exp?`, where `int` has no
    /// leading zero.
    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(JsonError),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            Err(JsonError)
        } else {
            Ok(())
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(JsonError)
        }
    }

    /// Finds the end of the string starting at the current `"`. Returns the content range
    /// and whether it contains escapes.
    fn string_span(&mut self) -> Result<(usize, usize, bool), JsonError> {
        let start = self.pos + 1;
        let mut at = start;
        let mut escaped = false;
        // A plain loop over a local index beats memchr here because most JSON strings are a
        // few bytes long.
        while let Some(&byte) = self.bytes.get(at) {
            if !STRING_SPECIAL[byte as usize] {
                at += 1;
                continue;
            }
            match byte {
                b'"' => {
                    self.pos = at + 1;
                    return Ok((start, at, escaped));
                }
                b'\\' => {
                    escaped = true;
                    at += 2;
                }
                _ => return Err(JsonError),
            }
        }
        Err(JsonError)
    }

    /// Returns the string's text borrowed from the body, or `None` when it had escapes and
    /// was unescaped into `self.scratch`, which then contains valid UTF-8.
    fn string_text(
        &mut self,
        start: usize,
        end: usize,
        escaped: bool,
    ) -> Result<Option<&'a str>, JsonError> {
        if !escaped {
            // `start` and `end` sit next to ASCII quotes, so they are character boundaries.
            return self.text.get(start..end).map(Some).ok_or(JsonError);
        }
        let raw = self.bytes.get(start..end).ok_or(JsonError)?;
        self.scratch.clear();
        let mut i = 0;
        while i < raw.len() {
            let run_end = memchr::memchr(b'\\', &raw[i..]).map_or(raw.len(), |at| i + at);
            self.scratch.extend_from_slice(&raw[i..run_end]);
            i = run_end;
            if i == raw.len() {
                break;
            }
            let escape = *raw.get(i + 1).ok_or(JsonError)?;
            i += 2;
            let ch = match escape {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let high = hex4(raw, i)?;
                    i += 4;
                    if (0xD800..0xDC00).contains(&high)
                        && raw.get(i) == Some(&b'\\')
                        && raw.get(i + 1) == Some(&b'u')
                    {
                        let low = hex4(raw, i + 2)?;
                        if (0xDC00..0xE000).contains(&low) {
                            i += 6;
                            let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                        } else {
                            char::REPLACEMENT_CHARACTER
                        }
                    } else {
                        char::from_u32(high).unwrap_or(char::REPLACEMENT_CHARACTER)
                    }
                }
                _ => return Err(JsonError),
            };
            let mut buffer = [0u8; 4];
            self.scratch
                .extend_from_slice(ch.encode_utf8(&mut buffer).as_bytes());
        }
        std::str::from_utf8(&self.scratch).map_err(|_| JsonError)?;
        Ok(None)
    }
}

/// Bytes that end the plain run of a JSON string: the closing quote, a backslash and the
/// control characters, which RFC 8259 does not allow unescaped.
const STRING_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

fn hex4(bytes: &[u8], at: usize) -> Result<u32, JsonError> {
    let digits = bytes.get(at..at + 4).ok_or(JsonError)?;
    // JSON allows exactly four hex digits; `from_str_radix` alone would accept a leading `+`.
    digits.iter().try_fold(0u32, |value, &digit| {
        let nibble = crate::path::hex_value(digit).ok_or(JsonError)?;
        Ok(value << 4 | u32::from(nibble))
    })
}

/// Returns the `boundary` parameter of a multipart `Content-Type`.
fn boundary_parameter(content_type: &[u8]) -> Option<Vec<u8>> {
    for parameter in content_type.split(|&b| b == b';').skip(1) {
        let parameter = trim(parameter);
        let Some(at) = memchr::memchr(b'=', parameter) else {
            continue;
        };
        if !trim(&parameter[..at]).eq_ignore_ascii_case(b"boundary") {
            continue;
        }
        let value = trim(&parameter[at + 1..]);
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        if value.is_empty() || value.len() > 200 {
            return None;
        }
        return Some(value.to_vec());
    }
    None
}

/// One part of a multipart body.
struct Part<'a> {
    name: Option<String>,
    filename: Option<String>,
    content: &'a [u8],
}

/// Splits a multipart body into parts. Returns `None` when the body does not follow the
/// format: no opening delimiter, no closing delimiter, or a part without a
/// `Content-Disposition: form-data` header.
fn multipart_parts<'a>(body: &'a [u8], boundary: &[u8]) -> Option<Vec<Part<'a>>> {
    let mut delimiter = Vec::with_capacity(boundary.len() + 4);
    delimiter.extend_from_slice(b"--");
    delimiter.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delimiter);
    let first = finder.find(body)?;
    let mut rest = &body[first + delimiter.len()..];
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))?;
        let next = finder.find(rest)?;
        let mut section = &rest[..next];
        section = section
            .strip_suffix(b"\r\n")
            .or_else(|| section.strip_suffix(b"\n"))
            .unwrap_or(section);
        let (headers, content) = match memchr::memmem::find(section, b"\r\n\r\n") {
            Some(at) => (&section[..at], &section[at + 4..]),
            None => {
                let at = memchr::memmem::find(section, b"\n\n")?;
                (&section[..at], &section[at + 2..])
            }
        };
        let (name, filename) = content_disposition(headers)?;
        parts.push(Part {
            name: Some(name),
            filename,
            content,
        });
        rest = &rest[next + delimiter.len()..];
    }
}

/// Reads `name` and `filename` from a part's `Content-Disposition: form-data` header.
fn content_disposition(headers: &[u8]) -> Option<(String, Option<String>)> {
    for line in headers.split(|&b| b == b'\n') {
        let line = trim(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if !trim(&line[..colon]).eq_ignore_ascii_case(b"content-disposition") {
            continue;
        }
        let value = &line[colon + 1..];
        let mut name = None;
        let mut filename = None;
        for parameter in value.split(|&b| b == b';') {
            let parameter = trim(parameter);
            let Some(at) = memchr::memchr(b'=', parameter) else {
                continue;
            };
            let key = trim(&parameter[..at]).to_ascii_lowercase();
            let raw = trim(&parameter[at + 1..]);
            let unquoted = raw
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(raw);
            let text = String::from_utf8_lossy(unquoted).into_owned();
            match key.as_slice() {
                b"name" => name = Some(text),
                b"filename" | b"filename*" => filename = Some(text),
                _ => {}
            }
        }
        return name.map(|name| (name, filename));
    }
    None
}

fn inspect_part(scan: &mut Scan<'_>, part: &Part<'_>, inspect_file_uploads: bool) {
    let name = part.name.as_deref().unwrap_or("");
    scan.value(
        name.as_bytes(),
        TargetKind::MultipartName,
        name,
        ValueOptions::PLAIN,
    );
    match &part.filename {
        Some(filename) => {
            scan.value(
                filename.as_bytes(),
                TargetKind::MultipartFilename,
                name,
                ValueOptions::PLAIN,
            );
            if inspect_file_uploads {
                let options = ValueOptions {
                    anomalies: false,
                    ..ValueOptions::PLAIN
                };
                scan.value(part.content, TargetKind::Multipart, name, options);
            }
        }
        None => scan.value(
            part.content,
            TargetKind::Multipart,
            name,
            ValueOptions::PLAIN,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_map_to_kinds() {
        assert_eq!(
            body_kind(Some(b"application/json; charset=utf-8")),
            Some(BodyKind::Json)
        );
        assert_eq!(
            body_kind(Some(b"application/vnd.api+json")),
            Some(BodyKind::Json)
        );
        assert_eq!(
            body_kind(Some(b"Application/X-WWW-Form-Urlencoded")),
            Some(BodyKind::Form)
        );
        assert_eq!(
            body_kind(Some(b"multipart/form-data; boundary=x")),
            Some(BodyKind::Multipart)
        );
        assert_eq!(body_kind(Some(b"text/plain")), Some(BodyKind::Text));
        assert_eq!(
            body_kind(Some(b"application/soap+xml")),
            Some(BodyKind::Text)
        );
        assert_eq!(body_kind(None), Some(BodyKind::Text));
        assert_eq!(body_kind(Some(b"image/png")), None);
        assert_eq!(
            body_kind(Some(b"application/octet-stream")),
            Some(BodyKind::Other)
        );
    }

    #[test]
    fn conflicting_content_types() {
        let json: &[u8] = b"application/json";
        let text: &[u8] = b"text/plain";
        assert_eq!(
            plan(&[("content-type", json), ("content-type", text)], 10, 413),
            BodyPlan::ConflictingContentType
        );
        assert_eq!(
            plan(
                &[("content-type", b"application/json, text/plain")],
                10,
                413
            ),
            BodyPlan::ConflictingContentType
        );
        assert_eq!(
            plan(&[("content-type", json), ("content-type", json)], 10, 413),
            BodyPlan::Inspect {
                kind: BodyKind::Json,
                encoding: ContentEncoding::Identity,
                max_bytes: 10,
                over_limit_status: 413
            }
        );
        assert_eq!(
            plan(
                &[("content-type", b"multipart/form-data; boundary=\"a,b\"")],
                10,
                413
            ),
            BodyPlan::Inspect {
                kind: BodyKind::Multipart,
                encoding: ContentEncoding::Identity,
                max_bytes: 10,
                over_limit_status: 413
            }
        );
        assert_eq!(
            plan(&[("content-type", b"image/png")], 10, 413),
            BodyPlan::Skip
        );
    }

    #[test]
    fn json_number_grammar() {
        for valid in ["0", "-0", "12", "-3.25", "1e10", "2.5E-3", "7e+2"] {
            assert!(JsonWalker::new(valid).number().is_ok(), "{valid}");
        }
        for invalid in ["-", "1.", ".5", "1e", "-x"] {
            let mut walker = JsonWalker::new(invalid);
            let accepted = walker.number().is_ok() && walker.pos == invalid.len();
            assert!(!accepted, "{invalid}");
        }
    }

    #[test]
    fn boundary_parameter_forms() {
        assert_eq!(
            boundary_parameter(b"multipart/form-data; boundary=abc").as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(
            boundary_parameter(b"multipart/form-data; BOUNDARY=\"a b\"").as_deref(),
            Some(&b"a b"[..])
        );
        assert_eq!(boundary_parameter(b"multipart/form-data"), None);
    }

    #[test]
    fn multipart_parts_split() {
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--xyz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\nContent-Type: text/plain\r\n\r\nfile body\r\n--xyz--\r\n";
        let parts = multipart_parts(body, b"xyz").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name.as_deref(), Some("a"));
        assert_eq!(parts[0].content, b"hello");
        assert_eq!(parts[1].filename.as_deref(), Some("x.txt"));
        assert_eq!(parts[1].content, b"file body");
    }

    #[test]
    fn multipart_malformed() {
        assert!(multipart_parts(b"no delimiter", b"xyz").is_none());
        assert!(multipart_parts(
            b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
            b"xyz"
        )
        .is_none());
        assert!(multipart_parts(b"--xyz\r\nX: y\r\n\r\nv\r\n--xyz--", b"xyz").is_none());
    }
}
