//! A leaked key end to end: GitHub's report (signed with a P-256 key made here, served through a
//! `file://` key list) reaches one instance, the key is revoked, the owner gets one email over
//! real SMTP (aiosmtpd), and a second instance sharing PostgreSQL and Redis refuses the key
//! within 1 s. Concurrent reports of the same key, to both instances, revoke once and email once.
//! Also on the embedded SQLite store (one instance).
//!
//! Needs PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379, and `python3-aiosmtpd`.

// Tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;

use std::time::{Duration, Instant};

use adapters_github::testing::{TestSigner, key_list};
use adapters_postgres::testing::{drop_postgres_database, fresh_postgres_url, fresh_sqlite_url};
use adapters_smtp::testing::{ReceivedMessage, TestSmtpServer};
use api_actix::config::Config;
use e2e_support::{
    CreatedKey, Instance, Owner, SHARED_REDIS_URL, assert_no_full_key, client, config, create_key,
    create_owner, error_type, eventually_sync, key_object, me, require_shared_redis,
};
use serde_json::{Value, json};

const REVOCATION_BOUND: Duration = Duration::from_secs(1);
const EMAIL_BOUND: Duration = Duration::from_secs(10);
/// A cache TTL far above the bound: only the Redis announcement can make B refuse in time.
const LONG_CACHE_TTL: Duration = Duration::from_secs(30);
const LEAK_URL: &str = "https://github.com/octo/leaky/blob/0123abc/config/.env";

struct Github {
    signer: TestSigner,
    _dir: tempfile::TempDir,
    location: String,
}

impl Github {
    fn new() -> Self {
        let signer = TestSigner::generate("e2e-current");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(&path, key_list(&[(&signer, true)])).unwrap();
        Self {
            signer,
            location: format!("file://{}", path.display()),
            _dir: dir,
        }
    }

    async fn report(&self, http: &reqwest::Client, to: &Instance, key: &CreatedKey) -> Value {
        let body = serde_json::to_vec(&json!([{
            "token": key.secret,
            "type": "jobtactics_api_key",
            "url": LEAK_URL,
            "source": "content",
        }]))
        .unwrap();
        let res = http
            .post(to.url("/api/v1/secret-scanning/github"))
            .header("Content-Type", "application/json")
            .header("Github-Public-Key-Identifier", &self.signer.identifier)
            .header("Github-Public-Key-Signature", self.signer.sign(&body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }
}

fn setup(database_url: &str, smtp: &TestSmtpServer, github: &Github) -> Config {
    let mut cfg = config(database_url);
    cfg.smtp_url = Some(smtp.url());
    cfg.github_scanning_keys.clone_from(&github.location);
    cfg
}

fn emails_about(smtp: &TestSmtpServer, key: &CreatedKey) -> Vec<ReceivedMessage> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.subject.contains(&format!("\"{}\"", key.name)))
        .collect()
}

fn assert_leak_email(m: &ReceivedMessage, owner: &Owner, key: &CreatedKey) {
    assert_eq!(m.to, vec![owner.email.clone()]);
    assert!(m.subject.contains("exposed"), "subject: {}", m.subject);
    assert!(m.subject.contains(&key.name) && m.subject.contains(&key.preview));
    assert!(m.body.contains(LEAK_URL), "where it was found: {}", m.body);
    assert!(m.body.contains("content"));
    assert!(
        m.body.contains("Create a new key"),
        "what to do: {}",
        m.body
    );
    assert!(!m.raw.contains(&key.secret), "the email contains the key");
    assert_no_full_key("the leak email", &m.raw);
}

