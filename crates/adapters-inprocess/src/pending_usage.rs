//! Key usage counted in memory on the hot path, until the usage flusher takes it in a batch.
//!
//! Each authenticated request adds 1 to its key's pending count in a sharded map, and to its
//! client's: no I/O, and an allocation only for a key's, or a client's, first request per batch.

use dashmap::DashMap;
use keys_domain::key_client::{ClientUse, MAX_CLIENTS_PER_KEY};
use keys_domain::ports::{SeenClient, UsageRecorder};
use keys_domain::usage::UsageDelta;
use keys_domain::{KeyId, Timestamp, UserId};

#[derive(Debug, Clone)]
struct Pending {
    user_id: UserId,
    count: u64,
    last_used_at: Timestamp,
    /// At most [`MAX_CLIENTS_PER_KEY`] per batch: the store keeps no more per key anyway.
    clients: Vec<ClientUse>,
}

impl Pending {
    fn count_client(&mut self, at: Timestamp, client: SeenClient, user_agent: &str) {
        if let Some(c) = self
            .clients
            .iter_mut()
            .find(|c| c.is(client.network, user_agent))
        {
            c.requests = c.requests.saturating_add(1);
            c.last_seen = c.last_seen.max(at);
            c.browser |= client.browser;
        } else if self.clients.len() < MAX_CLIENTS_PER_KEY {
            // Almost every key has one client: room for exactly one, not `Vec`'s first four.
            self.clients.reserve_exact(1);
            self.clients.push(ClientUse {
                network: client.network,
                user_agent: user_agent.into(),
                requests: 1,
                first_seen: at,
                last_seen: at,
                browser: client.browser,
            });
        }
    }

    fn merge_clients(&mut self, clients: Vec<ClientUse>) {
        for client in clients {
            let known = self
                .clients
                .iter()
                .position(|c| c.is(client.network, client.user_agent.as_str()));
            match known {
                Some(i) => self.clients[i].merge(&client),
                None if self.clients.len() < MAX_CLIENTS_PER_KEY => {
                    self.clients.reserve_exact(1);
                    self.clients.push(client);
                }
                None => {}
            }
        }
    }
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

    fn add(&self, d: UsageDelta) {
        let mut p = self.pending.entry(d.key_id).or_insert_with(|| Pending {
            user_id: d.user_id,
            count: 0,
            last_used_at: d.last_used_at,
            clients: Vec::new(),
        });
        p.count = p.count.saturating_add(d.count);
        p.last_used_at = p.last_used_at.max(d.last_used_at);
        p.merge_clients(d.clients);
    }
}

impl UsageRecorder for PendingUsage {
    fn record(
        &self,
        key: &KeyId,
        user: &UserId,
        at: Timestamp,
        client: Option<SeenClient>,
        user_agent: &str,
    ) {
        let mut p = match self.pending.get_mut(key) {
            Some(p) => p,
            None => self.pending.entry(key.clone()).or_insert_with(|| Pending {
                user_id: user.clone(),
                count: 0,
                last_used_at: at,
                clients: Vec::new(),
            }),
        };
        p.count = p.count.saturating_add(1);
        p.last_used_at = p.last_used_at.max(at);
        if let Some(client) = client {
            p.count_client(at, client, user_agent);
        }
    }

    fn take(&self) -> Vec<UsageDelta> {
        // One pass that empties each shard under its lock (a request counted meanwhile on that
        // shard waits for its sweep), into a Vec sized once: a copy of every pending id first,
        // then a collect by doubling, held a backlog of 100,000 keys about twice.
        let mut batch = Vec::with_capacity(self.pending.len());
        self.pending.retain(|key_id, p| {
            batch.push(UsageDelta {
                key_id: key_id.clone(),
                user_id: p.user_id.clone(),
                count: p.count,
                last_used_at: p.last_used_at,
                clients: std::mem::take(&mut p.clients),
            });
            false
        });
        batch
    }

    fn restore(&self, batch: Vec<UsageDelta>) {
        for d in batch {
            self.add(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Option<SeenClient> {
        Some(SeenClient {
            network: keys_domain::key_client::ClientNetwork::of([203, 0, 113, 9].into()),
            browser: false,
        })
    }

    #[test]
    fn counts_merge_per_key_and_a_restored_batch_joins_later_counts() {
        let rec = PendingUsage::new();
        let (k, u) = (KeyId::new("key_a"), UserId::new("usr_a"));
        for ms in [5, 9, 7] {
            rec.record(&k, &u, Timestamp::from_millis(ms), client(), "curl/8.5.0");
        }
        let batch = rec.take();
        assert_eq!(batch.len(), 1);
        assert_eq!((batch[0].count, batch[0].last_used_at.as_millis()), (3, 9));
        rec.record(&k, &u, Timestamp::from_millis(3), client(), "node");
        rec.restore(batch);
        let merged = rec.take();
        assert_eq!(
            (merged[0].count, merged[0].last_used_at.as_millis()),
            (4, 9)
        );
        let clients: Vec<(&str, u64)> = merged[0]
            .clients
            .iter()
            .map(|c| (c.user_agent.as_str(), c.requests))
            .collect();
        assert_eq!(clients, [("node", 1), ("curl/8.5.0", 3)]);
        assert!(rec.take().is_empty());
    }
}
