//! What the log says about the database's availability: one WARN when calls start failing for a
//! reason a retry can fix (the callers answer 503), at most one line per 10 s counting the
//! failures while that lasts, and one INFO when a call succeeds again. Never a line per call: an
//! outage under load made three lines per request (67,255 in one second).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keys_domain::ports::StoreError;

use crate::failure::{Failure, is_transient};

/// Least time between two "still unavailable" lines.
const STILL_DOWN_EVERY: Duration = Duration::from_secs(10);

/// A line to write, as [`DatabaseHealth`] decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthLine {
    /// The first failure after a success.
    Down { reason: String },
    /// Failures since the last line, while it lasts.
    StillDown { failures: u64 },
    /// The first success after failures.
    Back { failures: u64, after: Duration },
}

#[derive(Debug, Default)]
struct Outage {
    since: Option<Instant>,
    failures: u64,
    unlogged: u64,
    last_line: Option<Instant>,
}

/// The database's availability, from the calls that reach it.
#[derive(Debug, Default)]
pub struct DatabaseHealth {
    /// Whether an outage is open: the only thing a successful call reads.
    down: AtomicBool,
    outage: Mutex<Outage>,
}

impl DatabaseHealth {
    /// Takes note of a call's result, and writes the line it calls for.
    pub fn observe<T, E>(&self, result: &Result<T, Failure<E>>) {
        let now = Instant::now();
        // The reason is written out only for the line that opens an outage.
        let line = match result {
            Err(Failure::Db(e)) if is_transient(e) => self.failed(now, || e.to_string()),
            Err(Failure::Store(StoreError::Unavailable(reason))) => {
                self.failed(now, || reason.clone())
            }
            // Whatever else happened, the database answered.
            _ => self.answered(now),
        };
        match line {
            Some(HealthLine::Down { reason }) => tracing::warn!(
                %reason,
                "database unavailable: calls fail and requests answer 503 until it is back"
            ),
            Some(HealthLine::StillDown { failures }) => {
                tracing::warn!(failures, "database still unavailable");
            }
            Some(HealthLine::Back { failures, after }) => tracing::info!(
                failures,
                after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                "database available again"
            ),
            None => {}
        }
    }

    /// A call failed at `now`, for `reason`.
    pub fn failed(&self, now: Instant, reason: impl FnOnce() -> String) -> Option<HealthLine> {
        let mut o = self
            .outage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        o.failures += 1;
        if o.since.is_none() {
            o.since = Some(now);
            o.last_line = Some(now);
            o.unlogged = 0;
            self.down.store(true, Ordering::Relaxed);
            return Some(HealthLine::Down { reason: reason() });
        }
        o.unlogged += 1;
        let due = o
            .last_line
            .is_none_or(|at| now.saturating_duration_since(at) >= STILL_DOWN_EVERY);
        due.then(|| {
            o.last_line = Some(now);
            HealthLine::StillDown {
                failures: std::mem::take(&mut o.unlogged),
            }
        })
    }

    /// A call reached the database at `now`.
    pub fn answered(&self, now: Instant) -> Option<HealthLine> {
        if !self.down.load(Ordering::Relaxed) {
            return None;
        }
        let mut o = self
            .outage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let since = o.since.take()?;
        self.down.store(false, Ordering::Relaxed);
        let failures = std::mem::take(&mut o.failures);
        o.unlogged = 0;
        Some(HealthLine::Back {
            failures,
            after: now.saturating_duration_since(since),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_one_line_down_one_per_10_s_and_one_back() {
        let h = DatabaseHealth::default();
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(h.answered(at(0)), None, "up: nothing to say");
        assert_eq!(
            h.failed(at(1), || "refused".into()),
            Some(HealthLine::Down {
                reason: "refused".into()
            })
        );
        let lines: Vec<_> = (2..30_000)
            .step_by(2)
            .filter_map(|ms| h.failed(at(ms), || "refused".into()))
            .collect();
        assert_eq!(
            lines,
            vec![
                HealthLine::StillDown { failures: 5_001 },
                HealthLine::StillDown { failures: 5_000 }
            ],
            "one line per 10 s with the count"
        );
        assert_eq!(
            h.answered(at(30_001)),
            Some(HealthLine::Back {
                failures: 15_000,
                after: Duration::from_millis(30_000)
            })
        );
        assert_eq!(h.answered(at(30_002)), None);
        assert!(matches!(
            h.failed(at(30_003), || "again".into()),
            Some(HealthLine::Down { .. })
        ));
    }
}
