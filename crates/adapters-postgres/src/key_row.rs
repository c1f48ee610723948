//! A stored key row, and the key state its columns encode: the one decoder every query that
//! reads `api_keys` uses.

use diesel::prelude::*;
use keys_domain::api_key::ApiKey;
use keys_domain::ports::StoreError;
use keys_domain::{
    KeyHash, KeyId, KeyName, KeyPreview, KeyState, KeyStatus, RevocationReason, Timestamp, UserId,
};

use crate::key_controls_columns::stored_controls;
use crate::schema::api_keys;

/// The `status` column's values: the contract's spelling, one definition.
pub(crate) const ACTIVE: &str = KeyStatus::Active.as_str();
pub(crate) const EXPIRING: &str = KeyStatus::Expiring.as_str();
pub(crate) const REVOKED: &str = KeyStatus::Revoked.as_str();

/// A stored key row.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub(crate) struct KeyRow {
    id: String,
    user_id: String,
    name: String,
    preview: String,
    key_hash: Vec<u8>,
    status: String,
    revoked_at: Option<i64>,
    revokes_at: Option<i64>,
    created_at: i64,
    last_used_at: Option<i64>,
    usage_count: i64,
    revocation_reason: Option<String>,
    expires_at: Option<i64>,
    allowed_networks: Option<String>,
    monthly_credit_limit: Option<i64>,
    scopes: Option<String>,
}

impl KeyRow {
    pub(crate) fn state(&self) -> Result<KeyState, StoreError> {
        stored_state(&self.id, &self.status, self.revoked_at, self.revokes_at)
    }

    pub(crate) fn into_key(self) -> Result<ApiKey, StoreError> {
        let state = self.state()?;
        let usage_count = u64::try_from(self.usage_count).map_err(|_| {
            StoreError::Internal(format!("key {} has a negative usage count", self.id))
        })?;
        let hash = KeyHash::from_slice(&self.key_hash)
            .ok_or_else(|| StoreError::Internal(format!("key {} has a corrupt hash", self.id)))?;
        let revocation_reason = match self.revocation_reason.as_deref() {
            None => None,
            Some(r) => Some(RevocationReason::parse(r).ok_or_else(|| {
                StoreError::Internal(format!("key {} has an invalid revocation reason", self.id))
            })?),
        };
        let controls = stored_controls(
            &self.id,
            (
                self.expires_at,
                self.allowed_networks,
                self.monthly_credit_limit,
                self.scopes,
            ),
        )?;
        Ok(ApiKey {
            controls,
            id: KeyId::new(self.id),
            user_id: UserId::new(self.user_id),
            name: KeyName::from_stored(self.name),
            preview: KeyPreview::from_stored(self.preview),
            hash,
            state,
            created_at: Timestamp::from_millis(self.created_at),
            last_used_at: self.last_used_at.map(Timestamp::from_millis),
            usage_count,
            revocation_reason,
        })
    }
}

/// A key's state from its stored columns (status, revoked_at, revokes_at).
pub(crate) fn stored_state(
    id: &str,
    status: &str,
    revoked_at: Option<i64>,
    revokes_at: Option<i64>,
) -> Result<KeyState, StoreError> {
    match (status, revoked_at, revokes_at) {
        (ACTIVE, None, None) => Ok(KeyState::Active),
        (EXPIRING, None, Some(at)) => Ok(KeyState::Expiring {
            revokes_at: Timestamp::from_millis(at),
        }),
        (REVOKED, Some(at), None) => Ok(KeyState::Revoked {
            revoked_at: Timestamp::from_millis(at),
        }),
        _ => Err(StoreError::Internal(format!(
            "key {id} has an invalid state"
        ))),
    }
}

/// The canonical columns of a state: (status, revoked_at, revokes_at).
pub(crate) fn state_columns(state: KeyState) -> (&'static str, Option<i64>, Option<i64>) {
    match state {
        KeyState::Active => (ACTIVE, None, None),
        KeyState::Expiring { revokes_at } => (EXPIRING, None, Some(revokes_at.as_millis())),
        KeyState::Revoked { revoked_at } => (REVOKED, Some(revoked_at.as_millis()), None),
    }
}
