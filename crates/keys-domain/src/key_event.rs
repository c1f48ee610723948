//! The audit trail of a key: what happened to it, who did it, when.
//!
//! Each event is written by the store in the same transaction as the change it records, so the
//! trail never claims a change that did not happen, nor misses one that did.

use crate::api_key::NewApiKey;
use crate::event_cursor::EventCursor;
use crate::ids::KeyId;
use crate::revocation_reason::RevocationReason;
use crate::timestamp::Timestamp;

/// Longest `url` or `source` of a leak report kept in the trail (GitHub's are far shorter).
pub const MAX_REPORT_TEXT_CHARS: usize = 2048;

/// What kind of event, as the wire's `type` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEventKind {
    Created,
    Rotated,
    RevocationScheduled,
    Revoked,
    HighUsageAlert,
    LeakReported,
    Updated,
    ExpiryReminder,
    NewNetwork,
    BrowserUse,
    UsageSpike,
}

impl KeyEventKind {
    pub const ALL: [Self; 11] = [
        Self::Created,
        Self::Rotated,
        Self::RevocationScheduled,
        Self::Revoked,
        Self::HighUsageAlert,
        Self::LeakReported,
        Self::Updated,
        Self::ExpiryReminder,
        Self::NewNetwork,
        Self::BrowserUse,
        Self::UsageSpike,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Rotated => "rotated",
            Self::RevocationScheduled => "revocation_scheduled",
            Self::Revoked => "revoked",
            Self::HighUsageAlert => "high_usage_alert",
            Self::LeakReported => "leak_reported",
            Self::Updated => "updated",
            Self::ExpiryReminder => "expiry_reminder",
            Self::NewNetwork => "new_network",
            Self::BrowserUse => "browser_use",
            Self::UsageSpike => "usage_spike",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The key's owner, through the dashboard.
    User,
    /// An operator, through the command line.
    Operator,
    /// GitHub's secret-scanning partner program.
    GithubSecretScanning,
    /// The service itself (usage alerts, the end of a grace period).
    System,
}

impl Actor {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Operator => "operator",
            Self::GithubSecretScanning => "github_secret_scanning",
            Self::System => "system",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::User,
            Self::Operator,
            Self::GithubSecretScanning,
            Self::System,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// What an event says beyond its kind; the kind follows from the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventDetail {
    /// The key was created, as a replacement of `rotated_from` when it comes from a rotation.
    Created {
        name: String,
        rotated_from: Option<KeyId>,
    },
    /// The key was rotated: `replaced_by` is its successor.
    Rotated { replaced_by: KeyId },
    /// A rotation's grace period: the key stops working at `revokes_at`.
    RevocationScheduled { revokes_at: Timestamp },
    /// The key stopped working.
    Revoked { reason: RevocationReason },
    /// Its owner was emailed about `count` requests in 24 h (over `threshold`).
    HighUsageAlert { count: u64, threshold: u64 },
    /// It was found in public at `url`, according to `source` (e.g. `content`, `commit`).
    LeakReported { url: String, source: String },
    /// Its owner changed these fields (name or controls), each to its new value (`None`: the
    /// control was removed), in the contract's order.
    Updated {
        changes: Vec<(String, Option<String>)>,
    },
    /// Its owner was reminded that it stops working at `expires_at`, `days_before` ahead.
    ExpiryReminder {
        expires_at: Timestamp,
        days_before: u32,
    },
    /// Used from `network` (by `user_agent`), not seen for it in 30 days; `networks` is how
    /// many it was used from in those 30 days before.
    NewNetwork {
        network: String,
        user_agent: String,
        networks: u64,
    },
    /// `requests` requests of one flush carried an `Origin` header: a browser sent them.
    BrowserUse {
        network: String,
        user_agent: String,
        requests: u64,
    },
    /// `count` requests in the current hour against a busiest hour of `busiest` in the 7 days
    /// before.
    UsageSpike { count: u64, busiest: u64 },
}

impl EventDetail {
    #[must_use]
    pub const fn kind(&self) -> KeyEventKind {
        match self {
            Self::Created { .. } => KeyEventKind::Created,
            Self::Rotated { .. } => KeyEventKind::Rotated,
            Self::RevocationScheduled { .. } => KeyEventKind::RevocationScheduled,
            Self::Revoked { .. } => KeyEventKind::Revoked,
            Self::HighUsageAlert { .. } => KeyEventKind::HighUsageAlert,
            Self::LeakReported { .. } => KeyEventKind::LeakReported,
            Self::Updated { .. } => KeyEventKind::Updated,
            Self::ExpiryReminder { .. } => KeyEventKind::ExpiryReminder,
            Self::NewNetwork { .. } => KeyEventKind::NewNetwork,
            Self::BrowserUse { .. } => KeyEventKind::BrowserUse,
            Self::UsageSpike { .. } => KeyEventKind::UsageSpike,
        }
    }

    /// A leak report's detail, its texts cut to [`MAX_REPORT_TEXT_CHARS`].
    #[must_use]
    pub fn leak_reported(url: &str, source: &str) -> Self {
        let cut = |s: &str| s.chars().take(MAX_REPORT_TEXT_CHARS).collect::<String>();
        Self::LeakReported {
            url: cut(url),
            source: cut(source),
        }
    }
}

/// One entry of a key's audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    pub key_id: KeyId,
    pub actor: Actor,
    pub at: Timestamp,
    pub detail: EventDetail,
}

impl KeyEvent {
    #[must_use]
    pub const fn kind(&self) -> KeyEventKind {
        self.detail.kind()
    }

    /// The `created` event of a key its owner just created in the dashboard.
    #[must_use]
    pub fn created(key: &NewApiKey) -> Self {
        Self {
            key_id: key.id.clone(),
            actor: Actor::User,
            at: key.created_at,
            detail: EventDetail::Created {
                name: key.name.as_str().to_owned(),
                rotated_from: None,
            },
        }
    }
}

/// An event with its position, as a page of the trail lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionedEvent {
    pub cursor: EventCursor,
    pub event: KeyEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for k in KeyEventKind::ALL {
            assert_eq!(KeyEventKind::parse(k.as_str()), Some(k));
        }
        for a in [
            Actor::User,
            Actor::Operator,
            Actor::GithubSecretScanning,
            Actor::System,
        ] {
            assert_eq!(Actor::parse(a.as_str()), Some(a));
        }
    }

    #[test]
    fn leak_texts_are_bounded() {
        let long = "x".repeat(MAX_REPORT_TEXT_CHARS + 10);
        let EventDetail::LeakReported { url, source } =
            EventDetail::leak_reported(&long, "content")
        else {
            unreachable!()
        };
        assert_eq!(url.chars().count(), MAX_REPORT_TEXT_CHARS);
        assert_eq!(source, "content");
    }
}
