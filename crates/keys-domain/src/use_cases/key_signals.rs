//! Raising leak signals from a usage flush: `new_network` and `browser_use`, each a key event
//! and an email to the owner through the outbox, at most once per key per signal per 24 h.
//!
//! The store's 24-hour rule makes the signal exactly-once across instances; the memory here
//! (the networks each key was seen from, the signals raised lately) only spares the store a
//! question per flush.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::hourly_usage::hour_start;
use crate::ids::{AlertId, KeyId};
use crate::key_client::{CLIENT_RETENTION, ClientNetwork, ClientUse};
use crate::key_event::{Actor, EventDetail, KeyEvent};
use crate::key_signal::{KeySignal, SIGNAL_QUIET, SignalPolicy};
use crate::key_tag::KeyTag;
use crate::ports::{
    AccountStore, Clock, KeyClientStore, KeyStore, QueuedWithChange, StoreError, UsageHistory,
    UserRef,
};
use crate::random::RandomSource;
use crate::signal_email::{SignalSeen, signal_email};
use crate::timestamp::Timestamp;
use crate::usage::UsageDelta;

/// Most keys remembered; past it the memory starts over (a forgotten key costs one question).
const REMEMBERED_KEYS: usize = 200_000;

/// A network a batch used that the key was not seen from in 30 days, found before the batch
/// was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkCandidate {
    pub delta: usize,
    pub client: ClientUse,
    pub seen_before: usize,
}

/// What this instance remembers of a key, by its [`KeyTag`]: the networks it was seen from (and
/// when last), and its current hour.
#[derive(Debug)]
struct KeyMemory {
    networks: Vec<(ClientNetwork, Timestamp)>,
    hour: HourWatch,
}

impl Default for KeyMemory {
    fn default() -> Self {
        Self {
            networks: Vec::new(),
            // No hour yet: the first count starts one.
            hour: HourWatch {
                hour: Timestamp::from_millis(i64::MIN),
                count: 0,
                ask_at: 0,
            },
        }
    }
}

/// What raising signals for one flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignalReport {
    pub raised: usize,
    /// Questions to the store that failed: their signals are lost for this flush.
    pub errors: usize,
}

impl SignalReport {
    fn count(&mut self, raised: &Result<bool, StoreError>) {
        match raised {
            Ok(true) => self.raised += 1,
            Ok(false) => {}
            Err(_) => self.errors += 1,
        }
    }
}

/// The leak signals of a flush.
#[derive(Clone)]
pub struct KeySignals {
    pub keys: Arc<dyn KeyStore>,
    pub clients: Arc<dyn KeyClientStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub policy: SignalPolicy,
    /// Per key: its networks and its current hour.
    memory: Arc<Mutex<HashMap<KeyTag, KeyMemory>>>,
    /// Signals raised (or found raised) lately, by key and kind.
    quiet: Arc<Mutex<HashMap<(KeyId, KeySignal), Timestamp>>>,
    pub history: Arc<dyn UsageHistory>,
}

/// One key's current hour as this instance counts it, and the count at which the store is
/// asked next whether the hour is a spike.
#[derive(Debug, Clone, Copy)]
struct HourWatch {
    hour: Timestamp,
    count: u64,
    ask_at: u64,
}

impl KeySignals {
    #[must_use]
    pub fn new(
        keys: Arc<dyn KeyStore>,
        clients: Arc<dyn KeyClientStore>,
        accounts: Arc<dyn AccountStore>,
        history: Arc<dyn UsageHistory>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn RandomSource>,
        policy: SignalPolicy,
    ) -> Self {
        Self {
            keys,
            clients,
            accounts,
            clock,
            random,
            policy,
            memory: Arc::default(),
            quiet: Arc::default(),
            history,
        }
    }

