//! An API key as stored: everything but the secret, which is never stored.

use crate::ids::{KeyId, UserId};
use crate::key_controls::KeyControls;
use crate::key_hash::KeyHash;
use crate::key_name::KeyName;
use crate::key_preview::KeyPreview;
use crate::key_state::{KeyState, KeyStatus};
use crate::revocation_reason::RevocationReason;
use crate::timestamp::Timestamp;

/// A stored key record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: KeyId,
    pub user_id: UserId,
    pub name: KeyName,
    pub preview: KeyPreview,
    pub hash: KeyHash,
    pub state: KeyState,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub usage_count: u64,
    /// Why it was (or, while expiring, will be) revoked; `None` while active.
    pub revocation_reason: Option<RevocationReason>,
    pub controls: KeyControls,
}

impl ApiKey {
    /// The contract's status as of `now`: `revoked` wins over `expired`, which wins over the
    /// lifecycle's `active` or `expiring`.
    #[must_use]
    pub fn status(&self, now: Timestamp) -> KeyStatus {
        match self.state.status(now) {
            KeyStatus::Revoked => KeyStatus::Revoked,
            _ if self.controls.is_expired(now) => KeyStatus::Expired,
            status => status,
        }
    }

    /// Whether a request presenting this key may go on to its other checks at `now`: neither
    /// revoked nor expired.
    #[must_use]
    pub fn is_live(&self, now: Timestamp) -> bool {
        matches!(self.status(now), KeyStatus::Active | KeyStatus::Expiring)
    }

    /// `revocation_reason` as of `now`: shown once the key is effectively revoked (an expiring
    /// key carries `rotation` before its grace ends, but is not revoked yet). `None` for keys
    /// revoked before reasons were recorded.
    #[must_use]
    pub fn revocation_reason_at(&self, now: Timestamp) -> Option<RevocationReason> {
        self.revocation_reason
            .filter(|_| !self.state.is_accepted(now))
    }
}

/// What a store needs to insert a new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub id: KeyId,
    pub user_id: UserId,
    pub name: KeyName,
    pub preview: KeyPreview,
    pub hash: KeyHash,
    pub created_at: Timestamp,
    pub controls: KeyControls,
}

impl NewApiKey {
    /// The record as stored right after insertion.
    #[must_use]
    pub fn into_key(self) -> ApiKey {
        ApiKey {
            id: self.id,
            user_id: self.user_id,
            name: self.name,
            preview: self.preview,
            hash: self.hash,
            state: KeyState::Active,
            created_at: self.created_at,
            last_used_at: None,
            usage_count: 0,
            revocation_reason: None,
            controls: self.controls,
        }
    }
}

/// Limits on a user's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimits {
    /// Most non-revoked keys one user may hold.
    pub max_live_keys: u32,
}

impl Default for KeyLimits {
    fn default() -> Self {
        Self { max_live_keys: 25 }
    }
}
