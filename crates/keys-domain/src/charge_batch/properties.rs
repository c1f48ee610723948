//! [`plan`] against a deliberately simple model: the charges taken one at a time against plain
//! maps of balances, owned templates and key spend, following the rules documented on
//! [`plan`], [`KeySnapshot`], [`ChargeKind`] and [`crate::credits::debit`].

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;

use super::{Account, BatchPlan, KeySnapshot, MonthlySnapshot, plan};
use crate::credits::{Credits, InsufficientCredits, LedgerEntry};
use crate::ids::{DocumentId, KeyId, TemplateId, UserId};
use crate::key_state::KeyState;
use crate::monthly_spend::{KeyLimitReached, MonthlyCreditLimit, SpendMonth};
use crate::ports::{Charge, ChargeKind, ChargeOutcome};
use crate::template::Document;
use crate::timestamp::Timestamp;

/// 2027-01-01T00:00:00Z. Every instant is a few milliseconds either side of it, so a batch can
/// straddle two spend months and a key can be revoked or expire in the middle of a batch.
const NEW_YEAR: i64 = 1_798_761_600_000;
const USERS: usize = 4;
const KEYS_PER_USER: usize = 3;
const TEMPLATES: [&str; 3] = ["t0", "t1", "t2"];
const MAX_BALANCE: u64 = Credits::MAX_BALANCE.get();

fn at(offset: i64) -> Timestamp {
    Timestamp::from_millis(NEW_YEAR + offset)
}

fn user(u: usize) -> UserId {
    UserId::new(format!("usr_{u}"))
}

fn key_id(u: usize, k: usize) -> KeyId {
    KeyId::new(format!("key_{u}_{k}"))
}

/// A user as generated: `None` does not exist; else the balance and which templates it owns.
type GenUser = Option<(u64, [bool; TEMPLATES.len()])>;

/// A key as generated: state, expiry and limit; its owner is given by where it is generated.
type GenKey = (KeyState, Option<Timestamp>, Option<MonthlySnapshot>);

/// The key a charge presents.
#[derive(Debug, Clone, Copy)]
enum KeyChoice {
    None,
    /// One of the payer's own keys.
    Own(usize),
    /// Any user's key (sometimes the payer's own).
    Of(usize, usize),
    /// A key that does not exist.
    Missing,
}

/// A charge as generated: payer, key, cost, the template bought (`None`: a render), offset.
type GenCharge = (usize, KeyChoice, u64, Option<usize>, i64);

fn offset() -> impl Strategy<Value = i64> {
    -6_i64..6
}

fn balance() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0_u64..=12, 1 => Just(MAX_BALANCE), 1 => 0..=MAX_BALANCE]
}

fn cost() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => Just(0_u64),
        6 => 1_u64..=3,
        1 => Just(MAX_BALANCE),
        1 => 0..=MAX_BALANCE,
        1 => Just(u64::MAX),
    ]
}

fn key_state() -> impl Strategy<Value = KeyState> {
    prop_oneof![
        6 => Just(KeyState::Active),
        1 => offset().prop_map(|o| KeyState::Expiring { revokes_at: at(o) }),
        1 => offset().prop_map(|o| KeyState::Revoked { revoked_at: at(o) }),
    ]
}

/// A limit, read in December or January, with what was spent then (sometimes already past the
/// limit: one lowered since).
fn monthly() -> impl Strategy<Value = Option<MonthlySnapshot>> {
    let limit = prop_oneof![3 => 1_u64..=6, 1 => Just(MonthlyCreditLimit::MAX)];
    prop_oneof![
        1 => Just(None),
        1 => (limit, any::<bool>(), 0_u64..=8).prop_map(|(limit, december, spent)| {
            Some(MonthlySnapshot {
                limit: MonthlyCreditLimit::new(limit).unwrap(),
                month: SpendMonth::of(at(if december { -1 } else { 0 })),
                spent: Credits::new(spent),
            })
        }),
    ]
}

fn key() -> impl Strategy<Value = GenKey> {
    let expires_at = prop_oneof![4 => Just(None), 1 => offset().prop_map(|o| Some(at(o)))];
    (key_state(), expires_at, monthly())
}

fn key_choice() -> impl Strategy<Value = KeyChoice> {
    prop_oneof![
        2 => Just(KeyChoice::None),
        6 => (0..KEYS_PER_USER).prop_map(KeyChoice::Own),
        1 => (0..USERS, 0..KEYS_PER_USER).prop_map(|(u, k)| KeyChoice::Of(u, k)),
        1 => Just(KeyChoice::Missing),
    ]
}

fn charge() -> impl Strategy<Value = GenCharge> {
    let bought = prop_oneof![3 => Just(None), 1 => (0..TEMPLATES.len()).prop_map(Some)];
    (0..USERS, key_choice(), cost(), bought, offset())
}

