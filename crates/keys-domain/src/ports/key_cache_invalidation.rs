use std::time::Instant;

use crate::key_hash::KeyHash;

/// A cache of key records kept current from outside this instance's own writes: by the
/// store's change feed, and by the Redis revocation bus when there is one.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait KeyCacheInvalidation: Send + Sync {
    /// Forgets one key (it changed, or was created, elsewhere).
    fn evict(&self, key: &KeyHash);

    /// Forgets every key (changes may have been missed).
    fn evict_all(&self);

    /// Every change committed before `read_started` has been evicted: what the cache holds may
    /// be served for a while longer (the cache's own bound) without asking the store.
    fn current_as_of(&self, read_started: Instant);
}
