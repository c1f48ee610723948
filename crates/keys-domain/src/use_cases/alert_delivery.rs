//! Deliver queued alert emails: claim, send, mark sent only after the server accepted it.

use std::sync::Arc;
use std::time::Duration;

use crate::alert_email::retry_delay;
use crate::ports::{AlertOutbox, Clock, Mailer, StoreError};
use crate::random::RandomSource;

/// How long a claimed email is reserved for one worker.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// What one delivery round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryReport {
    pub sent: usize,
    pub failed: usize,
}

/// The outbox worker's logic.
#[derive(Clone)]
pub struct AlertDelivery {
    pub outbox: Arc<dyn AlertOutbox>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
}

impl AlertDelivery {
    /// Claims up to `limit` due emails and tries each once. A failure is rescheduled with
    /// exponential back-off and jitter; nothing is dropped.
    ///
    /// # Errors
    /// `Store` when the outbox cannot be read or updated.
    pub async fn run_once(&self, limit: u32) -> Result<DeliveryReport, StoreError> {
        let now = self.clock.now();
        let due = self
            .outbox
            .claim_due(now, now.plus(CLAIM_LEASE), limit)
            .await?;
        let mut report = DeliveryReport::default();
        for queued in due {
            match self.mailer.send(&queued.email).await {
                Ok(()) => {
                    // The one window where a crash resends: after the server accepted the email
                    // and before this write lands. Documented in docs/alerts.md.
                    self.outbox.mark_sent(&queued.id, self.clock.now()).await?;
                    report.sent += 1;
                }
                Err(e) => {
                    let attempts = queued.attempts.saturating_add(1);
                    let retry_at = self
                        .clock
                        .now()
                        .plus(retry_delay(attempts - 1, self.jitter()));
                    self.outbox
                        .mark_failed(&queued.id, attempts, retry_at, &e.to_string())
                        .await?;
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    fn jitter(&self) -> f64 {
        let mut b = [0u8; 2];
        self.random.fill_bytes(&mut b);
        f64::from(u16::from_le_bytes(b)) / 65536.0
    }
}
