//! The port contract, written once against the port traits and run on every backend.
//!
//! Each case takes a freshly migrated, empty store. Times are fixed instants, not the clock.

mod ledger_writer;

pub use ledger_writer::*;

use std::collections::HashSet;
use std::time::Duration;

use keys_domain::alert_email::OutgoingEmail;
use keys_domain::api_key::{ApiKey, KeyLimits, NewApiKey};
use keys_domain::credits::LedgerEntry;
use keys_domain::ports::{
    AccountStore, AlertOutbox, CatalogStore, Charge, ChargeKind, ChargeOutcome, CreateUserError,
    GrantStoreError, IdempotencyClaim, IdempotencyStore, InsertKeyError, KeyListQuery, KeyStore,
    LedgerWriter, RotateKeyStoreError, Rotation, SettingsStore, SignInLinkStore, StateChange,
    StoreError, TokenCutoffStore, UsageHistory, UserRef,
};
use keys_domain::random::OsRandom;
use keys_domain::template::{Document, DocumentSummary};
use keys_domain::usage::UsageDelta;
use keys_domain::{
    AlertId, ApiKeySecret, Credits, DocumentId, Email, GrantAmount, KeyId, KeyName, KeyState,
    ListError, PageLimit, PageRequest, TemplateId, Timestamp, UserId,
};

pub mod credit_limits;
pub mod dashboard;
pub mod idempotency;
pub mod key_change_feed;
pub mod key_clients;
pub mod key_controls;
pub mod key_events;
pub mod pages;

/// The `high_usage_alert` event an enqueue writes with its email.
pub fn alert_event(key: &KeyId) -> keys_domain::KeyEvent {
    keys_domain::KeyEvent {
        key_id: key.clone(),
        actor: keys_domain::Actor::System,
        at: T0,
        detail: keys_domain::EventDetail::HighUsageAlert {
            count: 11,
            threshold: 10,
        },
    }
}

/// Everything a full store implements.
pub trait Store:
    KeyStore
    + AccountStore
    + CatalogStore
    + LedgerWriter
    + SettingsStore
    + AlertOutbox
    + TokenCutoffStore
    + keys_domain::ports::KeyEventLog
    + keys_domain::ports::KeyChangeFeed
    + IdempotencyStore
    + SignInLinkStore
    + UsageHistory
    + keys_domain::ports::ExpiryReminderStore
    + keys_domain::ports::KeyClientStore
    + Clone
    + 'static
{
}
impl<T> Store for T where
    T: KeyStore
        + AccountStore
        + CatalogStore
        + LedgerWriter
        + SettingsStore
        + AlertOutbox
        + TokenCutoffStore
        + keys_domain::ports::KeyEventLog
        + keys_domain::ports::KeyChangeFeed
        + IdempotencyStore
        + SignInLinkStore
        + UsageHistory
        + keys_domain::ports::ExpiryReminderStore
        + keys_domain::ports::KeyClientStore
        + Clone
        + 'static
{
}

pub const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);
const HOUR: Duration = Duration::from_secs(3600);
pub const LIMITS: KeyLimits = KeyLimits { max_live_keys: 25 };

pub fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + ms)
}

pub async fn new_user(store: &impl Store, credits: u64) -> UserId {
    let id = UserId::generate(&OsRandom);
    let email = Email::parse(&format!("{}@example.com", id.as_str().to_lowercase())).unwrap();
    store
        .create_user(id.clone(), email, Credits::new(credits), T0)
        .await
        .unwrap();
    id
}

pub fn new_key(user: &UserId, name: &str, created_at: Timestamp) -> (NewApiKey, ApiKeySecret) {
    let secret = ApiKeySecret::generate(&OsRandom);
    let key = NewApiKey {
        id: KeyId::generate(&OsRandom),
        user_id: user.clone(),
        name: KeyName::parse(name).unwrap(),
        preview: secret.preview(),
        hash: secret.hash(),
        created_at,
        controls: Default::default(),
    };
    (key, secret)
}

pub async fn insert(store: &impl Store, user: &UserId, name: &str, now: Timestamp) -> ApiKey {
    let (key, _) = new_key(user, name, now);
    store.insert(key, LIMITS, now).await.unwrap()
}

async fn insert_err(
    store: &impl Store,
    user: &UserId,
    name: &str,
    now: Timestamp,
) -> InsertKeyError {
    let (key, _) = new_key(user, name, now);
    store.insert(key, LIMITS, now).await.unwrap_err()
}

