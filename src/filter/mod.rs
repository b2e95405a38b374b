//! The proxy-wasm glue: reads the request from Envoy, hands it to the host-independent checks
//! and applies their outcome. Only `_bytes` host calls are used to read headers, because the
//! SDK's `String` variants panic on values that are not UTF-8.
//!
//! A request moves through: access checks and inspection of the head at the request
//! headers, then a rate-limit call when a rule names descriptors, then buffering and inspection of
//! the body when its type calls for it. It is resumed or answered exactly once.
//!
//! Envoy delivers no body to a filter whose request headers are paused, so the headers go
//! upstream before the body is inspected. The body is held until it is complete and clean; a
//! blocked body never reaches the upstream, whose request Envoy then resets.

mod metrics;
mod ratelimit;

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use serde_json::json;

use crate::audit::{path_without_query, AuditEvent};
use crate::config::Config;
use crate::decision::{decide, header_pairs, header_str, Admission, Decision, Denial, RequestHead};
use crate::headers::HeaderEdit;
use crate::inspection::{block_reply, body_reply, finding_events};
use crate::ratelimit::proto::{METHOD, SERVICE};
use crate::ratelimit::{interpret, CallPlan, FailureMode, FailureReason, Outcome, RequestFacts};
use crate::reply::{self, LocalReply};
use crate::waf::{BodyPlan, ContentEncoding, Policy, Report, Verdict};
use metrics::Metrics;
use ratelimit::{AnsweredByWatchdog, PendingCall, PendingCalls};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// The plugin instance of one Wasm VM. It keeps the compiled configuration and runs the
/// rate-limit watchdog.
#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    metrics: Option<Rc<Metrics>>,
    pending: PendingCalls,
    answered: AnsweredByWatchdog,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        info!(
            "meshguard {} starting (build {})",
            env!("CARGO_PKG_VERSION"),
            option_env!("MESHGUARD_GIT_HASH").unwrap_or("unknown")
        );
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let json = self.get_plugin_configuration().unwrap_or_default();
        let env = |name: &str| std::env::var(name).ok();
        match Config::from_json(&json, &env) {
            Ok(config) => {
                info!("meshguard configured: {}", config.summary());
                if let Some(limiter) = &config.rate_limit {
                    // The watchdog checks deadlines at a quarter of the call timeout.
                    let period = (limiter.timeout_ms / 4).clamp(2, 250);
                    self.set_tick_period(Duration::from_millis(period));
                }
                self.config = Some(Rc::new(config));
                self.metrics = Some(Rc::new(Metrics::define()));
                true
            }
            Err(err) => {
                error!("meshguard: invalid plugin configuration: {err}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let expired = ratelimit::take_expired(&self.pending, self.get_current_time());
        let (Some(config), Some(metrics)) = (&self.config, &self.metrics) else {
            return;
        };
        for (context_id, call) in expired {
            ratelimit::cancel(call.token);
            warn!(
                "#{context_id} meshguard: rate-limit call for rule {} passed its deadline",
                call.rule
            );
            if let Err(status) = hostcalls::set_effective_context(context_id) {
                warn!("#{context_id} meshguard: request is gone ({status:?})");
                continue;
            }
            let result = match failure_reply(config, metrics, &call, FailureReason::Deadline) {
                None => hostcalls::resume_http_request(),
                Some(reply) => {
                    self.answered.borrow_mut().insert(context_id);
                    send(&reply)
                }
            };
            if let Err(status) = result {
                warn!("#{context_id} meshguard: could not end the request ({status:?})");
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            context_id,
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            pending: Rc::clone(&self.pending),
            answered: Rc::clone(&self.answered),
            replied: false,
            response_headers: Vec::new(),
            body: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The state of one request.
struct Http {
    context_id: u32,
    config: Option<Rc<Config>>,
    metrics: Option<Rc<Metrics>>,
    pending: PendingCalls,
    answered: AnsweredByWatchdog,
    /// Set once a local reply was sent, so that no second one is.
    replied: bool,
    /// Headers the rate-limit service asked to add to the response.
    response_headers: Vec<(String, String)>,
    /// The body being buffered for inspection.
    body: Option<PendingBody>,
}

/// State kept while a body is buffered for inspection.
struct PendingBody {
    policy: Policy,
    content_type: Option<Vec<u8>>,
    encoding: ContentEncoding,
    max_bytes: usize,
    over_limit_status: u16,
    /// Findings of the head, to which the body's are added.
    report: Report,
    request_id: String,
    buffered: usize,
}

impl Context for Http {
    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        let call = {
            let mut pending = self.pending.borrow_mut();
            match pending.get(&self.context_id) {
                Some(call) if call.token == token_id => pending.remove(&self.context_id),
                _ => None,
            }
        };
        // Without an entry the watchdog has already resumed or answered the request.
        let (Some(call), Some(config), Some(metrics)) =
            (call, self.config.clone(), self.metrics.clone())
        else {
            return;
        };
        let body = self.get_grpc_call_response_body(0, response_size);
        let with_headers = config
            .rate_limit
            .as_ref()
            .is_some_and(|limiter| limiter.headers_on_allowed);
        match interpret(status_code, body.as_deref(), &call.rule, with_headers) {
            Outcome::Allow {
                request_headers,
                response_headers,
            } => {
                metrics.increment_named(&format!("meshguard.ratelimit.rule.{}.ok", call.rule));
                for (name, value) in &request_headers {
                    self.add_http_request_header(name, value);
                }
                self.response_headers = response_headers;
                self.resume_http_request();
            }
            Outcome::OverLimit {
                response_headers,
                retry_after,
            } => {
                metrics.increment_named(&format!(
                    "meshguard.ratelimit.rule.{}.over_limit",
                    call.rule
                ));
                let body = json!({
                    "error": "rate_limited",
                    "reason": "rate_limited",
                    "message": "too many requests; retry later",
                    "retry_after": retry_after,
                    "request_id": call.request_id,
                });
                let reply =
                    reply::json_reply(429, response_headers, &body, &config.security_headers);
                audit_rate_limit(&call, 429, "rate_limited");
                self.send_reply(&reply);
            }
            Outcome::Failed(reason) => {
                warn!(
                    "#{} meshguard: rate-limit call for rule {} failed: {} (gRPC status {status_code})",
                    self.context_id,
                    call.rule,
                    reason.reason()
                );
                match failure_reply(&config, &metrics, &call, reason) {
                    None => self.resume_http_request(),
                    Some(reply) => self.send_reply(&reply),
                }
            }
        }
    }

    fn on_done(&mut self) -> bool {
        // A request that ends while its call is in flight no longer needs the answer.
        if let Some(call) = self.pending.borrow_mut().remove(&self.context_id) {
            ratelimit::cancel(call.token);
        }
        self.answered.borrow_mut().remove(&self.context_id);
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            // Envoy creates no contexts for a plugin whose configuration failed; answering
            // 503 keeps the filter closed if that ever changes.
            error!("#{} meshguard has no configuration", self.context_id);
            return self.reply_unconfigured();
        };
        let headers = self.get_http_request_headers_bytes();
        let head = RequestHead::from_headers(&headers, self.now_seconds());
        let request_id = header_str(&headers, "x-request-id").to_owned();
        let admission = match decide(&config, &head) {
            Decision::Deny(denial) => {
                self.audit_denial(&head, &denial, &request_id, "deny");
                let reply = reply::for_denial(
                    &denial,
                    Some(&request_id),
                    &config.replies,
                    &config.security_headers,
                );
                self.send_reply(&reply);
                return Action::Pause;
            }
            Decision::Allow(admission) => admission,
        };
        self.admit(&config, &head, &admission, &request_id);
        let plan = self.plan_rate_limit(&config, &head, &admission);
        if let Some(inspection) = &config.inspection {
            let policy = inspection.policy_for(&admission.target(head.method));
            let header_refs = header_pairs(&headers);
            let waf_head = crate::waf::RequestHead {
                path_and_query: head.path,
                headers: &header_refs,
            };
            let report = inspection.waf.inspect_head(policy, &waf_head);
            let body_plan = if end_of_stream {
                BodyPlan::Skip
            } else {
                inspection.waf.body_plan(policy, &header_refs)
            };
            match body_plan {
                BodyPlan::Skip => {
                    if self.finish_inspection(&config, policy, &report, &request_id) {
                        return Action::Pause;
                    }
                }
                BodyPlan::ConflictingContentType => {
                    let reply = body_reply(
                        400,
                        "conflicting_content_type",
                        &request_id,
                        &config.security_headers,
                    );
                    self.send_reply(&reply);
                    return Action::Pause;
                }
                BodyPlan::Inspect {
                    max_bytes,
                    over_limit_status,
                    encoding,
                    ..
                } => {
                    // Findings of the head alone can already block.
                    if report.verdict(policy) == Verdict::Block {
                        self.finish_inspection(&config, policy, &report, &request_id);
                        return Action::Pause;
                    }
                    let declared = header_str(&headers, "content-length").parse::<usize>().ok();
                    if declared.is_some_and(|length| length > max_bytes) {
                        let reply = body_reply(
                            over_limit_status,
                            "body_too_large",
                            &request_id,
                            &config.security_headers,
                        );
                        self.send_reply(&reply);
                        return Action::Pause;
                    }
                    self.body = Some(PendingBody {
                        policy: policy.clone(),
                        content_type: headers
                            .iter()
                            .find(|(name, _)| name == "content-type")
                            .map(|(_, value)| value.clone()),
                        encoding,
                        max_bytes,
                        over_limit_status,
                        report,
                        request_id: request_id.clone(),
                        buffered: 0,
                    });
                }
            }
        }
        match plan {
            Some(plan) => self.start_rate_limit(&config, plan, request_id),
            None => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.replied {
            return Action::Pause;
        }
        if let Some(body) = &mut self.body {
            body.buffered = body_size;
            if body_size > body.max_bytes {
                return self.reject_large_body();
            }
            if !end_of_stream {
                return Action::Pause;
            }
            return self.inspect_buffered_body();
        }
        self.hold_while_call_in_flight()
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.replied {
            return Action::Pause;
        }
        if self.body.is_some() {
            return self.inspect_buffered_body();
        }
        self.hold_while_call_in_flight()
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // A response that is no reply of the filter's answers a request every check let through.
        let answered = self.answered.borrow_mut().remove(&self.context_id);
        if !self.replied && !answered {
            if let Some(metrics) = &self.metrics {
                metrics.count_allowed();
            }
        }
        if let Some(config) = self.config.clone() {
            let security = &config.security_headers;
            // The map is read only when a header keeps the upstream's value. Otherwise every
            // configured removal is made, whether the header is present or not.
            let upstream = security
                .reads_upstream()
                .then(|| self.get_http_response_headers_bytes());
            let present = |name: &str| {
                upstream
                    .as_ref()
                    .is_none_or(|headers| headers.iter().any(|(n, _)| n == name))
            };
            for edit in security.edits(present) {
                match edit {
                    HeaderEdit::Set(name, value) => {
                        self.set_http_response_header(name, Some(value))
                    }
                    HeaderEdit::Remove(name) => self.set_http_response_header(name, None),
                }
            }
            // The first value of each rate-limit header replaces the upstream's, so that a
            // client reads the limit this proxy enforces. Further values of a name are added.
            let rate_limit_headers = std::mem::take(&mut self.response_headers);
            for (i, (name, value)) in rate_limit_headers.iter().enumerate() {
                if rate_limit_headers[..i]
                    .iter()
                    .any(|(seen, _)| seen.eq_ignore_ascii_case(name))
                {
                    self.add_http_response_header(name, value);
                } else {
                    self.set_http_response_header(name, Some(value));
                }
            }
        }
        Action::Continue
    }
}

impl Http {
    /// Holds the body and trailers back with the headers while the rate-limit call is in
    /// flight.
    fn hold_while_call_in_flight(&self) -> Action {
        if self.pending.borrow().contains_key(&self.context_id) {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    /// Logs and counts the findings and applies the verdict; returns whether the request
    /// was answered with 403.
    fn finish_inspection(
        &mut self,
        config: &Config,
        policy: &Policy,
        report: &Report,
        request_id: &str,
    ) -> bool {
        let verdict = report.verdict(policy);
        if let Some(metrics) = &self.metrics {
            metrics.count_findings(report, verdict);
        }
        for event in finding_events(report, verdict, request_id) {
            warn!("{event}");
        }
        if verdict != Verdict::Block {
            return false;
        }
        let reply = block_reply(report, request_id, &config.security_headers);
        self.send_reply(&reply);
        true
    }

    fn reject_large_body(&mut self) -> Action {
        let (Some(body), Some(config)) = (self.body.take(), self.config.clone()) else {
            return Action::Pause;
        };
        warn!(
            "#{} meshguard: request body over {} bytes rejected",
            self.context_id, body.max_bytes
        );
        let reply = body_reply(
            body.over_limit_status,
            "body_too_large",
            &body.request_id,
            &config.security_headers,
        );
        self.send_reply(&reply);
        Action::Pause
    }

    /// Inspects the complete buffered body and lets it go on or answers 403.
    fn inspect_buffered_body(&mut self) -> Action {
        let (Some(mut pending), Some(config)) = (self.body.take(), self.config.clone()) else {
            return Action::Continue;
        };
        let Some(inspection) = &config.inspection else {
            return Action::Continue;
        };
        let body = self
            .get_http_request_body(0, pending.buffered)
            .unwrap_or_default();
        inspection.waf.inspect_encoded_body(
            &pending.policy,
            pending.content_type.as_deref(),
            pending.encoding,
            &body,
            &mut pending.report,
        );
        if self.finish_inspection(
            &config,
            &pending.policy,
            &pending.report,
            &pending.request_id,
        ) {
            return Action::Pause;
        }
        Action::Continue
    }

    fn now_seconds(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    fn admit(
        &mut self,
        config: &Config,
        head: &RequestHead<'_>,
        admission: &Admission,
        request_id: &str,
    ) {
        if admission.rewrites_whole_map(head.headers.len()) {
            let headers = admission.rewrite(head.headers);
            self.set_http_request_headers_bytes(header_pairs(&headers));
        } else {
            for name in &admission.remove_headers {
                self.remove_http_request_header(name);
            }
            for (name, value) in &admission.add_headers {
                self.add_http_request_header(name, value);
            }
            if let Some(path) = &admission.new_path {
                self.set_http_request_header(":path", Some(path));
            }
        }
        if let (Some(metrics), Some(denial)) = (&self.metrics, &admission.dry_run_denial) {
            metrics.count_dry_run(denial);
        }
        if let Some(denial) = &admission.dry_run_denial {
            self.audit_denial(head, denial, request_id, "dry_run_deny");
        } else if config.audit.log_allowed {
            let event = AuditEvent {
                event: "meshguard.access",
                decision: "allow",
                status: 0,
                reason: "allowed",
                rule: &admission.rule,
                method: head.method,
                path: &admission.normalized_path,
                subject: admission
                    .identity
                    .as_ref()
                    .and_then(|t| t.subject.as_deref()),
                provider: admission.identity.as_ref().map(|t| t.provider.as_str()),
                request_id: Some(request_id),
            };
            info!("{}", event.to_json());
        }
    }

    fn plan_rate_limit(
        &self,
        config: &Config,
        head: &RequestHead<'_>,
        admission: &Admission,
    ) -> Option<CallPlan> {
        let limiter = config.rate_limit.as_ref()?;
        let source = self
            .get_property(vec!["source", "address"])
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let facts = RequestFacts {
            target: admission.target(head.method),
            subject: admission
                .identity
                .as_ref()
                .and_then(|token| token.subject.as_deref()),
            source_address: source.as_deref(),
            headers: head.headers,
        };
        limiter.plan(&facts)
    }

    fn start_rate_limit(&mut self, config: &Config, plan: CallPlan, request_id: String) -> Action {
        let Some(limiter) = &config.rate_limit else {
            return Action::Continue;
        };
        // The watchdog keeps the deadline; Envoy's own timeout, a little later, is the backstop.
        let timeout = Duration::from_millis(limiter.timeout_ms);
        let message = plan.encode();
        let call = |token| PendingCall {
            token,
            deadline: self.get_current_time() + timeout,
            rule: plan.rule.clone(),
            failure_mode: plan.failure_mode,
            failure_status: plan.failure_status,
            request_id: request_id.clone(),
        };
        match self.dispatch_grpc_call(
            &limiter.cluster,
            SERVICE,
            METHOD,
            Vec::new(),
            Some(&message),
            ratelimit::envoy_timeout(timeout),
        ) {
            Ok(token) => {
                let call = call(token);
                self.pending.borrow_mut().insert(self.context_id, call);
                Action::Pause
            }
            Err(status) => {
                warn!(
                    "#{} meshguard: rate-limit call to cluster {} failed to start: {status:?}",
                    self.context_id, limiter.cluster
                );
                let failed = call(0);
                let Some(metrics) = self.metrics.clone() else {
                    return Action::Continue;
                };
                match failure_reply(config, &metrics, &failed, FailureReason::Status(14)) {
                    None => Action::Continue,
                    Some(reply) => {
                        self.send_reply(&reply);
                        Action::Pause
                    }
                }
            }
        }
    }

    fn audit_denial(
        &self,
        head: &RequestHead<'_>,
        denial: &Denial,
        request_id: &str,
        decision: &'static str,
    ) {
        if decision == "deny" {
            if let Some(metrics) = &self.metrics {
                metrics.count_denied(denial);
            }
        }
        let event = AuditEvent {
            event: "meshguard.access",
            decision,
            status: denial.status,
            reason: denial.reason,
            rule: &denial.rule,
            method: head.method,
            path: denial
                .path
                .as_deref()
                .unwrap_or_else(|| truncated(path_without_query(head.path))),
            subject: denial.subject.as_deref(),
            provider: None,
            request_id: Some(request_id),
        };
        warn!("{}", event.to_json());
    }

    fn send_reply(&mut self, reply: &LocalReply) {
        if self.replied {
            warn!(
                "#{} meshguard: second local reply suppressed",
                self.context_id
            );
            return;
        }
        self.replied = true;
        if let Err(status) = send(reply) {
            warn!(
                "#{} meshguard: local reply failed: {status:?}",
                self.context_id
            );
        }
    }

    fn reply_unconfigured(&mut self) -> Action {
        let body = json!({"error": "unavailable", "reason": "not_configured"});
        let reply = reply::json_reply(503, Vec::new(), &body, &Default::default());
        self.send_reply(&reply);
        Action::Pause
    }
}

/// Applies a rule's failure mode: `None` lets the request through, else the reply to send.
/// Either way the failure is logged and counted.
fn failure_reply(
    config: &Config,
    metrics: &Metrics,
    call: &PendingCall,
    reason: FailureReason,
) -> Option<LocalReply> {
    metrics.increment_named(&format!("meshguard.ratelimit.failure.{}", reason.reason()));
    match call.failure_mode {
        FailureMode::Allow => {
            audit_rate_limit(call, 0, reason.reason());
            None
        }
        FailureMode::Deny => {
            audit_rate_limit(call, call.failure_status, reason.reason());
            let body = json!({
                "error": "unavailable",
                "reason": reason.reason(),
                "message": "rate-limit service unavailable",
                "request_id": call.request_id,
            });
            Some(reply::json_reply(
                call.failure_status,
                Vec::new(),
                &body,
                &config.security_headers,
            ))
        }
    }
}

fn audit_rate_limit(call: &PendingCall, status: u16, reason: &str) {
    let decision = if status == 0 { "allow" } else { "deny" };
    let event = json!({
        "event": "meshguard.ratelimit",
        "decision": decision,
        "status": status,
        "reason": reason,
        "rule": call.rule,
        "request_id": call.request_id,
    });
    warn!("{event}");
}

fn send(reply: &LocalReply) -> Result<(), proxy_wasm::types::Status> {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    hostcalls::send_http_response(
        u32::from(reply.status),
        headers,
        Some(reply.body.as_bytes()),
    )
}

/// Cuts a path for logging to at most 256 bytes, at a character boundary.
fn truncated(path: &str) -> &str {
    const MAX_LOGGED_PATH: usize = 256;
    if path.len() <= MAX_LOGGED_PATH {
        return path;
    }
    let mut end = MAX_LOGGED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}
