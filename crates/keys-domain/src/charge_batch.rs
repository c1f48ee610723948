//! Deciding a batch of charges, without I/O: the ledger writer's adapters read the batch's
//! accounts and keys under lock, call [`plan`], and write what it returns in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::credits::{Credits, LedgerEntry, LedgerReason, debit};
use crate::ids::{KeyId, TemplateId, UserId};
use crate::key_state::KeyState;
use crate::monthly_spend::{MonthlyCreditLimit, SpendMonth, spend};
use crate::ports::{Charge, ChargeKind, ChargeOutcome};
use crate::template::Document;
use crate::timestamp::Timestamp;

/// A payer as the batch's transaction found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    pub balance: Credits,
    /// Templates already owned; read only for users with a purchase in the batch.
    pub owned: HashSet<TemplateId>,
}

/// A key as the batch's transaction found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySnapshot {
    pub user_id: UserId,
    pub state: KeyState,
    /// A charge at or after it is refused as `KeyNotAccepted`.
    pub expires_at: Option<Timestamp>,
    /// The key's monthly limit, if it has one, with what it had spent in `month` when read.
    pub monthly: Option<MonthlySnapshot>,
}

impl KeySnapshot {
    /// A key without controls.
    #[must_use]
    pub const fn plain(user_id: UserId, state: KeyState) -> Self {
        Self {
            user_id,
            state,
            expires_at: None,
            monthly: None,
        }
    }
}

/// A limited key's spend as read by the batch's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthlySnapshot {
    pub limit: MonthlyCreditLimit,
    pub month: SpendMonth,
    pub spent: Credits,
}

/// What the transaction writes, and what each charge is answered.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchPlan {
    /// One per charge, in arrival order.
    pub outcomes: Vec<ChargeOutcome>,
    /// The final balance of each user whose balance changed (written once each), by id.
    pub balances: Vec<(UserId, Credits)>,
    /// In arrival order, each with its running `balance_after`.
    pub ledger: Vec<LedgerEntry>,
    pub documents: Vec<Document>,
    /// New ownership: (user, template, acquired at).
    pub ownership: Vec<(UserId, TemplateId, Timestamp)>,
    /// Limited keys' spend after the batch, per month charged in (written whole, over what was
    /// read: the payer's lock serialises every batch of a key).
    pub key_spend: Vec<(KeyId, SpendMonth, Credits)>,
}

/// The distinct users of a batch, sorted: the order in which their rows are locked, so two
/// batches never wait on each other in a cycle.
#[must_use]
pub fn payers(charges: &[Charge]) -> Vec<UserId> {
    let set: BTreeSet<&UserId> = charges.iter().map(|c| &c.user_id).collect();
    set.into_iter().cloned().collect()
}

/// The distinct users with a purchase in the batch: whose ownership must be read.
#[must_use]
pub fn purchasers(charges: &[Charge]) -> Vec<UserId> {
    let set: BTreeSet<&UserId> = charges
        .iter()
        .filter(|c| matches!(c.kind, ChargeKind::Purchase(_)))
        .map(|c| &c.user_id)
        .collect();
    set.into_iter().cloned().collect()
}

/// The distinct keys that authorised the batch's charges, sorted (the lock order).
#[must_use]
pub fn keys(charges: &[Charge]) -> Vec<KeyId> {
    let set: BTreeSet<&KeyId> = charges.iter().filter_map(|c| c.key_id.as_ref()).collect();
    set.into_iter().cloned().collect()
}

/// Decides every charge in arrival order against its user's running balance.
///
/// `accounts` holds the users that exist (a missing one is `UnknownUser`); `keys` the keys that
/// exist (a charge whose key is missing, another user's, or not accepted at the charge's time
/// is `KeyNotAccepted`).
#[must_use]
pub fn plan(
    charges: &[Charge],
    mut accounts: HashMap<UserId, Account>,
    keys: &HashMap<KeyId, KeySnapshot>,
) -> BatchPlan {
    let mut out = BatchPlan {
        outcomes: Vec::with_capacity(charges.len()),
        ..BatchPlan::default()
    };
    let mut changed: BTreeSet<UserId> = BTreeSet::new();
    let mut spent: BTreeMap<(KeyId, SpendMonth), Credits> = BTreeMap::new();
    for charge in charges {
        let outcome = decide(
            charge,
            &mut accounts,
            keys,
            &mut spent,
            &mut out,
            &mut changed,
        );
        out.outcomes.push(outcome);
    }
    out.key_spend = spent.into_iter().map(|((k, m), c)| (k, m, c)).collect();
    out.balances = changed
        .into_iter()
        .filter_map(|u| accounts.get(&u).map(|a| (u.clone(), a.balance)))
        .collect();
    out
}

/// The key's spend after `cost` in the charge's month, when the key has a monthly limit.
type SpendAfter = Option<((KeyId, SpendMonth), Credits)>;

