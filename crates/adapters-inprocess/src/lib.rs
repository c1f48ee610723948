//! In-process adapters: the per-key rate limiter and the trailing usage window, for a single
//! instance (`REDIS_URL` unset) and as the local fallback of the Redis adapters when Redis is
//! unreachable.

mod local_rate_limiter;
mod local_usage_window;

pub use local_rate_limiter::LocalRateLimiter;
pub use local_usage_window::LocalUsageWindow;
