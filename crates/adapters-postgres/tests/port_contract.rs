//! The port contract suite (tests/contract) run against PostgreSQL and SQLite.
//!
//! PostgreSQL: a fresh database per test on the server in `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432`); the test fails, naming how to start it, when it is down.
//! SQLite: a temp file per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;
mod support;

use adapters_postgres::DbStore;
use support::TestDb;

macro_rules! contract_cases {
    // Cases of a submodule of `contract`, in a test module named like it.
    (in $module:ident: $($case:ident),* $(,)?) => {
        mod $module {
            use super::*;
            mod postgres {
                use super::*;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        let db = TestDb::postgres();
                        contract::$module::$case(db.store().clone()).await;
                    }
                )*
            }
            mod sqlite {
                use super::*;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        let db = TestDb::sqlite();
                        contract::$module::$case(db.store().clone()).await;
                    }
                )*
            }
        }
    };
    ($($case:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = TestDb::postgres();
                    contract::$case(db.store().clone()).await;
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = TestDb::sqlite();
                    contract::$case(db.store().clone()).await;
                }
            )*
        }
    };
}

contract_cases!(
    keys_round_trip_and_list_newest_first,
    key_names_are_unique_among_live_keys,
    at_most_25_live_keys,
    key_limit_holds_under_concurrent_inserts,
    expired_expiring_keys_are_settled_on_insert,
    transition_is_a_compare_and_set,
    rotate_swaps_keys_in_one_transaction,
    rotate_counts_the_old_keys_new_state_for_the_limit,
    record_usage_adds_counts_and_keeps_the_latest_use,
    accounts_users_balances_and_grants,
    catalogue_lists_templates_with_ownership,
    purchase_charges_once,
    purchase_without_enough_credits_debits_and_records_nothing,
    concurrent_purchases_charge_once,
    documents_are_charged_stored_and_private,
    concurrent_charges_never_overspend,
    concurrent_charges_of_many_users_each_sell_exactly_their_credits,
    charges_are_decided_in_order_and_each_written_once,
    a_charge_that_breaks_a_constraint_applies_nothing,
    a_bad_charge_fails_only_its_own_request,
    a_charge_with_a_key_revoked_meanwhile_is_refused,
    balance_reads_show_every_acknowledged_debit,
    a_key_revoked_after_it_paid_pays_for_nothing_more,
    credits_granted_between_charges_are_spent_by_the_next,
    alerts_are_enqueued_at_most_once_per_key_per_24h,
    outbox_claims_lease_and_retry,
    abandoned_emails_are_never_claimed_again,
    concurrent_workers_never_claim_the_same_email,
    settings_keep_the_first_value,
    token_cutoffs_only_move_forward,
);

contract_cases!(in pages:
    key_pages_hold_every_key_once_newest_first,
    key_pages_filter_by_status_as_of_now,
    an_unknown_or_foreign_cursor_is_refused,
    document_pages_hold_every_document_once_without_content,
    ledger_pages_hold_every_entry_once_newest_first,
);

contract_cases!(in idempotency:
    a_claim_holds_its_key_until_completed_and_then_keeps_the_response,
    a_released_claim_lets_a_retry_run,
    of_concurrent_claims_exactly_one_wins,
    expired_records_are_replaced_and_swept,
);

contract_cases!(in dashboard:
    sign_in_links_are_limited_per_user_and_queue_their_email,
    a_link_is_consumed_once_and_only_before_it_expires,
    concurrent_exchanges_of_one_link_have_one_winner,
    sent_sign_in_emails_are_done_with_and_old_links_are_swept,
    usage_hours_are_written_with_usage_count_and_swept,
);

contract_cases!(in key_controls:
    controls_round_trip_and_change_with_an_updated_event,
    a_monthly_limit_is_exact_under_concurrent_charges,
    a_limit_set_on_a_key_that_already_paid_applies_to_its_next_charge,
    a_charge_after_the_expiry_is_refused,
    expiring_keys_are_listed_and_each_reminder_recorded_once,
);

contract_cases!(in key_clients:
    clients_are_written_with_usage_and_listed_most_recent_first,
    at_most_50_clients_per_key_and_old_ones_are_swept,
    a_signal_is_raised_once_per_key_per_24_h,
);

