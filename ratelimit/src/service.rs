//! The RLS v3 `ShouldRateLimit` handler.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
use futures_util::future::try_join_all;
use tonic::{Request, Response, Status};

use crate::config::{Config, Limit, Rule};
use crate::key::DescriptorKey;
use crate::metrics::Metrics;
use crate::store::{Check, CheckOutcome, LimitParams, Store, StoreError};
use crate::throttle::LogThrottle;

/// The limits file in force, replaced whole on reload.
pub type SharedConfig = Arc<RwLock<Arc<Config>>>;

/// Implements `envoy.service.ratelimit.v3.RateLimitService`.
pub struct RateLimiter {
    config: SharedConfig,
    store: Store,
    metrics: Arc<Metrics>,
    store_error_log: LogThrottle,
    shadow_log: LogThrottle,
}

impl RateLimiter {
    pub fn new(config: SharedConfig, store: Store, metrics: Arc<Metrics>) -> Self {
        RateLimiter {
            config,
            store,
            metrics,
            store_error_log: LogThrottle::new(1000),
            shadow_log: LogThrottle::new(1000),
        }
    }

    async fn decide(&self, request: RateLimitRequest) -> Result<RateLimitResponse, Status> {
        if request.domain.is_empty() {
            return Err(Status::invalid_argument("domain must not be empty"));
        }
        if request.descriptors.is_empty() {
            return Err(Status::invalid_argument(
                "descriptors must list at least one descriptor",
            ));
        }
        if request.descriptors.iter().any(|d| d.is_negative_hits) {
            return Err(Status::invalid_argument(
                "is_negative_hits is not supported: this service does not refund hits",
            ));
        }
        let config = Arc::clone(&self.config.read().unwrap_or_else(|p| p.into_inner()));
        // hits_addend 0 means 1, as the RLS API defines it.
        let request_hits = u64::from(request.hits_addend.max(1));

        let plans: Vec<Option<Plan<'_>>> = request
            .descriptors
            .iter()
            .map(|descriptor| Plan::new(&config, &request.domain, descriptor, request_hits))
            .collect();
        let outcomes = try_join_all(plans.iter().map(|plan| async move {
            match plan {
                Some(plan) => self.store.check(&plan.check).await.map(Some),
                None => Ok(None),
            }
        }))
        .await
        .map_err(|error| self.store_unavailable(&error))?;

        let mut overall = Code::Ok;
        let mut statuses = Vec::with_capacity(plans.len());
        for (plan, outcome) in plans.iter().zip(outcomes) {
            let (Some(plan), Some(outcome)) = (plan, outcome) else {
                self.metrics
                    .descriptors
                    .with_label_values(&[request.domain.as_str(), "", "unmatched"])
                    .inc();
                statuses.push(DescriptorStatus {
                    code: Code::Ok.into(),
                    ..Default::default()
                });
                continue;
            };
            self.record(&request.domain, plan, &outcome);
            if !outcome.allowed {
                overall = Code::OverLimit;
            }
            statuses.push(descriptor_status(plan.rule, &outcome));
        }
        Ok(RateLimitResponse {
            overall_code: overall.into(),
            statuses,
            ..Default::default()
        })
    }

    fn record(&self, domain: &str, plan: &Plan<'_>, outcome: &CheckOutcome) {
        let result = if outcome.allowed { "ok" } else { "over_limit" };
        self.metrics
            .descriptors
            .with_label_values(&[domain, plan.rule.name.as_str(), result])
            .inc();
        if !outcome.allowed {
            tracing::debug!(domain, descriptor = %plan.rule.name, hits = plan.check.hits, "over limit");
        }
        for (limit, limit_outcome) in plan.rule.limits.iter().zip(&outcome.limits) {
            if limit.shadow && !limit_outcome.within_limit {
                self.metrics
                    .shadow_over_limit
                    .with_label_values(&[domain, plan.rule.name.as_str(), limit.name.as_str()])
                    .inc();
                if let Some(suppressed) = self.shadow_log.admit() {
                    tracing::info!(
                        domain,
                        descriptor = %plan.rule.name,
                        limit = %limit.name,
                        suppressed,
                        "shadow limit exceeded; request not rejected"
                    );
                }
            }
        }
    }

    /// Maps a store failure to `UNAVAILABLE`, so the caller applies its own failure mode (allow
    /// or deny), which the operator chose, instead of this service guessing one. `UNAVAILABLE`
    /// is also the gRPC code for a transient condition that a retry may clear.
    fn store_unavailable(&self, error: &StoreError) -> Status {
        self.metrics
            .store_errors
            .with_label_values(&[error.kind()])
            .inc();
        if let Some(suppressed) = self.store_error_log.admit() {
            tracing::warn!(%error, suppressed, "rate-limit store failed, returning UNAVAILABLE");
        }
        Status::unavailable(format!("rate-limit store unavailable: {error}"))
    }
}

