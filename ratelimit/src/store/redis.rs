//! Redis store: one Lua script per descriptor check, over reused connections to a standalone
//! server, the master a Sentinel names, or a Cluster.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Client, ConnectionAddr, ErrorKind, RedisError, Script, ServerErrorKind, TlsCertificates,
    TlsMode,
};

use super::{Check, CheckOutcome, LimitOutcome, StoreError};
use crate::config::Algorithm;
use crate::redis_url::{Deployment, RedisUrl};

/// Source of the check-and-commit script, also loaded by the benchmark into `redis-benchmark`.
pub const SCRIPT_SOURCE: &str = include_str!("sliding_window.lua");

/// Connection settings for [`RedisStore::connect`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub url: RedisUrl,
    /// Deadline for one script call, including any wait for a reconnect. It should stay below
    /// the caller's RLS deadline so a slow Redis yields `UNAVAILABLE` before the caller gives up.
    pub command_timeout: Duration,
    /// Deadline for opening one connection.
    pub connect_timeout: Duration,
    /// PEM root certificates for TLS in place of the system trust store.
    pub ca_pem: Option<Vec<u8>>,
}

/// Store backed by Redis. Cloning shares the connections.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    script: Script,
    timeout: Duration,
    /// Random per process, so sorted-set members from several instances never clash.
    instance: String,
    sequence: AtomicU64,
}

enum Backend {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelBackend>),
}