pub fn document(user: &UserId, created_at: Timestamp) -> Document {
    Document {
        id: DocumentId::generate(&OsRandom),
        user_id: user.clone(),
        template_id: TemplateId::new("classic"),
        content: "Ada\nCountess".into(),
        created_at,
    }
}

pub fn email(n: usize) -> OutgoingEmail {
    OutgoingEmail {
        to: Email::parse("owner@example.com").unwrap(),
        subject: format!("High usage on API key \"k{n}\""),
        body: format!("body {n}"),
    }
}

/// The balance equals the sum of the ledger, and each entry's balance_after is the running sum.
/// The first page of up to 100 keys, of any status.
pub fn first_page() -> KeyListQuery {
    KeyListQuery {
        page: PageRequest::first(PageLimit::MAX),
        status: None,
    }
}

/// All the user's keys (the contract's cases stay under one page of 100).
pub async fn all_keys(store: &impl Store, user: &UserId) -> Vec<ApiKey> {
    let page = store.list(user, &first_page(), T0).await.unwrap();
    assert!(!page.has_more);
    page.items
}

/// All the user's documents, as summaries.
pub async fn all_documents(store: &impl Store, user: &UserId) -> Vec<DocumentSummary> {
    let page = store
        .list_documents(user, &PageRequest::first(PageLimit::MAX))
        .await
        .unwrap();
    assert!(!page.has_more);
    page.items
}

/// A document as a list shows it.
pub fn summary(d: &Document) -> DocumentSummary {
    DocumentSummary {
        id: d.id.clone(),
        template_id: d.template_id.clone(),
        created_at: d.created_at,
    }
}

pub async fn assert_ledger_matches(store: &impl Store, user: &UserId) -> Vec<LedgerEntry> {
    let balance = store.balance(user).await.unwrap().unwrap();
    let ledger = store.ledger(user).await.unwrap();
    let mut running = 0_i64;
    for entry in &ledger {
        running += entry.delta;
        assert_eq!(entry.balance_after.as_i64(), running, "running balance");
    }
    assert_eq!(running, balance.as_i64(), "balance == sum(ledger)");
    ledger
}

// ---------------------------------------------------------------- KeyStore

pub async fn keys_round_trip_and_list_newest_first(store: impl Store) {
    let user = new_user(&store, 0).await;
    let other = new_user(&store, 0).await;
    let (first, secret) = new_key(&user, "first", at(0));
    let first = store.insert(first, LIMITS, at(0)).await.unwrap();
    assert_eq!(first.state, KeyState::Active);
    assert_eq!(first.usage_count, 0);
    assert_eq!(first.last_used_at, None);
    let b = insert(&store, &user, "b", at(10)).await;
    let c = insert(&store, &user, "c", at(10)).await;
    insert(&store, &other, "first", at(20)).await;

    let found = store.find_by_hash(&secret.hash()).await.unwrap().unwrap();
    assert_eq!(found, first);
    assert_eq!(found.preview, secret.preview());
    let unknown = ApiKeySecret::generate(&OsRandom).hash();
    assert_eq!(store.find_by_hash(&unknown).await.unwrap(), None);

    assert_eq!(
        store.find(&user, &first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.find(&other, &first.id).await.unwrap(),
        None,
        "another user's key"
    );
    assert_eq!(
        store.find(&user, &KeyId::new("key_nope")).await.unwrap(),
        None
    );

    let listed: Vec<KeyId> = all_keys(&store, &user)
        .await
        .into_iter()
        .map(|k| k.id)
        .collect();
    // Newest first; equal created_at ordered by id, descending.
    let (hi, lo) = if b.id > c.id {
        (b.id, c.id)
    } else {
        (c.id, b.id)
    };
    assert_eq!(listed, vec![hi, lo, first.id]);
    assert!(
        all_keys(&store, &UserId::new("usr_nobody"))
            .await
            .is_empty()
    );
}

pub async fn key_names_are_unique_among_live_keys(store: impl Store) {
    let user = new_user(&store, 0).await;
    let other = new_user(&store, 0).await;
    let key = insert(&store, &user, "ci-bot", at(0)).await;
    assert_eq!(
        insert_err(&store, &user, "ci-bot", at(1)).await,
        InsertKeyError::DuplicateName
    );
    insert(&store, &other, "ci-bot", at(1)).await;
    let revoked = KeyState::Revoked { revoked_at: at(2) };
    let stored = store
        .transition(&user, &key.id, StateChange::new(KeyState::Active, revoked))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, revoked);
    // A revoked key frees its name.
    insert(&store, &user, "ci-bot", at(3)).await;
    assert_eq!(all_keys(&store, &user).await.len(), 2);
}

