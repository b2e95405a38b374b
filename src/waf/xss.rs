//! Cross-site scripting detector: an HTML tag and attribute scanner plus checks for script
//! URIs, attribute and JavaScript string break-outs, and script sinks.
//!
//! Tags are read the way a browser's tokenizer starts them: `<` or `</` directly followed by
//! an ASCII letter. Harmless markup such as `<b>` or `<br>` and comparisons such as `a < b`
//! do not match at the default paranoia level. Script-capable elements, event handler
//! attributes and script URIs match in any letter case.

use std::ops::Range;

use super::matchers::Matchers;
use super::rules::RuleId;
use super::sqli::Hit;

/// Elements that run or load script or change how the page resolves URLs.
const SCRIPT_TAGS: &[&str] = &[
    "applet", "base", "embed", "frame", "frameset", "iframe", "import", "link", "meta", "object",
    "portal", "script",
];

/// Elements that carry scripts in many published payloads but are harmless alone.
const RISKY_TAGS: &[&str] = &[
    "form",
    "isindex",
    "math",
    "noembed",
    "noscript",
    "plaintext",
    "style",
    "svg",
    "template",
    "xmp",
];

/// Event handler attribute names of HTML, SVG and legacy browsers. Sorted.
const EVENT_HANDLERS: &[&str] = &[
    "onabort",
    "onactivate",
    "onafterprint",
    "onanimationcancel",
    "onanimationend",
    "onanimationiteration",
    "onanimationstart",
    "onauxclick",
    "onbeforeactivate",
    "onbeforecopy",
    "onbeforecut",
    "onbeforeinput",
    "onbeforepaste",
    "onbeforeprint",
    "onbeforetoggle",
    "onbeforeunload",
    "onbegin",
    "onblur",
    "onbounce",
    "oncancel",
    "oncanplay",
    "oncanplaythrough",
    "onchange",
    "onclick",
    "onclose",
    "oncontentvisibilityautostatechange",
    "oncontextmenu",
    "oncopy",
    "oncuechange",
    "oncut",
    "ondblclick",
    "ondrag",
    "ondragend",
    "ondragenter",
    "ondragleave",
    "ondragover",
    "ondragstart",
    "ondrop",
    "ondurationchange",
    "onemptied",
    "onend",
    "onended",
    "onerror",
    "onfilterchange",
    "onfinish",
    "onfocus",
    "onfocusin",
    "onfocusout",
    "onformdata",
    "onfullscreenchange",
    "onhashchange",
    "oninput",
    "oninvalid",
    "onkeydown",
    "onkeypress",
    "onkeyup",
    "onload",
    "onloadeddata",
    "onloadedmetadata",
    "onloadend",
    "onloadstart",
    "onmessage",
    "onmousedown",
    "onmouseenter",
    "onmouseleave",
    "onmousemove",
    "onmouseout",
    "onmouseover",
    "onmouseup",
    "onmousewheel",
    "onmove",
    "onmoveend",
    "onmovestart",
    "onoffline",
    "ononline",
    "onpagehide",
    "onpageshow",
    "onpaste",
    "onpause",
    "onplay",
    "onplaying",
    "onpointercancel",
    "onpointerdown",
    "onpointerenter",
    "onpointerleave",
    "onpointermove",
    "onpointerout",
    "onpointerover",
    "onpointerrawupdate",
    "onpointerup",
    "onpopstate",
    "onprogress",
    "onpropertychange",
    "onratechange",
    "onreadystatechange",
    "onrepeat",
    "onreset",
    "onresize",
    "onscroll",
    "onscrollend",
    "onsearch",
    "onseeked",
    "onseeking",
    "onselect",
    "onselectionchange",
    "onselectstart",
    "onshow",
    "onstart",
    "onstorage",
    "onsubmit",
    "onsuspend",
    "ontimeupdate",
    "ontoggle",
    "ontouchcancel",
    "ontouchend",
    "ontouchmove",
    "ontouchstart",
    "ontransitioncancel",
    "ontransitionend",
    "ontransitionrun",
    "ontransitionstart",
    "onunload",
    "onvolumechange",
    "onwaiting",
    "onwebkitanimationend",
    "onwebkitanimationiteration",
    "onwebkitanimationstart",
    "onwebkittransitionend",
    "onwheel",
];

