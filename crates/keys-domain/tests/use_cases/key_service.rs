//! `KeyService`: issue, get, revoke, rotate — what reaches the store and the notifier.

use std::sync::{Arc, Mutex};

use keys_domain::api_key::KeyLimits;
use keys_domain::key_controls::{ControlsPatch, KeyControls};
use keys_domain::key_state::GracePeriod;
use keys_domain::monthly_spend::MonthlyCreditLimit;
use keys_domain::ports::{
    InsertKeyError, MockKeyStore, MockRevocationNotifier, RotateKeyStoreError, Rotation, StoreError,
};
use keys_domain::use_cases::{
    IssueKeyError, KeyLookupError, KeyService, RotateKeyError, UpdateKeyError,
};
use keys_domain::{
    Actor, ApiKey, ApiKeySecret, EventDetail, KeyState, NewApiKey, RevocationReason,
};

use crate::support::{SeqRandom, T0, clock_at, name, other_user, secs, stored_key, user};

fn service(store: MockKeyStore, notifier: MockRevocationNotifier) -> KeyService {
    KeyService {
        store: Arc::new(store),
        notifier: Arc::new(notifier),
        clock: Arc::new(clock_at(T0)),
        random: Arc::new(SeqRandom::new(42)),
        limits: KeyLimits::default(),
    }
}

fn silent_notifier() -> MockRevocationNotifier {
    let mut n = MockRevocationNotifier::new();
    n.expect_key_changed().never();
    n
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("connection refused".into())
}

fn grace(s: i64) -> GracePeriod {
    GracePeriod::from_seconds(s).unwrap()
}

// ---- issue ----

#[test]
fn issue_stores_only_hash_and_preview_and_shows_the_secret_once() {
    let seen: Arc<Mutex<Option<NewApiKey>>> = Arc::default();
    let mut store = MockKeyStore::new();
    let sink = Arc::clone(&seen);
    store
        .expect_insert()
        .withf(|_, limits, now| *limits == KeyLimits::default() && *now == T0)
        .times(1)
        .returning(move |new, _, _| {
            *sink.lock().unwrap() = Some(new.clone());
            Ok(new.into_key())
        });
    let svc = service(store, silent_notifier());

    let issued =
        futures_executor::block_on(svc.issue(&user(), name("ci-bot"), KeyControls::default()))
            .unwrap();

    let new = seen.lock().unwrap().clone().unwrap();
    let secret = &issued.secret;
    assert_eq!(ApiKeySecret::parse(secret.expose()), Ok(secret.clone()));
    assert_eq!(new.hash, secret.hash());
    assert_eq!(new.preview, secret.preview());
    assert_eq!(new.user_id, user());
    assert_eq!(new.name.as_str(), "ci-bot");
    assert_eq!(new.created_at, T0);
    assert!(new.id.as_str().starts_with("key_"));
    // Nothing handed to the store carries the key itself.
    assert!(!format!("{new:?}").contains(secret.expose()));
    assert_eq!(issued.key.hash, secret.hash());
    assert_eq!(issued.key.state, KeyState::Active);
    assert!(!format!("{issued:?}").contains(secret.expose()));
}

fn issue_with_store_error(err: InsertKeyError) -> IssueKeyError {
    let mut store = MockKeyStore::new();
    store
        .expect_insert()
        .times(1)
        .returning(move |_, _, _| Err(err.clone()));
    let svc = service(store, silent_notifier());
    futures_executor::block_on(svc.issue(&user(), name("ci-bot"), KeyControls::default()))
        .unwrap_err()
}

#[test]
fn issue_maps_store_errors() {
    assert_eq!(
        issue_with_store_error(InsertKeyError::DuplicateName),
        IssueKeyError::DuplicateName
    );
    assert_eq!(
        issue_with_store_error(InsertKeyError::TooManyKeys),
        IssueKeyError::TooManyKeys(25)
    );
    assert_eq!(
        issue_with_store_error(InsertKeyError::UnknownUser),
        IssueKeyError::UnknownUser
    );
    assert_eq!(
        issue_with_store_error(InsertKeyError::Store(unavailable())),
        IssueKeyError::Store(unavailable())
    );
}

// ---- get / list ----

