//! The guard both caches put around a store read: a read that began before an eviction must
//! not put back what it read, or a revocation (or sign-out) could be undone by a lookup that
//! was already in flight.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts evictions. A reader notes [`EvictionGeneration::current`] before asking the store and
/// inserts through [`EvictionGeneration::insert_if_current`].
#[derive(Debug, Default)]
pub(crate) struct EvictionGeneration(AtomicU64);

impl EvictionGeneration {
    /// Call before (or with) every eviction.
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Runs `insert` unless an eviction happened since `seen`; runs `undo` when one happened
    /// between that check and the insert, which would otherwise undo the eviction.
    pub(crate) fn insert_if_current(&self, seen: u64, insert: impl FnOnce(), undo: impl FnOnce()) {
        if self.current() != seen {
            return;
        }
        insert();
        if self.current() != seen {
            undo();
        }
    }
}
