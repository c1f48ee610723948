//! The key lifecycle: `active` → `expiring(revokes_at)` → `revoked`, and `active` → `revoked`.
//!
//! `revoked` is terminal. An `expiring` key whose `revokes_at` has passed *is* revoked: every
//! read goes through [`KeyState::effective`], so no background job is needed to flip it.

use std::time::Duration;

use crate::timestamp::Timestamp;

/// The stored lifecycle state of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    /// Revocation scheduled by a rotation's grace period; accepted until `revokes_at`.
    Expiring {
        revokes_at: Timestamp,
    },
    Revoked {
        revoked_at: Timestamp,
    },
}

/// The status as the contract names it. `Expired` comes from the key's `expires_at` control,
/// not from the lifecycle: see [`crate::ApiKey::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Expiring,
    Revoked,
    Expired,
}

impl KeyStatus {
    /// The contract's (and the stores') spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expiring => "expiring",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    /// The status spelled as [`KeyStatus::as_str`] does; `None` for anything else.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Expiring, Self::Revoked, Self::Expired]
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// Rotating a revoked key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the key is revoked and cannot be rotated")]
pub struct AlreadyRevoked;

/// A rotation's grace period: 0 to 604 800 seconds (7 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GracePeriod(u32);

/// The grace period is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("grace_period_seconds must be between 0 and 604800")]
pub struct InvalidGracePeriod;

impl GracePeriod {
    /// The longest grace period, 7 days.
    pub const MAX_SECONDS: i64 = 604_800;

    /// # Errors
    /// [`InvalidGracePeriod`] when `seconds` is negative or over 7 days.
    pub fn from_seconds(seconds: i64) -> Result<Self, InvalidGracePeriod> {
        if (0..=Self::MAX_SECONDS).contains(&seconds) {
            u32::try_from(seconds)
                .map(Self)
                .map_err(|_| InvalidGracePeriod)
        } else {
            Err(InvalidGracePeriod)
        }
    }

    /// As a duration.
    #[must_use]
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

impl KeyState {
    /// The state as of `now`: an `expiring` key past its `revokes_at` is `revoked` at that time.
    #[must_use]
    pub fn effective(self, now: Timestamp) -> Self {
        match self {
            Self::Expiring { revokes_at } if revokes_at <= now => Self::Revoked {
                revoked_at: revokes_at,
            },
            other => other,
        }
    }

    /// The contract's status as of `now`.
    #[must_use]
    pub fn status(self, now: Timestamp) -> KeyStatus {
        match self.effective(now) {
            Self::Active => KeyStatus::Active,
            Self::Expiring { .. } => KeyStatus::Expiring,
            Self::Revoked { .. } => KeyStatus::Revoked,
        }
    }

    /// Whether a request presenting this key is accepted at `now`.
    #[must_use]
    pub fn is_accepted(self, now: Timestamp) -> bool {
        !matches!(self.effective(now), Self::Revoked { .. })
    }

    /// `revoked_at` as of `now`, for the key object.
    #[must_use]
    pub fn revoked_at(self, now: Timestamp) -> Option<Timestamp> {
        match self.effective(now) {
            Self::Revoked { revoked_at } => Some(revoked_at),
            _ => None,
        }
    }

    /// `revokes_at` as of `now`: set only while expiring.
    #[must_use]
    pub fn revokes_at(self, now: Timestamp) -> Option<Timestamp> {
        match self.effective(now) {
            Self::Expiring { revokes_at } => Some(revokes_at),
            _ => None,
        }
    }

    /// Revoke at `now`. Idempotent: a revoked key (or one whose grace ended) stays as it is.
    #[must_use]
    pub fn revoke(self, now: Timestamp) -> Self {
        match self.effective(now) {
            revoked @ Self::Revoked { .. } => revoked,
            Self::Active | Self::Expiring { .. } => Self::Revoked { revoked_at: now },
        }
    }

    /// The old key's state when it is rotated at `now` with `grace`: revoked at once for a zero
    /// grace, else expiring. A rotation never extends an already scheduled revocation.
    ///
    /// # Errors
    /// [`AlreadyRevoked`] when the key is (effectively) revoked.
    pub fn rotate(self, now: Timestamp, grace: GracePeriod) -> Result<Self, AlreadyRevoked> {
        let current = self.effective(now);
        if matches!(current, Self::Revoked { .. }) {
            return Err(AlreadyRevoked);
        }
        if grace.as_duration().is_zero() {
            return Ok(Self::Revoked { revoked_at: now });
        }
        let wanted = now.plus(grace.as_duration());
        Ok(match current {
            Self::Expiring { revokes_at } if revokes_at < wanted => current,
            _ => Self::Expiring { revokes_at: wanted },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_000_000);

    #[test]
    fn active_is_accepted_and_revocation_is_terminal_and_idempotent() {
        let s = KeyState::Active;
        assert!(s.is_accepted(T0));
        let r = s.revoke(T0);
        assert_eq!(r, KeyState::Revoked { revoked_at: T0 });
        assert!(!r.is_accepted(T0));
        assert_eq!(r.revoke(T0.plus(Duration::from_secs(5))), r);
        assert_eq!(r.rotate(T0, GracePeriod::default()), Err(AlreadyRevoked));
    }

    #[test]
    fn expiring_is_accepted_until_revokes_at_then_revoked_at_that_instant() {
        let grace = GracePeriod::from_seconds(60).unwrap();
        let s = KeyState::Active.rotate(T0, grace).unwrap();
        let at = T0.plus(Duration::from_secs(60));
        assert_eq!(s, KeyState::Expiring { revokes_at: at });
        assert!(s.is_accepted(at.minus(Duration::from_millis(1))));
        assert_eq!(s.status(T0), KeyStatus::Expiring);
        assert!(!s.is_accepted(at));
        assert_eq!(s.status(at), KeyStatus::Revoked);
        assert_eq!(s.revoked_at(at), Some(at));
        assert_eq!(s.rotate(at, grace), Err(AlreadyRevoked));
    }

    #[test]
    fn zero_grace_revokes_at_once_and_rotation_never_extends_life() {
        assert_eq!(
            KeyState::Active.rotate(T0, GracePeriod::default()),
            Ok(KeyState::Revoked { revoked_at: T0 })
        );
        let short = KeyState::Expiring {
            revokes_at: T0.plus(Duration::from_secs(10)),
        };
        let long = GracePeriod::from_seconds(3600).unwrap();
        assert_eq!(short.rotate(T0, long), Ok(short));
    }

    #[test]
    fn grace_period_bounds() {
        assert!(GracePeriod::from_seconds(0).is_ok());
        assert!(GracePeriod::from_seconds(604_800).is_ok());
        assert!(GracePeriod::from_seconds(604_801).is_err());
        assert!(GracePeriod::from_seconds(-1).is_err());
    }
}
