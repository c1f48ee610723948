use async_trait::async_trait;

use super::{QueuedWithChange, StoreError};
use crate::email::Email;
use crate::ids::KeyId;
use crate::key_event::KeyEvent;
use crate::key_name::KeyName;
use crate::key_preview::KeyPreview;
use crate::timestamp::Timestamp;

/// A live key with an expiry, as the reminder sweep reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringKey {
    pub id: KeyId,
    pub name: KeyName,
    pub preview: KeyPreview,
    pub owner: Email,
    pub expires_at: Timestamp,
    /// The last reminder sent, in days before the expiry.
    pub reminded: Option<u32>,
}

/// The keys that expire soon, and the record of each reminder sent.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ExpiryReminderStore: Send + Sync {
    /// Keys neither revoked nor expired at `now` whose `expires_at` is before `until`, at most
    /// `limit` of them, soonest first.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn expiring_before(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ExpiringKey>, StoreError>;

    /// Records a reminder in one transaction: the key's last reminder becomes `days` only if it
    /// is still `expected` (so of two instances only one sends it), with `event` and `email`.
    /// Whether this call recorded it.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn record_reminder(
        &self,
        key: &KeyId,
        expected: Option<u32>,
        days: u32,
        event: KeyEvent,
        email: QueuedWithChange,
    ) -> Result<bool, StoreError>;
}
