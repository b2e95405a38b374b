//! Counter storage: the in-memory store and Redis, both running the same two algorithms with the
//! same semantics.
//!
//! One [`Check`] covers every limit of one descriptor. A store first evaluates every limit, then
//! commits the hit only when every enforced (non-shadow) limit has room for it, and does both
//! steps atomically: under one lock in memory, in one Lua script in Redis. So a rejected hit
//! consumes no quota of any limit. A shadow limit that is full records nothing and never causes a
//! rejection.

pub mod algorithm;
pub mod memory;
pub mod redis;

use std::time::Duration;

use crate::config::Algorithm;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

/// Parameters of one limit as the store applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitParams {
    pub algorithm: Algorithm,
    pub window_us: u64,
    pub requests: u64,
    pub shadow: bool,
}

/// Every limit of one descriptor, checked and committed together.
#[derive(Debug, Clone)]
pub struct Check {
    /// Shared by all keys of the descriptor; the memory store picks its shard from it.
    pub hash_tag: String,
    /// One storage key per limit, in the order of `limits`.
    pub keys: Vec<String>,
    pub limits: Vec<LimitParams>,
    /// Hits this request adds, at least 1.
    pub hits: u64,
}

/// Result for one limit of a [`Check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitOutcome {
    /// Whether the limit had room for the hits.
    pub within_limit: bool,
    /// Requests left in the window after this check (after the hits, if they were committed).
    pub remaining: u64,
    /// For a limit with room, time until its remaining count next grows (zero when nothing is
    /// counted). For a full limit, time until the same hits would fit, or the window length when
    /// they never can because they exceed the limit.
    pub reset_after: Duration,
}

/// Result of a [`Check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// True when every enforced limit had room, so the hits were committed.
    pub allowed: bool,
    /// One outcome per limit, in the order of [`Check::limits`].
    pub limits: Vec<LimitOutcome>,
}

/// Why a store could not decide; the service answers gRPC `UNAVAILABLE` for all of them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis command timed out after {0:?}")]
    Timeout(Duration),
    #[error("redis error: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("redis is not connected: {0}")]
    NotConnected(String),
    #[error("unexpected reply from redis script: {0}")]
    BadReply(String),
}

impl StoreError {
    /// Short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Timeout(_) => "timeout",
            StoreError::Redis(_) => "redis_error",
            StoreError::NotConnected(_) => "not_connected",
            StoreError::BadReply(_) => "bad_reply",
        }
    }
}

/// The configured counter store.
#[derive(Clone)]
pub enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl Store {
    /// Checks and, when allowed, commits the hits of one descriptor.
    pub async fn check(&self, check: &Check) -> Result<CheckOutcome, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.check(check)),
            Store::Redis(store) => store.check(check).await,
        }
    }

    /// Tells whether the store can currently serve requests (used by health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(store) => store.ping().await,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }
}
