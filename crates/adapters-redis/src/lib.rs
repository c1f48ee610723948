//! Shared state across instances through Redis (`REDIS_URL` set): per-key rate limits served
//! from leased token batches, per-minute limits (failed authentications, sign-in links,
//! dashboard writes), the trailing 24-hour usage window, and revocation pub/sub.
//!
//! Every adapter here is infallible towards its caller: when Redis is unreachable the limiters
//! and the window fall back to the limiter or window they were given (the in-process ones,
//! chosen by the composition root), and return to shared mode once Redis answers again.
//! See `docs/scale-out.md`.

mod key_lease;
mod redis_fixed_window;
mod redis_rate_limiter;
mod redis_revocation_bus;
mod redis_shared;
mod redis_usage_window;
#[cfg(feature = "testing")]
pub mod testing;

pub use redis_fixed_window::RedisFixedWindow;
pub use redis_rate_limiter::RedisRateLimiter;
pub use redis_revocation_bus::{Announcement, REVOCATION_CHANNEL, RedisRevocationBus};
pub use redis_shared::RedisShared;
pub use redis_usage_window::RedisUsageWindow;
