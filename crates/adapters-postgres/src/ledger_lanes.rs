//! Several ledger batches in flight at once, for disjoint sets of users.
//!
//! One queue ([`GroupCommit`]) per lane, each drained by its own thread on its own connection. A
//! user's charges always go to the same lane, so they are applied in arrival order; batches of
//! different lanes hold different users' row locks and commit side by side (PostgreSQL then
//! flushes their commits together). A hot user gains nothing: its row lock orders its batches
//! anyway. Exactness does not depend on the lanes: it stays in the row locks, as between two
//! instances. Each lane also remembers what its batches found and wrote ([`LastSeen`]), and
//! counts how its batches were written.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use keys_domain::UserId;
use keys_domain::ports::{Charge, ChargeOutcome};

use crate::connection_trust::ConnectionTrust;
use crate::group_commit::{BATCH_CAP, BatchSizeCounts, GroupCommit};
use crate::last_seen::LastSeen;

pub(crate) struct LedgerLanes {
    lanes: Box<[Lane]>,
    /// Whether the lanes' connections are fresh enough to skip a ping at checkout.
    trust: Arc<ConnectionTrust>,
    /// Batches written as planned from a lane's memory, in one round trip.
    confirmed: AtomicU64,
    /// Batches written the locked way.
    locked: AtomicU64,
}

/// One lane: its queue, and what its batches found and wrote (the lane's batches run one at a
/// time, on its drainer's thread).
pub(crate) struct Lane {
    pub queue: GroupCommit<Charge, ChargeOutcome>,
    pub seen: Mutex<LastSeen>,
}

impl LedgerLanes {
    pub(crate) fn new(lanes: usize) -> Self {
        Self {
            lanes: (0..lanes.max(1))
                .map(|_| Lane {
                    queue: GroupCommit::new(BATCH_CAP),
                    seen: Mutex::default(),
                })
                .collect(),
            trust: Arc::default(),
            confirmed: AtomicU64::new(0),
            locked: AtomicU64::new(0),
        }
    }

    /// The trust in the lanes' connections, shared with the ledger pool's manager.
    pub(crate) fn trust(&self) -> &Arc<ConnectionTrust> {
        &self.trust
    }

    /// The lane of `user`'s charges: always the same one.
    pub(crate) fn lane_for(&self, user: &UserId) -> &Lane {
        let mut hasher = DefaultHasher::new();
        user.as_str().hash(&mut hasher);
        let i = usize::try_from(hasher.finish() % self.lanes.len() as u64).unwrap_or(0);
        &self.lanes[i]
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

    /// The batch sizes of all lanes.
    pub(crate) fn sizes(&self) -> BatchSizeCounts {
        let mut merged = BatchSizeCounts::default();
        for lane in &self.lanes {
            merged.add(&lane.queue.sizes().snapshot());
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_always_gets_the_same_lane_and_users_spread_over_all_lanes() {
        let lanes = LedgerLanes::new(4);
        let lane_of = |i: usize| {
            let user = UserId::new(format!("usr_{i}"));
            let lane: *const _ = lanes.lane_for(&user);
            lanes
                .lanes
                .iter()
                .position(|l| std::ptr::eq(l, lane))
                .unwrap()
        };
        for i in 0..100 {
            assert_eq!(lane_of(i), lane_of(i));
        }
        let mut used: Vec<usize> = (0..100).map(lane_of).collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used, vec![0, 1, 2, 3]);
    }

    #[test]
    fn one_lane_takes_everyone() {
        let lanes = LedgerLanes::new(0);
        assert_eq!(lanes.lanes.len(), 1);
    }
}
