//! `AlertDelivery::run_once`: mark sent only after acceptance; reschedule failures, abandon an
//! email only after repeated permanent rejections.

use std::sync::Arc;

use keys_domain::alert_email::OutgoingEmail;
use keys_domain::ports::{MailError, MockAlertOutbox, MockMailer, QueuedEmail, StoreError};
use keys_domain::use_cases::{
    AlertDelivery, CLAIM_LEASE, DeliveryReport, PERMANENT_FAILURE_ATTEMPTS,
};
use keys_domain::{AlertId, KeyId};

use crate::support::{SeqRandom, T0, clock_at, email, secs};

fn queued(id: &str, attempts: u32) -> QueuedEmail {
    QueuedEmail {
        id: AlertId::new(id),
        key_id: Some(KeyId::new("key_1")),
        email: OutgoingEmail {
            to: email(),
            subject: "High usage on API key".into(),
            body: "body".into(),
        },
        attempts,
    }
}

fn run(
    outbox: MockAlertOutbox,
    mailer: MockMailer,
    seed: u64,
) -> Result<DeliveryReport, StoreError> {
    let d = AlertDelivery {
        outbox: Arc::new(outbox),
        mailer: Arc::new(mailer),
        clock: Arc::new(clock_at(T0)),
        random: Arc::new(SeqRandom::new(seed)),
    };
    futures_executor::block_on(d.run_once(10))
}

fn claims(outbox: &mut MockAlertOutbox, due: Vec<QueuedEmail>) {
    outbox
        .expect_claim_due()
        .withf(|now, lease, limit| *now == T0 && *lease == T0.plus(CLAIM_LEASE) && *limit == 10)
        .times(1)
        .returning(move |_, _, _| Ok(due.clone()));
}

#[test]
fn an_accepted_email_is_marked_sent() {
    let mut outbox = MockAlertOutbox::new();
    claims(&mut outbox, vec![queued("alr_1", 0)]);
    outbox
        .expect_mark_sent()
        .withf(|id, now| id.as_str() == "alr_1" && *now == T0)
        .times(1)
        .returning(|_, _| Ok(()));
    outbox.expect_mark_failed().never();
    let mut mailer = MockMailer::new();
    mailer
        .expect_send()
        .withf(|mail| mail.to == email())
        .times(1)
        .returning(|_| Ok(()));
    assert_eq!(
        run(outbox, mailer, 1),
        Ok(DeliveryReport {
            sent: 1,
            failed: 0,
            abandoned: 0
        })
    );
}

#[test]
fn a_failure_is_rescheduled_with_backoff_in_range() {
    // After 2 failed attempts the third waits 4 s with jitter in [50 %, 100 %]: 2 s to 4 s.
    for seed in 0..32 {
        for err in [
            MailError::Transient("connection refused".into()),
            MailError::Transient("421 try later".into()),
        ] {
            let mut outbox = MockAlertOutbox::new();
            claims(&mut outbox, vec![queued("alr_2", 2)]);
            outbox.expect_mark_sent().never();
            let text = err.to_string();
            outbox
                .expect_mark_failed()
                .withf(move |id, attempts, retry_at, error| {
                    id.as_str() == "alr_2"
                        && *attempts == 3
                        && (T0.plus(secs(2))..=T0.plus(secs(4))).contains(retry_at)
                        && error == text
                })
                .times(1)
                .returning(|_, _, _, _| Ok(()));
            let mut mailer = MockMailer::new();
            mailer
                .expect_send()
                .times(1)
                .returning(move |_| Err(err.clone()));
            assert_eq!(
                run(outbox, mailer, seed),
                Ok(DeliveryReport {
                    sent: 0,
                    failed: 1,
                    abandoned: 0
                })
            );
        }
    }
}

fn fails_once(outbox: &mut MockAlertOutbox, expected_attempts: u32) {
    outbox
        .expect_mark_failed()
        .withf(move |_, attempts, retry_at, _| *attempts == expected_attempts && *retry_at > T0)
        .times(1)
        .returning(|_, _, _, _| Ok(()));
}

fn mailer_failing_with(err: MailError) -> MockMailer {
    let mut mailer = MockMailer::new();
    mailer
        .expect_send()
        .times(1)
        .returning(move |_| Err(err.clone()));
    mailer
}

#[test]
fn a_permanent_rejection_is_retried_before_it_is_abandoned() {
    for earlier in 0..PERMANENT_FAILURE_ATTEMPTS - 1 {
        let mut outbox = MockAlertOutbox::new();
        claims(&mut outbox, vec![queued("alr_p", earlier)]);
        fails_once(&mut outbox, earlier + 1);
        outbox.expect_mark_abandoned().never();
        let mailer = mailer_failing_with(MailError::Permanent("550 no such mailbox".into()));
        assert_eq!(
            run(outbox, mailer, 5),
            Ok(DeliveryReport {
                sent: 0,
                failed: 1,
                abandoned: 0
            })
        );
    }
}

