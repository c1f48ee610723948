//! Key controls in the store: written and read whole, changed with an `updated` event, a
//! monthly limit decided in the debit's transaction, and expiry reminders recorded once.

use keys_domain::allowed_networks::AllowedNetworks;
use keys_domain::key_controls::KeyControls;
use keys_domain::monthly_spend::{MonthlyCreditLimit, SpendMonth};
use keys_domain::ports::{
    Charge, ChargeKind, ChargeOutcome, KeyUpdate, QueuedWithChange, UpdateKeyStoreError,
};
use keys_domain::random::OsRandom;
use keys_domain::scope::Scopes;
use keys_domain::{
    Actor, AlertId, ApiKey, Credits, EventDetail, KeyEvent, KeyName, PageLimit, PageRequest,
};

use super::{LIMITS, Store, T0, at, document, email, new_key, new_user};

fn controls(limit: Option<u64>, expires_in_ms: Option<i64>) -> KeyControls {
    KeyControls {
        expires_at: expires_in_ms.map(at),
        allowed_networks: AllowedNetworks::parse(["10.0.0.0/8", "2001:db8::/48"]).ok(),
        monthly_credit_limit: limit.map(|n| MonthlyCreditLimit::new(n).unwrap()),
        scopes: Scopes::parse(["documents:write"]).unwrap(),
    }
}

async fn insert_with(store: &impl Store, controls: KeyControls) -> ApiKey {
    let user = new_user(store, 1_000).await;
    let (mut key, _) = new_key(&user, "controlled", T0);
    key.controls = controls;
    store.insert(key, LIMITS, T0).await.unwrap()
}

fn render(key: &ApiKey, ms: i64) -> Charge {
    let doc = document(&key.user_id, at(ms));
    Charge {
        user_id: key.user_id.clone(),
        key_id: Some(key.id.clone()),
        cost: Credits::new(1),
        kind: ChargeKind::Render(doc.clone()),
        at: doc.created_at,
    }
}

fn updated(key: &ApiKey) -> KeyEvent {
    KeyEvent {
        key_id: key.id.clone(),
        actor: Actor::User,
        at: at(5),
        detail: EventDetail::Updated {
            changes: vec![("monthly_credit_limit".into(), Some("2".into()))],
        },
    }
}

pub async fn controls_round_trip_and_change_with_an_updated_event(store: impl Store) {
    let wanted = controls(Some(500), Some(3_600_000));
    let key = insert_with(&store, wanted.clone()).await;
    assert_eq!(key.controls, wanted);
    let found = store.find_by_hash(&key.hash).await.unwrap().unwrap();
    assert_eq!(found.controls, wanted);

    let update = KeyUpdate {
        name: Some(KeyName::parse("renamed").unwrap()),
        controls: KeyControls::default(),
        event: updated(&key),
    };
    let changed = store
        .update(&key.user_id, &key.id, update)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.name.as_str(), "renamed");
    assert_eq!(changed.controls, KeyControls::default());
    let found = store.find(&key.user_id, &key.id).await.unwrap().unwrap();
    assert_eq!(
        (found.name, found.controls),
        (changed.name, KeyControls::default())
    );
    let events = store
        .events(&key.id, &PageRequest::first(PageLimit::MAX))
        .await
        .unwrap();
    assert_eq!(events.items[0].event, updated(&key));

    // Another user's key is not found; a taken name is refused and changes nothing.
    let stranger = new_user(&store, 0).await;
    let none = KeyUpdate {
        name: None,
        controls: KeyControls::default(),
        event: updated(&key),
    };
    assert_eq!(store.update(&stranger, &key.id, none).await.unwrap(), None);
    let (other, _) = new_key(&key.user_id, "taken", T0);
    store.insert(other, LIMITS, T0).await.unwrap();
    let clash = KeyUpdate {
        name: Some(KeyName::parse("taken").unwrap()),
        controls: wanted,
        event: updated(&key),
    };
    assert_eq!(
        store.update(&key.user_id, &key.id, clash).await,
        Err(UpdateKeyStoreError::DuplicateName)
    );
    let found = store.find(&key.user_id, &key.id).await.unwrap().unwrap();
    assert_eq!(found.controls, KeyControls::default());
}

