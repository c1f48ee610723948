//! The ledger writer's one queue: charges wait in it ([`GroupCommit`]) for the next batch, and
//! one drainer thread at a time applies each batch on the ledger's own connection. Charges are
//! therefore applied in arrival order, one transaction at a time per instance; exactness does
//! not depend on it (it stays in the row locks, as between two instances). Most of a batch's
//! cost to the database is fixed whatever its size, so a second batch in flight would only
//! split the charges into smaller, dearer batches. The queue also remembers what its batches
//! found and wrote ([`LastSeen`]), and counts how they were written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use keys_domain::ports::{Charge, ChargeOutcome};

use crate::connection_trust::ConnectionTrust;
use crate::group_commit::{BATCH_CAP, BatchSizeCounts, GroupCommit};
use crate::last_seen::LastSeen;

pub(crate) struct LedgerQueue {
    pub queue: GroupCommit<Charge, ChargeOutcome>,
    /// What the batches found and wrote (they run one at a time, so it is never contended).
    pub seen: Mutex<LastSeen>,
    /// Whether the ledger's connection is fresh enough to skip a ping at checkout.
    trust: Arc<ConnectionTrust>,
    /// Batches written as planned from memory, in one round trip.
    confirmed: AtomicU64,
    /// Batches written the locked way.
    locked: AtomicU64,
}

impl LedgerQueue {
    pub(crate) fn new() -> Self {
        Self {
            queue: GroupCommit::new(BATCH_CAP),
            seen: Mutex::default(),
            trust: Arc::default(),
            confirmed: AtomicU64::new(0),
            locked: AtomicU64::new(0),
        }
    }

    /// The trust in the ledger's connection, shared with the ledger pool's manager.
    pub(crate) fn trust(&self) -> &Arc<ConnectionTrust> {
        &self.trust
    }

    /// Counts a committed batch by the way it was written.
    pub(crate) fn written(&self, confirmed: bool) {
        let counter = if confirmed {
            &self.confirmed
        } else {
            &self.locked
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Committed batches so far: (written from memory in one round trip, written locked).
    pub(crate) fn ways(&self) -> (u64, u64) {
        (
            self.confirmed.load(Ordering::Relaxed),
            self.locked.load(Ordering::Relaxed),
        )
    }

    /// The applied batches' sizes.
    pub(crate) fn sizes(&self) -> BatchSizeCounts {
        self.queue.sizes().snapshot()
    }
}
