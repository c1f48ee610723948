use async_trait::async_trait;

use super::StoreError;
use crate::hourly_usage::HourCount;
use crate::ids::KeyId;
use crate::timestamp::Timestamp;

/// Hourly request counts per key, written by [`KeyStore::record_usage`](super::KeyStore) in
/// the same transaction as `usage_count`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UsageHistory: Send + Sync {
    /// The key's stored hours starting at or after `from`, oldest first (hours without use
    /// are absent).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn hourly_usage(
        &self,
        key: &KeyId,
        from: Timestamp,
    ) -> Result<Vec<HourCount>, StoreError>;

    /// Deletes hours that started before `before`. How many rows.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn sweep_usage_hours(&self, before: Timestamp) -> Result<u64, StoreError>;
}
