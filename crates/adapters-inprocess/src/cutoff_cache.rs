//! A bounded in-process cache of users' dashboard-token cut-offs in front of the cut-off store,
//! so that a dashboard request costs no database round trip for its sign-out check. Its
//! evictions all come through [`Caches`], the owner of this instance's caches.
//!
//! - A read cut-off (or "never signed out") is trusted for `token_cutoff_ttl` (500 ms): the
//!   change feed carries keys only, so that TTL is how long a sign-out on another instance can
//!   take to be honoured here without Redis; with Redis, the bus's announcement evicts it at
//!   once.
//! - A sign-out through [`CachedTokenCutoffStore`] evicts its user before it returns, so the
//!   instance that answered the sign-out never accepts an earlier token again.
//! - Store errors are never cached.
//! - A read that started before an eviction must not re-insert what it read
//!   ([`EvictionGeneration`](crate::eviction_generation::EvictionGeneration), as in the key
//!   cache).

use std::time::Duration;

use keys_domain::{Timestamp, UserId};

use crate::eviction_generation::EvictionGeneration;

/// The cut-offs of recently seen users; held by [`crate::Caches`].
pub struct CutoffCache {
    pub(crate) entries: moka::sync::Cache<UserId, Option<Timestamp>, foldhash::fast::RandomState>,
    generation: EvictionGeneration,
}

impl CutoffCache {
    #[must_use]
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build_with_hasher(foldhash::fast::RandomState::default()),
            generation: EvictionGeneration::default(),
        }
    }

    /// Forgets one user's cut-off now (signed out here or elsewhere).
    pub(crate) fn evict(&self, user: &UserId) {
        self.generation.bump();
        self.entries.invalidate(user);
    }

    /// Forgets every cut-off (after missed announcements, e.g. a Redis reconnect).
    pub(crate) fn evict_all(&self) {
        self.generation.bump();
        self.entries.invalidate_all();
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.current()
    }

    /// Inserts what a read that began at `generation` found, unless an eviction happened since.
    pub(crate) fn insert_if_current(
        &self,
        user: &UserId,
        cutoff: Option<Timestamp>,
        generation: u64,
    ) {
        self.generation.insert_if_current(
            generation,
            || self.entries.insert(user.clone(), cutoff),
            || self.entries.invalidate(user),
        );
    }
}
