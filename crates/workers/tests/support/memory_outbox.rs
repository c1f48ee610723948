//! An in-memory `AlertOutbox` with the real one's claim/lease semantics.

use std::sync::Mutex;

use async_trait::async_trait;
use keys_domain::alert_email::OutgoingEmail;
use keys_domain::ports::{AlertOutbox, OutboxBacklog, QueuedEmail, StoreError};
use keys_domain::{AlertId, KeyId, Timestamp};

#[derive(Debug, Clone)]
pub struct Row {
    pub queued: QueuedEmail,
    pub due_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub abandoned_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

#[derive(Default)]
pub struct MemoryOutbox {
    rows: Mutex<Vec<Row>>,
}

impl MemoryOutbox {
    pub fn rows(&self) -> Vec<Row> {
        self.rows.lock().unwrap().clone()
    }
}

#[async_trait]
impl AlertOutbox for MemoryOutbox {
    async fn backlog(&self) -> Result<OutboxBacklog, StoreError> {
        let rows = self.rows.lock().unwrap();
        let waiting = rows
            .iter()
            .filter(|r| r.sent_at.is_none() && r.abandoned_at.is_none());
        Ok(OutboxBacklog {
            pending: waiting.clone().count() as u64,
            oldest: waiting.map(|r| r.due_at).min(),
        })
    }

    async fn enqueue(
        &self,
        id: AlertId,
        key: &KeyId,
        email: OutgoingEmail,
        _event: keys_domain::KeyEvent,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.rows.lock().unwrap().push(Row {
            queued: QueuedEmail {
                id,
                key_id: Some(key.clone()),
                email,
                attempts: 0,
            },
            due_at: now,
            sent_at: None,
            abandoned_at: None,
            last_error: None,
        });
        Ok(true)
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<QueuedEmail>, StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let mut claimed = Vec::new();
        for row in rows.iter_mut() {
            if claimed.len() >= limit as usize {
                break;
            }
            if row.sent_at.is_none() && row.abandoned_at.is_none() && row.due_at <= now {
                row.due_at = lease_until;
                claimed.push(row.queued.clone());
            }
        }
        Ok(claimed)
    }

    async fn mark_sent(&self, id: &AlertId, now: Timestamp) -> Result<(), StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let row = rows.iter_mut().find(|r| &r.queued.id == id).unwrap();
        assert!(row.sent_at.is_none(), "marked sent twice");
        row.sent_at = Some(now);
        Ok(())
    }

    async fn mark_failed(
        &self,
        id: &AlertId,
        attempts: u32,
        retry_at: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let row = rows.iter_mut().find(|r| &r.queued.id == id).unwrap();
        row.queued.attempts = attempts;
        row.due_at = retry_at;
        row.last_error = Some(error.to_owned());
        Ok(())
    }

    async fn mark_abandoned(
        &self,
        id: &AlertId,
        attempts: u32,
        now: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let row = rows.iter_mut().find(|r| &r.queued.id == id).unwrap();
        row.queued.attempts = attempts;
        row.abandoned_at = Some(now);
        row.last_error = Some(error.to_owned());
        Ok(())
    }
}
