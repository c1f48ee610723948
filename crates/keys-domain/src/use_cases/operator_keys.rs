//! What an operator does to keys from the command line, without the owner's dashboard token.

use std::sync::Arc;

use crate::api_key::ApiKey;
use crate::ids::UserId;
use crate::key_event::Actor;
use crate::key_secret::{ApiKeySecret, MalformedKey};
use crate::page::{ListError, PageLimit, PageRequest};
use crate::ports::{Clock, KeyListQuery, KeyStore, RevocationNotifier, StoreError};
use crate::revocation_reason::RevocationReason;

use super::KeyLookupError;
use super::revocation::{RevokeOrder, Revoked, revoke_key};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorRevokeError {
    #[error("that is not an API key: {0}")]
    Malformed(MalformedKey),
    #[error("no key matches")]
    UnknownKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Operator key commands.
#[derive(Clone)]
pub struct OperatorKeys {
    pub keys: Arc<dyn KeyStore>,
    pub notifier: Arc<dyn RevocationNotifier>,
    pub clock: Arc<dyn Clock>,
}

impl OperatorKeys {
    /// Revokes the key whose full text is `presented`, recording the operator as the actor.
    /// Idempotent: a revoked key is returned unchanged. `true` when this call revoked it.
    ///
    /// # Errors
    /// `Malformed`, `UnknownKey`, `Store`.
    pub async fn revoke(
        &self,
        presented: &str,
        reason: RevocationReason,
    ) -> Result<(ApiKey, bool), OperatorRevokeError> {
        let secret = ApiKeySecret::parse(presented).map_err(OperatorRevokeError::Malformed)?;
        let hash = secret.hash();
        let key = self
            .keys
            .find_by_hash(&hash)
            .await?
            .filter(|k| k.hash.ct_eq(&hash))
            .ok_or(OperatorRevokeError::UnknownKey)?;
        let order = RevokeOrder {
            actor: Actor::Operator,
            reason,
            before: Vec::new(),
            email: None,
        };
        let revoked = revoke_key(
            self.keys.as_ref(),
            self.notifier.as_ref(),
            self.clock.as_ref(),
            key,
            order,
        )
        .await
        .map_err(|e| match e {
            KeyLookupError::NotFound => OperatorRevokeError::UnknownKey,
            KeyLookupError::Store(e) => OperatorRevokeError::Store(e),
        })?;
        Ok(match revoked {
            Revoked::Now(key) => (key, true),
            Revoked::Already(key) => (key, false),
        })
    }

    /// Every key of the user, newest first (read page by page).
    ///
    /// # Errors
    /// `Store`.
    pub async fn list(&self, user: &UserId) -> Result<Vec<ApiKey>, StoreError> {
        let mut all = Vec::new();
        let mut query = KeyListQuery {
            page: PageRequest::first(PageLimit::MAX),
            status: None,
        };
        loop {
            let page = match self.keys.list(user, &query, self.clock.now()).await {
                Ok(page) => page,
                Err(ListError::Store(e)) => return Err(e),
                // A key we just listed cannot stop being the user's.
                Err(ListError::UnknownCursor) => {
                    return Err(StoreError::Internal("the key list changed".into()));
                }
            };
            let last = page.items.last().map(|k| k.id.clone());
            all.extend(page.items);
            match last {
                Some(after) if page.has_more => query.page.after = Some(after),
                _ => return Ok(all),
            }
        }
    }
}
