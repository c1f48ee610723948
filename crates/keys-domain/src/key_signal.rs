//! Leak signals beyond the usage threshold: when a key's use looks like someone else's. Pure
//! rules; `use_cases::key_signals` drives them.

use std::time::Duration;

use crate::key_client::ClientNetwork;
use crate::timestamp::Timestamp;

/// One kind of signal, as its event type spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeySignal {
    NewNetwork,
    BrowserUse,
    UsageSpike,
}

impl KeySignal {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NewNetwork => "new_network",
            Self::BrowserUse => "browser_use",
            Self::UsageSpike => "usage_spike",
        }
    }
}

/// How long a raised signal keeps its key quiet: one email per key per signal per 24 h.
pub const SIGNAL_QUIET: Duration = Duration::from_secs(24 * 3600);

/// The signals' settings (`JT_KEY_SIGNALS`, `JT_KEY_ESTABLISHED_AFTER_SECONDS`,
/// `JT_SPIKE_FACTOR`, `JT_SPIKE_MIN_REQUESTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalPolicy {
    pub enabled: bool,
    /// A key younger than this raises no `new_network`: it is still being set up.
    pub established_after: Duration,
    pub spike_factor: u64,
    pub spike_min_requests: u64,
}

impl Default for SignalPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            established_after: Duration::from_secs(86_400),
            spike_factor: 10,
            spike_min_requests: 500,
        }
    }
}

impl SignalPolicy {
    /// `new_network`: an established key (older than `established_after`, and already used from
    /// at least one network in the last 30 days, `seen`) used from a network not among them.
    #[must_use]
    pub fn is_new_network(
        &self,
        key_created_at: Timestamp,
        now: Timestamp,
        seen: &[ClientNetwork],
        network: ClientNetwork,
    ) -> bool {
        self.enabled
            && key_created_at.plus(self.established_after) <= now
            && !seen.is_empty()
            && !seen.contains(&network)
    }

    /// `usage_spike`: the current hour's `count` over `spike_factor` times the busiest hour of
    /// the 7 days before (`busiest`) and at least `spike_min_requests`, for a key with 7 days of
    /// history.
    #[must_use]
    pub fn is_spike(&self, count: u64, busiest: u64, has_week_of_history: bool) -> bool {
        self.enabled
            && has_week_of_history
            && count >= self.spike_min_requests
            && count > busiest.saturating_mul(self.spike_factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_900_000_000_000);

    fn net(last: u8) -> ClientNetwork {
        ClientNetwork::of([198, 51, last, 1].into())
    }

    #[test]
    fn only_an_established_key_on_an_unseen_network_is_a_new_network() {
        let p = SignalPolicy::default();
        let old = NOW.minus(Duration::from_secs(2 * 86_400));
        let young = NOW.minus(Duration::from_secs(3600));
        assert!(p.is_new_network(old, NOW, &[net(1)], net(2)));
        assert!(!p.is_new_network(old, NOW, &[net(1), net(2)], net(2)));
        assert!(
            !p.is_new_network(old, NOW, &[], net(2)),
            "its first network"
        );
        assert!(
            !p.is_new_network(young, NOW, &[net(1)], net(2)),
            "not established"
        );
        let off = SignalPolicy {
            enabled: false,
            ..p
        };
        assert!(!off.is_new_network(old, NOW, &[net(1)], net(2)));
    }

    #[test]
    fn a_spike_needs_the_factor_the_minimum_and_a_week_of_history() {
        let p = SignalPolicy::default();
        assert!(p.is_spike(501, 50, true));
        assert!(!p.is_spike(500, 50, true), "not over 10 x 50");
        assert!(!p.is_spike(499, 10, true), "under the minimum");
        assert!(!p.is_spike(5_000, 50, false), "no week of history");
    }
}
