//! Issue, list, get, revoke and rotate keys on behalf of their owner.

use std::sync::Arc;

use crate::allowed_networks::AllowedNetworks;
use crate::api_key::{ApiKey, KeyLimits, NewApiKey};
use crate::credits::Credits;
use crate::ids::{KeyId, UserId};
use crate::key_controls::{ControlsPatch, KeyControls};
use crate::key_event::Actor;
use crate::key_event::{EventDetail, KeyEvent};
use crate::key_name::KeyName;
use crate::key_secret::ApiKeySecret;
use crate::key_state::{GracePeriod, KeyStatus};
use crate::monthly_spend::SpendMonth;
use crate::page::{ListError, Page};
use crate::ports::{
    Clock, InsertKeyError, KeyListQuery, KeyStore, KeyUpdate, RevocationNotifier,
    RotateKeyStoreError, Rotation, StoreError, UpdateKeyStoreError,
};
use crate::random::RandomSource;
use crate::revocation_reason::RevocationReason;
use crate::timestamp::Timestamp;

use super::revocation::{RevokeOrder, Revoked, revoke_key};

/// A key just created: the record plus the secret, shown exactly once.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub key: ApiKey,
    pub secret: ApiKeySecret,
}

/// The one wording of a name clash, whether issuing or rotating.
const DUPLICATE_NAME: &str = "you already have a key with this name";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueKeyError {
    #[error("{DUPLICATE_NAME}")]
    DuplicateName,
    #[error("you already have the maximum of {0} active keys; revoke one first")]
    TooManyKeys(u32),
    #[error("no such user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyLookupError {
    #[error("no such key")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateKeyError {
    #[error("no such key")]
    NotFound,
    #[error("the key is revoked and cannot be rotated")]
    AlreadyRevoked,
    #[error("the key has expired and cannot be rotated; create a new key")]
    Expired,
    #[error("{DUPLICATE_NAME}")]
    DuplicateName,
    #[error("you already have the maximum of {0} active keys; revoke one first")]
    TooManyKeys(u32),
    #[error("the key was changed by another request; try again")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateKeyError {
    #[error("no such key")]
    NotFound,
    /// Revoked or expired keys are final: nothing about them changes any more.
    #[error("the key is {0} and can no longer be changed")]
    Final(&'static str),
    #[error("{DUPLICATE_NAME}")]
    DuplicateName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<IssueKeyError> for RotateKeyError {
    /// The replacement key's insert failed. An unknown user means the old key is not theirs.
    fn from(e: IssueKeyError) -> Self {
        match e {
            IssueKeyError::DuplicateName => Self::DuplicateName,
            IssueKeyError::TooManyKeys(max) => Self::TooManyKeys(max),
            IssueKeyError::UnknownUser => Self::NotFound,
            IssueKeyError::Store(e) => Self::Store(e),
        }
    }
}

/// Key management for dashboard users.
#[derive(Clone)]
pub struct KeyService {
    pub store: Arc<dyn KeyStore>,
    pub notifier: Arc<dyn RevocationNotifier>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub limits: KeyLimits,
}

impl KeyService {
    fn new_key(
        &self,
        user: &UserId,
        name: KeyName,
        controls: KeyControls,
    ) -> (NewApiKey, ApiKeySecret) {
        let secret = ApiKeySecret::generate(self.random.as_ref());
        let new = NewApiKey {
            id: KeyId::generate(self.random.as_ref()),
            user_id: user.clone(),
            name,
            preview: secret.preview(),
            hash: secret.hash(),
            created_at: self.clock.now(),
            controls,
        };
        (new, secret)
    }

    /// Creates a key for `user`, narrowed by `controls` (already validated against the clock).
    ///
    /// # Errors
    /// `DuplicateName`, `TooManyKeys`, `UnknownUser`, `Store`.
    pub async fn issue(
        &self,
        user: &UserId,
        name: KeyName,
        controls: KeyControls,
    ) -> Result<IssuedKey, IssueKeyError> {
        let (new, secret) = self.new_key(user, name, controls);
        let now = new.created_at;
        match self.store.insert(new, self.limits, now).await {
            Ok(key) => Ok(IssuedKey { key, secret }),
            Err(e) => Err(self.insert_failed(e)),
        }
    }

    /// Why the new key of an issue or a rotation was not inserted.
    fn insert_failed(&self, e: InsertKeyError) -> IssueKeyError {
        match e {
            InsertKeyError::DuplicateName => IssueKeyError::DuplicateName,
            InsertKeyError::TooManyKeys => IssueKeyError::TooManyKeys(self.limits.max_live_keys),
            InsertKeyError::UnknownUser => IssueKeyError::UnknownUser,
            InsertKeyError::Store(e) => IssueKeyError::Store(e),
        }
    }

    /// One page of the user's keys, newest first, optionally of one status.
    ///
    /// # Errors
    /// `UnknownCursor`, `Store`.
    pub async fn list(
        &self,
        user: &UserId,
        query: &KeyListQuery,
    ) -> Result<Page<ApiKey>, ListError> {
        self.store.list(user, query, self.clock.now()).await
    }

    /// One of the user's keys.
    ///
    /// # Errors
    /// `NotFound` (also for another user's key), `Store`.
    pub async fn get(&self, user: &UserId, id: &KeyId) -> Result<ApiKey, KeyLookupError> {
        self.store
            .find(user, id)
            .await?
            .ok_or(KeyLookupError::NotFound)
    }

    /// What a key spent in the current UTC calendar month (0 for a key without a monthly limit,
    /// whose spend is not kept).
    ///
    /// # Errors
    /// `Store`.
    pub async fn spent_this_month(&self, key: &ApiKey) -> Result<Credits, StoreError> {
        if key.controls.monthly_credit_limit.is_none() {
            return Ok(Credits::ZERO);
        }
        self.store
            .spent_in(&key.id, SpendMonth::of(self.clock.now()))
            .await
    }

    /// Revokes one of the user's keys. Idempotent: a revoked key is returned unchanged.
    ///
    /// # Errors
    /// `NotFound`, `Store`.
    pub async fn revoke(&self, user: &UserId, id: &KeyId) -> Result<ApiKey, KeyLookupError> {
        let key = self.get(user, id).await?;
        let order = RevokeOrder {
            actor: Actor::User,
            reason: RevocationReason::User,
            before: Vec::new(),
            email: None,
        };
        match revoke_key(
            self.store.as_ref(),
            self.notifier.as_ref(),
            self.clock.as_ref(),
            key,
            order,
        )
        .await?
        {
            Revoked::Now(key) | Revoked::Already(key) => Ok(key),
        }
    }

    /// Rotates one of the user's keys: a new key named `name`, and the old one revoked at once
    /// (zero grace) or expiring after `grace`.
    ///
    /// # Errors
    /// `NotFound`, `AlreadyRevoked`, `DuplicateName`, `TooManyKeys`, `Conflict`, `Store`.
    pub async fn rotate(
        &self,
        user: &UserId,
        id: &KeyId,
        name: KeyName,
        grace: GracePeriod,
    ) -> Result<IssuedKey, RotateKeyError> {
        let old = self
            .store
            .find(user, id)
            .await?
            .ok_or(RotateKeyError::NotFound)?;
        // The replacement inherits every control of the key it replaces.
        let (new, secret) = self.new_key(user, name, old.controls.clone());
        let now = new.created_at;
        if old.status(now) == KeyStatus::Expired {
            return Err(RotateKeyError::Expired);
        }
        let old_to = old
            .state
            .rotate(now, grace)
            .map_err(|_| RotateKeyError::AlreadyRevoked)?;
        let rotation = Rotation {
            old_id: id.clone(),
            old_hash: old.hash,
            expected: old.state,
            old_to,
            new_key: new,
            limits: self.limits,
            now,
        };
        let result = self.store.rotate(user, rotation).await;
        match result {
            Ok(key) => {
                self.notifier.key_changed(&old.hash).await;
                Ok(IssuedKey { key, secret })
            }
            Err(RotateKeyStoreError::NotFound) => Err(RotateKeyError::NotFound),
            Err(RotateKeyStoreError::StateChanged) => Err(RotateKeyError::Conflict),
            Err(RotateKeyStoreError::Insert(e)) => Err(self.insert_failed(e).into()),
        }
    }

    /// Changes a key's name or controls (already validated against the clock), writes an
    /// `updated` event naming what changed, and tells every instance's caches.
    ///
    /// # Errors
    /// `NotFound`, `Final` (revoked or expired), `DuplicateName`, `Store`.
    pub async fn update(
        &self,
        user: &UserId,
        id: &KeyId,
        patch: ControlsPatch,
    ) -> Result<ApiKey, UpdateKeyError> {
        let key = self
            .store
            .find(user, id)
            .await?
            .ok_or(UpdateKeyError::NotFound)?;
        let now = self.clock.now();
        if !key.is_live(now) {
            return Err(UpdateKeyError::Final(key.status(now).as_str()));
        }
        if patch.fields().is_empty() {
            return Ok(key);
        }
        let controls = patch.apply(&key.controls);
        let event = KeyEvent {
            key_id: id.clone(),
            actor: Actor::User,
            at: now,
            detail: EventDetail::Updated {
                changes: changes(&patch, &controls),
            },
        };
        let update = KeyUpdate {
            name: patch.name,
            controls,
            event,
        };
        let updated = match self.store.update(user, id, update).await {
            Ok(Some(key)) => key,
            Ok(None) => return Err(UpdateKeyError::NotFound),
            Err(UpdateKeyStoreError::DuplicateName) => return Err(UpdateKeyError::DuplicateName),
            Err(UpdateKeyStoreError::Store(e)) => return Err(e.into()),
        };
        self.notifier.key_changed(&updated.hash).await;
        Ok(updated)
    }
}

/// What a patch changed, field by field, as the `updated` event records it.
fn changes(patch: &ControlsPatch, after: &KeyControls) -> Vec<(String, Option<String>)> {
    patch
        .fields()
        .into_iter()
        .map(|field| {
            let value = match field {
                "name" => patch.name.as_ref().map(|n| n.as_str().to_owned()),
                "expires_at" => after.expires_at.map(Timestamp::to_rfc3339),
                "allowed_networks" => after
                    .allowed_networks
                    .as_ref()
                    .map(AllowedNetworks::to_stored),
                "monthly_credit_limit" => after
                    .monthly_credit_limit
                    .map(|l| l.credits().get().to_string()),
                _ => Some(after.scopes.to_stored()),
            };
            (field.to_owned(), value)
        })
        .collect()
}
