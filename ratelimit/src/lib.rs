//! meshguard-ratelimit: a rate-limit service for Envoy's RLS v3 gRPC API, with counters in Redis
//! (standalone, Sentinel or Cluster) or in memory.

pub mod config;
pub mod http;
pub mod key;
pub mod metrics;
pub mod redis_url;
pub mod server;
pub mod service;
pub mod store;
pub mod throttle;
pub mod window;