    /// Before `batch` is written: the clients on a network their key was not seen from in the
    /// last 30 days (asking the store only for networks this instance does not know).
    pub async fn before_write(&self, batch: &[UsageDelta]) -> (Vec<NetworkCandidate>, usize) {
        let mut out = Vec::new();
        let mut errors = 0;
        if !self.policy.enabled {
            return (out, errors);
        }
        let now = self.clock.now();
        let since = now.minus(CLIENT_RETENTION);
        // Each delta's clients on networks this instance does not remember for its key.
        let unknown: Vec<(usize, Vec<&ClientUse>)> = {
            let memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
            batch
                .iter()
                .enumerate()
                .filter_map(|(i, delta)| {
                    let seen = memory.get(&KeyTag::of(&delta.key_id)).map(|m| &m.networks);
                    let unknown: Vec<&ClientUse> = delta
                        .clients
                        .iter()
                        .filter(|c| {
                            !seen.is_some_and(|s| {
                                s.iter().any(|(n, at)| *n == c.network && *at >= since)
                            })
                        })
                        .collect();
                    (!unknown.is_empty()).then_some((i, unknown))
                })
                .collect()
        };
        if unknown.is_empty() {
            return (out, errors);
        }
        let keys: Vec<KeyId> = unknown
            .iter()
            .map(|(i, _)| batch[*i].key_id.clone())
            .collect();
        let Ok(stored) = self.clients.networks_seen(&keys, since).await else {
            errors += keys.len();
            return (out, errors);
        };
        for (i, clients) in unknown {
            let key = &batch[i].key_id;
            let seen = stored.get(key).map_or(&[][..], Vec::as_slice);
            for client in clients {
                if !seen.is_empty() && !seen.contains(&client.network) {
                    out.push(NetworkCandidate {
                        delta: i,
                        client: client.clone(),
                        seen_before: seen.len(),
                    });
                }
            }
            self.remember(key, seen.iter().map(|n| (*n, now)));
        }
        (out, errors)
    }

    /// After `batch` was written: raises `new_network` for the candidates of established keys,
    /// and `browser_use` for keys a browser used.
    pub async fn after_write(
        &self,
        batch: &[UsageDelta],
        candidates: Vec<NetworkCandidate>,
    ) -> SignalReport {
        let mut report = SignalReport::default();
        if !self.policy.enabled {
            return report;
        }
        let now = self.clock.now();
        for delta in batch {
            self.remember(
                &delta.key_id,
                delta.clients.iter().map(|c| (c.network, c.last_seen)),
            );
        }
        for c in candidates {
            let Some(delta) = batch.get(c.delta) else {
                continue;
            };
            let detail = EventDetail::NewNetwork {
                network: c.client.network.to_string(),
                user_agent: c.client.user_agent.to_string(),
                networks: u64::try_from(c.seen_before).unwrap_or(u64::MAX),
            };
            report.count(&self.raise(delta, detail, now).await);
        }
        for delta in batch {
            match self.spike(delta, now).await {
                Ok(Some(detail)) => report.count(&self.raise(delta, detail, now).await),
                Ok(None) => {}
                Err(_) => report.errors += 1,
            }
        }
        for delta in batch {
            let browsers: Vec<&ClientUse> = delta.clients.iter().filter(|c| c.browser).collect();
            let Some(first) = browsers.first() else {
                continue;
            };
            let detail = EventDetail::BrowserUse {
                network: first.network.to_string(),
                user_agent: first.user_agent.to_string(),
                requests: browsers.iter().map(|c| c.requests).sum(),
            };
            report.count(&self.raise(delta, detail, now).await);
        }
        report
    }

