//! Counters exposed through Envoy's stats. Envoy lists them under the `wasmcustom.` prefix.

use std::cell::RefCell;
use std::collections::HashMap;

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::decision::Denial;
use crate::waf::{Report, Verdict};

/// Counter ids, defined once per VM; per-reason and per-rule counters are defined on first use.
pub struct Metrics {
    requests_allowed: Option<u32>,
    requests_denied: Option<u32>,
    dry_run_denied: Option<u32>,
    by_name: RefCell<HashMap<String, Option<u32>>>,
}

impl Metrics {
    /// Defines the fixed counters.
    pub fn define() -> Self {
        Self {
            requests_allowed: define("meshguard.requests_allowed"),
            requests_denied: define("meshguard.requests_denied"),
            dry_run_denied: define("meshguard.dry_run_denied"),
            by_name: RefCell::new(HashMap::new()),
        }
    }

    /// Counts a request that every check let through to the upstream.
    pub fn count_allowed(&self) {
        increment(self.requests_allowed);
    }

    /// Counts the denial a dry-run rule let through.
    pub fn count_dry_run(&self, denial: &Denial) {
        increment(self.dry_run_denied);
        self.increment_named(&format!("meshguard.dry_run.reason.{}", denial.reason));
    }

    /// Counts a refused request by reason and by rule.
    pub fn count_denied(&self, denial: &Denial) {
        increment(self.requests_denied);
        self.increment_named(&format!("meshguard.denied.reason.{}", denial.reason));
        self.increment_named(&format!("meshguard.denied.rule.{}", denial.rule));
    }

    /// Counts each finding by rule, and the request by verdict when it reached the threshold.
    pub fn count_findings(&self, report: &Report, verdict: Verdict) {
        for finding in &report.findings {
            self.increment_named(&format!("meshguard.waf.rule.{}", finding.rule_id));
        }
        match verdict {
            Verdict::Block => self.increment_named("meshguard.waf.blocked"),
            Verdict::DetectOnly => self.increment_named("meshguard.waf.detected"),
            Verdict::Allow => {}
        }
    }

    /// Increments the counter `name`, defining it on first use.
    pub fn increment_named(&self, name: &str) {
        let id = {
            let mut by_name = self.by_name.borrow_mut();
            *by_name
                .entry(name.to_owned())
                .or_insert_with(|| define(name))
        };
        increment(id);
    }
}

fn define(name: &str) -> Option<u32> {
    match hostcalls::define_metric(MetricType::Counter, name) {
        Ok(id) => Some(id),
        Err(status) => {
            warn!("meshguard: failed to define metric {name}: {status:?}");
            None
        }
    }
}

fn increment(id: Option<u32>) {
    if let Some(id) = id {
        if let Err(status) = hostcalls::increment_metric(id, 1) {
            warn!("meshguard: failed to increment metric {id}: {status:?}");
        }
    }
}
