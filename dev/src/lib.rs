//! Development tools for meshguard: the test harness that runs real Envoy and Redis processes,
//! the echo upstream and a token signer.

pub mod redis;
