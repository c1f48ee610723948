use std::time::Instant;

use crate::ids::UserId;
use crate::key_hash::KeyHash;

/// This instance's caches of key records and of dashboard-token cut-offs, as their one owner
/// sees them: every eviction goes through here, whatever its source (a write through this
/// instance, the store's change feed, another instance's announcement on the Redis bus).
/// Infallible: an eviction only forgets, and a forgotten entry is read again from the store.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait CacheInvalidation: Send + Sync {
    /// Forgets one key (it changed, or was created, here or elsewhere).
    fn key_changed(&self, key: &KeyHash);

    /// Forgets every key (key changes may have been missed, e.g. a gap in the change feed).
    fn keys_may_have_changed(&self);

    /// Every key change committed before `read_started` has been evicted: what the key cache
    /// holds may be served for a while longer (the cache's own bound) without asking the store.
    fn keys_current_as_of(&self, read_started: Instant);

    /// Forgets one user's cut-off (they signed out, here or elsewhere).
    fn signed_out(&self, user: &UserId);

    /// Forgets every key and every cut-off (announcements may have been missed, e.g. while the
    /// Redis bus reconnected).
    fn announcements_may_have_been_missed(&self);
}
