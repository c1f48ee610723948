//! The high-usage alert end to end (issue 5): the real server, a real SMTP server (aiosmtpd),
//! on the embedded SQLite store and on PostgreSQL. Crossing the threshold sends exactly one email
//! within 10 s, naming the key by name and preview only; more requests send no second one; an
//! SMTP outage during a crossing delays the email and loses nothing, and it arrives once.
//!
//! Needs `python3-aiosmtpd` (Debian) and, for the PostgreSQL case, PostgreSQL on 127.0.0.1:5432.

// Tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;

use std::time::{Duration, Instant};

use adapters_postgres::testing::{drop_postgres_database, fresh_postgres_url, fresh_sqlite_url};
use adapters_smtp::testing::{ReceivedMessage, TestSmtpServer};
use e2e_support::{
    CreatedKey, Instance, Owner, assert_no_full_key, client, config, create_key, create_owner,
    eventually_sync, me,
};

/// The contract's delivery bound when SMTP works.
const ALERT_BOUND: Duration = Duration::from_secs(10);
const THRESHOLD: u64 = 5;
const MAIL_FROM_NAME: &str = "JobTactics Alerts E2E";
const MAIL_FROM_ADDRESS: &str = "alerts-e2e@jobtactics.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alert_email_per_crossing_on_sqlite() {
    let (_dir, url) = fresh_sqlite_url();
    alert_scenario(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alert_email_per_crossing_on_postgres() {
    let url = fresh_postgres_url();
    alert_scenario(&url).await;
    drop_postgres_database(&url);
}

async fn alert_scenario(database_url: &str) {
    let mut smtp = TestSmtpServer::start();
    let mut cfg = config(database_url);
    cfg.smtp_url = Some(smtp.url());
    cfg.mail_from = format!("{MAIL_FROM_NAME} <{MAIL_FROM_ADDRESS}>");
    cfg.high_usage_threshold = THRESHOLD;
    let app = Instance::start(&cfg).await;
    let http = client();
    let owner = create_owner(database_url, 0).await;

    // Crossing with SMTP up: one email within 10 s.
    let key = create_key(&http, &app, &owner, "alert-bot").await;
    requests(&http, &app, &key, THRESHOLD).await;
    let crossed = Instant::now();
    let got = eventually_sync("the high-usage email", ALERT_BOUND, || {
        let got = messages_about(&smtp, &key);
        (!got.is_empty()).then_some(got)
    })
    .await;
    eprintln!("alert delivered {:?} after the crossing", crossed.elapsed());
    assert_eq!(got.len(), 1, "one crossing, {} emails", got.len());
    assert_alert(&got[0], &owner, &key);

    // Past the threshold: no second email.
    requests(&http, &app, &key, 10).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        messages_about(&smtp, &key).len(),
        1,
        "a second alert was sent"
    );

    // Crossing while SMTP is down: the alert waits in the outbox and arrives once, after.
    smtp.stop();
    let late = create_key(&http, &app, &owner, "alert-bot-outage").await;
    requests(&http, &app, &late, THRESHOLD).await;
    // Long enough for the flush, the enqueue and a few failed attempts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    smtp.restart();
    let restarted = Instant::now();
    // After the outage delivery waits for the next retry (back-off, about 8 s at this point).
    let got = eventually_sync(
        "the alert queued during the SMTP outage",
        Duration::from_secs(30),
        || {
            let got = messages_about(&smtp, &late);
            (!got.is_empty()).then_some(got)
        },
    )
    .await;
    eprintln!(
        "queued alert delivered {:?} after SMTP came back",
        restarted.elapsed()
    );
    assert_eq!(got.len(), 1);
    assert_alert(&got[0], &owner, &late);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        messages_about(&smtp, &late).len(),
        1,
        "the queued alert arrived twice"
    );
    assert_eq!(smtp.messages().len(), 2, "unexpected extra emails");

    app.stop().await;
}

/// `n` authenticated requests with `key`, each 200.
async fn requests(http: &reqwest::Client, app: &Instance, key: &CreatedKey, n: u64) {
    for _ in 0..n {
        let (status, body) = me(http, app, key).await;
        assert_eq!(status, 200, "{body}");
    }
}

/// The messages whose subject names `key` (by name; names are distinct within the test).
fn messages_about(smtp: &TestSmtpServer, key: &CreatedKey) -> Vec<ReceivedMessage> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.subject.contains(&format!("\"{}\"", key.name)))
        .collect()
}

fn assert_alert(m: &ReceivedMessage, owner: &Owner, key: &CreatedKey) {
    assert_eq!(m.to, vec![owner.email.clone()], "envelope recipient");
    assert!(m.header_to.contains(&owner.email), "To: {}", m.header_to);
    assert_eq!(m.from, MAIL_FROM_ADDRESS, "envelope sender");
    assert!(
        m.header_from.contains(MAIL_FROM_NAME) && m.header_from.contains(MAIL_FROM_ADDRESS),
        "From: {}",
        m.header_from
    );
    assert!(m.subject.contains("High usage"), "subject: {}", m.subject);
    assert!(m.subject.contains(&key.name), "subject: {}", m.subject);
    assert!(m.subject.contains(&key.preview), "subject: {}", m.subject);
    assert!(
        m.content_type.starts_with("text/plain"),
        "{}",
        m.content_type
    );
    // The count at the crossing and the threshold are both 5 here.
    let numbers: Vec<&str> = m
        .body
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .collect();
    assert!(
        numbers
            .iter()
            .filter(|t| **t == THRESHOLD.to_string())
            .count()
            >= 2,
        "the body should give the count and the threshold ({THRESHOLD}): {}",
        m.body
    );
    assert!(m.body.contains("Settings"), "body: {}", m.body);
    assert!(m.body.contains(&key.preview), "body: {}", m.body);
    // Never the key: not the one it is about, and nothing shaped like any key.
    assert!(
        !m.raw.contains(&key.secret),
        "the email contains the full key"
    );
    assert_no_full_key("the raw email", &m.raw);
    assert_no_full_key("the decoded email body", &m.body);
}
