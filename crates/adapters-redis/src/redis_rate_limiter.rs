//! Per-key rate limits shared by all instances: a token bucket per key in Redis, from which each
//! instance leases small batches of tokens that it serves locally.
//!
//! Every token served was first taken from the shared bucket by one atomic script, and unused
//! leased tokens lapse rather than return, so all instances together never exceed the bucket.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use keys_domain::KeyId;
use keys_domain::ports::RateLimiter;
use keys_domain::rate_limit::{RateDecision, RateLimitPolicy};
use redis::Script;
use tokio::sync::Mutex as AsyncMutex;

use crate::key_lease::{Grant, KeyLease, LeaseConfig};
use crate::redis_shared::RedisShared;

/// One key's lease on this instance. The lease itself sits behind a plain mutex, held only
/// for a few arithmetic steps, so the hot path never parks a task; the async `refill` lock is
/// taken only to ask Redis, so that one request per key and instance is in flight there.
#[derive(Default)]
struct KeyEntry {
    lease: Mutex<KeyLease>,
    refill: AsyncMutex<()>,
}

fn lock(lease: &Mutex<KeyLease>) -> std::sync::MutexGuard<'_, KeyLease> {
    lease
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The shared limiter; falls back to the limiter it is given while Redis is down.
pub struct RedisRateLimiter {
    shared: RedisShared,
    policy: RateLimitPolicy,
    config: LeaseConfig,
    script: Script,
    /// One entry per recently active key; its async mutex makes one Redis call at a time per key.
    /// Sharded, so requests for different keys do not wait on one lock.
    leases: DashMap<KeyId, Arc<KeyEntry>, foldhash::fast::RandomState>,
    /// The in-process limiter used while Redis is down.
    fallback: Arc<dyn RateLimiter>,
}

impl RedisRateLimiter {
    /// A limiter enforcing `policy` across instances, and `fallback` (the same policy, in this
    /// process) while Redis is unreachable.
    #[must_use]
    pub fn new(
        shared: RedisShared,
        policy: RateLimitPolicy,
        fallback: Arc<dyn RateLimiter>,
    ) -> Self {
        Self {
            shared,
            policy,
            config: LeaseConfig::for_policy(policy),
            script: Script::new(include_str!("lease.lua")),
            leases: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            fallback,
        }
    }

    /// Overrides how long leased tokens live (default 250 ms). Shorter means fewer stranded
    /// tokens and more round trips.
    #[must_use]
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl;
        self
    }

    /// Overrides the largest lease (default a quarter of the burst, at least 1).
    #[must_use]
    pub fn with_max_lease(mut self, max: u32) -> Self {
        self.config.max_size = max.max(1);
        self
    }

    /// The policy this limiter enforces.
    #[must_use]
    pub const fn policy(&self) -> RateLimitPolicy {
        self.policy
    }

    /// Forgets idle lease entries (the background sweeper calls this).
    pub fn sweep(&self) {
        let now = Instant::now();
        // An entry in use (cloned or locked) stays; the rest only if it still matters.
        self.leases.retain(|_, lease| {
            Arc::strong_count(lease) > 1
                || lease
                    .lease
                    .try_lock()
                    .map_or(true, |lease| !lease.is_idle(now, self.config))
        });
    }

    /// Lease entries currently kept (for tests).
    #[must_use]
    pub fn tracked_keys(&self) -> usize {
        self.leases.len()
    }

    fn entry(&self, key: &KeyId) -> Arc<KeyEntry> {
        if let Some(lease) = self.leases.get(key) {
            return lease.clone();
        }
        self.leases.entry(key.clone()).or_default().clone()
    }

    /// One atomic take of up to `want` tokens from `key`'s shared bucket.
    async fn take(&self, key: &KeyId, want: u32) -> Option<Grant> {
        let bucket = format!("jt:rl:{{{key}}}");
        let (per_second, burst) = (self.policy.per_second.max(1), self.policy.burst.max(1));
        let script = &self.script;
        let reply: (i64, i64, i64, i64) = self
            .shared
            .run("rate-limit lease", |mut conn| async move {
                script
                    .key(bucket)
                    .arg(per_second)
                    .arg(burst)
                    .arg(want)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let (granted, bucket_micro, full_us, wait_us) = reply;
        Some(Grant {
            granted: u32::try_from(granted).unwrap_or(0).min(want),
            bucket_micro: u64::try_from(bucket_micro).unwrap_or(0),
            full_after: Duration::from_micros(u64::try_from(full_us).unwrap_or(0)),
            wait: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)),
        })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &KeyId) -> RateDecision {
        if !self.shared.is_up() {
            return self.fallback.check(key).await;
        }
        let entry = self.entry(key);
        if let Some(decision) =
            lock(&entry.lease).serve_local(Instant::now(), self.policy, self.config)
        {
            return decision;
        }
        let _refill = entry.refill.lock().await;
        // Redis may have gone down while this request queued behind another one for the key.
        if !self.shared.is_up() {
            return self.fallback.check(key).await;
        }
        let asked_at = Instant::now();
        // Another request may have refilled the lease while this one waited.
        let want = match lock(&entry.lease).try_local(asked_at, self.policy, self.config) {
            Ok(decision) => return decision,
            Err(want) => want,
        };
        match self.take(key, want).await {
            // Dated from before the call, so a lease never outlives its TTL from the take.
            Some(grant) => lock(&entry.lease).apply(asked_at, grant, self.policy),
            None => self.fallback.check(key).await,
        }
    }
}