contract_cases!(in credit_limits:
    grants_never_take_a_balance_past_2_pow_53_minus_1,
    concurrent_grants_near_the_limit_never_overshoot,
    initial_credits_past_the_limit_are_refused,
);

/// Nothing listens on port 1: every call is `Unavailable`, not an error at connect time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_store_is_unavailable() {
    let store = DbStore::connect("postgres://postgres@127.0.0.1:1/x").unwrap();
    assert_eq!(store.backend_name(), "postgres");
    assert!(store.run_migrations().is_err());
    contract::an_unreachable_store_is_unavailable(store).await;
}

/// Writes take turns only on SQLite, so only there is a usage flush written in chunks.
#[test]
fn only_sqlite_asks_for_the_usage_flush_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = DbStore::connect(&format!("sqlite://{}/test.db", dir.path().display())).unwrap();
    assert_eq!(sqlite.usage_flush_chunk(), Some(32));
    let postgres = DbStore::connect("postgres://postgres@127.0.0.1:1/x").unwrap();
    assert_eq!(postgres.usage_flush_chunk(), None);
}

/// A SQLite file in a directory that does not exist cannot be opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_unreachable_store_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missing/dir/test.db", dir.path().display());
    let store = DbStore::connect(&url).unwrap();
    assert_eq!(store.backend_name(), "sqlite");
    // The operator is told which directory is missing, not only "unable to open".
    let e = format!("{:#}", store.run_migrations().unwrap_err());
    let missing = format!("{}/missing/dir", dir.path().display());
    assert!(e.contains(&missing) && e.contains("does not exist"), "{e}");
    contract::an_unreachable_store_is_unavailable(store).await;
}

#[test]
fn unsupported_urls_are_refused_at_connect() {
    assert!(DbStore::connect("mysql://localhost/x").is_err());
    assert!(DbStore::connect("").is_err());
}

contract_cases!(in key_change_feed:
    the_feed_returns_each_change_after_a_position_in_order,
    concurrent_changes_are_never_skipped_by_a_follower,
);

contract_cases!(in key_events:
    creation_rotation_and_revocation_are_recorded_newest_first,
    a_revocation_writes_reason_events_and_email_once,
    a_usage_alert_is_recorded_only_when_enqueued,
    an_ended_grace_period_is_recorded_when_settled,
);

