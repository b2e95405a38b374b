//! Attack-pattern inspection through a real Envoy: path, query, headers and bodies, modes,
//! exclusions and body limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{plugin_config, Stack};
use meshguard_dev::http::{Request, Response};
use serde_json::{json, Value};

fn config_with(waf: Value, routes: Value) -> Value {
    let mut config = plugin_config();
    config["waf"] = waf;
    config["waf_routes"] = routes;
    config
}

fn blocking_stack() -> Stack {
    Stack::start_with(
        config_with(
            json!({
                "exclusions": [
                    {"targets": ["body:json:/password", "body:field:password"], "path_prefix": "/public/login"}
                ]
            }),
            json!([{"name": "legacy", "match": {"path": {"prefix": "/public/legacy"}}, "policy": {"mode": "detect"}}]),
        ),
        &[],
    )
}

fn assert_blocked(response: &Response, case: &str) {
    assert_eq!(response.status, 403, "{case}: {}", response.text());
    let body = response.json().unwrap();
    assert_eq!(body["reason"], "attack_detected", "{case}");
    assert!(
        !body["rule_ids"].as_array().unwrap().is_empty(),
        "{case}: no rule ids"
    );
    assert!(
        body["request_id"].as_str().is_some(),
        "{case}: no request id"
    );
    assert_eq!(
        response.header("x-frame-options").as_deref(),
        Some("DENY"),
        "{case}"
    );
}

