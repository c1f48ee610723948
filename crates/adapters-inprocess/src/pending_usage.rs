//! Key usage is counted in memory on the hot path and written in batches.
//!
//! Each authenticated request adds 1 to its key's pending count (a sharded map, no I/O). A
//! background task hands the pending counts to [`UsageService::flush`] every
//! `usage_flush_interval` (250 ms by default) and once more on graceful shutdown. When the store
//! cannot take a batch, the batch is merged back and retried next round, so an outage delays
//! counts but loses none. A crash (SIGKILL, power loss) loses what was pending: at most one
//! flush interval of counts and `last_used_at` updates.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use keys_domain::usage::UsageDelta;
use keys_domain::use_cases::{MissedAlert, UsageService};
use keys_domain::{KeyId, Timestamp, UserId};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
struct Pending {
    user_id: UserId,
    count: u64,
    last_used_at: Timestamp,
}

/// The in-memory accumulator.
#[derive(Default)]
pub struct UsageRecorder {
    /// Keyed by ids of authenticated keys only, so a fast seeded hasher is safe here.
    pending: DashMap<KeyId, Pending, foldhash::fast::RandomState>,
    /// Threshold crossings whose alert is not in the outbox yet.
    missed: std::sync::Mutex<Vec<MissedAlert>>,
}

/// More missed alerts than this means the store has been down for long; the oldest are dropped
/// (and logged) rather than growing without bound.
const MAX_MISSED_ALERTS: usize = 10_000;

impl UsageRecorder {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request by `key` at `at`. Allocates only for a key's first request per round.
    pub fn record(&self, key: &KeyId, user: &UserId, at: Timestamp) {
        if let Some(mut p) = self.pending.get_mut(key) {
            p.count = p.count.saturating_add(1);
            p.last_used_at = p.last_used_at.max(at);
            return;
        }
        self.add(key.clone(), user.clone(), 1, at);
    }

    fn lock_missed(&self) -> std::sync::MutexGuard<'_, Vec<MissedAlert>> {
        self.missed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn keep_missed(&self, more: Vec<MissedAlert>) {
        if more.is_empty() {
            return;
        }
        let mut missed = self.lock_missed();
        missed.extend(more);
        if missed.len() > MAX_MISSED_ALERTS {
            let dropped = missed.len() - MAX_MISSED_ALERTS;
            missed.drain(..dropped);
            tracing::error!(
                dropped,
                "high-usage alerts dropped: the outbox has been unavailable too long"
            );
        }
    }

    fn add(&self, key: KeyId, user_id: UserId, count: u64, at: Timestamp) {
        self.pending
            .entry(key)
            .and_modify(|p| {
                p.count = p.count.saturating_add(count);
                p.last_used_at = p.last_used_at.max(at);
            })
            .or_insert(Pending {
                user_id,
                count,
                last_used_at: at,
            });
    }

    /// Takes everything pending. Requests counted meanwhile start a fresh entry and wait for
    /// the next round.
    #[must_use]
    pub fn take(&self) -> Vec<UsageDelta> {
        let keys: Vec<KeyId> = self.pending.iter().map(|e| e.key().clone()).collect();
        keys.into_iter()
            .filter_map(|k| self.pending.remove(&k))
            .map(|(key_id, p)| UsageDelta {
                key_id,
                user_id: p.user_id,
                count: p.count,
                last_used_at: p.last_used_at,
            })
            .collect()
    }

    /// Puts back a batch the store did not take.
    pub fn restore(&self, batch: Vec<UsageDelta>) {
        for d in batch {
            self.add(d.key_id, d.user_id, d.count, d.last_used_at);
        }
    }

    /// Writes what is pending once; on failure the batch is kept for the next round. Alerts
    /// the outbox could not take are retried every round until it does.
    pub async fn flush_once(&self, usage: &UsageService) {
        let missed = std::mem::take(&mut *self.lock_missed());
        if !missed.is_empty() {
            let still = usage.retry_alerts(missed).await;
            self.keep_missed(still);
        }
        let batch = self.take();
        if batch.is_empty() {
            return;
        }
        match usage.flush(&batch).await {
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
                tracing::warn!(error = %e, keys = batch.len(), "usage flush failed; will retry");
                self.restore(batch);
            }
        }
    }
}

/// Flushes every `interval` until `shutdown`, then once more.
pub fn spawn_usage_flusher(
    recorder: Arc<UsageRecorder>,
    usage: UsageService,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => recorder.flush_once(&usage).await,
            }
        }
        recorder.flush_once(&usage).await;
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use keys_domain::ports::{
        MockAccountStore, MockAlertOutbox, MockKeyStore, MockUsageWindow, SystemClock,
    };
    use keys_domain::random::OsRandom;
    use keys_domain::usage::{HighUsageThreshold, WindowCount};

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
        }
    }

    #[tokio::test]
    async fn counts_accumulate_and_a_failed_flush_is_retried_with_later_counts_merged() {
        let rec = UsageRecorder::new();
        let (k, u) = (KeyId::new("key_a"), UserId::new("usr_a"));
        for ms in [5, 9, 7] {
            rec.record(&k, &u, Timestamp::from_millis(ms));
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
        let svc = service(keys);
        rec.flush_once(&svc).await; // fails: kept
        rec.record(&k, &u, Timestamp::from_millis(3));
        rec.flush_once(&svc).await;
        let written = written.lock().unwrap();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].count, 4);
        assert_eq!(written[0].last_used_at, Timestamp::from_millis(9));
        assert!(rec.take().is_empty());
    }

    #[tokio::test]
    async fn the_flusher_flushes_on_shutdown() {
        let rec = Arc::new(UsageRecorder::new());
        rec.record(
            &KeyId::new("key_a"),
            &UserId::new("usr_a"),
            Timestamp::from_millis(1),
        );
        let mut keys = MockKeyStore::new();
        keys.expect_record_usage().times(2).returning(|_| Ok(()));
        let token = CancellationToken::new();
        let task = spawn_usage_flusher(
            rec.clone(),
            service(keys),
            Duration::from_secs(3600),
            token.clone(),
        );
        // The first tick fires at once; give it a moment, then stop.
        tokio::time::sleep(Duration::from_millis(50)).await;
        rec.record(
            &KeyId::new("key_a"),
            &UserId::new("usr_a"),
            Timestamp::from_millis(2),
        );
        token.cancel();
        task.await.unwrap();
        assert!(rec.take().is_empty());
    }
}