pub async fn at_most_25_live_keys(store: impl Store) {
    let user = new_user(&store, 0).await;
    let mut keys = Vec::new();
    for i in 0..25 {
        keys.push(insert(&store, &user, &format!("k{i}"), at(i)).await);
    }
    assert_eq!(
        insert_err(&store, &user, "k25", at(30)).await,
        InsertKeyError::TooManyKeys
    );
    store
        .transition(
            &user,
            &keys[3].id,
            StateChange::new(KeyState::Active, KeyState::Revoked { revoked_at: at(31) }),
        )
        .await
        .unwrap();
    insert(&store, &user, "k25", at(32)).await;
    assert_eq!(
        insert_err(&store, &UserId::new("usr_nobody"), "x", at(33)).await,
        InsertKeyError::UnknownUser
    );
}

pub async fn key_limit_holds_under_concurrent_inserts(store: impl Store) {
    let user = new_user(&store, 0).await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move {
                let (key, _) = new_key(&user, &format!("c{i}"), at(i));
                store.insert(key, LIMITS, at(i)).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e, InsertKeyError::TooManyKeys),
        }
    }
    assert_eq!(ok, 25);
    assert_eq!(all_keys(&store, &user).await.len(), 25);
}

pub async fn expired_expiring_keys_are_settled_on_insert(store: impl Store) {
    let user = new_user(&store, 0).await;
    let key = insert(&store, &user, "old", at(0)).await;
    let expiring = KeyState::Expiring {
        revokes_at: at(1000),
    };
    store
        .transition(&user, &key.id, StateChange::new(KeyState::Active, expiring))
        .await
        .unwrap();
    // Still accepted until revokes_at, so its name is taken.
    assert_eq!(
        insert_err(&store, &user, "old", at(999)).await,
        InsertKeyError::DuplicateName
    );
    insert(&store, &user, "old", at(1000)).await;
    let old = store.find(&user, &key.id).await.unwrap().unwrap();
    assert_eq!(
        old.state,
        KeyState::Revoked {
            revoked_at: at(1000)
        }
    );
}

pub async fn transition_is_a_compare_and_set(store: impl Store) {
    let user = new_user(&store, 0).await;
    let other = new_user(&store, 0).await;
    let key = insert(&store, &user, "k", at(0)).await;
    let expiring = KeyState::Expiring {
        revokes_at: at(5000),
    };
    let revoked = KeyState::Revoked { revoked_at: at(10) };

    let stored = store
        .transition(&user, &key.id, StateChange::new(KeyState::Active, expiring))
        .await
        .unwrap();
    assert_eq!(stored.unwrap().state, expiring);
    // Stale expectation: unchanged, and the caller sees the current state.
    let stale = store
        .transition(&user, &key.id, StateChange::new(KeyState::Active, revoked))
        .await
        .unwrap();
    assert_eq!(stale.unwrap().state, expiring);
    let wrong_time = KeyState::Expiring {
        revokes_at: at(4999),
    };
    let stale = store
        .transition(&user, &key.id, StateChange::new(wrong_time, revoked))
        .await
        .unwrap();
    assert_eq!(stale.unwrap().state, expiring);

    let done = store
        .transition(&user, &key.id, StateChange::new(expiring, revoked))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, revoked);
    assert_eq!(done.hash, key.hash);
    assert_eq!(
        store.find(&user, &key.id).await.unwrap().unwrap().state,
        revoked
    );

    assert_eq!(
        store
            .transition(&other, &key.id, StateChange::new(revoked, KeyState::Active))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .transition(
                &user,
                &KeyId::new("key_nope"),
                StateChange::new(KeyState::Active, revoked)
            )
            .await
            .unwrap(),
        None
    );
}

fn rotation(
    old: &ApiKey,
    expected: KeyState,
    old_to: KeyState,
    name: &str,
    now: Timestamp,
) -> Rotation {
    Rotation {
        old_id: old.id.clone(),
        old_hash: old.hash,
        expected,
        old_to,
        new_key: new_key(&old.user_id, name, now).0,
        limits: LIMITS,
        now,
    }
}

