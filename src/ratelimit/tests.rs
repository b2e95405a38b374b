use prost::Message as _;
use serde_json::json;

use super::proto::{Duration, HeaderValue, RateLimit, Unit};
use super::*;

fn limiter(extra: serde_json::Value) -> RateLimiter {
    let mut settings = json!({
        "cluster": "rls",
        "rules": [
            {"name": "health", "match": {"path": {"exact": "/healthz"}}},
            {"name": "login", "match": {"path": {"exact": "/api/auth/login"}}, "failure_mode": "deny",
             "descriptors": [[
                {"key": "endpoint", "from": "rule_name"},
                {"key": "remote_address", "from": "client_address"},
                {"key": "subject", "from": "subject"}
             ]]},
            {"name": "tenant", "match": {"path": {"prefix": "/t"}},
             "descriptors": [[{"key": "tenant", "from": {"header": "x-tenant"}}],
                             [{"key": "plan", "from": {"constant": "free"}}]]}
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let settings: RateLimitSettings = serde_json::from_value(settings).unwrap();
    RateLimiter::compile(&settings).unwrap()
}

fn facts<'a>(path: &'a str, headers: &'a [(String, Vec<u8>)]) -> RequestFacts<'a> {
    RequestFacts {
        target: RequestTarget {
            host: "h",
            path,
            method: "POST",
        },
        subject: None,
        source_address: Some("10.1.2.3:5555"),
        headers,
    }
}

fn entries(plan: &CallPlan, index: usize) -> Vec<(String, String)> {
    plan.request.descriptors[index]
        .entries
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn login_descriptor_has_rule_address_and_subject() {
    let plan = limiter(json!({}))
        .plan(&facts("/api/auth/login", &[]))
        .unwrap();
    assert_eq!(plan.rule, "login");
    assert_eq!(plan.request.domain, "meshguard");
    assert_eq!(plan.request.hits_addend, 1);
    assert_eq!(plan.failure_mode, FailureMode::Deny);
    assert_eq!(
        entries(&plan, 0),
        pairs(&[
            ("endpoint", "login"),
            ("remote_address", "10.1.2.3"),
            ("subject", "anonymous")
        ])
    );
}

#[test]
fn verified_subject_is_used() {
    let limiter = limiter(json!({}));
    let mut request = facts("/api/auth/login", &[]);
    request.subject = Some("alice");
    let plan = limiter.plan(&request).unwrap();
    assert_eq!(
        entries(&plan, 0)[2],
        ("subject".to_owned(), "alice".to_owned())
    );
}

#[test]
fn rule_without_descriptors_exempts() {
    assert_eq!(limiter(json!({})).plan(&facts("/healthz", &[])), None);
}

#[test]
fn unmatched_path_is_not_limited() {
    assert_eq!(limiter(json!({})).plan(&facts("/other", &[])), None);
}

#[test]
fn descriptor_with_missing_header_is_skipped() {
    let plan = limiter(json!({})).plan(&facts("/t/x", &[])).unwrap();
    assert_eq!(plan.request.descriptors.len(), 1);
    assert_eq!(entries(&plan, 0), pairs(&[("plan", "free")]));
    let headers = vec![("x-tenant".to_owned(), b"acme".to_vec())];
    let plan = limiter(json!({})).plan(&facts("/t/x", &headers)).unwrap();
    assert_eq!(entries(&plan, 0), pairs(&[("tenant", "acme")]));
}

#[test]
fn forwarded_for_used_with_trusted_hops() {
    let limiter = limiter(json!({"trusted_hops": 1}));
    let headers = vec![("x-forwarded-for".to_owned(), b"1.1.1.1, 2.2.2.2".to_vec())];
    let plan = limiter.plan(&facts("/api/auth/login", &headers)).unwrap();
    assert_eq!(entries(&plan, 0)[1].1, "2.2.2.2");
    let limiter2 = self::limiter(json!({"trusted_hops": 2}));
    let plan = limiter2.plan(&facts("/api/auth/login", &headers)).unwrap();
    assert_eq!(entries(&plan, 0)[1].1, "1.1.1.1");
    let limiter3 = self::limiter(json!({"trusted_hops": 3}));
    let plan = limiter3.plan(&facts("/api/auth/login", &headers)).unwrap();
    assert_eq!(
        entries(&plan, 0)[1].1,
        "10.1.2.3",
        "short list falls back to the source"
    );
}

#[test]
fn ports_are_stripped_from_addresses() {
    assert_eq!(strip_port("10.0.0.1:80"), "10.0.0.1");
    assert_eq!(strip_port("[::1]:8080"), "::1");
    assert_eq!(strip_port("::1"), "::1");
    assert_eq!(strip_port("10.0.0.1"), "10.0.0.1");
}

#[test]
fn plan_encodes_as_protobuf() {
    let plan = limiter(json!({}))
        .plan(&facts("/api/auth/login", &[]))
        .unwrap();
    let decoded = RateLimitRequest::decode(plan.encode().as_slice()).unwrap();
    assert_eq!(decoded, plan.request);
}

#[test]
fn config_errors_name_fields() {
    let bad = |settings: serde_json::Value| {
        let settings: RateLimitSettings = serde_json::from_value(settings).unwrap();
        RateLimiter::compile(&settings).unwrap_err()
    };
    let err = bad(json!({"cluster": "", "rules": []}));
    assert_eq!(err.path, "rate_limit.cluster");
    let err = bad(json!({"cluster": "c", "timeout_ms": 0, "rules": []}));
    assert_eq!(err.path, "rate_limit.timeout_ms");
    let err = bad(json!({"cluster": "c", "failure_status": 200, "rules": []}));
    assert_eq!(err.path, "rate_limit.failure_status");
    let err = bad(json!({"cluster": "c", "rules": [{"name": "a", "descriptors": [[]]}]}));
    assert_eq!(err.path, "rate_limit.rules[0].descriptors[0]");
    let err = bad(
        json!({"cluster": "c", "rules": [{"name": "a", "descriptors": [[{"key": "k", "from": {"header": "X Bad"}}]]}]}),
    );
    assert_eq!(
        err.path,
        "rate_limit.rules[0].descriptors[0][0].from.header"
    );
}

fn status(code: Code, remaining: u32, reset: i64, limit: u32, unit: Unit) -> DescriptorStatus {
    DescriptorStatus {
        code: code as i32,
        current_limit: Some(RateLimit {
            requests_per_unit: limit,
            unit: unit as i32,
            name: String::new(),
        }),
        limit_remaining: remaining,
        duration_until_reset: Some(Duration {
            seconds: reset,
            nanos: 0,
        }),
    }
}

fn encoded(response: RateLimitResponse) -> Vec<u8> {
    response.encode_to_vec()
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn over_limit_gives_retry_after_and_fields() {
    let body = encoded(RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        statuses: vec![
            status(Code::Ok, 3, 10, 10, Unit::Minute),
            status(Code::OverLimit, 0, 842, 5, Unit::Hour),
        ],
        response_headers_to_add: vec![],
        request_headers_to_add: vec![],
    });
    let Outcome::OverLimit {
        response_headers,
        retry_after,
    } = interpret(0, Some(&body), "login", false)
    else {
        panic!("expected over limit");
    };
    assert_eq!(retry_after, 842);
    assert_eq!(find(&response_headers, "retry-after"), Some("842"));
    assert_eq!(find(&response_headers, "x-ratelimit-limit"), Some("5"));
    assert_eq!(find(&response_headers, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(find(&response_headers, "x-ratelimit-reset"), Some("842"));
    assert_eq!(
        find(&response_headers, "ratelimit-policy"),
        Some("\"login\";q=5;w=3600")
    );
    assert_eq!(
        find(&response_headers, "ratelimit"),
        Some("\"login\";r=0;t=842")
    );
}

#[test]
fn allowed_headers_only_when_configured() {
    let body = encoded(RateLimitResponse {
        overall_code: Code::Ok as i32,
        statuses: vec![
            status(Code::Ok, 7, 30, 10, Unit::Minute),
            status(Code::Ok, 2, 5, 3, Unit::Second),
        ],
        response_headers_to_add: vec![HeaderValue {
            key: "X-From-Service".into(),
            value: "1".into(),
            raw_value: vec![],
        }],
        request_headers_to_add: vec![HeaderValue {
            key: "x-quota".into(),
            value: "a\r\nb".into(),
            raw_value: vec![],
        }],
    });
    let Outcome::Allow {
        request_headers,
        response_headers,
    } = interpret(0, Some(&body), "api", true)
    else {
        panic!("expected allow");
    };
    assert!(request_headers.is_empty(), "a value with CR LF is dropped");
    assert_eq!(find(&response_headers, "x-from-service"), Some("1"));
    assert_eq!(find(&response_headers, "x-ratelimit-remaining"), Some("2"));
    assert_eq!(find(&response_headers, "retry-after"), None);
    let Outcome::Allow {
        response_headers, ..
    } = interpret(0, Some(&body), "api", false)
    else {
        panic!("expected allow");
    };
    assert_eq!(find(&response_headers, "x-ratelimit-limit"), None);
}

#[test]
fn failures_are_classified() {
    assert_eq!(
        interpret(14, None, "r", false),
        Outcome::Failed(FailureReason::Status(14))
    );
    assert_eq!(
        interpret(0, Some(b""), "r", false),
        Outcome::Failed(FailureReason::UnknownCode)
    );
    assert_eq!(
        interpret(0, Some(&[0xff, 0xff, 0xff]), "r", false),
        Outcome::Failed(FailureReason::Undecodable)
    );
}

#[test]
fn over_limit_without_statuses_still_retries() {
    let body = encoded(RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        statuses: vec![],
        response_headers_to_add: vec![],
        request_headers_to_add: vec![],
    });
    let Outcome::OverLimit {
        response_headers,
        retry_after,
    } = interpret(0, Some(&body), "r", false)
    else {
        panic!("expected over limit");
    };
    assert_eq!(retry_after, 1);
    assert_eq!(find(&response_headers, "retry-after"), Some("1"));
}

#[test]
fn window_read_from_limit_name() {
    assert_eq!(window_from_name("5 per 15m"), Some(900));
    assert_eq!(window_from_name("100 per 1h30m"), Some(5400));
    assert_eq!(window_from_name("10 per 250ms"), Some(1));
    assert_eq!(window_from_name("3 per 2d"), Some(172_800));
    assert_eq!(window_from_name("login"), None);
    assert_eq!(window_from_name("5 per 15x"), None);
    assert_eq!(window_from_name("5 per 15"), None);
    assert_eq!(window_from_name("5 per "), None);
}

#[test]
fn policy_window_prefers_the_limit_name() {
    let mut over = status(Code::OverLimit, 0, 600, 5, Unit::Hour);
    if let Some(limit) = &mut over.current_limit {
        limit.name = "5 per 15m".into();
    }
    let body = encoded(RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        statuses: vec![over],
        response_headers_to_add: vec![],
        request_headers_to_add: vec![],
    });
    let Outcome::OverLimit {
        response_headers, ..
    } = interpret(0, Some(&body), "login", false)
    else {
        panic!("expected over limit");
    };
    assert_eq!(
        find(&response_headers, "ratelimit-policy"),
        Some("\"5 per 15m\";q=5;w=900")
    );
}
