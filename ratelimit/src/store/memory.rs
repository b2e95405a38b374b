//! In-memory store: the embedded default when no Redis URL is configured. Counters live in this
//! process only, so several service instances do not share them.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::algorithm::{counter_outcome, log_outcome, CounterState};
use super::{Check, CheckOutcome, LimitOutcome};
use crate::config::Algorithm;

const SHARDS: usize = 64;
/// How often each shard drops expired keys, in microseconds.
const SWEEP_INTERVAL_US: u64 = 10_000_000;

/// Sharded map of counters. A descriptor's keys share a shard, so one lock covers its check and
/// commit.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Vec<Mutex<Shard>>,
    /// Latest time handed out, so the clock never runs backwards within the store.
    last_now: AtomicU64,
}

#[derive(Default)]
struct Shard {
    slots: HashMap<String, Slot>,
    last_sweep: u64,
}

struct Slot {
    data: SlotData,
    /// Time after which the slot contains no hit that any window still counts.
    expires_at: u64,
}

enum SlotData {
    Log(VecDeque<u64>),
    Counter(CounterState),
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        MemoryStore {
            inner: Arc::new(Inner {
                shards,
                last_now: AtomicU64::new(0),
            }),
        }
    }

    /// Number of keys currently stored, expired ones included until their shard is swept.
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| lock(shard).slots.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Current Unix time in microseconds, never earlier than a time returned before.
    fn now(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_micros() as u64)
            .unwrap_or(0);
        let previous = self.inner.last_now.fetch_max(wall, Ordering::Relaxed);
        wall.max(previous)
    }

    pub fn check(&self, check: &Check) -> CheckOutcome {
        let now = self.now();
        let mut hasher = DefaultHasher::new();
        check.hash_tag.hash(&mut hasher);
        let shard_index = (hasher.finish() % SHARDS as u64) as usize;
        let mut shard = lock(&self.inner.shards[shard_index]);
        if now.saturating_sub(shard.last_sweep) >= SWEEP_INTERVAL_US {
            shard.slots.retain(|_, slot| slot.expires_at > now);
            shard.last_sweep = now;
        }

        // Evaluate every limit before changing any of them.
        let mut within = Vec::with_capacity(check.limits.len());
        for (key, limit) in check.keys.iter().zip(&check.limits) {
            let window = limit.window_us;
            let slot = shard.slots.entry(key.clone()).or_insert_with(|| Slot {
                data: empty_data(limit.algorithm),
                expires_at: 0,
            });
            let count = match (&mut slot.data, limit.algorithm) {
                (SlotData::Log(timestamps), Algorithm::SlidingLog) => {
                    let cutoff = now.saturating_sub(window);
                    while timestamps.front().is_some_and(|&oldest| oldest <= cutoff) {
                        timestamps.pop_front();
                    }
                    timestamps.len() as f64
                }
                (SlotData::Counter(state), Algorithm::SlidingCounter) => {
                    *state = CounterState::roll(Some(*state), now, window);
                    state.estimate(now, window)
                }
                (data, algorithm) => {
                    // A key encodes its algorithm, so this only follows a hash collision of
                    // keys; start the slot afresh rather than misread it.
                    *data = empty_data(algorithm);
                    if let SlotData::Counter(state) = data {
                        *state = CounterState::roll(None, now, window);
                    }
                    0.0
                }
            };
            within.push(count + check.hits as f64 <= limit.requests as f64);
        }
        let allowed = check
            .limits
            .iter()
            .zip(&within)
            .all(|(limit, &within)| limit.shadow || within);

        let mut outcomes = Vec::with_capacity(check.limits.len());
        for ((key, limit), &within_limit) in check.keys.iter().zip(&check.limits).zip(&within) {
            let window = limit.window_us;
            let commit = allowed && within_limit;
            let Some(slot) = shard.slots.get_mut(key) else {
                continue;
            };
            let (remaining, reset_us) = match &mut slot.data {
                SlotData::Log(timestamps) => {
                    if commit {
                        timestamps.extend(std::iter::repeat_n(now, check.hits as usize));
                    }
                    if let Some(&newest) = timestamps.back() {
                        slot.expires_at = newest + window;
                    }
                    log_outcome(
                        timestamps,
                        now,
                        window,
                        limit.requests,
                        check.hits,
                        within_limit,
                    )
                }
                SlotData::Counter(state) => {
                    if commit {
                        state.current += check.hits;
                    }
                    slot.expires_at = state.start + 2 * window;
                    counter_outcome(state, now, window, limit.requests, check.hits, within_limit)
                }
            };
            outcomes.push(LimitOutcome {
                within_limit,
                remaining,
                reset_after: Duration::from_micros(reset_us),
            });
        }
        CheckOutcome {
            allowed,
            limits: outcomes,
        }
    }
}

fn empty_data(algorithm: Algorithm) -> SlotData {
    match algorithm {
        Algorithm::SlidingLog => SlotData::Log(VecDeque::new()),
        Algorithm::SlidingCounter => SlotData::Counter(CounterState {
            start: 0,
            current: 0,
            previous: 0,
        }),
    }
}

/// Locks a shard. A panic while holding the lock leaves counters consistent (every update is a
/// single assignment or push), so a poisoned lock is used as is.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
