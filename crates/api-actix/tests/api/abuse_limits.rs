//! Floods: failed authentications per client address, answered before any store is touched;
//! sign-in link requests per client address; dashboard writes per user. IPv6 clients are
//! counted by their /64.

use keys_domain::ApiKeySecret;
use keys_domain::random::OsRandom;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp, expect_error, header};

const ME: &str = "/api/v1/public/me";

fn made_up_key() -> String {
    // Well formed (valid checksum), unknown to every store.
    ApiKeySecret::generate(&OsRandom).expose().to_owned()
}

async fn get_me(app: &TestApp, key: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = app.public(key, Method::GET, ME);
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

async fn failed_authentications_are_limited_per_client_ip(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.auth_failures_per_minute = 5).await;
    let user = app.user(0).await;
    let (_, good) = app.create_key(&user, "ci").await;
    for _ in 0..3 {
        expect_error(
            get_me(&app, &made_up_key(), None).await,
            401,
            "invalid_api_key",
        )
        .await;
    }
    expect_error(
        get_me(&app, "jt_sk_short", None).await,
        401,
        "malformed_api_key",
    )
    .await;
    let res = app
        .client
        .get(app.url("/api/v1/keys"))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "missing_token").await;
    // Five failures in the minute: from now on this address is refused before its credential
    // is looked at, a valid key and a valid token included.
    let (e, h) = expect_error(
        get_me(&app, &made_up_key(), None).await,
        429,
        "rate_limited",
    )
    .await;
    let retry: u64 = header(&h, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(e["retry_after"], retry);
    expect_error(get_me(&app, &good, None).await, 429, "rate_limited").await;
    let res = app
        .dash(&user, Method::GET, "/api/v1/keys")
        .send()
        .await
        .unwrap();
    expect_error(res, 429, "rate_limited").await;
    // The liveness probe needs no credential and is not limited.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Without `JT_TRUSTED_PROXIES`, `X-Forwarded-For` is the client's own claim and changes
/// nothing; with it, the right-most untrusted hop is the client.
async fn forwarded_for_counts_only_behind_trusted_proxies(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.auth_failures_per_minute = 2).await;
    let user = app.user(0).await;
    let (_, good) = app.create_key(&user, "ci").await;
    for i in 0..2 {
        let xff = format!("198.51.100.{i}");
        get_me(&app, &made_up_key(), Some(&xff)).await;
    }
    expect_error(
        get_me(&app, &good, Some("198.51.100.77")).await,
        429,
        "rate_limited",
    )
    .await;

    let app = TestApp::spawn_with(backend, |c| {
        c.auth_failures_per_minute = 2;
        c.trusted_proxies = "127.0.0.1/32, 10.0.0.0/8".parse().unwrap();
    })
    .await;
    let user = app.user(0).await;
    let (_, good) = app.create_key(&user, "ci").await;
    let attacker = "1.2.3.4, 203.0.113.9, 10.0.0.5";
    for _ in 0..2 {
        expect_error(
            get_me(&app, &made_up_key(), Some(attacker)).await,
            401,
            "invalid_api_key",
        )
        .await;
    }
    expect_error(
        get_me(&app, &good, Some("9.9.9.9, 203.0.113.9")).await,
        429,
        "rate_limited",
    )
    .await;
    // Another client behind the same proxy is not affected.
    let res = get_me(&app, &good, Some("1.2.3.4, 203.0.113.10")).await;
    assert_eq!(res.status(), 200);
}

async fn dashboard_writes_are_limited_per_user(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.dashboard_writes_per_minute = 3).await;
    let ada = app.user(0).await;
    let bob = app.user(0).await;
    let (created, _) = app.create_key(&ada, "a1").await;
    let id = created["id"].as_str().unwrap();
    app.create_key(&ada, "a2").await;
    let res = app
        .dash(&ada, Method::POST, &format!("/api/v1/keys/{id}/revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .dash(&ada, Method::POST, "/api/v1/keys")
        .json(&json!({ "name": "a3" }))
        .send()
        .await
        .unwrap();
    let (e, h) = expect_error(res, 429, "rate_limited").await;
    assert!(header(&h, "retry-after").parse::<u64>().unwrap() >= 1);
    assert!(e["retry_after"].as_u64().unwrap() >= 1);
    // Reads are not writes, and other users have their own budget.
    let res = app
        .dash(&ada, Method::GET, "/api/v1/keys")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.create_key(&bob, "b1").await;
}

/// Addresses of one /64 share one failure count: a client with a /64 cannot get a fresh limit
/// per address.
async fn failed_authentications_count_ipv6_clients_by_their_64(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.auth_failures_per_minute = 5;
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    let user = app.user(0).await;
    let (_, good) = app.create_key(&user, "ci").await;
    for i in 1..=5 {
        let xff = format!("2001:db8:5:5:{i:x}:{:x}::1", i * 7919);
        expect_error(
            get_me(&app, &made_up_key(), Some(&xff)).await,
            401,
            "invalid_api_key",
        )
        .await;
    }
    expect_error(
        get_me(&app, &good, Some("2001:db8:5:5:ffff:1:2:3")).await,
        429,
        "rate_limited",
    )
    .await;
    let other = get_me(&app, &good, Some("2001:db8:5:6::1")).await;
    assert_eq!(other.status(), 200, "another /64 is another client");
}

async fn ask_link_from(app: &TestApp, forwarded_for: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/email-link"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "email": "nobody@example.com" }))
        .send()
        .await
        .unwrap()
}

/// Every link request counts against its client address (IPv6: its /64), known address or not.
async fn sign_in_link_requests_are_limited_per_client_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.sign_in_links_per_minute = 3;
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    for _ in 0..3 {
        assert_eq!(ask_link_from(&app, "203.0.113.5").await.status(), 202);
    }
    let (_, headers) = expect_error(
        ask_link_from(&app, "203.0.113.5").await,
        429,
        "rate_limited",
    )
    .await;
    let retry: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(ask_link_from(&app, "203.0.113.6").await.status(), 202);

    for i in 1..=3 {
        let xff = format!("2001:db8:7:7::{i}");
        assert_eq!(ask_link_from(&app, &xff).await.status(), 202);
    }
    expect_error(
        ask_link_from(&app, "2001:db8:7:7:ffff::9").await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(
        ask_link_from(&app, "2001:db8:7:8::1").await.status(),
        202,
        "another /64 is another client"
    );
}

on_both_backends!(
    failed_authentications_are_limited_per_client_ip,
    forwarded_for_counts_only_behind_trusted_proxies,
    dashboard_writes_are_limited_per_user,
    failed_authentications_count_ipv6_clients_by_their_64,
    sign_in_link_requests_are_limited_per_client_address,
);