pub async fn rotate_swaps_keys_in_one_transaction(store: impl Store) {
    let user = new_user(&store, 0).await;
    let other = new_user(&store, 0).await;
    let old = insert(&store, &user, "ci", at(0)).await;
    let expiring = KeyState::Expiring {
        revokes_at: at(60_000),
    };

    // Keeping the old key live keeps its name taken: nothing changes.
    let err = store
        .rotate(
            &user,
            rotation(&old, KeyState::Active, expiring, "ci", at(1)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RotateKeyStoreError::Insert(InsertKeyError::DuplicateName)
    );
    assert_eq!(
        store.find(&user, &old.id).await.unwrap().unwrap().state,
        KeyState::Active
    );
    assert_eq!(all_keys(&store, &user).await.len(), 1);

    // A stale expectation changes nothing.
    let err = store
        .rotate(
            &user,
            rotation(
                &old,
                expiring,
                KeyState::Revoked { revoked_at: at(2) },
                "ci-2",
                at(2),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(err, RotateKeyStoreError::StateChanged);
    assert_eq!(all_keys(&store, &user).await.len(), 1);

    // Another user's key, or an unknown one, is not found.
    let err = store
        .rotate(
            &other,
            rotation(&old, KeyState::Active, expiring, "x", at(3)),
        )
        .await
        .unwrap_err();
    assert_eq!(err, RotateKeyStoreError::NotFound);

    let new = store
        .rotate(
            &user,
            rotation(&old, KeyState::Active, expiring, "ci-2", at(4)),
        )
        .await
        .unwrap();
    assert_eq!(new.state, KeyState::Active);
    assert_eq!(new.name.as_str(), "ci-2");
    assert_eq!(new.user_id, user);
    assert_eq!(
        store.find(&user, &old.id).await.unwrap().unwrap().state,
        expiring
    );
    assert_eq!(
        store.find_by_hash(&new.hash).await.unwrap(),
        Some(new.clone())
    );

    // Rotating with immediate revocation frees the name for the replacement.
    let revoked = KeyState::Revoked { revoked_at: at(5) };
    let newer = store
        .rotate(
            &user,
            rotation(&new, KeyState::Active, revoked, "ci-2", at(5)),
        )
        .await
        .unwrap();
    assert_eq!(newer.name.as_str(), "ci-2");
    assert_eq!(
        store.find(&user, &new.id).await.unwrap().unwrap().state,
        revoked
    );
    let listed: Vec<KeyId> = all_keys(&store, &user)
        .await
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, vec![newer.id, new.id, old.id]);
}

pub async fn rotate_counts_the_old_keys_new_state_for_the_limit(store: impl Store) {
    let user = new_user(&store, 0).await;
    let mut keys = Vec::new();
    for i in 0..25 {
        keys.push(insert(&store, &user, &format!("k{i}"), at(i)).await);
    }
    let expiring = KeyState::Expiring {
        revokes_at: at(60_000),
    };
    let err = store
        .rotate(
            &user,
            rotation(&keys[0], KeyState::Active, expiring, "new", at(100)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RotateKeyStoreError::Insert(InsertKeyError::TooManyKeys)
    );
    assert_eq!(
        store.find(&user, &keys[0].id).await.unwrap().unwrap().state,
        KeyState::Active
    );
    let revoked = KeyState::Revoked {
        revoked_at: at(101),
    };
    store
        .rotate(
            &user,
            rotation(&keys[0], KeyState::Active, revoked, "new", at(101)),
        )
        .await
        .unwrap();
}

pub async fn record_usage_adds_counts_and_keeps_the_latest_use(store: impl Store) {
    let user = new_user(&store, 0).await;
    let a = insert(&store, &user, "a", at(0)).await;
    let b = insert(&store, &user, "b", at(0)).await;
    let delta = |k: &ApiKey, count, when| UsageDelta {
        key_id: k.id.clone(),
        user_id: user.clone(),
        count,
        last_used_at: when,
        clients: Vec::new(),
    };
    let ghost = UsageDelta {
        key_id: KeyId::new("key_ghost"),
        user_id: user.clone(),
        count: 7,
        last_used_at: at(1),
        clients: Vec::new(),
    };
    store
        .record_usage(&[delta(&a, 3, at(500)), delta(&b, 1, at(200)), ghost])
        .await
        .unwrap();
    store.record_usage(&[delta(&a, 2, at(100))]).await.unwrap();
    store.record_usage(&[]).await.unwrap();
    let a = store.find(&user, &a.id).await.unwrap().unwrap();
    let b = store.find(&user, &b.id).await.unwrap().unwrap();
    assert_eq!((a.usage_count, a.last_used_at), (5, Some(at(500))));
    assert_eq!((b.usage_count, b.last_used_at), (1, Some(at(200))));
}

// ---------------------------------------------------------------- AccountStore

pub async fn accounts_users_balances_and_grants(store: impl Store) {
    let id = UserId::generate(&OsRandom);
    let email = Email::parse("Ada@Example.com").unwrap();
    let user = store
        .create_user(id.clone(), email.clone(), Credits::new(100), T0)
        .await
        .unwrap();
    assert_eq!(user.balance, Credits::new(100));
    let err = store
        .create_user(
            UserId::generate(&OsRandom),
            email.clone(),
            Credits::ZERO,
            T0,
        )
        .await
        .unwrap_err();
    assert_eq!(err, CreateUserError::EmailTaken);

    assert_eq!(
        store.find_user(&UserRef::Id(id.clone())).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        store.find_user(&UserRef::Email(email)).await.unwrap(),
        Some(user)
    );
    let nobody = UserId::new("usr_nobody");
    assert_eq!(
        store.find_user(&UserRef::Id(nobody.clone())).await.unwrap(),
        None
    );
    let unknown_email = Email::parse("nobody@example.com").unwrap();
    assert_eq!(
        store
            .find_user(&UserRef::Email(unknown_email))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.balance(&nobody).await.unwrap(), None);

    let twenty = GrantAmount::new(20).unwrap();
    assert_eq!(
        store.grant(&id, twenty, at(1)).await.unwrap(),
        Credits::new(120)
    );
    assert_eq!(
        store.grant(&nobody, twenty, at(1)).await,
        Err(GrantStoreError::UnknownUser)
    );
    assert_eq!(store.balance(&id).await.unwrap(), Some(Credits::new(120)));
    let ledger = assert_ledger_matches(&store, &id).await;
    let reasons: Vec<(&str, i64)> = ledger
        .iter()
        .map(|e| (e.reason.as_str(), e.delta))
        .collect();
    assert_eq!(reasons, vec![("grant", 100), ("grant", 20)]);
    assert_eq!(ledger[1].created_at, at(1));
    assert!(store.ledger(&nobody).await.unwrap().is_empty());

    // No credits, no ledger entry.
    let poor = new_user(&store, 0).await;
    assert!(store.ledger(&poor).await.unwrap().is_empty());
}

// ---------------------------------------------------------------- CatalogStore

pub async fn catalogue_lists_templates_with_ownership(store: impl Store) {
    let user = new_user(&store, 100).await;
    let listed = store.list_templates(&user).await.unwrap();
    let summary: Vec<(&str, bool, u64, bool)> = listed
        .iter()
        .map(|l| {
            (
                l.template.id.as_str(),
                l.template.premium,
                l.template.price.get(),
                l.owned,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![("classic", false, 0, true), ("executive", true, 50, false)]
    );
    assert!(listed.iter().all(|l| l.template.body.contains("{{name}}")));

    let executive = store
        .find_template(&user, &TemplateId::new("executive"))
        .await
        .unwrap()
        .unwrap();
    assert!(!executive.owned);
    assert_eq!(
        store
            .find_template(&user, &TemplateId::new("nope"))
            .await
            .unwrap(),
        None
    );
    let bought = store
        .charge(Charge {
            user_id: user.clone(),
            key_id: None,
            cost: executive.template.price,
            kind: ChargeKind::Purchase(executive.template.id.clone()),
            at: at(1),
        })
        .await
        .unwrap();
    assert!(matches!(bought, ChargeOutcome::Charged { .. }));
    let executive = store
        .find_template(&user, &TemplateId::new("executive"))
        .await
        .unwrap()
        .unwrap();
    assert!(executive.owned);
    let other = new_user(&store, 0).await;
    let listed = store.list_templates(&other).await.unwrap();
    assert!(!listed[1].owned, "ownership is per user");
}

// ---------------------------------------------------------------- AlertOutbox

pub async fn alerts_are_enqueued_at_most_once_per_key_per_24h(store: impl Store) {
    let (k1, k2) = (KeyId::new("key_one"), KeyId::new("key_two"));
    let alert = || AlertId::generate(&OsRandom);
    assert!(
        store
            .enqueue(alert(), &k1, email(1), alert_event(&k1), T0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .enqueue(alert(), &k1, email(1), alert_event(&k1), T0.plus(23 * HOUR))
            .await
            .unwrap()
    );
    assert!(
        store
            .enqueue(alert(), &k2, email(2), alert_event(&k2), T0.plus(HOUR))
            .await
            .unwrap()
    );
    assert!(
        store
            .enqueue(alert(), &k1, email(1), alert_event(&k1), T0.plus(24 * HOUR))
            .await
            .unwrap()
    );
    assert!(
        !store
            .enqueue(alert(), &k1, email(1), alert_event(&k1), T0.plus(47 * HOUR))
            .await
            .unwrap()
    );
    let queued = store
        .claim_due(T0.plus(48 * HOUR), T0.plus(49 * HOUR), 10)
        .await
        .unwrap();
    assert_eq!(queued.len(), 3);

    // Many instances crossing the threshold at once: one email.
    let k3 = KeyId::new("key_three");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, k3) = (store.clone(), k3.clone());
            tokio::spawn(async move {
                store
                    .enqueue(alert(), &k3, email(3), alert_event(&k3), T0)
                    .await
            })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        stored += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(stored, 1);
}

pub async fn outbox_claims_lease_and_retry(store: impl Store) {
    let ids: Vec<AlertId> = (0..3).map(|_| AlertId::generate(&OsRandom)).collect();
    for (n, id) in ids.iter().enumerate() {
        let key = KeyId::new(format!("key_{n}"));
        assert!(
            store
                .enqueue(
                    id.clone(),
                    &key,
                    email(n),
                    alert_event(&key),
                    at(i64::try_from(n).unwrap())
                )
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .claim_due(at(-1), at(60_000), 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    // The backlog counts what waits, and dates the oldest by when it was enqueued.
    let backlog = store.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.oldest), (3, Some(at(0))));
    let first = store.claim_due(at(10), at(60_000), 2).await.unwrap();
    assert_eq!(
        first.iter().map(|q| q.id.clone()).collect::<Vec<_>>(),
        ids[..2].to_vec()
    );
    assert_eq!(first[0].email, email(0));
    assert_eq!(first[0].key_id, Some(KeyId::new("key_0")));
    assert_eq!(first[0].attempts, 0);
    // Leased rows are not handed out again while the lease runs.
    let rest = store.claim_due(at(20), at(60_000), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|q| q.id.clone()).collect::<Vec<_>>(),
        vec![ids[2].clone()]
    );
    assert!(
        store
            .claim_due(at(30), at(60_000), 10)
            .await
            .unwrap()
            .is_empty()
    );

    store.mark_sent(&ids[0], at(40)).await.unwrap();
    let backlog = store.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.oldest), (2, Some(at(1))));
    store
        .mark_failed(&ids[1], 1, at(120_000), "421 try later")
        .await
        .unwrap();
    // ids[2]'s lease ends at 60 000: it comes back; ids[1] waits for its retry time.
    let after_lease = store.claim_due(at(60_001), at(90_000), 10).await.unwrap();
    assert_eq!(
        after_lease.iter().map(|q| q.id.clone()).collect::<Vec<_>>(),
        vec![ids[2].clone()]
    );
    store.mark_sent(&ids[2], at(60_002)).await.unwrap();
    assert!(
        store
            .claim_due(at(119_999), at(180_000), 10)
            .await
            .unwrap()
            .is_empty(),
        "the failed one is not due before its retry time"
    );
    let retried = store.claim_due(at(120_000), at(180_000), 10).await.unwrap();
    assert_eq!(
        retried.iter().map(|q| q.id.clone()).collect::<Vec<_>>(),
        vec![ids[1].clone()]
    );
    assert_eq!(retried[0].attempts, 1);
    store.mark_sent(&ids[1], at(120_001)).await.unwrap();
    assert!(
        store
            .claim_due(at(10_000_000), at(10_060_000), 10)
            .await
            .unwrap()
            .is_empty(),
        "all sent"
    );
    let backlog = store.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.oldest), (0, None));
    // Unknown ids are ignored.
    store
        .mark_sent(&AlertId::new("alr_nope"), at(1))
        .await
        .unwrap();
    store
        .mark_failed(&AlertId::new("alr_nope"), 1, at(1), "x")
        .await
        .unwrap();
}

pub async fn abandoned_emails_are_never_claimed_again(store: impl Store) {
    let (given_up, kept) = (AlertId::generate(&OsRandom), AlertId::generate(&OsRandom));
    for (n, id) in [&given_up, &kept].into_iter().enumerate() {
        let key = KeyId::new(format!("key_{n}"));
        assert!(
            store
                .enqueue(id.clone(), &key, email(n), alert_event(&key), at(0))
                .await
                .unwrap()
        );
    }
    let claimed = store.claim_due(at(1), at(60_000), 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    store
        .mark_abandoned(&given_up, 3, at(2), "550 no such mailbox")
        .await
        .unwrap();
    store
        .mark_failed(&kept, 1, at(3), "421 try later")
        .await
        .unwrap();
    // Long after every lease and retry time, only the rescheduled one comes back.
    let later = store
        .claim_due(at(10_000_000), at(10_060_000), 10)
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|q| q.id.clone()).collect::<Vec<_>>(),
        vec![kept.clone()]
    );
    // Unknown ids are ignored.
    store
        .mark_abandoned(&AlertId::new("alr_nope"), 3, at(4), "x")
        .await
        .unwrap();
}

