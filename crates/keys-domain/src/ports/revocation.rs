use async_trait::async_trait;

use crate::key_hash::KeyHash;

/// Tells every instance's key cache that a key changed (revoked, or expiring by rotation).
/// Best effort and infallible: the caches' short TTL bounds staleness when a message is lost.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RevocationNotifier: Send + Sync {
    /// Evicts `hash` here at once and announces it to other instances.
    async fn key_changed(&self, hash: &KeyHash);
}
