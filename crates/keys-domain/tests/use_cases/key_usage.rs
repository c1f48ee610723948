//! `KeyUsage`: 25 hours for the owner's key, 404 for anyone else's, old hours swept.

use std::sync::Arc;

use futures_executor::block_on;
use keys_domain::hourly_usage::{HOURS_KEPT, HourCount, hour_start};
use keys_domain::ports::{MockKeyStore, MockUsageHistory};
use keys_domain::use_cases::{KeyLookupError, KeyUsage};
use keys_domain::{KeyState, Timestamp};

use crate::support::{T0, clock_at, other_user, stored_key, user};

#[test]
fn the_owner_gets_25_hours_and_another_user_404() {
    let (key, _) = stored_key(&user(), "ci", KeyState::Active, 1);
    let id = key.id.clone();
    let mut keys = MockKeyStore::new();
    keys.expect_find()
        .returning(move |u, _| Ok((*u == user()).then(|| key.clone())));
    let mut history = MockUsageHistory::new();
    history
        .expect_hourly_usage()
        .withf(|_, from| {
            *from == Timestamp::from_millis(hour_start(T0).as_millis() - 24 * 3_600_000)
        })
        .returning(|_, _| {
            Ok(vec![HourCount {
                start: hour_start(T0),
                count: 4,
            }])
        });
    let usage = KeyUsage {
        keys: Arc::new(keys),
        history: Arc::new(history),
        clock: Arc::new(clock_at(T0)),
    };
    let hours = block_on(usage.hours(&user(), &id)).unwrap();
    assert_eq!(hours.len(), 25);
    assert_eq!(hours[24].count, 4);
    assert_eq!(hours[24].start, hour_start(T0));
    assert_eq!(
        block_on(usage.hours(&other_user(), &id)),
        Err(KeyLookupError::NotFound)
    );
}

#[test]
fn sweep_removes_hours_older_than_the_retention() {
    let mut history = MockUsageHistory::new();
    history
        .expect_sweep_usage_hours()
        .withf(|before| *before == T0.minus(HOURS_KEPT))
        .returning(|_| Ok(3));
    let usage = KeyUsage {
        keys: Arc::new(MockKeyStore::new()),
        history: Arc::new(history),
        clock: Arc::new(clock_at(T0)),
    };
    assert_eq!(block_on(usage.sweep()), Ok(3));
}
