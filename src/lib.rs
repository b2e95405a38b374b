//! meshguard: a proxy-wasm HTTP filter for Envoy that verifies JWTs, applies access rules,
//! detects attack patterns, rate-limits and sets security response headers.
//!
//! Every check is host-independent and tested natively; the proxy-wasm glue in `filter` is
//! built only for Wasm targets.

pub mod access;
pub mod audit;
pub mod claims;
pub mod config;
pub mod decision;
pub mod headers;
pub mod inspection;
pub mod jwt;
pub mod matcher;
pub mod path;
pub mod ratelimit;
pub mod reply;
pub mod sources;
pub mod waf;

#[cfg(target_arch = "wasm32")]
mod filter;
