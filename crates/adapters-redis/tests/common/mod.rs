//! Helpers for the tests against a real Redis.

// Test support: failing loudly is the point.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod heard;

use std::net::TcpStream;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use adapters_inprocess::{LocalFixedWindow, LocalRateLimiter, LocalUsageWindow};
use adapters_redis::{RedisFixedWindow, RedisRateLimiter, RedisShared, RedisUsageWindow};
use keys_domain::Timestamp;
use keys_domain::ports::Clock;
use keys_domain::rate_limit::RateLimitPolicy;

pub const SHARED_URL: &str = "redis://127.0.0.1:6379";

/// The shared Redis, or a loud failure saying how to start it.
pub async fn shared_redis() -> RedisShared {
    assert!(
        TcpStream::connect_timeout(&"127.0.0.1:6379".parse().unwrap(), Duration::from_secs(2))
            .is_ok(),
        "these tests need Redis on 127.0.0.1:6379; start it with \
         `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no`"
    );
    let shared = RedisShared::connect(SHARED_URL).await.unwrap();
    assert!(
        shared.is_up(),
        "Redis on 127.0.0.1:6379 did not answer PING"
    );
    shared
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits until `cond` holds, failing after `limit`.
pub async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// Not every test binary that includes this module starts its own Redis.
#[allow(unused_imports)]
pub use adapters_redis::testing::PrivateRedis;

/// A shared limiter with the in-process fallback production wires in.
pub fn limiter(shared: RedisShared, policy: RateLimitPolicy) -> RedisRateLimiter {
    RedisRateLimiter::new(shared, policy, Arc::new(LocalRateLimiter::new(policy)))
}

/// A shared window with the in-process fallback production wires in.
pub fn window(shared: RedisShared) -> RedisUsageWindow {
    RedisUsageWindow::new(shared, Arc::new(LocalUsageWindow::new()))
}

/// A shared per-minute limiter with the in-process fallback production wires in, reading `clock`.
pub fn fixed_window(
    shared: RedisShared,
    name: &'static str,
    limit: u32,
    clock: Arc<TestClock>,
) -> RedisFixedWindow {
    RedisFixedWindow::new(shared, name, limit, Arc::new(LocalFixedWindow::new(limit)))
        .with_clock(clock)
}

/// A clock that moves only when told.
pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn at(ms: i64) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(ms)))
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::Relaxed);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::Relaxed))
    }
}

/// Five seconds into the current minute of the Unix clock, in milliseconds.
pub fn early_in_this_minute() -> i64 {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    now - now % 60_000 + 5_000
}