#[test]
fn the_last_permanent_rejection_abandons_the_email() {
    let mut outbox = MockAlertOutbox::new();
    claims(
        &mut outbox,
        vec![queued("alr_p", PERMANENT_FAILURE_ATTEMPTS - 1)],
    );
    outbox.expect_mark_failed().never();
    outbox.expect_mark_sent().never();
    outbox
        .expect_mark_abandoned()
        .withf(|id, attempts, now, error| {
            id.as_str() == "alr_p"
                && *attempts == PERMANENT_FAILURE_ATTEMPTS
                && *now == T0
                && error == "mail rejected: 550 no such mailbox"
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let mailer = mailer_failing_with(MailError::Permanent("550 no such mailbox".into()));
    assert_eq!(
        run(outbox, mailer, 6),
        Ok(DeliveryReport {
            sent: 0,
            failed: 0,
            abandoned: 1
        })
    );
}

#[test]
fn transient_failures_are_never_abandoned() {
    let mut outbox = MockAlertOutbox::new();
    claims(&mut outbox, vec![queued("alr_t", 50)]);
    fails_once(&mut outbox, 51);
    outbox.expect_mark_abandoned().never();
    let mailer = mailer_failing_with(MailError::Transient("connection refused".into()));
    assert_eq!(
        run(outbox, mailer, 7),
        Ok(DeliveryReport {
            sent: 0,
            failed: 1,
            abandoned: 0
        })
    );
}

#[test]
fn an_outbox_failure_while_abandoning_is_an_error() {
    let mut outbox = MockAlertOutbox::new();
    claims(
        &mut outbox,
        vec![queued("alr_p", PERMANENT_FAILURE_ATTEMPTS - 1)],
    );
    outbox
        .expect_mark_abandoned()
        .times(1)
        .returning(|_, _, _, _| Err(StoreError::Unavailable("down".into())));
    let mailer = mailer_failing_with(MailError::Permanent("550".into()));
    assert_eq!(
        run(outbox, mailer, 8),
        Err(StoreError::Unavailable("down".into()))
    );
}

#[test]
fn a_first_failure_retries_within_a_second() {
    let mut outbox = MockAlertOutbox::new();
    claims(&mut outbox, vec![queued("alr_3", 0)]);
    outbox
        .expect_mark_failed()
        .withf(|_, attempts, retry_at, _| {
            *attempts == 1
                && (T0.plus(std::time::Duration::from_millis(500))..=T0.plus(secs(1)))
                    .contains(retry_at)
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let mut mailer = MockMailer::new();
    mailer
        .expect_send()
        .returning(|_| Err(MailError::Transient("timeout".into())));
    assert_eq!(
        run(outbox, mailer, 3),
        Ok(DeliveryReport {
            sent: 0,
            failed: 1,
            abandoned: 0
        })
    );
}

#[test]
fn each_claimed_email_is_tried_once() {
    let mut outbox = MockAlertOutbox::new();
    claims(&mut outbox, vec![queued("alr_a", 0), queued("alr_b", 0)]);
    outbox
        .expect_mark_sent()
        .withf(|id, _| id.as_str() == "alr_a")
        .times(1)
        .returning(|_, _| Ok(()));
    outbox
        .expect_mark_failed()
        .withf(|id, _, _, _| id.as_str() == "alr_b")
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let mut mailer = MockMailer::new();
    let mut seq = mockall::Sequence::new();
    mailer
        .expect_send()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    mailer
        .expect_send()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(MailError::Transient("421".into())));
    assert_eq!(
        run(outbox, mailer, 4),
        Ok(DeliveryReport {
            sent: 1,
            failed: 1,
            abandoned: 0
        })
    );
}

#[test]
fn an_unreadable_outbox_is_an_error_and_sends_nothing() {
    let mut outbox = MockAlertOutbox::new();
    outbox
        .expect_claim_due()
        .times(1)
        .returning(|_, _, _| Err(StoreError::Unavailable("down".into())));
    let mut mailer = MockMailer::new();
    mailer.expect_send().never();
    assert_eq!(
        run(outbox, mailer, 5),
        Err(StoreError::Unavailable("down".into()))
    );
}

#[test]
fn a_failed_mark_sent_is_an_error() {
    let mut outbox = MockAlertOutbox::new();
    claims(&mut outbox, vec![queued("alr_1", 0)]);
    outbox
        .expect_mark_sent()
        .returning(|_, _| Err(StoreError::Unavailable("down".into())));
    let mut mailer = MockMailer::new();
    mailer.expect_send().returning(|_| Ok(()));
    assert_eq!(
        run(outbox, mailer, 6),
        Err(StoreError::Unavailable("down".into()))
    );
}
