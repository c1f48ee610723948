//! Leak signals end to end (docs/signals.md): the real server, a real SMTP server
//! (aiosmtpd). A `new_network` and a `browser_use` each email the owner within 5 s of the
//! request that caused them, naming the key by name and preview only, once per 24 h; on SQLite,
//! on PostgreSQL, and with two instances sharing PostgreSQL and Redis (one email, not two).
//!
//! Needs `python3-aiosmtpd`, PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379.

// Tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;

use std::time::{Duration, Instant};

use adapters_postgres::testing::{drop_postgres_database, fresh_postgres_url, fresh_sqlite_url};
use adapters_smtp::testing::{ReceivedMessage, TestSmtpServer};
use api_actix::config::Config;
use e2e_support::{
    CreatedKey, Instance, SHARED_REDIS_URL, assert_no_full_key, client, config, create_key,
    create_owner, eventually_sync, require_shared_redis,
};

/// The contract's bound from the request to its event and email.
const SIGNAL_BOUND: Duration = Duration::from_secs(5);

fn signalling(database_url: &str, smtp: &TestSmtpServer) -> Config {
    let mut cfg = config(database_url);
    cfg.smtp_url = Some(smtp.url());
    cfg.trusted_proxies = "127.0.0.1/32".parse().unwrap();
    // Every key is established at once, so its second network signals.
    cfg.key_signals.established_after = Duration::ZERO;
    cfg
}

async fn use_key(
    http: &reqwest::Client,
    app: &Instance,
    key: &CreatedKey,
    from: &str,
    origin: bool,
) {
    let mut req = http
        .get(app.url("/api/v1/public/me"))
        .bearer_auth(&key.secret)
        .header("X-Forwarded-For", from)
        .header("User-Agent", "curl/8.5.0");
    if origin {
        req = req.header("Origin", "https://shop.example");
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
}

fn about<'a>(
    messages: &'a [ReceivedMessage],
    key: &CreatedKey,
    words: &str,
) -> Vec<&'a ReceivedMessage> {
    messages
        .iter()
        .filter(|m| m.subject.contains(&format!("\"{}\"", key.name)) && m.subject.contains(words))
        .collect()
}

/// One key used from its own network, then a new one, then from a browser: two emails, each
/// within the bound, and no more on repeats.
async fn scenario(instances: &[&Instance], database_url: &str, smtp: &TestSmtpServer) {
    let http = client();
    let owner = create_owner(database_url, 0).await;
    let key = create_key(&http, instances[0], &owner, "signalled").await;
    use_key(&http, instances[0], &key, "198.51.100.7", false).await;
    // Its first network is its own; let the flush record it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let sent = Instant::now();
    for app in instances {
        use_key(&http, app, &key, "192.0.2.44", false).await;
    }
    let got = eventually_sync("the new-network email", SIGNAL_BOUND, || {
        let all = smtp.messages();
        (!about(&all, &key, "new network").is_empty()).then_some(all)
    })
    .await;
    eprintln!("new_network email {:?} after the request", sent.elapsed());
    let m = about(&got, &key, "new network")[0].clone();
    assert_eq!(m.to, vec![owner.email.clone()]);
    assert!(m.subject.contains(&key.preview), "{}", m.subject);
    assert!(
        m.body.contains("192.0.2.0/24") && !m.body.contains("192.0.2.44"),
        "{}",
        m.body
    );
    assert_no_full_key("the signal email", &format!("{} {}", m.subject, m.body));

    let sent = Instant::now();
    for app in instances {
        use_key(&http, app, &key, "192.0.2.44", true).await;
    }
    eventually_sync("the browser email", SIGNAL_BOUND, || {
        (!about(&smtp.messages(), &key, "browser").is_empty()).then_some(())
    })
    .await;
    eprintln!("browser_use email {:?} after the request", sent.elapsed());

    // More of both within the day: nothing more.
    for app in instances {
        use_key(&http, app, &key, "203.0.113.1", true).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = smtp.messages();
    assert_eq!(
        about(&all, &key, "new network").len(),
        1,
        "one new-network email"
    );
    assert_eq!(about(&all, &key, "browser").len(), 1, "one browser email");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_are_emailed_once_within_5_s_on_sqlite() {
    let smtp = TestSmtpServer::start();
    let (_dir, url) = fresh_sqlite_url();
    let app = Instance::start(&signalling(&url, &smtp)).await;
    scenario(&[&app], &url, &smtp).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_are_emailed_once_within_5_s_on_postgres() {
    let smtp = TestSmtpServer::start();
    let url = fresh_postgres_url();
    let app = Instance::start(&signalling(&url, &smtp)).await;
    scenario(&[&app], &url, &smtp).await;
    app.stop().await;
    drop_postgres_database(&url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_email_a_signal_once() {
    require_shared_redis();
    let smtp = TestSmtpServer::start();
    let url = fresh_postgres_url();
    let mut cfg = signalling(&url, &smtp);
    cfg.redis_url = Some(SHARED_REDIS_URL.to_owned());
    let a = Instance::start(&cfg).await;
    let b = Instance::start(&cfg).await;
    scenario(&[&a, &b], &url, &smtp).await;
    a.stop().await;
    b.stop().await;
    drop_postgres_database(&url);
}
