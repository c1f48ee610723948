use async_trait::async_trait;

use crate::ids::KeyId;
use crate::rate_limit::RateDecision;

/// Per-key rate limiting. Infallible by design: a shared limiter whose backend is down falls
/// back to a local one (and says so in logs and `/readyz`) rather than failing requests.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one request for `key` if allowed, and returns the key's state after it.
    async fn check(&self, key: &KeyId) -> RateDecision;
}
