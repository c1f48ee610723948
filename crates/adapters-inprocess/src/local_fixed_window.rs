//! The fixed-window limiter port in process memory: a one-minute window per subject, started by
//! its first event. Alone for a single instance, and the Redis limiter's fallback.
//!
//! Fixed windows rather than GCRA because the failed-authentication limit must be *read*
//! before a request is authenticated and *counted* only when authentication failed. The logic
//! works on the `Instant`s it is given, so it is tested without sleeping.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::mapref::one::RefMut;
use keys_domain::ports::FixedWindowLimiter;

/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Counts between two sweeps of ended windows, so memory stays bounded by recent subjects even
/// between the background sweeper's rounds.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    const fn new(now: Instant) -> Self {
        Self {
            started: now,
            count: 0,
        }
    }

    fn ended(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started) >= WINDOW
    }

    /// Whole seconds until the window ends, at least 1 (for `Retry-After`).
    fn retry_after(&self, now: Instant) -> u64 {
        let left = WINDOW.saturating_sub(now.saturating_duration_since(self.started));
        (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
    }
}

/// Per-subject event counts over one-minute windows, in this process only.
pub struct LocalFixedWindow {
    limit: u32,
    windows: DashMap<String, Window, foldhash::fast::RandomState>,
    /// Windows that reached the limit (an upper bound: ended ones leave it at the next sweep).
    /// While it is 0, [`FixedWindowLimiter::refused`] answers without a map lookup: the common
    /// case of the authentication hot path.
    full: AtomicUsize,
    counted: AtomicU64,
}

impl LocalFixedWindow {
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

    /// The limit this limiter enforces.
    #[must_use]
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Forgets ended windows (the background sweeper calls this).
    pub fn sweep(&self) {
        self.sweep_at(Instant::now());
    }

    /// Subjects with a window (ended or not), for tests.
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }

    /// While no subject is at its limit, answers without formatting `subject`.
    fn refused_at(&self, subject: &dyn std::fmt::Display, now: Instant) -> Option<u64> {
        if self.full.load(Ordering::Acquire) == 0 {
            return None;
        }
        let w = *self.windows.get(&subject.to_string())?;
        (!w.ended(now) && w.count >= self.limit).then(|| w.retry_after(now))
    }

    fn admit(&self, subject: &str, now: Instant, even_if_full: bool) -> Result<(), u64> {
        if self.counted.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep_at(now);
        }
        let mut w = self.window(subject, now);
        if w.ended(now) {
            if w.count >= self.limit {
                self.full.fetch_sub(1, Ordering::AcqRel);
            }
            *w = Window::new(now);
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

    /// `subject`'s window, created at `now` if it has none; the subject is copied only then.
    fn window(&self, subject: &str, now: Instant) -> RefMut<'_, String, Window> {
        match self.windows.get_mut(subject) {
            Some(w) => w,
            None => self
                .windows
                .entry(subject.to_owned())
                .or_insert(Window::new(now)),
        }
    }

    fn sweep_at(&self, now: Instant) {
        self.windows.retain(|_, w| {
            let keep = !w.ended(now);
            if !keep && w.count >= self.limit {
                self.full.fetch_sub(1, Ordering::AcqRel);
            }
            keep
        });
    }
}

#[async_trait]
impl FixedWindowLimiter for LocalFixedWindow {
    fn refused(&self, subject: &dyn std::fmt::Display) -> Option<u64> {
        self.refused_at(subject, Instant::now())
    }

    async fn count(&self, subject: &str) {
        // Never refused: counting past the limit is the point.
        let _ = self.admit(subject, Instant::now(), true);
    }

    async fn take(&self, subject: &str) -> Result<(), u64> {
        self.admit(subject, Instant::now(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(l: &LocalFixedWindow, subject: &str, now: Instant) {
        assert_eq!(l.admit(subject, now, true), Ok(()));
    }

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let t0 = Instant::now();
        let l = LocalFixedWindow::new(3);
        for _ in 0..3 {
            assert_eq!(l.refused_at(&"a", t0), None);
            count(&l, "a", t0);
        }
        assert_eq!(l.refused_at(&"a", t0), Some(60));
        assert_eq!(
            l.refused_at(&"b", t0),
            None,
            "other subjects are not affected"
        );
        let later = t0 + Duration::from_millis(59_500);
        assert_eq!(l.refused_at(&"a", later), Some(1));
        let next = t0 + WINDOW;
        assert_eq!(l.refused_at(&"a", next), None);
        count(&l, "a", next);
        assert_eq!(l.refused_at(&"a", next), None);
    }

    #[test]
    fn counting_goes_on_past_the_limit() {
        let t0 = Instant::now();
        let l = LocalFixedWindow::new(1);
        for _ in 0..5 {
            count(&l, "a", t0);
        }
        assert_eq!(l.refused_at(&"a", t0), Some(60));
        assert_eq!(l.full.load(Ordering::Acquire), 1, "one full window");
    }

    #[test]
    fn take_counts_only_what_it_admits() {
        let t0 = Instant::now();
        let l = LocalFixedWindow::new(2);
        assert_eq!(l.admit("1", t0, false), Ok(()));
        assert_eq!(l.admit("1", t0, false), Ok(()));
        assert_eq!(l.admit("1", t0 + Duration::from_secs(30), false), Err(30));
        assert_eq!(l.admit("1", t0 + WINDOW, false), Ok(()));
    }

    #[test]
    fn zero_is_read_as_one() {
        let t0 = Instant::now();
        let l = LocalFixedWindow::new(0);
        assert_eq!(l.limit(), 1);
        assert_eq!(l.admit("a", t0, false), Ok(()));
        assert_eq!(l.admit("a", t0, false), Err(60));
    }

    #[test]
    fn sweeping_forgets_ended_windows_and_the_fast_path_returns() {
        let t0 = Instant::now();
        let l = LocalFixedWindow::new(1);
        for i in 0..100 {
            count(&l, &i.to_string(), t0);
        }
        assert_eq!(l.tracked(), 100);
        assert_eq!(l.full.load(Ordering::Acquire), 100);
        l.sweep_at(t0 + WINDOW);
        assert_eq!(l.tracked(), 0);
        assert_eq!(l.full.load(Ordering::Acquire), 0);
    }

    #[test]
    fn the_port_counts_and_takes_now() {
        let l = LocalFixedWindow::new(2);
        futures_executor::block_on(async {
            l.count("ip").await;
            assert_eq!(l.refused(&"ip"), None);
            assert_eq!(l.take("ip").await, Ok(()));
            assert!(l.refused(&"ip").is_some_and(|s| (59..=60).contains(&s)));
            assert!(l.take("ip").await.is_err());
            assert_eq!(l.take("user").await, Ok(()));
        });
    }
}
