//! `GET /api/v1/keys/{id}/usage`: hourly counts for the chart.

use keys_domain::Timestamp;
use keys_domain::hourly_usage::HourCount;
use serde::Serialize;

#[derive(Serialize)]
pub struct Hour {
    #[serde(serialize_with = "super::wire::timestamp")]
    pub start: Timestamp,
    pub count: u64,
}

#[derive(Serialize)]
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