/// JavaScript names whose call or use is the usual goal of a payload.
const SINKS: &[&str] = &[
    "alert",
    "atob",
    "confirm",
    "constructor",
    "document",
    "eval",
    "fetch",
    "function",
    "import",
    "location",
    "parent",
    "print",
    "prompt",
    "self",
    "setinterval",
    "settimeout",
    "string",
    "top",
    "window",
];

fn contains_ignore_case(list: &[&str], name: &[u8]) -> bool {
    name.len() <= 40
        && list
            .iter()
            .any(|candidate| candidate.as_bytes().eq_ignore_ascii_case(name))
}

fn is_event_handler(name: &[u8]) -> bool {
    if name.len() > 40 || name.len() < 5 {
        return false;
    }
    let mut buffer = [0u8; 40];
    for (slot, byte) in buffer.iter_mut().zip(name) {
        *slot = byte.to_ascii_lowercase();
    }
    let lower = &buffer[..name.len()];
    EVENT_HANDLERS
        .binary_search_by(|candidate| candidate.as_bytes().cmp(lower))
        .is_ok()
}

fn looks_like_handler_name(name: &[u8]) -> bool {
    name.len() >= 5
        && name[..2].eq_ignore_ascii_case(b"on")
        && name[2..].iter().all(|b| b.is_ascii_alphabetic())
}

/// Maximum bytes of one tag, name and attributes, that are read. Attributes past it are
/// not inspected as part of that tag.
const MAX_TAG_BYTES: usize = 2048;

/// Function names reported by the sink-call rule when called.
pub(crate) const SINK_CALLS: &[&str] = &[
    "alert",
    "confirm",
    "prompt",
    "eval",
    "fromcharcode",
    "settimeout",
    "setinterval",
];

/// Property names reported by the sink-call rule wherever they appear.
pub(crate) const SINK_PROPERTIES: &[&str] = &[
    "document.cookie",
    "document.domain",
    "document.write",
    "window.location",
    "document.location",
    ".innerhtml",
];

/// Trigger characters present in a value, so that checks without them are skipped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hints {
    pub less_than: bool,
    pub colon: bool,
    /// `'`, `"` or a backtick.
    pub quote: bool,
    pub equals: bool,
    pub paren: bool,
    pub backtick: bool,
    pub dot: bool,
    pub dash: bool,
}

#[cfg(test)]
impl Hints {
    pub(crate) const ALL: Hints = Hints {
        less_than: true,
        colon: true,
        quote: true,
        equals: true,
        paren: true,
        backtick: true,
        dot: true,
        dash: true,
    };
}

/// XSS detector for one decoded value.
pub(crate) struct Detector<'a> {
    bytes: &'a [u8],
    matchers: &'a Matchers,
}

/// Kind of URI scheme found by [`Detector::script_scheme`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scheme {
    Script,
    DataHtml,
}

impl<'a> Detector<'a> {
    pub(crate) fn new(text: &'a str, matchers: &'a Matchers) -> Self {
        Detector {
            bytes: text.as_bytes(),
            matchers,
        }
    }

    fn push(hits: &mut Vec<Hit>, rule: RuleId, span: Range<usize>) {
        if !hits.iter().any(|(existing, _)| *existing == rule) {
            hits.push((rule, span));
        }
    }

    #[cfg(test)]
    pub(crate) fn detect(&self, hits: &mut Vec<Hit>) {
        self.detect_with(Hints::ALL, hits);
    }

