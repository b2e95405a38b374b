//! Calls in flight to the rate-limit service, and the watchdog that ends each call at its
//! deadline even when Envoy never answers it (for example when the cluster has no host).
//! The root context's timer runs the watchdog at a quarter of the call timeout, so a call
//! ends at most that much after its deadline.
//!
//! The table is shared by the root context, whose timer runs the watchdog, and the HTTP
//! contexts. The first of the response handler and the watchdog to remove a call's entry
//! resumes or answers the request, so each request is resumed or answered exactly once.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use log::warn;
use proxy_wasm::hostcalls;

use crate::ratelimit::FailureMode;

/// Envoy's own gRPC timeout for a call with deadline `timeout`: twice as long, so that the
/// watchdog decides at the configured deadline and Envoy's timeout only backs it up.
pub fn envoy_timeout(timeout: Duration) -> Duration {
    timeout * 2
}

/// A call in flight for one HTTP context.
#[derive(Debug, Clone)]
pub struct PendingCall {
    pub token: u32,
    pub deadline: SystemTime,
    pub rule: String,
    pub failure_mode: FailureMode,
    pub failure_status: u16,
    pub request_id: String,
}

/// Calls in flight, by HTTP context id.
pub type PendingCalls = Rc<RefCell<HashMap<u32, PendingCall>>>;

/// HTTP contexts the watchdog answered with a local reply, so their response is not counted
/// as an allowed request.
pub type AnsweredByWatchdog = Rc<RefCell<HashSet<u32>>>;

/// Removes and returns the calls whose deadline has passed.
pub fn take_expired(pending: &PendingCalls, now: SystemTime) -> Vec<(u32, PendingCall)> {
    let mut calls = pending.borrow_mut();
    let expired: Vec<u32> = calls
        .iter()
        .filter(|(_, call)| call.deadline <= now)
        .map(|(context_id, _)| *context_id)
        .collect();
    expired
        .into_iter()
        .filter_map(|id| calls.remove(&id).map(|call| (id, call)))
        .collect()
}

/// Cancels a call that is no longer wanted; Envoy may already have ended it.
pub fn cancel(token: u32) {
    if let Err(status) = hostcalls::cancel_grpc_call(token) {
        warn!("meshguard: cancel of rate-limit call {token} returned {status:?}");
    }
}
