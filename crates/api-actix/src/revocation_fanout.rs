//! One revocation, several listeners: this instance's key cache, and the Redis bus that tells
//! the other instances (when `REDIS_URL` is set).

use std::sync::Arc;

use async_trait::async_trait;
use keys_domain::KeyHash;
use keys_domain::ports::RevocationNotifier;

/// Calls every notifier in order (the local cache first, so this instance never lags).
pub struct FanOutNotifier {
    targets: Vec<Arc<dyn RevocationNotifier>>,
}

impl FanOutNotifier {
    #[must_use]
    pub fn new(targets: Vec<Arc<dyn RevocationNotifier>>) -> Self {
        Self { targets }
    }
}

#[async_trait]
impl RevocationNotifier for FanOutNotifier {
    async fn key_changed(&self, hash: &KeyHash) {
        for t in &self.targets {
            t.key_changed(hash).await;
        }
    }
}
