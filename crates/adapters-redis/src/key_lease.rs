//! One key's lease of rate-limit tokens on this instance: tokens taken from the shared bucket in
//! one atomic step, served locally until they run out or lapse.
//!
//! Pure state (no I/O), so the sizing and the header arithmetic are tested without Redis.

use std::time::{Duration, Instant};

use keys_domain::rate_limit::{RateDecision, RateLimitPolicy};

const MICRO: u64 = 1_000_000;

/// How leases are sized and how long they live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseConfig {
    /// Unused leased tokens lapse after this long, which bounds how late a token is served.
    pub ttl: Duration,
    /// The largest lease; a fraction of the burst so instances cannot strand much of it.
    pub max_size: u32,
}

impl LeaseConfig {
    pub(crate) fn for_policy(policy: RateLimitPolicy) -> Self {
        Self {
            ttl: Duration::from_millis(250),
            max_size: (policy.burst / 4).max(1),
        }
    }
}

/// What one atomic take from the shared bucket returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    /// Tokens taken (0 when the bucket had less than one).
    pub granted: u32,
    /// Tokens left in the shared bucket afterwards, in millionths.
    pub bucket_micro: u64,
    /// Until the shared bucket is full again.
    pub full_after: Duration,
    /// When nothing was granted: until one token is available.
    pub wait: Duration,
}

/// A key's lease state on this instance.
#[derive(Debug, Clone)]
pub(crate) struct KeyLease {
    /// Leased tokens not served yet.
    left: u32,
    /// When the current lease was granted (`None` before the first).
    granted_at: Option<Instant>,
    /// The size of the next lease to ask for.
    size: u32,
    /// The shared bucket's state as of `seen_at`.
    bucket_micro: u64,
    full_after: Duration,
    seen_at: Option<Instant>,
    /// A cached refusal: until then, refusing needs no round trip.
    refused_until: Option<Instant>,
}

impl Default for KeyLease {
    fn default() -> Self {
        Self {
            left: 0,
            granted_at: None,
            size: 1,
            bucket_micro: 0,
            full_after: Duration::ZERO,
            seen_at: None,
            refused_until: None,
        }
    }
}

impl KeyLease {
    /// The fast path: a token of the live lease, or the cached refusal. `None` (with no state
    /// changed) when the shared bucket must be asked; the caller then takes the key's refill
    /// lock and calls [`KeyLease::try_local`].
    pub(crate) fn serve_local(
        &mut self,
        now: Instant,
        policy: RateLimitPolicy,
        config: LeaseConfig,
    ) -> Option<RateDecision> {
        let lease_live = self
            .granted_at
            .is_some_and(|at| now.saturating_duration_since(at) < config.ttl);
        if self.left > 0 && lease_live {
            self.left -= 1;
            return Some(self.decision(now, policy, true, None));
        }
        if let Some(until) = self.refused_until.filter(|until| now < *until) {
            return Some(self.decision(now, policy, false, Some(until - now)));
        }
        None
    }

    /// Answers from the lease when it can; otherwise the number of tokens to ask the shared
    /// bucket for (the lease grows while leases run out before they lapse, and shrinks when they
    /// lapse, so a quiet key asks for one token at a time and gets exact answers).
    pub(crate) fn try_local(
        &mut self,
        now: Instant,
        policy: RateLimitPolicy,
        config: LeaseConfig,
    ) -> Result<RateDecision, u32> {
        if let Some(decision) = self.serve_local(now, policy, config) {
            return Ok(decision);
        }
        let lease_live = self
            .granted_at
            .is_some_and(|at| now.saturating_duration_since(at) < config.ttl);
        self.size = match self.granted_at {
            Some(_) if lease_live => self.size.saturating_mul(2).min(config.max_size),
            Some(_) => (self.size / 2).max(1),
            None => 1,
        };
        self.left = 0;
        Err(self.size.max(1))
    }

    /// Records what the shared bucket granted at `now` and decides this request.
    pub(crate) fn apply(
        &mut self,
        now: Instant,
        grant: Grant,
        policy: RateLimitPolicy,
    ) -> RateDecision {
        self.bucket_micro = grant.bucket_micro;
        self.full_after = grant.full_after;
        self.seen_at = Some(now);
        if grant.granted == 0 {
            let wait = grant.wait.max(Duration::from_millis(1));
            self.left = 0;
            self.refused_until = Some(now + wait);
            return self.decision(now, policy, false, Some(wait));
        }
        self.left = grant.granted - 1;
        self.granted_at = Some(now);
        self.refused_until = None;
        self.decision(now, policy, true, None)
    }

    /// Nothing here would change an answer: the entry may be dropped.
    pub(crate) fn is_idle(&self, now: Instant, config: LeaseConfig) -> bool {
        let lease_over = self
            .granted_at
            .is_none_or(|at| now.saturating_duration_since(at) >= config.ttl);
        let refusal_over = self.refused_until.is_none_or(|until| now >= until);
        lease_over && refusal_over
    }

