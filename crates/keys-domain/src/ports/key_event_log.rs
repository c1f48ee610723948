use async_trait::async_trait;

use crate::event_cursor::EventCursor;
use crate::ids::KeyId;
use crate::key_event::PositionedEvent;
use crate::page::{ListError, Page, PageRequest};

/// Reads a key's audit trail. Events are written by the [`KeyStore`](super::KeyStore) and
/// [`AlertOutbox`](super::AlertOutbox) in the transactions of the changes they record.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeyEventLog: Send + Sync {
    /// One page of the key's events, newest first, after `page.after` (older ones). Reads one
    /// page from an index.
    ///
    /// # Errors
    /// `Store(Unavailable)`. An unknown cursor simply reads from its position.
    async fn events(
        &self,
        key: &KeyId,
        page: &PageRequest<EventCursor>,
    ) -> Result<Page<PositionedEvent>, ListError>;
}
