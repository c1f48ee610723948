//! `UsageService::flush`: counts first, then the window, then at most one alert per crossing.

use std::sync::Arc;

use keys_domain::ports::{
    MockAccountStore, MockAlertOutbox, MockKeyStore, MockUsageWindow, StoreError, User,
};
use keys_domain::usage::{HighUsageThreshold, UsageDelta, WindowCount};
use keys_domain::use_cases::{FlushReport, MissedAlert, UsageService};
use keys_domain::{Actor, ApiKey, Credits, EventDetail, KeyState};

use crate::support::{SeqRandom, T0, clock_at, email, secs, stored_key, user};

struct Mocks {
    keys: MockKeyStore,
    accounts: MockAccountStore,
    window: MockUsageWindow,
    outbox: MockAlertOutbox,
}

impl Mocks {
    fn new() -> Self {
        Self {
            keys: MockKeyStore::new(),
            accounts: MockAccountStore::new(),
            window: MockUsageWindow::new(),
            outbox: MockAlertOutbox::new(),
        }
    }

    fn flush(self, batch: &[UsageDelta]) -> Result<FlushReport, StoreError> {
        let svc = self.service();
        futures_executor::block_on(svc.flush(batch))
    }

    fn retry(self, missed: Vec<MissedAlert>) -> Vec<MissedAlert> {
        let svc = self.service();
        futures_executor::block_on(svc.retry_alerts(missed))
    }

    fn service(self) -> UsageService {
        UsageService {
            keys: Arc::new(self.keys),
            accounts: Arc::new(self.accounts),
            window: Arc::new(self.window),
            outbox: Arc::new(self.outbox),
            clock: Arc::new(clock_at(T0)),
            random: Arc::new(SeqRandom::new(5)),
            threshold: HighUsageThreshold::new(10).unwrap(),
            signals: None,
        }
    }
}

fn delta(key: &ApiKey, count: u64) -> UsageDelta {
    UsageDelta {
        key_id: key.id.clone(),
        user_id: key.user_id.clone(),
        count,
        last_used_at: T0.minus(secs(1)),
        clients: Vec::new(),
    }
}

fn the_key() -> ApiKey {
    stored_key(&user(), "ci-bot", KeyState::Active, 8).0
}

/// The key store records usage and knows `key`; the owner is found.
fn crossing_setup(m: &mut Mocks, key: &ApiKey, count: WindowCount) {
    m.keys.expect_record_usage().times(1).returning(|_| Ok(()));
    let at = T0.minus(secs(1));
    let id = key.id.clone();
    m.window
        .expect_add()
        .withf(move |k, n, now| *k == id && *n == 3 && *now == at)
        .times(1)
        .return_const(count);
    let found = key.clone();
    m.keys
        .expect_find()
        .returning(move |_, _| Ok(Some(found.clone())));
    m.accounts
        .expect_find_user()
        .returning(|_| Ok(Some(owner())));
}

fn owner() -> User {
    User {
        id: user(),
        email: email(),
        balance: Credits::ZERO,
        created_at: T0,
    }
}

#[test]
fn an_empty_batch_does_nothing() {
    // No expectations: any port call fails the test.
    assert_eq!(Mocks::new().flush(&[]), Ok(FlushReport::default()));
}

#[test]
fn when_counts_cannot_be_written_the_window_is_never_touched() {
    let key = the_key();
    let mut m = Mocks::new();
    m.keys
        .expect_record_usage()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("down".into())));
    m.window.expect_add().never();
    m.outbox.expect_enqueue().never();
    assert_eq!(
        m.flush(&[delta(&key, 3)]),
        Err(StoreError::Unavailable("down".into()))
    );
}