#[test]
fn get_of_another_users_key_is_not_found() {
    let (key, _) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let id = key.id.clone();
    let mut store = MockKeyStore::new();
    store
        .expect_find()
        .withf(|u, _| *u == other_user())
        .times(1)
        .returning(|_, _| Ok(None));
    let svc = service(store, silent_notifier());
    assert_eq!(
        futures_executor::block_on(svc.get(&other_user(), &id)),
        Err(KeyLookupError::NotFound)
    );
}

#[test]
fn get_passes_store_unavailability_through() {
    let (key, _) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let mut store = MockKeyStore::new();
    store.expect_find().returning(|_, _| Err(unavailable()));
    let svc = service(store, silent_notifier());
    assert_eq!(
        futures_executor::block_on(svc.get(&user(), &key.id)),
        Err(KeyLookupError::Store(unavailable()))
    );
}

// ---- revoke ----

#[test]
fn revoke_active_key_transitions_once_and_notifies_with_its_hash() {
    let (key, _) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let hash = key.hash;
    let revoked = KeyState::Revoked { revoked_at: T0 };
    let mut store = MockKeyStore::new();
    let found = key.clone();
    store
        .expect_find()
        .times(1)
        .returning(move |_, _| Ok(Some(found.clone())));
    let after = ApiKey {
        state: revoked,
        ..key.clone()
    };
    store
        .expect_transition()
        .withf(move |u, _, c| {
            *u == user()
                && c.expected == KeyState::Active
                && c.to == revoked
                && c.reason == Some(RevocationReason::User)
                && c.events.len() == 1
                && c.events[0].actor == Actor::User
                && c.events[0].detail
                    == EventDetail::Revoked {
                        reason: RevocationReason::User,
                    }
                && c.email.is_none()
        })
        .times(1)
        .returning(move |_, _, _| Ok(Some(after.clone())));
    let mut notifier = MockRevocationNotifier::new();
    notifier
        .expect_key_changed()
        .withf(move |h| *h == hash)
        .times(1)
        .return_const(());
    let svc = service(store, notifier);

    let out = futures_executor::block_on(svc.revoke(&user(), &key.id)).unwrap();
    assert_eq!(out.state, revoked);
}

#[test]
fn revoke_is_idempotent_on_a_revoked_key() {
    let earlier = KeyState::Revoked {
        revoked_at: T0.minus(secs(3600)),
    };
    let (key, _) = stored_key(&user(), "ci-bot", earlier, 1);
    let mut store = MockKeyStore::new();
    let found = key.clone();
    store
        .expect_find()
        .times(1)
        .returning(move |_, _| Ok(Some(found.clone())));
    store.expect_transition().never();
    let svc = service(store, silent_notifier());

    let out = futures_executor::block_on(svc.revoke(&user(), &key.id)).unwrap();
    assert_eq!(out, key);
}

#[test]
fn revoke_re_reads_and_decides_again_when_the_compare_and_set_loses() {
    // A rotation lands between our read (active) and our write: the store answers with the key
    // now expiring; the next round revokes from that fresh state (no second read needed).
    let (key, _) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let hash = key.hash;
    let expiring = KeyState::Expiring {
        revokes_at: T0.plus(secs(600)),
    };
    let revoked = KeyState::Revoked { revoked_at: T0 };
    let mut seq = mockall::Sequence::new();
    let mut store = MockKeyStore::new();
    let first = key.clone();
    store
        .expect_find()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _| Ok(Some(first.clone())));
    let raced = ApiKey {
        state: expiring,
        ..key.clone()
    };
    store
        .expect_transition()
        .withf(move |_, _, c| c.expected == KeyState::Active && c.to == revoked)
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _, _| Ok(Some(raced.clone())));
    let done = ApiKey {
        state: revoked,
        ..key.clone()
    };
    store
        .expect_transition()
        .withf(move |_, _, c| c.expected == expiring && c.to == revoked)
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _, _| Ok(Some(done.clone())));
    let mut notifier = MockRevocationNotifier::new();
    notifier
        .expect_key_changed()
        .withf(move |h| *h == hash)
        .times(1)
        .return_const(());
    let svc = service(store, notifier);

    let out = futures_executor::block_on(svc.revoke(&user(), &key.id)).unwrap();
    assert_eq!(out.state, revoked);
}

