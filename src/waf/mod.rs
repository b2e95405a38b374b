//! Attack-pattern detection: SQL injection, cross-site scripting, path traversal, command
//! injection, CRLF injection and encoding anomalies in the request path, query, headers,
//! cookies and body.
//!
//! The inspector does no I/O and makes no proxy-wasm calls. The filter glue calls
//! [`Waf::inspect_head`] when the request headers arrive, asks [`Waf::body_plan`] whether
//! to buffer the body, passes the whole buffered body to [`Waf::inspect_body`], and turns
//! [`Report::verdict`] into a response. Rule ids, scoring, exclusions and the decoding
//! pipeline are documented in `docs/waf.md`.

mod body;
mod cmdi;
mod config;
mod decode;
mod encoding;
mod head;
mod inspect;
mod matchers;
mod report;
mod rules;
mod sqli;
mod target;
mod traversal;
mod xss;

pub use body::{BodyKind, BodyPlan, MAX_JSON_DEPTH};
pub use config::{
    ExclusionSettings, Mode, Policy, RoutePolicySettings, WafConfigError, WafSettings,
    MAX_BODY_LIMIT, MAX_EXCLUSIONS,
};
pub use encoding::{ContentEncoding, MAX_COMPRESSION_RATIO};
pub use head::RequestHead;
pub use report::{Finding, Report, Verdict, EXCERPT_CHARS, MAX_FINDINGS};
pub use rules::{rule, Category, RuleInfo, Severity, RULES};

use inspect::Scan;
use matchers::Matchers;
use rules::RuleId;
use target::TargetKind;

/// Maximum `decode_passes`.
pub const MAX_DECODE_PASSES: u8 = 8;

/// The compiled inspector: matchers, global settings and the default policy.
pub struct Waf {
    matchers: Matchers,
    default_policy: Policy,
    max_body_bytes: usize,
    body_limit_action: u16,
    decode_passes: u8,
    skip_headers: Vec<String>,
    inspect_file_uploads: bool,
}

impl std::fmt::Debug for Waf {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Waf")
            .field("default_policy", &self.default_policy)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_limit_action", &self.body_limit_action)
            .field("decode_passes", &self.decode_passes)
            .field("skip_headers", &self.skip_headers)
            .field("inspect_file_uploads", &self.inspect_file_uploads)
            .finish_non_exhaustive()
    }
}

impl Waf {
    /// Validates `settings` and compiles the matchers. Error field paths start with `waf.`.
    pub fn compile(settings: &WafSettings) -> Result<Waf, WafConfigError> {
        let paranoia = config::check_paranoia("waf.paranoia", settings.paranoia)?;
        let threshold = config::check_threshold("waf.threshold", settings.threshold)?;
        if settings.max_body_bytes == 0 || settings.max_body_bytes > MAX_BODY_LIMIT {
            return Err(WafConfigError::new(
                "waf.max_body_bytes",
                format!(
                    "must be between 1 and {MAX_BODY_LIMIT}, got {}",
                    settings.max_body_bytes
                ),
            ));
        }
        if !(400..=599).contains(&settings.body_limit_action) {
            return Err(WafConfigError::new(
                "waf.body_limit_action",
                format!(
                    "must be an HTTP error status from 400 to 599, got {}",
                    settings.body_limit_action
                ),
            ));
        }
        if !(1..=MAX_DECODE_PASSES).contains(&settings.decode_passes) {
            return Err(WafConfigError::new(
                "waf.decode_passes",
                format!(
                    "must be between 1 and {MAX_DECODE_PASSES}, got {}",
                    settings.decode_passes
                ),
            ));
        }
        let mut skip_headers = Vec::with_capacity(settings.skip_headers.len());
        for (index, name) in settings.skip_headers.iter().enumerate() {
            let valid = !name.is_empty()
                && name.bytes().enumerate().all(|(position, b)| {
                    b.is_ascii_alphanumeric()
                        || b"!#$%&'*+-.^_`|~".contains(&b)
                        || (b == b':' && position == 0)
                });
            if !valid {
                return Err(WafConfigError::new(
                    format!("waf.skip_headers[{index}]"),
                    format!("invalid header name {name:?}"),
                ));
            }
            skip_headers.push(name.to_ascii_lowercase());
        }
        let mut exclusions = Vec::new();
        config::compile_exclusions("waf.exclusions", &settings.exclusions, &mut exclusions)?;
        let matchers = Matchers::build().map_err(|error| {
            WafConfigError::new(
                "waf",
                format!("built-in pattern failed to compile: {}", error.0),
            )
        })?;
        Ok(Waf {
            matchers,
            default_policy: Policy {
                mode: settings.mode,
                paranoia,
                threshold,
                exclusions,
            },
            max_body_bytes: settings.max_body_bytes,
            body_limit_action: settings.body_limit_action,
            decode_passes: settings.decode_passes,
            skip_headers,
            inspect_file_uploads: settings.inspect_file_uploads,
        })
    }

