//! Token verification, access rules and security headers through a real Envoy running the
//! compiled filter, with an echo upstream that shows what was forwarded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{claims, key, plugin_config, token, with, Stack};
use meshguard_dev::http::{Request, Response};
use meshguard_dev::tokens::{hmac_signature, now, signing_input, SigningKey};
use serde_json::json;

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains; preload",
    ),
    ("referrer-policy", "strict-origin-when-cross-origin"),
];

fn assert_security_headers(response: &Response, context: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            response.header(name).as_deref(),
            Some(*value),
            "{context}: header {name}"
        );
    }
    assert!(
        response.header("content-security-policy").is_some(),
        "{context}: content-security-policy"
    );
    let permissions = response.header("permissions-policy").unwrap_or_default();
    assert!(
        permissions.contains("camera=()"),
        "{context}: {permissions}"
    );
    assert_eq!(response.header("server"), None, "{context}: server header");
}

fn reason(response: &Response) -> String {
    response.json().unwrap()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn valid_tokens_of_each_key_type_pass() {
    let stack = Stack::start();
    for (key_name, alg) in [
        ("hs256", "HS256"),
        ("rsa", "RS256"),
        ("p256", "ES256"),
        ("p384", "ES384"),
        ("ed25519", "EdDSA"),
    ] {
        let jwt = token(key_name, alg, &claims("alice", &["reader"]));
        let response = Request::get("/api/orders")
            .bearer(&jwt)
            .send(stack.port())
            .unwrap();
        assert_eq!(response.status, 200, "{alg}: {}", response.text());
        assert_eq!(
            response.echoed_header("x-user").unwrap(),
            vec!["alice"],
            "{alg}"
        );
        assert_eq!(
            response.echoed_header("x-roles").unwrap(),
            vec!["reader"],
            "{alg}"
        );
        assert!(
            response.echoed_header("authorization").unwrap().is_empty(),
            "{alg}: authorization must not be forwarded"
        );
    }
}

/// Builds each kind of invalid token with the reason code the filter must give.
fn invalid_tokens() -> Vec<(&'static str, String, &'static str)> {
    let valid = claims("alice", &["admin"]);
    let now = now();
    let rsa_public = key("rsa").public_jwk(Some("RS256"));
    let confusion = {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": "test-rsa"});
        let signed = signing_input(&header, &valid).unwrap();
        let signature = hmac_signature(
            "HS256",
            rsa_public.to_string().as_bytes(),
            signed.as_bytes(),
        );
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    };
    let alg_none = format!(
        "{}.",
        signing_input(&json!({"alg": "none", "typ": "JWT"}), &valid).unwrap()
    );
    let tampered = {
        let jwt = token("hs256", "HS256", &valid);
        let parts: Vec<&str> = jwt.split('.').collect();
        let forged =
            URL_SAFE_NO_PAD.encode(with(valid.clone(), json!({"sub": "root"})).to_string());
        format!("{}.{forged}.{}", parts[0], parts[2])
    };
    let valid_rsa = token("rsa", "RS256", &valid);
    let oversized = token(
        "hs256",
        "HS256",
        &with(valid.clone(), json!({"pad": "x".repeat(9000)})),
    );
    vec![
        (
            "expired",
            token(
                "rsa",
                "RS256",
                &with(valid.clone(), json!({"exp": now - 3600})),
            ),
            "token_expired",
        ),
        (
            "not yet valid",
            token(
                "rsa",
                "RS256",
                &with(valid.clone(), json!({"nbf": now + 3600})),
            ),
            "token_not_yet_valid",
        ),
        (
            "wrong issuer",
            token(
                "rsa",
                "RS256",
                &with(valid.clone(), json!({"iss": "https://evil.test"})),
            ),
            "unknown_issuer",
        ),
        (
            "wrong audience",
            token(
                "rsa",
                "RS256",
                &with(valid.clone(), json!({"aud": "other-api"})),
            ),
            "audience_mismatch",
        ),
        (
            "wrong algorithm",
            token("rsa", "RS384", &valid),
            "algorithm_not_allowed",
        ),
        ("alg none", alg_none, "algorithm_not_allowed"),
        (
            "hs256 with rsa public key",
            confusion,
            "algorithm_not_allowed",
        ),
        ("tampered payload", tampered, "signature_invalid"),
        (
            "truncated",
            valid_rsa[..valid_rsa.len() - 2].to_owned(),
            "signature_invalid",
        ),
        (
            "two parts",
            valid_rsa.rsplit_once('.').unwrap().0.to_owned(),
            "token_malformed",
        ),
        ("oversized", oversized, "token_too_large"),
        (
            "refresh token",
            token(
                "rsa",
                "RS256",
                &with(valid.clone(), json!({"type": "refresh"})),
            ),
            "wrong_token_type",
        ),
        (
            "string exp",
            token(
                "rsa",
                "RS256",
                &with(valid.clone(), json!({"exp": "never"})),
            ),
            "invalid_claim",
        ),
        (
            "unknown crit",
            key("rsa")
                .sign("RS256", &valid, &json!({"crit": ["x"]}))
                .unwrap(),
            "unsupported_crit",
        ),
        ("garbage", "not-a-token".to_owned(), "token_malformed"),
    ]
}

#[test]
fn invalid_tokens_get_401_invalid_token() {
    let stack = Stack::start();
    for (case, jwt, expected_reason) in invalid_tokens() {
        let response = Request::get("/admin/users")
            .bearer(&jwt)
            .send(stack.port())
            .unwrap();
        assert_eq!(response.status, 401, "{case}: {}", response.text());
        assert_eq!(reason(&response), expected_reason, "{case}");
        let challenge = response.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer realm=\"meshguard\", error=\"invalid_token\""),
            "{case}: {challenge}"
        );
        assert!(
            challenge.contains("error_description="),
            "{case}: {challenge}"
        );
        assert_eq!(
            response.header("content-type").as_deref(),
            Some("application/json"),
            "{case}"
        );
        assert_security_headers(&response, case);
    }
}

