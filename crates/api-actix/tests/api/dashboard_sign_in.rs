//! The dashboard's JSON endpoints over HTTP: sign-in by email link (202 whatever the address,
//! at most 5 links an hour, single use under concurrency, expiry), sign-out, and a key's
//! hourly usage.

use std::time::Duration;

use adapters_smtp::testing::{ReceivedMessage, TestSmtpServer};
use keys_domain::ports::{Clock, LinkEmail, NewSignInLink, SignInLinkStore, SystemClock};
use keys_domain::random::OsRandom;
use keys_domain::sign_in_link::SignInToken;
use keys_domain::{AlertId, Email, SignInLinkId, UserId};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, eventually, expect_error, parts};

const PUBLIC_URL: &str = "https://dashboard.jobtactics.test";

async fn app_with_smtp(backend: Backend) -> (TestApp, TestSmtpServer) {
    let smtp = TestSmtpServer::start();
    let url = smtp.url();
    let app = TestApp::spawn_with(backend, |c| {
        c.smtp_url = Some(url);
        c.public_url = PUBLIC_URL.to_owned();
        c.tuning.alert_poll_interval = Duration::from_millis(100);
    })
    .await;
    (app, smtp)
}

async fn ask_link(app: &TestApp, email: &str) -> u16 {
    let res = app
        .client
        .post(app.url("/api/v1/auth/email-link"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert!(body.is_null(), "a 202 has no body: {body}");
    status
}

fn to(smtp: &TestSmtpServer, email: &str) -> Vec<ReceivedMessage> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t == email))
        .collect()
}

/// The one-time token of a sign-in email.
fn token_in(m: &ReceivedMessage) -> String {
    let prefix = format!("{PUBLIC_URL}/app/sign-in#token=");
    let at = m.body.find(&prefix).expect("the link") + prefix.len();
    m.body[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

async fn exchange(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/session"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

/// A link stored directly (as the use case would), `age` old.
pub(crate) async fn stored_link(app: &TestApp, user: &UserId, age: Duration) -> String {
    let token = SignInToken::generate(&OsRandom);
    let created_at = SystemClock.now().minus(age);
    let stored = app
        .store
        .issue(
            NewSignInLink {
                id: SignInLinkId::generate(&OsRandom),
                user_id: user.clone(),
                token_hash: token.hash(),
                created_at,
                expires_at: created_at.plus(Duration::from_secs(15 * 60)),
            },
            LinkEmail {
                id: AlertId::generate(&OsRandom),
                email: keys_domain::alert_email::OutgoingEmail {
                    to: Email::parse("stored@example.com").unwrap(),
                    subject: "test".into(),
                    body: "test".into(),
                },
            },
            created_at.minus(Duration::from_secs(3600)),
            100,
        )
        .await
        .unwrap();
    assert!(stored);
    token.expose().to_owned()
}

async fn wait_for(smtp: &TestSmtpServer, email: &str, n: usize) -> Vec<ReceivedMessage> {
    let ok = eventually(Duration::from_secs(15), || async {
        to(smtp, email).len() >= n
    })
    .await;
    assert!(
        ok.is_some(),
        "{n} emails to {email} within 15 s: got {}",
        to(smtp, email).len()
    );
    to(smtp, email)
}

async fn email_link_is_202_for_every_address_and_mails_only_known_ones(backend: Backend) {
    let (app, smtp) = app_with_smtp(backend).await;
    let user = app.user(0).await;
    let nobody = format!("nobody-{}@example.com", crate::helpers::unique("x"));
    assert_eq!(ask_link(&app, &nobody).await, 202);
    assert_eq!(ask_link(&app, &user.email.to_uppercase()).await, 202);
    let got = wait_for(&smtp, &user.email, 1).await;
    let m = &got[0];
    assert!(m.subject.contains("sign-in link"), "{}", m.subject);
    let token = token_in(m);
    assert!(token.len() >= 22, "at least 128 bits");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        to(&smtp, &nobody).is_empty(),
        "no email to an unknown address"
    );
    // Not an address at all: a 400 that says so (it tells nothing about accounts).
    let res = app
        .client
        .post(app.url("/api/v1/auth/email-link"))
        .json(&json!({ "email": "not-an-address" }))
        .send()
        .await
        .unwrap();
    let (error, _) = expect_error(res, 400, "invalid_request").await;
    assert_eq!(error["field"], "email");
}

async fn the_sixth_link_in_an_hour_is_answered_alike_and_not_sent(backend: Backend) {
    let (app, smtp) = app_with_smtp(backend).await;
    let user = app.user(0).await;
    for _ in 0..6 {
        assert_eq!(ask_link(&app, &user.email).await, 202);
    }
    wait_for(&smtp, &user.email, 5).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(to(&smtp, &user.email).len(), 5, "the 6th link was sent");
}

async fn a_link_signs_in_once_for_at_most_12_hours(backend: Backend) {
    let (app, smtp) = app_with_smtp(backend).await;
    let user = app.user(0).await;
    assert_eq!(ask_link(&app, &user.email).await, 202);
    let token = token_in(&wait_for(&smtp, &user.email, 1).await[0]);

    let (status, headers, body) = parts(exchange(&app, &token).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    let jwt = body["token"].as_str().unwrap();
    let expires_at = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires_at - time::OffsetDateTime::now_utc();
    assert!(
        left <= time::Duration::hours(12) && left > time::Duration::hours(11),
        "{left}"
    );
    let res = app
        .client
        .get(app.url("/api/v1/keys"))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Used: refused, like unknown and junk tokens.
    expect_error(exchange(&app, &token).await, 401, "invalid_token").await;
    expect_error(exchange(&app, "unknown-token").await, 401, "invalid_token").await;
    expect_error(
        exchange(&app, &"x".repeat(10_000)).await,
        401,
        "invalid_token",
    )
    .await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/session"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_request").await;
}

async fn an_expired_link_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let expired = stored_link(&app, &user.id, Duration::from_secs(16 * 60)).await;
    let (error, _) = expect_error(exchange(&app, &expired).await, 401, "invalid_token").await;
    assert!(
        error["message"].as_str().unwrap().contains("sign-in link"),
        "{error}"
    );
    let fresh = stored_link(&app, &user.id, Duration::from_secs(14 * 60)).await;
    assert_eq!(exchange(&app, &fresh).await.status(), 200);
}

async fn concurrent_exchanges_of_one_link_give_one_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let token = stored_link(&app, &user.id, Duration::ZERO).await;
    let tries = (0..10).map(|_| exchange(&app, &token));
    let statuses: Vec<u16> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
}

