//! The [`LedgerWriter`] contract: charges decided in order against their user's balance, each
//! applied whole or not at all and never twice, concurrent ones exact, with the paying key
//! re-checked inside the charge.

use keys_domain::credits::{GrantAmount, InsufficientCredits};
use keys_domain::ports::{Charge, ChargeKind, ChargeOutcome, StateChange, StoreError};
use keys_domain::template::Document;
use keys_domain::{Credits, DocumentId, KeyId, KeyState, TemplateId, UserId};

use super::{Store, all_documents, assert_ledger_matches, at, document, insert, new_user, summary};

fn render(doc: &Document) -> Charge {
    Charge {
        user_id: doc.user_id.clone(),
        key_id: None,
        cost: Credits::new(1),
        kind: ChargeKind::Render(doc.clone()),
        at: doc.created_at,
    }
}

fn paid_with(mut charge: Charge, key: &KeyId) -> Charge {
    charge.key_id = Some(key.clone());
    charge
}

fn purchase(user: &UserId, template: &str, price: u64) -> Charge {
    Charge {
        user_id: user.clone(),
        key_id: None,
        cost: Credits::new(price),
        kind: ChargeKind::Purchase(TemplateId::new(template)),
        at: at(1),
    }
}

/// Renders `doc` for 1 credit, which must be charged (for cases about something else).
pub async fn render_paid(store: &impl Store, doc: Document) {
    let outcome = one(store, render(&doc)).await;
    assert!(
        matches!(outcome, ChargeOutcome::Charged { .. }),
        "{outcome:?}"
    );
}

async fn one(store: &impl Store, charge: Charge) -> ChargeOutcome {
    store.charge(charge).await.unwrap()
}

fn charged(charged: u64, balance: u64) -> ChargeOutcome {
    ChargeOutcome::Charged {
        charged: Credits::new(charged),
        balance: Credits::new(balance),
    }
}

fn short(required: u64, balance: u64) -> ChargeOutcome {
    ChargeOutcome::Insufficient(InsufficientCredits {
        required: Credits::new(required),
        balance: Credits::new(balance),
    })
}

async fn owns(store: &impl Store, user: &UserId, template: &str) -> bool {
    store
        .find_template(user, &TemplateId::new(template))
        .await
        .unwrap()
        .unwrap()
        .owned
}

pub async fn purchase_charges_once(store: impl Store) {
    let user = new_user(&store, 120).await;
    assert_eq!(
        one(&store, purchase(&user, "executive", 50)).await,
        charged(50, 70)
    );
    // Buying again (even if the caller read a stale "not owned") charges nothing.
    assert_eq!(
        one(&store, purchase(&user, "executive", 50)).await,
        charged(0, 70)
    );
    assert_eq!(
        one(&store, purchase(&user, "classic", 0)).await,
        charged(0, 70)
    );
    assert!(owns(&store, &user, "executive").await);
    let ledger = assert_ledger_matches(&store, &user).await;
    let reasons: Vec<(&str, i64)> = ledger
        .iter()
        .map(|e| (e.reason.as_str(), e.delta))
        .collect();
    assert_eq!(
        reasons,
        vec![("grant", 120), ("template_purchase:executive", -50)]
    );
}

pub async fn purchase_without_enough_credits_debits_and_records_nothing(store: impl Store) {
    let user = new_user(&store, 49).await;
    assert_eq!(
        one(&store, purchase(&user, "executive", 50)).await,
        short(50, 49)
    );
    assert_eq!(store.balance(&user).await.unwrap(), Some(Credits::new(49)));
    assert!(!owns(&store, &user, "executive").await);
    assert_eq!(assert_ledger_matches(&store, &user).await.len(), 1);
    let nobody = UserId::new("usr_nobody");
    assert_eq!(
        one(&store, purchase(&nobody, "executive", 50)).await,
        ChargeOutcome::UnknownUser
    );
}

pub async fn concurrent_purchases_charge_once(store: impl Store) {
    let user = new_user(&store, 500).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move { one(&store, purchase(&user, "executive", 50)).await })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        let ChargeOutcome::Charged { charged, .. } = t.await.unwrap() else {
            panic!("a purchase with enough credits was refused");
        };
        total += charged.get();
    }
    assert_eq!(total, 50);
    assert_eq!(store.balance(&user).await.unwrap(), Some(Credits::new(450)));
    assert_eq!(assert_ledger_matches(&store, &user).await.len(), 2);
}

