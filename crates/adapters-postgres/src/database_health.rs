//! What the log says about the database's availability: one WARN when calls start failing for a
//! reason a retry can fix (the callers answer 503), at most one line per 10 s counting the
//! failures while that lasts, and one INFO when a call succeeds again. Never a line per call: an
//! outage under load made three lines per request (67,255 in one second).
//!
//! It also counts the failed calls by kind, for `jt_db_errors_total{kind}`: the log says when an
//! outage starts and ends, the counts say how many calls it failed (and show errors that are
//! not outages).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// Indexes of [`DatabaseHealth`]'s error counters.
const UNAVAILABLE: usize = 0;
const TRANSIENT: usize = 1;
const INTERNAL: usize = 2;

/// Failed store calls since the store was opened, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbErrorCounts {
    /// No connection could be had within the checkout timeout: the database is down or
    /// unreachable, or the pool stayed exhausted.
    pub unavailable: u64,
    /// A statement failed for a reason a retry can fix: a connection lost mid-call, a deadlock
    /// or serialization failure, SQLite busy.
    pub transient: u64,
    /// Any other database failure (a bug, a schema this release does not expect); each one is
    /// also logged as `unexpected database error`.
    pub internal: u64,
}

impl DbErrorCounts {
    /// The label values of `kind`, each with its count.
    #[must_use]
    pub fn by_kind(&self) -> [(&'static str, u64); 3] {
        [
            ("unavailable", self.unavailable),
            ("transient", self.transient),
            ("internal", self.internal),
        ]
    }
}

/// The database's availability, from the calls that reach it.
#[derive(Debug, Default)]
pub struct DatabaseHealth {
    /// Whether an outage is open: the only thing a successful call reads.
    down: AtomicBool,
    outage: Mutex<Outage>,
    /// Failed calls, in [`DbErrorCounts`]' order: only failures pay for the increment.
    errors: [AtomicU64; 3],
}

impl DatabaseHealth {
    /// Takes note of a call's result, and writes the line it calls for.
    pub fn observe<T, E>(&self, result: &Result<T, Failure<E>>) {
        let now = Instant::now();
        // The reason is written out only for the line that opens an outage.
        let line = match result {
            Err(Failure::Db(e)) if is_transient(e) => {
                self.count(TRANSIENT);
                self.failed(now, || e.to_string())
            }
            Err(Failure::Store(StoreError::Unavailable(reason))) => {
                self.count(UNAVAILABLE);
                self.failed(now, || reason.clone())
            }
            // The database answered, with something the code did not expect.
            Err(Failure::Db(_) | Failure::Store(StoreError::Internal(_))) => {
                self.count(INTERNAL);
                self.answered(now)
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

    fn count(&self, kind: usize) {
        if let Some(counter) = self.errors.get(kind) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether an outage is under way: a call failed and none has reached the database since.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Failed calls so far, by kind.
    pub fn error_counts(&self) -> DbErrorCounts {
        let [unavailable, transient, internal] =
            self.errors.each_ref().map(|c| c.load(Ordering::Relaxed));
        DbErrorCounts {
            unavailable,
            transient,
            internal,
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

    #[test]
    fn failed_calls_are_counted_by_kind() {
        use diesel::result::{DatabaseErrorKind, Error as DieselError};

        let h = DatabaseHealth::default();
        assert_eq!(h.error_counts(), DbErrorCounts::default());
        let ok: Result<(), Failure<StoreError>> = Ok(());
        h.observe(&ok);
        let checkout: Result<(), Failure<StoreError>> = Err(Failure::Store(
            StoreError::Unavailable("no connection".into()),
        ));
        h.observe(&checkout);
        h.observe(&checkout);
        let lost: Result<(), Failure<StoreError>> = Err(Failure::Db(DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("server closed the connection".to_owned()),
        )));
        h.observe(&lost);
        let bug: Result<(), Failure<StoreError>> = Err(Failure::Db(DieselError::NotFound));
        h.observe(&bug);
        let corrupt: Result<(), Failure<StoreError>> =
            Err(Failure::Store(StoreError::Internal("bad row".into())));
        h.observe(&corrupt);
        // A port's own refusal (a duplicate name…) is not a database error.
        let refused: Result<(), Failure<StoreError>> =
            Err(Failure::Port(StoreError::Internal("refused".into())));
        h.observe(&refused);
        assert_eq!(
            h.error_counts(),
            DbErrorCounts {
                unavailable: 2,
                transient: 1,
                internal: 2,
            }
        );
        assert_eq!(
            h.error_counts().by_kind().map(|(kind, _)| kind),
            ["unavailable", "transient", "internal"]
        );
    }
}