    /// The headers' view: the shared bucket as last seen, refilled since at the policy's rate,
    /// plus the tokens this instance still holds.
    fn decision(
        &self,
        now: Instant,
        policy: RateLimitPolicy,
        allowed: bool,
        retry_after: Option<Duration>,
    ) -> RateDecision {
        let limit = policy.burst.max(1);
        let elapsed = self
            .seen_at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        let refilled = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::from(policy.per_second.max(1)));
        let bucket = self
            .bucket_micro
            .saturating_add(refilled)
            .min(u64::from(limit) * MICRO)
            / MICRO;
        let remaining = if allowed {
            u32::try_from(bucket)
                .unwrap_or(limit)
                .saturating_add(self.left)
                .min(limit)
        } else {
            0
        };
        RateDecision {
            allowed,
            limit,
            remaining,
            reset_after: self.full_after.saturating_sub(elapsed),
            retry_after,
            window: policy.window(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RateLimitPolicy = RateLimitPolicy {
        per_second: 10,
        burst: 40,
    };

    fn config() -> LeaseConfig {
        LeaseConfig::for_policy(POLICY)
    }

    fn grant(granted: u32, bucket: u64) -> Grant {
        Grant {
            granted,
            bucket_micro: bucket * MICRO,
            full_after: Duration::from_millis(100) * u32::try_from(40 - bucket).unwrap(),
            wait: Duration::from_millis(100),
        }
    }

    #[test]
    fn starts_at_one_and_doubles_while_leases_run_out_quickly() {
        let mut lease = KeyLease::default();
        let t0 = Instant::now();
        assert_eq!(lease.try_local(t0, POLICY, config()), Err(1));
        let d = lease.apply(t0, grant(1, 39), POLICY);
        assert!(d.allowed);
        assert_eq!(d.remaining, 39);
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(lease.try_local(t1, POLICY, config()), Err(2));
        let d = lease.apply(t1, grant(2, 37), POLICY);
        assert_eq!(d.remaining, 38, "37 in the bucket and one held here");
        let d = lease.try_local(t1, POLICY, config()).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 37);
        assert_eq!(lease.try_local(t1, POLICY, config()), Err(4));
        lease.apply(t1, grant(4, 33), POLICY);
        assert_eq!(lease.try_local(t1, POLICY, config()).unwrap().remaining, 35);
        lease.try_local(t1, POLICY, config()).unwrap();
        lease.try_local(t1, POLICY, config()).unwrap();
        assert_eq!(lease.try_local(t1, POLICY, config()), Err(8));
        lease.apply(t1, grant(8, 25), POLICY);
        for _ in 0..7 {
            lease.try_local(t1, POLICY, config()).unwrap();
        }
        assert_eq!(lease.try_local(t1, POLICY, config()), Err(10), "capped");
    }

    #[test]
    fn lapsed_leases_are_not_served_and_shrink_the_next() {
        let mut lease = KeyLease::default();
        let t0 = Instant::now();
        assert_eq!(lease.try_local(t0, POLICY, config()), Err(1));
        lease.apply(t0, grant(1, 39), POLICY);
        assert_eq!(lease.try_local(t0, POLICY, config()), Err(2));
        lease.apply(t0, grant(2, 37), POLICY);
        assert!(!lease.is_idle(t0, config()));
        let late = t0 + Duration::from_millis(300);
        assert!(lease.is_idle(late, config()));
        // The unserved token lapsed: the next request asks the bucket again, for fewer.
        assert_eq!(lease.try_local(late, POLICY, config()), Err(1));
    }

    #[test]
    fn refusals_are_cached_until_a_token_is_due() {
        let mut lease = KeyLease::default();
        let t0 = Instant::now();
        assert_eq!(lease.try_local(t0, POLICY, config()), Err(1));
        let d = lease.apply(t0, grant(0, 0), POLICY);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after, Some(Duration::from_millis(100)));
        assert_eq!(d.reset_after, Duration::from_secs(4));
        let t1 = t0 + Duration::from_millis(40);
        let d = lease.try_local(t1, POLICY, config()).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_millis(60)));
        assert_eq!(d.reset_after, Duration::from_millis(3960));
        assert!(
            lease
                .try_local(t0 + Duration::from_millis(100), POLICY, config())
                .is_err()
        );
    }

    #[test]
    fn remaining_counts_the_refill_since_the_last_grant() {
        let mut lease = KeyLease::default();
        let t0 = Instant::now();
        assert_eq!(lease.try_local(t0, POLICY, config()), Err(1));
        lease.apply(t0, grant(1, 30), POLICY);
        assert_eq!(
            lease.try_local(t0 + Duration::from_millis(5), POLICY, config()),
            Err(2)
        );
        lease.apply(t0 + Duration::from_millis(5), grant(2, 28), POLICY);
        let d = lease
            .try_local(t0 + Duration::from_millis(210), POLICY, config())
            .unwrap();
        assert_eq!(d.remaining, 30, "28 + 2 refilled in 205 ms, none held");
    }
}
