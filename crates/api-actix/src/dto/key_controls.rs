//! The key controls on the wire: the optional fields of `POST /api/v1/keys` and
//! `PATCH /api/v1/keys/{id}` (docs/api.md, "Key controls"), and how the key object shows them.

use keys_domain::allowed_networks::AllowedNetworks;
use keys_domain::key_controls::{ControlsPatch, KeyControls, expiry};
use keys_domain::monthly_spend::{InvalidMonthlyLimit, MonthlyCreditLimit};
use keys_domain::scope::{Scope, Scopes};
use keys_domain::{KeyName, Timestamp};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::ApiError;

/// A field that may be absent (keep), `null` (remove) or a value (set).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The four controls, each optional; `null` removes one.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ControlFields {
    /// RFC 3339, 60 seconds to 366 days ahead; after it the key is refused with `expired_api_key`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime, example = "2027-03-31T00:00:00Z")]
    expires_at: Option<Option<Value>>,
    /// Up to 20 CIDRs (IPv4 or IPv6); a request from elsewhere is refused with `network_not_allowed`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<Cidr>>, min_items = 1, max_items = 20, example = json!(["203.0.113.0/24"]))]
    allowed_networks: Option<Option<Value>>,
    /// 1 to 10^12 credits per UTC calendar month; a charge past it is 402 `key_credit_limit_reached`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1_000_000_000_000_u64)]
    monthly_credit_limit: Option<Option<Value>>,
    /// Any of `credits:read`, `documents:read`, `documents:write`, `templates:purchase`; all four when absent or null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<ScopeName>>, example = json!(["documents:write"]))]
    scopes: Option<Option<Value>>,
}

/// A network of `allowed_networks`, as the document states it: an IPv4 or IPv6 address with
/// an optional prefix length (a bare address is that address alone). The pattern leaves out
/// IPv6 written with an embedded IPv4 address, which the service also reads.
#[derive(utoipa::ToSchema)]
#[schema(
    value_type = String,
    pattern = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}(/(3[0-2]|[12]?[0-9]))?|(([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|([0-9A-Fa-f]{1,4}:){1,7}:|([0-9A-Fa-f]{1,4}:){1,6}(:[0-9A-Fa-f]{1,4}){1,1}|([0-9A-Fa-f]{1,4}:){1,5}(:[0-9A-Fa-f]{1,4}){1,2}|([0-9A-Fa-f]{1,4}:){1,4}(:[0-9A-Fa-f]{1,4}){1,3}|([0-9A-Fa-f]{1,4}:){1,3}(:[0-9A-Fa-f]{1,4}){1,4}|([0-9A-Fa-f]{1,4}:){1,2}(:[0-9A-Fa-f]{1,4}){1,5}|[0-9A-Fa-f]{1,4}:(:[0-9A-Fa-f]{1,4}){1,6}|:((:[0-9A-Fa-f]{1,4}){1,7}|:))(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$",
    example = "203.0.113.0/24"
)]
#[allow(dead_code)] // only its schema is used
struct Cidr(String);

/// A scope, as the document names it (the request reads plain strings, to name a wrong one).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used
enum ScopeName {
    #[schema(rename = "credits:read")]
    CreditsRead,
    #[schema(rename = "documents:read")]
    DocumentsRead,
    #[schema(rename = "documents:write")]
    DocumentsWrite,
    #[schema(rename = "templates:purchase")]
    TemplatesPurchase,
}

// The fields are read as JSON values and typed here: inside a flattened struct serde loses the
// path of a type error, and every 400 must name its field.

fn strings<'a>(value: &'a Value, field: &'static str) -> Result<Vec<&'a str>, ApiError> {
    let wrong = || ApiError::invalid_field(field, format!("{field} must be a list of strings"));
    value
        .as_array()
        .ok_or_else(wrong)?
        .iter()
        .map(|v| v.as_str().ok_or_else(wrong))
        .collect()
}

impl ControlFields {
    /// The change these fields ask for, validated at `now`.
    ///
    /// # Errors
    /// `invalid_request` naming the field at fault.
    pub fn into_patch(
        self,
        name: Option<KeyName>,
        now: Timestamp,
    ) -> Result<ControlsPatch, ApiError> {
        let expires_at = self
            .expires_at
            .map(|v| v.map(|value| parse_expiry(&value, now)).transpose())
            .transpose()?;
        let allowed_networks = self
            .allowed_networks
            .map(|v| {
                v.map(|value| {
                    AllowedNetworks::parse(strings(&value, "allowed_networks")?)
                        .map_err(|e| ApiError::invalid_field("allowed_networks", e.to_string()))
                })
                .transpose()
            })
            .transpose()?;
        let monthly_credit_limit = self
            .monthly_credit_limit
            .map(|v| {
                v.map(|value| {
                    super::whole_number::whole_number(&value)
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or(InvalidMonthlyLimit)
                        .and_then(MonthlyCreditLimit::new)
                        .map_err(|e| ApiError::invalid_field("monthly_credit_limit", e.to_string()))
                })
                .transpose()
            })
            .transpose()?;
        let scopes = self
            .scopes
            .map(|v| match v {
                None => Ok(Scopes::ALL),
                Some(value) => Scopes::parse(strings(&value, "scopes")?)
                    .map_err(|e| ApiError::invalid_field("scopes", e.to_string())),
            })
            .transpose()?;
        Ok(ControlsPatch {
            name,
            expires_at,
            allowed_networks,
            monthly_credit_limit,
            scopes,
        })
    }
}

fn parse_expiry(value: &Value, now: Timestamp) -> Result<Timestamp, ApiError> {
    let at = value
        .as_str()
        .and_then(Timestamp::parse_rfc3339)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "expires_at",
                "expires_at must be an RFC 3339 time such as 2027-03-31T00:00:00Z",
            )
        })?;
    expiry(at, now).map_err(|e| ApiError::invalid_field("expires_at", e.to_string()))
}

/// The key object's view of the controls.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ControlsView {
    // Always present (`null` when unset), so `required` (utoipa makes an `Option` optional).
    #[serde(serialize_with = "super::wire::optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub expires_at: Option<Timestamp>,
    #[schema(required = true)]
    pub allowed_networks: Option<Vec<String>>,
    #[schema(required = true)]
    pub monthly_credit_limit: Option<u64>,
    /// The key's scopes (all four unless narrowed).
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<&'static str>,
}

impl ControlsView {
    #[must_use]
    pub fn of(controls: &KeyControls) -> Self {
        Self {
            expires_at: controls.expires_at,
            allowed_networks: controls
                .allowed_networks
                .as_ref()
                .map(AllowedNetworks::to_strings),
            monthly_credit_limit: controls.monthly_credit_limit.map(|l| l.credits().get()),
            scopes: controls.scopes.iter().map(Scope::as_str).collect(),
        }
    }
}
