//! Health, readiness, rate limiting, several instances, restart and graceful shutdown.

use std::time::{Duration, Instant};

use keys_domain::rate_limit::RateLimitPolicy;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp, eventually, expect_error, header, parts, test_config};

async fn health_and_readiness(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, h, body) = parts(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({ "status": "ok" })));
    assert!(!header(&h, "x-request-id").is_empty());
    let (status, _, body) = parts(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "status": "ok", "database": "up", "redis": "not configured", "smtp": "not configured" })
    );
}

async fn the_rate_limit_answers_429_with_headers_and_still_counts_usage(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.rate_limit = RateLimitPolicy {
            per_second: 1,
            burst: 3,
        };
    })
    .await;
    let user = app.user(5).await;
    let (k, key) = app.create_key(&user, "ci").await;
    let mut remaining = Vec::new();
    for path in [
        "/api/v1/public/credits/balance",
        "/api/v1/public/documents/doc_nope",
        "/api/v1/public/me",
    ] {
        let res = app.public_get(&key, path).await;
        let h = res.headers().clone();
        assert!(res.status() == 200 || res.status() == 404);
        assert_eq!(header(&h, "ratelimit-policy"), "\"default\";q=3;w=3");
        assert_eq!(header(&h, "ratelimit-limit"), "3");
        let r = header(&h, "ratelimit-remaining").to_owned();
        assert!(header(&h, "ratelimit").starts_with(&format!("\"default\";r={r};t=")));
        header(&h, "ratelimit-reset").parse::<u64>().unwrap();
        remaining.push(r.parse::<u32>().unwrap());
    }
    assert!(remaining.windows(2).all(|w| w[1] < w[0]), "{remaining:?}");

    let res = app.public_get(&key, "/api/v1/public/me").await;
    let (e, h) = expect_error(res, 429, "rate_limited").await;
    let retry = header(&h, "retry-after").parse::<u64>().unwrap();
    assert!(retry >= 1);
    assert!(e["retry_after"].as_u64().unwrap() >= 1);
    assert_eq!(header(&h, "ratelimit-remaining"), "0");
    assert!(h.get("ratelimit-policy").is_some() && h.get("ratelimit").is_some());

    // Unauthenticated requests carry no key state.
    let res = app
        .client
        .get(app.url("/api/v1/public/me"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("ratelimit-limit").is_none());

    let id = k["id"].as_str().unwrap();
    let counted = eventually(Duration::from_secs(2), || async {
        app.get_key(&user, id).await["usage_count"] == 4
    })
    .await;
    assert!(counted.is_some(), "the 429 must be counted too");

    // The limit is per key: another key of the same user is not limited.
    let (_, other) = app.create_key(&user, "other").await;
    assert_eq!(
        app.public_get(&other, "/api/v1/public/me").await.status(),
        200
    );
}

/// Creates a key on A, has B cache it as accepted, revokes it through A's dashboard, and
/// asserts B refuses it with `revoked_api_key` within the contract's second. What carries the
/// revocation to B (the change feed, Redis, a TTL) is up to the caller's configuration.
async fn assert_b_refuses_within_1s_a_key_revoked_on_a(a: &TestApp, b: &TestApp) {
    let user = a.user(5).await;
    let (k, key) = a.create_key(&user, "ci").await;
    // B has the key cached as accepted.
    assert_eq!(b.public_get(&key, "/api/v1/public/me").await.status(), 200);
    assert_eq!(b.public_get(&key, "/api/v1/public/me").await.status(), 200);

    let id = k["id"].as_str().unwrap();
    let res = a
        .dash(&user, Method::POST, &format!("/api/v1/keys/{id}/revoke"))
        .send()
        .await
        .unwrap();
    let revoked_at = Instant::now();
    assert_eq!(res.status(), 200);
    let took = eventually(Duration::from_secs(5), || async {
        b.public_get(&key, "/api/v1/public/me").await.status() == 401
    })
    .await
    .expect("instance B never refused the revoked key");
    assert!(
        took <= Duration::from_secs(1),
        "B accepted a revoked key for {took:?} (since the revoke answered {:?} ago)",
        revoked_at.elapsed()
    );
    expect_error(
        b.public_get(&key, "/api/v1/public/me").await,
        401,
        "revoked_api_key",
    )
    .await;
}

