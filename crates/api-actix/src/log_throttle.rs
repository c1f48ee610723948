//! At most one log line per interval for an event that can repeat once per request (a flood's
//! refusals, a dependency's failures): the first event logs at once, later ones are counted and
//! the next line says how many there were. A log that grows with an attacker's request rate is
//! a second attack surface (disk, the operator's attention); the counts stay exact in metrics.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The default interval between two lines.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// One repeated event's throttle.
#[derive(Debug)]
pub struct LogThrottle {
    every: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_line: Option<Instant>,
    /// Events since the last line.
    unlogged: u64,
}

impl LogThrottle {
    #[must_use]
    pub const fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new(State {
                last_line: None,
                unlogged: 0,
            }),
        }
    }

    /// Counts one event at `now`; `Some(n)` when a line is due, `n` being the events it covers
    /// (this one included).
    pub fn event(&self, now: Instant) -> Option<u64> {
        // A poisoned lock only means another thread panicked while counting: keep counting.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.unlogged += 1;
        let due = state
            .last_line
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if !due {
            return None;
        }
        state.last_line = Some(now);
        Some(std::mem::take(&mut state.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_logs_then_one_line_per_interval_counts_the_rest() {
        let throttle = LogThrottle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(throttle.event(t0), Some(1));
        for ms in 1..1_000 {
            assert_eq!(throttle.event(t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(throttle.event(t0 + Duration::from_secs(10)), Some(1_000));
        assert_eq!(throttle.event(t0 + Duration::from_secs(11)), None);
        assert_eq!(throttle.event(t0 + Duration::from_secs(25)), Some(2));
    }
}
