//! The audit trail as `GET /api/v1/keys/{id}/events` lists it.

use keys_domain::{EventDetail, PositionedEvent, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

/// One event: `type`, `actor`, `at`, `detail`; `cursor` is what `starting_after` takes to read
/// the events before this one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyEventObject {
    /// `created`, `rotated`, `revoked`, `revocation_scheduled`, `high_usage_alert` or `leak_reported`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: &'static str,
    /// `user`, `operator`, `github_secret_scanning` or `system`.
    pub actor: &'static str,
    #[serde(serialize_with = "super::wire::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Depends on `type`, e.g. the leak's `url` and `source`.
    #[schema(value_type = Object)]
    pub detail: Value,
    pub cursor: String,
}

impl KeyEventObject {
    /// `p`, its cursor sealed as `cursor`.
    #[must_use]
    pub fn of(p: &PositionedEvent, cursor: String) -> Self {
        Self {
            kind: p.event.kind().as_str(),
            actor: p.event.actor.as_str(),
            at: p.event.at,
            detail: detail(&p.event.detail),
            cursor,
        }
    }
}

/// The `detail` object of each kind (`docs/api.md`, "Audit trail").
fn detail(d: &EventDetail) -> Value {
    match d {
        EventDetail::Created { name, rotated_from } => json!({
            "name": name,
            "rotated_from": rotated_from.as_ref().map(keys_domain::KeyId::as_str),
        }),
        EventDetail::Rotated { replaced_by } => json!({ "replaced_by": replaced_by.as_str() }),
        EventDetail::RevocationScheduled { revokes_at } => {
            json!({ "revokes_at": revokes_at.to_rfc3339() })
        }
        EventDetail::Revoked { reason } => json!({ "reason": reason.as_str() }),
        EventDetail::HighUsageAlert { count, threshold } => {
            json!({ "count": count, "threshold": threshold })
        }
        EventDetail::LeakReported { url, source } => json!({ "url": url, "source": source }),
        // `{"changed": ["scopes"], "scopes": "credits:read"}`: what changed, and to what.
        EventDetail::Updated { changes } => {
            let mut object = serde_json::Map::new();
            let names: Vec<&str> = changes.iter().map(|(f, _)| f.as_str()).collect();
            object.insert("changed".into(), json!(names));
            for (field, value) in changes {
                object.insert(field.clone(), json!(value));
            }
            Value::Object(object)
        }
        EventDetail::ExpiryReminder {
            expires_at,
            days_before,
        } => json!({ "expires_at": expires_at.to_rfc3339(), "days_before": days_before }),
        EventDetail::NewNetwork {
            network,
            user_agent,
            networks,
        } => json!({ "network": network, "user_agent": user_agent, "networks_before": networks }),
        EventDetail::BrowserUse {
            network,
            user_agent,
            requests,
        } => json!({ "network": network, "user_agent": user_agent, "requests": requests }),
        EventDetail::UsageSpike { count, busiest } => {
            json!({ "count": count, "busiest_hour_before": busiest })
        }
    }
}
