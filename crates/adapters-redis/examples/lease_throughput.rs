//! Rough throughput of one hot key: the in-process limiter against the Redis leasing limiter.
//! Not a test (no speed assertions); run it to see the ratio:
//! `cargo run --release -p adapters-redis --example lease_throughput [redis-url]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adapters_inprocess::LocalRateLimiter;
use adapters_redis::{RedisRateLimiter, RedisShared};
use keys_domain::KeyId;
use keys_domain::ports::RateLimiter;
use keys_domain::rate_limit::RateLimitPolicy;

const TASKS: usize = 8;
const RUN: Duration = Duration::from_secs(3);

async fn hammer(limiter: Arc<dyn RateLimiter>, key: &str) -> (f64, f64) {
    let (allowed, total) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (limiter, allowed, total) = (limiter.clone(), allowed.clone(), total.clone());
            let key = KeyId::new(key);
            tokio::spawn(async move {
                while start.elapsed() < RUN {
                    if limiter.check(&key).await.allowed {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                    total.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let per_sec = |n: &AtomicU64| n.load(Ordering::Relaxed) as f64 / secs;
    (per_sec(&total), per_sec(&allowed))
}

// Printing the figures is this example's purpose.
#[allow(clippy::print_stdout)]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let stamp = std::process::id();
    for (name, policy) in [
        (
            "allowing (20000/s, burst 4000)",
            RateLimitPolicy {
                per_second: 20_000,
                burst: 4_000,
            },
        ),
        (
            "refusing (20/s, burst 40)",
            RateLimitPolicy {
                per_second: 20,
                burst: 40,
            },
        ),
    ] {
        let local = hammer(Arc::new(LocalRateLimiter::new(policy)), "key_bench_local").await;
        let shared = RedisShared::connect(&url).await?;
        anyhow::ensure!(shared.is_up(), "Redis at {url} is not answering");
        let key = format!("key_bench_{stamp}_{}", policy.per_second);
        let redis = hammer(
            Arc::new(RedisRateLimiter::new(
                shared,
                policy,
                Arc::new(LocalRateLimiter::new(policy)),
            )),
            &key,
        )
        .await;
        println!(
            "{name}: local {:.0} checks/s ({:.0} allowed/s); redis {:.0} checks/s ({:.0} allowed/s); ratio {:.2}",
            local.0,
            local.1,
            redis.0,
            redis.1,
            redis.0 / local.0
        );
    }
    Ok(())
}
