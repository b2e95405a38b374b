//! Rate limiting through a rate-limit service speaking the Envoy RLS v3 gRPC API.
//!
//! Rules are matched like access rules, first match wins, and name the descriptors to send.
//! A rule with no descriptors exempts its requests. The subject in a descriptor comes only
//! from a token the filter verified; requests without one are `anonymous`.

pub mod proto;

use prost::Message as _;
use serde::Deserialize;

use crate::access::check_rule_name;
use crate::config::ConfigError;
use crate::matcher::{MatchSettings, Matcher, RequestTarget};
use proto::{Code, DescriptorStatus, RateLimitDescriptor, RateLimitRequest, RateLimitResponse};

/// Default deadline of a call, as in Envoy's own rate-limit filter.
pub const DEFAULT_TIMEOUT_MS: u64 = 20;

/// The `rate_limit` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Envoy cluster of the rate-limit service (HTTP/2).
    pub cluster: String,
    /// RLS domain.
    #[serde(default = "default_domain")]
    pub domain: String,
    /// Deadline of each call in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Outcome when the call fails, times out or returns something that does not decode.
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// Status of the reply under `failure_mode: deny`.
    #[serde(default = "default_failure_status")]
    pub failure_status: u16,
    /// Number of trusted proxies in front of Envoy that append to `X-Forwarded-For`; 0 uses
    /// the connection's source address.
    #[serde(default)]
    pub trusted_hops: u32,
    /// Add the rate-limit headers to allowed responses too, not only to 429 replies.
    #[serde(default)]
    pub headers_on_allowed: bool,
    /// Hits each request counts for.
    #[serde(default = "default_hits")]
    pub hits_addend: u32,
    /// Ordered rules; the first match decides.
    pub rules: Vec<RateLimitRuleSettings>,
}

/// One rate-limit rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRuleSettings {
    /// Rule name, the value of the `rule_name` entry source.
    pub name: String,
    /// Which requests the rule applies to.
    #[serde(rename = "match", default)]
    pub matcher: MatchSettings,
    /// Descriptors to send, each a list of entries; empty exempts the requests.
    #[serde(default)]
    pub descriptors: Vec<Vec<EntrySettings>>,
    /// Overrides the section's `failure_mode`.
    #[serde(default)]
    pub failure_mode: Option<FailureMode>,
    /// Overrides the section's `failure_status`.
    #[serde(default)]
    pub failure_status: Option<u16>,
    /// Overrides the section's `hits_addend`.
    #[serde(default)]
    pub hits_addend: Option<u32>,
}

/// One descriptor entry: its key and where its value comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntrySettings {
    pub key: String,
    pub from: EntrySource,
}

/// Source of a descriptor entry's value.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum EntrySource {
    /// The rate-limit rule's name.
    RuleName,
    /// The verified subject, or `anonymous`.
    Subject,
    /// The client address (see `trusted_hops`).
    ClientAddress,
    /// A request header; the descriptor is not sent when the header is absent.
    Header(String),
    /// A fixed value.
    Constant(String),
}

/// Failure mode of a rule.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Let the request through; the error is logged and counted.
    #[default]
    Allow,
    /// Reply with `failure_status`.
    Deny,
}

fn default_domain() -> String {
    "meshguard".to_owned()
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_failure_status() -> u16 {
    503
}

fn default_hits() -> u32 {
    1
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    matcher: Matcher,
    descriptors: Vec<Vec<EntrySettings>>,
    failure_mode: FailureMode,
    failure_status: u16,
    hits_addend: u32,
}

/// The compiled `rate_limit` section.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    pub cluster: String,
    pub timeout_ms: u64,
    pub headers_on_allowed: bool,
    domain: String,
    trusted_hops: u32,
    rules: Vec<Rule>,
}

/// Request attributes the filter uses to plan a call.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub target: RequestTarget<'a>,
    /// Subject of the verified token.
    pub subject: Option<&'a str>,
    /// The connection's source address, `ip:port` or `[ipv6]:port`.
    pub source_address: Option<&'a str>,
    pub headers: &'a [(String, Vec<u8>)],
}

/// A call to make for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPlan {
    pub rule: String,
    pub request: RateLimitRequest,
    pub failure_mode: FailureMode,
    pub failure_status: u16,
}

