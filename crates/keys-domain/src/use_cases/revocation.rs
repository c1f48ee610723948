//! The one way a key is revoked, whoever asks: a compare-and-set that writes the reason, the
//! audit events and any email in one transaction, then tells the other instances.

use crate::api_key::ApiKey;
use crate::key_event::{Actor, EventDetail, KeyEvent};
use crate::ports::{
    Clock, KeyStore, QueuedWithChange, RevocationNotifier, StateChange, StoreError,
};
use crate::revocation_reason::RevocationReason;

use super::KeyLookupError;

/// Who revokes, why, and what else is recorded with it.
pub(crate) struct RevokeOrder {
    pub actor: Actor,
    pub reason: RevocationReason,
    /// Events written before `revoked`, in this order (e.g. `leak_reported`).
    pub before: Vec<EventDetail>,
    pub email: Option<QueuedWithChange>,
}

/// What a revocation found.
#[derive(Debug)]
pub(crate) enum Revoked {
    /// This call revoked it (the reason, events and email were written).
    Now(ApiKey),
    /// It was revoked already (or concurrently, by someone else): nothing was written.
    Already(ApiKey),
}

/// Revokes `key` (as last read). A concurrent change makes the compare-and-set fail and we
/// decide again from the fresh state; states only move forward, so a few rounds suffice.
pub(crate) async fn revoke_key(
    store: &dyn KeyStore,
    notifier: &dyn RevocationNotifier,
    clock: &dyn Clock,
    mut key: ApiKey,
    order: RevokeOrder,
) -> Result<Revoked, KeyLookupError> {
    for _ in 0..4 {
        let now = clock.now();
        let to = key.state.revoke(now);
        if to == key.state || !key.state.is_accepted(now) {
            return Ok(Revoked::Already(key));
        }
        let event = |detail| KeyEvent {
            key_id: key.id.clone(),
            actor: order.actor,
            at: now,
            detail,
        };
        let mut events: Vec<KeyEvent> = order.before.iter().cloned().map(event).collect();
        events.push(event(EventDetail::Revoked {
            reason: order.reason,
        }));
        let change = StateChange {
            expected: key.state,
            to,
            reason: Some(order.reason),
            events,
            email: order.email.clone(),
        };
        let stored = store
            .transition(&key.user_id, &key.id, change)
            .await?
            .ok_or(KeyLookupError::NotFound)?;
        if stored.state == to {
            notifier.key_changed(&stored.hash).await;
            return Ok(Revoked::Now(stored));
        }
        key = stored;
    }
    Err(KeyLookupError::Store(StoreError::Internal(
        "revocation kept racing".into(),
    )))
}
