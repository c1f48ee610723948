//! Several ledger batches in flight at once, for disjoint sets of users.
//!
//! One queue ([`GroupCommit`]) per lane, each drained by its own task on its own connection. A
//! user's charges always go to the same lane, so they are applied in arrival order; batches of
//! different lanes hold different users' row locks and commit side by side (PostgreSQL then
//! flushes their commits together). A hot user gains nothing: its row lock orders its batches
//! anyway. Exactness does not depend on the lanes: it stays in the row locks, as between two
//! instances.

use std::hash::{DefaultHasher, Hash, Hasher};

use keys_domain::UserId;
use keys_domain::ports::{Charge, ChargeOutcome};

use crate::group_commit::{BATCH_CAP, GroupCommit};

pub(crate) struct LedgerLanes {
    lanes: Box<[GroupCommit<Charge, ChargeOutcome>]>,
}

impl LedgerLanes {
    pub(crate) fn new(lanes: usize) -> Self {
        Self {
            lanes: (0..lanes.max(1))
                .map(|_| GroupCommit::new(BATCH_CAP))
                .collect(),
        }
    }

    /// The lane of `user`'s charges: always the same one.
    pub(crate) fn lane_for(&self, user: &UserId) -> &GroupCommit<Charge, ChargeOutcome> {
        let mut hasher = DefaultHasher::new();
        user.as_str().hash(&mut hasher);
        let i = usize::try_from(hasher.finish() % self.lanes.len() as u64).unwrap_or(0);
        &self.lanes[i]
    }

    /// The batch-size distribution over all lanes: (smallest size of a bucket, batches).
    pub(crate) fn sizes(&self) -> Vec<(usize, u64)> {
        let mut merged: Vec<(usize, u64)> = Vec::new();
        for lane in &self.lanes {
            for (size, n) in lane.sizes().snapshot() {
                match merged.iter_mut().find(|(s, _)| *s == size) {
                    Some((_, total)) => *total += n,
                    None => merged.push((size, n)),
                }
            }
        }
        merged.sort_unstable();
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
