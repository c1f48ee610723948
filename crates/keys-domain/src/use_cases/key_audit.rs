//! A key's audit trail for its owner.

use std::sync::Arc;

use crate::event_cursor::EventCursor;
use crate::ids::{KeyId, UserId};
use crate::key_event::{Actor, EventDetail, KeyEvent, PositionedEvent};
use crate::key_state::KeyState;
use crate::page::{ListError, Page, PageRequest};
use crate::ports::{Clock, KeyEventLog, KeyStore, StoreError};
use crate::revocation_reason::RevocationReason;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyEventsError {
    /// Unknown key, or another user's.
    #[error("no such key")]
    NotFound,
    #[error(transparent)]
    List(#[from] ListError),
}

impl From<StoreError> for KeyEventsError {
    fn from(e: StoreError) -> Self {
        Self::List(ListError::Store(e))
    }
}

/// Reads audit trails.
#[derive(Clone)]
pub struct KeyAuditTrail {
    pub keys: Arc<dyn KeyStore>,
    pub log: Arc<dyn KeyEventLog>,
    pub clock: Arc<dyn Clock>,
}

impl KeyAuditTrail {
    /// One page of the user's key's events, newest first.
    ///
    /// A key whose rotation grace period has ended is revoked without any write (its state
    /// reads as revoked from then on); until a later write settles it, its `revoked` event is
    /// derived here, at `revokes_at` by `system`, at the top of the trail.
    ///
    /// # Errors
    /// `NotFound` (also for another user's key), `List(Store(..))`.
    pub async fn events(
        &self,
        user: &UserId,
        id: &KeyId,
        page: &PageRequest<EventCursor>,
    ) -> Result<Page<PositionedEvent>, KeyEventsError> {
        let key = self
            .keys
            .find(user, id)
            .await?
            .ok_or(KeyEventsError::NotFound)?;
        let stored = self.log.events(id, page).await?;
        let ended = match key.state {
            KeyState::Expiring { revokes_at } if revokes_at <= self.clock.now() => Some(revokes_at),
            _ => None,
        };
        let (Some(revokes_at), None) = (ended, &page.after) else {
            return Ok(stored);
        };
        // Positioned just above the newest stored event, so the page after it starts there.
        let top = stored
            .items
            .first()
            .map_or(EventCursor::NEWEST, |e| e.cursor.above());
        let derived = PositionedEvent {
            cursor: top,
            event: KeyEvent {
                key_id: key.id,
                actor: Actor::System,
                at: revokes_at,
                detail: EventDetail::Revoked {
                    reason: RevocationReason::Rotation,
                },
            },
        };
        let mut items = Vec::with_capacity(stored.items.len() + 1);
        items.push(derived);
        items.extend(stored.items);
        let has_more = stored.has_more || items.len() > page.limit.get();
        items.truncate(page.limit.get());
        Ok(Page { items, has_more })
    }
}
