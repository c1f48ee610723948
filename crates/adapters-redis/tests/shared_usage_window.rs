//! The trailing window counted in Redis by two "instances" at once.

// Test helpers fail loudly, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use keys_domain::ports::UsageWindow;
use keys_domain::usage::{HighUsageThreshold, WindowCount};
use keys_domain::{KeyId, Timestamp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_threshold_is_crossed_once_across_instances() {
    let a = Arc::new(common::window(common::shared_redis().await));
    let b = Arc::new(common::window(common::shared_redis().await));
    let key = KeyId::new(common::unique("key_window"));
    let now = Timestamp::from_millis(1_800_000_000_000);
    let threshold = HighUsageThreshold::new(300).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let window = if i % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            tokio::spawn(async move {
                let mut crossings = 0;
                let mut last = 0;
                for _ in 0..50 {
                    let count = window.add(&key, 1, now).await;
                    assert_eq!(count.after, count.before + 1);
                    crossings += usize::from(threshold.crossed(count));
                    last = last.max(count.after);
                }
                (crossings, last)
            })
        })
        .collect();
    let mut crossings = 0;
    let mut highest = 0;
    for t in tasks {
        let (c, last) = t.await.unwrap();
        crossings += c;
        highest = highest.max(last);
    }
    assert_eq!(crossings, 1);
    assert_eq!(highest, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_trails_24_hours_in_hourly_buckets() {
    let w = common::window(common::shared_redis().await);
    let key = KeyId::new(common::unique("key_trail"));
    let hour = 3_600_000;
    let t0 = Timestamp::from_millis(1_800_000_000_000 / hour * hour);
    assert_eq!(
        w.add(&key, 5, t0).await,
        WindowCount {
            before: 0,
            after: 5
        }
    );
    let later = Timestamp::from_millis(t0.as_millis() + 23 * hour + 59 * 60_000);
    assert_eq!(
        w.add(&key, 2, later).await,
        WindowCount {
            before: 5,
            after: 7
        }
    );
    let next_day = Timestamp::from_millis(t0.as_millis() + 24 * hour);
    assert_eq!(
        w.add(&key, 1, next_day).await,
        WindowCount {
            before: 2,
            after: 3
        }
    );
}