#[test]
fn invalid_token_on_public_route_is_rejected() {
    let stack = Stack::start();
    let expired = token(
        "rsa",
        "RS256",
        &with(claims("a", &[]), json!({"exp": now() - 3600})),
    );
    let response = Request::get("/public/info")
        .bearer(&expired)
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(reason(&response), "token_expired");
}

#[test]
fn roles_decide_between_200_and_403() {
    let stack = Stack::start();
    let admin = token("rsa", "RS256", &claims("root", &["admin", "ops"]));
    let response = Request::get("/admin/users")
        .bearer(&admin)
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_security_headers(&response, "200");

    let reader = token("rsa", "RS256", &claims("alice", &["reader"]));
    let response = Request::get("/admin/users")
        .bearer(&reader)
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(reason(&response), "role_missing");
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert_security_headers(&response, "403");

    let response = Request::get("/admin/users").send(stack.port()).unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(reason(&response), "missing_token");
    assert_eq!(
        response.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"meshguard\"")
    );
    assert_security_headers(&response, "401");
}

#[test]
fn unmatched_path_denied_by_default() {
    let stack = Stack::start();
    let jwt = token("rsa", "RS256", &claims("alice", &["admin"]));
    let response = Request::get("/elsewhere")
        .bearer(&jwt)
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 403);
    assert_eq!(reason(&response), "no_matching_rule");
    assert_security_headers(&response, "no rule");
}

#[test]
fn spoofed_claim_headers_are_removed() {
    let stack = Stack::start();
    let response = Request::get("/public/page")
        .header("x-user", "mallory")
        .header("X-User", "mallory2")
        .header("x_user", "mallory3")
        .header("x-roles", "admin")
        .header("X_Roles", "admin")
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.echoed_header("x-user").unwrap().is_empty());
    assert!(response.echoed_header("x_user").unwrap().is_empty());
    assert!(response.echoed_header("x-roles").unwrap().is_empty());
    assert!(response.echoed_header("x_roles").unwrap().is_empty());

    let jwt = token("rsa", "RS256", &claims("alice", &["reader"]));
    let response = Request::get("/api/me")
        .bearer(&jwt)
        .header("x-user", "mallory")
        .header("x-roles", "admin")
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.echoed_header("x-user").unwrap(), vec!["alice"]);
    assert_eq!(response.echoed_header("x-roles").unwrap(), vec!["reader"]);
}