/// PostgreSQL numbers key events when they are inserted, not when they commit. Here a
/// revocation of key A holds its event uncommitted for 300 ms (a test trigger sleeps after the
/// insert) while a revocation of key B takes a later number and commits at once. A follower
/// that read B and moved past it would never read A: the feed's read must wait for A instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_feed_read_waits_for_an_earlier_numbered_change_still_in_flight() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    use keys_domain::ports::{KeyChangeFeed, KeyStore};

    let db = TestDb::postgres();
    let store = db.store().clone();
    let (ua, ub) = (
        contract::new_user(&store, 0).await,
        contract::new_user(&store, 0).await,
    );
    let a = contract::insert(&store, &ua, "a", contract::at(0)).await;
    let b = contract::insert(&store, &ub, "b", contract::at(0)).await;
    let mut raw = PgConnection::establish(db.url()).unwrap();
    raw.batch_execute(&format!(
        "CREATE FUNCTION slow_event() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$; \
         CREATE TRIGGER slow_event AFTER INSERT ON key_events FOR EACH ROW \
         WHEN (NEW.key_id = '{}' AND NEW.kind = 'revoked') EXECUTE FUNCTION slow_event();",
        a.id.as_str()
    ))
    .unwrap();
    let start = store.head().await.unwrap();
    let revoke = |store: adapters_postgres::DbStore, key: keys_domain::ApiKey| async move {
        let change = contract::key_change_feed::revocation(&key);
        store
            .transition(&key.user_id, &key.id, change)
            .await
            .unwrap()
            .unwrap();
    };
    let slow = tokio::spawn(revoke(store.clone(), a.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    revoke(store.clone(), b.clone()).await;
    // B has committed, A not yet: this read must not return B alone.
    let read = store.changed_after(start, 10).await.unwrap();
    slow.await.unwrap();
    let later = store.changed_after(read.last, 10).await.unwrap();
    let mut seen = read.keys;
    seen.extend(later.keys);
    assert!(
        seen.contains(&a.hash) && seen.contains(&b.hash),
        "a change committed after a later-numbered one was skipped"
    );
}

/// A PostgreSQL lane plans a batch from the balance and key columns it last saw and writes it
/// in one statement only if the database still holds them. Here a second instance charges the
/// same user, and then revokes the key, behind the first one's back: each time the first
/// instance's next batch must find the change, write nothing from its stale memory, and go the
/// locked way; a batch after an unchanged one goes the one-statement way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_lane_writes_from_memory_only_what_the_database_confirms() {
    use keys_domain::Credits;
    use keys_domain::KeyState;
    use keys_domain::ports::{ChargeOutcome, KeyStore, StateChange};

    let db = TestDb::postgres();
    let a = db.store().clone();
    let b = DbStore::connect(db.url()).unwrap();
    let user = contract::new_user(&a, 10).await;
    let key = contract::insert(&a, &user, "paying", contract::at(0)).await;
    let charged = |balance| ChargeOutcome::Charged {
        charged: Credits::new(1),
        balance: Credits::new(balance),
    };

    assert_eq!(render_with(&a, &key, 1).await, charged(9));
    assert_eq!(
        a.ledger_batch_ways(),
        (0, 1),
        "nothing remembered yet: locked"
    );
    assert_eq!(render_with(&a, &key, 2).await, charged(8));
    assert_eq!(
        a.ledger_batch_ways(),
        (1, 1),
        "as remembered: one statement"
    );

    // B charges twice: A still remembers 8.
    assert_eq!(render_with(&b, &key, 3).await, charged(7));
    assert_eq!(render_with(&b, &key, 4).await, charged(6));
    assert_eq!(
        render_with(&a, &key, 5).await,
        charged(5),
        "planned from 6, not from 8"
    );
    assert_eq!(
        a.ledger_batch_ways(),
        (1, 2),
        "the stale memory wrote nothing"
    );
    assert_eq!(render_with(&a, &key, 6).await, charged(4));
    assert_eq!(a.ledger_batch_ways(), (2, 2));

    // B revokes the key: A still remembers it active.
    let revoked = StateChange::new(
        KeyState::Active,
        KeyState::Revoked {
            revoked_at: contract::at(7),
        },
    );
    b.transition(&user, &key.id, revoked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        render_with(&a, &key, 8).await,
        ChargeOutcome::KeyNotAccepted
    );
    assert_eq!(a.ledger_batch_ways(), (2, 3));

    // Read by a third instance: A's and B's balance caches each hold their own last commit.
    let c = DbStore::connect(db.url()).unwrap();
    let ledger = contract::assert_ledger_matches(&c, &user).await;
    assert_eq!(ledger.len(), 7, "the first 10 credits and six renders");
    assert_eq!(ledger.iter().map(|e| e.delta).sum::<i64>(), 4);
    assert_eq!(contract::all_documents(&c, &user).await.len(), 6);
}

/// A key with a monthly limit goes the one-statement way too: the lane remembers its controls
/// and its spend row, and the statement checks the spend under the row's lock. Here a second
/// instance spends with the key and then grants the credit back, so the balance is as the
/// first instance remembers it but the spend is not: the first instance's next batch must plan
/// from the stored spend and write nothing from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_limited_key_is_written_from_memory_only_when_its_spend_is_confirmed() {
    use keys_domain::ports::{AccountStore, ChargeOutcome};
    use keys_domain::{Credits, GrantAmount};

    let db = TestDb::postgres();
    let a = db.store().clone();
    let b = DbStore::connect(db.url()).unwrap();
    let user = contract::new_user(&a, 10).await;
    let key = contract::insert(&a, &user, "limited", contract::at(0)).await;
    let sql = format!(
        "UPDATE api_keys SET monthly_credit_limit = 4, expires_at = {} WHERE id = '{}'",
        contract::at(86_400_000).as_millis(),
        key.id.as_str()
    );
    assert_eq!(adapters_postgres::testing::execute_sql(&a, &sql).await, 1);
    let charged = |balance| ChargeOutcome::Charged {
        charged: Credits::new(1),
        balance: Credits::new(balance),
    };

    assert_eq!(render_with(&a, &key, 1).await, charged(9));
    assert_eq!(a.ledger_batch_ways(), (0, 1), "nothing remembered: locked");
    assert_eq!(render_with(&a, &key, 2).await, charged(8));
    assert_eq!(a.ledger_batch_ways(), (1, 1), "spend 2 of 4, as remembered");

    // B spends one (spend 3) and grants it back: A's balance memory (8) is right again.
    assert_eq!(render_with(&b, &key, 3).await, charged(7));
    b.grant(&user, GrantAmount::new(1).unwrap(), contract::at(4))
        .await
        .unwrap();
    assert_eq!(render_with(&a, &key, 5).await, charged(7), "spend 4 of 4");
    assert_eq!(
        a.ledger_batch_ways(),
        (1, 2),
        "planned from the stored spend (3), not the remembered one (2)"
    );
    assert!(
        matches!(
            render_with(&a, &key, 6).await,
            ChargeOutcome::KeyLimitReached(_)
        ),
        "the limit holds"
    );
    assert_eq!(
        a.ledger_batch_ways(),
        (2, 2),
        "refused from memory, confirmed"
    );

    let c = DbStore::connect(db.url()).unwrap();
    let ledger = contract::assert_ledger_matches(&c, &user).await;
    assert_eq!(ledger.iter().map(|e| e.delta).sum::<i64>(), 7);
    assert_eq!(contract::all_documents(&c, &user).await.len(), 4);
}

