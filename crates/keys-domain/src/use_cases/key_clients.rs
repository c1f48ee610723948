//! Where a key is used: its clients, for its owner.

use std::sync::Arc;

use crate::ids::{KeyId, UserId};
use crate::page::{Page, PageRequest};
use crate::ports::{KeyClientStore, KeyStore, ListedClient};

use super::KeyEventsError;

/// Reads keys' clients.
#[derive(Clone)]
pub struct KeyClients {
    pub keys: Arc<dyn KeyStore>,
    pub clients: Arc<dyn KeyClientStore>,
}

impl KeyClients {
    /// One page of the user's key's clients, most recently seen first.
    ///
    /// # Errors
    /// `NotFound` (also for another user's key), `List(UnknownCursor | Store(..))`.
    pub async fn list(
        &self,
        user: &UserId,
        id: &KeyId,
        page: &PageRequest<i64>,
    ) -> Result<Page<ListedClient>, KeyEventsError> {
        self.keys
            .find(user, id)
            .await?
            .ok_or(KeyEventsError::NotFound)?;
        Ok(self.clients.clients(id, page).await?)
    }
}