pub async fn a_monthly_limit_is_exact_under_concurrent_charges(store: impl Store) {
    let key = insert_with(&store, controls(Some(5), None)).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, charge) = (store.clone(), render(&key, i));
            tokio::spawn(async move { store.charge(charge).await.unwrap() })
        })
        .collect();
    let mut charged = 0;
    for task in tasks {
        match task.await.unwrap() {
            ChargeOutcome::Charged { .. } => charged += 1,
            ChargeOutcome::KeyLimitReached(r) => {
                assert_eq!((r.limit, r.spent), (Credits::new(5), Credits::new(5)));
                assert_eq!(r.resets_at, SpendMonth::of(T0).resets_at());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(charged, 5);
    assert_eq!(
        store.spent_in(&key.id, SpendMonth::of(T0)).await.unwrap(),
        Credits::new(5)
    );
    super::assert_ledger_matches(&store, &key.user_id).await;
}

pub async fn a_limit_set_on_a_key_that_already_paid_applies_to_its_next_charge(store: impl Store) {
    let key = insert_with(&store, KeyControls::default()).await;
    // Paid without a limit (on PostgreSQL its lane now remembers the key).
    for ms in 0..2 {
        assert!(matches!(
            store.charge(render(&key, ms)).await.unwrap(),
            ChargeOutcome::Charged { .. }
        ));
    }
    let limited = KeyUpdate {
        name: None,
        controls: controls(Some(1), None),
        event: updated(&key),
    };
    store
        .update(&key.user_id, &key.id, limited)
        .await
        .unwrap()
        .unwrap();
    // Spend counts from when the limit was set.
    assert!(matches!(
        store.charge(render(&key, 10)).await.unwrap(),
        ChargeOutcome::Charged { .. }
    ));
    assert!(matches!(
        store.charge(render(&key, 11)).await.unwrap(),
        ChargeOutcome::KeyLimitReached(_)
    ));
}

pub async fn a_charge_after_the_expiry_is_refused(store: impl Store) {
    let key = insert_with(&store, controls(None, Some(1_000))).await;
    assert!(matches!(
        store.charge(render(&key, 999)).await.unwrap(),
        ChargeOutcome::Charged { .. }
    ));
    assert_eq!(
        store.charge(render(&key, 1_000)).await.unwrap(),
        ChargeOutcome::KeyNotAccepted
    );
}

pub async fn expiring_keys_are_listed_and_each_reminder_recorded_once(store: impl Store) {
    let day = 86_400_000;
    let soon = insert_with(&store, controls(None, Some(3 * day))).await;
    let later = insert_with(&store, controls(None, Some(30 * day))).await;
    let past = insert_with(&store, controls(None, Some(10))).await;
    let listed = store
        .expiring_before(at(20), at(7 * day), 10)
        .await
        .unwrap();
    let ids: Vec<_> = listed.iter().map(|k| k.id.clone()).collect();
    assert_eq!(ids, vec![soon.id.clone()], "not {later:?} nor {past:?}");
    assert_eq!(listed[0].reminded, None);
    assert_eq!(listed[0].expires_at, at(3 * day));

    let remind = |expected, days| {
        let store = store.clone();
        let key = soon.id.clone();
        async move {
            let event = KeyEvent {
                key_id: key.clone(),
                actor: Actor::System,
                at: at(20),
                detail: EventDetail::ExpiryReminder {
                    expires_at: at(3 * day),
                    days_before: days,
                },
            };
            let queued = QueuedWithChange {
                id: AlertId::generate(&OsRandom),
                email: email(days as usize),
            };
            store
                .record_reminder(&key, expected, days, event, queued)
                .await
                .unwrap()
        }
    };
    let (a, b) = tokio::join!(remind(None, 7), remind(None, 7));
    assert!(a ^ b, "exactly one of two concurrent reminders is recorded");
    let listed = store
        .expiring_before(at(20), at(7 * day), 10)
        .await
        .unwrap();
    assert_eq!(listed[0].reminded, Some(7));
    assert!(remind(Some(7), 1).await);
    assert!(!remind(Some(7), 1).await);
    let events = store
        .events(&soon.id, &PageRequest::first(PageLimit::MAX))
        .await
        .unwrap();
    let reminders = events
        .items
        .iter()
        .filter(|e| matches!(e.event.detail, EventDetail::ExpiryReminder { .. }))
        .count();
    assert_eq!(reminders, 2);
}