    /// Runs the checks whose trigger characters `hints` reports as present.
    pub(crate) fn detect_with(&self, hints: Hints, hits: &mut Vec<Hit>) {
        let mut tag_found = false;
        if hints.less_than {
            // A `<` inside the attributes of a tag already read starts no tag, as in a
            // browser. Skipping those keeps the scan linear.
            let mut resume = 0;
            for at in memchr::memchr_iter(b'<', self.bytes) {
                if at < resume {
                    continue;
                }
                if let Some(end) = self.tag(at, hits) {
                    tag_found = true;
                    resume = end;
                }
            }
        }
        if hints.colon {
            for at in memchr::memchr_iter(b':', self.bytes) {
                self.scheme_before_colon(at, hits);
            }
        }
        if hints.quote {
            if !tag_found && hints.equals {
                self.attribute_break(hits);
            }
            for at in memchr::memchr3_iter(b'\'', b'"', b'`', self.bytes) {
                self.js_string_break(at, hits);
            }
        }
        // A sink call needs `(` or a backtick after the name, and every sink property
        // contains a `.`.
        if hints.paren || hints.backtick || hints.dot {
            self.sink_calls(hits);
        }
        if hints.paren || hints.dash {
            self.css_and_templates(hints, hits);
        }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    /// Reads a tag starting at `<`. Returns the end of the part that was read, or `None`
    /// when no tag starts there.
    fn tag(&self, open: usize, hits: &mut Vec<Hit>) -> Option<usize> {
        let mut i = open + 1;
        if self.byte(i) == Some(b'/') {
            i += 1;
        }
        if !self.byte(i).is_some_and(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        let limit = (open + MAX_TAG_BYTES).min(self.bytes.len());
        let name_start = i;
        // A `<` ends the name here, unlike in a browser, so that `<scr<script>` still
        // shows the inner tag.
        while i < limit
            && self
                .byte(i)
                .is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'/' | b'>' | b'<'))
        {
            i += 1;
        }
        let name = &self.bytes[name_start..i];
        let tag_end = memchr::memchr(b'>', &self.bytes[i..limit]).map_or(limit, |p| i + p + 1);
        let tag_end = if self.byte(i) == Some(b'<') {
            i
        } else {
            tag_end
        };
        let span = open..tag_end.min(open + 64).max(i);
        if contains_ignore_case(SCRIPT_TAGS, name) {
            Self::push(hits, RuleId::XSS_SCRIPT_TAG, span.clone());
        } else if contains_ignore_case(RISKY_TAGS, name) {
            Self::push(hits, RuleId::XSS_RISKY_TAG, span.clone());
        }
        Self::push(hits, RuleId::XSS_ANY_TAG, span);
        self.attributes(i, tag_end, hits);
        Some(tag_end)
    }

