//! The one owner of this instance's in-process caches: the key records ([`KeyCache`]) and the
//! dashboard-token cut-offs ([`CutoffCache`]). Every eviction, whatever its source, goes
//! through its [`CacheInvalidation`] port: the caching stores' own writes, the change feed's
//! watcher and the Redis bus's listener are only connected to it.

use std::sync::Arc;
use std::time::Instant;

use keys_domain::ports::CacheInvalidation;
use keys_domain::{KeyHash, UserId};

use crate::cutoff_cache::CutoffCache;
use crate::key_cache::KeyCache;

pub struct Caches {
    keys: KeyCache,
    cutoffs: CutoffCache,
}

impl Caches {
    #[must_use]
    pub fn new(keys: KeyCache, cutoffs: CutoffCache) -> Arc<Self> {
        Arc::new(Self { keys, cutoffs })
    }

    pub(crate) fn keys(&self) -> &KeyCache {
        &self.keys
    }

    pub(crate) fn cutoffs(&self) -> &CutoffCache {
        &self.cutoffs
    }
}

impl CacheInvalidation for Caches {
    fn key_changed(&self, key: &KeyHash) {
        self.keys.evict(key);
    }

    fn keys_may_have_changed(&self) {
        self.keys.evict_all();
    }

    fn keys_current_as_of(&self, read_started: Instant) {
        self.keys.renew_trust(read_started);
    }

    fn signed_out(&self, user: &UserId) {
        self.cutoffs.evict(user);
    }

    fn announcements_may_have_been_missed(&self) {
        self.keys.evict_all();
        self.cutoffs.evict_all();
    }
}
