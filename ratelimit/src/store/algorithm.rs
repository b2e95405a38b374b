//! The two algorithms as plain functions over stored state, used by the memory store. The Redis
//! script `sliding_window.lua` implements the same arithmetic in the same order, so both stores
//! give the same answers for the same state and time. All times are microseconds.

use std::collections::VecDeque;

/// State of a sliding-window counter: counts of the current fixed window (which starts at
/// `start`) and of the one before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CounterState {
    pub start: u64,
    pub current: u64,
    pub previous: u64,
}

impl CounterState {
    /// Moves stored state forward to the fixed window that contains `now`.
    pub fn roll(stored: Option<CounterState>, now: u64, window: u64) -> CounterState {
        let start = now - now % window;
        match stored {
            Some(state) if state.start == start => state,
            Some(state) if state.start + window == start => CounterState {
                start,
                current: 0,
                previous: state.current,
            },
            _ => CounterState {
                start,
                current: 0,
                previous: 0,
            },
        }
    }

    /// Estimated hits in the sliding window ending at `now`: the current count plus the previous
    /// count weighted by the share of the previous window still inside the sliding window.
    pub fn estimate(&self, now: u64, window: u64) -> f64 {
        let elapsed = (now - self.start) as f64;
        let window = window as f64;
        self.previous as f64 * ((window - elapsed) / window) + self.current as f64
    }

    /// Time from `now` until the estimate falls to `target` or below, with no new hits.
    pub fn wait_until_estimate(&self, now: u64, window: u64, target: f64) -> u64 {
        let elapsed = (now - self.start) as f64;
        let window_f = window as f64;
        let current = self.current as f64;
        let previous = self.previous as f64;
        if previous * ((window_f - elapsed) / window_f) + current <= target {
            return 0;
        }
        if current <= target {
            // Reached inside the current window as the previous window's weight declines.
            let needed = (window_f * (1.0 - (target - current) / previous)).ceil();
            return (needed - elapsed).max(0.0) as u64;
        }
        // Only after the current window ends, when its count becomes the weighted one.
        let needed = (window_f * (1.0 - target / current)).ceil();
        (window_f - elapsed + needed).max(0.0) as u64
    }
}

/// Time until a sliding log holding `timestamps` (oldest first) drops to `target` entries.
pub fn log_wait_until(timestamps: &VecDeque<u64>, now: u64, window: u64, target: u64) -> u64 {
    let count = timestamps.len() as u64;
    if count <= target {
        return 0;
    }
    // The (count - target) oldest entries must leave the window.
    let index = (count - target - 1) as usize;
    (timestamps[index] + window).saturating_sub(now)
}

/// Remaining requests and reset time of a sliding log, as [`super::LimitOutcome`] defines them.
/// `timestamps` already includes the hits if they were committed.
pub fn log_outcome(
    timestamps: &VecDeque<u64>,
    now: u64,
    window: u64,
    requests: u64,
    hits: u64,
    within_limit: bool,
) -> (u64, u64) {
    let count = timestamps.len() as u64;
    let remaining = requests.saturating_sub(count);
    let reset = if within_limit {
        log_wait_until(timestamps, now, window, count.saturating_sub(1))
    } else if hits > requests {
        window
    } else {
        log_wait_until(timestamps, now, window, requests - hits)
    };
    (remaining, reset)
}

/// Remaining requests and reset time of a sliding-window counter, as [`super::LimitOutcome`]
/// defines them. `state` already includes the hits if they were committed.
pub fn counter_outcome(
    state: &CounterState,
    now: u64,
    window: u64,
    requests: u64,
    hits: u64,
    within_limit: bool,
) -> (u64, u64) {
    let estimate = state.estimate(now, window);
    let remaining = (requests as f64 - estimate).floor().max(0.0) as u64;
    let reset = if within_limit {
        if estimate <= 0.0 {
            0
        } else {
            // The remaining count grows by one once the estimate reaches this target.
            let target = requests as f64 - remaining as f64 - 1.0;
            state.wait_until_estimate(now, window, target.max(0.0))
        }
    } else if hits > requests {
        window
    } else {
        state.wait_until_estimate(now, window, (requests - hits) as f64)
    };
    (remaining, reset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 1_000_000;

    #[test]
    fn counter_rolls_windows() {
        let state = CounterState {
            start: 0,
            current: 4,
            previous: 2,
        };
        assert_eq!(CounterState::roll(Some(state), 10, W), state);
        let next = CounterState::roll(Some(state), W + 10, W);
        assert_eq!((next.start, next.current, next.previous), (W, 0, 4));
        let later = CounterState::roll(Some(state), 2 * W + 10, W);
        assert_eq!((later.current, later.previous), (0, 0));
    }

    #[test]
    fn counter_estimate_weights_previous_window() {
        let state = CounterState {
            start: W,
            current: 1,
            previous: 4,
        };
        // A quarter into the window, three quarters of the previous window still count.
        assert_eq!(state.estimate(W + W / 4, W), 4.0);
    }

    #[test]
    fn counter_wait_reaches_target() {
        let state = CounterState {
            start: W,
            current: 1,
            previous: 4,
        };
        let now = W + W / 4;
        // Estimate 4 now; it falls to 3 when half the window has passed.
        assert_eq!(state.wait_until_estimate(now, W, 3.0), W / 4);
        // Falling below 1 needs the current window to end: then 1 * (1 - e/W) <= 0.5 at e = W/2.
        assert_eq!(state.wait_until_estimate(now, W, 0.5), 3 * W / 4 + W / 2);
        assert_eq!(state.wait_until_estimate(now, W, 4.0), 0);
    }

    #[test]
    fn log_wait_uses_oldest_entries() {
        let log = VecDeque::from([100, 200, 300]);
        assert_eq!(log_wait_until(&log, 250, W, 3), 0);
        assert_eq!(log_wait_until(&log, 250, W, 2), 100 + W - 250);
        assert_eq!(log_wait_until(&log, 250, W, 0), 300 + W - 250);
    }
}
