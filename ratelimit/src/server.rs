//! Starts and stops the service: gRPC (RLS and health) and HTTP listeners, limits-file reload
//! and the store probe.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::config::{self, Config};
use crate::http::{self, HttpState};
use crate::metrics::Metrics;
use crate::service::{RateLimiter, SharedConfig};
use crate::store::redis::RedisOptions;
use crate::store::{MemoryStore, RedisStore, Store};

/// Interval of the store probe behind `/healthz` and gRPC health.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Counter storage of the service.
#[derive(Debug, Clone)]
pub enum StoreOptions {
    Memory,
    Redis(RedisOptions),
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config_path: PathBuf,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub store: StoreOptions,
    /// How often the limits file is read again to look for changes.
    pub reload_interval: Duration,
}

/// A started service. Dropping it without [`RunningServer::shutdown`] leaves its tasks running
/// until the runtime ends.
pub struct RunningServer {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting connections, lets calls in flight finish, and waits for every task.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "service task failed during shutdown");
            }
        }
        tracing::info!("service stopped");
    }
}

async fn shutdown_signal(mut receiver: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means shut down.
    let _ = receiver.wait_for(|stop| *stop).await;
}

/// Loads the limits file, connects the store, binds both listeners and starts serving.
pub async fn start(options: ServeOptions) -> anyhow::Result<RunningServer> {
    let metrics = Arc::new(Metrics::new().context("failed to register metrics")?);
    let initial = config::load_file(&options.config_path)?;
    metrics.config_reloads.with_label_values(&["success"]).inc();
    metrics.config_valid.set(1);
    tracing::info!(
        path = %options.config_path.display(),
        domain = %initial.domain,
        descriptors = initial.rules.len(),
        "loaded limits file"
    );
    let config: SharedConfig = Arc::new(RwLock::new(Arc::new(initial)));

    let store = match &options.store {
        StoreOptions::Memory => {
            tracing::info!("using the in-memory store; counters are not shared between instances");
            Store::Memory(MemoryStore::new())
        }
        StoreOptions::Redis(redis) => {
            tracing::info!(url = %redis.url, timeout = ?redis.command_timeout, "using redis");
            Store::Redis(RedisStore::connect(redis.clone()).await?)
        }
    };

    let grpc_listener = TcpListener::bind(options.grpc_addr)
        .await
        .with_context(|| format!("failed to bind the gRPC address {}", options.grpc_addr))?;
    let http_listener = TcpListener::bind(options.http_addr)
        .await
        .with_context(|| format!("failed to bind the HTTP address {}", options.http_addr))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<RateLimitServiceServer<RateLimiter>>()
        .await;
    let limiter = RateLimiter::new(Arc::clone(&config), store.clone(), Arc::clone(&metrics));
    let incoming = TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
    let grpc_shutdown = shutdown_signal(shutdown_rx.clone());
    tasks.push(tokio::spawn(async move {
        let result = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(RateLimitServiceServer::new(limiter))
            .serve_with_incoming_shutdown(incoming, grpc_shutdown)
            .await;
        if let Err(error) = result {
            tracing::error!(%error, "gRPC server failed");
        }
    }));

    let store_up = Arc::new(AtomicBool::new(true));
    let http_state = HttpState {
        metrics: Arc::clone(&metrics),
        store_up: Arc::clone(&store_up),
    };
    let http_shutdown = shutdown_signal(shutdown_rx.clone());
    tasks.push(tokio::spawn(async move {
        let result = axum::serve(http_listener, http::router(http_state))
            .with_graceful_shutdown(http_shutdown)
            .await;
        if let Err(error) = result {
            tracing::error!(%error, "HTTP server failed");
        }
    }));

    tasks.push(tokio::spawn(reload_loop(
        options.config_path.clone(),
        options.reload_interval,
        config,
        Arc::clone(&metrics),
        shutdown_rx.clone(),
    )));
    tasks.push(tokio::spawn(probe_loop(
        store,
        health_reporter,
        store_up,
        metrics,
        shutdown_rx,
    )));

    tracing::info!(%grpc_addr, %http_addr, "serving");
    Ok(RunningServer {
        grpc_addr,
        http_addr,
        shutdown,
        tasks,
    })
}

/// Reads the limits file every interval and swaps in a changed one when it is valid. An
/// invalid or unreadable file is logged once per distinct content and the last good
/// configuration stays in force.
async fn reload_loop(
    path: PathBuf,
    interval: Duration,
    config: SharedConfig,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_seen: Option<Result<Vec<u8>, String>> = std::fs::read(&path)
        .map_err(|error| error.to_string())
        .ok()
        .map(Ok);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let read = tokio::fs::read(&path)
            .await
            .map_err(|error| error.to_string());
        if last_seen.as_ref() == Some(&read) {
            continue;
        }
        last_seen = Some(read.clone());
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "failed to read limits file; keeping the last good configuration");
                metrics.config_reloads.with_label_values(&["failure"]).inc();
                metrics.config_valid.set(0);
                continue;
            }
        };
        match config::parse(&String::from_utf8_lossy(&bytes)) {
            Ok(new_config) => {
                let new_config: Arc<Config> = Arc::new(new_config);
                tracing::info!(
                    path = %path.display(),
                    domain = %new_config.domain,
                    descriptors = new_config.rules.len(),
                    "reloaded limits file"
                );
                *config.write().unwrap_or_else(|p| p.into_inner()) = new_config;
                metrics.config_reloads.with_label_values(&["success"]).inc();
                metrics.config_valid.set(1);
            }
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "invalid limits file; keeping the last good configuration");
                metrics.config_reloads.with_label_values(&["failure"]).inc();
                metrics.config_valid.set(0);
            }
        }
    }
}

/// Pings the store every second and reports the result through gRPC health and `/healthz`.
async fn probe_loop(
    store: Store,
    health: tonic_health::server::HealthReporter,
    store_up: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut was_up = true;
    loop {
        let up = match store.ping().await {
            Ok(()) => true,
            Err(error) => {
                if was_up {
                    tracing::warn!(%error, store = store.kind(), "store probe failed");
                }
                false
            }
        };
        if up != was_up {
            if up {
                tracing::info!(store = store.kind(), "store probe succeeded again");
            }
            let status = if up {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            health.set_service_status("", status).await;
            health
                .set_service_status(
                    <RateLimitServiceServer<RateLimiter> as tonic::server::NamedService>::NAME,
                    status,
                )
                .await;
        }
        was_up = up;
        store_up.store(up, Ordering::Relaxed);
        metrics.store_up.set(i64::from(up));
        tokio::select! {
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
