//! Log throttling, so a Redis outage or a busy shadow limit logs a line a second rather than one
//! per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Lets one event through per interval and counts the ones it holds back.
pub struct LogThrottle {
    start: Instant,
    interval_ms: u64,
    /// Milliseconds since `start` of the last event let through, plus one (0 means never).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl LogThrottle {
    pub fn new(interval_ms: u64) -> Self {
        LogThrottle {
            start: Instant::now(),
            interval_ms,
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Returns `Some(n)` when this event should be logged, with `n` the number of events held
    /// back since the last one logged, and `None` when it should be skipped.
    pub fn admit(&self) -> Option<u64> {
        let now = self.start.elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now < last + self.interval_ms {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_once_per_interval() {
        let throttle = LogThrottle::new(60_000);
        assert_eq!(throttle.admit(), Some(0));
        assert_eq!(throttle.admit(), None);
        assert_eq!(throttle.admit(), None);
    }
}
