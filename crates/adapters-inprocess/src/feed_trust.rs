//! How long a cache that a change feed keeps current may serve what it holds: until a bound
//! after the start of the last read of the feed that succeeded. When the feed stops being read
//! (store down, task stuck), the cache asks the store again within that bound; it never serves
//! a record staler than that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct FeedTrust {
    origin: Instant,
    bound: Duration,
    /// Microseconds after `origin` until which the cache is trusted; 0 until the first read.
    until: AtomicU64,
}

impl FeedTrust {
    pub(crate) fn new(bound: Duration) -> Self {
        Self {
            origin: Instant::now(),
            bound,
            until: AtomicU64::new(0),
        }
    }

    fn micros_at(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.origin).as_micros()).unwrap_or(u64::MAX)
    }

    /// A read of the feed that began at `read_started` evicted every change committed before.
    /// Reads may finish out of order: the latest start wins.
    pub(crate) fn renew(&self, read_started: Instant) {
        let until = self
            .micros_at(read_started)
            .saturating_add(u64::try_from(self.bound.as_micros()).unwrap_or(u64::MAX));
        self.until.fetch_max(until, Ordering::AcqRel);
    }

    pub(crate) fn holds_at(&self, now: Instant) -> bool {
        self.micros_at(now) < self.until.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_trusted_before_the_first_read() {
        let t = FeedTrust::new(Duration::from_millis(750));
        assert!(!t.holds_at(Instant::now()));
    }

    #[test]
    fn a_read_is_trusted_for_the_bound_after_it_began_not_after_it_ended() {
        let t = FeedTrust::new(Duration::from_millis(750));
        let started = t.origin + Duration::from_secs(10);
        t.renew(started);
        assert!(t.holds_at(started + Duration::from_millis(749)));
        assert!(!t.holds_at(started + Duration::from_millis(750)));
    }

    #[test]
    fn an_older_read_finishing_late_never_shortens_the_trust() {
        let t = FeedTrust::new(Duration::from_millis(750));
        let (older, newer) = (
            t.origin + Duration::from_secs(1),
            t.origin + Duration::from_secs(2),
        );
        t.renew(newer);
        t.renew(older);
        assert!(t.holds_at(newer + Duration::from_millis(700)));
    }
}
