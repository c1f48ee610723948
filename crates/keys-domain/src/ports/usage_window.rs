use async_trait::async_trait;

use crate::ids::KeyId;
use crate::timestamp::Timestamp;
use crate::usage::WindowCount;

/// The trailing 24-hour usage window per key (shared across instances when Redis is used).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UsageWindow: Send + Sync {
    /// Adds `count` requests at `now` to `key`'s window and returns its count before and after,
    /// atomically, so that exactly one caller sees a given threshold crossed. Infallible: a shared
    /// window that is unreachable counts locally meanwhile.
    async fn add(&self, key: &KeyId, count: u64, now: Timestamp) -> WindowCount;
}