#[test]
fn revoke_that_loses_to_a_concurrent_revoke_returns_it_without_notifying() {
    let (key, _) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let theirs = ApiKey {
        state: KeyState::Revoked {
            revoked_at: T0.minus(secs(1)),
        },
        ..key.clone()
    };
    let mut seq = mockall::Sequence::new();
    let mut store = MockKeyStore::new();
    let first = key.clone();
    store
        .expect_find()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _| Ok(Some(first.clone())));
    let answer = theirs.clone();
    store
        .expect_transition()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _, _| Ok(Some(answer.clone())));
    let svc = service(store, silent_notifier());

    let out = futures_executor::block_on(svc.revoke(&user(), &key.id)).unwrap();
    assert_eq!(out, theirs);
}

#[test]
fn revoke_of_unknown_or_vanished_key_is_not_found() {
    let (key, _) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let mut store = MockKeyStore::new();
    store.expect_find().times(1).returning(|_, _| Ok(None));
    store.expect_transition().never();
    let svc = service(store, silent_notifier());
    assert_eq!(
        futures_executor::block_on(svc.revoke(&other_user(), &key.id)),
        Err(KeyLookupError::NotFound)
    );

    let mut store = MockKeyStore::new();
    let found = key.clone();
    store
        .expect_find()
        .returning(move |_, _| Ok(Some(found.clone())));
    store.expect_transition().returning(|_, _, _| Ok(None));
    let svc = service(store, silent_notifier());
    assert_eq!(
        futures_executor::block_on(svc.revoke(&user(), &key.id)),
        Err(KeyLookupError::NotFound)
    );
}

#[test]
fn revoke_reports_store_errors_and_endless_races() {
    let (key, _) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let mut store = MockKeyStore::new();
    let found = key.clone();
    store
        .expect_find()
        .returning(move |_, _| Ok(Some(found.clone())));
    store
        .expect_transition()
        .returning(|_, _, _| Err(StoreError::Unavailable("down".into())));
    let svc = service(store, silent_notifier());
    assert_eq!(
        futures_executor::block_on(svc.revoke(&user(), &key.id)),
        Err(KeyLookupError::Store(StoreError::Unavailable(
            "down".into()
        )))
    );

    // A store that never applies the write must not loop forever.
    let mut store = MockKeyStore::new();
    let found = key.clone();
    store
        .expect_find()
        .times(1)
        .returning(move |_, _| Ok(Some(found.clone())));
    let unchanged = key.clone();
    store
        .expect_transition()
        .times(4)
        .returning(move |_, _, _| Ok(Some(unchanged.clone())));
    let svc = service(store, silent_notifier());
    assert!(matches!(
        futures_executor::block_on(svc.revoke(&user(), &key.id)),
        Err(KeyLookupError::Store(StoreError::Internal(_)))
    ));
}

// ---- rotate ----

/// Rotates `old` with `grace`; the store checks the rotation with `check`.
fn rotate_ok(
    old: &ApiKey,
    grace_s: i64,
    check: impl Fn(&Rotation) -> bool + Send + 'static,
) -> keys_domain::use_cases::IssuedKey {
    let old_hash = old.hash;
    let mut store = MockKeyStore::new();
    let found = old.clone();
    store
        .expect_find()
        .times(1)
        .returning(move |_, _| Ok(Some(found.clone())));
    store
        .expect_rotate()
        .withf(move |u, r| *u == user() && check(r))
        .times(1)
        .returning(|_, r| Ok(r.new_key.into_key()));
    let mut notifier = MockRevocationNotifier::new();
    notifier
        .expect_key_changed()
        .withf(move |h| *h == old_hash)
        .times(1)
        .return_const(());
    let svc = service(store, notifier);
    futures_executor::block_on(svc.rotate(&user(), &old.id, name("ci-bot-2"), grace(grace_s)))
        .unwrap()
}

#[test]
fn rotate_with_zero_grace_revokes_the_old_key_at_once() {
    let (old, old_secret) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let old_id = old.id.clone();
    let issued = rotate_ok(&old, 0, move |r| {
        r.old_id == old_id
            && r.expected == KeyState::Active
            && r.old_to == KeyState::Revoked { revoked_at: T0 }
            && r.now == T0
            && r.limits == KeyLimits::default()
            && r.new_key.name.as_str() == "ci-bot-2"
    });
    assert_eq!(issued.key.hash, issued.secret.hash());
    assert_ne!(issued.secret, old_secret);
    assert_eq!(issued.key.name.as_str(), "ci-bot-2");
}