impl RedisStore {
    /// Creates the store. Standalone and Sentinel connections are opened on first use and
    /// reopened after errors, so the service starts while Redis is down. A Cluster needs one
    /// reachable seed node at start to learn the slot map.
    pub async fn connect(options: RedisOptions) -> Result<RedisStore, StoreError> {
        let url = &options.url;
        if url.tls {
            // rustls needs a process-wide crypto provider. An error means one is installed
            // already, which serves as well.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let certificates = || TlsCertificates {
            client_tls: None,
            root_cert: options.ca_pem.clone(),
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.command_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(500));

        let backend = match &url.deployment {
            Deployment::Standalone { url: text } => {
                let client = match options.ca_pem {
                    Some(_) => Client::build_with_tls(text.as_str(), certificates())?,
                    None => Client::open(text.as_str())?,
                };
                Backend::Standalone(ConnectionManager::new_lazy_with_config(
                    client,
                    manager_config,
                )?)
            }
            Deployment::Cluster { nodes } => {
                let scheme = if url.tls { "rediss" } else { "redis" };
                let node_urls: Vec<String> = nodes
                    .iter()
                    .map(|(host, port)| format!("{scheme}://{}:{port}", host_for_url(host)))
                    .collect();
                let mut builder = ClusterClientBuilder::new(node_urls)
                    .connection_timeout(options.connect_timeout)
                    .response_timeout(options.command_timeout)
                    .retries(1);
                if let Some(username) = &url.username {
                    builder = builder.username(username);
                }
                if let Some(password) = &url.password {
                    builder = builder.password(password);
                }
                if url.tls {
                    builder = builder.tls(TlsMode::Secure);
                }
                if options.ca_pem.is_some() {
                    builder = builder.certs(certificates());
                }
                let client = builder.build()?;
                let connection =
                    tokio::time::timeout(options.connect_timeout, client.get_async_connection())
                        .await
                        .map_err(|_| StoreError::Timeout(options.connect_timeout))??;
                Backend::Cluster(connection)
            }
            Deployment::Sentinel {
                sentinels,
                master_name,
            } => {
                let addresses = sentinels.iter().map(|(host, port)| {
                    if url.tls {
                        ConnectionAddr::TcpTls {
                            host: host.clone(),
                            port: *port,
                            insecure: false,
                            tls_params: None,
                        }
                    } else {
                        ConnectionAddr::Tcp(host.clone(), *port)
                    }
                });
                let mut builder =
                    SentinelClientBuilder::new(addresses, master_name, SentinelServerType::Master)?
                        .set_client_to_redis_db(url.db);
                if let Some(username) = &url.username {
                    builder = builder.set_client_to_redis_username(username);
                }
                if let Some(password) = &url.password {
                    builder = builder.set_client_to_redis_password(password);
                }
                if url.tls {
                    builder = builder
                        .set_client_to_redis_tls_mode(TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(TlsMode::Secure);
                }
                if options.ca_pem.is_some() {
                    builder = builder
                        .set_client_to_redis_certificates(certificates())
                        .set_client_to_sentinel_certificates(certificates());
                }
                let backend = Arc::new(SentinelBackend {
                    client: tokio::sync::Mutex::new(builder.build()?),
                    manager: RwLock::new(None),
                    resolving: AtomicBool::new(false),
                    config: manager_config,
                    resolve_timeout: options.connect_timeout,
                });
                backend.start_resolve();
                Backend::Sentinel(backend)
            }
        };
        Ok(RedisStore {
            inner: Arc::new(Inner {
                backend,
                script: Script::new(SCRIPT_SOURCE),
                timeout: options.command_timeout,
                instance: format!("{:016x}", rand::random::<u64>()),
                sequence: AtomicU64::new(0),
            }),
        })
    }

    /// Runs the check-and-commit script for one descriptor.
    pub async fn check(&self, check: &Check) -> Result<CheckOutcome, StoreError> {
        let inner = &self.inner;
        let sequence = inner.sequence.fetch_add(1, Ordering::Relaxed);
        let mut invocation = inner.script.prepare_invoke();
        invocation
            .arg(check.hits)
            .arg(format!("{}.{sequence}", inner.instance));
        for (key, limit) in check.keys.iter().zip(&check.limits) {
            let algorithm = match limit.algorithm {
                Algorithm::SlidingLog => 1,
                Algorithm::SlidingCounter => 2,
            };
            invocation
                .key(key)
                .arg(algorithm)
                .arg(limit.window_us)
                .arg(limit.requests)
                .arg(u8::from(limit.shadow));
        }

        let call = async {
            let reply = match &inner.backend {
                Backend::Standalone(manager) => {
                    let mut connection = manager.clone();
                    invocation.invoke_async::<Vec<i64>>(&mut connection).await?
                }
                Backend::Cluster(connection) => {
                    let mut connection = connection.clone();
                    invocation.invoke_async::<Vec<i64>>(&mut connection).await?
                }
                Backend::Sentinel(sentinel) => {
                    let mut connection = sentinel.current()?;
                    let result = invocation.invoke_async::<Vec<i64>>(&mut connection).await;
                    if let Err(error) = &result {
                        sentinel.after_error(error);
                    }
                    result?
                }
            };
            Ok::<_, StoreError>(reply)
        };
        let reply = tokio::time::timeout(inner.timeout, call)
            .await
            .map_err(|_| StoreError::Timeout(inner.timeout))??;
        parse_reply(&reply, check.limits.len())
    }

    /// Sends PING over the store's connection.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let ping = redis::cmd("PING");
        let call = async {
            match &self.inner.backend {
                Backend::Standalone(manager) => {
                    ping.query_async::<String>(&mut manager.clone()).await?;
                }
                Backend::Cluster(connection) => {
                    ping.query_async::<String>(&mut connection.clone()).await?;
                }
                Backend::Sentinel(sentinel) => {
                    let mut connection = sentinel.current()?;
                    let result = ping.query_async::<String>(&mut connection).await;
                    if let Err(error) = &result {
                        sentinel.after_error(error);
                    }
                    result?;
                }
            }
            Ok::<_, StoreError>(())
        };
        tokio::time::timeout(self.inner.timeout.max(Duration::from_millis(500)), call)
            .await
            .map_err(|_| StoreError::Timeout(self.inner.timeout))??;
        Ok(())
    }
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn parse_reply(reply: &[i64], limits: usize) -> Result<CheckOutcome, StoreError> {
    if reply.len() != 1 + 3 * limits {
        return Err(StoreError::BadReply(format!(
            "expected {} integers for {limits} limits, got {}",
            1 + 3 * limits,
            reply.len()
        )));
    }
    let outcomes = reply[1..]
        .chunks_exact(3)
        .map(|values| LimitOutcome {
            within_limit: values[0] == 1,
            remaining: values[1].max(0) as u64,
            reset_after: Duration::from_micros(values[2].max(0) as u64),
        })
        .collect();
    Ok(CheckOutcome {
        allowed: reply[0] == 1,
        limits: outcomes,
    })
}

/// Connection to the master that the Sentinels name. An I/O error or a `READONLY` reply (the
/// old master became a replica in a failover) drops the connection and starts a new lookup in
/// the background. Calls fail at once with `NotConnected` until it succeeds.
struct SentinelBackend {
    client: tokio::sync::Mutex<SentinelClient>,
    manager: RwLock<Option<ConnectionManager>>,
    resolving: AtomicBool,
    config: ConnectionManagerConfig,
    resolve_timeout: Duration,
}

impl SentinelBackend {
    fn current(self: &Arc<Self>) -> Result<ConnectionManager, StoreError> {
        let manager = self
            .manager
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        match manager {
            Some(manager) => Ok(manager),
            None => {
                self.start_resolve();
                Err(StoreError::NotConnected(
                    "looking up the master through the sentinels".into(),
                ))
            }
        }
    }

    fn after_error(self: &Arc<Self>, error: &RedisError) {
        let master_moved = error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly);
        if master_moved {
            *self
                .manager
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
            self.start_resolve();
        }
    }

    fn start_resolve(self: &Arc<Self>) {
        if self.resolving.swap(true, Ordering::AcqRel) {
            return;
        }
        let backend = Arc::clone(self);
        tokio::spawn(async move {
            let result = tokio::time::timeout(backend.resolve_timeout, backend.resolve()).await;
            match result {
                Ok(Ok(())) => tracing::info!("connected to the master named by the sentinels"),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "failed to connect to the master named by the sentinels")
                }
                Err(_) => tracing::warn!(
                    timeout = ?backend.resolve_timeout,
                    "timed out looking up the master through the sentinels"
                ),
            }
            backend.resolving.store(false, Ordering::Release);
        });
    }

    async fn resolve(&self) -> Result<(), RedisError> {
        let client = self.client.lock().await.async_get_client().await?;
        let manager = ConnectionManager::new_with_config(client, self.config.clone()).await?;
        *self
            .manager
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(manager);
        Ok(())
    }
}
