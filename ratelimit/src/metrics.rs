//! Prometheus metrics of the service, served at `/metrics`. Labels carry domain, descriptor and
//! limit names from the limits file only, never descriptor values, so cardinality stays bounded.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// All metrics, registered in their own registry.
pub struct Metrics {
    registry: Registry,
    /// RLS calls by result code (`ok`, `over_limit`, `unavailable`, `invalid_argument`).
    pub requests: IntCounterVec,
    /// RLS call latency as seen by the server, by result code.
    pub request_duration: HistogramVec,
    /// Descriptor decisions by descriptor name and result (`ok`, `over_limit`), plus
    /// `unmatched` descriptors (no rule in the limits file) under the name `""`.
    pub descriptors: IntCounterVec,
    /// Hits a shadow limit would have rejected, by descriptor and limit name.
    pub shadow_over_limit: IntCounterVec,
    /// Store failures by kind (`timeout`, `redis_error`, `not_connected`, `bad_reply`).
    pub store_errors: IntCounterVec,
    /// Limits-file loads by result (`success`, `failure`).
    pub config_reloads: IntCounterVec,
    /// 1 when the last limits-file load succeeded, 0 when the service runs on an older one.
    pub config_valid: IntGauge,
    /// 1 when the last store health probe succeeded.
    pub store_up: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "meshguard_ratelimit_requests_total",
                "RLS calls by result code",
            ),
            &["code"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "meshguard_ratelimit_request_duration_seconds",
                "RLS call latency in the server, by result code",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
            ]),
            &["code"],
        )?;
        let descriptors = IntCounterVec::new(
            Opts::new(
                "meshguard_ratelimit_descriptors_total",
                "Descriptor decisions by descriptor name and result",
            ),
            &["domain", "descriptor", "result"],
        )?;
        let shadow_over_limit = IntCounterVec::new(
            Opts::new(
                "meshguard_ratelimit_shadow_over_limit_total",
                "Hits that a shadow limit would have rejected",
            ),
            &["domain", "descriptor", "limit"],
        )?;
        let store_errors = IntCounterVec::new(
            Opts::new(
                "meshguard_ratelimit_store_errors_total",
                "Store failures by kind",
            ),
            &["kind"],
        )?;
        let config_reloads = IntCounterVec::new(
            Opts::new(
                "meshguard_ratelimit_config_loads_total",
                "Limits-file loads by result",
            ),
            &["result"],
        )?;
        let config_valid = IntGauge::new(
            "meshguard_ratelimit_config_valid",
            "1 when the last limits-file load succeeded",
        )?;
        let store_up = IntGauge::new(
            "meshguard_ratelimit_store_up",
            "1 when the last store health probe succeeded",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(descriptors.clone()))?;
        registry.register(Box::new(shadow_over_limit.clone()))?;
        registry.register(Box::new(store_errors.clone()))?;
        registry.register(Box::new(config_reloads.clone()))?;
        registry.register(Box::new(config_valid.clone()))?;
        registry.register(Box::new(store_up.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            request_duration,
            descriptors,
            shadow_over_limit,
            store_errors,
            config_reloads,
            config_valid,
            store_up,
        })
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }
}
