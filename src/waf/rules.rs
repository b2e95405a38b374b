//! The rule table: every detection the engine can report, with its stable id.
//!
//! Ids are grouped by thousands: 1xxx protocol and encoding anomalies, 2xxx SQL injection,
//! 3xxx path traversal and file access, 4xxx command injection, 5xxx CRLF and header
//! injection, 6xxx cross-site scripting. An id is never reused for a different detection.

use serde::Serialize;

/// Attack class of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Encoding anomalies, null bytes and malformed bodies.
    Protocol,
    Sqli,
    Xss,
    PathTraversal,
    CommandInjection,
    HeaderInjection,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Protocol => "protocol",
            Category::Sqli => "sqli",
            Category::Xss => "xss",
            Category::PathTraversal => "path-traversal",
            Category::CommandInjection => "command-injection",
            Category::HeaderInjection => "header-injection",
        }
    }
}

/// Weight of a finding; [`Severity::score`] is what adds up towards the route threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Notice,
    Warning,
    Error,
    Critical,
}

impl Severity {
    /// Anomaly score: notice 2, warning 3, error 4, critical 5.
    pub fn score(self) -> u32 {
        match self {
            Severity::Notice => 2,
            Severity::Warning => 3,
            Severity::Error => 4,
            Severity::Critical => 5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// Static description of one rule.
#[derive(Debug)]
pub struct RuleInfo {
    pub id: u32,
    pub category: Category,
    pub severity: Severity,
    /// Lowest paranoia level (1 to 3) at which the rule is active.
    pub paranoia: u8,
    pub description: &'static str,
}

/// Identifier of a rule, used internally by the detectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct RuleId(pub u32);

macro_rules! rules {
    ($( $name:ident = $id:literal, $cat:ident, $sev:ident, $pl:literal, $desc:literal; )*) => {
        impl RuleId {
            $( pub(crate) const $name: RuleId = RuleId($id); )*
        }

        /// Every rule, sorted by id.
        pub static RULES: &[RuleInfo] = &[
            $( RuleInfo {
                id: $id,
                category: Category::$cat,
                severity: Severity::$sev,
                paranoia: $pl,
                description: $desc,
            }, )*
        ];
    };
}

rules! {
    INVALID_UTF8 = 1001, Protocol, Warning, 1,
        "invalid UTF-8 after percent-decoding";
    OVERLONG_UTF8 = 1002, Protocol, Critical, 1,
        "overlong UTF-8 encoding of a character";
    NULL_BYTE = 1003, Protocol, Critical, 1,
        "null byte in the path, the query, a header or a cookie";
    NULL_BYTE_BODY = 1004, Protocol, Warning, 1,
        "null byte in a body value";
    MULTIPLE_ENCODING = 1005, Protocol, Warning, 2,
        "value percent-encoded more than once";
    RESIDUAL_ENCODING = 1006, Protocol, Warning, 1,
        "value still percent-encoded after the configured decoding passes";
    UNICODE_PERCENT = 1007, Protocol, Warning, 2,
        "non-standard %uXXXX encoding";
    DECODE_LIMIT = 1008, Protocol, Warning, 1,
        "decoded value exceeded the size bound and was truncated";
    INVALID_JSON = 1009, Protocol, Warning, 1,
        "body declared as JSON is not valid JSON or nests too deep; inspected as text";
    MALFORMED_MULTIPART = 1010, Protocol, Warning, 1,
        "malformed multipart/form-data body; inspected as text";
    BODY_OVER_LIMIT = 1011, Protocol, Critical, 1,
        "body longer than the inspection limit was handed to the inspector";
    UNSUPPORTED_ENCODING = 1012, Protocol, Critical, 1,
        "request body in a content coding the inspector cannot decode (br, zstd, unknown or stacked codings)";
    BAD_COMPRESSED_BODY = 1013, Protocol, Critical, 1,
        "compressed body that is corrupt or expands past the body limit or the ratio bound";
    SQLI_BOOLEAN = 2001, Sqli, Critical, 1,
        "boolean or tautology condition after a string or number break";
    SQLI_UNION = 2002, Sqli, Critical, 1,
        "UNION SELECT with a select list";
    SQLI_STACKED = 2003, Sqli, Critical, 1,
        "stacked query: a statement after a semicolon";
    SQLI_COMMENT_BREAK = 2004, Sqli, Critical, 1,
        "comment that truncates the query right after a string break";
    SQLI_TIME_DELAY = 2005, Sqli, Critical, 1,
        "time-delay function (SLEEP, BENCHMARK, PG_SLEEP, WAITFOR DELAY)";
    SQLI_EXEC_COMMENT = 2006, Sqli, Critical, 1,
        "MySQL executable comment /*! ... */";
    SQLI_CLAUSE = 2007, Sqli, Critical, 1,
        "ORDER BY, GROUP BY, HAVING, LIMIT, PROCEDURE or INTO clause after a break";
    SQLI_PROBE = 2008, Sqli, Warning, 1,
        "schema or file probing (information_schema, @@version, LOAD_FILE, xp_cmdshell)";
    SQLI_SUBQUERY = 2009, Sqli, Critical, 1,
        "subquery or function call concatenated after a string break";
    SQLI_NUMERIC_COMMENT = 2010, Sqli, Warning, 2,
        "comment right after a leading number";
    SQLI_STATEMENT = 2011, Sqli, Warning, 2,
        "complete SQL statement without a break";
    SQLI_WEAK_COMMENT = 2012, Sqli, Warning, 2,
        "comment marker followed by text right after a string break";
    TRAVERSAL = 3001, PathTraversal, Critical, 1,
        "dot-dot traversal at the start of a value, in the path, or repeated";
    SENSITIVE_FILE = 3002, PathTraversal, Critical, 1,
        "well-known sensitive file or directory (/etc/passwd, win.ini, .git/)";
    TRAVERSAL_SINGLE = 3003, PathTraversal, Warning, 1,
        "single dot-dot segment inside a value";
    FILE_WRAPPER = 3004, PathTraversal, Critical, 1,
        "file or stream wrapper URL (file://, php://, phar://, expect://)";
    SENSITIVE_FILE_WEAK = 3005, PathTraversal, Warning, 2,
        "system file that is less often targeted (/etc/hosts, /var/log/)";
    CMD_SEPARATOR = 4001, CommandInjection, Critical, 1,
        "shell command after a command separator";
    CMD_SUBSTITUTION = 4002, CommandInjection, Critical, 1,
        "shell command substitution with backticks or $( )";
    CMD_REVERSE_SHELL = 4003, CommandInjection, Critical, 1,
        "reverse shell or download-and-execute pattern";
    CMD_OBFUSCATION = 4004, CommandInjection, Critical, 1,
        "shell obfuscation (${IFS}, brace expansion, ANSI-C quoting)";
    CMD_WINDOWS = 4005, CommandInjection, Critical, 1,
        "Windows command shell or PowerShell invocation";
    CMD_SHELL_PATH = 4006, CommandInjection, Warning, 1,
        "path of a Unix shell binary";
    CMD_JNDI = 4007, CommandInjection, Critical, 1,
        "Log4j JNDI or nested lookup expression";
    CMD_BODY_TEXT = 4008, CommandInjection, Warning, 1,
        "shell command in a markdown code span in prose, or after a newline in a body value";
    CRLF_HEADER = 5001, HeaderInjection, Critical, 1,
        "CR or LF followed by a header line or a status line";
    CRLF_HEAD = 5002, HeaderInjection, Error, 1,
        "CR or LF in the path, a header or a cookie";
    CRLF_QUERY = 5003, HeaderInjection, Notice, 2,
        "CR or LF in a query value";
    CRLF_BODY_HEADER = 5004, HeaderInjection, Warning, 2,
        "CR or LF followed by a header line in a body value";
    XSS_SCRIPT_TAG = 6001, Xss, Critical, 1,
        "script-capable element (script, iframe, object, embed, base, meta, link)";
    XSS_EVENT_HANDLER = 6002, Xss, Critical, 1,
        "event handler attribute inside a tag";
    XSS_SCRIPT_URI = 6003, Xss, Critical, 1,
        "javascript:, vbscript: or HTML data: URI";
    XSS_ATTRIBUTE_BREAK = 6004, Xss, Critical, 1,
        "attribute break-out with an event handler";
    XSS_JS_BREAK = 6005, Xss, Critical, 1,
        "JavaScript string break-out followed by a script sink";
    XSS_CSS = 6006, Xss, Critical, 1,
        "CSS expression(), behavior or -moz-binding";
    XSS_TEMPLATE = 6007, Xss, Critical, 1,
        "client-side template sandbox escape (constructor.constructor)";
    XSS_RISKY_TAG = 6008, Xss, Warning, 1,
        "element often used to carry scripts (svg, math, style, form)";
    XSS_SINK_CALL = 6009, Xss, Warning, 1,
        "call of a JavaScript sink (alert, eval, document.cookie)";
    XSS_GENERIC_HANDLER = 6010, Xss, Critical, 2,
        "attribute named like an event handler (on...) inside a tag";
    XSS_ANY_TAG = 6011, Xss, Warning, 3,
        "any HTML tag";
}

/// Returns the rule with id `id`, if there is one.
pub fn rule(id: u32) -> Option<&'static RuleInfo> {
    RULES
        .binary_search_by_key(&id, |rule| rule.id)
        .ok()
        .and_then(|index| RULES.get(index))
}

impl RuleId {
    pub(crate) fn info(self) -> Option<&'static RuleInfo> {
        rule(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_sorted_unique() {
        for pair in RULES.windows(2) {
            assert!(
                pair[0].id < pair[1].id,
                "{} before {}",
                pair[0].id,
                pair[1].id
            );
        }
    }

    #[test]
    fn rule_lookup_finds_every_id() {
        for info in RULES {
            assert_eq!(rule(info.id).map(|r| r.id), Some(info.id));
            assert!((1..=3).contains(&info.paranoia));
        }
        assert!(rule(99999).is_none());
    }
}
