//! What decides a request: path normalization, rule lookup, token extraction and
//! verification, and the rule's requirement. Host-independent, so it is tested natively.

use std::rc::Rc;

use crate::access::{DefaultAction, Requirement, RuleMatch};
use crate::config::Config;
use crate::jwt::VerifiedToken;
use crate::matcher::{canonical_host, RequestTarget};
use crate::path::{normalize, PathError};

/// The parts of a request the checks read.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub authority: &'a str,
    /// The raw `:path`, with its query, or empty when it is not UTF-8.
    pub path: &'a str,
    /// Every header value as its own entry, names in lower case.
    pub headers: &'a [(String, Vec<u8>)],
    /// Seconds since the Unix epoch.
    pub now: u64,
}

impl<'a> RequestHead<'a> {
    /// Builds the head from the request headers as the host passes them, pseudo-headers
    /// included.
    pub fn from_headers(headers: &'a [(String, Vec<u8>)], now: u64) -> Self {
        Self {
            method: header_str(headers, ":method"),
            scheme: header_str(headers, ":scheme"),
            authority: header_str(headers, ":authority"),
            path: header_str(headers, ":path"),
            headers,
            now,
        }
    }
}

/// Returns the first value of `name` as UTF-8, or empty when absent or not UTF-8.
pub fn header_str<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or_default()
}

/// Borrows a header list as name and value pairs, the form the inspector and the host's
/// map setters take.
pub fn header_pairs(headers: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect()
}

/// The OAuth 2.0 error code of a 401 or 403 reply (RFC 6750, section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No token was sent: the challenge carries no error code.
    None,
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
}

impl BearerError {
    /// Returns the `error` value, if the challenge has one.
    pub fn code(self) -> Option<&'static str> {
        match self {
            BearerError::None => None,
            BearerError::InvalidRequest => Some("invalid_request"),
            BearerError::InvalidToken => Some("invalid_token"),
            BearerError::InsufficientScope => Some("insufficient_scope"),
        }
    }
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: u16,
    /// Stable reason code, one of those documented in the README.
    pub reason: &'static str,
    pub bearer_error: BearerError,
    /// Human-readable cause; never contains the token.
    pub description: String,
    /// Name of the rule that decided, or `default`.
    pub rule: String,
    /// The normalized path, once normalization succeeded.
    pub path: Option<String>,
    /// The verified subject, when the token verified but the rule still refused.
    pub subject: Option<String>,
}

/// An admitted request and what to change on it before it goes upstream.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Name of the rule that decided, or `default`.
    pub rule: String,
    pub identity: Option<Rc<VerifiedToken>>,
    /// Headers to remove from the request.
    pub remove_headers: Vec<String>,
    /// Headers to add after the removal.
    pub add_headers: Vec<(String, String)>,
    /// The normalized `:path`, when it differs from the received one.
    pub new_path: Option<String>,
    /// The normalized path without query, for later checks.
    pub normalized_path: String,
    /// The host in lower case without the scheme's default port, for later checks.
    pub host: String,
    /// The denial a dry-run rule let through.
    pub dry_run_denial: Option<Denial>,
}

impl Admission {
    /// Number of header changes the admission makes to the request.
    pub fn change_count(&self) -> usize {
        self.remove_headers.len() + self.add_headers.len() + usize::from(self.new_path.is_some())
    }

    /// Returns the normalized host and path with `method`, as later checks match them.
    pub fn target<'a>(&'a self, method: &'a str) -> RequestTarget<'a> {
        RequestTarget {
            host: &self.host,
            path: &self.normalized_path,
            method,
        }
    }

    /// Returns whether the changes are better made with one write of the whole map of
    /// `header_count` headers than with one host call each. Writing the whole map costs about
    /// 2,500 instructions per header in it, and one header call about 3,500
    /// (`docs/benchmarks.md`).
    pub fn rewrites_whole_map(&self, header_count: usize) -> bool {
        self.change_count() * 3 > header_count * 2
    }

    /// Returns the request's headers with the admission's changes applied: removed headers
    /// dropped, `:path` replaced, claim headers appended. Order is otherwise kept.
    pub fn rewrite(&self, headers: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = headers
            .iter()
            .filter(|(name, _)| !self.remove_headers.contains(name))
            .map(|(name, value)| match (&self.new_path, name.as_str()) {
                (Some(path), ":path") => (name.clone(), path.clone().into_bytes()),
                _ => (name.clone(), value.clone()),
            })
            .collect();
        for (name, value) in &self.add_headers {
            out.push((name.clone(), value.clone().into_bytes()));
        }
        out
    }
}

/// The outcome of the access checks.
#[derive(Debug, Clone)]
pub enum Decision {
    Allow(Box<Admission>),
    Deny(Denial),
}

