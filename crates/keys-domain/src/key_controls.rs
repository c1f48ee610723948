//! What a key's owner narrowed it to: when it expires, where it may be used from, how much it
//! may spend a month, and what it may do. Every control is optional; none set is a key that
//! works anywhere, for ever, for everything its owner can do.

use std::net::IpAddr;
use std::time::Duration;

use crate::allowed_networks::AllowedNetworks;
use crate::monthly_spend::MonthlyCreditLimit;
use crate::scope::Scopes;
use crate::timestamp::Timestamp;

/// A key's controls.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyControls {
    /// After this instant the key is refused (`expired`).
    pub expires_at: Option<Timestamp>,
    /// Requests from elsewhere are refused.
    pub allowed_networks: Option<AllowedNetworks>,
    /// Charges past it in one UTC calendar month are refused.
    pub monthly_credit_limit: Option<MonthlyCreditLimit>,
    /// What the key may do.
    pub scopes: Scopes,
}

/// Why the controls refuse a request before any scope or charge is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRefusal {
    Expired,
    NetworkNotAllowed,
}

/// The earliest and latest `expires_at`, as distances from now.
pub const SHORTEST_LIFETIME: Duration = Duration::from_secs(60);
pub const LONGEST_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// `expires_at` is too close or too far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expires_at must be between 60 seconds and 366 days from now")]
pub struct InvalidExpiry;

/// `at` as an expiry set at `now`.
///
/// # Errors
/// [`InvalidExpiry`] when `at` is less than a minute or more than 366 days ahead.
pub fn expiry(at: Timestamp, now: Timestamp) -> Result<Timestamp, InvalidExpiry> {
    if at >= now.plus(SHORTEST_LIFETIME) && at <= now.plus(LONGEST_LIFETIME) {
        Ok(at)
    } else {
        Err(InvalidExpiry)
    }
}

impl KeyControls {
    /// Whether the key's `expires_at` has passed at `now`.
    #[must_use]
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The checks that come right after the key is known to be live, in the contract's order:
    /// expiry, then the client's network. `client` is `None` when the address is unknown, which
    /// an allow-list refuses.
    ///
    /// # Errors
    /// The first [`ControlRefusal`] that applies.
    pub fn admit(&self, now: Timestamp, client: Option<IpAddr>) -> Result<(), ControlRefusal> {
        if self.is_expired(now) {
            return Err(ControlRefusal::Expired);
        }
        if let Some(networks) = &self.allowed_networks {
            if !client.is_some_and(|addr| networks.contains(addr)) {
                return Err(ControlRefusal::NetworkNotAllowed);
            }
        }
        Ok(())
    }
}

/// A change of a key's settings: each `Some` field is set (`Some(None)` removes a control).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControlsPatch {
    pub name: Option<crate::key_name::KeyName>,
    pub expires_at: Option<Option<Timestamp>>,
    pub allowed_networks: Option<Option<AllowedNetworks>>,
    pub monthly_credit_limit: Option<Option<MonthlyCreditLimit>>,
    pub scopes: Option<Scopes>,
}

impl ControlsPatch {
    /// The controls after the patch.
    #[must_use]
    pub fn apply(&self, to: &KeyControls) -> KeyControls {
        KeyControls {
            expires_at: self.expires_at.unwrap_or(to.expires_at),
            allowed_networks: self
                .allowed_networks
                .clone()
                .unwrap_or_else(|| to.allowed_networks.clone()),
            monthly_credit_limit: self.monthly_credit_limit.unwrap_or(to.monthly_credit_limit),
            scopes: self.scopes.unwrap_or(to.scopes),
        }
    }

    /// The names of the fields the patch sets, in the contract's order (for the `updated`
    /// event).
    #[must_use]
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("expires_at", self.expires_at.is_some()),
            ("allowed_networks", self.allowed_networks.is_some()),
            ("monthly_credit_limit", self.monthly_credit_limit.is_some()),
            ("scopes", self.scopes.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    #[test]
    fn expiry_must_be_a_minute_to_366_days_ahead() {
        assert!(expiry(NOW.plus(Duration::from_secs(59)), NOW).is_err());
        assert!(expiry(NOW.plus(Duration::from_secs(60)), NOW).is_ok());
        assert!(expiry(NOW.plus(LONGEST_LIFETIME), NOW).is_ok());
        assert!(expiry(NOW.plus(LONGEST_LIFETIME + Duration::from_secs(1)), NOW).is_err());
        assert!(expiry(NOW.minus(Duration::from_secs(3600)), NOW).is_err());
    }

    #[test]
    fn expiry_is_checked_before_the_network() {
        let controls = KeyControls {
            expires_at: Some(NOW),
            allowed_networks: AllowedNetworks::parse(["10.0.0.0/8"]).ok(),
            ..KeyControls::default()
        };
        let outside = "192.0.2.1".parse().ok();
        assert_eq!(controls.admit(NOW, outside), Err(ControlRefusal::Expired));
        let before = Timestamp::from_millis(NOW.as_millis() - 1);
        assert_eq!(
            controls.admit(before, outside),
            Err(ControlRefusal::NetworkNotAllowed)
        );
        assert_eq!(controls.admit(before, "10.1.2.3".parse().ok()), Ok(()));
        assert_eq!(
            controls.admit(before, None),
            Err(ControlRefusal::NetworkNotAllowed)
        );
        assert_eq!(KeyControls::default().admit(NOW, None), Ok(()));
    }

    #[test]
    fn a_patch_sets_removes_or_keeps_each_control() {
        let before = KeyControls {
            expires_at: Some(NOW),
            monthly_credit_limit: MonthlyCreditLimit::new(5).ok(),
            ..KeyControls::default()
        };
        let patch = ControlsPatch {
            expires_at: Some(None),
            scopes: Scopes::parse(["credits:read"]).ok(),
            ..ControlsPatch::default()
        };
        let after = patch.apply(&before);
        assert_eq!(after.expires_at, None);
        assert_eq!(after.monthly_credit_limit, before.monthly_credit_limit);
        assert_eq!(after.scopes, Scopes::parse(["credits:read"]).unwrap());
        assert_eq!(patch.fields(), ["expires_at", "scopes"]);
    }
}
