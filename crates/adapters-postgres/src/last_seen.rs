//! What one ledger lane last found in, or wrote to, PostgreSQL: each payer's balance and each
//! paying key's stored columns.
//!
//! A guess, never a decision: a batch planned against it is written only if PostgreSQL finds,
//! under the batch's row locks, exactly these values (see [`crate::confirmed_write_postgres`]).
//! Whatever changed them since (another instance's batch, a grant, a revocation) makes that
//! write change nothing, and the batch is then applied the locked way, which reads them anew.

use std::collections::HashMap;

use keys_domain::charge_batch::{Account, KeySnapshot};
use keys_domain::ports::{Charge, StoreError};
use keys_domain::{Credits, KeyId, UserId};

use crate::key_store::stored_state;

/// Most users (and, separately, keys) remembered per lane; past it the memory starts over. A
/// user or key not remembered costs one batch the locked way, nothing more.
const CAPACITY: usize = 4096;

/// A key row's columns as stored: (user id, status, revoked at, revokes at).
pub(crate) type KeyColumns = (String, String, Option<i64>, Option<i64>);

/// One lane's memory. The lane's batches run one at a time, so it is never contended.
#[derive(Default)]
pub(crate) struct LastSeen {
    balances: HashMap<UserId, i64>,
    keys: HashMap<KeyId, KeyColumns>,
}

/// A batch's expected state, as [`LastSeen`] remembers it.
pub(crate) struct Expected {
    /// The payers, sorted (the lock order), with their remembered balances.
    pub users: Vec<(UserId, i64)>,
    /// The paying keys, sorted, with their remembered columns.
    pub keys: Vec<(KeyId, KeyColumns)>,
}

impl Expected {
    /// The accounts to plan against (no templates owned: a batch with a purchase is never
    /// planned from memory).
    pub(crate) fn accounts(&self) -> HashMap<UserId, Account> {
        self.users
            .iter()
            .map(|(user, balance)| {
                let account = Account {
                    balance: Credits::from_stored(*balance),
                    owned: Default::default(),
                };
                (user.clone(), account)
            })
            .collect()
    }

    /// The keys to plan against.
    pub(crate) fn key_snapshots(&self) -> Result<HashMap<KeyId, KeySnapshot>, StoreError> {
        snapshots(self.keys.iter().map(|(id, columns)| (id, columns)))
    }
}

/// Keys' stored columns as the planner sees them.
pub(crate) fn snapshots<'a>(
    keys: impl IntoIterator<Item = (&'a KeyId, &'a KeyColumns)>,
) -> Result<HashMap<KeyId, KeySnapshot>, StoreError> {
    let mut out = HashMap::new();
    for (id, (user, status, revoked_at, revokes_at)) in keys {
        let state = stored_state(id.as_str(), status, *revoked_at, *revokes_at)?;
        let snapshot = KeySnapshot::plain(UserId::new(user.as_str()), state);
        out.insert(id.clone(), snapshot);
    }
    Ok(out)
}

impl LastSeen {
    /// The expected state of a batch of `payers` paying with `keys` (both sorted), when every
    /// one of them is remembered.
    pub(crate) fn expected(&self, payers: &[UserId], keys: &[KeyId]) -> Option<Expected> {
        let users = payers
            .iter()
            .map(|u| self.balances.get(u).map(|b| (u.clone(), *b)))
            .collect::<Option<Vec<_>>>()?;
        let keys = keys
            .iter()
            .map(|k| self.keys.get(k).map(|c| (k.clone(), c.clone())))
            .collect::<Option<Vec<_>>>()?;
        Some(Expected { users, keys })
    }

    /// Remembers a user's balance as committed.
    pub(crate) fn balance(&mut self, user: &UserId, balance: Credits) {
        if self.balances.len() >= CAPACITY && !self.balances.contains_key(user) {
            self.balances.clear();
        }
        self.balances.insert(user.clone(), balance.as_i64());
    }

    /// Remembers a key's columns as read under lock.
    pub(crate) fn key(&mut self, key: KeyId, columns: KeyColumns) {
        if self.keys.len() >= CAPACITY && !self.keys.contains_key(&key) {
            self.keys.clear();
        }
        self.keys.insert(key, columns);
    }

    /// Forgets the users and keys of a batch whose outcome is unknown (it failed, perhaps after
    /// PostgreSQL committed it).
    pub(crate) fn forget(&mut self, charges: &[Charge]) {
        for charge in charges {
            self.balances.remove(&charge.user_id);
            if let Some(key) = &charge.key_id {
                self.keys.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use keys_domain::KeyState;

    use super::*;

    fn active(user: &str) -> KeyColumns {
        (user.to_owned(), "active".to_owned(), None, None)
    }

    #[test]
    fn a_batch_is_expected_only_when_every_payer_and_key_is_remembered() {
        let (ada, bob) = (UserId::new("usr_ada"), UserId::new("usr_bob"));
        let key = KeyId::new("key_ada");
        let mut seen = LastSeen::default();
        seen.balance(&ada, Credits::new(7));
        assert!(
            seen.expected(std::slice::from_ref(&ada), std::slice::from_ref(&key))
                .is_none()
        );
        seen.key(key.clone(), active("usr_ada"));
        let expected = seen
            .expected(std::slice::from_ref(&ada), std::slice::from_ref(&key))
            .unwrap();
        assert_eq!(expected.users, vec![(ada.clone(), 7)]);
        assert_eq!(expected.accounts()[&ada].balance, Credits::new(7));
        let snapshots = expected.key_snapshots().unwrap();
        assert_eq!(snapshots[&key].state, KeyState::Active);
        assert_eq!(snapshots[&key].user_id, ada);
        assert!(seen.expected(&[ada, bob], &[]).is_none());
    }

    #[test]
    fn a_failed_batch_is_forgotten_and_memory_starts_over_past_its_capacity() {
        let ada = UserId::new("usr_ada");
        let mut seen = LastSeen::default();
        seen.balance(&ada, Credits::new(7));
        let charge = Charge {
            user_id: ada.clone(),
            key_id: None,
            cost: Credits::new(1),
            kind: keys_domain::ports::ChargeKind::Purchase(keys_domain::TemplateId::new("t")),
            at: keys_domain::Timestamp::from_millis(0),
        };
        seen.forget(&[charge]);
        assert!(seen.expected(std::slice::from_ref(&ada), &[]).is_none());

        for i in 0..CAPACITY {
            seen.balance(&UserId::new(format!("usr_{i}")), Credits::new(1));
        }
        seen.balance(&ada, Credits::new(2));
        assert_eq!(seen.balances.len(), 1, "full: started over");
    }
}
