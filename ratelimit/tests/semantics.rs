//! Rate-limit semantics through the real gRPC server, each scenario run against the memory
//! store and against a real Redis started on a free loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::google::protobuf::UInt64Value;
use meshguard_dev::redis::RedisServer;
use meshguard_ratelimit::server::StoreOptions;

/// The store a scenario runs against. It owns the Redis process for the test's lifetime.
struct Backend {
    redis: Option<RedisServer>,
}

impl Backend {
    fn memory() -> Backend {
        Backend { redis: None }
    }

    fn redis() -> Backend {
        Backend {
            redis: Some(RedisServer::start().expect("failed to start redis-server")),
        }
    }

    fn store(&self) -> StoreOptions {
        match &self.redis {
            None => StoreOptions::Memory,
            // Generous timeout: these tests check semantics on a loaded test machine.
            Some(redis) => redis_store(&redis.url(), 2000),
        }
    }

    async fn service(&self, limits_yaml: &str) -> Service {
        Service::start(limits_yaml, self.store()).await
    }
}

/// Runs a scenario `async fn NAME(Backend)` as the tests `NAME::memory` and `NAME::redis`.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$scenario(super::Backend::memory()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$scenario(super::Backend::redis()).await;
            }
        }
    )*};
}

on_both_stores!(
    concurrent_hits_allow_exactly_limit,
    concurrent_hits_on_counter_allow_exactly_limit,
    rejected_hits_do_not_count,
    log_window_edge_slides,
    counter_window_edge_slides,
    quota_returns_after_window,
    all_limits_must_pass,
    shadow_limit_never_rejects,
    crafted_descriptors_do_not_collide,
    hits_addend_is_honoured,
    unmatched_descriptor_is_not_limited,
    status_reports_limit_and_reset,
);

async fn concurrent_hits_allow_exactly_limit(backend: Backend) {
    let service = backend
        .service(&limits_file(&["{requests: 25, window: 1h}"]))
        .await;
    let clients = vec![service.client().await, service.client().await];
    let allowed = concurrent_allowed(&clients, &[("k", "concurrent")], 80).await;
    assert_eq!(allowed, 25);
    service.stop().await;
}

async fn concurrent_hits_on_counter_allow_exactly_limit(backend: Backend) {
    let service = backend
        .service(&limits_file(&[
            "{requests: 25, window: 1h, algorithm: sliding_counter}",
        ]))
        .await;
    // NOTE: a test that crosses an hour boundary sees a fractional estimate from the previous
    // window, so the count can differ by one. The odds are about 1 in 3600.
    let clients = vec![service.client().await, service.client().await];
    let allowed = concurrent_allowed(&clients, &[("k", "concurrent")], 80).await;
    assert_eq!(allowed, 25);
    service.stop().await;
}