async fn a_revocation_reaches_another_instance_within_1s(backend: Backend) {
    let a = TestApp::spawn(backend).await;
    let mut config = a.config.clone();
    config.bind = "127.0.0.1:0".into();
    let b = TestApp::start(a.db.clone(), config).await;
    assert_b_refuses_within_1s_a_key_revoked_on_a(&a, &b).await;
}

/// Without Redis, another instance's revocation reaches B through the store's change feed: the
/// cache TTL is long here, so only the feed can make B refuse within the contract's second.
async fn without_redis_a_revocation_reaches_other_instances_through_the_change_feed(
    backend: Backend,
) {
    let db = crate::helpers::Database::fresh(backend).await;
    let mut config = test_config(&db.url);
    config.tuning.key_cache_ttl = Duration::from_secs(30);
    let a = TestApp::start(db.clone(), config.clone()).await;
    let b = TestApp::start(db, config).await;
    assert_b_refuses_within_1s_a_key_revoked_on_a(&a, &b).await;
}

async fn graceful_shutdown_flushes_pending_usage(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.tuning.usage_flush_interval = Duration::from_secs(3600);
    })
    .await;
    let user = app.user(5).await;
    let (k, key) = app.create_key(&user, "ci").await;
    for _ in 0..5 {
        assert_eq!(
            app.public_get(&key, "/api/v1/public/me").await.status(),
            200
        );
    }
    let store = app.store.clone();
    let id = k["id"].as_str().unwrap().to_owned();
    let user_id = user.id.clone();
    let (_db, _) = app.stop().await; // keeps the database until the end
    let stored =
        keys_domain::ports::KeyStore::find(store.as_ref(), &user_id, &keys_domain::KeyId::new(id))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(stored.usage_count, 5);
    assert!(stored.last_used_at.is_some());
}

on_both_backends!(
    health_and_readiness,
    the_rate_limit_answers_429_with_headers_and_still_counts_usage,
    a_revocation_reaches_another_instance_within_1s,
    without_redis_a_revocation_reaches_other_instances_through_the_change_feed,
    graceful_shutdown_flushes_pending_usage,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_keys_in_the_embedded_file() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.user(3).await;
    let (k, key) = app.create_key(&user, "ci").await;
    assert_eq!(
        app.public_get(&key, "/api/v1/public/me").await.status(),
        200
    );
    let (db, mut config) = app.stop().await;
    config.bind = "127.0.0.1:0".into();
    let app = TestApp::start(db, config).await;
    let (status, _, body) =
        parts(app.public_get(&key, "/api/v1/public/credits/balance").await).await;
    assert_eq!((status, body), (200, json!({ "balance": 3 })));
    let token_user = crate::helpers::TestUser {
        id: user.id.clone(),
        email: user.email.clone(),
        token: app.token_for(&user.id),
    };
    let got = app.get_key(&token_user, k["id"].as_str().unwrap()).await;
    assert!(got["usage_count"].as_u64().unwrap() >= 1, "{got}");
}

fn redis_url() -> String {
    let url = "redis://127.0.0.1:6379".to_owned();
    assert!(
        std::net::TcpStream::connect("127.0.0.1:6379").is_ok(),
        "Redis is not reachable at 127.0.0.1:6379; start it with: redis-server --daemonize yes"
    );
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_redis_up_or_degraded() {
    let up = TestApp::spawn_with(Backend::Sqlite, |c| c.redis_url = Some(redis_url())).await;
    let (status, _, body) = parts(up.client.get(up.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["redis"], "up");

    // Nothing listens on a port we just freed: configured but down means degraded, still 200.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    })
    .await;
    let (status, _, body) = parts(down.client.get(down.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "status": "degraded", "database": "up", "redis": "down", "smtp": "not configured" })
    );
    // And it still serves, in local mode.
    let user = down.user(1).await;
    let (_, key) = down.create_key(&user, "ci").await;
    assert_eq!(
        down.public_get(&key, "/api/v1/public/me").await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_a_revocation_is_announced_to_other_instances() {
    let db = crate::helpers::Database::fresh(Backend::Sqlite).await;
    let mut config = test_config(&db.url);
    config.redis_url = Some(redis_url());
    // Long cache TTL and no change feed: only the announcement can make B refuse the key quickly.
    config.tuning.key_cache_ttl = Duration::from_secs(30);
    config.tuning.key_feed_interval = None;
    let a = TestApp::start(db.clone(), config.clone()).await;
    let b = TestApp::start(db, config).await;
    assert_b_refuses_within_1s_a_key_revoked_on_a(&a, &b).await;
}
