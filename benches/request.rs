//! Benchmarks of the work the filter does per request on native code, between reading the
//! request headers and writing the response headers. That is the access decision with a
//! cached HS256 token, the request header changes, the security header edits and, in the
//! second benchmark, inspection of path, query and headers. The configuration is
//! `envoy/meshguard.json` less its `rate_limit` section, as in the `make bench` Envoy run.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use meshguard::config::Config;
use meshguard::decision::{decide, header_pairs, Decision, RequestHead};
use meshguard::waf::RequestHead as WafHead;
use meshguard_dev::tokens::{now, SigningKey};
use serde_json::{json, Value};

const PATH: &str = "/admin/stats";

fn config(with_waf: bool) -> Option<Config> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/meshguard.json"))
            .ok()?;
    let mut settings: Value = serde_json::from_str(&text).ok()?;
    let object = settings.as_object_mut()?;
    object.remove("rate_limit");
    if !with_waf {
        object.remove("waf");
        object.remove("waf_routes");
    }
    let json = serde_json::to_vec(&settings).ok()?;
    Config::from_json(&json, &|_| None).ok()
}

fn token() -> Option<String> {
    let encoded =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/dev-hs256.key"))
            .ok()?;
    let secret = URL_SAFE_NO_PAD.decode(encoded.trim()).ok()?;
    let key = SigningKey::hmac("dev-hs256", &secret);
    let claims = json!({
        "iss": "https://auth.meshguard.local",
        "aud": "meshguard-demo",
        "sub": "bench",
        "roles": ["admin"],
        "type": "access",
        "iat": now(),
        "exp": now() + 36_000,
    });
    key.sign("HS256", &claims, &json!({})).ok()
}

/// Returns the request headers as Envoy passes them to the filter for a wrk request.
fn request_headers(token: &str) -> Vec<(String, Vec<u8>)> {
    [
        (":authority", "127.0.0.1:10005"),
        (":path", PATH),
        (":method", "GET"),
        (":scheme", "http"),
        ("authorization", &format!("Bearer {token}")),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
    .collect()
}

fn response_headers() -> Vec<(String, Vec<u8>)> {
    [
        (":status", "200"),
        ("content-length", "3"),
        ("content-type", "text/plain"),
        ("date", "Fri, 04 Dec 2026 08:00:00 GMT"),
        ("server", "envoy"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
    .collect()
}

/// Runs one request's work and returns its number of header writes, so nothing is optimized out.
fn request(
    config: &Config,
    headers: &[(String, Vec<u8>)],
    response: &[(String, Vec<u8>)],
    now: u64,
) -> usize {
    let head = RequestHead::from_headers(headers, now);
    let Decision::Allow(admission) = decide(config, &head) else {
        return 0;
    };
    let request_writes = if admission.rewrites_whole_map(headers.len()) {
        admission.rewrite(headers).len()
    } else {
        admission.change_count()
    };
    if let Some(inspection) = &config.inspection {
        let policy = inspection.policy_for(&admission.target(head.method));
        let pairs = header_pairs(headers);
        let report = inspection.waf.inspect_head(
            policy,
            &WafHead {
                path_and_query: head.path,
                headers: &pairs,
            },
        );
        black_box(report);
    }
    let edits = config
        .security_headers
        .edits(|name| response.iter().any(|(n, _)| n == name));
    request_writes + edits.len()
}

fn per_request(criterion: &mut Criterion) {
    let (Some(token), Some(auth), Some(full)) = (token(), config(false), config(true)) else {
        eprintln!("request bench: could not build the configuration or the token");
        return;
    };
    let headers = request_headers(&token);
    let response = response_headers();
    let now = now();
    // Both runs start with the token in the cache, as in a steady stream of requests.
    if request(&auth, &headers, &response, now) == 0
        || request(&full, &headers, &response, now) == 0
    {
        eprintln!("request bench: the request was not admitted");
        return;
    }
    criterion.bench_function("request/auth_cached_token", |bench| {
        bench.iter(|| request(black_box(&auth), black_box(&headers), &response, now))
    });
    criterion.bench_function("request/auth_and_inspection", |bench| {
        bench.iter(|| request(black_box(&full), black_box(&headers), &response, now))
    });
}

criterion_group!(benches, per_request);
criterion_main!(benches);