pub async fn documents_are_charged_stored_and_private(store: impl Store) {
    let user = new_user(&store, 2).await;
    let other = new_user(&store, 5).await;
    let first = document(&user, at(1));
    let second = document(&user, at(2));
    assert_eq!(one(&store, render(&first)).await, charged(1, 1));
    assert_eq!(one(&store, render(&second)).await, charged(1, 0));
    let third = document(&user, at(3));
    assert_eq!(one(&store, render(&third)).await, short(1, 0));
    assert_eq!(
        store.find_document(&user, &third.id).await.unwrap(),
        None,
        "nothing stored"
    );
    let orphan = document(&UserId::new("usr_nobody"), at(4));
    assert_eq!(
        one(&store, render(&orphan)).await,
        ChargeOutcome::UnknownUser
    );

    assert_eq!(
        all_documents(&store, &user).await,
        vec![summary(&second), summary(&first)]
    );
    assert_eq!(
        store.find_document(&other, &first.id).await.unwrap(),
        None,
        "another user's"
    );
    let ledger = assert_ledger_matches(&store, &user).await;
    assert_eq!(
        ledger[1].reason,
        format!("document_render:{}", first.id.as_str())
    );
    assert_eq!(ledger[1].delta, -1);
    assert_eq!(store.balance(&other).await.unwrap(), Some(Credits::new(5)));
}

