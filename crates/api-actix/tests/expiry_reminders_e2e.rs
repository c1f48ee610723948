//! Expiry reminders end to end (docs/api.md, "Key controls"): the real server, a real SMTP server
//! (aiosmtpd), on SQLite and on PostgreSQL. A key whose expiry is 3 days ahead gets its 7-day
//! reminder (subject names the key and says it `expires`, the body the date), once, with an
//! `expiry_reminder` event; a key created 12 hours before its expiry gets only the 1-day one.
//!
//! Needs `python3-aiosmtpd` (Debian) and, for the PostgreSQL case, PostgreSQL on 127.0.0.1:5432.

// Tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;

use std::time::Duration;

use adapters_postgres::testing::{drop_postgres_database, fresh_postgres_url, fresh_sqlite_url};
use adapters_smtp::testing::{ReceivedMessage, TestSmtpServer};
use e2e_support::{
    CreatedKey, Instance, Owner, assert_no_full_key, client, config, create_owner, eventually,
    eventually_sync, key_from,
};
use keys_domain::Timestamp;
use keys_domain::ports::{Clock, SystemClock};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_are_emailed_once_each_on_sqlite() {
    let (_dir, url) = fresh_sqlite_url();
    reminder_scenario(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_are_emailed_once_each_on_postgres() {
    let url = fresh_postgres_url();
    reminder_scenario(&url).await;
    drop_postgres_database(&url);
}

async fn reminder_scenario(database_url: &str) {
    let smtp = TestSmtpServer::start();
    let mut cfg = config(database_url);
    cfg.smtp_url = Some(smtp.url());
    // The sweep runs every minute in production (reminders within 2 minutes); here faster.
    cfg.tuning.sweep_interval = Duration::from_millis(200);
    let app = Instance::start(&cfg).await;
    let http = client();
    let owner = create_owner(database_url, 0).await;

    let week = create(
        &http,
        &app,
        &owner,
        "quarterly",
        Duration::from_secs(3 * 86_400),
    )
    .await;
    let day = create(
        &http,
        &app,
        &owner,
        "nightly",
        Duration::from_secs(12 * 3600),
    )
    .await;

    for (key, days) in [(&week, 7), (&day, 1)] {
        let got = eventually_sync("the expiry reminder", Duration::from_secs(10), || {
            let got = about(&smtp, key);
            (!got.is_empty()).then_some(got)
        })
        .await;
        let m = &got[0];
        assert_eq!(m.to, vec![owner.email.clone()]);
        assert!(m.subject.contains("expires"), "subject: {}", m.subject);
        assert!(m.subject.contains(&key.preview), "subject: {}", m.subject);
        assert_no_full_key("the reminder", &format!("{} {}", m.subject, m.body));
        let events = events(&http, &app, &owner, key).await;
        let reminders: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "expiry_reminder")
            .collect();
        assert_eq!(reminders.len(), 1, "{events:?}");
        assert_eq!(reminders[0]["actor"], "system");
        assert_eq!(reminders[0]["detail"]["days_before"], days);
    }
    // Many sweeps later: still one email per key (the 12-hour key never gets a 7-day one).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(about(&smtp, &week).len(), 1);
    assert_eq!(about(&smtp, &day).len(), 1);
    app.stop().await;
}

async fn create(
    http: &reqwest::Client,
    app: &Instance,
    owner: &Owner,
    name: &str,
    lifetime: Duration,
) -> CreatedKey {
    let expires = SystemClock.now().plus(lifetime).to_rfc3339();
    let res = http
        .post(app.url("/api/v1/keys"))
        .bearer_auth(&owner.jwt)
        .json(&json!({ "name": name, "expires_at": expires }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        Timestamp::parse_rfc3339(body["expires_at"].as_str().unwrap()),
        Timestamp::parse_rfc3339(&expires)
    );
    key_from(&body)
}

async fn events(
    http: &reqwest::Client,
    app: &Instance,
    owner: &Owner,
    key: &CreatedKey,
) -> Vec<Value> {
    let path = format!("/api/v1/keys/{}/events", key.id);
    eventually("the key's events", Duration::from_secs(5), || async {
        let res = http
            .get(app.url(&path))
            .bearer_auth(&owner.jwt)
            .send()
            .await
            .ok()?;
        let body: Value = res.json().await.ok()?;
        body["data"].as_array().cloned()
    })
    .await
}

fn about(smtp: &TestSmtpServer, key: &CreatedKey) -> Vec<ReceivedMessage> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.subject.contains(&format!("\"{}\"", key.name)))
        .collect()
}
