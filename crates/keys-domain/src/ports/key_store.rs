use async_trait::async_trait;

use super::StoreError;
use crate::alert_email::OutgoingEmail;
use crate::api_key::{ApiKey, KeyLimits, NewApiKey};
use crate::credits::Credits;
use crate::ids::{AlertId, KeyId, UserId};
use crate::key_controls::KeyControls;
use crate::key_event::{Actor, EventDetail, KeyEvent};
use crate::key_hash::KeyHash;
use crate::key_name::KeyName;
use crate::key_state::{KeyState, KeyStatus};
use crate::monthly_spend::SpendMonth;
use crate::page::{ListError, Page, PageRequest};
use crate::revocation_reason::RevocationReason;
use crate::timestamp::Timestamp;
use crate::usage::UsageDelta;

/// Why a key could not be inserted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertKeyError {
    /// The user already has a non-revoked key with this name.
    #[error("the user already has a non-revoked key with this name")]
    DuplicateName,
    /// The user already has `max_live_keys` non-revoked keys.
    #[error("too many keys")]
    TooManyKeys,
    /// No such user.
    #[error("no such user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a rotation could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateKeyStoreError {
    /// The old key is not the user's (or does not exist).
    #[error("no such key")]
    NotFound,
    /// The old key's stored state is no longer `expected` (a concurrent revoke or rotation).
    #[error("the key changed meanwhile")]
    StateChanged,
    #[error(transparent)]
    Insert(#[from] InsertKeyError),
}

/// A rotation as the store applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The key being rotated.
    pub old_id: KeyId,
    /// Its hash, so that a cache in front of the store can forget it.
    pub old_hash: KeyHash,
    /// Its state as the use case read it.
    pub expected: KeyState,
    /// Its state after the rotation (revoked, or expiring).
    pub old_to: KeyState,
    /// The replacement.
    pub new_key: NewApiKey,
    pub limits: KeyLimits,
    pub now: Timestamp,
}

impl Rotation {
    /// The audit events the rotation writes with itself: on the old key `rotated` and then
    /// `revoked` (zero grace) or `revocation_scheduled`; on the new key `created`.
    #[must_use]
    pub fn events(&self) -> Vec<KeyEvent> {
        let on_old = |detail| KeyEvent {
            key_id: self.old_id.clone(),
            actor: Actor::User,
            at: self.now,
            detail,
        };
        let mut events = vec![on_old(EventDetail::Rotated {
            replaced_by: self.new_key.id.clone(),
        })];
        match self.old_to {
            KeyState::Expiring { revokes_at } => {
                events.push(on_old(EventDetail::RevocationScheduled { revokes_at }));
            }
            KeyState::Revoked { .. } => events.push(on_old(EventDetail::Revoked {
                reason: RevocationReason::Rotation,
            })),
            KeyState::Active => {}
        }
        events.push(KeyEvent {
            key_id: self.new_key.id.clone(),
            actor: Actor::User,
            at: self.now,
            detail: EventDetail::Created {
                name: self.new_key.name.as_str().to_owned(),
                rotated_from: Some(self.old_id.clone()),
            },
        });
        events
    }
}

/// Why a key's settings could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateKeyStoreError {
    /// The new name is taken by another of the user's non-revoked keys.
    #[error("the user already has a non-revoked key with this name")]
    DuplicateName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change of a key's name and controls, with its `updated` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUpdate {
    /// The new name; `None` keeps it.
    pub name: Option<KeyName>,
    /// The controls after the change (every column is written).
    pub controls: KeyControls,
    pub event: KeyEvent,
}

/// An email put in the outbox by the transaction of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedWithChange {
    pub id: AlertId,
    pub email: OutgoingEmail,
}

/// A compare-and-set of a key's state, with what is written along with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The stored state the change expects.
    pub expected: KeyState,
    /// The state it writes.
    pub to: KeyState,
    /// Stored as the key's `revocation_reason` (when `to` revokes).
    pub reason: Option<RevocationReason>,
    /// Audit events written in the same transaction, only when the change is applied.
    pub events: Vec<KeyEvent>,
    /// An email queued in the same transaction, only when the change is applied (outside the
    /// high-usage alert's 24-hour rule).
    pub email: Option<QueuedWithChange>,
}