fn accounts_of(users: &[GenUser]) -> HashMap<UserId, Account> {
    let mut out = HashMap::new();
    for (u, found) in users.iter().enumerate() {
        if let Some((balance, owned)) = found {
            let owned = TEMPLATES
                .iter()
                .zip(owned)
                .filter(|(_, o)| **o)
                .map(|(t, _)| TemplateId::new(*t))
                .collect();
            let account = Account {
                balance: Credits::new(*balance),
                owned,
            };
            out.insert(user(u), account);
        }
    }
    out
}

fn keys_of(keys: &[Vec<GenKey>]) -> HashMap<KeyId, KeySnapshot> {
    let mut out = HashMap::new();
    for (u, of_user) in keys.iter().enumerate() {
        for (k, (state, expires_at, monthly)) in of_user.iter().enumerate() {
            let snapshot = KeySnapshot {
                user_id: user(u),
                state: *state,
                expires_at: *expires_at,
                monthly: *monthly,
            };
            out.insert(key_id(u, k), snapshot);
        }
    }
    out
}

fn charges_of(charges: &[GenCharge]) -> Vec<Charge> {
    charges
        .iter()
        .enumerate()
        .map(|(i, &(u, choice, cost, bought, offset))| {
            let key = match choice {
                KeyChoice::None => None,
                KeyChoice::Own(k) => Some(key_id(u, k)),
                KeyChoice::Of(owner, k) => Some(key_id(owner, k)),
                KeyChoice::Missing => Some(KeyId::new("key_missing")),
            };
            let kind = match bought {
                Some(t) => ChargeKind::Purchase(TemplateId::new(TEMPLATES[t])),
                None => ChargeKind::Render(Document {
                    id: DocumentId::new(format!("doc_{i}")),
                    user_id: user(u),
                    template_id: TemplateId::new("classic"),
                    content: String::new(),
                    created_at: at(offset),
                }),
            };
            Charge {
                user_id: user(u),
                key_id: key,
                cost: Credits::new(cost),
                kind,
                at: at(offset),
            }
        })
        .collect()
}

/// The model: what a batch does, one charge after the other, on plain values.
#[derive(Default)]
struct Model {
    balances: BTreeMap<UserId, u64>,
    owned: HashSet<(UserId, TemplateId)>,
    spent: BTreeMap<(KeyId, SpendMonth), u64>,
    outcomes: Vec<ChargeOutcome>,
    ledger: Vec<LedgerEntry>,
    documents: Vec<Document>,
    ownership: Vec<(UserId, TemplateId, Timestamp)>,
}

/// A key's lifecycle lets it pay at `now`: active, or expiring until `revokes_at`; a stored
/// revocation is final whatever its time.
fn live(state: KeyState, now: Timestamp) -> bool {
    match state {
        KeyState::Active => true,
        KeyState::Expiring { revokes_at } => now < revokes_at,
        KeyState::Revoked { .. } => false,
    }
}

impl Model {
    fn new(accounts: &HashMap<UserId, Account>) -> Self {
        let mut model = Self::default();
        for (u, account) in accounts {
            model.balances.insert(u.clone(), account.balance.get());
            for t in &account.owned {
                model.owned.insert((u.clone(), t.clone()));
            }
        }
        model
    }

    fn run(&mut self, charges: &[Charge], keys: &HashMap<KeyId, KeySnapshot>) {
        for c in charges {
            let outcome = self.charge(c, keys);
            self.outcomes.push(outcome);
        }
    }

    /// In order: the user exists; its key (if any) is its own, live and not expired at the
    /// charge; an owned template costs 0; the balance covers the cost; a limited key's spend in
    /// the charge's month (what was read for the month it was read in, else 0) plus a non-zero
    /// cost stays within the limit. Only then does anything change.
    fn charge(&mut self, c: &Charge, keys: &HashMap<KeyId, KeySnapshot>) -> ChargeOutcome {
        let Some(&balance) = self.balances.get(&c.user_id) else {
            return ChargeOutcome::UnknownUser;
        };
        let mut limit = None;
        if let Some(id) = &c.key_id {
            match keys.get(id) {
                Some(k)
                    if k.user_id == c.user_id
                        && live(k.state, c.at)
                        && k.expires_at.is_none_or(|e| c.at < e) =>
                {
                    limit = k.monthly.map(|m| (id.clone(), m));
                }
                _ => return ChargeOutcome::KeyNotAccepted,
            }
        }
        let new_template = match &c.kind {
            ChargeKind::Purchase(t) => !self.owned.contains(&(c.user_id.clone(), t.clone())),
            ChargeKind::Render(_) => false,
        };
        let cost = match c.kind {
            ChargeKind::Purchase(_) if !new_template => 0,
            _ => c.cost.get(),
        };
        if cost > balance {
            return ChargeOutcome::Insufficient(InsufficientCredits {
                required: Credits::new(cost),
                balance: Credits::new(balance),
            });
        }
        let month = SpendMonth::of(c.at);
        if let Some((id, m)) = limit.filter(|_| cost > 0) {
            let read = if m.month == month { m.spent.get() } else { 0 };
            let before = *self.spent.get(&(id.clone(), month)).unwrap_or(&read);
            if u128::from(before) + u128::from(cost) > u128::from(m.limit.credits().get()) {
                return ChargeOutcome::KeyLimitReached(KeyLimitReached {
                    limit: m.limit.credits(),
                    spent: Credits::new(before),
                    resets_at: month.resets_at(),
                });
            }
            self.spent.insert((id, month), before + cost);
        }
        let after = balance - cost;
        self.balances.insert(c.user_id.clone(), after);
        let reason = match &c.kind {
            ChargeKind::Render(d) => {
                self.documents.push(d.clone());
                format!("document_render:{}", d.id.as_str())
            }
            ChargeKind::Purchase(t) => {
                if new_template {
                    self.owned.insert((c.user_id.clone(), t.clone()));
                    self.ownership.push((c.user_id.clone(), t.clone(), c.at));
                }
                format!("template_purchase:{}", t.as_str())
            }
        };
        if cost > 0 {
            self.ledger.push(LedgerEntry {
                user_id: c.user_id.clone(),
                delta: -i64::try_from(cost).unwrap(),
                balance_after: Credits::new(after),
                reason,
                created_at: c.at,
            });
        }
        ChargeOutcome::Charged {
            charged: Credits::new(cost),
            balance: Credits::new(after),
        }
    }
}

