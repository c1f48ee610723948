use async_trait::async_trait;

use super::StoreError;
use crate::ids::UserId;
use crate::timestamp::Timestamp;

/// Per-user cut-off of dashboard tokens: a token issued at or before it is refused. Sign-out
/// moves it to "now", so every token handed out earlier stops working on every instance.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TokenCutoffStore: Send + Sync {
    /// The user's cut-off; `None` when the user never signed out (or does not exist).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn tokens_cutoff(&self, user: &UserId) -> Result<Option<Timestamp>, StoreError>;

    /// Moves the user's cut-off to `at`, never backwards (a later sign-out that raced an
    /// earlier one keeps the later instant). `false` when no such user exists.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn raise_tokens_cutoff(&self, user: &UserId, at: Timestamp) -> Result<bool, StoreError>;
}
