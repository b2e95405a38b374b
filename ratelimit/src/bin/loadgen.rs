//! gRPC load generator for meshguard-ratelimit: sends `ShouldRateLimit` calls over loopback and
//! prints throughput and latency percentiles.
//!
//! Closed loop (the default) keeps `--concurrency` calls in flight and measures the maximum
//! rate. Open loop (`--rate N`) starts calls on a fixed schedule whatever the responses do, so a
//! slow service builds a queue instead of slowing the generator down. Each latency runs from the
//! moment the call is started. `max_lag_ms` in the report is the longest delay between a call's
//! scheduled and actual start. A lag near the latencies means the generator itself fell behind.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use meshguard_ratelimit::window::parse_window;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

#[derive(Parser)]
#[command(
    name = "meshguard-ratelimit-loadgen",
    about = "Load generator for meshguard-ratelimit over gRPC"
)]
struct Args {
    /// gRPC address of the service.
    #[arg(long, default_value = "127.0.0.1:8081")]
    target: SocketAddr,
    /// Calls per second in open-loop mode; without it the generator runs closed-loop.
    #[arg(long)]
    rate: Option<u64>,
    /// Worker threads of the generator's runtime; one leaves the other cores to the service and
    /// Redis on the same host.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Calls in flight in closed-loop mode.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Maximum calls in flight in open-loop mode; a scheduled call beyond it counts as dropped.
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// Measured run time, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured run time before the measured part, e.g. 1s.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// HTTP/2 connections to open; calls are spread over them round robin.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// RLS domain of every call.
    #[arg(long, default_value = "bench")]
    domain: String,
    /// Descriptor entry key of every call.
    #[arg(long, default_value = "k")]
    key: String,
    /// Distinct descriptor values, cycled through in order.
    #[arg(long, default_value_t = 100_000)]
    values: u64,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    if text
        .trim_start_matches('0')
        .trim_end_matches(['m', 's'])
        .is_empty()
    {
        return Ok(Duration::ZERO);
    }
    parse_window(text).map_err(|error| error.to_string())
}

/// Outcome counts and latencies of one phase.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    ok: u64,
    over_limit: u64,
    errors: u64,
    dropped: u64,
    max_lag: Duration,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.ok += other.ok;
        self.over_limit += other.over_limit;
        self.errors += other.errors;
        self.dropped += other.dropped;
        self.max_lag = self.max_lag.max(other.max_lag);
    }

    fn record(&mut self, latency: Duration, result: &Result<bool, tonic::Status>) {
        self.latencies_us.push(latency.as_micros() as u64);
        match result {
            Ok(true) => self.ok += 1,
            Ok(false) => self.over_limit += 1,
            Err(_) => self.errors += 1,
        }
    }
}

struct Caller {
    clients: Vec<RateLimitServiceClient<Channel>>,
    domain: String,
    key: String,
    values: u64,
}

impl Caller {
    /// Sends call number `sequence`; returns whether it was allowed.
    async fn call(&self, sequence: u64) -> Result<bool, tonic::Status> {
        let mut client = self.clients[(sequence % self.clients.len() as u64) as usize].clone();
        let request = RateLimitRequest {
            domain: self.domain.clone(),
            descriptors: vec![RateLimitDescriptor {
                entries: vec![Entry {
                    key: self.key.clone(),
                    value: format!("v{}", sequence % self.values),
                }],
                ..Default::default()
            }],
            hits_addend: 1,
        };
        let response = client.should_rate_limit(request).await?.into_inner();
        Ok(response.overall_code == i32::from(Code::Ok))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut clients = Vec::with_capacity(args.connections.max(1));
    for _ in 0..args.connections.max(1) {
        let channel = Channel::from_shared(format!("http://{}", args.target))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|error| anyhow::anyhow!("failed to connect to {}: {error}", args.target))?;
        clients.push(RateLimitServiceClient::new(channel));
    }
    let caller = Arc::new(Caller {
        clients,
        domain: args.domain.clone(),
        key: args.key.clone(),
        values: args.values.max(1),
    });