pub async fn concurrent_workers_never_claim_the_same_email(store: impl Store) {
    for n in 0..30 {
        let key = KeyId::new(format!("key_{n}"));
        assert!(
            store
                .enqueue(
                    AlertId::generate(&OsRandom),
                    &key,
                    email(n),
                    alert_event(&key),
                    T0
                )
                .await
                .unwrap()
        );
    }
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_due(at(1), at(60_000), 30).await })
        })
        .collect();
    let mut seen = HashSet::new();
    for t in tasks {
        for q in t.await.unwrap().unwrap() {
            assert!(seen.insert(q.id.clone()), "claimed twice: {}", q.id);
        }
    }
    assert_eq!(seen.len(), 30);
}

// ---------------------------------------------------------------- SettingsStore

pub async fn settings_keep_the_first_value(store: impl Store) {
    store.ping().await.unwrap();
    assert_eq!(
        store.get("jwt_secret").await.unwrap(),
        None,
        "get inserts nothing"
    );
    assert_eq!(store.get("jwt_secret").await.unwrap(), None);
    assert_eq!(store.get_or_insert("jwt_secret", "a").await.unwrap(), "a");
    assert_eq!(store.get("jwt_secret").await.unwrap().as_deref(), Some("a"));
    assert_eq!(store.get_or_insert("jwt_secret", "b").await.unwrap(), "a");
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.get_or_insert("race", &format!("v{i}")).await })
        })
        .collect();
    let mut values = HashSet::new();
    for t in tasks {
        values.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(values.len(), 1, "every caller gets the winner: {values:?}");
}

