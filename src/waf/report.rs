//! Findings, the per-request report and the verdict.

use serde::Serialize;

use super::config::{Mode, Policy};
use super::rules::{Category, Severity};

/// Maximum number of findings kept per request. Scores of later findings still add up.
pub const MAX_FINDINGS: usize = 32;

/// Maximum number of characters of the value shown in an excerpt.
pub const EXCERPT_CHARS: usize = 32;

/// Runs of at least this many token characters (letters, digits, `+/=_-`) are replaced in
/// excerpts, because they are more likely session ids or keys than attack text.
const SECRET_RUN: usize = 20;

/// One detection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule_id: u32,
    pub category: Category,
    pub severity: Severity,
    /// Where the value came from, such as `query:q`, `header:user-agent`,
    /// `body:json:/user/name`, `cookie:session` or `path`.
    pub target: String,
    /// Up to [`EXCERPT_CHARS`] characters of the decoded value around the match, with
    /// control characters escaped and long token-like runs replaced by `[redacted]`.
    pub excerpt: String,
}

/// The findings of one request and their summed score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub score: u32,
    pub findings: Vec<Finding>,
    /// Findings dropped because [`MAX_FINDINGS`] was reached.
    pub dropped_findings: u32,
    /// Bit `i` is set when exclusion `i` of the policy applies to this request's path.
    #[serde(skip)]
    pub(crate) active_exclusions: u128,
}

/// Outcome of a report under a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Score reached the threshold and the policy blocks.
    Block,
    /// Score reached the threshold but the policy only reports.
    DetectOnly,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            score: 0,
            findings: Vec::new(),
            dropped_findings: 0,
            active_exclusions: u128::MAX,
        }
    }
}

impl Report {
    /// Returns an empty report in which every exclusion applies. [`super::Waf::inspect_head`]
    /// narrows the exclusions to those whose path prefix matches the request.
    pub fn new() -> Self {
        Report::default()
    }

    /// Decides the outcome: the threshold is reached when `score >= threshold`.
    pub fn verdict(&self, policy: &Policy) -> Verdict {
        if policy.mode() == Mode::Off || self.score < policy.threshold() {
            return Verdict::Allow;
        }
        match policy.mode() {
            Mode::Block => Verdict::Block,
            Mode::Detect | Mode::Off => Verdict::DetectOnly,
        }
    }

    /// Rule ids of the findings, sorted and without duplicates, for the block response.
    pub fn rule_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.findings.iter().map(|f| f.rule_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub(crate) fn has(&self, rule_id: u32, target: &str) -> bool {
        self.findings
            .iter()
            .any(|f| f.rule_id == rule_id && f.target == target)
    }

    pub(crate) fn add(&mut self, finding: Finding) {
        self.score = self.score.saturating_add(finding.severity.score());
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(finding);
        } else {
            self.dropped_findings = self.dropped_findings.saturating_add(1);
        }
    }
}

fn is_token_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || matches!(ch, '+' | '/' | '=' | '_' | '-')
}

/// Builds the redacted excerpt of `text` around the byte range `span`.
pub(crate) fn excerpt(text: &str, span: std::ops::Range<usize>) -> String {
    let start = floor_char_boundary(text, span.start.saturating_sub(4).min(text.len()));
    let window: Vec<char> = text[start..].chars().take(EXCERPT_CHARS).collect();
    let mut out = String::with_capacity(EXCERPT_CHARS + 8);
    let mut i = 0;
    while i < window.len() {
        let run = window[i..]
            .iter()
            .take_while(|&&ch| is_token_char(ch))
            .count();
        if run >= SECRET_RUN {
            out.push_str("[redacted]");
            i += run;
            continue;
        }
        let ch = window[i];
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ch if ch.is_control() => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(ch)));
            }
            ch => out.push(ch),
        }
        i += 1;
    }
    out
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_bounded_and_escaped() {
        let text = format!("{}<script>\n\u{7}{}", "a ".repeat(40), "b ".repeat(40));
        let at = text.find('<').unwrap();
        let shown = excerpt(&text, at..at + 8);
        assert!(shown.contains("<script>\\n\\u{7}"), "{shown}");
        assert!(shown.chars().count() <= EXCERPT_CHARS * 6);
    }

    #[test]
    fn excerpt_redacts_token_runs() {
        let text = "' or 1=1 -- eyJhbGciOiJIUzI1NiJ9abcdefgh";
        let shown = excerpt(text, 0..8);
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(!shown.contains("eyJhbGci"), "{shown}");
    }

    #[test]
    fn excerpt_handles_multibyte_and_bad_spans() {
        let text = "ééé<script>";
        assert!(excerpt(text, 3..20).contains("<script>"));
        assert_eq!(excerpt("", 5..9), "");
    }

    #[test]
    fn report_caps_findings() {
        let mut report = Report::new();
        for i in 0..(MAX_FINDINGS + 5) {
            report.add(Finding {
                rule_id: 2001,
                category: Category::Sqli,
                severity: Severity::Critical,
                target: format!("query:q{i}"),
                excerpt: String::new(),
            });
        }
        assert_eq!(report.findings.len(), MAX_FINDINGS);
        assert_eq!(report.dropped_findings, 5);
        assert_eq!(report.score, 5 * (MAX_FINDINGS as u32 + 5));
        assert_eq!(report.rule_ids(), [2001]);
    }
}
