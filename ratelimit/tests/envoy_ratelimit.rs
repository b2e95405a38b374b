//! Envoy's own `envoy.filters.http.ratelimit` filter calling meshguard-ratelimit: a route with
//! rate-limit actions gets 429 once the limit is spent. Envoy is found through `ENVOY_BIN`,
//! then `PATH` (see `meshguard_dev::envoy`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use meshguard_dev::echo::EchoServer;
use meshguard_dev::envoy::{static_cluster, Envoy, EnvoyConfig};
use meshguard_dev::http::Request;
use meshguard_ratelimit::server::StoreOptions;
use serde_json::json;

const LIMITS: &str = r#"
domain: envoy_test
descriptors:
  - name: login
    entries:
      - key: endpoint
        value: login
      - key: remote_address
    limits:
      - requests: 5
        window: 15m
"#;

/// Builds a bootstrap with Envoy's rate-limit filter (and no meshguard filter) in front of the
/// echo upstream. Requests to `/login` send the descriptor (endpoint=login, remote_address).
fn bootstrap(
    upstream: std::net::SocketAddr,
    rls_port: u16,
    failure_mode_deny: bool,
) -> serde_json::Value {
    let mut config = EnvoyConfig::new(json!({}), upstream);
    config.with_filter = false;
    config.extra_clusters.push(static_cluster(
        "meshguard_ratelimit",
        "127.0.0.1",
        rls_port,
        true,
    ));
    config.filters_before.push(json!({
        "name": "envoy.filters.http.ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "domain": "envoy_test",
            "failure_mode_deny": failure_mode_deny,
            "timeout": "1s",
            "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
            "rate_limit_service": {
                "grpc_service": {"envoy_grpc": {"cluster_name": "meshguard_ratelimit"}},
                "transport_api_version": "V3"
            }
        }
    }));
    let mut bootstrap = config.bootstrap().unwrap();
    let virtual_host = bootstrap
        .pointer_mut("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/route_config/virtual_hosts/0")
        .unwrap();
    virtual_host["routes"] = json!([
        {
            "match": {"prefix": "/login"},
            "route": {
                "cluster": "upstream",
                "rate_limits": [{"actions": [
                    {"generic_key": {"descriptor_key": "endpoint", "descriptor_value": "login"}},
                    {"remote_address": {}}
                ]}]
            }
        },
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}
    ]);
    bootstrap
}

async fn get(port: u16, path: &'static str) -> meshguard_dev::http::Response {
    tokio::task::spawn_blocking(move || Request::get(path).send(port).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_ratelimit_filter_gets_429() {
    let service = Service::start(LIMITS, StoreOptions::Memory).await;
    let upstream = EchoServer::start().unwrap();
    let bootstrap = bootstrap(upstream.addr, service.running().grpc_addr.port(), false);
    let envoy = tokio::task::spawn_blocking(move || Envoy::start_bootstrap(&bootstrap).unwrap())
        .await
        .unwrap();

    for attempt in 1..=5 {
        let response = get(envoy.port, "/login").await;
        assert_eq!(response.status, 200, "login {attempt}: {}", envoy.logs());
        let remaining = response.header("x-ratelimit-remaining");
        assert_eq!(
            remaining.as_deref(),
            Some((5 - attempt).to_string().as_str())
        );
    }
    let rejected = get(envoy.port, "/login").await;
    assert_eq!(rejected.status, 429);
    assert_eq!(
        rejected.header("x-envoy-ratelimited").as_deref(),
        Some("true")
    );
    assert_eq!(
        rejected.header("x-ratelimit-remaining").as_deref(),
        Some("0")
    );
    // Envoy writes the limit with the window of the reported unit: 15m maps to HOUR.
    let limit = rejected.header("x-ratelimit-limit").unwrap();
    assert!(limit.starts_with("5, 5;w=3600"), "{limit}");
    let reset: u64 = rejected
        .header("x-ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&reset), "reset {reset}");

    // Routes without rate-limit actions send no descriptor and are never limited.
    for _ in 0..8 {
        assert_eq!(get(envoy.port, "/other").await.status, 200);
    }
    drop(envoy);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_failure_mode_applies_on_unavailable() {
    // A Redis URL with no server behind it, so every call fails and returns UNAVAILABLE.
    let port = meshguard_dev::free_port().unwrap();
    let service = Service::start(
        LIMITS,
        redis_store(&format!("redis://127.0.0.1:{port}"), 50),
    )
    .await;
    let upstream = EchoServer::start().unwrap();
    let rls_port = service.running().grpc_addr.port();

    let open = bootstrap(upstream.addr, rls_port, false);
    let envoy = tokio::task::spawn_blocking(move || Envoy::start_bootstrap(&open).unwrap())
        .await
        .unwrap();
    assert_eq!(get(envoy.port, "/login").await.status, 200);
    drop(envoy);

    let closed = bootstrap(upstream.addr, rls_port, true);
    let envoy = tokio::task::spawn_blocking(move || Envoy::start_bootstrap(&closed).unwrap())
        .await
        .unwrap();
    // In deny mode Envoy's rate-limit filter responds 500 to a failed call.
    assert_eq!(get(envoy.port, "/login").await.status, 500);
    drop(envoy);
    service.stop().await;
}
