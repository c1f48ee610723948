use async_trait::async_trait;

use crate::key_hash::KeyHash;

/// Tells the other instances that a key changed (revoked, or expiring by rotation), so that
/// their key caches forget it. This instance's cache needs no telling: it sits in front of the
/// [`KeyStore`](super::KeyStore) that made the change and evicts on the write itself.
/// Best effort and infallible: the caches' short TTL bounds staleness when a message is lost.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RevocationNotifier: Send + Sync {
    /// Announces that the key with `hash` changed.
    async fn key_changed(&self, hash: &KeyHash);
}