fn decide(
    charge: &Charge,
    accounts: &mut HashMap<UserId, Account>,
    keys: &HashMap<KeyId, KeySnapshot>,
    spent: &mut BTreeMap<(KeyId, SpendMonth), Credits>,
    out: &mut BatchPlan,
    changed: &mut BTreeSet<UserId>,
) -> ChargeOutcome {
    let Some(account) = accounts.get_mut(&charge.user_id) else {
        return ChargeOutcome::UnknownUser;
    };
    let mut limited: Option<(&KeyId, &MonthlySnapshot)> = None;
    if let Some(key) = &charge.key_id {
        let Some(snapshot) = keys.get(key).filter(|k| {
            k.user_id == charge.user_id
                && k.state.is_accepted(charge.at)
                && k.expires_at.is_none_or(|at| charge.at < at)
        }) else {
            return ChargeOutcome::KeyNotAccepted;
        };
        limited = snapshot.monthly.as_ref().map(|m| (key, m));
    }
    let cost = match &charge.kind {
        ChargeKind::Purchase(template) if account.owned.contains(template) => Credits::ZERO,
        _ => charge.cost,
    };
    let balance = match debit(account.balance, cost) {
        Ok(balance) => balance,
        Err(short) => return ChargeOutcome::Insufficient(short),
    };
    let spend_after: SpendAfter = match limited {
        Some((key, monthly)) if cost > Credits::ZERO => {
            let month = SpendMonth::of(charge.at);
            let slot = (key.clone(), month);
            let before = spent
                .get(&slot)
                .copied()
                .unwrap_or(if month == monthly.month {
                    monthly.spent
                } else {
                    Credits::ZERO
                });
            match spend(monthly.limit, month, before, cost) {
                Ok(after) => Some((slot, after)),
                Err(reached) => return ChargeOutcome::KeyLimitReached(reached),
            }
        }
        _ => None,
    };
    let reason = match &charge.kind {
        ChargeKind::Render(document) => {
            let reason = LedgerReason::DocumentRender(document.id.as_str().to_owned());
            out.documents.push(document.clone());
            reason
        }
        ChargeKind::Purchase(template) => {
            if !account.owned.insert(template.clone()) {
                // Already owned: nothing to record or debit.
                return ChargeOutcome::Charged {
                    charged: Credits::ZERO,
                    balance,
                };
            }
            out.ownership
                .push((charge.user_id.clone(), template.clone(), charge.at));
            LedgerReason::TemplatePurchase(template.as_str().to_owned())
        }
    };
    if let Some((slot, after)) = spend_after {
        spent.insert(slot, after);
    }
    if cost > Credits::ZERO {
        account.balance = balance;
        changed.insert(charge.user_id.clone());
        out.ledger.push(LedgerEntry {
            user_id: charge.user_id.clone(),
            delta: -cost.as_i64(),
            balance_after: balance,
            reason: reason.to_stored(),
            created_at: charge.at,
        });
    }
    ChargeOutcome::Charged {
        charged: cost,
        balance,
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credits::InsufficientCredits;
    use crate::ids::DocumentId;

    const T: Timestamp = Timestamp::from_millis(1_000);

    fn user(n: u8) -> UserId {
        UserId::new(format!("usr_{n}"))
    }

    fn render(u: u8, doc: &str, key: Option<&str>) -> Charge {
        Charge {
            user_id: user(u),
            key_id: key.map(KeyId::new),
            cost: Credits::new(1),
            kind: ChargeKind::Render(Document {
                id: DocumentId::new(doc),
                user_id: user(u),
                template_id: TemplateId::new("classic"),
                content: String::new(),
                created_at: T,
            }),
            at: T,
        }
    }

    fn purchase(u: u8, price: u64) -> Charge {
        Charge {
            user_id: user(u),
            key_id: None,
            cost: Credits::new(price),
            kind: ChargeKind::Purchase(TemplateId::new("executive")),
            at: T,
        }
    }

    fn accounts(list: &[(u8, u64)]) -> HashMap<UserId, Account> {
        list.iter()
            .map(|&(u, b)| {
                (
                    user(u),
                    Account {
                        balance: Credits::new(b),
                        owned: HashSet::new(),
                    },
                )
            })
            .collect()
    }

    fn charged(charged: u64, balance: u64) -> ChargeOutcome {
        ChargeOutcome::Charged {
            charged: Credits::new(charged),
            balance: Credits::new(balance),
        }
    }

    #[test]
    fn refusals_go_exactly_to_the_charges_that_no_longer_fit() {
        let charges = vec![
            render(1, "d1", None),
            render(2, "d2", None),
            render(1, "d3", None),
            render(1, "d4", None),
        ];
        let plan = plan(&charges, accounts(&[(1, 2), (2, 0)]), &HashMap::new());
        assert_eq!(
            plan.outcomes,
            vec![
                charged(1, 1),
                ChargeOutcome::Insufficient(InsufficientCredits {
                    required: Credits::new(1),
                    balance: Credits::ZERO
                }),
                charged(1, 0),
                ChargeOutcome::Insufficient(InsufficientCredits {
                    required: Credits::new(1),
                    balance: Credits::ZERO
                }),
            ]
        );
        // One balance write for user 1, none for user 2; a ledger row and a document per debit.
        assert_eq!(plan.balances, vec![(user(1), Credits::ZERO)]);
        let afters: Vec<u64> = plan.ledger.iter().map(|e| e.balance_after.get()).collect();
        assert_eq!(afters, vec![1, 0]);
        let docs: Vec<&str> = plan.documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(docs, vec!["d1", "d3"]);
    }

    #[test]
    fn a_template_bought_twice_in_one_batch_is_charged_once() {
        let plan = plan(
            &[purchase(1, 50), purchase(1, 50)],
            accounts(&[(1, 120)]),
            &HashMap::new(),
        );
        assert_eq!(plan.outcomes, vec![charged(50, 70), charged(0, 70)]);
        assert_eq!(plan.ownership.len(), 1);
        assert_eq!(plan.ledger.len(), 1);
    }

    #[test]
    fn an_owned_template_is_free_and_a_short_purchase_records_nothing() {
        let mut owner = accounts(&[(1, 10), (2, 10)]);
        if let Some(a) = owner.get_mut(&user(1)) {
            a.owned.insert(TemplateId::new("executive"));
        }
        let plan = plan(&[purchase(1, 50), purchase(2, 50)], owner, &HashMap::new());
        assert_eq!(plan.outcomes[0], charged(0, 10));
        assert!(matches!(plan.outcomes[1], ChargeOutcome::Insufficient(_)));
        assert!(plan.ownership.is_empty() && plan.ledger.is_empty() && plan.balances.is_empty());
    }

    #[test]
    fn unknown_users_and_keys_not_accepted_change_nothing() {
        let keys = HashMap::from([
            (
                KeyId::new("key_live"),
                KeySnapshot::plain(user(1), KeyState::Active),
            ),
            (
                KeyId::new("key_gone"),
                KeySnapshot::plain(
                    user(1),
                    KeyState::Revoked {
                        revoked_at: Timestamp::from_millis(2_000),
                    },
                ),
            ),
            (
                KeyId::new("key_other"),
                KeySnapshot::plain(user(2), KeyState::Active),
            ),
        ]);
        let charges = vec![
            render(9, "a", None),
            render(1, "b", Some("key_gone")),
            render(1, "c", Some("key_other")),
            render(1, "d", Some("key_missing")),
            render(1, "e", Some("key_live")),
        ];
        let plan = plan(&charges, accounts(&[(1, 5)]), &keys);
        assert_eq!(
            plan.outcomes,
            vec![
                ChargeOutcome::UnknownUser,
                ChargeOutcome::KeyNotAccepted,
                ChargeOutcome::KeyNotAccepted,
                ChargeOutcome::KeyNotAccepted,
                charged(1, 4),
            ]
        );
        assert_eq!(plan.documents.len(), 1);
    }

    #[test]
    fn lock_order_is_sorted_and_distinct() {
        let charges = vec![render(3, "a", Some("key_b")), render(1, "b", Some("key_a"))];
        let mut more = charges.clone();
        more.push(render(3, "c", Some("key_b")));
        more.push(purchase(1, 5));
        assert_eq!(payers(&more), vec![user(1), user(3)]);
        assert_eq!(purchasers(&more), vec![user(1)]);
        assert_eq!(keys(&more), vec![KeyId::new("key_a"), KeyId::new("key_b")]);
    }

    #[test]
    fn a_monthly_limit_refuses_exactly_the_charges_past_it_and_expiry_stops_the_key() {
        let limit = MonthlyCreditLimit::new(3).unwrap();
        let month = SpendMonth::of(T);
        let keys = HashMap::from([
            (
                KeyId::new("key_capped"),
                KeySnapshot {
                    monthly: Some(MonthlySnapshot {
                        limit,
                        month,
                        spent: Credits::new(1),
                    }),
                    ..KeySnapshot::plain(user(1), KeyState::Active)
                },
            ),
            (
                KeyId::new("key_expired"),
                KeySnapshot {
                    expires_at: Some(T),
                    ..KeySnapshot::plain(user(1), KeyState::Active)
                },
            ),
        ]);
        let charges: Vec<Charge> = ["a", "b", "c"]
            .iter()
            .map(|d| render(1, d, Some("key_capped")))
            .chain([render(1, "d", Some("key_expired"))])
            .collect();
        let plan = plan(&charges, accounts(&[(1, 100)]), &keys);
        assert_eq!(plan.outcomes[..2], [charged(1, 99), charged(1, 98)]);
        assert_eq!(
            plan.outcomes[2],
            ChargeOutcome::KeyLimitReached(crate::monthly_spend::KeyLimitReached {
                limit: Credits::new(3),
                spent: Credits::new(3),
                resets_at: month.resets_at(),
            })
        );
        assert_eq!(plan.outcomes[3], ChargeOutcome::KeyNotAccepted);
        assert_eq!(
            plan.key_spend,
            vec![(KeyId::new("key_capped"), month, Credits::new(3))]
        );
        assert_eq!(plan.ledger.len(), 2);
    }
}