#[test]
fn rotate_with_grace_makes_the_old_key_expiring_at_now_plus_grace() {
    let (old, _) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let issued = rotate_ok(&old, 3600, |r| {
        r.expected == KeyState::Active
            && r.old_to
                == KeyState::Expiring {
                    revokes_at: T0.plus(secs(3600)),
                }
    });
    assert_eq!(issued.key.state, KeyState::Active);
}

#[test]
fn rotate_never_extends_an_expiring_keys_life() {
    let soon = KeyState::Expiring {
        revokes_at: T0.plus(secs(60)),
    };
    let (old, _) = stored_key(&user(), "ci-bot", soon, 1);
    rotate_ok(&old, 3600, move |r| r.expected == soon && r.old_to == soon);
}

#[test]
fn rotate_of_a_revoked_key_is_refused_without_any_write() {
    let grace_ended = KeyState::Expiring { revokes_at: T0 };
    for state in [KeyState::Revoked { revoked_at: T0 }, grace_ended] {
        let (old, _) = stored_key(&user(), "ci-bot", state, 1);
        let mut store = MockKeyStore::new();
        let found = old.clone();
        store
            .expect_find()
            .times(1)
            .returning(move |_, _| Ok(Some(found.clone())));
        store.expect_rotate().never();
        store.expect_insert().never();
        store.expect_transition().never();
        let svc = service(store, silent_notifier());
        assert_eq!(
            futures_executor::block_on(svc.rotate(&user(), &old.id, name("x"), grace(0)))
                .unwrap_err(),
            RotateKeyError::AlreadyRevoked
        );
    }
}

fn rotate_with_store_error(err: RotateKeyStoreError) -> RotateKeyError {
    let (old, _) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let mut store = MockKeyStore::new();
    let found = old.clone();
    store
        .expect_find()
        .returning(move |_, _| Ok(Some(found.clone())));
    store
        .expect_rotate()
        .times(1)
        .returning(move |_, _| Err(err.clone()));
    let svc = service(store, silent_notifier());
    futures_executor::block_on(svc.rotate(&user(), &old.id, name("x"), grace(60))).unwrap_err()
}

#[test]
fn rotate_maps_store_errors_and_notifies_no_one() {
    assert_eq!(
        rotate_with_store_error(RotateKeyStoreError::StateChanged),
        RotateKeyError::Conflict
    );
    assert_eq!(
        rotate_with_store_error(RotateKeyStoreError::NotFound),
        RotateKeyError::NotFound
    );
    assert_eq!(
        rotate_with_store_error(RotateKeyStoreError::Insert(InsertKeyError::UnknownUser)),
        RotateKeyError::NotFound
    );
    assert_eq!(
        rotate_with_store_error(RotateKeyStoreError::Insert(InsertKeyError::DuplicateName)),
        RotateKeyError::DuplicateName
    );
    assert_eq!(
        rotate_with_store_error(RotateKeyStoreError::Insert(InsertKeyError::TooManyKeys)),
        RotateKeyError::TooManyKeys(25)
    );
    assert_eq!(
        rotate_with_store_error(RotateKeyStoreError::Insert(InsertKeyError::Store(
            unavailable()
        ))),
        RotateKeyError::Store(unavailable())
    );
}

#[test]
fn rotate_of_unknown_key_or_unreadable_store() {
    let (old, _) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let mut store = MockKeyStore::new();
    store.expect_find().times(1).returning(|_, _| Ok(None));
    store.expect_rotate().never();
    let svc = service(store, silent_notifier());
    assert_eq!(
        futures_executor::block_on(svc.rotate(&other_user(), &old.id, name("x"), grace(0)))
            .unwrap_err(),
        RotateKeyError::NotFound
    );

    let mut store = MockKeyStore::new();
    store.expect_find().returning(|_, _| Err(unavailable()));
    store.expect_rotate().never();
    let svc = service(store, silent_notifier());
    assert_eq!(
        futures_executor::block_on(svc.rotate(&user(), &old.id, name("x"), grace(0))).unwrap_err(),
        RotateKeyError::Store(unavailable())
    );
}

