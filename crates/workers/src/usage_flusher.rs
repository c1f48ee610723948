//! Writes the usage counted in memory (the [`UsageRecorder`] port) in batches.
//!
//! Every `usage_flush_interval` (1 s by default) and once more on graceful shutdown, the
//! pending counts go to [`UsageService::flush`]. When the store cannot take a batch, the batch is
//! put back and retried next round, so an outage delays counts but loses none while the process
//! runs. A crash (SIGKILL, power loss) loses what was pending: at most one flush interval of
//! counts and `last_used_at` updates. A graceful stop while the store is down loses what its
//! last flush could not write, and says so: one ERROR line with the keys and requests dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keys_domain::ports::UsageRecorder;
use keys_domain::use_cases::{MissedAlert, UsageService};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// More missed alerts than this means the store has been down for long; the oldest are dropped
/// (and logged) rather than growing without bound.
const MAX_MISSED_ALERTS: usize = 10_000;

/// One flushing loop's state: where counts accumulate, where they go, and the threshold
/// crossings whose alert is not in the outbox yet.
pub struct UsageFlusher {
    recorder: Arc<dyn UsageRecorder>,
    usage: UsageService,
    missed: Vec<MissedAlert>,
    /// Most keys written by one [`UsageService::flush`] (one transaction).
    chunk: usize,
    /// Flushes the store refused, for whoever watches (`jt_usage_flush_failures_total`).
    failures: Arc<AtomicU64>,
}