    /// Compiles a route override on top of the global settings. Error field paths are
    /// relative to the route's section (`exclusions[0].rule_ids[1]`); prefix them with
    /// [`WafConfigError::within`].
    pub fn compile_route(&self, settings: &RoutePolicySettings) -> Result<Policy, WafConfigError> {
        let base = &self.default_policy;
        let paranoia = match settings.paranoia {
            Some(value) => config::check_paranoia("paranoia", value)?,
            None => base.paranoia,
        };
        let threshold = match settings.threshold {
            Some(value) => config::check_threshold("threshold", value)?,
            None => base.threshold,
        };
        let mut exclusions = base.exclusions.clone();
        config::compile_exclusions("exclusions", &settings.exclusions, &mut exclusions)?;
        Ok(Policy {
            mode: settings.mode.unwrap_or(base.mode),
            paranoia,
            threshold,
            exclusions,
        })
    }

    /// Policy of requests that match no route override.
    pub fn default_policy(&self) -> &Policy {
        &self.default_policy
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    pub fn body_limit_action(&self) -> u16 {
        self.body_limit_action
    }

    fn scan<'a>(&'a self, policy: &'a Policy, report: &'a mut Report) -> Scan<'a> {
        Scan::new(&self.matchers, policy, report, self.decode_passes)
    }

    /// Inspects the path, query parameters, headers and cookies.
    pub fn inspect_head(&self, policy: &Policy, head: &RequestHead<'_>) -> Report {
        let mut report = Report::new();
        if policy.mode() == Mode::Off {
            return report;
        }
        let (path, query) = head::split_path(head.path_and_query);
        report.active_exclusions = if policy.exclusions.iter().any(|e| e.path_prefix.is_some()) {
            policy.active_exclusions(&head::normalized_path(path))
        } else {
            u128::MAX
        };
        let mut scan = self.scan(policy, &mut report);
        if encoding::content_encoding(head.headers).is_none()
            && !head::declares_empty_body(head.headers)
        {
            scan.structural(
                RuleId::UNSUPPORTED_ENCODING,
                TargetKind::Header,
                "content-encoding",
                "",
            );
        }
        head::inspect_path(&mut scan, path);
        if let Some(query) = query {
            head::inspect_pairs(
                &mut scan,
                query.as_bytes(),
                TargetKind::Query,
                TargetKind::QueryName,
            );
        }
        for &(name, value) in head.headers {
            if name == ":path"
                || self
                    .skip_headers
                    .iter()
                    .any(|skip| skip.eq_ignore_ascii_case(name))
            {
                continue;
            }
            if name.eq_ignore_ascii_case("cookie") {
                head::inspect_cookies(&mut scan, value);
            } else if name.bytes().any(|b| b.is_ascii_uppercase()) {
                let lower = name.to_ascii_lowercase();
                scan.value(
                    value,
                    TargetKind::Header,
                    &lower,
                    inspect::ValueOptions::PLAIN,
                );
            } else {
                scan.value(
                    value,
                    TargetKind::Header,
                    name,
                    inspect::ValueOptions::PLAIN,
                );
            }
        }
        report
    }

    /// Decides from the request headers whether the body must be buffered and inspected.
    pub fn body_plan(&self, policy: &Policy, headers: &[(&str, &[u8])]) -> BodyPlan {
        if policy.mode() == Mode::Off {
            return BodyPlan::Skip;
        }
        body::plan(headers, self.max_body_bytes, self.body_limit_action)
    }

    /// Inspects the whole buffered body and adds its findings to `report`. `content_type`
    /// is the request's `Content-Type` value, `None` when it has none. The body is taken as
    /// not compressed; use [`Waf::inspect_encoded_body`] with the `encoding` of
    /// [`BodyPlan::Inspect`] for a request with a `Content-Encoding`.
    pub fn inspect_body(
        &self,
        policy: &Policy,
        content_type: Option<&[u8]>,
        body: &[u8],
        report: &mut Report,
    ) {
        self.inspect_encoded_body(
            policy,
            content_type,
            ContentEncoding::Identity,
            body,
            report,
        );
    }

    /// Decompresses the whole buffered body when `encoding` is gzip or deflate, inspects it
    /// and adds its findings to `report`. A body longer than `max_body_bytes` is inspected
    /// up to the limit and reported with rule 1011, so it is never passed as clean; the glue
    /// should have answered `body_limit_action` instead. A compressed body that is corrupt,
    /// or expands past `max_body_bytes` or [`MAX_COMPRESSION_RATIO`] times its size, is
    /// reported with rule 1013 and the part decoded within the bound is inspected.
    pub fn inspect_encoded_body(
        &self,
        policy: &Policy,
        content_type: Option<&[u8]>,
        encoding: ContentEncoding,
        body: &[u8],
        report: &mut Report,
    ) {
        if policy.mode() == Mode::Off || body.is_empty() {
            return;
        }
        let mut scan = self.scan(policy, report);
        let body = if body.len() > self.max_body_bytes {
            scan.structural(RuleId::BODY_OVER_LIMIT, TargetKind::Body, "", "");
            &body[..self.max_body_bytes]
        } else {
            body
        };
        if encoding == ContentEncoding::Identity {
            body::inspect(&mut scan, content_type, body, self.inspect_file_uploads);
            return;
        }
        let decompressed = encoding::decompress(body, encoding, self.max_body_bytes);
        if decompressed.failed {
            scan.structural(RuleId::BAD_COMPRESSED_BODY, TargetKind::Body, "", "");
        }
        body::inspect(
            &mut scan,
            content_type,
            &decompressed.bytes,
            self.inspect_file_uploads,
        );
    }
}

#[cfg(test)]
mod tests;