pub async fn concurrent_charges_never_overspend(store: impl Store) {
    let user = new_user(&store, 50).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move { one(&store, render(&document(&user, at(i)))).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            ChargeOutcome::Charged { .. } => ok += 1,
            ChargeOutcome::Insufficient(i) => assert_eq!(i.required, Credits::new(1)),
            other => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!(ok, 50);
    assert_eq!(store.balance(&user).await.unwrap(), Some(Credits::ZERO));
    let ledger = assert_ledger_matches(&store, &user).await;
    assert_eq!(ledger.len(), 51);
    assert_eq!(all_documents(&store, &user).await.len(), 50);
}

/// Many users at once: on PostgreSQL their batches run in several lanes side by side; each user
/// still sells exactly their credits, and their ledger's running balance follows its order.
pub async fn concurrent_charges_of_many_users_each_sell_exactly_their_credits(store: impl Store) {
    let mut users = Vec::new();
    for _ in 0..12 {
        users.push(new_user(&store, 5).await);
    }
    let mut tasks = Vec::new();
    for i in 0..10 {
        for user in &users {
            let (store, user) = (store.clone(), user.clone());
            tasks.push(tokio::spawn(async move {
                let outcome = one(&store, render(&document(&user, at(i)))).await;
                (user, outcome)
            }));
        }
    }
    let mut charged_per_user = std::collections::HashMap::new();
    for t in tasks {
        let (user, outcome) = t.await.unwrap();
        match outcome {
            ChargeOutcome::Charged { .. } => *charged_per_user.entry(user).or_insert(0) += 1,
            ChargeOutcome::Insufficient(_) => {}
            other => panic!("unexpected outcome: {other:?}"),
        }
    }
    for user in &users {
        assert_eq!(charged_per_user.get(user), Some(&5), "{user:?}");
        assert_eq!(store.balance(user).await.unwrap(), Some(Credits::ZERO));
        assert_eq!(assert_ledger_matches(&store, user).await.len(), 6);
        assert_eq!(all_documents(&store, user).await.len(), 5);
    }
}

pub async fn charges_are_decided_in_order_and_each_written_once(store: impl Store) {
    let ada = new_user(&store, 2).await;
    let bob = new_user(&store, 60).await;
    let docs: Vec<Document> = (0..3).map(|i| document(&ada, at(i))).collect();
    let bob_doc = document(&bob, at(5));
    let charges = vec![
        render(&docs[0]),
        purchase(&bob, "executive", 50),
        render(&docs[1]),
        render(&docs[2]),
        render(&bob_doc),
        purchase(&bob, "executive", 50),
    ];
    let mut outcomes = Vec::new();
    for charge in charges {
        outcomes.push(one(&store, charge).await);
    }
    assert_eq!(
        outcomes,
        vec![
            charged(1, 1),
            charged(50, 10),
            charged(1, 0),
            short(1, 0),
            charged(1, 9),
            charged(0, 9),
        ]
    );
    let ada_ledger = assert_ledger_matches(&store, &ada).await;
    assert_eq!(ada_ledger.len(), 3, "grant and two renders");
    let bob_ledger = assert_ledger_matches(&store, &bob).await;
    let afters: Vec<u64> = bob_ledger.iter().map(|e| e.balance_after.get()).collect();
    assert_eq!(afters, vec![60, 10, 9]);
    assert_eq!(all_documents(&store, &ada).await.len(), 2);
    assert_eq!(
        store.find_document(&ada, &docs[2].id).await.unwrap(),
        None,
        "the refused render stored nothing"
    );
    assert!(owns(&store, &bob, "executive").await);
}

pub async fn a_charge_that_breaks_a_constraint_applies_nothing(store: impl Store) {
    let user = new_user(&store, 10).await;
    let good = document(&user, at(1));
    render_paid(&store, good.clone()).await;
    // A second document with the same id breaks the documents' primary key.
    let mut poisoned = document(&user, at(2));
    poisoned.id = good.id.clone();
    let err = store.charge(render(&poisoned)).await.unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
    assert_eq!(store.balance(&user).await.unwrap(), Some(Credits::new(9)));
    assert_eq!(assert_ledger_matches(&store, &user).await.len(), 2);
    assert_eq!(all_documents(&store, &user).await.len(), 1);
}

/// Concurrent requests share batches; one that breaks a constraint fails alone, and every other
/// request is applied exactly once (the failed batch's requests are retried one by one).
pub async fn a_bad_charge_fails_only_its_own_request(store: impl Store) {
    let user = new_user(&store, 1_000).await;
    // Render 30 reuses a stored document's id, which breaks the documents' primary key.
    let stored_first = document(&user, at(-1));
    render_paid(&store, stored_first.clone()).await;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (store, user) = (store.clone(), user.clone());
            let taken = stored_first.id.clone();
            tokio::spawn(async move {
                let mut doc = document(&user, at(i));
                if i == 30 {
                    doc.id = taken;
                }
                let id = doc.id.clone();
                (id, store.charge(render(&doc)).await)
            })
        })
        .collect();
    let mut ok: Vec<DocumentId> = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            (id, Ok(ChargeOutcome::Charged { .. })) => ok.push(id),
            (_, Err(StoreError::Internal(_))) => failed += 1,
            other => panic!("unexpected answer: {:?}", other.1),
        }
    }
    assert_eq!((ok.len(), failed), (59, 1));
    assert_eq!(store.balance(&user).await.unwrap(), Some(Credits::new(940)));
    let ledger = assert_ledger_matches(&store, &user).await;
    assert_eq!(
        ledger.len(),
        61,
        "grant, the first render and 59 more, none twice"
    );
    let stored = all_documents(&store, &user).await;
    assert_eq!(stored.len(), 60);
    for id in &ok {
        assert!(stored.iter().any(|d| &d.id == id));
    }
}

