//! The reminder sweep: each due reminder is recorded with its event and email; keys not due and
//! reminders another instance recorded first are not counted.

use std::sync::Arc;

use keys_domain::ports::{ExpiringKey, MockExpiryReminderStore, StoreError};
use keys_domain::use_cases::ExpiryReminders;
use keys_domain::{EventDetail, KeyId, KeyPreview};

use crate::support::{SeqRandom, T0, clock_at, email, name, secs};

fn expiring(id: &str, in_secs: u64, reminded: Option<u32>) -> ExpiringKey {
    ExpiringKey {
        id: KeyId::new(id),
        name: name(id),
        preview: KeyPreview::from_stored("jt_sk_Ab3x...QzTx".into()),
        owner: email(),
        expires_at: T0.plus(secs(in_secs)),
        reminded,
    }
}

fn sweep(store: MockExpiryReminderStore) -> ExpiryReminders {
    ExpiryReminders {
        store: Arc::new(store),
        clock: Arc::new(clock_at(T0)),
        random: Arc::new(SeqRandom::new(1)),
    }
}

#[test]
fn due_reminders_are_recorded_with_their_event_and_email() {
    let mut store = MockExpiryReminderStore::new();
    store
        .expect_expiring_before()
        .withf(|now, until, _| *now == T0 && *until == T0.plus(secs(7 * 86_400)))
        .returning(|_, _, _| {
            Ok(vec![
                expiring("week", 3 * 86_400, None),
                expiring("done", 3 * 86_400, Some(7)),
                expiring("day", 3_600, Some(7)),
                expiring("raced", 3_600, None),
            ])
        });
    store
        .expect_record_reminder()
        .withf(|key, expected, days, event, queued| {
            let EventDetail::ExpiryReminder { days_before, .. } = event.detail else {
                return false;
            };
            days_before == *days
                && event.key_id == *key
                && queued.email.subject.contains("expires")
                && queued.email.subject.contains(key.as_str())
                && match key.as_str() {
                    "week" => expected.is_none() && *days == 7,
                    "day" => *expected == Some(7) && *days == 1,
                    "raced" => expected.is_none() && *days == 1,
                    _ => false,
                }
        })
        .times(3)
        .returning(|key, _, _, _, _| Ok(key.as_str() != "raced"));
    let queued = futures_executor::block_on(sweep(store).run()).unwrap();
    assert_eq!(queued, 2);
}

#[test]
fn a_store_outage_is_an_error_for_the_next_run_to_retry() {
    let mut store = MockExpiryReminderStore::new();
    store
        .expect_expiring_before()
        .returning(|_, _, _| Err(StoreError::Unavailable("down".into())));
    store.expect_record_reminder().never();
    assert!(futures_executor::block_on(sweep(store).run()).is_err());
}
