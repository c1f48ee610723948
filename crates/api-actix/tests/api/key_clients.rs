//! Where a key is used (docs/signals.md): its clients (network and user agent, never a full
//! address), listed most recently seen first within 2 s of a request, kept across a restart,
//! and the `new_network` and `browser_use` events, on both stores.

use std::time::Duration;

use adapters_postgres::testing::execute_sql;
use keys_domain::ports::{Clock, SystemClock};
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, TestUser, eventually, expect_error, parts};

/// Behind a trusted proxy at 127.0.0.1, so each request names its client address.
async fn app(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = "127.0.0.1/32".parse().unwrap();
        // Every key counts as established at once, so a second network signals.
        c.key_signals.established_after = Duration::ZERO;
    })
    .await
}

async fn call(app: &TestApp, key: &str, from: &str, agent: Option<&str>, origin: bool) {
    let mut req = app
        .public(key, Method::GET, "/api/v1/public/me")
        .header("X-Forwarded-For", from);
    if let Some(agent) = agent {
        req = req.header("User-Agent", agent);
    }
    if origin {
        req = req.header("Origin", "https://evil.example");
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
}

async fn clients(app: &TestApp, user: &TestUser, id: &str, query: &str) -> Value {
    let res = app
        .dash(
            user,
            Method::GET,
            &format!("/api/v1/keys/{id}/clients{query}"),
        )
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn events(app: &TestApp, user: &TestUser, id: &str) -> Vec<Value> {
    let res = app
        .dash(user, Method::GET, &format!("/api/v1/keys/{id}/events"))
        .send()
        .await
        .unwrap();
    parts(res).await.2["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn clients_are_listed_by_network_and_user_agent_most_recent_first(backend: Backend) {
    let app = app(backend).await;
    let user = app.user(0).await;
    let (k, key) = app.create_key(&user, "ci").await;
    let id = k["id"].as_str().unwrap();
    // Without a User-Agent header reqwest sends none: `-`.
    for _ in 0..3 {
        call(
            &app,
            &key,
            "203.0.113.77",
            Some("python-requests/2.31.0"),
            false,
        )
        .await;
    }
    call(
        &app,
        &key,
        "203.0.113.5",
        Some("python-requests/2.31.0 extra"),
        false,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    call(&app, &key, "2001:db8:42:7::1", None, true).await;

    let listed = eventually(Duration::from_secs(2), || async {
        clients(&app, &user, id, "").await["data"]
            .as_array()
            .map_or(0, Vec::len)
            == 2
    })
    .await;
    assert!(listed.is_some(), "clients not listed within 2 s");
    let body = clients(&app, &user, id, "").await;
    let data = body["data"].as_array().unwrap();
    assert_eq!(body["has_more"], false);
    assert_eq!(data[0]["network"], "2001:db8:42::/48");
    assert_eq!(data[0]["user_agent"], "-");
    assert_eq!(data[0]["browser"], true);
    assert_eq!(data[0]["requests"], 1);
    assert_eq!(data[1]["network"], "203.0.113.0/24");
    assert_eq!(data[1]["user_agent"], "python-requests/2.31.0");
    assert_eq!(data[1]["requests"], 4);
    assert_eq!(data[1]["browser"], false);
    for c in data {
        for time in ["first_seen", "last_seen"] {
            assert!(c[time].as_str().unwrap().ends_with('Z'), "{c}");
        }
    }
    // No full address anywhere in the answer.
    let text = body.to_string();
    assert!(!text.contains("203.0.113.77") && !text.contains("2001:db8:42:7::1"));

    // Paged like every list.
    let first = clients(&app, &user, id, "?limit=1").await;
    assert_eq!(first["has_more"], true);
    let cursor = first["data"][0]["cursor"].as_str().unwrap().to_owned();
    let second = clients(
        &app,
        &user,
        id,
        &format!("?limit=1&starting_after={cursor}"),
    )
    .await;
    assert_eq!(second["data"][0]["network"], "203.0.113.0/24");
    assert_eq!(second["has_more"], false);
    let res = app
        .dash(
            &user,
            Method::GET,
            &format!("/api/v1/keys/{id}/clients?starting_after=nope"),
        )
        .send()
        .await
        .unwrap();
    let (error, _) = expect_error(res, 400, "invalid_request").await;
    assert_eq!(error["field"], "starting_after");

    // Another user's key is not found.
    let other = app.user(0).await;
    let res = app
        .dash(&other, Method::GET, &format!("/api/v1/keys/{id}/clients"))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "not_found").await;

    // A browser's request is a `browser_use` event naming the network and user agent.
    let browser = eventually(Duration::from_secs(5), || async {
        events(&app, &user, id)
            .await
            .iter()
            .any(|e| e["type"] == "browser_use")
    })
    .await;
    assert!(browser.is_some(), "{:?}", events(&app, &user, id).await);
    let all = events(&app, &user, id).await;
    let event = all.iter().find(|e| e["type"] == "browser_use").unwrap();
    assert_eq!(event["actor"], "system");
    assert_eq!(event["detail"]["network"], "2001:db8:42::/48");
}

async fn a_new_network_of_an_established_key_is_an_event_once(backend: Backend) {
    let app = app(backend).await;
    let user = app.user(0).await;
    let (k, key) = app.create_key(&user, "ci").await;
    let id = k["id"].as_str().unwrap();
    call(&app, &key, "198.51.100.10", Some("curl/8.5.0"), false).await;
    // The first network is the key's own: no signal.
    let seen = eventually(Duration::from_secs(2), || async {
        clients(&app, &user, id, "").await["data"]
            .as_array()
            .map_or(0, Vec::len)
            == 1
    })
    .await;
    assert!(seen.is_some());
    // Node's and Deno's fetch: `Sec-Fetch-Mode: cors` without `Origin` is server-side use.
    let res = app
        .public(&key, Method::GET, "/api/v1/public/me")
        .header("X-Forwarded-For", "198.51.100.11")
        .header("Sec-Fetch-Mode", "cors")
        .header("User-Agent", "node")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    call(&app, &key, "192.0.2.200", Some("curl/8.5.0"), false).await;
    let raised = eventually(Duration::from_secs(5), || async {
        events(&app, &user, id)
            .await
            .iter()
            .any(|e| e["type"] == "new_network")
    })
    .await;
    assert!(raised.is_some(), "{:?}", events(&app, &user, id).await);
    // Another new network within 24 h: no second one.
    call(&app, &key, "192.0.3.1", Some("curl/8.5.0"), false).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let all = events(&app, &user, id).await;
    let new: Vec<&Value> = all.iter().filter(|e| e["type"] == "new_network").collect();
    assert_eq!(new.len(), 1, "{all:?}");
    assert_eq!(new[0]["detail"]["network"], "192.0.2.0/24");
    assert_eq!(new[0]["detail"]["user_agent"], "curl/8.5.0");
    assert!(all.iter().all(|e| e["type"] != "browser_use"), "{all:?}");
}

async fn clients_survive_a_restart(backend: Backend) {
    let app = app(backend).await;
    let user = app.user(0).await;
    let (k, key) = app.create_key(&user, "ci").await;
    let id = k["id"].as_str().unwrap().to_owned();
    call(&app, &key, "203.0.113.9", Some("curl/8.5.0"), false).await;
    // A clean stop flushes what was counted.
    let (db, config) = app.stop().await;
    let app = TestApp::start(db, config).await;
    let body = clients(&app, &user, &id, "").await;
    assert_eq!(body["data"][0]["network"], "203.0.113.0/24", "{body}");
    assert_eq!(body["data"][0]["requests"], 1);
}

async fn an_hour_far_over_the_keys_busiest_of_the_week_is_a_usage_spike(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.key_signals.spike_min_requests = 20;
        c.key_signals.spike_factor = 10;
    })
    .await;
    let user = app.user(0).await;
    let (k, key) = app.create_key(&user, "steady").await;
    let id = k["id"].as_str().unwrap();
    // A week of history: created 8 days ago, its busiest hour 2 requests, 3 days ago.
    let now = SystemClock.now().as_millis();
    let hour = 3_600_000;
    execute_sql(
        &app.store,
        &format!(
            "UPDATE api_keys SET created_at = {} WHERE id = '{id}'",
            now - 8 * 24 * hour
        ),
    )
    .await;
    let three_days_ago = (now / hour - 72) * hour;
    execute_sql(
        &app.store,
        &format!(
            "INSERT INTO key_usage_hours (key_id, hour_start, count) VALUES ('{id}', {three_days_ago}, 2)"
        ),
    )
    .await;
    // 19 requests: under the minimum, nothing.
    for _ in 0..19 {
        assert_eq!(
            app.public_get(&key, "/api/v1/public/me").await.status(),
            200
        );
    }
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(
        events(&app, &user, id)
            .await
            .iter()
            .all(|e| e["type"] != "usage_spike")
    );
    // The 21st: over 10 x 2 and the minimum.
    for _ in 0..2 {
        assert_eq!(
            app.public_get(&key, "/api/v1/public/me").await.status(),
            200
        );
    }
    let raised = eventually(Duration::from_secs(5), || async {
        events(&app, &user, id)
            .await
            .iter()
            .any(|e| e["type"] == "usage_spike")
    })
    .await;
    assert!(raised.is_some(), "{:?}", events(&app, &user, id).await);
    let all = events(&app, &user, id).await;
    let spike = all.iter().find(|e| e["type"] == "usage_spike").unwrap();
    assert_eq!(spike["detail"]["busiest_hour_before"], 2, "{spike}");
    assert!(spike["detail"]["count"].as_u64().unwrap() >= 21, "{spike}");
}

async fn signals_off_keeps_the_clients_and_raises_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = "127.0.0.1/32".parse().unwrap();
        c.key_signals.enabled = false;
        c.key_signals.established_after = Duration::ZERO;
    })
    .await;
    let user = app.user(0).await;
    let (k, key) = app.create_key(&user, "quiet").await;
    let id = k["id"].as_str().unwrap();
    call(&app, &key, "198.51.100.10", None, false).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    call(&app, &key, "192.0.2.1", None, true).await;
    let listed = eventually(Duration::from_secs(2), || async {
        clients(&app, &user, id, "").await["data"]
            .as_array()
            .map_or(0, Vec::len)
            == 2
    })
    .await;
    assert!(listed.is_some());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let all = events(&app, &user, id).await;
    assert!(
        all.iter()
            .all(|e| e["type"] != "new_network" && e["type"] != "browser_use"),
        "{all:?}"
    );
}

on_both_backends!(
    an_hour_far_over_the_keys_busiest_of_the_week_is_a_usage_spike,
    signals_off_keeps_the_clients_and_raises_nothing,
    clients_are_listed_by_network_and_user_agent_most_recent_first,
    a_new_network_of_an_established_key_is_an_event_once,
    clients_survive_a_restart,
);
