//! The revocation notifier of a single instance (`REDIS_URL` unset): there is nobody to tell,
//! since this instance's caches evict on the store write itself.

use async_trait::async_trait;
use keys_domain::ports::RevocationNotifier;
use keys_domain::{KeyHash, UserId};

/// Announces nothing.
pub struct NoOtherInstances;

#[async_trait]
impl RevocationNotifier for NoOtherInstances {
    async fn key_changed(&self, _: &KeyHash) {}

    async fn signed_out(&self, _: &UserId) {}
}