    let (mode, tally, elapsed) = match args.rate {
        Some(rate) => {
            let rate = rate.max(1);
            if !args.warmup.is_zero() {
                open_loop(&caller, rate, args.warmup, args.max_in_flight, 0).await;
            }
            let started = Instant::now();
            let tally = open_loop(&caller, rate, args.duration, args.max_in_flight, 1 << 40).await;
            (format!("open-loop rate={rate}"), tally, started.elapsed())
        }
        None => {
            if !args.warmup.is_zero() {
                closed_loop(&caller, args.concurrency, args.warmup, 0).await;
            }
            let started = Instant::now();
            let tally = closed_loop(&caller, args.concurrency, args.duration, 1 << 40).await;
            (
                format!("closed-loop concurrency={}", args.concurrency),
                tally,
                started.elapsed(),
            )
        }
    };
    report(&mode, tally, elapsed);
    Ok(())
}

/// Keeps `concurrency` calls in flight for `duration`.
async fn closed_loop(
    caller: &Arc<Caller>,
    concurrency: usize,
    duration: Duration,
    first_sequence: u64,
) -> Tally {
    let deadline = Instant::now() + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency.max(1) as u64 {
        let caller = Arc::clone(caller);
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut sequence = first_sequence + worker;
            while Instant::now() < deadline {
                let started = Instant::now();
                let result = caller.call(sequence).await;
                tally.record(started.elapsed(), &result);
                sequence += concurrency as u64;
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for worker in workers {
        if let Ok(tally) = worker.await {
            total.merge(tally);
        }
    }
    total
}

/// Starts `rate` calls per second for `duration`, each measured from its scheduled start.
async fn open_loop(
    caller: &Arc<Caller>,
    rate: u64,
    duration: Duration,
    max_in_flight: usize,
    first_sequence: u64,
) -> Tally {
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let total_calls = (duration.as_secs_f64() * rate as f64) as u64;
    let in_flight = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let start = tokio::time::Instant::now();
    let mut calls = Vec::with_capacity(total_calls as usize);
    let mut dropped = 0;
    let mut max_lag = Duration::ZERO;
    for index in 0..total_calls {
        let scheduled = start + interval.mul_f64(index as f64);
        tokio::time::sleep_until(scheduled).await;
        max_lag = max_lag.max(scheduled.elapsed());
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            dropped += 1;
            continue;
        };
        let caller = Arc::clone(caller);
        calls.push(tokio::spawn(async move {
            let started = Instant::now();
            let result = caller.call(first_sequence + index).await;
            drop(permit);
            (started.elapsed(), result)
        }));
    }
    let mut tally = Tally {
        dropped,
        max_lag,
        ..Tally::default()
    };
    for call in calls {
        if let Ok((latency, result)) = call.await {
            tally.record(latency, &result);
        }
    }
    tally
}

fn report(mode: &str, mut tally: Tally, elapsed: Duration) {
    tally.latencies_us.sort_unstable();
    let percentile = |p: f64| -> f64 {
        if tally.latencies_us.is_empty() {
            return 0.0;
        }
        let rank = ((p * tally.latencies_us.len() as f64).ceil() as usize).max(1);
        tally.latencies_us[rank.min(tally.latencies_us.len()) - 1] as f64 / 1000.0
    };
    let calls = tally.latencies_us.len() as u64;
    let rps = calls as f64 / elapsed.as_secs_f64();
    println!(
        "{mode} calls={calls} ok={} over_limit={} errors={} dropped={} seconds={:.2} rps={rps:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3} max_lag_ms={:.3}",
        tally.ok,
        tally.over_limit,
        tally.errors,
        tally.dropped,
        elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.90),
        percentile(0.99),
        percentile(1.0),
        tally.max_lag.as_secs_f64() * 1000.0,
    );
}
