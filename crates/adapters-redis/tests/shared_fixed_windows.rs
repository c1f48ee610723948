//! Per-minute limits through one Redis: two "instances" (each its own `RedisShared`) share one
//! window per subject; refusals are learnt locally; the in-process fallback counts while Redis
//! is unreachable. Windows are read from a test clock, so no test waits for a minute to end.

// Test helpers fail loudly, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use adapters_inprocess::LocalFixedWindow;
use adapters_redis::{RedisFixedWindow, RedisShared};
use common::{PrivateRedis, SHARED_URL, TestClock};
use keys_domain::ports::FixedWindowLimiter;

const MINUTE_MS: i64 = 60_000;

/// The count Redis holds for `subject` of limiter `name` in the window starting at `start_ms`.
async fn redis_count(name: &str, subject: &str, start_ms: i64) -> Option<u64> {
    let client = redis::Client::open(SHARED_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let window = start_ms / MINUTE_MS;
    redis::cmd("GET")
        .arg(format!("jt:fw:{name}:{subject}:{window}"))
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Nothing here may wait on Redis for long, up or down.
async fn promptly<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(2), f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_together_take_exactly_the_limit_per_window() {
    let t0 = common::early_in_this_minute();
    let clock = TestClock::at(t0);
    let a = Arc::new(common::fixed_window(
        common::shared_redis().await,
        "test-takes",
        7,
        clock.clone(),
    ));
    let b = Arc::new(common::fixed_window(
        common::shared_redis().await,
        "test-takes",
        7,
        clock.clone(),
    ));
    let subject = common::unique("user");
    let taken = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (subject, taken) = (subject.clone(), taken.clone());
            tokio::spawn(async move {
                for _ in 0..5 {
                    match limiter.take(&subject).await {
                        Ok(()) => {
                            taken.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(retry_after) => assert_eq!(retry_after, 55),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        taken.load(Ordering::Relaxed),
        7,
        "40 takes on two instances"
    );
    assert_eq!(
        redis_count("test-takes", &subject, t0).await,
        Some(7),
        "refused takes count nothing"
    );
    assert!(a.refused(&subject).is_some() || b.refused(&subject).is_some());
    assert_eq!(a.refused(&"someone else"), None);

    // The next minute is a new window on both, and the ended one is forgotten by a sweep.
    clock.set(t0 + MINUTE_MS);
    assert_eq!(a.refused(&subject), None);
    assert_eq!(a.take(&subject).await, Ok(()));
    assert_eq!(b.take(&subject).await, Ok(()));
    assert_eq!(
        redis_count("test-takes", &subject, t0 + MINUTE_MS).await,
        Some(2)
    );
    a.sweep();
    b.sweep();
    assert_eq!((a.tracked(), b.tracked()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_past_the_limit_marks_the_subject_refused_on_the_instance_that_counted() {
    let t0 = common::early_in_this_minute();
    let clock = TestClock::at(t0);
    let limiter = |shared| common::fixed_window(shared, "test-counts", 3, clock.clone());
    let a = limiter(common::shared_redis().await);
    let b = limiter(common::shared_redis().await);
    let c = limiter(common::shared_redis().await);
    let subject = common::unique("203.0.113.7");

    a.count(&subject).await;
    a.count(&subject).await;
    assert_eq!(a.refused(&subject), None);
    b.count(&subject).await;
    assert_eq!(b.refused(&subject), Some(55), "b saw the third of three");
    assert_eq!(a.refused(&subject), None, "a has not heard yet");
    a.count(&subject).await;
    assert_eq!(
        a.refused(&subject),
        Some(55),
        "a learnt it from its own count"
    );
    assert_eq!(redis_count("test-counts", &subject, t0).await, Some(4));

    // A full window is not asked again: counts and takes end on the instance.
    a.count(&subject).await;
    assert_eq!(a.take(&subject).await, Err(55));
    assert_eq!(redis_count("test-counts", &subject, t0).await, Some(4));
    // An instance that did not know asks Redis, is refused, and counts nothing.
    clock.set(t0 + 25_500);
    assert_eq!(c.refused(&subject), None);
    assert_eq!(c.take(&subject).await, Err(30));
    assert_eq!(c.refused(&subject), Some(30));
    assert_eq!(redis_count("test-counts", &subject, t0).await, Some(4));

    // Other subjects and other limiters are counted apart.
    let other = limiter(common::shared_redis().await);
    assert_eq!(other.take(&common::unique("203.0.113.8")).await, Ok(()));
    let another_name = common::fixed_window(
        common::shared_redis().await,
        "test-counts-other",
        3,
        clock.clone(),
    );
    assert_eq!(another_name.take(&subject).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_counts_while_redis_is_unreachable() {
    // A free port with nothing listening: Redis is down from the start.
    let closed = PrivateRedis::reserve();
    let shared = RedisShared::connect(&closed.url()).await.unwrap();
    assert!(!shared.is_up());
    let fallback = Arc::new(LocalFixedWindow::new(2));
    let limiter = RedisFixedWindow::new(shared, "test-down", 2, fallback.clone());

    assert_eq!(promptly("take", limiter.take("u")).await, Ok(()));
    assert_eq!(promptly("take", limiter.take("u")).await, Ok(()));
    let refused = promptly("take", limiter.take("u")).await;
    assert!(matches!(refused, Err(59..=60)), "{refused:?}");
    assert!(fallback.refused(&"u").is_some(), "counted in the fallback");
    assert!(
        limiter.refused(&"u").is_some(),
        "refused reads the fallback"
    );

    promptly("count", limiter.count("ip")).await;
    promptly("count", limiter.count("ip")).await;
    assert!(fallback.refused(&"ip").is_some());
    assert!(limiter.refused(&"ip").is_some());
    assert_eq!(limiter.tracked(), 0, "nothing learnt from Redis");
}

/// While Redis answers, the fallback counts nothing; once Redis is killed, it takes over; a
/// subject that filled its window there stays refused after Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_moves_counting_to_the_fallback_and_back() {
    let mut redis = tokio::task::spawn_blocking(PrivateRedis::started)
        .await
        .unwrap();
    let shared = RedisShared::connect(&redis.url()).await.unwrap();
    assert!(shared.is_up());
    let fallback = Arc::new(LocalFixedWindow::new(2));
    let limiter = RedisFixedWindow::new(shared.clone(), "test-outage", 2, fallback.clone());
    assert_eq!(promptly("take", limiter.take("shared")).await, Ok(()));
    assert_eq!(fallback.tracked(), 0);

    redis = tokio::task::spawn_blocking(move || {
        redis.kill();
        redis
    })
    .await
    .unwrap();
    common::eventually("Redis marked down", Duration::from_secs(5), || {
        !shared.is_up()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(promptly("take", limiter.take("local")).await, Ok(()));
    }
    assert!(fallback.refused(&"local").is_some());

    redis = tokio::task::spawn_blocking(move || {
        redis.start();
        redis
    })
    .await
    .unwrap();
    common::eventually("Redis marked up", Duration::from_secs(5), || shared.is_up()).await;
    assert!(limiter.refused(&"local").is_some());
    assert!(promptly("take", limiter.take("local")).await.is_err());
    // A fresh Redis: the shared subject starts over there.
    assert_eq!(promptly("take", limiter.take("shared")).await, Ok(()));
    assert_eq!(promptly("take", limiter.take("shared")).await, Ok(()));
    assert!(promptly("take", limiter.take("shared")).await.is_err());
    drop(redis);
}