    /// Reads the attributes between `from` and `to` (the tag's `>` or the end of the value).
    fn attributes(&self, from: usize, to: usize, hits: &mut Vec<Hit>) {
        let mut i = from;
        while i < to {
            while i < to
                && self
                    .byte(i)
                    .is_some_and(|b| b.is_ascii_whitespace() || b == b'/')
            {
                i += 1;
            }
            let name_start = i;
            while i < to
                && self
                    .byte(i)
                    .is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'/' | b'>' | b'='))
            {
                i += 1;
            }
            let name = &self.bytes[name_start..i];
            while i < to && self.byte(i).is_some_and(|b| b.is_ascii_whitespace()) {
                i += 1;
            }
            let mut value = i..i;
            if self.byte(i) == Some(b'=') {
                i += 1;
                while i < to && self.byte(i).is_some_and(|b| b.is_ascii_whitespace()) {
                    i += 1;
                }
                match self.byte(i) {
                    Some(quote @ (b'"' | b'\'' | b'`')) => {
                        let start = (i + 1).min(to);
                        let end =
                            memchr::memchr(quote, &self.bytes[start..to]).map_or(to, |p| start + p);
                        value = start..end;
                        i = end + 1;
                    }
                    _ => {
                        let start = i;
                        while i < to
                            && self
                                .byte(i)
                                .is_some_and(|b| !b.is_ascii_whitespace() && b != b'>')
                        {
                            i += 1;
                        }
                        value = start..i;
                    }
                }
            }
            if name.is_empty() {
                i += 1;
                continue;
            }
            let span = name_start..value.end.max(name_start + name.len()).min(self.bytes.len());
            if is_event_handler(name) {
                Self::push(hits, RuleId::XSS_EVENT_HANDLER, span.clone());
            } else if looks_like_handler_name(name) {
                Self::push(hits, RuleId::XSS_GENERIC_HANDLER, span.clone());
            }
            if !value.is_empty() {
                if self.script_scheme(value.start).is_some() {
                    Self::push(hits, RuleId::XSS_SCRIPT_URI, span.clone());
                }
                if name.eq_ignore_ascii_case(b"style") && self.css_payload(value.clone()) {
                    Self::push(hits, RuleId::XSS_CSS, span);
                }
            }
        }
    }

    /// Reads a URI scheme at `start`, as a browser does: leading control characters and
    /// spaces are ignored, and tabs and newlines inside the scheme are removed.
    fn script_scheme(&self, start: usize) -> Option<(Scheme, usize)> {
        let mut i = start;
        while self.byte(i).is_some_and(|b| b <= b' ') {
            i += 1;
        }
        let mut scheme = [0u8; 12];
        let mut length = 0;
        while let Some(byte) = self.byte(i) {
            if matches!(byte, b'\t' | b'\n' | b'\r') {
                i += 1;
                continue;
            }
            if !byte.is_ascii_alphabetic() || length == scheme.len() {
                break;
            }
            scheme[length] = byte.to_ascii_lowercase();
            length += 1;
            i += 1;
        }
        if self.byte(i) != Some(b':') {
            return None;
        }
        match &scheme[..length] {
            b"javascript" | b"vbscript" | b"livescript" | b"mocha" => Some((Scheme::Script, i + 1)),
            b"data" if self.data_is_html(i + 1) => Some((Scheme::DataHtml, i + 1)),
            _ => None,
        }
    }

    fn data_is_html(&self, start: usize) -> bool {
        let mut media = [0u8; 24];
        let mut length = 0;
        let mut i = start;
        while let Some(byte) = self.byte(i) {
            i += 1;
            if byte.is_ascii_whitespace() {
                continue;
            }
            if matches!(byte, b';' | b',') || length == media.len() {
                break;
            }
            media[length] = byte.to_ascii_lowercase();
            length += 1;
        }
        matches!(
            &media[..length],
            b"text/html"
                | b"image/svg+xml"
                | b"text/javascript"
                | b"application/javascript"
                | b"application/x-javascript"
                | b"application/xhtml+xml"
                | b"application/ecmascript"
                | b"text/xml"
        )
    }

    /// Finds `javascript:` and HTML `data:` URIs outside tags, as in a redirect parameter
    /// or a markdown link. A script scheme counts when code follows it, so that the book
    /// title "JavaScript: The Good Parts" passes.
    fn scheme_before_colon(&self, colon: usize, hits: &mut Vec<Hit>) {
        let mut start = colon;
        let mut letters = 0;
        while start > 0 && letters < 14 {
            let byte = self.bytes[start - 1];
            if byte.is_ascii_alphabetic() {
                letters += 1;
            } else if !matches!(byte, b'\t' | b'\n' | b'\r') {
                break;
            }
            start -= 1;
        }
        if letters < 4 {
            return;
        }
        if start > 0 && self.bytes[start - 1].is_ascii_alphanumeric() {
            return;
        }
        let Some((scheme, body)) = self.script_scheme(start) else {
            return;
        };
        if scheme == Scheme::Script && !self.code_follows(body) {
            return;
        }
        let end = (body + 24).min(self.bytes.len());
        Self::push(hits, RuleId::XSS_SCRIPT_URI, start..end);
    }

    /// Returns whether the first word after `at` looks like code rather than prose.
    fn code_follows(&self, at: usize) -> bool {
        let rest = &self.bytes[at.min(self.bytes.len())..];
        let trimmed_start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
        let word_end = rest[trimmed_start..]
            .iter()
            .position(|&b| b == b' ')
            .map_or(rest.len(), |p| trimmed_start + p);
        let word = &rest[trimmed_start..word_end];
        word.starts_with(b"//")
            || word.starts_with(b"/*")
            || word
                .iter()
                .any(|b| matches!(b, b'(' | b'`' | b'=' | b'[' | b'.' | b';' | b'%' | b'\\'))
    }

    /// Finds an event handler that follows a quote, as in `" onfocus="alert(1)`, which
    /// closes the attribute the value was placed in and adds a handler to the element.
    fn attribute_break(&self, hits: &mut Vec<Hit>) {
        let Some(first_quote) = memchr::memchr3(b'"', b'\'', b'`', self.bytes) else {
            return;
        };
        for equals in memchr::memchr_iter(b'=', &self.bytes[first_quote..]) {
            let equals = first_quote + equals;
            let mut end = equals;
            while end > 0 && self.bytes[end - 1].is_ascii_whitespace() {
                end -= 1;
            }
            let mut start = end;
            while start > 0 && self.bytes[start - 1].is_ascii_alphabetic() {
                start -= 1;
            }
            if start == end || start <= first_quote {
                continue;
            }
            let before = self.bytes[start - 1];
            if !(before.is_ascii_whitespace()
                || matches!(before, b'"' | b'\'' | b'`' | b'/' | b';'))
            {
                continue;
            }
            if !is_event_handler(&self.bytes[start..end]) {
                continue;
            }
            if self.handler_value_is_code(equals + 1) {
                let span_end = (equals + 24).min(self.bytes.len());
                Self::push(hits, RuleId::XSS_ATTRIBUTE_BREAK, start..span_end);
                return;
            }
        }
    }

    fn handler_value_is_code(&self, at: usize) -> bool {
        let rest = &self.bytes[at.min(self.bytes.len())..];
        let value = rest.iter().take(64);
        let mut saw_letter = false;
        for &byte in value {
            match byte {
                b'(' | b'`' if saw_letter => return true,
                b'=' | b'.' | b'[' if saw_letter => return true,
                b if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' => saw_letter = true,
                b'"' | b'\'' | b' ' if !saw_letter => {}
                _ => {}
            }
        }
        false
    }

    /// Finds a quote followed by an operator and a script sink, as in `';alert(1)//` or
    /// `"-alert(1)-"`, which ends a JavaScript string literal and calls code.
    fn js_string_break(&self, quote: usize, hits: &mut Vec<Hit>) {
        let mut i = quote + 1;
        let mut punctuation = 0;
        while let Some(byte) = self.byte(i) {
            if byte.is_ascii_whitespace() {
                i += 1;
            } else if matches!(
                byte,
                b';' | b'+'
                    | b'-'
                    | b'*'
                    | b'/'
                    | b'|'
                    | b'&'
                    | b','
                    | b')'
                    | b'}'
                    | b']'
                    | b'^'
                    | b'%'
            ) {
                punctuation += 1;
                i += 1;
            } else {
                break;
            }
            if punctuation > 4 {
                return;
            }
        }
        if punctuation == 0 {
            if self.bytes[i.min(self.bytes.len())..].len() >= 8
                && self.bytes[i..]
                    .get(..8)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"</script"))
            {
                Self::push(
                    hits,
                    RuleId::XSS_JS_BREAK,
                    quote..(i + 8).min(self.bytes.len()),
                );
            }
            return;
        }
        if let Some(end) = self.sink_at(i) {
            Self::push(hits, RuleId::XSS_JS_BREAK, quote..end);
        }
    }

    /// Returns the end of a sink use at `at`: a sink name followed by `(`, `` ` ``, `.`,
    /// `[` or `=`.
    fn sink_at(&self, at: usize) -> Option<usize> {
        let mut end = at;
        while self
            .byte(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        {
            end += 1;
        }
        if end == at || !contains_ignore_case(SINKS, &self.bytes[at..end]) {
            return None;
        }
        let mut next = end;
        while self.byte(next).is_some_and(|b| b.is_ascii_whitespace()) {
            next += 1;
        }
        matches!(self.byte(next), Some(b'(' | b'`' | b'.' | b'[' | b'='))
            .then_some((next + 1).min(self.bytes.len()))
    }

    /// Finds calls such as `alert(1)`, `eval(`, `document.cookie` and tagged templates
    /// such as ``alert`1` `` without any break-out around them.
    fn sink_calls(&self, hits: &mut Vec<Hit>) {
        for found in self.matchers.sinks.find_iter(self.bytes) {
            let start = found.start();
            if start > 0 && self.bytes[start - 1].is_ascii_alphanumeric() {
                continue;
            }
            let end = found.end();
            if self
                .bytes
                .get(end)
                .is_some_and(|b| b.is_ascii_alphanumeric())
            {
                continue;
            }
            let is_property = found.pattern().as_usize() >= SINK_CALLS.len();
            let mut next = end;
            while self.byte(next).is_some_and(|b| b.is_ascii_whitespace()) {
                next += 1;
            }
            if is_property || matches!(self.byte(next), Some(b'(' | b'`')) {
                Self::push(
                    hits,
                    RuleId::XSS_SINK_CALL,
                    start..(next + 1).min(self.bytes.len()),
                );
                return;
            }
        }
    }

    fn css_payload(&self, range: Range<usize>) -> bool {
        let value = &self.bytes[range];
        find_ignore_case(value, b"expression").is_some_and(|at| {
            value[at + 10..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'(')
        }) || find_ignore_case(value, b"behavior").is_some()
            || find_ignore_case(value, b"-moz-binding").is_some()
            || find_ignore_case(value, b"javascript:").is_some()
    }

    /// CSS `expression(`, `behavior:` and `-moz-binding` anywhere, and client-side template
    /// expressions that reach the Function constructor. Each search runs only when `hints`
    /// show the punctuation that its marker or its surrounding check requires.
    fn css_and_templates(&self, hints: Hints, hits: &mut Vec<Hit>) {
        let css_call = hints.colon && hints.paren;
        let expression = if css_call {
            find_ignore_case(self.bytes, b"expression")
        } else {
            None
        };
        if let Some(at) = expression {
            let before = self.bytes[..at]
                .iter()
                .rev()
                .find(|b| !b.is_ascii_whitespace());
            let after = self.bytes[at + 10..]
                .iter()
                .find(|b| !b.is_ascii_whitespace());
            if before == Some(&b':') && after == Some(&b'(') {
                Self::push(hits, RuleId::XSS_CSS, at..(at + 11).min(self.bytes.len()));
            }
        }
        let markers: &[&[u8]] = match (hints.dash, css_call) {
            (true, true) => &[b"-moz-binding", b"behavior:url(", b"behavior: url("],
            (true, false) => &[b"-moz-binding"],
            (false, true) => &[b"behavior:url(", b"behavior: url("],
            (false, false) => &[],
        };
        for marker in markers {
            if let Some(at) = find_ignore_case(self.bytes, marker) {
                Self::push(hits, RuleId::XSS_CSS, at..at + marker.len());
            }
        }
        // A chained constructor contains a `.`, and a called one a `(`.
        let constructor = if hints.dot || hints.paren {
            find_ignore_case(self.bytes, b"constructor")
        } else {
            None
        };
        if let Some(at) = constructor {
            let in_template = memchr::memmem::find(self.bytes, b"{{").is_some()
                || memchr::memmem::find(self.bytes, b"${").is_some();
            let chained = find_ignore_case(self.bytes, b"constructor.constructor").is_some()
                || find_ignore_case(self.bytes, b"constructor\").constructor").is_some()
                || find_ignore_case(self.bytes, b"constructor').constructor").is_some();
            let called = self.bytes[at + 11..]
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                == Some(&b'(');
            if chained || (in_template && called) {
                Self::push(
                    hits,
                    RuleId::XSS_TEMPLATE,
                    at..(at + 23).min(self.bytes.len()),
                );
            }
        }
    }
}