// ---- list ----

#[test]
fn list_asks_the_store_for_one_page_as_of_now_and_passes_its_answer_through() {
    use keys_domain::ports::KeyListQuery;
    use keys_domain::{KeyId, KeyStatus, ListError, Page, PageLimit, PageRequest};

    let query = KeyListQuery {
        page: PageRequest {
            limit: PageLimit::new(2).unwrap(),
            after: Some(KeyId::new("key_b")),
        },
        status: Some(KeyStatus::Revoked),
    };
    let expected = query.clone();
    let mut store = MockKeyStore::new();
    store
        .expect_list()
        .withf(move |u, q, now| *u == user() && *q == expected && *now == T0)
        .times(1)
        .returning(|_, _, _| {
            Ok(Page {
                items: vec![stored_key(&user(), "old", KeyState::Revoked { revoked_at: T0 }, 7).0],
                has_more: true,
            })
        });
    let page = futures_executor::block_on(service(store, silent_notifier()).list(&user(), &query))
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.has_more);

    let mut store = MockKeyStore::new();
    store
        .expect_list()
        .returning(|_, _, _| Err(ListError::UnknownCursor));
    let got = futures_executor::block_on(service(store, silent_notifier()).list(&user(), &query));
    assert_eq!(got, Err(ListError::UnknownCursor));
}

// ---- update ----

#[test]
fn update_writes_the_new_controls_with_an_updated_event_and_notifies() {
    let (key, _) = stored_key(&user(), "ci", KeyState::Active, 7);
    let hash = key.hash;
    let mut store = MockKeyStore::new();
    let found = key.clone();
    store
        .expect_find()
        .returning(move |_, _| Ok(Some(found.clone())));
    store
        .expect_update()
        .withf(|_, _, u| {
            let keys_domain::EventDetail::Updated { changes } = &u.event.detail else {
                return false;
            };
            u.controls.monthly_credit_limit.is_some()
                && u.name.is_none()
                && *changes == vec![("monthly_credit_limit".to_owned(), Some("9".to_owned()))]
        })
        .times(1)
        .returning(move |_, _, u| {
            let mut k = key.clone();
            k.controls = u.controls;
            Ok(Some(k))
        });
    let mut notifier = MockRevocationNotifier::new();
    notifier
        .expect_key_changed()
        .withf(move |h| h.ct_eq(&hash))
        .times(1)
        .returning(|_| ());
    let patch = ControlsPatch {
        monthly_credit_limit: Some(MonthlyCreditLimit::new(9).ok()),
        ..ControlsPatch::default()
    };
    let svc = service(store, notifier);
    let (k, _) = stored_key(&user(), "ci", KeyState::Active, 7);
    let updated = futures_executor::block_on(svc.update(&user(), &k.id, patch)).unwrap();
    assert_eq!(
        updated.controls.monthly_credit_limit,
        MonthlyCreditLimit::new(9).ok()
    );
}

#[test]
fn update_of_a_revoked_or_expired_key_is_refused_and_an_empty_patch_writes_nothing() {
    let revoked = KeyState::Revoked {
        revoked_at: T0.minus(secs(1)),
    };
    let (gone, _) = stored_key(&user(), "gone", revoked, 8);
    let (mut expired, _) = stored_key(&user(), "old", KeyState::Active, 9);
    expired.controls.expires_at = Some(T0);
    let (live, _) = stored_key(&user(), "live", KeyState::Active, 10);
    for (key, want) in [
        (gone, Err(UpdateKeyError::Final("revoked"))),
        (expired, Err(UpdateKeyError::Final("expired"))),
        (live.clone(), Ok(live)),
    ] {
        let mut store = MockKeyStore::new();
        let found = key.clone();
        store
            .expect_find()
            .returning(move |_, _| Ok(Some(found.clone())));
        store.expect_update().never();
        let svc = service(store, silent_notifier());
        let patch = if want.is_ok() {
            ControlsPatch::default()
        } else {
            ControlsPatch {
                scopes: Some(keys_domain::scope::Scopes::ALL),
                ..ControlsPatch::default()
            }
        };
        assert_eq!(
            futures_executor::block_on(svc.update(&user(), &key.id, patch)),
            want
        );
    }
}