#[test]
fn path_variants_meet_the_admin_rule() {
    let stack = Stack::start();
    let reader = token("rsa", "RS256", &claims("alice", &["reader"]));
    let admin = token("rsa", "RS256", &claims("root", &["admin"]));
    for path in [
        "/admin",
        "//admin",
        "/./admin",
        "/public/../admin",
        "/%61dmin",
        "/public/%2e%2e/admin",
    ] {
        let response = Request::get(path).send(stack.port()).unwrap();
        assert_eq!(response.status, 401, "{path} without token");
        let response = Request::get(path)
            .bearer(&reader)
            .send(stack.port())
            .unwrap();
        assert_eq!(response.status, 403, "{path} as reader");
        let response = Request::get(path)
            .bearer(&admin)
            .send(stack.port())
            .unwrap();
        assert_eq!(response.status, 200, "{path} as admin");
        assert_eq!(
            response.echoed_path().unwrap(),
            "/admin",
            "{path} upstream path"
        );
    }
}

#[test]
fn encoded_slash_and_backslash_get_400() {
    let stack = Stack::start();
    for path in [
        "/public%2F..%2Fadmin",
        "/public%2f..%2fadmin",
        "/public%5C..%5Cadmin",
        "/a%zz",
    ] {
        let response = Request::get(path).send(stack.port()).unwrap();
        assert_eq!(response.status, 400, "{path}: {}", response.text());
        assert_eq!(reason(&response), "path_invalid", "{path}");
        assert_security_headers(&response, path);
    }
}

#[test]
fn query_is_kept_and_normalized_path_forwarded() {
    let stack = Stack::start();
    let response = Request::get("/public/./a//b?q=1&r=%2F")
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.echoed_path().unwrap(), "/public/a/b?q=1&r=%2F");
}

#[test]
fn malformed_credentials_get_401_invalid_request() {
    let stack = Stack::start();
    let jwt = token("rsa", "RS256", &claims("alice", &["admin"]));
    let cases = [
        (
            "two authorization headers",
            Request::get("/api/x").bearer(&jwt).bearer(&jwt),
            "multiple_tokens",
        ),
        (
            "empty bearer",
            Request::get("/api/x").header("authorization", "Bearer "),
            "empty_token",
        ),
        (
            "basic scheme on protected route",
            Request::get("/api/x").header("authorization", "Basic YWxpY2U6cHc="),
            "unsupported_scheme",
        ),
        (
            "non-UTF-8 credentials",
            Request::get("/api/x").header("authorization", b"Bearer \xff\xfe\xfd"),
            "token_malformed",
        ),
    ];
    for (case, request, expected) in cases {
        let response = request.send(stack.port()).unwrap();
        assert_eq!(response.status, 401, "{case}: {}", response.text());
        assert_eq!(reason(&response), expected, "{case}");
        let challenge = response.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_request\""),
            "{case}: {challenge}"
        );
    }
    let response = Request::get("/public/x")
        .header("authorization", "Basic YWxpY2U6cHc=")
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200, "basic scheme on public route");
}

#[test]
fn bearer_scheme_is_case_insensitive() {
    let stack = Stack::start();
    let jwt = token("rsa", "RS256", &claims("alice", &[]));
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let response = Request::get("/api/x")
            .header("authorization", format!("{scheme} {jwt}"))
            .send(stack.port())
            .unwrap();
        assert_eq!(response.status, 200, "{scheme}");
    }
}

#[test]
fn non_utf8_header_values_do_not_break_the_filter() {
    let stack = Stack::start();
    let response = Request::get("/public/x")
        .header("x-binary", b"\xff\xfe caf\xe9")
        .header("x-user", b"\xc3\x28")
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.echoed_header("x-user").unwrap().is_empty());
    // The VM still serves afterwards: a panic would have broken every later request.
    let response = Request::get("/healthz").send(stack.port()).unwrap();
    assert_eq!(response.status, 200);
}

#[test]
fn upstream_security_header_is_overwritten_and_server_removed() {
    let stack = Stack::start();
    let response = Request::get("/public/x")
        .header("x-echo-set-header", "x-frame-options=ALLOWALL")
        .header("x-echo-set-header", "x-frame-options=SAMEORIGIN")
        .header("x-echo-set-header", "server=upstream/1.0")
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.header_all("x-frame-options"), vec!["DENY"]);
    assert_eq!(response.header("server"), None);
}