/// A key's usage count stops at 2^53 − 1 instead of overflowing, which would fail that flush
/// and every later one (issue 30 item 6).
async fn usage_count_stops_at_the_largest_exact_json_integer(db: TestDb) {
    use keys_domain::KeyId;
    use keys_domain::ports::KeyStore;
    use keys_domain::usage::UsageDelta;

    let store = db.store().clone();
    let user = contract::new_user(&store, 0).await;
    let key = contract::insert(&store, &user, "busy", contract::at(0)).await;
    let near = format!(
        "UPDATE api_keys SET usage_count = 9007199254740989 WHERE id = '{}'",
        key.id.as_str()
    );
    assert_eq!(
        adapters_postgres::testing::execute_sql(&store, &near).await,
        1
    );
    let delta = |count| UsageDelta {
        key_id: key.id.clone(),
        user_id: user.clone(),
        count,
        last_used_at: contract::at(1),
        clients: Vec::new(),
    };
    let ghost = UsageDelta {
        key_id: KeyId::new("key_ghost"),
        ..delta(1)
    };
    store.record_usage(&[delta(1), ghost]).await.unwrap();
    let found = store.find(&user, &key.id).await.unwrap().unwrap();
    assert_eq!(
        found.usage_count, 9_007_199_254_740_990,
        "below the bound: added"
    );
    store.record_usage(&[delta(u64::MAX >> 1)]).await.unwrap();
    store.record_usage(&[delta(5)]).await.unwrap();
    let found = store.find(&user, &key.id).await.unwrap().unwrap();
    assert_eq!(found.usage_count, 9_007_199_254_740_991);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_usage_count_stops_at_the_largest_exact_json_integer() {
    usage_count_stops_at_the_largest_exact_json_integer(TestDb::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_usage_count_stops_at_the_largest_exact_json_integer() {
    usage_count_stops_at_the_largest_exact_json_integer(TestDb::sqlite()).await;
}

/// On PostgreSQL ledger rows and documents have no foreign keys (a trigger per inserted row was
/// more server time than the inserts); what the keys guarded is kept by refusing to delete a
/// user or template, or change its id, whether or not anything refers to it yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_users_and_templates_are_never_deleted_nor_renamed() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};

    let db = TestDb::postgres();
    let user = contract::new_user(db.store(), 0).await;
    let mut raw = PgConnection::establish(db.url()).unwrap();
    for sql in [
        format!("DELETE FROM users WHERE id = '{}'", user.as_str()),
        format!(
            "UPDATE users SET id = 'usr_renamed' WHERE id = '{}'",
            user.as_str()
        ),
        "DELETE FROM templates WHERE id = 'classic'".to_owned(),
        "UPDATE templates SET id = 'renamed' WHERE id = 'classic'".to_owned(),
    ] {
        let refused = raw.batch_execute(&sql).unwrap_err().to_string();
        assert!(refused.contains("never deleted"), "{sql}: {refused}");
    }
    // Other changes to those rows go on as before.
    raw.batch_execute(&format!(
        "UPDATE users SET balance = 3 WHERE id = '{}'",
        user.as_str()
    ))
    .unwrap();
}

/// One render of 1 credit paid with `key`, applied by `store`.
async fn render_with(
    store: &DbStore,
    key: &keys_domain::ApiKey,
    ms: i64,
) -> keys_domain::ports::ChargeOutcome {
    use keys_domain::ports::{Charge, ChargeKind, LedgerWriter};
    let doc = contract::document(&key.user_id, contract::at(ms));
    let charge = Charge {
        user_id: key.user_id.clone(),
        key_id: Some(key.id.clone()),
        cost: keys_domain::Credits::new(1),
        kind: ChargeKind::Render(doc.clone()),
        at: doc.created_at,
    };
    store.charge(charge).await.unwrap()
}

/// A revocation holds its key row from its lock to its commit; a charge paid with that key
/// meanwhile waits for it and is refused, whether its lane remembers the key (the one-statement
/// way) or not (the locked way). Here a test trigger keeps each revocation uncommitted for
/// 300 ms after it changed the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_charge_waits_for_a_revocation_in_flight_and_is_refused() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    use keys_domain::ports::{ChargeOutcome, KeyStore};

    let db = TestDb::postgres();
    let store = db.store().clone();
    let user = contract::new_user(&store, 10).await;
    let remembered = contract::insert(&store, &user, "remembered", contract::at(0)).await;
    let unseen = contract::insert(&store, &user, "unseen", contract::at(0)).await;
    // The lane now remembers `remembered` as active; `unseen` never paid.
    assert!(matches!(
        render_with(&store, &remembered, 1).await,
        ChargeOutcome::Charged { .. }
    ));
    let mut raw = PgConnection::establish(db.url()).unwrap();
    raw.batch_execute(&format!(
        "CREATE FUNCTION slow_event() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$; \
         CREATE TRIGGER slow_event AFTER INSERT ON key_events FOR EACH ROW \
         WHEN (NEW.kind = 'revoked' AND NEW.key_id IN ('{}', '{}')) \
         EXECUTE FUNCTION slow_event();",
        remembered.id.as_str(),
        unseen.id.as_str()
    ))
    .unwrap();
    for key in [remembered, unseen] {
        let revoking = {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let change = contract::key_change_feed::revocation(&key);
                store
                    .transition(&key.user_id, &key.id, change)
                    .await
                    .unwrap()
                    .unwrap();
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!revoking.is_finished(), "the revocation is still in flight");
        assert_eq!(
            render_with(&store, &key, 2).await,
            ChargeOutcome::KeyNotAccepted,
            "{} paid while its revocation was in flight",
            key.name.as_str()
        );
        revoking.await.unwrap();
    }
    let ledger = contract::assert_ledger_matches(&store, &user).await;
    assert_eq!(ledger.len(), 2, "the first 10 credits and the one render");
}

/// The usage flush updates the paying keys' rows all the time; a charge does not wait for an
/// update of a key's usage in flight (on either way of writing a batch), nor the update for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_charge_does_not_wait_for_a_usage_update_in_flight() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    use keys_domain::ports::ChargeOutcome;

    let db = TestDb::postgres();
    let store = db.store().clone();
    let user = contract::new_user(&store, 10).await;
    let key = contract::insert(&store, &user, "busy", contract::at(0)).await;
    let mut flush = PgConnection::establish(db.url()).unwrap();
    flush
        .batch_execute(&format!(
            "BEGIN; UPDATE api_keys SET usage_count = usage_count + 1 WHERE id = '{}'",
            key.id.as_str()
        ))
        .unwrap();
    // The first render goes the locked way, the second from the lane's memory.
    for (ms, balance) in [(1, 9), (2, 8)] {
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            render_with(&store, &key, ms),
        )
        .await
        .expect("the charge waited for the uncommitted usage update");
        assert_eq!(
            outcome,
            ChargeOutcome::Charged {
                charged: keys_domain::Credits::new(1),
                balance: keys_domain::Credits::new(balance),
            }
        );
    }
    flush.batch_execute("COMMIT").unwrap();
    assert_eq!(store.ledger_batch_ways(), (1, 1));
}