async fn sign_out_ends_every_earlier_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let first = exchange(&app, &stored_link(&app, &user.id, Duration::ZERO).await).await;
    let first: Value = first.json().await.unwrap();
    let a = first["token"].as_str().unwrap().to_owned();
    let b = user.token.clone();
    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-out"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for t in [&a, &b] {
        let res = app
            .client
            .get(app.url("/api/v1/keys"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        expect_error(res, 401, "invalid_token").await;
    }
    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-out"))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "missing_token").await;
    // A later sign-in works again (issue times have one-second precision).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = exchange(&app, &stored_link(&app, &user.id, Duration::ZERO).await).await;
    let again: Value = again.json().await.unwrap();
    let res = app
        .client
        .get(app.url("/api/v1/keys"))
        .bearer_auth(again["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn usage(app: &TestApp, user: &TestUser, id: &str) -> reqwest::Response {
    app.dash(user, Method::GET, &format!("/api/v1/keys/{id}/usage"))
        .send()
        .await
        .unwrap()
}

async fn usage_has_25_hours_oldest_first_with_this_hours_count(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let (created, key) = app.create_key(&user, "charted").await;
    let id = created["id"].as_str().unwrap();

    let (status, _, body) = parts(usage(&app, &user, id).await).await;
    assert_eq!(status, 200, "{body}");
    let hours = body["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 25);
    assert!(hours.iter().all(|h| h["count"] == 0));
    let starts: Vec<time::OffsetDateTime> = hours
        .iter()
        .map(|h| {
            time::OffsetDateTime::parse(
                h["start"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        })
        .collect();
    assert!(
        starts
            .windows(2)
            .all(|w| w[1] - w[0] == time::Duration::hours(1))
    );
    let now = time::OffsetDateTime::now_utc();
    let current = starts[24];
    assert!(current <= now && now - current < time::Duration::hours(1));
    assert_eq!(
        (current.minute(), current.second(), current.nanosecond()),
        (0, 0, 0)
    );

    for _ in 0..3 {
        assert_eq!(
            app.public_get(&key, "/api/v1/public/me").await.status(),
            200
        );
    }
    let counted = eventually(Duration::from_secs(5), || async {
        let body: Value = usage(&app, &user, id).await.json().await.unwrap();
        body["hours"][24]["count"] == 3
    })
    .await;
    assert!(counted.is_some(), "3 requests counted in the current hour");

    // Another user's key, an unknown key, no token.
    let other = app.user(0).await;
    expect_error(usage(&app, &other, id).await, 404, "not_found").await;
    expect_error(usage(&app, &user, "key_nope").await, 404, "not_found").await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/keys/{id}/usage")))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "missing_token").await;
}

async fn the_page_and_its_assets_are_served_with_a_strict_policy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in [
        "/app",
        "/app/sign-in",
        "/app/keys",
        "/app/credits",
        "/app/assets/app.js",
        "/app/assets/app.css",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let csp = res
            .headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(
            res.headers().get("x-content-type-options").unwrap(),
            "nosniff"
        );
    }
    let html = app
        .client
        .get(app.url("/app"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<style"), "no inline style");
    assert!(!html.contains(" style="), "no style attributes");
    assert!(
        !html.contains("http://") && !html.contains("//cdn"),
        "nothing from elsewhere"
    );
    for tag in html.split("<script").skip(1) {
        assert!(
            tag.trim_start()
                .starts_with("type=\"module\" src=\"/app/assets/"),
            "inline script: {tag}"
        );
    }
    let res = app
        .client
        .get(app.url("/app/assets/nope.js"))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "not_found").await;
}

on_both_backends!(
    email_link_is_202_for_every_address_and_mails_only_known_ones,
    the_sixth_link_in_an_hour_is_answered_alike_and_not_sent,
    a_link_signs_in_once_for_at_most_12_hours,
    an_expired_link_is_refused,
    concurrent_exchanges_of_one_link_give_one_session,
    sign_out_ends_every_earlier_token,
    usage_has_25_hours_oldest_first_with_this_hours_count,
    the_page_and_its_assets_are_served_with_a_strict_policy,
    the_sweeper_drops_old_links_and_old_hours,
);

/// The sweeper deletes sign-in links (and their emails) an hour after creation and hourly usage
/// after 8 days (the week `usage_spike` compares with, and a margin), and keeps everything
/// younger.
async fn the_sweeper_drops_old_links_and_old_hours(backend: Backend) {
    use keys_domain::KeyId;
    use keys_domain::ports::{KeyStore as _, UsageHistory as _};
    use keys_domain::usage::UsageDelta;

    let app = TestApp::spawn_with(backend, |c| {
        c.tuning.sweep_interval = Duration::from_millis(200);
    })
    .await;
    let user = app.user(0).await;
    let (created, _) = app.create_key(&user, "swept").await;
    let key = KeyId::new(created["id"].as_str().unwrap());
    let now = SystemClock.now();
    let hours_ago = |h: u64| now.minus(Duration::from_secs(h * 3600));
    let delta = |at| UsageDelta {
        key_id: key.clone(),
        user_id: user.id.clone(),
        count: 1,
        last_used_at: at,
        clients: Vec::new(),
    };
    app.store
        .record_usage(&[delta(hours_ago(8 * 24 + 1)), delta(hours_ago(8 * 24 - 1))])
        .await
        .unwrap();
    let old = stored_link(&app, &user.id, Duration::from_secs(2 * 3600)).await;
    let young = stored_link(&app, &user.id, Duration::ZERO).await;

    let swept = eventually(Duration::from_secs(5), || async {
        app.store
            .hourly_usage(&key, hours_ago(9 * 24))
            .await
            .unwrap()
            .len()
            == 1
    })
    .await;
    assert!(swept.is_some(), "the count older than 8 days was not swept");
    // A few more rounds: nothing older than an hour is left to sweep; the young link still works.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        app.store.sweep_sign_in_links(hours_ago(1)).await.unwrap(),
        0
    );
    expect_error(exchange(&app, &old).await, 401, "invalid_token").await;
    assert_eq!(exchange(&app, &young).await.status(), 200);
}
