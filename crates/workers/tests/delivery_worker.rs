//! The outbox worker with the real `SmtpMailer` and a real SMTP server.
// The helpers below are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_smtp::SmtpMailer;
use adapters_smtp::testing::{REJECTED_RECIPIENT, SENDER, TestSmtpServer};
use keys_domain::ports::{AlertOutbox, Clock, SystemClock};
use keys_domain::random::OsRandom;
use keys_domain::use_cases::AlertDelivery;
use keys_domain::{AlertId, KeyId};
use support::email_to;
use support::memory_outbox::MemoryOutbox;
use tokio_util::sync::CancellationToken;
use workers::spawn_delivery_worker;

const POLL: Duration = Duration::from_millis(100);
/// Generous for a loaded 2-core machine; the contract's 10 s is the product's bound.
const EVENTUALLY: Duration = Duration::from_secs(30);

fn delivery(outbox: Arc<MemoryOutbox>, url: &str) -> AlertDelivery {
    AlertDelivery {
        outbox,
        mailer: Arc::new(SmtpMailer::from_url(url, SENDER).unwrap()),
        clock: Arc::new(SystemClock),
        random: Arc::new(OsRandom),
    }
}

async fn enqueue(outbox: &MemoryOutbox, to: &str) -> AlertId {
    let id = AlertId::generate(&OsRandom);
    let stored = outbox
        .enqueue(
            id.clone(),
            &KeyId::new("key_test"),
            email_to(to),
            keys_domain::KeyEvent {
                key_id: KeyId::new("key_test"),
                actor: keys_domain::Actor::System,
                at: SystemClock.now(),
                detail: keys_domain::EventDetail::HighUsageAlert {
                    count: 2,
                    threshold: 1,
                },
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
    assert!(stored);
    id
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + EVENTUALLY;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stop(shutdown: &CancellationToken, worker: tokio::task::JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(EVENTUALLY, worker)
        .await
        .expect("the worker stops once cancelled")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_a_queued_email_and_marks_it_sent() {
    let server = TestSmtpServer::start();
    let outbox = Arc::new(MemoryOutbox::default());
    enqueue(&outbox, "ada@example.com").await;
    let shutdown = CancellationToken::new();
    let worker = spawn_delivery_worker(
        delivery(outbox.clone(), &server.url()),
        POLL,
        shutdown.clone(),
    );

    eventually("the email is marked sent", || {
        outbox.rows()[0].sent_at.is_some()
    })
    .await;
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, vec!["ada@example.com".to_owned()]);
    assert!(got[0].subject.contains("High usage"));

    // More rounds run; a sent email is never sent again.
    tokio::time::sleep(POLL * 5).await;
    stop(&shutdown, worker).await;
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_delays_the_email_which_then_arrives_exactly_once() {
    let mut server = TestSmtpServer::start();
    server.stop();
    let outbox = Arc::new(MemoryOutbox::default());
    enqueue(&outbox, "ada@example.com").await;
    let shutdown = CancellationToken::new();
    let worker = spawn_delivery_worker(
        delivery(outbox.clone(), &server.url()),
        POLL,
        shutdown.clone(),
    );

    // At least two failed attempts, each rescheduled with back-off, none lost.
    eventually("two failed attempts", || {
        outbox.rows()[0].queued.attempts >= 2
    })
    .await;
    let row = &outbox.rows()[0];
    assert!(row.sent_at.is_none());
    assert!(
        row.due_at > SystemClock.now(),
        "rescheduled into the future"
    );
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or("")
            .contains("mail server unavailable")
    );

    server.restart();
    eventually("the email is marked sent", || {
        outbox.rows()[0].sent_at.is_some()
    })
    .await;
    tokio::time::sleep(POLL * 5).await;
    stop(&shutdown, worker).await;

    let got = server.messages();
    assert_eq!(got.len(), 1, "exactly once: {got:#?}");
    assert_eq!(got[0].to, vec!["ada@example.com".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanently_rejected_email_is_abandoned_after_three_attempts() {
    let server = TestSmtpServer::start();
    let outbox = Arc::new(MemoryOutbox::default());
    enqueue(&outbox, REJECTED_RECIPIENT).await;
    let shutdown = CancellationToken::new();
    let worker = spawn_delivery_worker(
        delivery(outbox.clone(), &server.url()),
        POLL,
        shutdown.clone(),
    );

    // Back-off 0.5-1 s then 1-2 s: abandoned within about 3 s.
    eventually("the email is abandoned", || {
        outbox.rows()[0].abandoned_at.is_some()
    })
    .await;
    let row = &outbox.rows()[0];
    assert_eq!(row.queued.attempts, 3);
    assert!(row.sent_at.is_none());
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or("")
            .contains("mail rejected"),
        "{row:?}"
    );
    // Abandoned means never tried again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(outbox.rows()[0].queued.attempts, 3);
    stop(&shutdown, worker).await;
    assert!(server.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_a_backlog_larger_than_one_round() {
    let server = TestSmtpServer::start();
    let outbox = Arc::new(MemoryOutbox::default());
    let n = workers::DELIVERY_BATCH as usize + 5;
    for i in 0..n {
        enqueue(&outbox, &format!("user{i}@example.com")).await;
    }
    let shutdown = CancellationToken::new();
    let worker = spawn_delivery_worker(
        delivery(outbox.clone(), &server.url()),
        POLL,
        shutdown.clone(),
    );

    eventually("all emails are marked sent", || {
        outbox.rows().iter().all(|r| r.sent_at.is_some())
    })
    .await;
    stop(&shutdown, worker).await;
    assert_eq!(server.messages().len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_when_cancelled_even_while_idle() {
    let outbox = Arc::new(MemoryOutbox::default());
    let shutdown = CancellationToken::new();
    // A long poll: cancellation must not wait for it.
    let worker = spawn_delivery_worker(
        delivery(outbox, "smtp://127.0.0.1:9"),
        Duration::from_secs(3600),
        shutdown.clone(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop(&shutdown, worker).await;
}
