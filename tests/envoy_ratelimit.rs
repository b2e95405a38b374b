//! Rate limiting end to end: a real Envoy with the filter, the `meshguard-ratelimit` service
//! (in-memory or on a real Redis), and the echo upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{claims, plugin_config, token, Stack};
use meshguard_dev::envoy::{static_cluster, Envoy, EnvoyConfig};
use meshguard_dev::http::{Request, Response};
use meshguard_dev::redis::RedisServer;
use meshguard_dev::{free_port, workspace_root};
use serde_json::{json, Value};

/// Returns the service binary: `MESHGUARD_RATELIMIT_BIN`, else the workspace's debug build.
fn service_binary() -> PathBuf {
    let path = std::env::var_os("MESHGUARD_RATELIMIT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug/meshguard-ratelimit"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p meshguard-ratelimit` (make test does)",
        path.display()
    );
    path
}

/// A running `meshguard-ratelimit` with the shipped limits file; killed on drop.
struct Service {
    child: Child,
    grpc_port: u16,
}

impl Service {
    fn start(redis_url: Option<&str>) -> Self {
        let grpc_port = free_port().unwrap();
        let http_port = free_port().unwrap();
        let mut command = Command::new(service_binary());
        command
            .arg("serve")
            .arg("--config")
            .arg(workspace_root().join("envoy/ratelimit.yaml"))
            .arg("--grpc-addr")
            .arg(format!("127.0.0.1:{grpc_port}"))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(url) = redis_url {
            // Generous deadlines: these tests check behaviour on a shared machine, not speed.
            command
                .arg("--redis-url")
                .arg(url)
                .arg("--redis-timeout-ms")
                .arg("500");
        }
        let child = command.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", grpc_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "meshguard-ratelimit did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, grpc_port }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the shipped `rate_limit` section, pointed at the test cluster.
fn rate_limit_section(timeout_ms: u64) -> Value {
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("envoy/meshguard.json")).unwrap(),
    )
    .unwrap();
    let mut section = shipped["rate_limit"].clone();
    section["cluster"] = json!("ratelimit");
    section["timeout_ms"] = json!(timeout_ms);
    section
}

/// Starts Envoy whose `ratelimit` cluster is 127.0.0.1:`port`.
fn start_envoy(port: u16, timeout_ms: u64) -> Stack {
    start_envoy_with(port, timeout_ms, None)
}

/// Starts Envoy as `start_envoy` does, with an optional `waf` section.
fn start_envoy_with(port: u16, timeout_ms: u64, waf: Option<Value>) -> Stack {
    let mut plugin = plugin_config();
    if let Some(waf) = waf {
        plugin["waf"] = waf;
    }
    plugin["rules"].as_array_mut().unwrap().push(
        json!({"name": "auth", "match": {"path": {"prefix": "/api/auth"}}, "require": "public"}),
    );
    // The auth rule must come before the /api rule, which needs a token.
    let rules = plugin["rules"].as_array_mut().unwrap();
    let auth = rules.pop().unwrap();
    rules.insert(0, auth);
    plugin["rate_limit"] = rate_limit_section(timeout_ms);
    let upstream = meshguard_dev::echo::EchoServer::start().unwrap();
    let mut config = EnvoyConfig::new(plugin, upstream.addr);
    config
        .extra_clusters
        .push(static_cluster("ratelimit", "127.0.0.1", port, true));
    let envoy = Envoy::start(&config).unwrap_or_else(|e| panic!("{e:#}"));
    Stack { envoy, upstream }
}

fn login(stack: &Stack) -> Response {
    Request::post("/api/auth/login")
        .header("content-type", "application/json")
        .body(r#"{"user": "alice", "password": "pw"}"#)
        .send(stack.port())
        .unwrap()
}

fn assert_sixth_login_refused(stack: &Stack) {
    for attempt in 1..=5 {
        let response = login(stack);
        assert_eq!(response.status, 200, "login {attempt}: {}", response.text());
        assert_eq!(
            response.header("x-ratelimit-remaining").as_deref(),
            Some((5 - attempt).to_string().as_str()),
            "login {attempt}"
        );
    }
    let response = login(stack);
    assert_eq!(response.status, 429, "{}", response.text());
    let body = response.json().unwrap();
    assert_eq!(body["reason"], "rate_limited");
    let retry_after: u64 = response.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=900).contains(&retry_after),
        "retry-after {retry_after}"
    );
    assert_eq!(response.header("x-ratelimit-limit").as_deref(), Some("5"));
    assert_eq!(
        response.header("x-ratelimit-remaining").as_deref(),
        Some("0")
    );
    assert!(response.header("x-ratelimit-reset").is_some());
    let policy = response.header("ratelimit-policy").unwrap_or_default();
    assert!(policy.contains("q=5"), "{policy}");
    let field = response.header("ratelimit").unwrap_or_default();
    assert!(field.contains("r=0"), "{field}");
    assert_eq!(response.header("x-frame-options").as_deref(), Some("DENY"));
}

#[test]
fn sixth_login_gets_429_with_memory_store() {
    let service = Service::start(None);
    let stack = start_envoy(service.grpc_port, 1000);
    assert_sixth_login_refused(&stack);
}

#[test]
fn sixth_login_gets_429_with_redis() {
    let redis = RedisServer::start().unwrap();
    let service = Service::start(Some(&redis.url()));
    let stack = start_envoy(service.grpc_port, 1000);
    assert_sixth_login_refused(&stack);
}

#[test]
fn upstream_rate_limit_headers_are_replaced() {
    let service = Service::start(None);
    let stack = start_envoy(service.grpc_port, 1000);
    let response = Request::post("/api/auth/login")
        .header("content-type", "application/json")
        .header("x-echo-set-header", "x-ratelimit-remaining=9999")
        .header("x-echo-set-header", "X-RateLimit-Limit=10000")
        .body(r#"{"user": "alice", "password": "pw"}"#)
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header_all("x-ratelimit-remaining"), vec!["4"]);
    assert_eq!(response.header_all("x-ratelimit-limit"), vec!["5"]);
}

#[test]
fn forwarded_for_does_not_open_new_quota() {
    let service = Service::start(None);
    let stack = start_envoy(service.grpc_port, 1000);
    for attempt in 1..=5 {
        assert_eq!(login(&stack).status, 200, "login {attempt}");
    }
    for spoofed in ["10.0.0.1", "10.0.0.2", "203.0.113.9, 10.0.0.3"] {
        let response = Request::post("/api/auth/login")
            .header("x-forwarded-for", spoofed)
            .body("{}")
            .send(stack.port())
            .unwrap();
        assert_eq!(response.status, 429, "X-Forwarded-For: {spoofed}");
    }
}

#[test]
fn verified_subject_has_its_own_quota() {
    let service = Service::start(None);
    let stack = start_envoy(service.grpc_port, 1000);
    for _ in 0..5 {
        assert_eq!(login(&stack).status, 200);
    }
    assert_eq!(login(&stack).status, 429, "anonymous quota used up");
    let alice = token("rsa", "RS256", &claims("alice", &[]));
    let response = Request::post("/api/auth/login")
        .bearer(&alice)
        .body("{}")
        .send(stack.port())
        .unwrap();
    assert_eq!(
        response.status,
        200,
        "alice counts separately: {}",
        response.text()
    );
}

#[test]
fn body_reaches_upstream_after_the_call() {
    let service = Service::start(None);
    let stack = start_envoy(service.grpc_port, 1000);
    let response = Request::post("/api/auth/login")
        .chunked(["{\"user\": ", "\"alice\"}"])
        .send(stack.port())
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.json().unwrap()["body"], "{\"user\": \"alice\"}");
}

#[test]
fn inspected_body_follows_the_rate_limit_call() {
    let service = Service::start(None);
    let stack = start_envoy_with(service.grpc_port, 1000, Some(json!({})));
    let clean = Request::post("/api/auth/login")
        .header("content-type", "application/json")
        .chunked([r#"{"user": "#, r#""alice"}"#])
        .send(stack.port())
        .unwrap();
    assert_eq!(clean.status, 200, "{}", clean.text());
    assert_eq!(clean.json().unwrap()["body"], r#"{"user": "alice"}"#);
    let attack = Request::post("/api/auth/login")
        .header("content-type", "application/json")
        .chunked([
            r#"{"user": "x' UNION SEL"#,
            r#"ECT password FROM users--"}"#,
        ])
        .send(stack.port())
        .unwrap();
    assert_eq!(attack.status, 403, "{}", attack.text());
    assert_eq!(attack.json().unwrap()["reason"], "attack_detected");
    // Both logins counted against the quota before their bodies were inspected.
    let third = login(&stack);
    assert_eq!(third.header("x-ratelimit-remaining").as_deref(), Some("2"));
}

#[test]
fn stopped_service_follows_failure_mode() {
    // Nothing listens on this port: Envoy's gRPC client fails at once.
    let stack = start_envoy(free_port().unwrap(), 200);
    let jwt = token("rsa", "RS256", &claims("alice", &[]));
    let response = Request::get("/api/orders")
        .bearer(&jwt)
        .send(stack.port())
        .unwrap();
    assert_eq!(
        response.status,
        200,
        "default rule fails open: {}",
        response.text()
    );
    let response = login(&stack);
    assert_eq!(
        response.status,
        503,
        "login fails closed: {}",
        response.text()
    );
    assert_eq!(response.json().unwrap()["reason"], "ratelimit_error");
    assert_eq!(
        response.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let response = Request::get("/healthz").send(stack.port()).unwrap();
    assert_eq!(response.status, 200, "health is never limited");
}

#[test]
fn silent_service_delays_requests_only_until_the_deadline() {
    // Accepts connections and never responds.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let timeout_ms = 300;
    let stack = start_envoy(port, timeout_ms);
    let jwt = token("rsa", "RS256", &claims("alice", &[]));
    for _ in 0..2 {
        let started = Instant::now();
        let response = Request::get("/api/orders")
            .bearer(&jwt)
            .send(stack.port())
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(response.status, 200, "{}", response.text());
        // Bounded far below Envoy's 15 s route timeout: the watchdog ended the call.
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
        let started = Instant::now();
        let response = login(&stack);
        assert_eq!(response.status, 503, "{}", response.text());
        assert_eq!(response.json().unwrap()["reason"], "ratelimit_timeout");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    drop(silent);
}
