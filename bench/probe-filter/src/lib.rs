//! A proxy-wasm HTTP filter that lets every request through and makes only the host calls its
//! plugin configuration names, a comma-separated list of the operations below. With an empty
//! configuration it makes none: `bench/envoy.sh` and `bench/instructions.sh` run it so as the
//! `empty` variant, the cost of any proxy-wasm filter in Envoy's V8 runtime before it does
//! work. `bench/instructions.sh` also runs it with one operation at a time, which prices each
//! kind of host call the meshguard filter makes.
#![cfg(target_arch = "wasm32")]

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

/// Response headers of the same sizes as meshguard's defaults.
const RESPONSE_HEADERS: [(&str, &str); 6] = [
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains; preload",
    ),
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; object-src 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    ),
];

/// The operations, each one kind of host call.
#[derive(Debug, Default, Clone, Copy)]
struct Operations {
    /// Reads the whole request header map.
    read_request_headers: bool,
    /// Reads one request header, `authorization`.
    read_request_header: bool,
    /// Reads the clock.
    read_time: bool,
    /// Adds two request headers, one call each.
    add_request_headers: bool,
    /// Reads the request header map and writes it back with two headers more.
    rewrite_request_headers: bool,
    /// Increments a counter.
    increment_counter: bool,
    /// Reads the whole response header map.
    read_response_headers: bool,
    /// Reads the response header map and writes it back with six headers set and `server`
    /// removed.
    rewrite_response_headers: bool,
    /// Sets six response headers and removes `server`, one call each.
    set_response_headers: bool,
}

impl Operations {
    fn parse(text: &str) -> Option<Self> {
        let mut ops = Self::default();
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let flag = match name {
                "read_request_headers" => &mut ops.read_request_headers,
                "read_request_header" => &mut ops.read_request_header,
                "read_time" => &mut ops.read_time,
                "add_request_headers" => &mut ops.add_request_headers,
                "rewrite_request_headers" => &mut ops.rewrite_request_headers,
                "increment_counter" => &mut ops.increment_counter,
                "read_response_headers" => &mut ops.read_response_headers,
                "rewrite_response_headers" => &mut ops.rewrite_response_headers,
                "set_response_headers" => &mut ops.set_response_headers,
                _ => return None,
            };
            *flag = true;
        }
        Some(ops)
    }
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    ops: Rc<Operations>,
    counter: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let configuration = self.get_plugin_configuration().unwrap_or_default();
        let text = String::from_utf8_lossy(&configuration);
        let Some(ops) = Operations::parse(&text) else {
            log::error!(
                "probe filter: invalid configuration {text:?}: expected a comma-separated list \
                 of the operations in bench/probe-filter/src/lib.rs"
            );
            return false;
        };
        if ops.increment_counter {
            match hostcalls::define_metric(MetricType::Counter, "probe.requests") {
                Ok(id) => self.counter = id,
                Err(status) => {
                    log::error!("probe filter: failed to define its counter: {status:?}");
                    return false;
                }
            }
        }
        self.ops = Rc::new(ops);
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            ops: Rc::clone(&self.ops),
            counter: self.counter,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    ops: Rc<Operations>,
    counter: u32,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let ops = *self.ops;
        if ops.read_request_headers {
            let _ = self.get_http_request_headers_bytes();
        }
        if ops.read_request_header {
            let _ = self.get_http_request_header_bytes("authorization");
        }
        if ops.read_time {
            let _ = self.get_current_time();
        }
        if ops.add_request_headers {
            self.add_http_request_header("x-probe-subject", "bench");
            self.add_http_request_header("x-probe-roles", "admin");
        }
        if ops.rewrite_request_headers {
            let mut headers = self.get_http_request_headers_bytes();
            headers.push(("x-probe-subject".to_owned(), b"bench".to_vec()));
            headers.push(("x-probe-roles".to_owned(), b"admin".to_vec()));
            self.set_http_request_headers_bytes(pairs(&headers));
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let ops = *self.ops;
        if ops.increment_counter {
            let _ = hostcalls::increment_metric(self.counter, 1);
        }
        if ops.read_response_headers {
            let _ = self.get_http_response_headers_bytes();
        }
        if ops.rewrite_response_headers {
            let mut headers = self.get_http_response_headers_bytes();
            headers.retain(|(name, _)| {
                name != "server" && !RESPONSE_HEADERS.iter().any(|(set, _)| set == name)
            });
            for (name, value) in RESPONSE_HEADERS {
                headers.push((name.to_owned(), value.as_bytes().to_vec()));
            }
            self.set_http_response_headers_bytes(pairs(&headers));
        }
        if ops.set_response_headers {
            self.set_http_response_header("server", None);
            for (name, value) in RESPONSE_HEADERS {
                self.set_http_response_header(name, Some(value));
            }
        }
        Action::Continue
    }
}

fn pairs(headers: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect()
}
