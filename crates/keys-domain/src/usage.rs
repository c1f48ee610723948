//! Usage rules: a trailing 24-hour window counted in hourly buckets, and the high-usage
//! threshold that fires once when a key's count goes from below to at-or-above it, and not
//! again within 24 hours of an alert.

use std::time::Duration;

use crate::ids::{KeyId, UserId};
use crate::key_client::ClientUse;
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
    /// Where the requests came from, one entry per client.
    pub clients: Vec<ClientUse>,
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

/// A pure in-memory trailing window of one key: 24 hourly counts.
///
/// The newest hour counted (`latest`) keeps its count inline; the 23 hours before it live in a
/// ring, allocated only once the key is counted in a second hour of one window. A process
/// remembers every key used in the last day, and most of those were used within one hour: 16
/// bytes each then, 16 + 96 for a key used over several hours. Ring slot `s` holds the count of
/// the one hour congruent to `s` (mod 24) in `[latest - 23, latest - 1]`; `latest`'s own slot
/// stays 0. Hours since the epoch fit an `i32` for 245 000 years; an hour's count saturates at
/// 4 × 10^9 (the rate limit keeps a key far below that).
#[derive(Debug, Clone)]
pub struct HourlyWindow {
    /// The newest hour counted; `i32::MIN` before the first add.
    latest: i32,
    /// `latest`'s count.
    newest: u32,
    /// The hours before `latest` still in its window, once there were any.
    earlier: Option<Box<[u32; BUCKETS]>>,
}

impl Default for HourlyWindow {
    fn default() -> Self {
        Self {
            latest: i32::MIN,
            newest: 0,
            earlier: None,
        }
    }
}

/// The slot index of an hour.
fn slot_of(bucket: i64) -> usize {
    usize::try_from(bucket.rem_euclid(BUCKETS_I64)).unwrap_or(0)
}

/// A bucket as stored; instants outside ±245 000 years clamp (never reached by a real clock).
fn narrow_bucket(bucket: i64) -> i32 {
    i32::try_from(bucket).unwrap_or(if bucket < 0 { i32::MIN } else { i32::MAX })
}

impl HourlyWindow {
    /// Adds `n` requests at `now` and returns the window's count before and after.
    pub fn add(&mut self, now: Timestamp, n: u64) -> WindowCount {
        let before = self.count(now);
        let stored = narrow_bucket(bucket_of(now));
        let (bucket, latest) = (i64::from(stored), i64::from(self.latest));
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        if bucket > latest {
            let carried = self.newest > 0 || self.earlier.is_some();
            if carried && bucket - latest < BUCKETS_I64 {
                // `latest` joins the earlier hours; the hours the window leaves are zeroed.
                let ring = self.earlier.get_or_insert_with(|| Box::new([0; BUCKETS]));
                for hour in latest + 1..=bucket {
                    ring[slot_of(hour)] = 0;
                }
                ring[slot_of(latest)] = self.newest;
            } else {
                self.earlier = None;
            }
            self.latest = stored;
            self.newest = n32;
        } else if bucket == latest {
            self.newest = self.newest.saturating_add(n32);
        } else if bucket <= latest - BUCKETS_I64 {
            // More than a day behind the newest hour counted: outside every window still asked
            // about, and its slot belongs to a newer hour whose count must stay.
            return WindowCount {
                before,
                after: before,
            };
        } else {
            let ring = self.earlier.get_or_insert_with(|| Box::new([0; BUCKETS]));
            let slot = &mut ring[slot_of(bucket)];
            *slot = slot.saturating_add(n32);
        }
        WindowCount {
            before,
            after: before.saturating_add(n),
        }
    }

    /// Requests in the window ending at `now`.
    #[must_use]
    pub fn count(&self, now: Timestamp) -> u64 {
        let window = oldest_bucket_in_window(now)..=bucket_of(now);
        let latest = i64::from(self.latest);
        let newest = if window.contains(&latest) {
            u64::from(self.newest)
        } else {
            0
        };
        let earlier = self.earlier.as_ref().map_or(0, |ring| {
            (1..BUCKETS_I64)
                .map(|back| latest - back)
                .filter(|hour| window.contains(hour))
                .map(|hour| u64::from(ring[slot_of(hour)]))
                .sum()
        });
        newest + earlier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counted_in_one_hour_is_16_bytes() {
        // What 100k keys used in the last day cost in a process (`docs/performance.md`).
        assert_eq!(std::mem::size_of::<HourlyWindow>(), 16);
        let t0 = Timestamp::from_millis(1_795_818_180_000);
        let mut w = HourlyWindow::default();
        w.add(t0, 3);
        w.add(Timestamp::from_millis(t0.as_millis() + 1_000), 2);
        assert!(w.earlier.is_none(), "one hour needs no ring");
        assert_eq!(w.count(t0), 5);
    }

    #[test]
    fn hours_that_fall_out_of_the_window_are_not_counted_again() {
        let t0 = Timestamp::from_millis(1_795_818_180_000);
        let later = |h: i64| Timestamp::from_millis(t0.as_millis() + h * BUCKET_MS);
        let mut w = HourlyWindow::default();
        assert_eq!(w.add(t0, 3).after, 3);
        assert_eq!(w.add(later(23), 4).after, 7);
        // 24 h later t0's hour has left the window and its slot now counts the new hour.
        assert_eq!(
            w.add(later(24), 5),
            WindowCount {
                before: 4,
                after: 9
            }
        );
        assert_eq!(w.count(later(46)), 9);
        assert_eq!(w.count(later(47)), 5);
        assert_eq!(w.count(later(48)), 0);
        assert_eq!(w.add(later(100), 1).after, 1);
    }

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