impl CallPlan {
    /// Encodes the request message.
    pub fn encode(&self) -> Vec<u8> {
        self.request.encode_to_vec()
    }
}

impl RateLimiter {
    /// Compiles the section; `field` is `rate_limit`.
    pub fn compile(settings: &RateLimitSettings) -> Result<Self, ConfigError> {
        let field = "rate_limit";
        if settings.cluster.is_empty() {
            return Err(ConfigError::new(
                &format!("{field}.cluster"),
                "must not be empty",
            ));
        }
        if settings.domain.is_empty() {
            return Err(ConfigError::new(
                &format!("{field}.domain"),
                "must not be empty",
            ));
        }
        if settings.timeout_ms == 0 || settings.timeout_ms > 10_000 {
            return Err(ConfigError::invalid(
                &format!("{field}.timeout_ms"),
                &settings.timeout_ms.to_string(),
                "expected 1 to 10000 milliseconds",
            ));
        }
        check_status(settings.failure_status, &format!("{field}.failure_status"))?;
        let mut rules: Vec<Rule> = Vec::with_capacity(settings.rules.len());
        for (i, rule) in settings.rules.iter().enumerate() {
            let rule_field = format!("{field}.rules[{i}]");
            check_rule_name(&rule.name, &format!("{rule_field}.name"))?;
            if rules.iter().any(|r| r.name == rule.name) {
                return Err(ConfigError::invalid(
                    &format!("{rule_field}.name"),
                    &rule.name,
                    "another rate-limit rule has the same name",
                ));
            }
            check_descriptors(&rule.descriptors, &rule_field)?;
            let failure_status = rule.failure_status.unwrap_or(settings.failure_status);
            check_status(failure_status, &format!("{rule_field}.failure_status"))?;
            rules.push(Rule {
                name: rule.name.clone(),
                matcher: Matcher::compile(&rule.matcher, &format!("{rule_field}.match"))?,
                descriptors: rule.descriptors.clone(),
                failure_mode: rule.failure_mode.unwrap_or(settings.failure_mode),
                failure_status,
                hits_addend: rule.hits_addend.unwrap_or(settings.hits_addend),
            });
        }
        Ok(Self {
            cluster: settings.cluster.clone(),
            timeout_ms: settings.timeout_ms,
            headers_on_allowed: settings.headers_on_allowed,
            domain: settings.domain.clone(),
            trusted_hops: settings.trusted_hops,
            rules,
        })
    }

    /// Plans the call for a request, or `None` when no rule applies or the rule exempts it.
    pub fn plan(&self, facts: &RequestFacts<'_>) -> Option<CallPlan> {
        let rule = self
            .rules
            .iter()
            .find(|r| r.matcher.matches(&facts.target))?;
        let client = self.client_address(facts);
        let descriptors: Vec<RateLimitDescriptor> = rule
            .descriptors
            .iter()
            .filter_map(|entries| descriptor(entries, rule, facts, client.as_deref()))
            .collect();
        if descriptors.is_empty() {
            return None;
        }
        Some(CallPlan {
            rule: rule.name.clone(),
            request: RateLimitRequest {
                domain: self.domain.clone(),
                descriptors,
                hits_addend: rule.hits_addend,
            },
            failure_mode: rule.failure_mode,
            failure_status: rule.failure_status,
        })
    }

    /// The client address: the connection's source without port, or with `trusted_hops`
    /// set, the address that many entries from the right of `X-Forwarded-For`. A list
    /// shorter than that did not come through the trusted proxies, so the source is used.
    fn client_address(&self, facts: &RequestFacts<'_>) -> Option<String> {
        if self.trusted_hops > 0 {
            let forwarded: Vec<&str> = facts
                .headers
                .iter()
                .filter(|(name, _)| name == "x-forwarded-for")
                .filter_map(|(_, value)| std::str::from_utf8(value).ok())
                .flat_map(|value| value.split(','))
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .collect();
            let hops = self.trusted_hops as usize;
            if forwarded.len() >= hops {
                return Some(forwarded[forwarded.len() - hops].to_owned());
            }
        }
        facts.source_address.map(strip_port)
    }
}

