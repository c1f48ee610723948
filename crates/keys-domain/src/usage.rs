//! Usage rules: a trailing 24-hour window counted in hourly buckets, and the high-usage
//! threshold that fires once when a key's count goes from below to at-or-above it, and not
//! again within 24 hours of an alert.

use std::time::Duration;

use crate::ids::{KeyId, UserId};
use crate::timestamp::Timestamp;

/// The trailing window.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Granularity of the window: the count covers the current hour and the 23 before it.
pub const BUCKET: Duration = Duration::from_secs(3600);
/// Buckets in a window.
pub const BUCKETS: usize = 24;
const BUCKETS_I64: i64 = 24;
/// Minimum time between two alerts for one key.
pub const ALERT_COOLDOWN: Duration = WINDOW;

const BUCKET_MS: i64 = 3_600_000;

/// The hourly bucket `at` falls in (hours since the epoch).
#[must_use]
pub fn bucket_of(at: Timestamp) -> i64 {
    at.as_millis().div_euclid(BUCKET_MS)
}

/// The oldest bucket still inside the window that ends in `at`'s bucket.
#[must_use]
pub fn oldest_bucket_in_window(at: Timestamp) -> i64 {
    bucket_of(at) - (BUCKETS_I64 - 1)
}

/// A key's use accumulated since the last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    pub key_id: KeyId,
    pub user_id: UserId,
    pub count: u64,
    pub last_used_at: Timestamp,
}

/// A window count before and after adding some requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub before: u64,
    pub after: u64,
}

/// `JT_HIGH_USAGE_THRESHOLD`: requests per key per trailing 24 h that trigger the alert (≥ 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighUsageThreshold(u64);

impl HighUsageThreshold {
    /// `None` for 0, which would alert on nothing meaningful.
    #[must_use]
    pub fn new(n: u64) -> Option<Self> {
        (n > 0).then_some(Self(n))
    }

    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Whether going from `count.before` to `count.after` crosses the threshold.
    #[must_use]
    pub fn crossed(self, count: WindowCount) -> bool {
        count.before < self.0 && count.after >= self.0
    }
}

/// Whether a new alert may be raised at `now`, given when the last one was.
#[must_use]
pub fn alert_allowed(last_alert_at: Option<Timestamp>, now: Timestamp) -> bool {
    last_alert_at.is_none_or(|last| last.plus(ALERT_COOLDOWN) <= now)
}

/// A pure in-memory trailing window of one key: 24 hourly buckets in a ring.
#[derive(Debug, Clone, Default)]
pub struct HourlyWindow {
    /// `(bucket index, count)` per slot; a slot whose index is outside the window is stale.
    /// 32-bit halves keep a key's window at 192 bytes: a process remembers every key used in
    /// the last day, so this is what 100k active keys cost. Hours since the epoch fit an `i32`
    /// for 245 000 years; an hour's count saturates at 4 × 10^9 (the rate limit keeps a key
    /// far below that).
    slots: [(i32, u32); BUCKETS],
}

/// The slot index of a bucket.
fn slot_of(bucket: i32) -> usize {
    usize::try_from(bucket.rem_euclid(24)).unwrap_or(0)
}

/// A bucket as stored; instants outside ±245 000 years clamp (never reached by a real clock).
fn narrow_bucket(bucket: i64) -> i32 {
    i32::try_from(bucket).unwrap_or(if bucket < 0 { i32::MIN } else { i32::MAX })
}

impl HourlyWindow {
    /// Adds `n` requests at `now` and returns the window's count before and after.
    pub fn add(&mut self, now: Timestamp, n: u64) -> WindowCount {
        let before = self.count(now);
        let bucket = narrow_bucket(bucket_of(now));
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        let slot = &mut self.slots[slot_of(bucket)];
        if slot.0 == bucket {
            slot.1 = slot.1.saturating_add(n32);
        } else if slot.0 < bucket {
            *slot = (bucket, n32);
        } else {
            // The slot holds a newer hour, so `now` is more than a day behind the requests already
            // counted: outside every window still asked about. Dropping it keeps the newer count.
            return WindowCount {
                before,
                after: before,
            };
        }
        WindowCount {
            before,
            after: before.saturating_add(n),
        }
    }

    /// Requests in the window ending at `now`.
    #[must_use]
    pub fn count(&self, now: Timestamp) -> u64 {
        let (oldest, newest) = (oldest_bucket_in_window(now), bucket_of(now));
        self.slots
            .iter()
            .filter(|(b, _)| (oldest..=newest).contains(&i64::from(*b)))
            .map(|(_, c)| u64::from(*c))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_fires_only_on_the_crossing() {
        let t = HighUsageThreshold::new(10).unwrap();
        assert!(!t.crossed(WindowCount {
            before: 8,
            after: 9
        }));
        assert!(t.crossed(WindowCount {
            before: 9,
            after: 10
        }));
        assert!(t.crossed(WindowCount {
            before: 3,
            after: 40
        }));
        assert!(!t.crossed(WindowCount {
            before: 10,
            after: 11
        }));
        assert!(HighUsageThreshold::new(0).is_none());
    }

    #[test]
    fn alert_cooldown_is_24_hours() {
        let t0 = Timestamp::from_millis(10_000_000);
        assert!(alert_allowed(None, t0));
        assert!(!alert_allowed(
            Some(t0),
            t0.plus(WINDOW).minus(Duration::from_millis(1))
        ));
        assert!(alert_allowed(Some(t0), t0.plus(WINDOW)));
    }

    #[test]
    fn window_forgets_buckets_older_than_24_hours() {
        let t0 = Timestamp::from_millis(BUCKET_MS * 1000);
        let mut w = HourlyWindow::default();
        assert_eq!(
            w.add(t0, 5),
            WindowCount {
                before: 0,
                after: 5
            }
        );
        let later = t0.plus(Duration::from_secs(23 * 3600));
        assert_eq!(
            w.add(later, 1),
            WindowCount {
                before: 5,
                after: 6
            }
        );
        let day = t0.plus(WINDOW);
        assert_eq!(w.count(day), 1);
        assert_eq!(
            w.add(day, 2),
            WindowCount {
                before: 1,
                after: 3
            }
        );
    }
}
