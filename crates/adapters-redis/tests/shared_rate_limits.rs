//! Two "instances" (each its own `RedisShared`) limiting one key through one Redis.

// Test helpers fail loudly, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use keys_domain::KeyId;
use keys_domain::ports::RateLimiter;
use keys_domain::rate_limit::RateLimitPolicy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_together_never_exceed_burst_plus_rate() {
    let policy = RateLimitPolicy {
        per_second: 50,
        burst: 20,
    };
    let a = Arc::new(common::limiter(common::shared_redis().await, policy));
    let b = Arc::new(common::limiter(common::shared_redis().await, policy));
    let key = KeyId::new(common::unique("key_hammer"));
    let allowed = Arc::new(AtomicU32::new(0));
    let refused = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let run_for = Duration::from_secs(2);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (key, allowed, refused) = (key.clone(), allowed.clone(), refused.clone());
            tokio::spawn(async move {
                while start.elapsed() < run_for {
                    let d = limiter.check(&key).await;
                    assert_eq!(d.limit, 20);
                    if d.allowed {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        assert!(d.retry_after.is_some());
                        assert_eq!(d.remaining, 0);
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let allowed = allowed.load(Ordering::Relaxed);
    let bound = 20.0 + 50.0 * elapsed.as_secs_f64();
    println!(
        "allowed {allowed}, refused {}, in {elapsed:?}; bound {bound:.1}",
        refused.load(Ordering::Relaxed)
    );
    assert!(
        f64::from(allowed) <= bound,
        "{allowed} allowed > burst + rate × elapsed = {bound}"
    );
    assert!(
        allowed >= 20,
        "the full burst should have been served at least"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_key_gets_exact_remaining_counts_across_instances() {
    // One token a second: the whole sequence runs well within a second, so nothing refills.
    let policy = RateLimitPolicy {
        per_second: 1,
        burst: 10,
    };
    let ttl = Duration::from_millis(20);
    let a = common::limiter(common::shared_redis().await, policy).with_lease_ttl(ttl);
    let b = common::limiter(common::shared_redis().await, policy).with_lease_ttl(ttl);
    let key = KeyId::new(common::unique("key_quiet"));
    for expected in (4..10).rev() {
        let limiter = if expected % 2 == 0 { &a } else { &b };
        let d = limiter.check(&key).await;
        assert!(d.allowed);
        assert_eq!(d.remaining, expected);
        assert_eq!(d.limit, 10);
        assert_eq!(d.window, Duration::from_secs(10));
        let used = 10 - expected;
        assert!(
            d.reset_after > Duration::from_secs(u64::from(used) - 1)
                && d.reset_after <= Duration::from_secs(u64::from(used)),
            "reset_after {:?} for {used} used",
            d.reset_after
        );
        // Quiet: longer than a lease lives, so every request asks Redis for one token.
        tokio::time::sleep(ttl + Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_carries_retry_after_and_the_bucket_refills() {
    let policy = RateLimitPolicy {
        per_second: 10,
        burst: 3,
    };
    let a = common::limiter(common::shared_redis().await, policy);
    let b = common::limiter(common::shared_redis().await, policy);
    let key = KeyId::new(common::unique("key_refuse"));
    let mut allowed = 0;
    let mut refusal = None;
    for i in 0..10 {
        let d = if i % 2 == 0 {
            a.check(&key).await
        } else {
            b.check(&key).await
        };
        if d.allowed {
            allowed += 1;
        } else {
            refusal.get_or_insert(d);
        }
    }
    assert!(
        allowed <= 3 + 1,
        "at most the burst (plus one refill on a slow run): {allowed}"
    );
    let refusal = refusal.expect("a burst of 3 cannot allow 10 at once");
    let retry = refusal.retry_after.unwrap();
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_millis(100),
        "{retry:?}"
    );
    assert_eq!(refusal.retry_after_seconds(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(a.check(&key).await.allowed, "refilled after 3 intervals");
}
