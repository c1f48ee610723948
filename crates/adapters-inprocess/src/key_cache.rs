//! A bounded in-process cache of key records in front of the key store, so that an accepted key
//! costs no database round trip. Its evictions all come through [`Caches`], the owner of this
//! instance's caches.
//!
//! - Another instance's change (a revocation, a rotation, a new key, changed controls) reaches
//!   the cache through the store's change feed, read every `key_feed_interval` (250 ms) by the
//!   `workers` crate, and through the Redis bus when there is one. While the feed is followed,
//!   an accepted key's record is served only for a bound (3 read intervals, 750 ms) after the
//!   start of the last read of the feed that succeeded, so a feed that cannot be read never
//!   makes the cache serve a revoked key for longer; otherwise for `key_cache_ttl` (60 s), which
//!   also caps an entry's age. The record's state is still checked against the clock on every
//!   request, so an `expiring` key stops at its `revokes_at` exactly.
//! - "No such key" is remembered for `unknown_key_ttl` (≤ 1 s) to blunt floods of random keys,
//!   in a cache of its own: made-up keys are free to mint (the checksum is public), and in a
//!   shared cache they would push known keys out.
//! - Store errors are never cached.
//! - Every write through [`CachedKeyStore`] evicts the keys it changed (a new key's remembered
//!   "no such key", a revoked, rotated or updated key) before it returns.
//! - A lookup that started before an eviction must not re-insert what it read: a generation
//!   counter, bumped by every eviction, is compared after the insert, and the entry is dropped if
//!   it moved.

use std::time::{Duration, Instant};

use keys_domain::{ApiKey, KeyHash};

use crate::eviction_generation::EvictionGeneration;
use crate::feed_trust::FeedTrust;

/// The cache itself; held by [`crate::Caches`].
pub struct KeyCache {
    /// Hashed with foldhash, seeded per process: SipHash was a visible share of a cache hit, and
    /// a random seed still keeps crafted keys from piling into one bucket.
    pub(crate) entries: moka::sync::Cache<KeyHash, ApiKey, foldhash::fast::RandomState>,
    /// "No such key", bounded on its own so that unknown keys never evict known ones.
    pub(crate) unknown: moka::sync::Cache<KeyHash, (), foldhash::fast::RandomState>,
    generation: EvictionGeneration,
    /// Set when a change feed keeps the cache current: known keys are served only while the
    /// feed has been read recently. `None`: for their TTL.
    trust: Option<FeedTrust>,
}

impl KeyCache {
    #[must_use]
    pub fn new(
        known_ttl: Duration,
        unknown_ttl: Duration,
        capacity: u64,
        unknown_capacity: u64,
    ) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .time_to_live(known_ttl)
            .build_with_hasher(foldhash::fast::RandomState::default());
        let unknown = moka::sync::Cache::builder()
            .max_capacity(unknown_capacity)
            .time_to_live(unknown_ttl)
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self {
            entries,
            unknown,
            generation: EvictionGeneration::default(),
            trust: None,
        }
    }

    /// A cache that a change feed keeps current (`CacheInvalidation::keys_current_as_of`): its
    /// known keys are served for at most `bound` after the start of the last read of the feed,
    /// and not at all before the first one.
    #[must_use]
    pub fn following_a_feed(mut self, bound: Duration) -> Self {
        self.trust = Some(FeedTrust::new(bound));
        self
    }

    /// Forgets one key now (revoked or rotated here or elsewhere).
    pub(crate) fn evict(&self, hash: &KeyHash) {
        self.generation.bump();
        self.entries.invalidate(hash);
        self.unknown.invalidate(hash);
    }

    /// Forgets every key (changes may have been missed).
    pub(crate) fn evict_all(&self) {
        self.generation.bump();
        self.entries.invalidate_all();
        self.unknown.invalidate_all();
    }

    pub(crate) fn get(&self, hash: &KeyHash) -> Option<Option<ApiKey>> {
        if let Some(key) = self.entries.get(hash) {
            if self
                .trust
                .as_ref()
                .is_none_or(|t| t.holds_at(Instant::now()))
            {
                return Some(Some(key));
            }
            // The feed has not been read lately: a revocation could have been missed.
            return None;
        }
        self.unknown.get(hash).map(|()| None)
    }

    /// Every change committed before `read_started` has been evicted: known keys may be served
    /// for the feed's bound from then.
    pub(crate) fn renew_trust(&self, read_started: Instant) {
        if let Some(trust) = &self.trust {
            trust.renew(read_started);
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.current()
    }

    /// Inserts what a lookup that began at `generation` read, unless an eviction happened since.
    pub(crate) fn insert_if_current(&self, hash: KeyHash, value: Option<ApiKey>, generation: u64) {
        self.generation.insert_if_current(
            generation,
            || match value {
                Some(key) => self.entries.insert(hash, key),
                None => self.unknown.insert(hash, ()),
            },
            || {
                self.entries.invalidate(&hash);
                self.unknown.invalidate(&hash);
            },
        );
    }
}
