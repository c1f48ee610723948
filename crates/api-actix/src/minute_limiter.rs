//! A fixed one-minute window per subject (a client IP, a user): at most `limit` events in a
//! window, then refusals until the window ends. In process memory; pure logic over the
//! `Instant`s its callers pass, so it is tested without sleeping.
//!
//! Fixed windows rather than GCRA because the failed-authentication limit must be *read*
//! before a request is authenticated and *counted* only when authentication failed.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Counts between two sweeps of ended windows, so memory stays bounded by recent subjects.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    fn ended(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started) >= WINDOW
    }

    /// Whole seconds until the window ends, at least 1 (for `Retry-After`).
    fn retry_after(&self, now: Instant) -> u64 {
        let left = WINDOW.saturating_sub(now.saturating_duration_since(self.started));
        (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
    }
}

/// Per-subject event counts over one-minute windows.
pub struct MinuteLimiter<K: Eq + Hash> {
    limit: u32,
    windows: DashMap<K, Window, foldhash::fast::RandomState>,
    /// Windows that reached the limit (an upper bound: ended ones leave it at the next sweep).
    /// While it is 0, [`MinuteLimiter::refused`] answers without a map lookup: the common case
    /// of the authentication hot path.
    full: AtomicUsize,
    counted: AtomicU64,
}

impl<K: Eq + Hash + Clone> MinuteLimiter<K> {
    /// At most `limit` events per subject per minute (0 is read as 1).
    #[must_use]
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit.max(1),
            windows: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            full: AtomicUsize::new(0),
            counted: AtomicU64::new(0),
        }
    }

    /// `Some(retry_after_seconds)` when `subject` already had `limit` events in its current
    /// window. Counts nothing.
    pub fn refused(&self, subject: &K, now: Instant) -> Option<u64> {
        if self.full.load(Ordering::Acquire) == 0 {
            return None;
        }
        let w = *self.windows.get(subject)?;
        (!w.ended(now) && w.count >= self.limit).then(|| w.retry_after(now))
    }

    /// Counts one event for `subject`.
    pub fn count(&self, subject: K, now: Instant) {
        // Never refused: counting past the limit is the point.
        let _ = self.admit(subject, now, true);
    }

    /// Counts one event unless the subject is at its limit: `Err(retry_after_seconds)` then.
    ///
    /// # Errors
    /// The retry delay, when refused.
    pub fn take(&self, subject: K, now: Instant) -> Result<(), u64> {
        self.admit(subject, now, false)
    }

    fn admit(&self, subject: K, now: Instant, even_if_full: bool) -> Result<(), u64> {
        if self.counted.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(now);
        }
        let mut w = self.windows.entry(subject).or_insert(Window {
            started: now,
            count: 0,
        });
        if w.ended(now) {
            if w.count >= self.limit {
                self.full.fetch_sub(1, Ordering::AcqRel);
            }
            *w = Window {
                started: now,
                count: 0,
            };
        }
        if w.count >= self.limit && !even_if_full {
            return Err(w.retry_after(now));
        }
        w.count = w.count.saturating_add(1);
        if w.count == self.limit {
            self.full.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Forgets ended windows.
    pub fn sweep(&self, now: Instant) {
        self.windows.retain(|_, w| {
            let keep = !w.ended(now);
            if !keep && w.count >= self.limit {
                self.full.fetch_sub(1, Ordering::AcqRel);
            }
            keep
        });
    }

    /// Subjects with a window (ended or not), for tests.
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let t0 = Instant::now();
        let l = MinuteLimiter::new(3);
        for _ in 0..3 {
            assert_eq!(l.refused(&"a", t0), None);
            l.count("a", t0);
        }
        assert_eq!(l.refused(&"a", t0), Some(60));
        assert_eq!(l.refused(&"b", t0), None, "other subjects are not affected");
        let later = t0 + Duration::from_millis(59_500);
        assert_eq!(l.refused(&"a", later), Some(1));
        let next = t0 + WINDOW;
        assert_eq!(l.refused(&"a", next), None);
        l.count("a", next);
        assert_eq!(l.refused(&"a", next), None);
    }

    #[test]
    fn take_counts_only_what_it_admits() {
        let t0 = Instant::now();
        let l = MinuteLimiter::new(2);
        assert_eq!(l.take(1, t0), Ok(()));
        assert_eq!(l.take(1, t0), Ok(()));
        assert_eq!(l.take(1, t0 + Duration::from_secs(30)), Err(30));
        assert_eq!(l.take(1, t0 + WINDOW), Ok(()));
    }

    #[test]
    fn sweeping_forgets_ended_windows_and_the_fast_path_returns() {
        let t0 = Instant::now();
        let l = MinuteLimiter::new(1);
        for i in 0..100 {
            l.count(i, t0);
        }
        assert_eq!(l.tracked(), 100);
        assert_eq!(l.full.load(Ordering::Acquire), 100);
        l.sweep(t0 + WINDOW);
        assert_eq!(l.tracked(), 0);
        assert_eq!(l.full.load(Ordering::Acquire), 0);
    }
}
