use async_trait::async_trait;

use super::StoreError;
use crate::alert_email::OutgoingEmail;
use crate::ids::{AlertId, KeyId};
use crate::key_event::KeyEvent;
use crate::timestamp::Timestamp;

/// An email waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEmail {
    pub id: AlertId,
    /// The key a high-usage alert is about; `None` for a sign-in email.
    pub key_id: Option<KeyId>,
    pub email: OutgoingEmail,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// Emails waiting to be sent (neither sent nor abandoned), for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxBacklog {
    pub pending: u64,
    /// When the oldest of them was enqueued.
    pub oldest: Option<Timestamp>,
}

/// The durable email outbox. An alert is stored before anything is sent, so an SMTP outage
/// delays it and loses nothing.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AlertOutbox: Send + Sync {
    /// Stores `email` for `key` unless an alert for that key was enqueued within the last 24 h
    /// (checked and recorded atomically, so concurrent instances enqueue once). `true` when stored;
    /// then `event` (the key's `high_usage_alert`) is written in the same transaction.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn enqueue(
        &self,
        id: AlertId,
        key: &KeyId,
        email: OutgoingEmail,
        event: KeyEvent,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Claims up to `limit` unsent emails due at `now`, leasing each until `lease_until` so that
    /// no other worker takes it meanwhile (a conditional update per row).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<QueuedEmail>, StoreError>;

    /// Marks an email sent (after the SMTP server accepted it).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn mark_sent(&self, id: &AlertId, now: Timestamp) -> Result<(), StoreError>;

    /// Records a failed attempt and when to try again.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn mark_failed(
        &self,
        id: &AlertId,
        attempts: u32,
        retry_at: Timestamp,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Gives up on an email: records the last attempt and its error and marks it abandoned at
    /// `now`, after which [`AlertOutbox::claim_due`] never returns it.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn mark_abandoned(
        &self,
        id: &AlertId,
        attempts: u32,
        now: Timestamp,
        error: &str,
    ) -> Result<(), StoreError>;

    /// How many emails wait to be sent, and since when.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn backlog(&self) -> Result<OutboxBacklog, StoreError>;
}
