//! The proxy-wasm glue: reads the request from Envoy, hands it to the host-independent checks
//! and applies their outcome. Only `_bytes` host calls are used to read headers, because the
//! SDK's `String` variants panic on values that are not UTF-8.

mod metrics;

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::audit::{path_without_query, AuditEvent};
use crate::config::Config;
use crate::decision::{decide, Admission, Decision, Denial, RequestHead};
use crate::reply::{self, LocalReply};
use metrics::Metrics;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// The plugin instance of one Wasm VM: holds the compiled configuration.
#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    metrics: Option<Rc<Metrics>>,
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

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            context_id,
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            replied: false,
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
    /// Set once a local reply was sent, so that no second one is.
    replied: bool,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            // Envoy creates no contexts for a plugin whose configuration failed; answering
            // 503 keeps the filter closed if that ever changes.
            error!("#{} meshguard has no configuration", self.context_id);
            return self.reply_unconfigured();
        };
        let headers = self.request_headers();
        let pseudo = |name: &str| header_str(&headers, name);
        let head = RequestHead {
            method: pseudo(":method"),
            scheme: pseudo(":scheme"),
            authority: pseudo(":authority"),
            path: pseudo(":path"),
            headers: &headers,
            now: self.now_seconds(),
        };
        let request_id = header_str(&headers, "x-request-id").to_owned();
        match decide(&config, &head) {
            Decision::Deny(denial) => {
                self.audit_denial(&config, &head, &denial, &request_id, "deny");
                let reply = reply::for_denial(
                    &denial,
                    Some(&request_id),
                    &config.replies,
                    &config.security_headers,
                );
                self.send_reply(&reply);
                Action::Pause
            }
            Decision::Allow(admission) => {
                self.admit(&config, &head, &admission, &request_id);
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(config) = self.config.clone() {
            // One read and one write of the whole map: far cheaper in a Wasm VM than a host
            // call per header.
            let mut headers = self.get_http_response_headers_bytes();
            if config.security_headers.apply(&mut headers) {
                let pairs: Vec<(&str, &[u8])> = headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_slice()))
                    .collect();
                self.set_http_response_headers_bytes(pairs);
            }
        }
        Action::Continue
    }
}

impl Http {
    /// Envoy's codecs deliver header names in lower case, which the checks rely on.
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.get_http_request_headers_bytes()
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
        for name in &admission.remove_headers {
            self.remove_http_request_header(name);
        }
        for (name, value) in &admission.add_headers {
            self.add_http_request_header(name, value);
        }
        if let Some(path) = &admission.new_path {
            self.set_http_request_header(":path", Some(path));
        }
        if let Some(metrics) = &self.metrics {
            metrics.count_allowed(admission.dry_run_denial.as_ref());
        }
        if let Some(denial) = &admission.dry_run_denial {
            self.audit_denial(config, head, denial, request_id, "dry_run_deny");
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

    fn audit_denial(
        &self,
        _config: &Config,
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
            path: path_without_query(head.path),
            subject: None,
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
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.send_http_response(
            u32::from(reply.status),
            headers,
            Some(reply.body.as_bytes()),
        );
    }

    fn reply_unconfigured(&mut self) -> Action {
        let body = serde_json::json!({"error": "unavailable", "reason": "not_configured"});
        let reply = reply::json_reply(503, Vec::new(), &body, &Default::default());
        self.send_reply(&reply);
        Action::Pause
    }
}

/// The first value of `name` as UTF-8, or empty when absent or not UTF-8.
fn header_str<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or_default()
}
