//! In-process adapters, for a single instance (`REDIS_URL` unset) and in front of or beside the
//! shared ones:
//!
//! - [`LocalRateLimiter`] and [`LocalUsageWindow`]: the rate limiter and usage window ports in
//!   memory; also the fallback the Redis adapters are given for when Redis is unreachable.
//! - [`LocalFixedWindow`]: the fixed-window limiter port (per-minute limits on failed
//!   authentications, sign-in link requests, dashboard writes) in memory; likewise the Redis
//!   one's fallback.
//! - [`Caches`]: the [`KeyCache`] and the [`CutoffCache`], and the one owner of their
//!   invalidation (the `CacheInvalidation` port).
//! - [`CachedKeyStore`]: a `KeyStore` decorator that answers the hot path's lookups from the key
//!   cache; [`CachedTokenCutoffStore`]: the same for the dashboard's sign-out check.
//! - [`PendingUsage`]: the usage recorder port, counting requests until a flush.
//! - [`NoOtherInstances`]: the revocation notifier when there are no other instances to tell.

mod cached_key_store;
mod cached_token_cutoff_store;
mod caches;
mod cutoff_cache;
mod eviction_generation;
mod feed_trust;
mod key_cache;
mod local_fixed_window;
mod local_rate_limiter;
mod local_usage_window;
mod no_other_instances;
mod pending_usage;

pub use cached_key_store::CachedKeyStore;
pub use cached_token_cutoff_store::CachedTokenCutoffStore;
pub use caches::Caches;
pub use cutoff_cache::CutoffCache;
pub use key_cache::KeyCache;
pub use local_fixed_window::LocalFixedWindow;
pub use local_rate_limiter::LocalRateLimiter;
pub use local_usage_window::LocalUsageWindow;
pub use no_other_instances::NoOtherInstances;
pub use pending_usage::PendingUsage;
