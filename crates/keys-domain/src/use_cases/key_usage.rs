//! A key's hourly usage for the dashboard chart.

use std::sync::Arc;

use super::KeyLookupError;
use crate::hourly_usage::{HOURS_KEPT, HourCount, chart, first_hour_shown};
use crate::ids::{KeyId, UserId};
use crate::ports::{Clock, KeyStore, StoreError, UsageHistory};

/// Reads (and sweeps) hourly usage.
#[derive(Clone)]
pub struct KeyUsage {
    pub keys: Arc<dyn KeyStore>,
    pub history: Arc<dyn UsageHistory>,
    pub clock: Arc<dyn Clock>,
}

impl KeyUsage {
    /// The last 24 whole hours and the current one, oldest first, of one of `user`'s keys.
    ///
    /// # Errors
    /// `NotFound` (no such key, or another user's), `Store`.
    pub async fn hours(
        &self,
        user: &UserId,
        key: &KeyId,
    ) -> Result<Vec<HourCount>, KeyLookupError> {
        if self.keys.find(user, key).await?.is_none() {
            return Err(KeyLookupError::NotFound);
        }
        let now = self.clock.now();
        let stored = self
            .history
            .hourly_usage(key, first_hour_shown(now))
            .await?;
        Ok(chart(now, &stored))
    }

    /// Deletes hours older than [`HOURS_KEPT`]. How many rows.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        self.history
            .sweep_usage_hours(self.clock.now().minus(HOURS_KEPT))
            .await
    }
}