// ---------------------------------------------------------------- TokenCutoffStore

pub async fn token_cutoffs_only_move_forward(store: impl Store) {
    let user = new_user(&store, 0).await;
    assert_eq!(store.tokens_cutoff(&user).await.unwrap(), None);
    assert!(store.raise_tokens_cutoff(&user, at(1000)).await.unwrap());
    assert_eq!(store.tokens_cutoff(&user).await.unwrap(), Some(at(1000)));
    assert!(store.raise_tokens_cutoff(&user, at(5000)).await.unwrap());
    assert_eq!(store.tokens_cutoff(&user).await.unwrap(), Some(at(5000)));
    // An earlier sign-out that lost a race does not move it back.
    assert!(store.raise_tokens_cutoff(&user, at(2000)).await.unwrap());
    assert_eq!(store.tokens_cutoff(&user).await.unwrap(), Some(at(5000)));
    let other = new_user(&store, 0).await;
    assert_eq!(store.tokens_cutoff(&other).await.unwrap(), None);
    let ghost = UserId::new("usr_ghost");
    assert!(!store.raise_tokens_cutoff(&ghost, at(1000)).await.unwrap());
    assert_eq!(store.tokens_cutoff(&ghost).await.unwrap(), None);
}

// ---------------------------------------------------------------- outage

