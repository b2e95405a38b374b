use meshguard_dev::tokens::{now, SigningKey};
use serde_json::{json, Value};

use super::*;

const ISSUER: &str = "https://issuer.test";

fn config(extra: Value) -> Config {
    let key = SigningKey::load("hs256").unwrap();
    let mut settings = json!({
        "providers": [{
            "name": "test",
            "issuer": ISSUER,
            "jwks": {"keys": [key.public_jwk(Some("HS256"))]},
        }],
        "claim_headers": [{"claim": "sub", "header": "x-user"}],
        "rules": [
            {"name": "public", "match": {"path": {"prefix": "/public"}}, "require": "public"},
            {"name": "admin", "match": {"path": {"prefix": "/admin"}, "methods": ["GET"]}, "require": {"any_role": ["admin"]}},
            {"name": "reports", "match": {"path": {"prefix": "/reports"}}, "require": {"any_role": ["auditor"]}, "dry_run": true},
            {"name": "api", "match": {"hosts": ["api.example.com"], "path": {"glob": "/v1/*/items"}}, "require": "authenticated"},
        ],
    });
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
    Config::from_json(settings.to_string().as_bytes(), &|_| None).unwrap()
}

fn token(roles: &[&str]) -> String {
    let claims = json!({"iss": ISSUER, "sub": "alice", "roles": roles, "exp": now() + 60});
    SigningKey::load("hs256")
        .unwrap()
        .sign("HS256", &claims, &json!({}))
        .unwrap()
}

fn bearer(token: &str) -> Vec<(String, Vec<u8>)> {
    vec![(
        "authorization".to_owned(),
        format!("Bearer {token}").into_bytes(),
    )]
}

fn run(
    config: &Config,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(String, Vec<u8>)],
) -> Decision {
    decide(
        config,
        &RequestHead {
            method,
            scheme: "https",
            authority: host,
            path,
            headers,
            now: now(),
        },
    )
}

fn get(config: &Config, path: &str, headers: &[(String, Vec<u8>)]) -> Decision {
    run(config, "GET", "example.com", path, headers)
}

fn denial(decision: Decision) -> Denial {
    match decision {
        Decision::Deny(denial) => denial,
        Decision::Allow(admission) => panic!("expected a denial, got {admission:?}"),
    }
}

fn admission(decision: Decision) -> Admission {
    match decision {
        Decision::Allow(admission) => *admission,
        Decision::Deny(denial) => panic!("expected admission, got {denial:?}"),
    }
}

#[test]
fn public_route_needs_no_token() {
    let a = admission(get(&config(json!({})), "/public/x", &[]));
    assert_eq!(a.rule, "public");
    assert!(a.identity.is_none());
    assert!(a.add_headers.is_empty());
}

#[test]
fn claim_headers_always_removed_and_set_from_token() {
    let c = config(json!({}));
    let spoofed = vec![
        ("x-user".to_owned(), b"mallory".to_vec()),
        ("authorization".to_owned(), b"Basic YTpi".to_vec()),
    ];
    let a = admission(get(&c, "/public/x", &spoofed));
    assert!(a.remove_headers.contains(&"x-user".to_owned()));
    assert!(a.remove_headers.contains(&"authorization".to_owned()));
    let a = admission(get(&c, "/public/x", &[]));
    assert!(
        a.remove_headers.is_empty(),
        "absent headers need no removal"
    );
    let a = admission(get(&c, "/admin", &bearer(&token(&["admin"]))));
    assert_eq!(
        a.add_headers,
        vec![("x-user".to_owned(), "alice".to_owned())]
    );
}

#[test]
fn authorization_kept_when_forwarded() {
    let c = config(json!({"forward_authorization": true}));
    let a = admission(get(&c, "/public/x", &bearer(&token(&[]))));
    assert!(!a.remove_headers.contains(&"authorization".to_owned()));
}

#[test]
fn missing_token_is_401_without_error_code() {
    let d = denial(get(&config(json!({})), "/admin", &[]));
    assert_eq!(
        (d.status, d.reason, d.bearer_error),
        (401, "missing_token", BearerError::None)
    );
    assert_eq!(d.rule, "admin");
}

#[test]
fn role_missing_is_403() {
    let d = denial(get(
        &config(json!({})),
        "/admin",
        &bearer(&token(&["reader"])),
    ));
    assert_eq!((d.status, d.reason), (403, "role_missing"));
    assert_eq!(d.bearer_error, BearerError::InsufficientScope);
}

#[test]
fn method_outside_rule_falls_to_default() {
    let d = denial(run(
        &config(json!({})),
        "DELETE",
        "example.com",
        "/admin",
        &bearer(&token(&["admin"])),
    ));
    assert_eq!((d.status, d.reason), (403, "no_matching_rule"));
}

#[test]
fn default_allow_admits_unmatched_paths() {
    let c = config(json!({"default_action": "allow"}));
    let a = admission(get(&c, "/elsewhere", &[]));
    assert_eq!(a.rule, "default");
}

