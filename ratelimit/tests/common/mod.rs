//! Helpers shared by the integration tests: a service on 127.0.0.1:0 with a limits file in a
//! temporary directory, a tonic client, and request builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{Code, DescriptorStatus};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use meshguard_ratelimit::redis_url::RedisUrl;
use meshguard_ratelimit::server::{self, RunningServer, ServeOptions, StoreOptions};
use meshguard_ratelimit::store::redis::RedisOptions;
use tonic::transport::Channel;

pub type Client = RateLimitServiceClient<Channel>;

/// A running service with its limits file.
pub struct Service {
    pub server: Option<RunningServer>,
    pub config_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    pub async fn start(limits_yaml: &str, store: StoreOptions) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("limits.yaml");
        std::fs::write(&config_path, limits_yaml).unwrap();
        Self::start_with_file(config_path, dir, store).await
    }

    async fn start_with_file(
        config_path: PathBuf,
        dir: tempfile::TempDir,
        store: StoreOptions,
    ) -> Service {
        let server = server::start(ServeOptions {
            config_path: config_path.clone(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            store,
            reload_interval: Duration::from_millis(50),
        })
        .await
        .unwrap();
        Service {
            server: Some(server),
            config_path,
            _dir: dir,
        }
    }

    pub fn running(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    pub async fn client(&self) -> Client {
        connect(self.running().grpc_addr).await
    }

    /// Body of GET /metrics.
    pub async fn metrics(&self) -> String {
        http_get(self.running().http_addr, "/metrics").await.1
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

pub async fn connect(addr: std::net::SocketAddr) -> Client {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    RateLimitServiceClient::new(channel)
}

/// Minimal HTTP/1.1 GET, returning the status code and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub fn redis_store(url: &str, timeout_ms: u64) -> StoreOptions {
    StoreOptions::Redis(RedisOptions {
        url: RedisUrl::parse(url).unwrap(),
        command_timeout: Duration::from_millis(timeout_ms),
        connect_timeout: Duration::from_millis(1000),
        ca_pem: None,
    })
}

pub fn descriptor(entries: &[(&str, &str)]) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: entries
            .iter()
            .map(|(key, value)| Entry {
                key: (*key).to_owned(),
                value: (*value).to_owned(),
            })
            .collect(),
        ..Default::default()
    }
}

pub fn request(domain: &str, descriptors: Vec<RateLimitDescriptor>, hits: u32) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.to_owned(),
        descriptors,
        hits_addend: hits,
    }
}

/// Sends one descriptor in domain `test` with hits_addend 0 (one hit).
pub async fn hit(client: &mut Client, entries: &[(&str, &str)]) -> RateLimitResponse {
    hit_in(client, "test", entries).await
}

/// Sends one descriptor in `domain` with hits_addend 0 (one hit).
pub async fn hit_in(
    client: &mut Client,
    domain: &str,
    entries: &[(&str, &str)],
) -> RateLimitResponse {
    client
        .should_rate_limit(request(domain, vec![descriptor(entries)], 0))
        .await
        .unwrap()
        .into_inner()
}

pub fn is_ok(response: &RateLimitResponse) -> bool {
    response.overall_code == i32::from(Code::Ok)
}

pub fn status(response: &RateLimitResponse) -> &DescriptorStatus {
    &response.statuses[0]
}

/// Sends `count` hits one after another and returns how many were allowed.
pub async fn allowed_of(client: &mut Client, entries: &[(&str, &str)], count: usize) -> usize {
    allowed_in(client, "test", entries, count).await
}

/// Sends `count` hits in `domain` one after another and returns how many were allowed.
pub async fn allowed_in(
    client: &mut Client,
    domain: &str,
    entries: &[(&str, &str)],
    count: usize,
) -> usize {
    let mut allowed = 0;
    for _ in 0..count {
        if is_ok(&hit_in(client, domain, entries).await) {
            allowed += 1;
        }
    }
    allowed
}

/// Sends `count` hits at once over `clients` (round robin) and returns how many were allowed.
pub async fn concurrent_allowed(
    clients: &[Client],
    entries: &[(&str, &str)],
    count: usize,
) -> usize {
    let entries: Vec<(String, String)> = entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let mut client = clients[i % clients.len()].clone();
        let entries = entries.clone();
        tasks.push(tokio::spawn(async move {
            let borrowed: Vec<(&str, &str)> = entries
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            is_ok(&hit(&mut client, &borrowed).await)
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        if task.await.unwrap() {
            allowed += 1;
        }
    }
    allowed
}

/// Limits file of domain `test` with one wildcard descriptor `k` and the given limits, each
/// written as a YAML flow mapping such as `{requests: 3, window: 2s}`.
pub fn limits_file(limits: &[&str]) -> String {
    let mut text = String::from(
        "domain: test\ndescriptors:\n  - name: k\n    entries:\n      - key: k\n    limits:\n",
    );
    for limit in limits {
        text.push_str(&format!("      - {limit}\n"));
    }
    text
}

/// Sleeps until the Unix clock is at `fraction` (0 to 1) of a window of `window`, so tests of
/// the sliding counter know where in its fixed window they start.
pub async fn align_to_window(window: Duration, fraction: f64) {
    let window_us = window.as_micros() as u64;
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let target = (window_us as f64 * fraction) as u64;
    let position = now_us % window_us;
    let wait = if position <= target {
        target - position
    } else {
        window_us - position + target
    };
    tokio::time::sleep(Duration::from_micros(wait)).await;
}
