//! Ledger entries as `GET /api/v1/credits/ledger` lists them.

use keys_domain::{PositionedEntry, Timestamp};
use serde::Serialize;

/// One entry: `delta` is negative for debits; `cursor` is what `starting_after` takes to read
/// the entries before this one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerItemObject<'a> {
    pub delta: i64,
    pub balance_after: u64,
    pub reason: &'a str,
    #[serde(serialize_with = "super::wire::timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T22:23:00.123Z")]
    pub created_at: Timestamp,
    pub cursor: String,
}

impl<'a> LedgerItemObject<'a> {
    /// `p`, its cursor sealed as `cursor`.
    #[must_use]
    pub fn of(p: &'a PositionedEntry, cursor: String) -> Self {
        Self {
            delta: p.entry.delta,
            balance_after: p.entry.balance_after.get(),
            reason: &p.entry.reason,
            created_at: p.entry.created_at,
            cursor,
        }
    }
}