    /// `usage_spike`'s detail when the key's current hour is a spike. This instance counts the
    /// hour itself and asks the store (which counts every instance's requests) first when its
    /// own count reaches a quarter of the minimum, then when it has grown by what the store's
    /// answer said was still missing for a spike: a few questions per busy key per hour.
    async fn spike(
        &self,
        delta: &UsageDelta,
        now: Timestamp,
    ) -> Result<Option<EventDetail>, StoreError> {
        let hour = hour_start(now);
        let first_ask = (self.policy.spike_min_requests / 4).max(1);
        let local = {
            let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = KeyTag::of(&delta.key_id);
            if memory.len() >= REMEMBERED_KEYS && !memory.contains_key(&slot) {
                memory.clear();
            }
            let watch = &mut memory.entry(slot).or_default().hour;
            if watch.hour != hour {
                *watch = HourWatch {
                    hour,
                    count: 0,
                    ask_at: first_ask,
                };
            }
            watch.count = watch.count.saturating_add(delta.count);
            if watch.count < watch.ask_at {
                return Ok(None);
            }
            // Asked now; until the answer says otherwise, not again this hour.
            watch.ask_at = u64::MAX;
            watch.count
        };
        let week = Duration::from_secs(7 * 86_400);
        let hours = self
            .history
            .hourly_usage(&delta.key_id, hour.minus(week))
            .await?;
        let count = hours
            .iter()
            .find(|h| h.start == hour)
            .map_or(0, |h| h.count);
        let busiest = hours
            .iter()
            .filter(|h| h.start < hour)
            .map(|h| h.count)
            .max()
            .unwrap_or(0);
        let Some(key) = self.keys.find(&delta.user_id, &delta.key_id).await? else {
            return Ok(None);
        };
        let week_old = key.created_at.plus(week) <= now;
        if self.policy.is_spike(count, busiest, week_old) {
            return Ok(Some(EventDetail::UsageSpike { count, busiest }));
        }
        if week_old {
            // Ask again once this instance has seen what was still missing (other instances'
            // requests only bring the spike closer).
            let needed = self.policy.spike_min_requests.max(
                busiest
                    .saturating_mul(self.policy.spike_factor)
                    .saturating_add(1),
            );
            let missing = needed.saturating_sub(count).max(1);
            let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(m) = memory
                .get_mut(&KeyTag::of(&delta.key_id))
                .filter(|m| m.hour.hour == hour)
            {
                m.hour.ask_at = local.saturating_add(missing);
            }
        }
        Ok(None)
    }

    fn remember(&self, key: &KeyId, networks: impl Iterator<Item = (ClientNetwork, Timestamp)>) {
        let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = KeyTag::of(key);
        if memory.len() >= REMEMBERED_KEYS && !memory.contains_key(&slot) {
            memory.clear();
        }
        let list = &mut memory.entry(slot).or_default().networks;
        for (network, at) in networks {
            match list.iter_mut().find(|(n, _)| *n == network) {
                Some(entry) => entry.1 = entry.1.max(at),
                None => {
                    // Most keys are used from one network: no room for Vec's first four.
                    list.reserve_exact(1);
                    list.push((network, at));
                }
            }
        }
    }

    /// One signal of one key: the event and the email, unless raised in the last 24 h.
    async fn raise(
        &self,
        delta: &UsageDelta,
        detail: EventDetail,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // The signal and what its email says both follow from the event's detail.
        let (signal, seen) = match &detail {
            EventDetail::NewNetwork {
                network,
                user_agent,
                ..
            } => (
                KeySignal::NewNetwork,
                SignalSeen::NewNetwork {
                    network,
                    user_agent,
                },
            ),
            EventDetail::BrowserUse {
                network,
                user_agent,
                ..
            } => (
                KeySignal::BrowserUse,
                SignalSeen::BrowserUse {
                    network,
                    user_agent,
                },
            ),
            EventDetail::UsageSpike { count, busiest } => (
                KeySignal::UsageSpike,
                SignalSeen::UsageSpike {
                    count: *count,
                    busiest: *busiest,
                },
            ),
            _ => return Ok(false),
        };
        let slot = (delta.key_id.clone(), signal);
        {
            let quiet = self.quiet.lock().unwrap_or_else(PoisonError::into_inner);
            if quiet
                .get(&slot)
                .is_some_and(|at| at.plus(SIGNAL_QUIET) > now)
            {
                return Ok(false);
            }
        }
        let Some(key) = self.keys.find(&delta.user_id, &delta.key_id).await? else {
            return Ok(false);
        };
        if signal == KeySignal::NewNetwork
            && key.created_at.plus(self.policy.established_after) > now
        {
            return Ok(false);
        }
        let Some(owner) = self
            .accounts
            .find_user(&UserRef::Id(delta.user_id.clone()))
            .await?
        else {
            return Ok(false);
        };
        let email = QueuedWithChange {
            id: AlertId::generate(self.random.as_ref()),
            email: signal_email(owner.email, &key.name, &key.preview, seen),
        };
        let event = KeyEvent {
            key_id: key.id.clone(),
            actor: Actor::System,
            at: now,
            detail,
        };
        let raised = self
            .clients
            .raise_signal(&key.id, signal.as_str(), event, email, now)
            .await?;
        // Raised here or by another instance within the day: quiet for this one too.
        let mut quiet = self.quiet.lock().unwrap_or_else(PoisonError::into_inner);
        if quiet.len() >= REMEMBERED_KEYS {
            quiet.clear();
        }
        quiet.insert(slot, now);
        Ok(raised)
    }
}
