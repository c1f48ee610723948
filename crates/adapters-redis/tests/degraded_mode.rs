//! Redis down at start, then up, then killed and restarted: the adapters answer locally while it
//! is down, never hang, and go back to shared mode (and resync revocations) when it returns.
//! Uses a private redis-server on a free port; the shared one on 6379 is never touched.

// Test helpers fail loudly, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use adapters_redis::{RedisRateLimiter, RedisRevocationBus, RedisShared, RedisUsageWindow};
use common::heard::Heard;
use keys_domain::ports::{RateLimiter, RevocationNotifier, UsageWindow};
use keys_domain::rate_limit::RateLimitPolicy;
use keys_domain::{KeyHash, KeyId, Timestamp};

const POLICY: RateLimitPolicy = RateLimitPolicy {
    per_second: 1,
    burst: 3,
};

/// A request is never held up long by Redis, up or down.
async fn promptly<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(2), f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

async fn redis_get(url: &str, key: &str) -> Option<String> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

async fn redis_exists(url: &str, key: &str) -> bool {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(&mut conn)
        .await
        .unwrap()
        == 1
}

/// Checks that limiter, window and bus work against Redis right now.
async fn assert_shared(
    url: &str,
    limiter: &RedisRateLimiter,
    window: &RedisUsageWindow,
    now: Timestamp,
) {
    let key = KeyId::new(common::unique("key_shared"));
    let d = promptly("check", limiter.check(&key)).await;
    assert!(d.allowed);
    assert_eq!(d.remaining, 2);
    assert!(
        redis_exists(url, &format!("jt:rl:{{{key}}}")).await,
        "bucket in Redis"
    );
    let counted = promptly("add", window.add(&key, 7, now)).await;
    assert_eq!((counted.before, counted.after), (0, 7));
    let hour = now.as_millis() / 3_600_000;
    assert_eq!(
        redis_get(url, &format!("jt:usage:{{{key}}}:{hour}"))
            .await
            .as_deref(),
        Some("7"),
        "window bucket in Redis"
    );
}

/// Checks that limiter, window and bus answer locally, promptly, without errors.
async fn assert_local(
    shared: &RedisShared,
    limiter: &RedisRateLimiter,
    window: &RedisUsageWindow,
    bus: &RedisRevocationBus,
    now: Timestamp,
) {
    assert!(!shared.is_up());
    let key = KeyId::new(common::unique("key_local"));
    for remaining in [2, 1, 0] {
        let d = promptly("degraded check", limiter.check(&key)).await;
        assert!(d.allowed);
        assert_eq!(d.remaining, remaining);
    }
    let refused = promptly("degraded check", limiter.check(&key)).await;
    assert!(!refused.allowed, "the local fallback still limits");
    assert!(refused.retry_after.is_some());
    let counted = promptly("degraded add", window.add(&key, 3, now)).await;
    assert_eq!((counted.before, counted.after), (0, 3));
    let counted = promptly("degraded add", window.add(&key, 1, now)).await;
    assert_eq!((counted.before, counted.after), (3, 4));
    promptly("degraded publish", bus.key_changed(&KeyHash::of("jt_sk_x"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degrades_while_redis_is_down_and_recovers_when_it_returns() {
    let mut server = common::PrivateRedis::reserve();
    let url = server.url();
    let now = Timestamp::from_millis(1_800_000_000_000);

    // Down at start: connecting still succeeds, in degraded mode.
    let shared = promptly("connect", RedisShared::connect(&url))
        .await
        .unwrap();
    assert!(!shared.is_up());
    let limiter = common::limiter(shared.clone(), POLICY);
    let window = common::window(shared.clone());
    let bus = RedisRevocationBus::new(shared.clone());
    let heard = Arc::new(Heard::default());
    let listener = bus.spawn_listener(heard.clone());
    assert_local(&shared, &limiter, &window, &bus, now).await;

    // Redis appears: shared mode, and the listener subscribes (resync #1).
    server.start();
    common::eventually("is_up after start", Duration::from_secs(10), || {
        shared.is_up()
    })
    .await;
    common::eventually("first subscription", Duration::from_secs(10), || {
        heard.resyncs() >= 1
    })
    .await;
    assert_shared(&url, &limiter, &window, now).await;

    // Redis dies: requests keep being answered, locally, and is_up() turns false.
    server.kill();
    for _ in 0..5 {
        promptly("check while dying", limiter.check(&KeyId::new("key_dying"))).await;
        promptly(
            "add while dying",
            window.add(&KeyId::new("key_dying"), 1, now),
        )
        .await;
    }
    common::eventually("is_up false after kill", Duration::from_secs(10), || {
        !shared.is_up()
    })
    .await;
    assert_local(&shared, &limiter, &window, &bus, now).await;
    let resyncs_before_restart = heard.resyncs();

    // Redis returns (empty: messages and counts meanwhile are lost): shared again, resync again.
    server.start();
    common::eventually("is_up after restart", Duration::from_secs(10), || {
        shared.is_up()
    })
    .await;
    common::eventually("resubscription", Duration::from_secs(10), || {
        heard.resyncs() > resyncs_before_restart
    })
    .await;
    assert_shared(&url, &limiter, &window, now).await;

    listener.abort();
}