#[test]
fn host_matching_ignores_case_and_default_port() {
    let c = config(json!({}));
    let t = token(&[]);
    for host in ["api.example.com", "API.Example.COM", "api.example.com:443"] {
        let a = admission(run(&c, "GET", host, "/v1/orders/items", &bearer(&t)));
        assert_eq!(a.rule, "api", "{host}");
        assert_eq!(a.host, "api.example.com", "{host}");
    }
    let d = denial(run(
        &c,
        "GET",
        "api.example.com:8443",
        "/v1/orders/items",
        &bearer(&t),
    ));
    assert_eq!(d.reason, "no_matching_rule");
}

#[test]
fn dry_run_rule_admits_and_reports_denial() {
    let a = admission(get(
        &config(json!({})),
        "/reports/q1",
        &bearer(&token(&["reader"])),
    ));
    let reported = a.dry_run_denial.expect("dry-run denial");
    assert_eq!(reported.reason, "role_missing");
    assert!(
        a.identity.is_some(),
        "a valid token still identifies the caller"
    );
}

#[test]
fn dry_run_with_invalid_token_forwards_no_identity() {
    let a = admission(get(&config(json!({})), "/reports/q1", &bearer("garbage")));
    assert_eq!(a.dry_run_denial.unwrap().reason, "token_malformed");
    assert!(a.identity.is_none());
    assert!(a.add_headers.is_empty());
}

#[test]
fn normalized_path_replaces_request_path() {
    let a = admission(get(&config(json!({})), "/x/../public//a?b=1", &[]));
    assert_eq!(a.new_path.as_deref(), Some("/public/a?b=1"));
    assert_eq!(a.normalized_path, "/public/a");
    let a = admission(get(&config(json!({})), "/public/a?b=1", &[]));
    assert_eq!(a.new_path, None);
}

#[test]
fn invalid_path_is_400() {
    let d = denial(get(&config(json!({})), "/public%2Fadmin", &[]));
    assert_eq!((d.status, d.reason), (400, "path_invalid"));
}

#[test]
fn non_utf8_path_is_400() {
    let headers = vec![(":path".to_owned(), b"/public/\xff".to_vec())];
    let d = denial(get(&config(json!({})), "", &headers));
    assert_eq!((d.status, d.reason), (400, "path_invalid"));
    assert_eq!(d.description, "path is not valid UTF-8");
    let d = denial(get(&config(json!({})), "", &[]));
    assert_eq!(d.description, "path does not start with '/'");
}

#[test]
fn lenient_slash_settings_normalize() {
    let c = config(json!({"path": {"encoded_slash": "normalize", "backslash": "normalize"}}));
    let d = denial(get(&c, "/public%2F..%2Fadmin", &[]));
    assert_eq!(d.rule, "admin");
    let d = denial(get(&c, "/public\\..\\admin", &[]));
    assert_eq!(d.rule, "admin");
}

#[test]
fn foreign_scheme_on_public_route_is_admitted() {
    let headers = vec![("authorization".to_owned(), b"Basic YTpi".to_vec())];
    admission(get(&config(json!({})), "/public/x", &headers));
    let d = denial(get(&config(json!({})), "/admin", &headers));
    assert_eq!(d.reason, "unsupported_scheme");
}

#[test]
fn missing_pseudo_headers_do_not_panic() {
    let d = denial(run(&config(json!({})), "", "", "", &[]));
    assert_eq!(d.status, 400);
}

#[test]
fn rewrite_applies_every_change_once() {
    let c = config(json!({}));
    let mut headers = vec![
        (":method".to_owned(), b"GET".to_vec()),
        (":path".to_owned(), b"/x/../admin".to_vec()),
        ("x-user".to_owned(), b"mallory".to_vec()),
        ("x-user".to_owned(), b"mallory2".to_vec()),
        ("accept".to_owned(), b"*/*".to_vec()),
    ];
    headers.extend(bearer(&token(&["admin"])));
    let a = admission(get(&c, "/x/../admin", &headers));
    assert_eq!(
        a.change_count(),
        4,
        "x-user, authorization, :path and the new x-user"
    );
    // Four changes go in one map write for a map of five headers, in single calls for six.
    assert!(a.rewrites_whole_map(5));
    assert!(!a.rewrites_whole_map(6));
    let rewritten = a.rewrite(&headers);
    let values = |name: &str| -> Vec<&[u8]> {
        rewritten
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    };
    assert_eq!(values(":path"), vec![b"/admin".as_slice()]);
    assert_eq!(values("x-user"), vec![b"alice".as_slice()]);
    assert!(values("authorization").is_empty());
    assert_eq!(values("accept"), vec![b"*/*".as_slice()]);
    assert_eq!(values(":method"), vec![b"GET".as_slice()]);
}

#[test]
fn denial_carries_normalized_path_and_subject() {
    let d = denial(get(
        &config(json!({})),
        "/x/../admin?q=1",
        &bearer(&token(&["reader"])),
    ));
    assert_eq!(d.path.as_deref(), Some("/admin"));
    assert_eq!(d.subject.as_deref(), Some("alice"));
    let d = denial(get(&config(json!({})), "/admin", &[]));
    assert_eq!(d.subject, None);
}
