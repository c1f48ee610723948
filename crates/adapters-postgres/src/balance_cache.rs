//! Balances this instance has read or written, for fast balance reads.
//!
//! Freshness: a read is never older than the last debit this instance acknowledged, because
//! the ledger writer stores every balance it commits here before it answers, and a read that
//! was in flight meanwhile cannot overwrite it (stamps, below). Changes made elsewhere (another
//! instance, the operator CLI) show within [`BALANCE_TTL`]. No decision is taken on these
//! values: charges read the balance under the row lock.
//!
//! Stamps: every store here takes a new stamp from one counter, a read at its *start* and a
//! write at its *completion*; an entry is only replaced by a higher stamp. So a database read
//! that started before a commit was cached can never replace that commit's balance.
//!
//! Only the ledger writer stores what it committed: its batches run one after another, so
//! their completions are stamped in commit order. Grants run concurrently, and two grants'
//! completions may be stamped in the opposite order of their commits, so a grant only
//! *forgets* the balance ([`BalanceCache::forget`]): the next read takes it from the database.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keys_domain::{Credits, UserId};

/// How long a cached balance is served: the bound on seeing another instance's change.
pub(crate) const BALANCE_TTL: Duration = Duration::from_secs(1);
/// Most balances kept; beyond it only fresh entries are kept (they expire within the TTL).
const CAPACITY: usize = 100_000;

struct Entry {
    /// `None`: forgotten (a grant committed); kept for its stamp, so that a read that started
    /// before the grant cannot store the balance from before it.
    balance: Option<Credits>,
    stamp: u64,
    stored: Instant,
}

pub(crate) struct BalanceCache {
    ttl: Duration,
    stamps: AtomicU64,
    entries: Mutex<HashMap<UserId, Entry>>,
}

impl Default for BalanceCache {
    fn default() -> Self {
        Self::new(BALANCE_TTL)
    }
}

impl BalanceCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            stamps: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A stamp: take one when a read starts, or when a write has committed.
    pub(crate) fn stamp(&self) -> u64 {
        self.stamps.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The cached balance, if younger than the TTL.
    pub(crate) fn get(&self, user: &UserId) -> Option<Credits> {
        let entries = self.lock();
        let entry = entries.get(user)?;
        if entry.stored.elapsed() < self.ttl {
            entry.balance
        } else {
            None
        }
    }

    /// Stores `balance` unless a higher stamp is there already.
    pub(crate) fn put(&self, user: &UserId, balance: Credits, stamp: u64) {
        self.store(user, Some(balance), stamp);
    }

    /// Forgets the balance of `user` after a change committed outside the ledger writer.
    pub(crate) fn forget(&self, user: &UserId) {
        let stamp = self.stamp();
        self.store(user, None, stamp);
    }

    fn store(&self, user: &UserId, balance: Option<Credits>, stamp: u64) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(user) {
            if entry.stamp < stamp {
                *entry = Entry {
                    balance,
                    stamp,
                    stored: Instant::now(),
                };
            }
            return;
        }
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, e| e.stored.elapsed() < ttl);
            if entries.len() >= CAPACITY {
                return;
            }
        }
        entries.insert(
            user.clone(),
            Entry {
                balance,
                stamp,
                stored: Instant::now(),
            },
        );
    }

    /// Stores the balances a ledger batch has just committed (batches complete one at a time).
    pub(crate) fn committed(&self, balances: &[(UserId, Credits)]) {
        let stamp = self.stamp();
        for (user, balance) in balances {
            self.put(user, *balance, stamp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> UserId {
        UserId::new("usr_ada")
    }

    #[test]
    fn a_read_that_started_before_a_commit_never_replaces_it() {
        let cache = BalanceCache::new(Duration::from_secs(60));
        let read_started = cache.stamp();
        cache.committed(&[(ada(), Credits::new(4))]);
        // The read saw the balance before the debit.
        cache.put(&ada(), Credits::new(5), read_started);
        assert_eq!(cache.get(&ada()), Some(Credits::new(4)));
        // A read that started after the commit may replace it (e.g. a grant made elsewhere).
        let later = cache.stamp();
        cache.put(&ada(), Credits::new(104), later);
        assert_eq!(cache.get(&ada()), Some(Credits::new(104)));
    }

    #[test]
    fn grants_completing_out_of_order_leave_no_stale_balance() {
        let cache = BalanceCache::new(Duration::from_secs(60));
        let read_started = cache.stamp();
        // Grant A commits 10, grant B commits 20; A's thread finishes last.
        cache.forget(&ada());
        cache.forget(&ada());
        assert_eq!(
            cache.get(&ada()),
            None,
            "the next read goes to the database"
        );
        // A read that started before the grants cannot bring back the old balance.
        cache.put(&ada(), Credits::new(5), read_started);
        assert_eq!(cache.get(&ada()), None);
        let later = cache.stamp();
        cache.put(&ada(), Credits::new(20), later);
        assert_eq!(cache.get(&ada()), Some(Credits::new(20)));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = BalanceCache::new(Duration::ZERO);
        cache.committed(&[(ada(), Credits::new(4))]);
        assert_eq!(cache.get(&ada()), None);
    }
}
