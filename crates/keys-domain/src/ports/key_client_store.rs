use std::collections::HashMap;

use async_trait::async_trait;

use super::{QueuedWithChange, StoreError};
use crate::ids::KeyId;
use crate::key_client::{ClientNetwork, ClientUse};
use crate::key_event::KeyEvent;
use crate::page::{ListError, Page, PageRequest};
use crate::timestamp::Timestamp;

/// A stored client with its position in the key's list (an opaque, per-key position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedClient {
    pub position: i64,
    pub client: ClientUse,
}

/// The clients the usage flush writes (with `usage_count`, see [`super::KeyStore::record_usage`]),
/// read back, swept, and the leak signals raised from them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeyClientStore: Send + Sync {
    /// The networks each of `keys` was seen from at or after `since`, in one call for a whole
    /// flush; a key seen from none is absent.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn networks_seen(
        &self,
        keys: &[KeyId],
        since: Timestamp,
    ) -> Result<HashMap<KeyId, Vec<ClientNetwork>>, StoreError>;

    /// One page of the key's clients, most recently seen first, after the client at
    /// `page.after` (a position from an earlier page).
    ///
    /// # Errors
    /// `UnknownCursor` when `after` is not one of this key's clients, `Store(Unavailable)`.
    async fn clients(
        &self,
        key: &KeyId,
        page: &PageRequest<i64>,
    ) -> Result<Page<ListedClient>, ListError>;

    /// Deletes the clients last seen before `before`; how many.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn sweep_clients(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Raises `signal` for `key`: unless it was raised within the last 24 h, records it at `now`
    /// and writes `event` and queues `email` in the same transaction (so of two instances one
    /// raises it). Whether this call raised it.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn raise_signal(
        &self,
        key: &KeyId,
        signal: &str,
        event: KeyEvent,
        email: QueuedWithChange,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}
