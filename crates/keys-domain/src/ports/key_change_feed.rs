use async_trait::async_trait;

use crate::key_hash::KeyHash;

use super::StoreError;

/// A position in the store's record of key changes (an opaque, increasing number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangePosition(pub i64);

/// What [`KeyChangeFeed::changed_after`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChanges {
    /// The keys changed, oldest change first; a key changed twice may appear twice.
    pub keys: Vec<KeyHash>,
    /// The position of the last change read: where the next read starts.
    pub last: ChangePosition,
}

/// Every change to a key that a cache of key records could hold stale (created, rotated,
/// revoked, …), as the store recorded it, so that every instance can evict what it caches
/// without a broker. The changes are the key's audit events, written in the transactions of
/// the changes themselves, so a change that committed is in the feed.
///
/// The one guarantee a caller builds on: a read that starts after a change committed returns
/// it (or an earlier read did), however the store orders concurrent commits.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeyChangeFeed: Send + Sync {
    /// The position of the newest change committed now; reading after it returns only later
    /// ones.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn head(&self) -> Result<ChangePosition, StoreError>;

    /// Up to `limit` changes after `after`, oldest first. Fewer than `limit`: nothing more had
    /// committed when the read began.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached (or a writer held the feed for too long);
    /// `Internal` for a stored hash of the wrong length.
    async fn changed_after(
        &self,
        after: ChangePosition,
        limit: u32,
    ) -> Result<KeyChanges, StoreError>;
}
