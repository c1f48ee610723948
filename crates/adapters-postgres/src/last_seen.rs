//! What the ledger last found in, or wrote to, PostgreSQL: each payer's balance, each
//! paying key's stored columns and controls, and each limited key's spend this month.
//!
//! A guess, never a decision: a batch planned against it is written only if PostgreSQL finds,
//! under the batch's row locks, exactly these values (see [`crate::confirmed_write_postgres`]).
//! Whatever changed them since (another instance's batch, a grant, a revocation) makes that
//! write change nothing, and the batch is then applied the locked way, which reads them anew.

use std::collections::HashMap;

use keys_domain::charge_batch::{Account, KeySnapshot, MonthlySnapshot};
use keys_domain::monthly_spend::{MonthlyCreditLimit, SpendMonth};
use keys_domain::ports::{Charge, StoreError};
use keys_domain::{Credits, KeyId, Timestamp, UserId};

use crate::key_row::stored_state;

/// Most users (and, separately, keys) remembered; past it the memory starts over. A
/// user or key not remembered costs one batch the locked way, nothing more.
const CAPACITY: usize = 4096;

/// A key row's columns as stored: (user id, status, revoked at, revokes at).
pub(crate) type KeyColumns = (String, String, Option<i64>, Option<i64>);

/// A paying key as the locked way reads it: its lifecycle columns and the controls a charge
/// obeys.
#[derive(Debug, Clone)]
pub(crate) struct KeyRead {
    pub columns: KeyColumns,
    pub expires_at: Option<i64>,
    pub monthly_credit_limit: Option<i64>,
}

/// The ledger's memory. Its batches run one at a time, so it is never contended.
#[derive(Default)]
pub(crate) struct LastSeen {
    balances: HashMap<UserId, i64>,
    keys: HashMap<KeyId, KeyRead>,
    /// Limited keys' stored spend: (month start, spent), for the month of the row as stored.
    spend: HashMap<KeyId, (i64, i64)>,
}

/// A batch's expected state, as [`LastSeen`] remembers it.
pub(crate) struct Expected {
    /// The payers, sorted (the lock order), with their remembered balances.
    pub users: Vec<(UserId, i64)>,
    /// The paying keys, sorted, with their remembered columns.
    pub keys: Vec<(KeyId, KeyRead)>,
    /// The batch's month: that of its first charge, as the locked way takes it.
    pub month: SpendMonth,
    /// The limited keys' spend in `month`, sorted by key.
    pub spend: Vec<(KeyId, i64)>,
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
        let spent: HashMap<KeyId, i64> = self.spend.iter().cloned().collect();
        controlled_snapshots(self.keys.iter().map(|(id, k)| (id, k)), self.month, &spent)
    }
}

