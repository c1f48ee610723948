//! Key usage counted in memory on the hot path, until the usage flusher takes it in a batch.
//!
//! Each authenticated request adds 1 to its key's pending count in a sharded map: no I/O, and an
//! allocation only for a key's first request per batch.

use dashmap::DashMap;
use keys_domain::ports::UsageRecorder;
use keys_domain::usage::UsageDelta;
use keys_domain::{KeyId, Timestamp, UserId};

#[derive(Debug, Clone)]
struct Pending {
    user_id: UserId,
    count: u64,
    last_used_at: Timestamp,
}

/// The in-memory [`UsageRecorder`].
#[derive(Default)]
pub struct PendingUsage {
    /// Keyed by ids of authenticated keys only, so a fast seeded hasher is safe here.
    pending: DashMap<KeyId, Pending, foldhash::fast::RandomState>,
}

impl PendingUsage {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, key: KeyId, user_id: UserId, count: u64, at: Timestamp) {
        self.pending
            .entry(key)
            .and_modify(|p| {
                p.count = p.count.saturating_add(count);
                p.last_used_at = p.last_used_at.max(at);
            })
            .or_insert(Pending {
                user_id,
                count,
                last_used_at: at,
            });
    }
}

impl UsageRecorder for PendingUsage {
    fn record(&self, key: &KeyId, user: &UserId, at: Timestamp) {
        if let Some(mut p) = self.pending.get_mut(key) {
            p.count = p.count.saturating_add(1);
            p.last_used_at = p.last_used_at.max(at);
            return;
        }
        self.add(key.clone(), user.clone(), 1, at);
    }

    fn take(&self) -> Vec<UsageDelta> {
        let keys: Vec<KeyId> = self.pending.iter().map(|e| e.key().clone()).collect();
        keys.into_iter()
            .filter_map(|k| self.pending.remove(&k))
            .map(|(key_id, p)| UsageDelta {
                key_id,
                user_id: p.user_id,
                count: p.count,
                last_used_at: p.last_used_at,
            })
            .collect()
    }

    fn restore(&self, batch: Vec<UsageDelta>) {
        for d in batch {
            self.add(d.key_id, d.user_id, d.count, d.last_used_at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_per_key_and_a_restored_batch_joins_later_counts() {
        let rec = PendingUsage::new();
        let (k, u) = (KeyId::new("key_a"), UserId::new("usr_a"));
        for ms in [5, 9, 7] {
            rec.record(&k, &u, Timestamp::from_millis(ms));
        }
        let batch = rec.take();
        assert_eq!(batch.len(), 1);
        assert_eq!((batch[0].count, batch[0].last_used_at.as_millis()), (3, 9));
        rec.record(&k, &u, Timestamp::from_millis(3));
        rec.restore(batch);
        let merged = rec.take();
        assert_eq!(
            (merged[0].count, merged[0].last_used_at.as_millis()),
            (4, 9)
        );
        assert!(rec.take().is_empty());
    }
}
