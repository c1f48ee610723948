use async_trait::async_trait;

use crate::ids::UserId;
use crate::key_hash::KeyHash;

/// Tells the other instances that something their caches hold changed: a key (revoked, or
/// expiring by rotation), or a user's dashboard-token cut-off (sign-out). This instance's caches
/// need no telling: they sit in front of the store that made the change and evict on the write
/// itself. Best effort and infallible: the caches' short TTL bounds staleness when a message is
/// lost.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RevocationNotifier: Send + Sync {
    /// Announces that the key with `hash` changed.
    async fn key_changed(&self, hash: &KeyHash);

    /// Announces that `user` signed out: every dashboard token issued until now is refused.
    async fn signed_out(&self, user: &UserId);
}
