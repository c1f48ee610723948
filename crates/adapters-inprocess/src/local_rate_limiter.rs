//! A per-key GCRA rate limiter in process memory, built on `governor`.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter as Governor};
use keys_domain::ports::RateLimiter;
use keys_domain::rate_limit::{RateDecision, RateLimitPolicy};
use keys_domain::{KeyId, KeyTag};

/// Buckets by [`KeyTag`]: a bucket outlives the key's cached record, and a tag holds no
/// allocation. Only authenticated keys reach the limiter, so foldhash (seeded per process)
/// replaces SipHash.
type KeyedGovernor<C> = Governor<
    KeyTag,
    DashMapStateStore<KeyTag, foldhash::fast::RandomState>,
    C,
    StateInformationMiddleware,
>;

/// `per_second` sustained and `burst` at once, per key, in this process only.
pub struct LocalRateLimiter<C: Clock = DefaultClock> {
    governor: KeyedGovernor<C>,
    policy: RateLimitPolicy,
}

impl LocalRateLimiter<DefaultClock> {
    /// A limiter on the system's monotonic clock.
    #[must_use]
    pub fn new(policy: RateLimitPolicy) -> Self {
        Self::with_clock(policy, DefaultClock::default())
    }
}

impl<C: Clock> LocalRateLimiter<C> {
    /// A limiter on `clock` (tests use a fake one).
    pub fn with_clock(policy: RateLimitPolicy, clock: C) -> Self {
        let per_second = NonZeroU32::new(policy.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(policy.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            governor: Governor::dashmap_with_clock_and_hasher(
                quota,
                clock,
                foldhash::fast::RandomState::default(),
            )
            .with_middleware(),
            policy,
        }
    }

    /// The policy this limiter enforces.
    #[must_use]
    pub const fn policy(&self) -> RateLimitPolicy {
        self.policy
    }

    /// Takes one request for `key` if allowed; the key's state after it. Synchronous and cheap.
    pub fn check_now(&self, key: &KeyId) -> RateDecision {
        let emission = self.policy.emission_interval();
        let limit = self.policy.burst.max(1);
        match self.governor.check_key(&KeyTag::of(key)) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(limit);
                RateDecision {
                    allowed: true,
                    limit,
                    remaining,
                    // GCRA's debt is at most one emission interval per used slot: an upper
                    // bound, within one interval of the exact time to a full bucket.
                    reset_after: emission * (limit - remaining),
                    retry_after: None,
                    window: self.policy.window(),
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.governor.clock().now());
                RateDecision {
                    allowed: false,
                    limit,
                    remaining: 0,
                    // One slot earns back at `wait`, the other `burst - 1` one interval each.
                    reset_after: wait + emission * (limit - 1),
                    retry_after: Some(wait.max(Duration::from_millis(1))),
                    window: self.policy.window(),
                }
            }
        }
    }

    /// Keys currently tracked (for tests and metrics).
    #[must_use]
    pub fn tracked_keys(&self) -> usize {
        self.governor.len()
    }

    /// Forgets keys whose bucket is full again: they behave exactly like unseen keys. Called by
    /// the background sweeper, so memory stays bounded by the keys active recently.
    pub fn sweep(&self) {
        self.governor.retain_recent();
    }
}

#[async_trait]
impl<C: Clock + Send + Sync> RateLimiter for LocalRateLimiter<C> {
    async fn check(&self, key: &KeyId) -> RateDecision {
        self.check_now(key)
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limiter(
        per_second: u32,
        burst: u32,
    ) -> (LocalRateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let policy = RateLimitPolicy { per_second, burst };
        (LocalRateLimiter::with_clock(policy, clock.clone()), clock)
    }

    #[test]
    fn burst_then_refusal_with_retry_after_at_least_one_interval() {
        let (l, _clock) = limiter(10, 5);
        let key = KeyId::new("key_burst");
        for expected_remaining in (0..5).rev() {
            let d = l.check_now(&key);
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
            assert_eq!(d.limit, 5);
            assert_eq!(d.retry_after, None);
        }
        let refused = l.check_now(&key);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        let retry = refused.retry_after.unwrap();
        assert!(retry >= Duration::from_millis(100), "{retry:?}");
        assert!(retry <= Duration::from_millis(100) + Duration::from_millis(1));
        assert_eq!(refused.retry_after_seconds(), 1);
        assert!(refused.reset_after >= Duration::from_millis(500));
    }

    #[test]
    fn refills_at_the_sustained_rate() {
        let (l, clock) = limiter(10, 5);
        let key = KeyId::new("key_refill");
        for _ in 0..5 {
            assert!(l.check_now(&key).allowed);
        }
        assert!(!l.check_now(&key).allowed);
        clock.advance(Duration::from_millis(250));
        // 2.5 intervals earned: two requests.
        assert!(l.check_now(&key).allowed);
        assert!(l.check_now(&key).allowed);
        assert!(!l.check_now(&key).allowed);
        clock.advance(Duration::from_secs(10));
        assert_eq!(l.check_now(&key).remaining, 4, "a full bucket again");
    }

    #[test]
    fn keys_are_independent() {
        let (l, _clock) = limiter(1, 1);
        assert!(l.check_now(&KeyId::new("key_a")).allowed);
        assert!(!l.check_now(&KeyId::new("key_a")).allowed);
        assert!(l.check_now(&KeyId::new("key_b")).allowed);
    }

    #[test]
    fn the_decision_carries_what_the_headers_need() {
        let (l, _clock) = limiter(20, 40);
        let d = l.check_now(&KeyId::new("key_headers"));
        assert_eq!(d.limit, 40);
        assert_eq!(d.remaining, 39);
        assert_eq!(d.reset_after, Duration::from_millis(50));
        assert_eq!(d.window, Duration::from_secs(2));
    }

    #[test]
    fn idle_keys_are_swept() {
        let (l, clock) = limiter(10, 2);
        for i in 0..100 {
            l.check_now(&KeyId::new(format!("key_{i}")));
        }
        assert_eq!(l.tracked_keys(), 100);
        clock.advance(Duration::from_secs(5));
        l.sweep();
        assert_eq!(l.tracked_keys(), 0);
    }

    #[test]
    fn async_check_is_check_now() {
        let (l, _clock) = limiter(1, 1);
        let key = KeyId::new("key_async");
        assert!(futures_executor::block_on(l.check(&key)).allowed);
        assert!(!futures_executor::block_on(l.check(&key)).allowed);
    }
}
