//! `GET /api/v1/keys/{id}/usage`: hourly counts for the chart.

use keys_domain::Timestamp;
use keys_domain::hourly_usage::HourCount;
use serde::Serialize;

/// One hour: its start, and the requests the key authenticated in it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Hour {
    #[serde(serialize_with = "super::wire::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    pub count: u64,
}

/// The last 24 whole hours and the current one, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyUsageBody {
    pub hours: Vec<Hour>,
}

impl KeyUsageBody {
    #[must_use]
    pub fn of(hours: &[HourCount]) -> Self {
        Self {
            hours: hours
                .iter()
                .map(|h| Hour {
                    start: h.start,
                    count: h.count,
                })
                .collect(),
        }
    }
}
