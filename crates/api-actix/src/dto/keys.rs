//! Key bodies: create and rotate requests, and the key object.

use keys_domain::key_controls::{ControlsPatch, KeyControls};
use keys_domain::key_state::{GracePeriod, KeyStatus};
use keys_domain::use_cases::IssuedKey;
use keys_domain::{ApiKey, KeyName, RevocationReason, Timestamp};
use serde::{Deserialize, Serialize};

use super::key_controls::{ControlFields, ControlsView};
use crate::error::ApiError;

/// `POST /api/v1/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateKeyRequest {
    /// 1 to 100 characters after trimming, no control characters; unique among the user's keys that are not revoked.
    #[schema(value_type = String, required = true, min_length = 1, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$", example = "ci-bot")]
    name: Option<String>,
    #[serde(flatten)]
    controls: ControlFields,
}

impl CreateKeyRequest {
    /// The name and the controls, validated at `now`.
    ///
    /// # Errors
    /// `invalid_request` naming the field at fault.
    pub fn try_into_domain(self, now: Timestamp) -> Result<(KeyName, KeyControls), ApiError> {
        let name = parse_name(self.name)?;
        let controls = self
            .controls
            .into_patch(None, now)?
            .apply(&KeyControls::default());
        Ok((name, controls))
    }
}

/// `PATCH /api/v1/keys/{id}`: any subset of the fields; `null` removes a control.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateKeyRequest {
    /// A new name, as on creation.
    #[schema(value_type = Option<String>, min_length = 1, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$", example = "ci-bot")]
    name: Option<String>,
    #[serde(flatten)]
    controls: ControlFields,
}

impl UpdateKeyRequest {
    /// # Errors
    /// `invalid_request` naming the field at fault.
    pub fn try_into_domain(self, now: Timestamp) -> Result<ControlsPatch, ApiError> {
        let name = self.name.map(|n| parse_name(Some(n))).transpose()?;
        self.controls.into_patch(name, now)
    }
}

/// `POST /api/v1/keys/{id}/rotate`. `name` is required, as on creation: the new key is a new
/// credential and the name is how its owner tells it apart in the dashboard.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RotateKeyRequest {
    /// The new key's name: 1 to 100 characters after trimming, no control characters.
    #[schema(value_type = String, required = true, min_length = 1, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$", example = "ci-bot-2")]
    name: Option<String>,
    /// 0 (default): the old key is revoked at once; else it stays valid this long (at most 604800).
    #[serde(default, deserialize_with = "super::whole_number::optional")]
    #[schema(minimum = 0, maximum = 604_800)]
    grace_period_seconds: Option<i64>,
}

impl RotateKeyRequest {
    /// # Errors
    /// `invalid_request` naming `name` or `grace_period_seconds`.
    pub fn try_into_domain(self) -> Result<(KeyName, GracePeriod), ApiError> {
        let name = parse_name(self.name)?;
        let grace = GracePeriod::from_seconds(self.grace_period_seconds.unwrap_or(0))
            .map_err(|e| ApiError::invalid_field("grace_period_seconds", e.to_string()))?;
        Ok((name, grace))
    }
}

fn parse_name(name: Option<String>) -> Result<KeyName, ApiError> {
    let name = name.ok_or_else(|| ApiError::invalid_field("name", "name is required"))?;
    KeyName::parse(&name).map_err(|e| ApiError::invalid_field("name", e.to_string()))
}

/// The key object (`docs/api.md`); `key` only in the response that creates the key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyObject<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub preview: &'a str,
    #[serde(serialize_with = "super::wire::status")]
    #[schema(value_type = String, example = "active")]
    /// `active`, `expiring`, `revoked` or `expired`.
    pub status: KeyStatus,
    #[serde(serialize_with = "super::wire::timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T22:23:00.123Z")]
    pub created_at: Timestamp,
    #[serde(serialize_with = "super::wire::optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub last_used_at: Option<Timestamp>,
    pub usage_count: u64,
    #[serde(serialize_with = "super::wire::optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub revoked_at: Option<Timestamp>,
    #[serde(serialize_with = "super::wire::optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub revokes_at: Option<Timestamp>,
    /// `user`, `rotation`, `leaked` or `operator` once revoked; else `null`.
    #[schema(value_type = Option<String>, required = true)]
    pub revocation_reason: Option<&'static str>,
    #[serde(flatten)]
    pub controls: ControlsView,
    /// Credits charged with the key in the current UTC calendar month, counted while it has a
    /// `monthly_credit_limit` (only in the answers of `GET` and `PATCH /api/v1/keys/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spent_this_month: Option<u64>,
    /// The full key: only in the response that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
}

impl<'a> KeyObject<'a> {
    /// The key as of `now` (an expiring key past its `revokes_at` reads as revoked).
    #[must_use]
    pub fn of(key: &'a ApiKey, now: Timestamp) -> Self {
        Self {
            id: key.id.as_str(),
            name: key.name.as_str(),
            preview: key.preview.as_str(),
            status: key.status(now),
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            usage_count: key.usage_count,
            revoked_at: key.state.revoked_at(now),
            revokes_at: key.state.revokes_at(now),
            revocation_reason: key.revocation_reason_at(now).map(RevocationReason::as_str),
            controls: ControlsView::of(&key.controls),
            spent_this_month: None,
            key: None,
        }
    }

    /// A key just issued, with its secret: the one time it is shown.
    #[must_use]
    pub fn issued(issued: &'a IssuedKey, now: Timestamp) -> Self {
        Self {
            key: Some(issued.secret.expose()),
            ..Self::of(&issued.key, now)
        }
    }
}

/// `{"data": [...]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListOf<T> {
    pub data: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotate(json: &str) -> Result<(KeyName, GracePeriod), ApiError> {
        crate::json_body::parse::<RotateKeyRequest>(json.as_bytes())?.try_into_domain()
    }

    fn field(r: Result<(KeyName, GracePeriod), ApiError>) -> String {
        match r {
            Err(ApiError::InvalidRequest { field: Some(f), .. }) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rotation_requires_a_name_and_a_grace_within_a_week() {
        assert!(rotate(r#"{"name": "ci-2"}"#).is_ok());
        assert!(rotate(r#"{"name": "ci-2", "grace_period_seconds": 604800}"#).is_ok());
        assert!(rotate(r#"{"name": "ci-2", "grace_period_seconds": 300.0}"#).is_ok());
        assert_eq!(
            field(rotate(r#"{"name": "a", "grace_period_seconds": 0.5}"#)),
            "grace_period_seconds"
        );
        assert_eq!(field(rotate(r#"{"grace_period_seconds": 0}"#)), "name");
        assert_eq!(field(rotate(r#"{"name": "  "}"#)), "name");
        assert_eq!(
            field(rotate(r#"{"name": "a", "grace_period_seconds": 604801}"#)),
            "grace_period_seconds"
        );
        assert_eq!(
            field(rotate(r#"{"name": "a", "grace_period_seconds": -1}"#)),
            "grace_period_seconds"
        );
        assert_eq!(
            field(rotate(r#"{"name": "a", "grace_period_seconds": "10"}"#)),
            "grace_period_seconds"
        );
    }
}
