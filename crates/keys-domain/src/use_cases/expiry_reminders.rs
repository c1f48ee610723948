//! Reminding owners before their keys expire: each key's 7-day and 1-day reminders, each once,
//! each an email through the durable outbox with an `expiry_reminder` event.

use std::sync::Arc;
use std::time::Duration;

use crate::expiry_reminder::{REMINDER_DAYS, expiry_reminder_email, reminder_due};
use crate::ids::AlertId;
use crate::key_event::{Actor, EventDetail, KeyEvent};
use crate::ports::{Clock, ExpiryReminderStore, QueuedWithChange, StoreError};
use crate::random::RandomSource;

/// Most keys looked at in one run; the rest wait for the next (a run a minute).
const BATCH: u32 = 500;

/// The reminder sweep.
#[derive(Clone)]
pub struct ExpiryReminders {
    pub store: Arc<dyn ExpiryReminderStore>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
}

impl ExpiryReminders {
    /// Queues every reminder due now; how many this call queued (another instance may have
    /// queued some of the same keys' reminders first: those are not sent twice).
    ///
    /// # Errors
    /// `Unavailable`: the next run tries again.
    pub async fn run(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let widest = REMINDER_DAYS.iter().max().copied().unwrap_or(7);
        let until = now.plus(Duration::from_secs(u64::from(widest) * 86_400));
        let mut queued = 0;
        for key in self.store.expiring_before(now, until, BATCH).await? {
            let Some(days) = reminder_due(key.expires_at, key.reminded, now) else {
                continue;
            };
            let event = KeyEvent {
                key_id: key.id.clone(),
                actor: Actor::System,
                at: now,
                detail: EventDetail::ExpiryReminder {
                    expires_at: key.expires_at,
                    days_before: days,
                },
            };
            let email = QueuedWithChange {
                id: AlertId::generate(self.random.as_ref()),
                email: expiry_reminder_email(
                    key.owner.clone(),
                    &key.name,
                    &key.preview,
                    key.expires_at,
                    days,
                ),
            };
            if self
                .store
                .record_reminder(&key.id, key.reminded, days, event, email)
                .await?
            {
                queued += 1;
            }
        }
        Ok(queued)
    }
}
