//! Rate-limit policy and the decision every limiter returns: numbers only; `api-actix` writes
//! them as headers.

use std::time::Duration;

/// `JT_RATE_LIMIT_PER_SECOND` and `JT_RATE_LIMIT_BURST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// Sustained requests per second per key (≥ 1).
    pub per_second: u32,
    /// Burst per key (≥ 1).
    pub burst: u32,
}

impl RateLimitPolicy {
    /// Time for an empty bucket to refill completely: the policy's window `w`.
    #[must_use]
    pub fn window(self) -> Duration {
        Duration::from_secs_f64(f64::from(self.burst) / f64::from(self.per_second.max(1)))
    }

    /// Time to earn one request.
    #[must_use]
    pub fn emission_interval(self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.per_second.max(1)))
    }
}

/// The outcome of one rate-limit check, with what the response headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// The burst (`q` / `RateLimit-Limit`).
    pub limit: u32,
    /// Requests left right now (`r` / `RateLimit-Remaining`).
    pub remaining: u32,
    /// Until the bucket is full again (`t` / `RateLimit-Reset`).
    pub reset_after: Duration,
    /// Set when refused: until one request will be allowed.
    pub retry_after: Option<Duration>,
    /// The policy window (`w`).
    pub window: Duration,
}

/// Whole seconds, rounded up, at least `min`.
#[must_use]
pub fn ceil_seconds(d: Duration, min: u64) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(min)
}

impl RateDecision {
    /// Seconds to wait before retrying, whole and at least 1 (only meaningful when refused).
    #[must_use]
    pub fn retry_after_seconds(&self) -> u64 {
        ceil_seconds(self.retry_after.unwrap_or(Duration::from_secs(1)), 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up() {
        let p = RateLimitPolicy {
            per_second: 20,
            burst: 40,
        };
        let d = RateDecision {
            allowed: false,
            limit: 40,
            remaining: 0,
            reset_after: Duration::from_millis(1950),
            retry_after: Some(Duration::from_millis(20)),
            window: p.window(),
        };
        assert_eq!(ceil_seconds(d.window, 1), 2);
        assert_eq!(ceil_seconds(d.reset_after, 0), 2);
        assert_eq!(d.retry_after_seconds(), 1);
    }
}
