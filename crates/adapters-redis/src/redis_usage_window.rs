//! The trailing 24-hour usage window per key, counted in Redis in hourly buckets so all
//! instances see one count and a threshold is crossed once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use keys_domain::ports::UsageWindow;
use keys_domain::usage::{BUCKETS, WindowCount, bucket_of};
use keys_domain::{KeyId, Timestamp};
use redis::Script;

use crate::redis_shared::RedisShared;

/// A bucket outlives the window by an hour, so the last one counted is still there.
const BUCKET_TTL: Duration = Duration::from_secs(25 * 3600);

/// The shared window; counts in the window it is given while Redis is down.
pub struct RedisUsageWindow {
    shared: RedisShared,
    script: Script,
    fallback: Arc<dyn UsageWindow>,
}

impl RedisUsageWindow {
    /// A window shared across instances, counting in `fallback` (in this process) while Redis
    /// is unreachable.
    #[must_use]
    pub fn new(shared: RedisShared, fallback: Arc<dyn UsageWindow>) -> Self {
        Self {
            shared,
            script: Script::new(include_str!("usage.lua")),
            fallback,
        }
    }
}

/// `jt:usage:{key}:{hour}`, the window's buckets oldest first (the braces are a cluster hash
/// tag, so one key's buckets share a slot).
fn bucket_keys(key: &KeyId, now: Timestamp) -> Vec<String> {
    let newest = bucket_of(now);
    let oldest = newest - i64::try_from(BUCKETS).unwrap_or(24) + 1;
    (oldest..=newest)
        .map(|hour| format!("jt:usage:{{{key}}}:{hour}"))
        .collect()
}

#[async_trait]
impl UsageWindow for RedisUsageWindow {
    async fn add(&self, key: &KeyId, count: u64, now: Timestamp) -> WindowCount {
        let keys = bucket_keys(key, now);
        let script = &self.script;
        let shared = self
            .shared
            .run("usage window add", |mut conn| async move {
                let mut invocation = script.prepare_invoke();
                for k in keys {
                    invocation.key(k);
                }
                invocation
                    .arg(count)
                    .arg(BUCKET_TTL.as_secs())
                    .invoke_async::<(u64, u64)>(&mut conn)
                    .await
            })
            .await;
        match shared {
            Some((before, after)) => WindowCount { before, after },
            None => self.fallback.add(key, count, now).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_keys_cover_the_last_24_hours() {
        let now = Timestamp::from_millis(3_600_000 * 500_000 + 1);
        let keys = bucket_keys(&KeyId::new("key_x"), now);
        assert_eq!(keys.len(), 24);
        assert_eq!(keys[0], "jt:usage:{key_x}:499977");
        assert_eq!(keys[23], "jt:usage:{key_x}:500000");
    }
}