async fn trail_types(
    http: &reqwest::Client,
    on: &Instance,
    owner: &Owner,
    id: &str,
) -> Vec<String> {
    let res = http
        .get(on.url(&format!("/api/v1/keys/{id}/events")))
        .bearer_auth(&owner.jwt)
        .send()
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_key_is_revoked_everywhere_within_a_second_and_its_owner_emailed_once() {
    require_shared_redis();
    let smtp = TestSmtpServer::start();
    let github = Github::new();
    let db = fresh_postgres_url();
    let mut cfg = setup(&db, &smtp, &github);
    cfg.redis_url = Some(SHARED_REDIS_URL.to_owned());
    cfg.tuning.key_cache_ttl = LONG_CACHE_TTL;
    // Only Redis's announcement, not the change feed, may make the instances refuse in time.
    cfg.tuning.key_feed_interval = None;
    let a = Instance::start(&cfg).await;
    let b = Instance::start(&cfg).await;
    let http = client();
    let owner = create_owner(&db, 0).await;

    // One report to A: B (which has the key cached for 30 s) refuses it within 1 s.
    let key = create_key(&http, &a, &owner, "leaked-once").await;
    assert_eq!(me(&http, &b, &key).await.0, 200);
    assert_eq!(me(&http, &b, &key).await.0, 200);
    let sent = Instant::now();
    let labels = github.report(&http, &a, &key).await;
    assert_eq!(labels[0]["label"], "true_positive");
    let took = loop {
        let (status, body) = me(&http, &b, &key).await;
        if status == 401 {
            assert_eq!(error_type(&body), "revoked_api_key");
            break sent.elapsed();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "B still accepts the key"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    eprintln!("report sent to A -> first 401 on B: {took:?}");
    assert!(
        took < REVOCATION_BOUND,
        "B accepted the leaked key for {took:?}"
    );
    assert_eq!(
        key_object(&http, &b, &owner, &key.id).await["revocation_reason"],
        "leaked"
    );

    let got = eventually_sync("the leak email", EMAIL_BOUND, || {
        let got = emails_about(&smtp, &key);
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_leak_email(&got[0], &owner, &key);

    // Many reports of another key at once, to both instances: one revocation, one email.
    let raced = create_key(&http, &a, &owner, "leaked-raced").await;
    let reports: Vec<_> = (0..6)
        .map(|i| github.report(&http, if i % 2 == 0 { &a } else { &b }, &raced))
        .collect();
    for labels in futures_util::future::join_all(reports).await {
        assert_eq!(labels[0]["label"], "true_positive");
    }
    assert_eq!(
        trail_types(&http, &a, &owner, &raced.id).await,
        ["revoked", "leak_reported", "created"]
    );
    eventually_sync("the raced leak email", EMAIL_BOUND, || {
        (!emails_about(&smtp, &raced).is_empty()).then_some(())
    })
    .await;
    // Give any duplicate time to arrive before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        emails_about(&smtp, &raced).len(),
        1,
        "one email per leaked key"
    );
    assert_eq!(emails_about(&smtp, &key).len(), 1);

    a.stop().await;
    b.stop().await;
    drop_postgres_database(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_key_is_revoked_and_its_owner_emailed_on_sqlite() {
    let smtp = TestSmtpServer::start();
    let github = Github::new();
    let (_dir, url) = fresh_sqlite_url();
    let app = Instance::start(&setup(&url, &smtp, &github)).await;
    let http = client();
    let owner = create_owner(&url, 0).await;
    let key = create_key(&http, &app, &owner, "leaked-sqlite").await;
    assert_eq!(me(&http, &app, &key).await.0, 200);
    github.report(&http, &app, &key).await;
    github.report(&http, &app, &key).await;
    assert_eq!(
        error_type(&me(&http, &app, &key).await.1),
        "revoked_api_key"
    );
    let got = eventually_sync("the leak email", EMAIL_BOUND, || {
        let got = emails_about(&smtp, &key);
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_leak_email(&got[0], &owner, &key);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(emails_about(&smtp, &key).len(), 1);
    app.stop().await;
}

/// `keys revoke` run by an operator against the shared database and Redis: a running instance
/// whose cache would keep the key for 30 s refuses it within 1 s of the command's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_revocation_reaches_running_instances_within_a_second() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    require_shared_redis();
    let db = fresh_postgres_url();
    let mut cfg = config(&db);
    cfg.redis_url = Some(SHARED_REDIS_URL.to_owned());
    cfg.tuning.key_cache_ttl = LONG_CACHE_TTL;
    // Only Redis's announcement, not the change feed, may make the instances refuse in time.
    cfg.tuning.key_feed_interval = None;
    let app = Instance::start(&cfg).await;
    let http = client();
    let owner = create_owner(&db, 0).await;
    let key = create_key(&http, &app, &owner, "operator-revoked").await;
    assert_eq!(me(&http, &app, &key).await.0, 200);
    assert_eq!(me(&http, &app, &key).await.0, 200);

    let (db_url, secret) = (db.clone(), key.secret.clone());
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_api-actix"))
            .args(["keys", "revoke", "--reason", "leaked"])
            .env("DATABASE_URL", db_url)
            .env("REDIS_URL", SHARED_REDIS_URL)
            .env_remove("JWT_SECRET")
            .env_remove("JWT_SECRET_FILE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(secret.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let done = Instant::now();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["revocation_reason"], "leaked");
    let took = loop {
        let (status, body) = me(&http, &app, &key).await;
        if status == 401 {
            assert_eq!(error_type(&body), "revoked_api_key");
            break done.elapsed();
        }
        assert!(done.elapsed() < Duration::from_secs(10), "still accepted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    eprintln!("keys revoke finished -> first 401 on the instance: {took:?}");
    assert!(
        took < REVOCATION_BOUND,
        "accepted for {took:?} after the revocation"
    );
    app.stop().await;
    drop_postgres_database(&db);
}