/// Replays the plan's ledger from the starting balances: every entry is a debit that takes its
/// user's running balance exactly to its `balance_after`, never below zero.
fn assert_ledger_never_goes_negative(
    plan: &BatchPlan,
    accounts: &HashMap<UserId, Account>,
) -> Result<(), TestCaseError> {
    let mut running: HashMap<&UserId, i128> = accounts
        .iter()
        .map(|(u, a)| (u, i128::from(a.balance.get())))
        .collect();
    for entry in &plan.ledger {
        prop_assert!(entry.delta < 0, "not a debit: {:?}", entry);
        let balance = running.get_mut(&entry.user_id).unwrap();
        *balance += i128::from(entry.delta);
        prop_assert!(*balance >= 0, "negative balance: {:?}", entry);
        prop_assert_eq!(*balance, i128::from(entry.balance_after.get()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `plan` decides a random batch (a few users, one missing; their own, other users',
    /// revoked, expiring, expired, limited and missing keys; costs from 0 to 2^64 − 1; renders
    /// and purchases of owned and new templates; instants either side of a month's end) exactly
    /// as the sequential model does: the same outcome for every charge (so the same
    /// charged / insufficient / refused split), no balance ever below zero, the final balance
    /// of exactly the users whose balance changed, the same key spend, and one ledger entry per
    /// paid charge (the same entries, count and sum), document and new ownership.
    #[test]
    fn plan_decides_like_the_sequential_model(
        users in proptest::collection::vec(
            proptest::option::weighted(0.85, (balance(), any::<[bool; TEMPLATES.len()]>())),
            USERS,
        ),
        keys in proptest::collection::vec(
            proptest::collection::vec(key(), KEYS_PER_USER),
            USERS,
        ),
        charges in proptest::collection::vec(charge(), 0..40),
    ) {
        let accounts = accounts_of(&users);
        let keys = keys_of(&keys);
        let charges = charges_of(&charges);
        let plan = plan(&charges, accounts.clone(), &keys);
        let mut model = Model::new(&accounts);
        model.run(&charges, &keys);

        prop_assert_eq!(&plan.outcomes, &model.outcomes);
        assert_ledger_never_goes_negative(&plan, &accounts)?;

        let changed: Vec<(UserId, Credits)> = model
            .balances
            .iter()
            .filter(|(u, b)| accounts[*u].balance.get() != **b)
            .map(|(u, b)| ((*u).clone(), Credits::new(*b)))
            .collect();
        prop_assert_eq!(&plan.balances, &changed);

        let spent: Vec<(KeyId, SpendMonth, Credits)> = model
            .spent
            .iter()
            .map(|((k, m), s)| (k.clone(), *m, Credits::new(*s)))
            .collect();
        prop_assert_eq!(&plan.key_spend, &spent);

        // One ledger entry per charge that moved credits, carrying what it was charged.
        let paid: Vec<u64> = plan
            .outcomes
            .iter()
            .filter_map(|o| match o {
                ChargeOutcome::Charged { charged, .. } if *charged > Credits::ZERO => {
                    Some(charged.get())
                }
                _ => None,
            })
            .collect();
        prop_assert_eq!(plan.ledger.len(), paid.len());
        let debited: i128 = plan.ledger.iter().map(|e| i128::from(e.delta)).sum();
        let charged: i128 = paid.iter().map(|c| i128::from(*c)).sum();
        prop_assert_eq!(debited, -charged);
        prop_assert_eq!(&plan.ledger, &model.ledger);

        prop_assert_eq!(&plan.documents, &model.documents);
        prop_assert_eq!(&plan.ownership, &model.ownership);
    }
}