fn descriptor(
    entries: &[EntrySettings],
    rule: &Rule,
    facts: &RequestFacts<'_>,
    client: Option<&str>,
) -> Option<RateLimitDescriptor> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let value = match &entry.from {
            EntrySource::RuleName => rule.name.clone(),
            EntrySource::Subject => facts.subject.unwrap_or("anonymous").to_owned(),
            EntrySource::ClientAddress => client?.to_owned(),
            EntrySource::Constant(value) => value.clone(),
            EntrySource::Header(name) => {
                let (_, value) = facts.headers.iter().find(|(n, _)| n == name)?;
                String::from_utf8_lossy(value).into_owned()
            }
        };
        out.push(proto::Entry {
            key: entry.key.clone(),
            value,
        });
    }
    Some(RateLimitDescriptor { entries: out })
}

/// Removes the port from `ip:port` and the brackets from `[ipv6]:port`.
fn strip_port(address: &str) -> String {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_owned();
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host.to_owned()
        }
        _ => address.to_owned(),
    }
}

fn check_status(status: u16, field: &str) -> Result<(), ConfigError> {
    if (400..=599).contains(&status) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            &status.to_string(),
            "expected a 4xx or 5xx status",
        ))
    }
}

fn check_descriptors(descriptors: &[Vec<EntrySettings>], field: &str) -> Result<(), ConfigError> {
    for (d, entries) in descriptors.iter().enumerate() {
        if entries.is_empty() {
            return Err(ConfigError::new(
                &format!("{field}.descriptors[{d}]"),
                "a descriptor needs at least one entry",
            ));
        }
        for (e, entry) in entries.iter().enumerate() {
            let entry_field = format!("{field}.descriptors[{d}][{e}]");
            if entry.key.is_empty() {
                return Err(ConfigError::new(
                    &format!("{entry_field}.key"),
                    "must not be empty",
                ));
            }
            if let EntrySource::Header(name) = &entry.from {
                if !crate::claims::is_header_name(name) {
                    return Err(ConfigError::invalid(
                        &format!("{entry_field}.from.header"),
                        name,
                        "expected a lower-case header name",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Outcome of a rate-limit call for the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Under the limit; headers to add to the request and to the response.
    Allow {
        request_headers: Vec<(String, String)>,
        response_headers: Vec<(String, String)>,
    },
    /// Over the limit: reply 429 with these headers.
    OverLimit {
        response_headers: Vec<(String, String)>,
        retry_after: u64,
    },
    /// The call failed; the rule's failure mode decides.
    Failed(FailureReason),
}

/// Cause of a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The gRPC status was not OK (including Envoy's own timeout and no healthy host).
    Status(u32),
    /// The response was not a `RateLimitResponse`.
    Undecodable,
    /// The service answered `UNKNOWN` as overall code.
    UnknownCode,
    /// The filter's watchdog ended the call at its deadline.
    Deadline,
}

impl FailureReason {
    /// Stable reason code.
    pub fn reason(self) -> &'static str {
        match self {
            FailureReason::Status(_) => "ratelimit_error",
            FailureReason::Undecodable => "ratelimit_undecodable",
            FailureReason::UnknownCode => "ratelimit_unknown_code",
            FailureReason::Deadline => "ratelimit_timeout",
        }
    }
}

/// Interprets a call's gRPC status and body. `rule` names the policy in the IETF fields when
/// the service gives no limit name.
pub fn interpret(grpc_status: u32, body: Option<&[u8]>, rule: &str, with_headers: bool) -> Outcome {
    if grpc_status != 0 {
        return Outcome::Failed(FailureReason::Status(grpc_status));
    }
    let Ok(response) = RateLimitResponse::decode(body.unwrap_or_default()) else {
        return Outcome::Failed(FailureReason::Undecodable);
    };
    let extra = |headers: &[proto::HeaderValue]| -> Vec<(String, String)> {
        headers
            .iter()
            .filter(|h| crate::claims::is_header_name(&h.key.to_ascii_lowercase()))
            .map(|h| (h.key.to_ascii_lowercase(), header_value(h)))
            .filter(|(_, v)| !v.chars().any(char::is_control))
            .collect()
    };
    let mut response_headers = extra(&response.response_headers_to_add);
    match Code::try_from(response.overall_code) {
        Ok(Code::Ok) => {
            if with_headers {
                if let Some(status) = tightest(&response.statuses, false) {
                    response_headers.extend(limit_headers(status, rule, false));
                }
            }
            Outcome::Allow {
                request_headers: extra(&response.request_headers_to_add),
                response_headers,
            }
        }
        Ok(Code::OverLimit) => {
            let status = tightest(&response.statuses, true);
            let retry_after = status.map_or(1, reset_seconds).max(1);
            if let Some(status) = status {
                response_headers.extend(limit_headers(status, rule, true));
            } else {
                response_headers.push(("retry-after".to_owned(), retry_after.to_string()));
            }
            Outcome::OverLimit {
                response_headers,
                retry_after,
            }
        }
        _ => Outcome::Failed(FailureReason::UnknownCode),
    }
}

/// Reads the window of a limit named `N per WINDOW`, as meshguard-ratelimit names its limits
/// (`5 per 15m`, `100 per 1h30m`), in whole seconds rounded up. The RLS API can only give a
/// unit, and meshguard-ratelimit reports `15m` as `HOUR`, so the name is the exact source.
fn window_from_name(name: &str) -> Option<u64> {
    let (_, window) = name.split_once(" per ")?;
    let mut millis: u64 = 0;
    let mut number: u64 = 0;
    let mut digits = false;
    let mut chars = window.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(digit) = c.to_digit(10) {
            number = number.checked_mul(10)?.checked_add(u64::from(digit))?;
            digits = true;
            continue;
        }
        if !digits {
            return None;
        }
        let unit_millis = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return None,
        };
        millis = millis.checked_add(number.checked_mul(unit_millis)?)?;
        number = 0;
        digits = false;
    }
    if digits || millis == 0 {
        return None;
    }
    Some(millis.div_ceil(1000))
}

fn header_value(header: &proto::HeaderValue) -> String {
    if header.value.is_empty() && !header.raw_value.is_empty() {
        String::from_utf8_lossy(&header.raw_value).into_owned()
    } else {
        header.value.clone()
    }
}

/// The status that limits the request most: among refused ones the one resetting last,
/// among allowed ones the one with the fewest remaining hits.
fn tightest(statuses: &[DescriptorStatus], over_limit: bool) -> Option<&DescriptorStatus> {
    let with_limit = statuses.iter().filter(|s| s.current_limit.is_some());
    if over_limit {
        with_limit
            .filter(|s| s.code == Code::OverLimit as i32)
            .max_by_key(|s| reset_seconds(s))
    } else {
        with_limit.min_by_key(|s| s.limit_remaining)
    }
}

/// Seconds until the status's window resets, rounded up.
fn reset_seconds(status: &DescriptorStatus) -> u64 {
    match &status.duration_until_reset {
        Some(d) => {
            let whole = u64::try_from(d.seconds).unwrap_or(0);
            whole + u64::from(d.nanos > 0)
        }
        None => 0,
    }
}

/// `X-RateLimit-*` fields (Reset in seconds from now, not a timestamp), `Retry-After` on
/// refusals, and the IETF `RateLimit-Policy` and `RateLimit` fields
/// (draft-ietf-httpapi-ratelimit-headers: `"name";q=limit;w=window` and `"name";r=remaining;t=reset`).
fn limit_headers(status: &DescriptorStatus, rule: &str, over_limit: bool) -> Vec<(String, String)> {
    let Some(limit) = &status.current_limit else {
        return Vec::new();
    };
    let reset = reset_seconds(status);
    let name = if limit.name.is_empty() {
        rule
    } else {
        limit.name.as_str()
    };
    let name = name.replace(['"', '\\'], "");
    let window = window_from_name(&limit.name).or_else(|| {
        proto::Unit::try_from(limit.unit)
            .ok()
            .and_then(proto::Unit::seconds)
    });
    let mut policy = format!("\"{name}\";q={}", limit.requests_per_unit);
    if let Some(window) = window {
        policy.push_str(&format!(";w={window}"));
    }
    let mut headers = vec![
        (
            "x-ratelimit-limit".to_owned(),
            limit.requests_per_unit.to_string(),
        ),
        (
            "x-ratelimit-remaining".to_owned(),
            status.limit_remaining.to_string(),
        ),
        ("x-ratelimit-reset".to_owned(), reset.to_string()),
        ("ratelimit-policy".to_owned(), policy),
        (
            "ratelimit".to_owned(),
            format!("\"{name}\";r={};t={reset}", status.limit_remaining),
        ),
    ];
    if over_limit {
        headers.push(("retry-after".to_owned(), reset.max(1).to_string()));
    }
    headers
}

#[cfg(test)]
mod tests;
