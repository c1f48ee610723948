//! Flush accumulated key usage: persist counts, feed the 24-hour window, raise alerts.

use std::sync::Arc;

use crate::alert_email::high_usage_alert;
use crate::ids::AlertId;
use crate::key_event::{Actor, EventDetail, KeyEvent};
use crate::ports::{AccountStore, AlertOutbox, Clock, KeyStore, StoreError, UsageWindow, UserRef};
use crate::random::RandomSource;
use crate::usage::{HighUsageThreshold, UsageDelta};

use super::KeySignals;

/// A threshold crossing whose alert could not be put in the outbox (the store failed). The
/// window has counted it already and will not report the crossing again, so the caller keeps it
/// and hands it to [`UsageService::retry_alerts`]: an outage delays the alert, never loses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedAlert {
    pub delta: UsageDelta,
    /// The window count at the crossing.
    pub count: u64,
}

/// What one flush did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlushReport {
    /// Keys whose usage was written.
    pub keys: usize,
    /// Alerts newly put in the outbox.
    pub alerts_enqueued: usize,
    /// Crossings whose alert could not be enqueued (the store failed); the caller logs them.
    pub alert_errors: usize,
    /// Those crossings, to retry with [`UsageService::retry_alerts`].
    pub missed: Vec<MissedAlert>,
    /// Leak signals raised (`new_network`, `browser_use`).
    pub signals_raised: usize,
    /// Signals lost to a store error (the counts were written; the caller logs these).
    pub signal_errors: usize,
}

/// Usage bookkeeping behind every authenticated request.
#[derive(Clone)]
pub struct UsageService {
    pub keys: Arc<dyn KeyStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub window: Arc<dyn UsageWindow>,
    pub outbox: Arc<dyn AlertOutbox>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub threshold: HighUsageThreshold,
    /// The leak signals raised from each flush; `None` with `JT_KEY_SIGNALS=off`.
    pub signals: Option<KeySignals>,
}

impl UsageService {
    /// Writes `batch` to the key store, then adds it to each key's window and enqueues an alert
    /// for every key whose window crossed the threshold.
    ///
    /// # Errors
    /// `Store` when the counts could not be written: nothing else was done and the caller keeps
    /// the batch to retry, so no request is counted twice in the window.
    pub async fn flush(&self, batch: &[UsageDelta]) -> Result<FlushReport, StoreError> {
        if batch.is_empty() {
            return Ok(FlushReport::default());
        }
        // Which networks are new must be asked before the batch writes them.
        let (candidates, lookup_errors) = match &self.signals {
            Some(signals) => signals.before_write(batch).await,
            None => (Vec::new(), 0),
        };
        self.keys.record_usage(batch).await?;
        let mut report = FlushReport {
            keys: batch.len(),
            ..FlushReport::default()
        };
        if let Some(signals) = &self.signals {
            let raised = signals.after_write(batch, candidates).await;
            report.signals_raised = raised.raised;
            report.signal_errors = raised.errors + lookup_errors;
        }
        for delta in batch {
            let count = self
                .window
                .add(&delta.key_id, delta.count, delta.last_used_at)
                .await;
            if !self.threshold.crossed(count) {
                continue;
            }
            match self.enqueue_alert(delta, count.after).await {
                Ok(true) => report.alerts_enqueued += 1,
                Ok(false) => {}
                Err(_) => {
                    report.alert_errors += 1;
                    report.missed.push(MissedAlert {
                        delta: delta.clone(),
                        count: count.after,
                    });
                }
            }
        }
        Ok(report)
    }

    /// Tries again to enqueue alerts a flush could not; returns those that failed again. The
    /// outbox's 24-hour rule still holds, so a retry never sends a second alert.
    pub async fn retry_alerts(&self, missed: Vec<MissedAlert>) -> Vec<MissedAlert> {
        let mut still = Vec::new();
        for m in missed {
            if self.enqueue_alert(&m.delta, m.count).await.is_err() {
                still.push(m);
            }
        }
        still
    }

    async fn enqueue_alert(&self, delta: &UsageDelta, count: u64) -> Result<bool, StoreError> {
        let Some(key) = self.keys.find(&delta.user_id, &delta.key_id).await? else {
            return Ok(false);
        };
        let Some(user) = self
            .accounts
            .find_user(&UserRef::Id(delta.user_id.clone()))
            .await?
        else {
            return Ok(false);
        };
        let email = high_usage_alert(
            user.email,
            &key.name,
            &key.preview,
            count,
            self.threshold.get(),
        );
        let id = AlertId::generate(self.random.as_ref());
        let now = self.clock.now();
        let event = KeyEvent {
            key_id: key.id.clone(),
            actor: Actor::System,
            at: now,
            detail: EventDetail::HighUsageAlert {
                count,
                threshold: self.threshold.get(),
            },
        };
        self.outbox.enqueue(id, &key.id, email, event, now).await
    }
}
