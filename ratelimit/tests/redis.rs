//! Behaviour that only Redis has: counters shared by several service instances, outages,
//! hashed keys, Cluster and Sentinel. Every Redis process is started by the test on a free
//! loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use meshguard_dev::redis::{RedisCluster, RedisSentinel, RedisServer};
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_redis() {
    let redis = RedisServer::start().unwrap();
    let limits = limits_file(&["{requests: 30, window: 1h}"]);
    let first = Service::start(&limits, redis_store(&redis.url(), 2000)).await;
    let second = Service::start(&limits, redis_store(&redis.url(), 2000)).await;
    let clients = vec![
        first.client().await,
        second.client().await,
        first.client().await,
        second.client().await,
    ];
    let allowed = concurrent_allowed(&clients, &[("k", "shared")], 100).await;
    assert_eq!(allowed, 30);
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_redis_gives_unavailable_then_recovers() {
    let mut redis = RedisServer::start().unwrap();
    let timeout_ms = 50;
    let service = Service::start(
        &limits_file(&["{requests: 100, window: 1h}"]),
        redis_store(&redis.url(), timeout_ms),
    )
    .await;
    let mut client = service.client().await;
    let entries = [("k", "outage")];
    assert!(is_ok(&hit(&mut client, &entries).await));

    redis.stop().unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let error = client
            .should_rate_limit(request("test", vec![descriptor(&entries)], 0))
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(error.code(), tonic::Code::Unavailable, "{error:?}");
        // Bounded by the 50 ms Redis timeout; the slack absorbs a loaded test machine.
        assert!(elapsed < Duration::from_millis(1000), "took {elapsed:?}");
    }
    let metrics = service.metrics().await;
    assert!(
        metrics.contains("meshguard_ratelimit_requests_total{code=\"unavailable\"}"),
        "{metrics}"
    );

    redis.restart().unwrap();
    assert!(
        recovers(&mut client, &entries).await,
        "no OK within 10 s after restart"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_redis_gives_unavailable_within_timeout() {
    let redis = RedisServer::start().unwrap();
    let service = Service::start(
        &limits_file(&["{requests: 100, window: 1h}"]),
        redis_store(&redis.url(), 50),
    )
    .await;
    let mut client = service.client().await;
    let entries = [("k", "frozen")];
    assert!(is_ok(&hit(&mut client, &entries).await));

    redis.pause().unwrap();
    let started = Instant::now();
    let error = client
        .should_rate_limit(request("test", vec![descriptor(&entries)], 0))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.code(), tonic::Code::Unavailable, "{error:?}");
    assert!(elapsed >= Duration::from_millis(50), "took {elapsed:?}");
    assert!(elapsed < Duration::from_millis(1000), "took {elapsed:?}");

    redis.resume().unwrap();
    assert!(
        recovers(&mut client, &entries).await,
        "no OK within 10 s after resume"
    );
    service.stop().await;
}

/// Sends hits every 100 ms for up to 10 s and returns whether one got an OK response.
async fn recovers(client: &mut Client, entries: &[(&str, &str)]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let response = client
            .should_rate_limit(request("test", vec![descriptor(entries)], 0))
            .await;
        if matches!(&response, Ok(response) if is_ok(response.get_ref())) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_values_stay_out_of_redis() {
    let redis = RedisServer::start().unwrap();
    let limits = "domain: test\nhash_values: true\ndescriptors:\n  - name: k\n    entries:\n      - key: token\n    limits:\n      - {requests: 5, window: 1h}\n      - {requests: 50, window: 1d, algorithm: sliding_counter}\n";
    let service = Service::start(limits, redis_store(&redis.url(), 2000)).await;
    let mut client = service.client().await;
    let token = "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl";
    assert!(is_ok(&hit(&mut client, &[("token", token)]).await));

    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = connection.keys("*").await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in &keys {
        assert!(key.starts_with("meshguard:rl:{"), "{key}");
        assert!(!key.contains(token), "{key}");
        assert!(key.contains(":h4:test5:token64:"), "{key}");
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_keeps_descriptor_on_one_shard() {
    let cluster = RedisCluster::start(3).unwrap();
    let limits = limits_file(&[
        "{requests: 20, window: 1h}",
        "{requests: 10, window: 1m, algorithm: sliding_counter}",
    ]);
    let service = Service::start(&limits, redis_store(&cluster.url(), 2000)).await;
    let clients = vec![service.client().await, service.client().await];
    // Several descriptors spread over the shards; each has two limits, which one script can
    // only update together when both keys hash to the same slot.
    for value in ["a", "b", "c", "d", "e", "f"] {
        let allowed = concurrent_allowed(&clients, &[("k", value)], 30).await;
        assert_eq!(allowed, 10, "descriptor {value}");
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_master_is_used() {
    let sentinel = RedisSentinel::start().unwrap();
    let service = Service::start(
        &limits_file(&["{requests: 15, window: 1h}"]),
        redis_store(&sentinel.url(), 2000),
    )
    .await;
    let mut client = service.client().await;
    // The master is looked up in the background, so wait for the first OK response.
    assert!(
        recovers(&mut client, &[("k", "warmup")]).await,
        "sentinel master never answered"
    );
    let clients = vec![client.clone(), service.client().await];
    let allowed = concurrent_allowed(&clients, &[("k", "sentinel")], 40).await;
    assert_eq!(allowed, 15);

    let mut connection = redis::Client::open(sentinel.master.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = connection.keys("*").await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_moves_to_new_master() {
    let mut sentinel = RedisSentinel::start_with_replica().unwrap();
    let service = Service::start(
        &limits_file(&["{requests: 1000, window: 1h}"]),
        redis_store(&sentinel.url(), 2000),
    )
    .await;
    let mut client = service.client().await;
    assert!(
        recovers(&mut client, &[("k", "before")]).await,
        "sentinel master never answered"
    );

    sentinel.master.stop().unwrap();
    // The Sentinel marks the master down after 1 s and then promotes the replica.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut recovered = false;
    while Instant::now() < deadline {
        let response = client
            .should_rate_limit(request("test", vec![descriptor(&[("k", "after")])], 0))
            .await;
        if matches!(&response, Ok(response) if is_ok(response.get_ref())) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "no OK from the promoted replica within 30 s");

    let replica_port = sentinel.replica.as_ref().unwrap().port();
    let mut connection = redis::Client::open(format!("redis://127.0.0.1:{replica_port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let replication: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(replication.contains("role:master"), "{replication}");
    let keys: Vec<String> = connection.keys("*").await.unwrap();
    assert!(keys.iter().any(|key| key.contains("5:after")), "{keys:?}");
    service.stop().await;
}
