//! The trailing 24-hour usage window per key, in process memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use keys_domain::ports::UsageWindow;
use keys_domain::usage::{HourlyWindow, WindowCount};
use keys_domain::{KeyId, KeyTag, Timestamp};

/// One [`HourlyWindow`] per key, by its [`KeyTag`] (a window outlives the key's cached record);
/// keys with an empty window are dropped by [`Self::sweep`].
#[derive(Default)]
pub struct LocalUsageWindow {
    windows: Mutex<HashMap<KeyTag, HourlyWindow, foldhash::fast::RandomState>>,
}

impl LocalUsageWindow {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `count` at `now`; the window's count before and after. Synchronous.
    pub fn add_now(&self, key: &KeyId, count: u64, now: Timestamp) -> WindowCount {
        // A poisoned lock only means another thread panicked mid-add; the counts are still usable.
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        windows.entry(KeyTag::of(key)).or_default().add(now, count)
    }

    /// Keys currently tracked (for tests and metrics).
    #[must_use]
    pub fn tracked_keys(&self) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Forgets keys whose window ending at `now` is empty (the background sweeper calls this).
    pub fn sweep(&self, now: Timestamp) {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, w| w.count(now) > 0);
    }
}

#[async_trait]
impl UsageWindow for LocalUsageWindow {
    async fn add(&self, key: &KeyId, count: u64, now: Timestamp) -> WindowCount {
        self.add_now(key, count, now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn counts_before_and_after() {
        let w = LocalUsageWindow::new();
        let key = KeyId::new("key_w");
        let t0 = Timestamp::from_millis(1_700_000_000_000);
        assert_eq!(
            w.add_now(&key, 1, t0),
            WindowCount {
                before: 0,
                after: 1
            }
        );
        assert_eq!(
            w.add_now(&key, 3, t0),
            WindowCount {
                before: 1,
                after: 4
            }
        );
        let other = KeyId::new("key_other");
        assert_eq!(
            w.add_now(&other, 2, t0),
            WindowCount {
                before: 0,
                after: 2
            }
        );
        let later = t0.plus(HOUR * 5);
        assert_eq!(
            futures_executor::block_on(w.add(&key, 1, later)),
            WindowCount {
                before: 4,
                after: 5
            }
        );
        let next_day = later.plus(HOUR * 24);
        assert_eq!(
            w.add_now(&key, 1, next_day),
            WindowCount {
                before: 0,
                after: 1
            }
        );
    }

    #[test]
    fn threshold_is_crossed_once_by_concurrent_adders() {
        let w = std::sync::Arc::new(LocalUsageWindow::new());
        let key = KeyId::new("key_threshold");
        let t0 = Timestamp::from_millis(1_700_000_000_000);
        let threshold = keys_domain::usage::HighUsageThreshold::new(500).unwrap();
        let crossings: usize = (0..4)
            .map(|_| {
                let (w, key) = (w.clone(), key.clone());
                std::thread::spawn(move || {
                    (0..250)
                        .filter(|_| threshold.crossed(w.add_now(&key, 1, t0)))
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(crossings, 1);
    }

    #[test]
    fn empty_windows_are_swept() {
        let w = LocalUsageWindow::new();
        let t0 = Timestamp::from_millis(1_700_000_000_000);
        for i in 0..10 {
            w.add_now(&KeyId::new(format!("key_{i}")), 1, t0);
        }
        assert_eq!(w.tracked_keys(), 10);
        w.sweep(t0.plus(HOUR * 24));
        assert_eq!(w.tracked_keys(), 0);
    }
}