/// Finds `needle` (lowercase ASCII) in `haystack`, ignoring ASCII case.
pub(crate) fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    if haystack.len() < needle.len() {
        return None;
    }
    let upper = first.to_ascii_uppercase();
    let last_start = haystack.len() - needle.len();
    memchr::memchr2_iter(first, upper, &haystack[..=last_start])
        .find(|&at| haystack[at..at + needle.len()].eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<u32> {
        let matchers = Matchers::build().unwrap();
        let mut hits = Vec::new();
        Detector::new(text, &matchers).detect(&mut hits);
        let mut ids: Vec<u32> = hits.iter().map(|(rule, _)| rule.0).collect();
        ids.sort_unstable();
        ids
    }

    fn level_one_score(text: &str) -> u32 {
        rules(text)
            .into_iter()
            .filter_map(|id| RuleId(id).info())
            .filter(|info| info.paranoia == 1)
            .map(|info| info.severity.score())
            .sum()
    }

    #[test]
    fn event_handlers_sorted() {
        for pair in EVENT_HANDLERS.windows(2) {
            assert!(pair[0] < pair[1], "{} before {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn script_tags() {
        assert!(rules("<script>alert(1)</script>").contains(&6001));
        assert!(rules("<ScRiPt/src=//x.example/a.js>").contains(&6001));
        assert!(rules("<iframe src=x>").contains(&6001));
        assert!(rules("</script><script>").contains(&6001));
        assert!(rules("<svg>").contains(&6008));
    }

    #[test]
    fn event_handlers_in_tags() {
        for attack in [
            "<img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "<body onload=alert(1)>",
            "<details open ontoggle=alert(1)>",
            "<img src=\"x\" onerror =\"alert(1)\"",
            "<x onclick=alert(1)>click",
        ] {
            assert!(
                rules(attack).contains(&6002),
                "{attack}: {:?}",
                rules(attack)
            );
        }
        assert!(rules("<x onfoobar=1>").contains(&6010));
    }

    #[test]
    fn script_uris() {
        for attack in [
            "javascript:alert(1)",
            "  JaVaScRiPt:alert(document.domain)",
            "java\tscript:alert(1)",
            "javascript://\nalert(1)",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href='  vbscript:msgbox(1)'>",
            "data:text/html;base64,PHNjcmlwdD4=",
            "[click](javascript:alert(1))",
            "<object data=\"data:text/html,<script>alert(1)</script>\">",
        ] {
            assert!(
                rules(attack).contains(&6003),
                "{attack}: {:?}",
                rules(attack)
            );
        }
    }

    #[test]
    fn attribute_and_string_breaks() {
        assert!(rules("\" onmouseover=\"alert(1)").contains(&6004));
        assert!(rules("' autofocus onfocus='alert(document.cookie)").contains(&6004));
        assert!(rules("';alert(1)//").contains(&6005));
        assert!(rules("\"-alert(1)-\"").contains(&6005));
        assert!(rules("'+confirm(1)+'").contains(&6005));
        assert!(rules("\";top['al'+'ert'](1);//").contains(&6005));
        assert!(rules("'</script><script>alert(1)</script>").contains(&6005));
    }

    #[test]
    fn css_and_template_payloads() {
        assert!(rules("<div style=\"width:expression(alert(1))\">").contains(&6006));
        assert!(rules("background:url(x);-moz-binding:url(x)").contains(&6006));
        assert!(rules("{{constructor.constructor('alert(1)')()}}").contains(&6007));
        assert!(rules("alert`1`").contains(&6009));
    }

    #[test]
    fn benign_markup_and_prose() {
        for benign in [
            "a < b and c > d",
            "x<3",
            "I <3 this",
            "<b>bold</b> and <i>italic</i>",
            "line<br>break",
            "<a href=\"https://example.com/docs\">docs</a>",
            "JavaScript: The Good Parts",
            "javascript: how does it work",
            "Tom & Jerry",
            "click \"Save\" on the toolbar",
            "set online=true",
            "data: 1, 2, 3",
            "regular expression (regex) tutorial",
            "the constructor of the class",
            "the \"document\" is ready",
            "it's \"alert\" mode",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
        ] {
            assert_eq!(level_one_score(benign), 0, "{benign}: {:?}", rules(benign));
        }
    }

    #[test]
    fn random_input_never_panics() {
        let alphabet = b"<>/=\"'` onerrorscript:javaSCRIPTdata(){}\t\n;+-";
        let matchers = Matchers::build().unwrap();
        let mut state: u64 = 0x1234_5678_9ABC_DEF1;
        for _ in 0..3000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let length = (state % 48) as usize;
            let mut raw = String::with_capacity(length);
            for _ in 0..length {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                raw.push(alphabet[(state % alphabet.len() as u64) as usize] as char);
            }
            let mut hits = Vec::new();
            Detector::new(&raw, &matchers).detect(&mut hits);
            for (_, span) in hits {
                assert!(span.start <= span.end, "{raw:?}");
                assert!(span.end <= raw.len(), "{raw:?}");
            }
        }
    }
}