/// Checks a request against the compiled configuration.
pub fn decide(config: &Config, request: &RequestHead<'_>) -> Decision {
    // `from_headers` gives an empty `path` for a `:path` that is not UTF-8, which HTTP/2 allows.
    if request.path.is_empty() && has_non_utf8_path(request.headers) {
        return Decision::Deny(path_denial(PathError::NotUtf8));
    }
    let normalized = match normalize(request.path, &config.path) {
        Ok(normalized) => normalized,
        Err(err) => return Decision::Deny(path_denial(err)),
    };
    let host = canonical_host(request.authority, request.scheme);
    let target = RequestTarget {
        host: &host,
        path: &normalized.path,
        method: request.method,
    };
    let rule = config.access.find(&target);
    let (identity, failure) = match identify(config, request, normalized.query.as_deref(), &rule) {
        Err(denial) => (None, Some(denial)),
        Ok(identity) => {
            let failure = require(&rule, identity.as_deref()).err().map(|mut denial| {
                denial.subject = identity.as_ref().and_then(|token| token.subject.clone());
                denial
            });
            (identity, failure)
        }
    };
    let failure = failure.map(|mut denial| {
        denial.path = Some(normalized.path.clone());
        denial
    });
    let dry_run_denial = match failure {
        None => None,
        Some(denial) if is_dry_run(&rule) => Some(denial),
        Some(denial) => return Decision::Deny(denial),
    };
    let received_path = request
        .path
        .split_once('?')
        .map_or(request.path, |(path, _)| path);
    let new_path = (normalized.path != received_path).then(|| normalized.to_header_value());
    let admission = Admission {
        rule: rule.name().to_owned(),
        remove_headers: removed_headers(config, request.headers),
        add_headers: identity
            .as_ref()
            .map(|token| config.claim_headers.values(token))
            .unwrap_or_default(),
        identity,
        new_path,
        normalized_path: normalized.path,
        host,
        dry_run_denial,
    };
    Decision::Allow(Box::new(admission))
}

fn has_non_utf8_path(headers: &[(String, Vec<u8>)]) -> bool {
    headers
        .iter()
        .any(|(name, value)| name == ":path" && std::str::from_utf8(value).is_err())
}

fn is_dry_run(rule: &RuleMatch<'_>) -> bool {
    matches!(rule, RuleMatch::Rule(rule) if rule.dry_run)
}

/// Names of the claim headers, and of `Authorization` unless it is forwarded, that the
/// request carries; absent ones need no host call to remove.
fn removed_headers(config: &Config, headers: &[(String, Vec<u8>)]) -> Vec<String> {
    let present = |name: &str| headers.iter().any(|(n, _)| n == name);
    let mut names: Vec<String> = config
        .claim_headers
        .header_names()
        .filter(|name| present(name))
        .map(str::to_owned)
        .collect();
    if !config.forward_authorization && present("authorization") {
        names.push("authorization".to_owned());
    }
    names
}

/// Extracts and verifies the request's token, if it carries one.
fn identify(
    config: &Config,
    request: &RequestHead<'_>,
    query: Option<&str>,
    rule: &RuleMatch<'_>,
) -> Result<Option<Rc<VerifiedToken>>, Denial> {
    let rule_name = rule.name();
    let found = config
        .sources
        .extract(request.headers, query)
        .map_err(|err| {
            denial(
                401,
                err.reason(),
                BearerError::InvalidRequest,
                err.to_string(),
                rule_name,
            )
        })?;
    if found.foreign_scheme && found.token.is_none() && rule.is_protected() {
        return Err(denial(
            401,
            "unsupported_scheme",
            BearerError::InvalidRequest,
            "authorization scheme is not Bearer".to_owned(),
            rule_name,
        ));
    }
    // A presented token is verified on every route, public ones included: an invalid token
    // is an error, not anonymous access.
    let identity = match &found.token {
        Some(token) => Some(config.verifier.verify(token, request.now).map_err(|err| {
            denial(
                401,
                err.reason(),
                BearerError::InvalidToken,
                err.to_string(),
                rule_name,
            )
        })?),
        None => None,
    };
    Ok(identity)
}

/// Applies the rule's requirement to the verified identity.
fn require(rule: &RuleMatch<'_>, identity: Option<&VerifiedToken>) -> Result<(), Denial> {
    let rule_name = rule.name();
    let requirement = match rule {
        RuleMatch::Rule(rule) => &rule.requirement,
        RuleMatch::Default(DefaultAction::Allow) => &Requirement::Public,
        RuleMatch::Default(DefaultAction::Deny) => {
            return Err(denial(
                403,
                "no_matching_rule",
                BearerError::None,
                "no access rule matches this request".to_owned(),
                rule_name,
            ))
        }
    };
    check_requirement(requirement, identity, rule_name)
}

fn check_requirement(
    requirement: &Requirement,
    identity: Option<&VerifiedToken>,
    rule: &str,
) -> Result<(), Denial> {
    let missing = || {
        denial(
            401,
            "missing_token",
            BearerError::None,
            "a bearer token is required".to_owned(),
            rule,
        )
    };
    match requirement {
        Requirement::Public => Ok(()),
        Requirement::Authenticated => identity.map(|_| ()).ok_or_else(missing),
        Requirement::AnyRole(roles) => {
            let token = identity.ok_or_else(missing)?;
            if token.roles.iter().any(|role| roles.contains(role)) {
                Ok(())
            } else {
                Err(denial(
                    403,
                    "role_missing",
                    BearerError::InsufficientScope,
                    "token lacks a role this route requires".to_owned(),
                    rule,
                ))
            }
        }
    }
}

fn denial(
    status: u16,
    reason: &'static str,
    bearer_error: BearerError,
    description: String,
    rule: &str,
) -> Denial {
    Denial {
        status,
        reason,
        bearer_error,
        description,
        rule: rule.to_owned(),
        path: None,
        subject: None,
    }
}

fn path_denial(err: PathError) -> Denial {
    denial(
        400,
        "path_invalid",
        BearerError::None,
        err.to_string(),
        "none",
    )
}

#[cfg(test)]
mod tests;