#[tonic::async_trait]
impl RateLimitService for RateLimiter {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        let started = Instant::now();
        let result = self.decide(request.into_inner()).await;
        let code = match &result {
            Ok(response) if response.overall_code == i32::from(Code::OverLimit) => "over_limit",
            Ok(_) => "ok",
            Err(status) if status.code() == tonic::Code::Unavailable => "unavailable",
            Err(_) => "invalid_argument",
        };
        self.metrics.requests.with_label_values(&[code]).inc();
        self.metrics
            .request_duration
            .with_label_values(&[code])
            .observe(started.elapsed().as_secs_f64());
        result.map(Response::new)
    }
}

/// A matched descriptor: its rule and the store check for it.
struct Plan<'a> {
    rule: &'a Rule,
    check: Check,
}

impl<'a> Plan<'a> {
    fn new(
        config: &'a Config,
        domain: &str,
        descriptor: &RateLimitDescriptor,
        request_hits: u64,
    ) -> Option<Plan<'a>> {
        let entries: Vec<(&str, &str)> = descriptor
            .entries
            .iter()
            .map(|entry| (entry.key.as_str(), entry.value.as_str()))
            .collect();
        let rule = config.find_rule(domain, &entries)?;
        let key = DescriptorKey::new(&config.key_prefix, config.hash_values, domain, &entries);
        let hits = match &descriptor.hits_addend {
            Some(value) => value.value.max(1),
            None => request_hits,
        };
        Some(Plan {
            rule,
            check: Check {
                hash_tag: key.hash_tag.clone(),
                keys: rule
                    .limits
                    .iter()
                    .map(|limit| key.limit_key(limit))
                    .collect(),
                limits: rule.limits.iter().map(limit_params).collect(),
                hits,
            },
        })
    }
}

fn limit_params(limit: &Limit) -> LimitParams {
    LimitParams {
        algorithm: limit.algorithm,
        window_us: limit.window.as_micros() as u64,
        requests: u64::from(limit.requests),
        shadow: limit.shadow,
    }
}

/// Builds the status of one descriptor from the limit that decides it: for a rejected hit the
/// enforced limit that frees up last, otherwise the enforced limit with the fewest requests
/// remaining (ties go to the later reset). Shadow limits are reported only when the descriptor
/// has no enforced limit.
fn descriptor_status(rule: &Rule, outcome: &CheckOutcome) -> DescriptorStatus {
    let pairs = rule.limits.iter().zip(&outcome.limits);
    let any_enforced = rule.limits.iter().any(|limit| !limit.shadow);
    let candidates = pairs.filter(|(limit, _)| limit.shadow != any_enforced);
    let decisive = if outcome.allowed {
        candidates.min_by(|(_, a), (_, b)| {
            a.remaining
                .cmp(&b.remaining)
                .then(b.reset_after.cmp(&a.reset_after))
        })
    } else {
        candidates
            .filter(|(_, limit_outcome)| !limit_outcome.within_limit)
            .max_by_key(|(_, limit_outcome)| limit_outcome.reset_after)
    };
    let Some((limit, limit_outcome)) = decisive else {
        return DescriptorStatus {
            code: Code::Ok.into(),
            ..Default::default()
        };
    };
    let code = if outcome.allowed {
        Code::Ok
    } else {
        Code::OverLimit
    };
    DescriptorStatus {
        code: code.into(),
        current_limit: Some(RateLimit {
            name: limit.name.clone(),
            requests_per_unit: limit.requests,
            unit: unit_for_window(limit.window).into(),
        }),
        limit_remaining: u32::try_from(limit_outcome.remaining).unwrap_or(u32::MAX),
        duration_until_reset: Some(proto_duration(limit_outcome.reset_after)),
        ..Default::default()
    }
}

/// Maps a window to the RLS `Unit` reported with `requests_per_unit`, which is always the
/// limit's request count. A window of exactly one unit maps to that unit. Any other window maps
/// to the shortest unit longer than it (`15m` to `HOUR`), so a reader of the RLS fields alone
/// never assumes a higher rate than the limit allows.
pub fn unit_for_window(window: Duration) -> Unit {
    const UNITS: [(Unit, u64); 7] = [
        (Unit::Second, 1),
        (Unit::Minute, 60),
        (Unit::Hour, 3_600),
        (Unit::Day, 86_400),
        (Unit::Week, 7 * 86_400),
        (Unit::Month, 30 * 86_400),
        (Unit::Year, 365 * 86_400),
    ];
    for (unit, seconds) in UNITS {
        if window <= Duration::from_secs(seconds) {
            return unit;
        }
    }
    Unit::Year
}

fn proto_duration(duration: Duration) -> ProtoDuration {
    ProtoDuration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: duration.subsec_nanos() as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_windows_to_units() {
        assert_eq!(unit_for_window(Duration::from_millis(250)), Unit::Second);
        assert_eq!(unit_for_window(Duration::from_secs(1)), Unit::Second);
        assert_eq!(unit_for_window(Duration::from_secs(2)), Unit::Minute);
        assert_eq!(unit_for_window(Duration::from_secs(60)), Unit::Minute);
        assert_eq!(unit_for_window(Duration::from_secs(900)), Unit::Hour);
        assert_eq!(unit_for_window(Duration::from_secs(3600)), Unit::Hour);
        assert_eq!(unit_for_window(Duration::from_secs(86_400)), Unit::Day);
        assert_eq!(
            unit_for_window(Duration::from_secs(366 * 86_400)),
            Unit::Year
        );
    }
}