/// The planner's view of the paying keys, with their expiry and monthly spend (a limited key
/// with no stored spend has spent nothing this month).
pub(crate) fn controlled_snapshots<'a>(
    keys: impl IntoIterator<Item = (&'a KeyId, &'a KeyRead)>,
    month: SpendMonth,
    spent: &HashMap<KeyId, i64>,
) -> Result<HashMap<KeyId, KeySnapshot>, StoreError> {
    let keys: Vec<(&KeyId, &KeyRead)> = keys.into_iter().collect();
    let mut out = snapshots(keys.iter().map(|(id, k)| (*id, &k.columns)))?;
    for (id, read) in keys {
        let Some(snapshot) = out.get_mut(id) else {
            continue;
        };
        snapshot.expires_at = read.expires_at.map(Timestamp::from_millis);
        if let Some(limit) = read.monthly_credit_limit {
            let limit = MonthlyCreditLimit::from_stored(limit).ok_or_else(|| {
                StoreError::Internal(format!("key {id} has a corrupt monthly_credit_limit"))
            })?;
            snapshot.monthly = Some(MonthlySnapshot {
                limit,
                month,
                spent: Credits::from_stored(spent.get(id).copied().unwrap_or(0)),
            });
        }
    }
    Ok(out)
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
    /// The expected state of a batch of `payers` paying with `keys` (both sorted) in `month`,
    /// when every one of them is remembered, and each limited key's spend in that month.
    pub(crate) fn expected(
        &self,
        payers: &[UserId],
        keys: &[KeyId],
        month: SpendMonth,
    ) -> Option<Expected> {
        let users = payers
            .iter()
            .map(|u| self.balances.get(u).map(|b| (u.clone(), *b)))
            .collect::<Option<Vec<_>>>()?;
        let keys = keys
            .iter()
            .map(|k| self.keys.get(k).map(|c| (k.clone(), c.clone())))
            .collect::<Option<Vec<_>>>()?;
        let month_start = month.start().as_millis();
        let spend = keys
            .iter()
            .filter(|(_, k)| k.monthly_credit_limit.is_some())
            .map(|(id, _)| match self.spend.get(id) {
                Some((m, spent)) if *m == month_start => Some((id.clone(), *spent)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Expected {
            users,
            keys,
            month,
            spend,
        })
    }

    /// Remembers a user's balance as committed.
    pub(crate) fn balance(&mut self, user: &UserId, balance: Credits) {
        if self.balances.len() >= CAPACITY && !self.balances.contains_key(user) {
            self.balances.clear();
        }
        self.balances.insert(user.clone(), balance.as_i64());
    }

    /// Remembers a key's columns as read under lock.
    pub(crate) fn key(&mut self, key: KeyId, read: KeyRead) {
        if self.keys.len() >= CAPACITY && !self.keys.contains_key(&key) {
            self.keys.clear();
            self.spend.clear();
        }
        self.keys.insert(key, read);
    }

    /// Remembers a limited key's spend row as committed.
    pub(crate) fn spent(&mut self, key: &KeyId, month: SpendMonth, spent: Credits) {
        self.spend
            .insert(key.clone(), (month.start().as_millis(), spent.as_i64()));
    }

    /// Forgets the users and keys of a batch whose outcome is unknown (it failed, perhaps after
    /// PostgreSQL committed it).
    pub(crate) fn forget(&mut self, charges: &[Charge]) {
        for charge in charges {
            self.balances.remove(&charge.user_id);
            if let Some(key) = &charge.key_id {
                self.keys.remove(key);
                self.spend.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use keys_domain::KeyState;

    use super::*;

    fn active(user: &str) -> KeyRead {
        KeyRead {
            columns: (user.to_owned(), "active".to_owned(), None, None),
            expires_at: None,
            monthly_credit_limit: None,
        }
    }

    fn month(ms: i64) -> SpendMonth {
        SpendMonth::of(keys_domain::Timestamp::from_millis(ms))
    }

    #[test]
    fn a_batch_is_expected_only_when_every_payer_and_key_is_remembered() {
        let (ada, bob) = (UserId::new("usr_ada"), UserId::new("usr_bob"));
        let key = KeyId::new("key_ada");
        let mut seen = LastSeen::default();
        seen.balance(&ada, Credits::new(7));
        assert!(
            seen.expected(
                std::slice::from_ref(&ada),
                std::slice::from_ref(&key),
                month(0)
            )
            .is_none()
        );
        seen.key(key.clone(), active("usr_ada"));
        let expected = seen
            .expected(
                std::slice::from_ref(&ada),
                std::slice::from_ref(&key),
                month(0),
            )
            .unwrap();
        assert_eq!(expected.users, vec![(ada.clone(), 7)]);
        assert_eq!(expected.accounts()[&ada].balance, Credits::new(7));
        let snapshots = expected.key_snapshots().unwrap();
        assert_eq!(snapshots[&key].state, KeyState::Active);
        assert_eq!(snapshots[&key].user_id, ada);
        assert!(seen.expected(&[ada, bob], &[], month(0)).is_none());
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
        assert!(
            seen.expected(std::slice::from_ref(&ada), &[], month(0))
                .is_none()
        );

        for i in 0..CAPACITY {
            seen.balance(&UserId::new(format!("usr_{i}")), Credits::new(1));
        }
        seen.balance(&ada, Credits::new(2));
        assert_eq!(seen.balances.len(), 1, "full: started over");
    }

    #[test]
    fn a_limited_key_is_expected_only_with_its_spend_in_the_batch_month() {
        let ada = UserId::new("usr_ada");
        let key = KeyId::new("key_ada");
        let mut seen = LastSeen::default();
        seen.balance(&ada, Credits::new(100));
        let mut limited = active("usr_ada");
        limited.monthly_credit_limit = Some(50);
        limited.expires_at = Some(9_000_000_000_000);
        seen.key(key.clone(), limited);
        let (payers, keys) = (std::slice::from_ref(&ada), std::slice::from_ref(&key));
        let december = month(1_796_083_200_000); // 2026-12-01T00:00:00Z
        assert!(seen.expected(payers, keys, december).is_none(), "no spend");
        seen.spent(&key, december, Credits::new(7));
        let expected = seen.expected(payers, keys, december).unwrap();
        assert_eq!(expected.spend, vec![(key.clone(), 7)]);
        let snapshot = &expected.key_snapshots().unwrap()[&key];
        let monthly = snapshot.monthly.as_ref().unwrap();
        assert_eq!((monthly.spent, monthly.month), (Credits::new(7), december));
        assert!(snapshot.expires_at.is_some());
        let january = month(1_798_761_600_000); // 2027-01-01T00:00:00Z
        assert!(
            seen.expected(payers, keys, january).is_none(),
            "another month"
        );
        seen.forget(&[Charge {
            user_id: ada.clone(),
            key_id: Some(key.clone()),
            cost: Credits::new(1),
            kind: keys_domain::ports::ChargeKind::Purchase(keys_domain::TemplateId::new("t")),
            at: keys_domain::Timestamp::from_millis(0),
        }]);
        assert!(seen.spend.is_empty());
    }
}
