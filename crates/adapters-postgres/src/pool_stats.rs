//! What the connection pools are doing, for the metrics (`jt_db_connections{pool,state}`,
//! `jt_db_pool_wait_seconds`): read when scraped, never pushed, so the adapter names no metrics
//! library.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the wait buckets, in microseconds: a checkout is immediate while the pool has
/// an idle connection, and gives up at the 2 s checkout timeout.
const WAIT_BOUNDS_MICROS: [u64; 10] = [
    100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 2_500_000,
];

/// One pool, as seen now.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolState {
    /// `requests` (every port call) or `ledger` (the ledger writer's reserved connections).
    pub pool: &'static str,
    /// Open connections nobody holds.
    pub idle: u32,
    /// Connections held by a call.
    pub in_use: u32,
    /// The most the pool opens.
    pub max: u32,
    /// How long checkouts waited for a connection, successful or not.
    pub waits: WaitHistogram,
}

/// Checkout waits since the store was opened: a cumulative histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitHistogram {
    /// `(upper bound in seconds, checkouts that waited at most that long)`, bounds ascending;
    /// the `+Inf` bucket is [`WaitHistogram::count`].
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

/// Where the waits accumulate: an increment per checkout into its bucket, and one into the sum.
#[derive(Debug, Default)]
pub(crate) struct WaitRecorder {
    /// Checkouts per bucket (not cumulative); the last one is above every bound.
    buckets: [AtomicU64; WAIT_BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl WaitRecorder {
    pub(crate) fn record(&self, waited: Duration) {
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        let bucket = WAIT_BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        if let Some(counter) = self.buckets.get(bucket) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WaitHistogram {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(WAIT_BOUNDS_MICROS.len());
        for (bound, counter) in WAIT_BOUNDS_MICROS.iter().zip(&self.buckets) {
            cumulative += counter.load(Ordering::Relaxed);
            #[allow(clippy::cast_precision_loss)]
            buckets.push((*bound as f64 / 1e6, cumulative));
        }
        let above = self
            .buckets
            .last()
            .map_or(0, |counter| counter.load(Ordering::Relaxed));
        #[allow(clippy::cast_precision_loss)]
        let sum_seconds = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        WaitHistogram {
            buckets,
            count: cumulative + above,
            sum_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_fall_in_cumulative_buckets() {
        let r = WaitRecorder::default();
        assert_eq!(r.snapshot().count, 0);
        for micros in [0, 100, 101, 40_000, 3_000_000] {
            r.record(Duration::from_micros(micros));
        }
        let h = r.snapshot();
        assert_eq!(h.count, 5);
        assert!(
            (h.sum_seconds - 3.040_201).abs() < 1e-9,
            "{}",
            h.sum_seconds
        );
        let at = |bound: f64| {
            h.buckets
                .iter()
                .find(|(b, _)| (*b - bound).abs() < 1e-12)
                .map(|(_, n)| *n)
        };
        assert_eq!(at(0.0001), Some(2), "0 and 100 µs are within 100 µs");
        assert_eq!(at(0.0005), Some(3));
        assert_eq!(at(0.05), Some(4));
        assert_eq!(at(2.5), Some(4), "3 s is above every bound: only in +Inf");
        assert!(
            h.buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
    }
}