/// Issue 11 item 11: a key revoked before the charge's transaction reads it pays for nothing,
/// even when the request was authenticated before the revocation.
pub async fn a_charge_with_a_key_revoked_meanwhile_is_refused(store: impl Store) {
    let user = new_user(&store, 10).await;
    let other = new_user(&store, 10).await;
    let live = insert(&store, &user, "live", at(0)).await;
    let gone = insert(&store, &user, "gone", at(0)).await;
    let theirs = insert(&store, &other, "theirs", at(0)).await;
    store
        .transition(
            &user,
            &gone.id,
            StateChange::new(KeyState::Active, KeyState::Revoked { revoked_at: at(50) }),
        )
        .await
        .unwrap();
    let expired = insert(&store, &user, "expired", at(0)).await;
    store
        .transition(
            &user,
            &expired.id,
            StateChange::new(KeyState::Active, KeyState::Expiring { revokes_at: at(60) }),
        )
        .await
        .unwrap();

    let doc = |ms| document(&user, at(ms));
    let charges = vec![
        paid_with(render(&doc(10)), &gone.id),
        paid_with(render(&doc(10)), &theirs.id),
        paid_with(render(&doc(10)), &KeyId::new("key_unknown")),
        paid_with(purchase(&user, "executive", 5), &gone.id),
        paid_with(render(&doc(70)), &expired.id),
        paid_with(render(&doc(59)), &expired.id),
        paid_with(render(&doc(10)), &live.id),
    ];
    let mut outcomes = Vec::new();
    for charge in charges {
        outcomes.push(one(&store, charge).await);
    }
    assert_eq!(
        outcomes,
        vec![
            ChargeOutcome::KeyNotAccepted,
            ChargeOutcome::KeyNotAccepted,
            ChargeOutcome::KeyNotAccepted,
            ChargeOutcome::KeyNotAccepted,
            ChargeOutcome::KeyNotAccepted,
            charged(1, 9),
            charged(1, 8),
        ]
    );
    assert_eq!(assert_ledger_matches(&store, &user).await.len(), 3);
    assert_eq!(all_documents(&store, &user).await.len(), 2);
}

/// A balance read right after a charge was answered shows that charge.
pub async fn balance_reads_show_every_acknowledged_debit(store: impl Store) {
    let user = new_user(&store, 5).await;
    assert_eq!(store.balance(&user).await.unwrap(), Some(Credits::new(5)));
    for left in (0_u32..5).rev() {
        let doc = document(&user, at(i64::from(left)));
        assert_eq!(one(&store, render(&doc)).await, charged(1, u64::from(left)));
        assert_eq!(
            store.balance(&user).await.unwrap(),
            Some(Credits::new(u64::from(left)))
        );
    }
    let seven = GrantAmount::new(7).unwrap();
    let granted = store.grant(&user, seven, at(9)).await.unwrap();
    assert_eq!(granted, Credits::new(7));
    assert_eq!(store.balance(&user).await.unwrap(), Some(Credits::new(7)));
}

/// A key that paid and is revoked afterwards pays for nothing more: the next batch reads the
/// revocation (on PostgreSQL a lane plans from the key's columns it last read, and must find
/// them changed).
pub async fn a_key_revoked_after_it_paid_pays_for_nothing_more(store: impl Store) {
    let user = new_user(&store, 10).await;
    let key = insert(&store, &user, "paying", at(0)).await;
    let doc = |ms| paid_with(render(&document(&user, at(ms))), &key.id);
    assert_eq!(one(&store, doc(10)).await, charged(1, 9));
    assert_eq!(one(&store, doc(20)).await, charged(1, 8));
    store
        .transition(
            &user,
            &key.id,
            StateChange::new(KeyState::Active, KeyState::Revoked { revoked_at: at(30) }),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one(&store, doc(40)).await, ChargeOutcome::KeyNotAccepted);
    assert_eq!(assert_ledger_matches(&store, &user).await.len(), 3);
    assert_eq!(all_documents(&store, &user).await.len(), 2);
}

/// Credits granted between two charges are spent by the next one: its batch reads the balance
/// the grant left (on PostgreSQL a lane plans from the balance it last wrote, and must find it
/// changed).
pub async fn credits_granted_between_charges_are_spent_by_the_next(store: impl Store) {
    let user = new_user(&store, 1).await;
    let doc = |ms| render(&document(&user, at(ms)));
    assert_eq!(one(&store, doc(1)).await, charged(1, 0));
    assert_eq!(one(&store, doc(2)).await, short(1, 0));
    store
        .grant(&user, GrantAmount::new(2).unwrap(), at(3))
        .await
        .unwrap();
    assert_eq!(one(&store, doc(4)).await, charged(1, 1));
    assert_eq!(one(&store, doc(5)).await, charged(1, 0));
    assert_eq!(one(&store, doc(6)).await, short(1, 0));
    // The first credit, three renders and the grant.
    assert_eq!(assert_ledger_matches(&store, &user).await.len(), 5);
    assert_eq!(all_documents(&store, &user).await.len(), 3);
}
