use async_trait::async_trait;

use super::StoreError;
use crate::alert_email::OutgoingEmail;
use crate::ids::{AlertId, SignInLinkId, UserId};
use crate::sign_in_link::SignInTokenHash;
use crate::timestamp::Timestamp;

/// A link about to be sent: only the token's hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignInLink {
    pub id: SignInLinkId,
    pub user_id: UserId,
    pub token_hash: SignInTokenHash,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The email that carries a link, queued in the durable outbox with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEmail {
    pub id: AlertId,
    pub email: OutgoingEmail,
}

/// Sign-in links: issued with their email in one write, consumed once.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SignInLinkStore: Send + Sync {
    /// Stores `link` and queues `email` in the outbox (atomically), unless the user already
    /// has `max_in_window` links created after `window_start` (counted under a lock on the
    /// user, so concurrent requests cannot exceed it). `true` when stored.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn issue(
        &self,
        link: NewSignInLink,
        email: LinkEmail,
        window_start: Timestamp,
        max_in_window: u32,
    ) -> Result<bool, StoreError>;

    /// Marks the link with this hash used, if it is unused and expires after `now`, in one
    /// conditional write (of two concurrent calls, one wins), and returns its user.
    /// `None` for an unknown, used or expired link.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn consume(
        &self,
        token_hash: &SignInTokenHash,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError>;

    /// Deletes links created before `created_before`, and the sign-in emails queued with them.
    /// How many links.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn sweep_sign_in_links(&self, created_before: Timestamp) -> Result<u64, StoreError>;
}