#[test]
fn a_crossing_enqueues_one_alert_naming_the_key_by_name_and_preview() {
    let key = the_key();
    let mut m = Mocks::new();
    crossing_setup(
        &mut m,
        &key,
        WindowCount {
            before: 8,
            after: 11,
        },
    );
    let (id, name, preview) = (key.id.clone(), key.name.clone(), key.preview.clone());
    m.outbox
        .expect_enqueue()
        .withf(move |alert, k, mail, event, now| {
            alert.as_str().starts_with("alr_")
                && *k == id
                && event.key_id == id
                && event.actor == Actor::System
                && event.at == T0
                && event.detail
                    == EventDetail::HighUsageAlert {
                        count: 11,
                        threshold: 10,
                    }
                && *now == T0
                && mail.to == email()
                && mail.subject.contains("High usage")
                && mail.subject.contains(name.as_str())
                && mail.subject.contains(preview.as_str())
                && mail.body.contains("11")
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(true));
    assert_eq!(
        m.flush(&[delta(&key, 3)]),
        Ok(FlushReport {
            keys: 1,
            alerts_enqueued: 1,
            ..FlushReport::default()
        })
    );
}

#[test]
fn no_crossing_no_alert() {
    let key = the_key();
    for count in [
        WindowCount {
            before: 5,
            after: 8,
        },
        WindowCount {
            before: 10,
            after: 13,
        },
    ] {
        let mut m = Mocks::new();
        crossing_setup(&mut m, &key, count);
        m.outbox.expect_enqueue().never();
        assert_eq!(
            m.flush(&[delta(&key, 3)]),
            Ok(FlushReport {
                keys: 1,
                ..FlushReport::default()
            })
        );
    }
}

#[test]
fn an_alert_within_the_cooldown_is_not_counted() {
    let key = the_key();
    let mut m = Mocks::new();
    crossing_setup(
        &mut m,
        &key,
        WindowCount {
            before: 9,
            after: 12,
        },
    );
    m.outbox
        .expect_enqueue()
        .times(1)
        .returning(|_, _, _, _, _| Ok(false));
    assert_eq!(
        m.flush(&[delta(&key, 3)]),
        Ok(FlushReport {
            keys: 1,
            ..FlushReport::default()
        })
    );
}

#[test]
fn a_failed_enqueue_is_counted_and_the_flush_still_succeeds() {
    let key = the_key();
    let mut m = Mocks::new();
    crossing_setup(
        &mut m,
        &key,
        WindowCount {
            before: 9,
            after: 12,
        },
    );
    m.outbox
        .expect_enqueue()
        .times(1)
        .returning(|_, _, _, _, _| Err(StoreError::Unavailable("down".into())));
    assert_eq!(
        m.flush(&[delta(&key, 3)]),
        Ok(FlushReport {
            keys: 1,
            alerts_enqueued: 0,
            alert_errors: 1,
            signals_raised: 0,
            signal_errors: 0,
            missed: vec![MissedAlert {
                delta: delta(&key, 3),
                count: 12
            }],
        })
    );
}

#[test]
fn a_missed_alert_is_enqueued_on_retry_and_kept_while_the_outbox_fails() {
    let key = the_key();
    let missed = vec![MissedAlert {
        delta: delta(&key, 3),
        count: 12,
    }];
    // Still failing: kept.
    let mut m = Mocks::new();
    let found = key.clone();
    m.keys
        .expect_find()
        .returning(move |_, _| Ok(Some(found.clone())));
    m.accounts
        .expect_find_user()
        .returning(|_| Ok(Some(owner())));
    m.outbox
        .expect_enqueue()
        .times(1)
        .returning(|_, _, _, _, _| Err(StoreError::Unavailable("down".into())));
    assert_eq!(m.retry(missed.clone()), missed);
    // Back: enqueued once, nothing kept.
    let mut m = Mocks::new();
    let found = key.clone();
    m.keys
        .expect_find()
        .returning(move |_, _| Ok(Some(found.clone())));
    m.accounts
        .expect_find_user()
        .returning(|_| Ok(Some(owner())));
    m.outbox
        .expect_enqueue()
        .withf(|_, _, mail, _, _| mail.subject.contains("High usage") && mail.body.contains("12"))
        .times(1)
        .returning(|_, _, _, _, _| Ok(true));
    assert_eq!(m.retry(missed), Vec::new());
}

#[test]
fn a_failed_key_or_owner_lookup_is_an_alert_error() {
    let key = the_key();
    let mut m = Mocks::new();
    m.keys.expect_record_usage().returning(|_| Ok(()));
    m.window.expect_add().return_const(WindowCount {
        before: 9,
        after: 12,
    });
    m.keys
        .expect_find()
        .returning(|_, _| Err(StoreError::Unavailable("down".into())));
    m.outbox.expect_enqueue().never();
    assert_eq!(
        m.flush(&[delta(&key, 3)]),
        Ok(FlushReport {
            keys: 1,
            alerts_enqueued: 0,
            alert_errors: 1,
            signals_raised: 0,
            signal_errors: 0,
            missed: vec![MissedAlert {
                delta: delta(&key, 3),
                count: 12
            }],
        })
    );
}

#[test]
fn every_key_of_a_batch_feeds_its_own_window() {
    let a = the_key();
    let b = stored_key(&user(), "other", KeyState::Active, 9).0;
    let mut m = Mocks::new();
    m.keys
        .expect_record_usage()
        .withf(|batch| batch.len() == 2)
        .times(1)
        .returning(|_| Ok(()));
    for (key, n) in [(&a, 3), (&b, 4)] {
        let id = key.id.clone();
        m.window
            .expect_add()
            .withf(move |k, count, _| *k == id && *count == n)
            .times(1)
            .return_const(WindowCount {
                before: 0,
                after: n,
            });
    }
    m.outbox.expect_enqueue().never();
    assert_eq!(
        m.flush(&[delta(&a, 3), delta(&b, 4)]),
        Ok(FlushReport {
            keys: 2,
            ..FlushReport::default()
        })
    );
}
