//! The limits file: `check` output, reload of a changed file, an invalid file keeping the last
//! good configuration, and the shipped `envoy/ratelimit.yaml`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use meshguard_ratelimit::server::StoreOptions;

const BINARY: &str = env!("CARGO_BIN_EXE_meshguard-ratelimit");

fn shipped_limits() -> std::path::PathBuf {
    meshguard_dev::workspace_root().join("envoy/ratelimit.yaml")
}

fn run_check(text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.yaml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(BINARY)
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_shipped_limits() {
    let output = Command::new(BINARY)
        .arg("check")
        .arg(shipped_limits())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains("valid (domain \"meshguard\", 6 descriptors, 6 limits)"),
        "{stdout}"
    );
}

#[test]
fn check_reports_field_paths() {
    let text = "domain: d\ndescriptors:\n  - name: a\n    entries: [{key: k}]\n    limits:\n      - {requests: 0, window: 1s}\n      - {requests: 1, window: 5y}\n";
    let (success, _, stderr) = run_check(text);
    assert!(!success);
    assert!(
        stderr.contains("descriptors[0].limits[0].requests: must be at least 1"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("descriptors[0].limits[1].window: invalid window \"5y\": unknown unit \"y\""),
        "{stderr}"
    );
    assert!(stderr.contains("2 problems found"), "{stderr}");
}

#[test]
fn check_reports_yaml_errors_with_position() {
    let (success, _, stderr) = run_check(
        "domain: d\ndescriptors:\n  - name: a\n    entries: [{key: k, valu: x}]\n    limits: []\n",
    );
    assert!(!success);
    assert!(stderr.contains("unknown field `valu`"), "{stderr}");
    assert!(stderr.contains("line 4"), "{stderr}");
}

#[test]
fn check_reports_missing_file() {
    let output = Command::new(BINARY)
        .args(["check", "/nonexistent/limits.yaml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("failed to read limits file /nonexistent/limits.yaml"),
        "{stderr}"
    );
}

/// Polls until `probe` returns true, for up to 5 s.
async fn eventually<F, Fut>(mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_file_is_reloaded() {
    let service = Service::start(
        &limits_file(&["{requests: 1, window: 1h}"]),
        StoreOptions::Memory,
    )
    .await;
    let mut client = service.client().await;
    assert_eq!(allowed_of(&mut client, &[("k", "before")], 3).await, 1);

    std::fs::write(
        &service.config_path,
        limits_file(&["{requests: 3, window: 1h}"]),
    )
    .unwrap();
    let reloaded = eventually(|| {
        let mut client = client.clone();
        async move {
            let response = hit(&mut client, &[("k", "probe")]).await;
            status(&response)
                .current_limit
                .as_ref()
                .unwrap()
                .requests_per_unit
                == 3
        }
    })
    .await;
    assert!(reloaded, "the new limit never took effect");
    assert_eq!(allowed_of(&mut client, &[("k", "after")], 5).await, 3);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_file_keeps_last_good_config() {
    let service = Service::start(
        &limits_file(&["{requests: 2, window: 1h}"]),
        StoreOptions::Memory,
    )
    .await;
    let mut client = service.client().await;
    std::fs::write(
        &service.config_path,
        "domain: test\ndescriptors: [{name: k}]\n",
    )
    .unwrap();
    let rejected = eventually(|| async {
        service
            .metrics()
            .await
            .contains("meshguard_ratelimit_config_loads_total{result=\"failure\"} 1")
    })
    .await;
    assert!(rejected, "the invalid file was never read");
    assert!(service
        .metrics()
        .await
        .lines()
        .any(|line| line == "meshguard_ratelimit_config_valid 0"));
    assert_eq!(allowed_of(&mut client, &[("k", "kept")], 4).await, 2);

    // A valid file after the invalid one takes effect.
    std::fs::write(
        &service.config_path,
        limits_file(&["{requests: 4, window: 1h}"]),
    )
    .unwrap();
    let reloaded = eventually(|| async {
        service
            .metrics()
            .await
            .lines()
            .any(|line| line == "meshguard_ratelimit_config_valid 1")
    })
    .await;
    assert!(reloaded, "the fixed file was never loaded");
    assert_eq!(allowed_of(&mut client, &[("k", "fixed")], 6).await, 4);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_limits_match_filter_descriptors() {
    let text = std::fs::read_to_string(shipped_limits()).unwrap();
    let service = Service::start(&text, StoreOptions::Memory).await;
    let mut client = service.client().await;
    let expected = [
        ("login", 5, "5 per 15m"),
        ("register", 3, "3 per 1h"),
        ("dataset_upload", 10, "10 per 1h"),
        ("ai_analysis", 20, "20 per 1h"),
        ("compute_jobs", 50, "50 per 1h"),
        ("default", 100, "100 per 1h"),
    ];
    for (endpoint, requests, name) in expected {
        let entries = [
            ("endpoint", endpoint),
            ("remote_address", "192.0.2.10"),
            ("subject", "anonymous"),
        ];
        let response = hit_in(&mut client, "meshguard", &entries).await;
        let limit = status(&response).current_limit.clone().unwrap();
        assert_eq!(limit.requests_per_unit, requests, "{endpoint}");
        assert_eq!(limit.name, name, "{endpoint}");
    }

    // The sixth login from one address and subject is over the limit. Another subject or
    // address has its own counter.
    let login = |address, subject| {
        [
            ("endpoint", "login"),
            ("remote_address", address),
            ("subject", subject),
        ]
    };
    assert_eq!(
        allowed_in(&mut client, "meshguard", &login("192.0.2.20", "alice"), 6).await,
        5
    );
    assert_eq!(
        allowed_in(&mut client, "meshguard", &login("192.0.2.20", "bob"), 1).await,
        1
    );
    assert_eq!(
        allowed_in(&mut client, "meshguard", &login("192.0.2.21", "alice"), 1).await,
        1
    );

    // An endpoint name the file does not list is not limited.
    let unknown = [
        ("endpoint", "reports"),
        ("remote_address", "192.0.2.10"),
        ("subject", "anonymous"),
    ];
    assert_eq!(
        allowed_in(&mut client, "meshguard", &unknown, 150).await,
        150
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_grpc_health_report_serving() {
    let service = Service::start(
        &limits_file(&["{requests: 1, window: 1s}"]),
        StoreOptions::Memory,
    )
    .await;
    let (code, body) = http_get(service.running().http_addr, "/healthz").await;
    assert_eq!(code, 200);
    assert_eq!(body, "ok\n");

    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", service.running().grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for name in ["", "envoy.service.ratelimit.v3.RateLimitService"] {
        let response = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: name.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status,
            i32::from(tonic_health::pb::health_check_response::ServingStatus::Serving),
            "service {name:?}"
        );
    }
    service.stop().await;
}