async fn rejected_hits_do_not_count(backend: Backend) {
    let service = backend
        .service(&limits_file(&["{requests: 3, window: 2s}"]))
        .await;
    let mut client = service.client().await;
    let entries = [("k", "rejected")];
    assert_eq!(allowed_of(&mut client, &entries, 3).await, 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(allowed_of(&mut client, &entries, 10).await, 0);
    // The three allowed hits leave the window at 2 s. Had the ten rejected hits (sent at
    // about 0.5 s) been counted, they would still fill it.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(allowed_of(&mut client, &entries, 4).await, 3);
    service.stop().await;
}

async fn log_window_edge_slides(backend: Backend) {
    let service = backend
        .service(&limits_file(&["{requests: 3, window: 2s}"]))
        .await;
    let mut client = service.client().await;
    let entries = [("k", "edge")];
    assert_eq!(allowed_of(&mut client, &entries, 2).await, 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(allowed_of(&mut client, &entries, 1).await, 1);
    assert_eq!(allowed_of(&mut client, &entries, 1).await, 0);
    // At about 2.2 s the first two hits have left the window, the one from 1 s has not:
    // a fixed window would now give 3, a sliding window gives 2.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(allowed_of(&mut client, &entries, 3).await, 2);
    service.stop().await;
}

async fn counter_window_edge_slides(backend: Backend) {
    let window = Duration::from_secs(2);
    let service = backend
        .service(&limits_file(&[
            "{requests: 4, window: 2s, algorithm: sliding_counter}",
        ]))
        .await;
    let mut client = service.client().await;
    let entries = [("k", "counter-edge")];
    align_to_window(window, 0.2).await;
    assert_eq!(allowed_of(&mut client, &entries, 5).await, 4);
    // One window later (about 0.25 into the next fixed window) the four hits still weigh
    // about 3, so at most one more fits. A fixed window would give all 4 back.
    tokio::time::sleep(window).await;
    let allowed = allowed_of(&mut client, &entries, 4).await;
    assert!(allowed <= 1, "allowed {allowed} one window later");
    // Two windows after the last commit nothing counts any more.
    tokio::time::sleep(window * 2).await;
    assert_eq!(allowed_of(&mut client, &entries, 5).await, 4);
    service.stop().await;
}

async fn quota_returns_after_window(backend: Backend) {
    let service = backend
        .service(&limits_file(&["{requests: 2, window: 1s}"]))
        .await;
    let mut client = service.client().await;
    let entries = [("k", "returns")];
    assert_eq!(allowed_of(&mut client, &entries, 3).await, 2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(allowed_of(&mut client, &entries, 3).await, 2);
    service.stop().await;
}

async fn all_limits_must_pass(backend: Backend) {
    let service = backend
        .service(&limits_file(&[
            "{name: long, requests: 5, window: 10s}",
            "{name: short, requests: 2, window: 1s}",
        ]))
        .await;
    let mut client = service.client().await;
    let entries = [("k", "several")];
    // The short limit rejects the third hit, which then consumes none of the long limit.
    assert_eq!(allowed_of(&mut client, &entries, 2).await, 2);
    let rejected = hit(&mut client, &entries).await;
    assert!(!is_ok(&rejected));
    assert_eq!(
        status(&rejected).current_limit.as_ref().unwrap().name,
        "short"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(allowed_of(&mut client, &entries, 3).await, 2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Four hits counted in the long window: one more fits, then the long limit rejects
    // although the short one has room.
    assert_eq!(allowed_of(&mut client, &entries, 1).await, 1);
    let rejected = hit(&mut client, &entries).await;
    assert!(!is_ok(&rejected));
    assert_eq!(
        status(&rejected).current_limit.as_ref().unwrap().name,
        "long"
    );
    service.stop().await;
}

async fn shadow_limit_never_rejects(backend: Backend) {
    let service = backend
        .service(&limits_file(&[
            "{name: trial, requests: 1, window: 10s, shadow: true}",
            "{name: enforced, requests: 3, window: 10s}",
        ]))
        .await;
    let mut client = service.client().await;
    let entries = [("k", "shadow")];
    assert_eq!(allowed_of(&mut client, &entries, 4).await, 3);
    // The shadow limit counts the first hit and would have rejected the other three (the
    // last of which the enforced limit rejected).
    let metrics = service.metrics().await;
    assert!(
        metrics.contains(
            "meshguard_ratelimit_shadow_over_limit_total{descriptor=\"k\",domain=\"test\",limit=\"trial\"} 3"
        ),
        "{metrics}"
    );

    let only_shadow = backend
        .service(&limits_file(&["{requests: 1, window: 10s, shadow: true}"]))
        .await;
    let mut client = only_shadow.client().await;
    assert_eq!(allowed_of(&mut client, &[("k", "shadow-only")], 5).await, 5);
    service.stop().await;
    only_shadow.stop().await;
}

async fn crafted_descriptors_do_not_collide(backend: Backend) {
    let limits = r#"
domain: test
descriptors:
  - name: pair
    entries:
      - key: a
      - key: b
    limits:
      - requests: 1
        window: 1h
"#;
    let service = backend.service(limits).await;
    let mut client = service.client().await;
    // Joined as "a:VALUE:b:VALUE" every pair below reads the same.
    let crafted = [
        [("a", "x:b:y"), ("b", "z")],
        [("a", "x"), ("b", "y:b:z")],
        [("a", "x:b"), ("b", "y:b:z")],
    ];
    for entries in &crafted {
        assert_eq!(allowed_of(&mut client, entries, 1).await, 1, "{entries:?}");
    }
    for entries in &crafted {
        assert_eq!(allowed_of(&mut client, entries, 1).await, 0, "{entries:?}");
    }
    service.stop().await;
}

async fn hits_addend_is_honoured(backend: Backend) {
    let service = backend
        .service(&limits_file(&["{requests: 5, window: 1h}"]))
        .await;
    let mut client = service.client().await;
    let entries = [("k", "addend")];
    let send = |hits: u32, descriptor_hits: Option<u64>| {
        let mut one = descriptor(&entries);
        one.hits_addend = descriptor_hits.map(|value| UInt64Value { value });
        request("test", vec![one], hits)
    };
    let response = client
        .should_rate_limit(send(3, None))
        .await
        .unwrap()
        .into_inner();
    assert!(is_ok(&response));
    assert_eq!(status(&response).limit_remaining, 2);
    // Three more do not fit and consume nothing.
    let response = client
        .should_rate_limit(send(3, None))
        .await
        .unwrap()
        .into_inner();
    assert!(!is_ok(&response));
    assert_eq!(status(&response).limit_remaining, 2);
    // hits_addend 0 means one hit.
    let response = client
        .should_rate_limit(send(0, None))
        .await
        .unwrap()
        .into_inner();
    assert!(is_ok(&response));
    assert_eq!(status(&response).limit_remaining, 1);
    // A descriptor's own hits_addend overrides the request's.
    let response = client
        .should_rate_limit(send(1, Some(2)))
        .await
        .unwrap()
        .into_inner();
    assert!(!is_ok(&response));
    let response = client
        .should_rate_limit(send(9, Some(1)))
        .await
        .unwrap()
        .into_inner();
    assert!(is_ok(&response));
    assert_eq!(status(&response).limit_remaining, 0);
    service.stop().await;
}

async fn unmatched_descriptor_is_not_limited(backend: Backend) {
    let service = backend
        .service(&limits_file(&["{requests: 1, window: 1h}"]))
        .await;
    let mut client = service.client().await;
    for _ in 0..5 {
        let response = hit(&mut client, &[("other", "x")]).await;
        assert!(is_ok(&response));
        assert_eq!(response.statuses.len(), 1);
        assert_eq!(status(&response).current_limit, None);
    }
    // Another domain is not limited either.
    let other_domain = request("elsewhere", vec![descriptor(&[("k", "x")])], 0);
    for _ in 0..3 {
        let response = client
            .should_rate_limit(other_domain.clone())
            .await
            .unwrap()
            .into_inner();
        assert!(is_ok(&response));
    }
    // With one matched and one unmatched descriptor the statuses keep request order.
    let mixed = request(
        "test",
        vec![descriptor(&[("other", "x")]), descriptor(&[("k", "mixed")])],
        0,
    );
    let response = client
        .should_rate_limit(mixed.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(is_ok(&response));
    assert_eq!(response.statuses[0].current_limit, None);
    assert!(response.statuses[1].current_limit.is_some());
    let response = client.should_rate_limit(mixed).await.unwrap().into_inner();
    assert_eq!(response.overall_code, i32::from(Code::OverLimit));
    assert_eq!(response.statuses[0].code, i32::from(Code::Ok));
    assert_eq!(response.statuses[1].code, i32::from(Code::OverLimit));
    service.stop().await;
}

async fn status_reports_limit_and_reset(backend: Backend) {
    let service = backend
        .service(&limits_file(&["{requests: 2, window: 15m}"]))
        .await;
    let mut client = service.client().await;
    let entries = [("k", "status")];
    let first = hit(&mut client, &entries).await;
    let first = status(&first);
    assert_eq!(first.code, i32::from(Code::Ok));
    let limit = first.current_limit.as_ref().unwrap();
    assert_eq!(limit.name, "2 per 15m");
    assert_eq!(limit.requests_per_unit, 2);
    assert_eq!(limit.unit, i32::from(Unit::Hour));
    assert_eq!(first.limit_remaining, 1);
    // Remaining grows again when the first hit leaves the 15-minute window.
    let reset = first.duration_until_reset.unwrap();
    assert!((899..=900).contains(&reset.seconds), "{reset:?}");

    let second = hit(&mut client, &entries).await;
    assert_eq!(status(&second).limit_remaining, 0);
    let rejected = hit(&mut client, &entries).await;
    assert_eq!(rejected.overall_code, i32::from(Code::OverLimit));
    let rejected = status(&rejected);
    assert_eq!(rejected.code, i32::from(Code::OverLimit));
    assert_eq!(rejected.limit_remaining, 0);
    let reset = rejected.duration_until_reset.unwrap();
    assert!((899..=900).contains(&reset.seconds), "{reset:?}");
    service.stop().await;
}

#[tokio::test]
async fn empty_domain_is_invalid_argument() {
    let service = Service::start(
        &limits_file(&["{requests: 1, window: 1s}"]),
        StoreOptions::Memory,
    )
    .await;
    let mut client = service.client().await;
    let error = client
        .should_rate_limit(request("", vec![descriptor(&[("k", "v")])], 0))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    let error = client
        .should_rate_limit(request("test", vec![], 0))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    service.stop().await;
}