impl StateChange {
    /// A bare change: no reason, no event, no email.
    #[must_use]
    pub const fn new(expected: KeyState, to: KeyState) -> Self {
        Self {
            expected,
            to,
            reason: None,
            events: Vec::new(),
            email: None,
        }
    }
}

/// Which of a user's keys to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyListQuery {
    pub page: PageRequest<KeyId>,
    /// Only keys with this status as of the listing's `now` (an `expiring` key past its
    /// `revokes_at` counts as `revoked`); all keys when `None`.
    pub status: Option<KeyStatus>,
}

/// API keys. Only hashes and previews are ever given to it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Inserts a new active key in one transaction that first settles the user's expired
    /// `expiring` keys as revoked (with a `revoked` event by `system` at their `revokes_at`), then enforces name uniqueness among the user's non-revoked keys
    /// and `limits.max_live_keys`. Concurrent inserts for one user must not exceed the limit.
    /// Writes the key's [`KeyEvent::created`] event in the same transaction.
    ///
    /// # Errors
    /// `DuplicateName`, `TooManyKeys`, `UnknownUser`, or `Store(Unavailable)`.
    async fn insert(
        &self,
        key: NewApiKey,
        limits: KeyLimits,
        now: Timestamp,
    ) -> Result<ApiKey, InsertKeyError>;

    /// The key with this hash, whoever owns it, in any state. The hot path of authentication.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot answer (never `Ok(None)` in that case).
    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError>;

    /// The user's key with this id; `None` for an unknown id or another user's key.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn find(&self, user: &UserId, id: &KeyId) -> Result<Option<ApiKey>, StoreError>;

    /// One page of the user's keys, newest first (by `created_at`, then id), after the key
    /// `query.page.after` names (whatever that key's status), as of `now`. Reads one page from
    /// an index, never the user's whole history.
    ///
    /// # Errors
    /// `UnknownCursor` when `after` is not one of the user's keys, `Store(Unavailable)`.
    async fn list(
        &self,
        user: &UserId,
        query: &KeyListQuery,
        now: Timestamp,
    ) -> Result<Page<ApiKey>, ListError>;

    /// Compare-and-set of a key's state: writes `change.to` (and its reason, events and email,
    /// in one transaction) only if the stored state is still exactly `change.expected`. Returns
    /// the key as stored afterwards, or `None` when the key is not the user's. When the state did
    /// not match, returns the key unchanged and writes nothing (the caller re-decides).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn transition(
        &self,
        user: &UserId,
        id: &KeyId,
        change: StateChange,
    ) -> Result<Option<ApiKey>, StoreError>;

    /// A rotation in one transaction: compare-and-set the old key (which must be `user`'s) from
    /// `expected` to `old_to`, then insert `new_key` as in [`KeyStore::insert`] (the old key's
    /// new state counts for the name and limit checks), store the old key's reason `rotation`
    /// and write [`Rotation::events`]. Returns the new key.
    ///
    /// # Errors
    /// `NotFound`, `StateChanged`, `Insert(DuplicateName | TooManyKeys | Store(..))`.
    async fn rotate(
        &self,
        user: &UserId,
        rotation: Rotation,
    ) -> Result<ApiKey, RotateKeyStoreError>;

    /// Writes `update` (name and controls) and its event in one transaction. Returns the key as
    /// stored afterwards, or `None` when it is not the user's.
    ///
    /// # Errors
    /// `DuplicateName`, `Store(Unavailable)`.
    async fn update(
        &self,
        user: &UserId,
        id: &KeyId,
        update: KeyUpdate,
    ) -> Result<Option<ApiKey>, UpdateKeyStoreError>;

    /// What the key spent in `month` through charges (0 when nothing).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn spent_in(&self, id: &KeyId, month: SpendMonth) -> Result<Credits, StoreError>;

    /// Adds a batch of usage: `usage_count += count` and `last_used_at = max(last_used_at, at)`
    /// per key, in one transaction. Unknown key ids are ignored.
    ///
    /// # Errors
    /// `Unavailable` (the caller keeps the batch and retries).
    async fn record_usage(&self, batch: &[UsageDelta]) -> Result<(), StoreError>;
}