#[test]
fn kept_header_preserves_upstream_value() {
    let mut config = plugin_config();
    config["security_headers"] = json!({"content_security_policy": {"overwrite": false}});
    let stack = Stack::start_with(config, &[]);
    let response = Request::get("/public/x")
        .header(
            "x-echo-set-header",
            "content-security-policy=default-src https:",
        )
        .send(stack.port())
        .unwrap();
    assert_eq!(
        response.header_all("content-security-policy"),
        vec!["default-src https:"]
    );
    let response = Request::get("/public/x").send(stack.port()).unwrap();
    assert!(response
        .header("content-security-policy")
        .unwrap_or_default()
        .contains("default-src 'self'"));
}

#[test]
fn dry_run_rule_logs_and_lets_through() {
    let stack = Stack::start();
    let reader = token("rsa", "RS256", &claims("alice", &["reader"]));
    let response = Request::get("/audit/log")
        .bearer(&reader)
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        stack.envoy.wait_for_log(
            "\"decision\":\"dry_run_deny\"",
            std::time::Duration::from_secs(5)
        ),
        "{}",
        stack.envoy.logs()
    );
    let counted = stack
        .envoy
        .stat("wasmcustom.meshguard.dry_run_denied")
        .unwrap();
    assert_eq!(counted, Some(1));
}

#[test]
fn denials_are_counted_by_reason() {
    let stack = Stack::start();
    Request::get("/api/x").send(stack.port()).unwrap();
    Request::get("/api/x").send(stack.port()).unwrap();
    let counted = stack
        .envoy
        .stat("wasmcustom.meshguard.denied.reason.missing_token")
        .unwrap();
    assert_eq!(counted, Some(2));
}

#[test]
fn audit_event_never_contains_the_token() {
    let stack = Stack::start();
    let expired = token(
        "rsa",
        "RS256",
        &with(claims("a", &[]), json!({"exp": now() - 3600})),
    );
    let response = Request::get("/api/x?secret=hunter2")
        .bearer(&expired)
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 401);
    assert!(stack.envoy.wait_for_log(
        "\"reason\":\"token_expired\"",
        std::time::Duration::from_secs(5)
    ));
    let logs = stack.envoy.logs();
    let signature = expired.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature), "token signature in log");
    assert!(!logs.contains("hunter2"), "query value in log");
}

#[test]
fn hmac_secret_comes_from_vm_environment() {
    let secret = "an-hmac-secret-of-at-least-32-bytes!!";
    let config = json!({
        "providers": [{
            "name": "env",
            "issuer": common::ISSUER,
            "hmac_secrets": [{"kid": "env-key", "alg": "HS256", "env": "MESHGUARD_TEST_SECRET"}],
        }],
        "rules": [{"name": "all", "require": "authenticated"}],
    });
    let stack = Stack::start_with(config, &[("MESHGUARD_TEST_SECRET", secret)]);
    let jwt = SigningKey::hmac("env-key", secret.as_bytes())
        .sign("HS256", &claims("alice", &[]), &json!({}))
        .unwrap();
    let response = Request::get("/x").bearer(&jwt).send(stack.port()).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let forged = SigningKey::hmac("env-key", b"another-secret-of-at-least-32-bytes!!")
        .sign("HS256", &claims("alice", &[]), &json!({}))
        .unwrap();
    let response = Request::get("/x")
        .bearer(&forged)
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 401);
}

#[test]
fn authorization_forwarded_when_configured() {
    let mut config = plugin_config();
    config["forward_authorization"] = json!(true);
    let stack = Stack::start_with(config, &[]);
    let jwt = token("rsa", "RS256", &claims("alice", &[]));
    let response = Request::get("/api/x")
        .bearer(&jwt)
        .send(stack.port())
        .unwrap();
    assert_eq!(
        response.echoed_header("authorization").unwrap(),
        vec![format!("Bearer {jwt}")]
    );
}

#[test]
fn query_and_cookie_sources_accepted() {
    let mut config = plugin_config();
    config["token"] = json!({"sources": ["bearer", {"query": {"name": "access_token"}}, {"cookie": {"name": "session"}}]});
    let stack = Stack::start_with(config, &[]);
    let jwt = token("rsa", "RS256", &claims("alice", &[]));
    let response = Request::get(&format!("/api/x?access_token={jwt}"))
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200, "query: {}", response.text());
    let response = Request::get("/api/x")
        .header("cookie", format!("theme=dark; session={jwt}"))
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200, "cookie: {}", response.text());
    let response = Request::get(&format!("/api/x?access_token={jwt}"))
        .bearer(&jwt)
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 401, "header plus query");
    assert_eq!(reason(&response), "multiple_tokens");
}