#[test]
fn attacks_in_head_are_blocked() {
    let stack = blocking_stack();
    let cases = [
        (
            "sqli in query",
            Request::get("/public/search?q=1%27%20OR%201%3D1--"),
        ),
        (
            "union select in query",
            Request::get("/public/search?id=1%20UNION%20SELECT%20password%20FROM%20users"),
        ),
        (
            "xss in query",
            Request::get("/public/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        ),
        (
            "double-encoded xss",
            Request::get("/public/search?q=%253Cscript%253Ealert(1)%253C%252Fscript%253E"),
        ),
        (
            "traversal in query",
            Request::get("/public/file?name=..%2F..%2F..%2Fetc%2Fpasswd"),
        ),
        (
            "command injection",
            Request::get("/public/ping?host=127.0.0.1%3Bcat%20%2Fetc%2Fpasswd"),
        ),
        (
            "sqli in header",
            Request::get("/public/x").header("x-search", "1' OR '1'='1"),
        ),
        (
            "xss in user agent",
            Request::get("/public/x").header("user-agent", "<img src=x onerror=alert(1)>"),
        ),
        (
            "sqli in cookie",
            Request::get("/public/x").header("cookie", "id=1' UNION SELECT 1,2--"),
        ),
        (
            "sqli in path",
            Request::get("/public/items/1'%20OR%20'1'%3D'1"),
        ),
    ];
    for (case, request) in cases {
        assert_blocked(&request.send(stack.port()).unwrap(), case);
    }
}

#[test]
fn attacks_in_bodies_are_blocked() {
    let stack = blocking_stack();
    let cases = [
        (
            "json body",
            Request::post("/public/comments")
                .header("content-type", "application/json")
                .body(r#"{"comment": {"text": "<script>alert(document.cookie)</script>"}}"#),
        ),
        (
            "form body",
            Request::post("/public/comments")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("name=bob&q=1%27+UNION+SELECT+password+FROM+users--"),
        ),
        (
            "payload split across chunks",
            Request::post("/public/comments")
                .header("content-type", "application/json")
                .chunked([r#"{"q": "1' UNI"#, r#"ON SELECT password FR"#, r#"OM users--"}"#]),
        ),
        (
            "multipart field",
            Request::post("/public/upload")
                .header("content-type", "multipart/form-data; boundary=XyZ")
                .body("--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n<svg onload=alert(1)>\r\n--XyZ--\r\n"),
        ),
    ];
    for (case, request) in cases {
        assert_blocked(&request.send(stack.port()).unwrap(), case);
    }
}

#[test]
fn benign_requests_pass() {
    let stack = blocking_stack();
    let cases = [
        Request::get("/public/search?q=union%20station%20opening%20hours"),
        Request::get("/public/search?name=O%27Brien&show=Tom%20%26%20Jerry&discount=100%25"),
        Request::get("/public/docs/select-from-the-menu"),
        Request::post("/public/comments")
            .header("content-type", "application/json")
            .body(r#"{"comment": "I'd like to select a seat near the window, or drop by later."}"#),
        Request::post("/public/comments")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("title=Release+notes&body=See+https%3A%2F%2Fexample.com%2Fdocs%3Fv%3D2"),
    ];
    for request in cases {
        let response = request.send(stack.port()).unwrap();
        assert_eq!(response.status, 200, "{request:?}: {}", response.text());
    }
}

#[test]
fn excluded_field_passes() {
    let stack = blocking_stack();
    let login = |path: &str| {
        Request::post(path)
            .header("content-type", "application/json")
            .body(r#"{"user": "alice", "password": "x' OR '1'='1' --"}"#)
            .send(stack.port())
            .unwrap()
    };
    assert_eq!(
        login("/public/login").status,
        200,
        "excluded under /public/login"
    );
    assert_eq!(login("/public/other").status, 403, "not excluded elsewhere");
}

#[test]
fn detect_mode_lets_attacks_through_and_logs() {
    let stack = blocking_stack();
    let response = Request::get("/public/legacy/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        stack
            .envoy
            .wait_for_log("\"decision\":\"detect\"", Duration::from_secs(5)),
        "{}",
        stack.envoy.logs()
    );
    assert!(stack.envoy.logs().contains("\"event\":\"meshguard.waf\""));
    assert_eq!(
        stack
            .envoy
            .stat("wasmcustom.meshguard.waf.detected")
            .unwrap(),
        Some(1)
    );
}

#[test]
fn blocked_requests_are_counted_per_rule() {
    let stack = blocking_stack();
    Request::get("/public/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .send(stack.port())
        .unwrap();
    let stats = stack.envoy.stats().unwrap();
    assert!(
        stats.contains("wasmcustom.meshguard.waf.blocked: 1"),
        "{stats}"
    );
    assert!(stats.contains("wasmcustom.meshguard.waf.rule."), "{stats}");
}

#[test]
fn oversized_body_gets_413_and_is_not_forwarded() {
    let stack = Stack::start_with(config_with(json!({"max_body_bytes": 1024}), json!([])), &[]);
    let big = format!(r#"{{"text": "{}"}}"#, "a".repeat(4096));
    let response = Request::post("/public/comments")
        .header("content-type", "application/json")
        .body(&big)
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 413, "declared length: {}", response.text());
    assert_eq!(response.json().unwrap()["reason"], "body_too_large");
    let response = Request::post("/public/comments")
        .header("content-type", "application/json")
        .chunked(big.as_bytes().chunks(512))
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 413, "chunked: {}", response.text());
}

#[test]
fn conflicting_content_types_get_400() {
    let stack = blocking_stack();
    let response = Request::post("/public/comments")
        .header("content-type", "application/json")
        .header("content-type", "text/plain")
        .body("{}")
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 400, "{}", response.text());
    assert_eq!(
        response.json().unwrap()["reason"],
        "conflicting_content_type"
    );
}

#[test]
fn inspected_body_reaches_upstream_unchanged() {
    let stack = blocking_stack();
    let response = Request::post("/public/comments")
        .header("content-type", "application/json")
        .chunked([r#"{"a": "#, r#""b"}"#])
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.json().unwrap()["body"], r#"{"a": "b"}"#);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn gzip_bodies_are_decoded_before_inspection() {
    let stack = blocking_stack();
    let benign = Request::post("/public/comments")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(
            br#"{"name": "alice", "comment": "see you at union station"}"#,
        ))
        .send(stack.port())
        .unwrap();
    assert_eq!(benign.status, 200, "benign gzip body: {}", benign.text());
    let attack = Request::post("/public/comments")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(br#"{"q": "1' UNION SELECT password FROM users--"}"#))
        .send(stack.port())
        .unwrap();
    assert_blocked(&attack, "gzip attack body");
    let undecodable = Request::post("/public/comments")
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body([0x1b, 0x03, 0x00, 0xf8])
        .send(stack.port())
        .unwrap();
    assert_blocked(&undecodable, "brotli body");
}

#[test]
fn json_sent_as_octet_stream_is_inspected() {
    let stack = blocking_stack();
    for content_type in [
        "application/octet-stream",
        "application/x-json",
        "application/cbor",
    ] {
        let response = Request::post("/public/comments")
            .header("content-type", content_type)
            .body(r#"{"a": "1' UNION SELECT password FROM users--"}"#)
            .send(stack.port())
            .unwrap();
        assert_blocked(&response, content_type);
    }
}
