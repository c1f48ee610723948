//! Deliver queued alert emails: claim, send, mark sent only after the server accepted it.

use std::sync::Arc;
use std::time::Duration;

use crate::alert_email::retry_delay;
use crate::ports::{AlertOutbox, Clock, MailError, Mailer, StoreError};
use crate::random::RandomSource;

/// How long a claimed email is reserved for one worker.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// Attempts after which a permanently rejected email (a 5xx reply: no such mailbox, relay
/// denied) is abandoned. Not one: a server can answer 5xx for a moment. Transient failures
/// (timeouts, refused connections, 4xx) are retried for as long as it takes.
pub const PERMANENT_FAILURE_ATTEMPTS: u32 = 3;

/// What one delivery round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryReport {
    pub sent: usize,
    /// Rescheduled with back-off.
    pub failed: usize,
    /// Given up after [`PERMANENT_FAILURE_ATTEMPTS`] permanent rejections.
    pub abandoned: usize,
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
    /// exponential back-off and jitter, except a permanent rejection on the
    /// [`PERMANENT_FAILURE_ATTEMPTS`]th attempt, which abandons the email (it stays in the outbox
    /// with its error, and is never claimed again).
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
                    if matches!(e, MailError::Permanent(_))
                        && attempts >= PERMANENT_FAILURE_ATTEMPTS
                    {
                        self.outbox
                            .mark_abandoned(&queued.id, attempts, self.clock.now(), &e.to_string())
                            .await?;
                        report.abandoned += 1;
                        continue;
                    }
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