fn list_store_error(e: ListError) -> StoreError {
    match e {
        ListError::Store(s) => s,
        ListError::UnknownCursor => panic!("unexpected UnknownCursor"),
    }
}

fn assert_unavailable<T: std::fmt::Debug>(what: &str, r: &Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{what}: {r:?}"
    );
}

/// Every method of a store that cannot reach its database says `Unavailable` (never "not
/// found"), and within the pool's short checkout timeout.
pub async fn an_unreachable_store_is_unavailable(store: impl Store) {
    let started = std::time::Instant::now();
    let user = UserId::new("usr_x");
    let key = KeyId::new("key_x");
    let (new, secret) = new_key(&user, "k", T0);
    let hash = secret.hash();
    let user_ref = UserRef::Id(user.clone());
    let doc = DocumentId::new("doc_x");
    let alert = AlertId::new("alr_x");
    let template = keys_domain::template::Template {
        id: TemplateId::new("executive"),
        name: "Executive".into(),
        premium: true,
        price: Credits::new(50),
        body: String::new(),
    };
    let (a, b, c, d, e, f, g) = tokio::join!(
        store.find_by_hash(&hash),
        store.find(&user, &key),
        async {
            store
                .list(&user, &first_page(), T0)
                .await
                .map_err(list_store_error)
        },
        store.transition(
            &user,
            &key,
            StateChange::new(KeyState::Active, KeyState::Revoked { revoked_at: T0 })
        ),
        store.record_usage(&[]),
        store.balance(&user),
        store.ledger(&user),
    );
    assert_unavailable(
        "ledger_page",
        &store
            .ledger_page(&user, PageRequest::first(PageLimit::MAX))
            .await,
    );
    assert_unavailable("tokens_cutoff", &store.tokens_cutoff(&user).await);
    let idem = keys_domain::idempotency_key::IdempotencyKey::parse(b"k")
        .unwrap()
        .derive(&user);
    let claim = IdempotencyClaim {
        lookup: idem.lookup,
        request: idem.fingerprint("POST", "/", b""),
        created_at: T0,
        expires_at: T0,
    };
    assert_unavailable("claim", &store.claim(claim).await);
    assert_unavailable("complete", &store.complete(&idem.lookup, Vec::new()).await);
    assert_unavailable("release", &store.release(&idem.lookup).await);
    assert_unavailable("sweep_expired", &store.sweep_expired(T0).await);
    assert_unavailable(
        "raise_tokens_cutoff",
        &store.raise_tokens_cutoff(&user, T0).await,
    );
    assert_unavailable("find_by_hash", &a);
    assert_unavailable("find", &b);
    assert_unavailable("list", &c);
    assert_unavailable("transition", &d);
    assert_unavailable("record_usage", &e);
    assert_unavailable("balance", &f);
    assert_unavailable("ledger", &g);
    let (a, b, c, d, e, f, g) = tokio::join!(
        store.find_user(&user_ref),
        async {
            store
                .grant(&user, GrantAmount::new(1).unwrap(), T0)
                .await
                .map_err(|e| match e {
                    GrantStoreError::Store(s) => s,
                    other => panic!("grant: {other:?}"),
                })
        },
        store.list_templates(&user),
        store.find_template(&user, &template.id),
        async {
            store
                .list_documents(&user, &PageRequest::first(PageLimit::MAX))
                .await
                .map_err(list_store_error)
        },
        store.find_document(&user, &doc),
        store.get_or_insert("a", "b"),
    );
    assert_unavailable("find_user", &a);
    assert_unavailable("grant", &b);
    assert_unavailable("list_templates", &c);
    assert_unavailable("find_template", &d);
    assert_unavailable("list_documents", &e);
    assert_unavailable("find_document", &f);
    assert_unavailable("get_or_insert", &g);
    let (a, b, c, d, e) = tokio::join!(
        store.ping(),
        store.enqueue(AlertId::new("alr_x"), &key, email(0), alert_event(&key), T0),
        store.claim_due(T0, T0, 1),
        store.mark_sent(&alert, T0),
        store.mark_failed(&alert, 1, T0, "x"),
    );
    assert_unavailable("ping", &a);
    assert_unavailable("enqueue", &b);
    assert_unavailable("claim_due", &c);
    assert_unavailable("mark_sent", &d);
    assert_unavailable("mark_failed", &e);
    assert_unavailable(
        "mark_abandoned",
        &store.mark_abandoned(&alert, 3, T0, "x").await,
    );
    let (a, b, c, d, e) = tokio::join!(
        store.insert(new.clone(), LIMITS, T0),
        store.rotate(
            &user,
            Rotation {
                old_id: key.clone(),
                old_hash: keys_domain::KeyHash::of("unavailable"),
                expected: KeyState::Active,
                old_to: KeyState::Revoked { revoked_at: T0 },
                new_key: new,
                limits: LIMITS,
                now: T0,
            }
        ),
        store.create_user(
            user.clone(),
            Email::parse("x@example.com").unwrap(),
            Credits::ZERO,
            T0
        ),
        store.charge(Charge {
            user_id: user.clone(),
            key_id: None,
            cost: Credits::new(1),
            kind: ChargeKind::Render(document(&user, T0)),
            at: T0,
        }),
        store.balance(&user),
    );
    assert!(
        matches!(a, Err(InsertKeyError::Store(StoreError::Unavailable(_)))),
        "insert: {a:?}"
    );
    assert!(
        matches!(
            b,
            Err(RotateKeyStoreError::Insert(InsertKeyError::Store(
                StoreError::Unavailable(_)
            )))
        ),
        "rotate: {b:?}"
    );
    assert!(
        matches!(c, Err(CreateUserError::Store(StoreError::Unavailable(_)))),
        "create_user: {c:?}"
    );
    assert!(
        matches!(d, Err(StoreError::Unavailable(_))),
        "ledger charge: {d:?}"
    );
    assert!(
        matches!(e, Err(StoreError::Unavailable(_))),
        "balance: {e:?}"
    );
    // Four rounds of concurrent calls, each bounded by the 2 s checkout timeout (generous
    // margin for a loaded machine: this guards against hanging, not speed).
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}