impl UsageFlusher {
    #[must_use]
    pub fn new(recorder: Arc<dyn UsageRecorder>, usage: UsageService) -> Self {
        Self {
            recorder,
            usage,
            missed: Vec::new(),
            chunk: usize::MAX,
            failures: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Adds one to `failures` for each flush the store refuses (the batch is kept and
    /// retried): the composition root reads it for the metrics.
    #[must_use]
    pub fn counting_failures_in(mut self, failures: Arc<AtomicU64>) -> Self {
        self.failures = failures;
        self
    }

    /// Writes at most `keys` keys per transaction (the store's choice, see
    /// `DbStore::usage_flush_chunk`); by default a flush is one transaction. A failed chunk and
    /// the ones after it are kept for the next round; the ones before it stay written.
    #[must_use]
    pub fn in_chunks_of(mut self, keys: usize) -> Self {
        self.chunk = keys.max(1);
        self
    }

    fn keep_missed(&mut self, more: Vec<MissedAlert>) {
        self.missed.extend(more);
        if self.missed.len() > MAX_MISSED_ALERTS {
            let dropped = self.missed.len() - MAX_MISSED_ALERTS;
            self.missed.drain(..dropped);
            tracing::error!(
                dropped,
                "high-usage alerts dropped: the outbox has been unavailable too long"
            );
        }
    }

    /// Writes what is pending once; on failure the batch is kept for the next round. Alerts
    /// the outbox could not take are retried every round until it does.
    pub async fn flush_once(&mut self) {
        let missed = std::mem::take(&mut self.missed);
        if !missed.is_empty() {
            let still = self.usage.retry_alerts(missed).await;
            self.keep_missed(still);
        }
        let batch = self.recorder.take();
        let mut chunks = batch.chunks(self.chunk);
        while let Some(chunk) = chunks.next() {
            match self.usage.flush(chunk).await {
                Ok(report) => {
                    if report.alert_errors > 0 {
                        tracing::warn!(
                            failed = report.alert_errors,
                            "high-usage alerts could not be queued; retrying"
                        );
                        self.keep_missed(report.missed);
                    }
                    if report.alerts_enqueued > 0 {
                        tracing::info!(queued = report.alerts_enqueued, "high-usage alerts queued");
                    }
                }
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    // The chunks written stay written; this one and the rest are kept.
                    let kept: Vec<_> = chunk.iter().chain(chunks.flatten()).cloned().collect();
                    tracing::warn!(error = %e, keys = kept.len(), "usage flush failed; will retry");
                    self.recorder.restore(kept);
                    return;
                }
            }
        }
    }
}

/// What the last flush before exit could not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DroppedAtExit {
    pub keys: usize,
    pub requests: u64,
}

impl UsageFlusher {
    /// The flush before exit: as [`UsageFlusher::flush_once`], then whatever the store did not
    /// take is dropped (nothing will retry it) and counted in one ERROR line.
    pub async fn flush_last(&mut self) -> DroppedAtExit {
        self.flush_once().await;
        let left = self.recorder.take();
        let dropped = DroppedAtExit {
            keys: left.len(),
            requests: left.iter().map(|d| d.count).sum(),
        };
        if dropped.keys > 0 {
            tracing::error!(
                keys = dropped.keys,
                requests = dropped.requests,
                "usage counts dropped at exit: the store did not take the last flush"
            );
        }
        if !self.missed.is_empty() {
            tracing::error!(
                alerts = self.missed.len(),
                "high-usage alerts dropped at exit: the outbox did not take them"
            );
        }
        dropped
    }
}

/// Flushes every `interval` until `shutdown`, then once more.
#[must_use = "the flusher stops when its shutdown token is cancelled; await the handle to wait for its last flush"]
pub fn spawn_usage_flusher(
    mut flusher: UsageFlusher,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => flusher.flush_once().await,
            }
        }
        flusher.flush_last().await;
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use adapters_inprocess::PendingUsage;
    use keys_domain::ports::{
        MockAccountStore, MockAlertOutbox, MockKeyStore, MockUsageWindow, SystemClock,
    };
    use keys_domain::random::OsRandom;
    use keys_domain::usage::{HighUsageThreshold, WindowCount};
    use keys_domain::{KeyId, Timestamp, UserId};

    use super::*;

    fn service(keys: MockKeyStore) -> UsageService {
        let mut window = MockUsageWindow::new();
        window.expect_add().returning(|_, n, _| WindowCount {
            before: 0,
            after: n,
        });
        UsageService {
            keys: Arc::new(keys),
            accounts: Arc::new(MockAccountStore::new()),
            window: Arc::new(window),
            outbox: Arc::new(MockAlertOutbox::new()),
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
            threshold: HighUsageThreshold::new(1_000_000).unwrap(),
            signals: None,
        }
    }

    #[tokio::test]
    async fn counts_accumulate_and_a_failed_flush_is_retried_with_later_counts_merged() {
        let rec = Arc::new(PendingUsage::new());
        let (k, u) = (KeyId::new("key_a"), UserId::new("usr_a"));
        for ms in [5, 9, 7] {
            rec.record(&k, &u, Timestamp::from_millis(ms), None, "-");
        }
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut keys = MockKeyStore::new();
        let mut first = true;
        let w = written.clone();
        keys.expect_record_usage().times(2).returning(move |b| {
            if std::mem::take(&mut first) {
                return Err(keys_domain::ports::StoreError::Unavailable("down".into()));
            }
            w.lock().unwrap().extend_from_slice(b);
            Ok(())
        });
        let mut flusher = UsageFlusher::new(rec.clone(), service(keys));
        flusher.flush_once().await; // fails: kept
        rec.record(&k, &u, Timestamp::from_millis(3), None, "-");
        flusher.flush_once().await;
        let written = written.lock().unwrap();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].count, 4);
        assert_eq!(written[0].last_used_at, Timestamp::from_millis(9));
        assert!(rec.take().is_empty());
    }

    #[tokio::test]
    async fn a_large_flush_is_written_in_chunks_and_a_failed_chunk_keeps_only_itself_and_the_rest()
    {
        let rec = Arc::new(PendingUsage::new());
        let user = UserId::new("usr_a");
        let chunk = 3;
        let n = chunk * 2 + 1;
        for i in 0..n {
            rec.record(
                &KeyId::new(format!("key_{i:04}")),
                &user,
                Timestamp::from_millis(1),
                None,
                "-",
            );
        }
        let written = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut keys = MockKeyStore::new();
        let (w, c) = (written.clone(), calls.clone());
        keys.expect_record_usage().returning(move |b| {
            let mut calls = c.lock().unwrap();
            calls.push(b.len());
            // The second transaction of the first flush fails.
            if calls.len() == 2 {
                return Err(keys_domain::ports::StoreError::Unavailable("down".into()));
            }
            w.lock()
                .unwrap()
                .extend(b.iter().map(|d| (d.key_id.clone(), d.count)));
            Ok(())
        });
        let mut flusher = UsageFlusher::new(rec.clone(), service(keys)).in_chunks_of(chunk);
        flusher.flush_once().await;
        assert_eq!(*calls.lock().unwrap(), vec![chunk, chunk]);
        assert_eq!(written.lock().unwrap().len(), chunk);
        flusher.flush_once().await;
        assert_eq!(
            *calls.lock().unwrap(),
            vec![chunk, chunk, chunk, 1],
            "the kept keys, again in chunks"
        );
        let mut written = written.lock().unwrap().clone();
        assert_eq!(written.len(), n, "no key written twice");
        written.sort();
        written.dedup();
        assert_eq!(written.len(), n, "every key written");
        assert!(written.iter().all(|(_, count)| *count == 1));
        assert!(rec.take().is_empty());
    }

    /// Issue 34: each refused flush is counted where the metrics read it; an empty round or a
    /// written flush is not.
    #[tokio::test]
    async fn each_refused_flush_is_counted() {
        let rec = Arc::new(PendingUsage::new());
        let (k, u) = (KeyId::new("key_a"), UserId::new("usr_a"));
        let mut keys = MockKeyStore::new();
        let mut refuse = 2;
        keys.expect_record_usage().times(3).returning(move |_| {
            if refuse > 0 {
                refuse -= 1;
                return Err(keys_domain::ports::StoreError::Unavailable("down".into()));
            }
            Ok(())
        });
        let failures = Arc::new(AtomicU64::new(0));
        let mut flusher =
            UsageFlusher::new(rec.clone(), service(keys)).counting_failures_in(failures.clone());
        flusher.flush_once().await;
        assert_eq!(failures.load(Ordering::Relaxed), 0, "nothing to flush");
        rec.record(&k, &u, Timestamp::from_millis(1), None, "-");
        flusher.flush_once().await;
        flusher.flush_once().await;
        assert_eq!(failures.load(Ordering::Relaxed), 2);
        flusher.flush_once().await;
        assert_eq!(failures.load(Ordering::Relaxed), 2, "written at last");
        assert!(rec.take().is_empty());
    }

    /// The store down at exit: the counts it did not take are dropped and counted, not kept
    /// for a retry that never comes.
    #[tokio::test]
    async fn the_last_flush_counts_what_the_store_did_not_take() {
        let rec = Arc::new(PendingUsage::new());
        let (k, u) = (KeyId::new("key_a"), UserId::new("usr_a"));
        for ms in [1, 2, 3] {
            rec.record(&k, &u, Timestamp::from_millis(ms), None, "-");
        }
        rec.record(
            &KeyId::new("key_b"),
            &u,
            Timestamp::from_millis(4),
            None,
            "-",
        );
        let mut keys = MockKeyStore::new();
        keys.expect_record_usage()
            .returning(|_| Err(keys_domain::ports::StoreError::Unavailable("down".into())));
        let mut flusher = UsageFlusher::new(rec.clone(), service(keys));
        assert_eq!(
            flusher.flush_last().await,
            DroppedAtExit {
                keys: 2,
                requests: 4
            }
        );
        assert!(rec.take().is_empty());
    }

    #[tokio::test]
    async fn the_flusher_flushes_on_shutdown() {
        let rec = Arc::new(PendingUsage::new());
        rec.record(
            &KeyId::new("key_a"),
            &UserId::new("usr_a"),
            Timestamp::from_millis(1),
            None,
            "-",
        );
        let mut keys = MockKeyStore::new();
        keys.expect_record_usage().times(2).returning(|_| Ok(()));
        let token = CancellationToken::new();
        let task = spawn_usage_flusher(
            UsageFlusher::new(rec.clone(), service(keys)),
            Duration::from_secs(3600),
            token.clone(),
        );
        // The first tick fires at once; give it a moment, then stop.
        tokio::time::sleep(Duration::from_millis(50)).await;
        rec.record(
            &KeyId::new("key_a"),
            &UserId::new("usr_a"),
            Timestamp::from_millis(2),
            None,
            "-",
        );
        token.cancel();
        task.await.unwrap();
        assert!(rec.take().is_empty());
    }
}
