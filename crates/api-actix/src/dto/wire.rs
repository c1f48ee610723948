//! How domain values are written in JSON: the domain has no serde, so the response bodies name
//! these with `#[serde(serialize_with = "…")]`.

use keys_domain::Timestamp;
use keys_domain::key_state::KeyStatus;
use serde::Serializer;

/// RFC 3339 in UTC, e.g. `2026-11-27T22:23:00.123Z`.
///
/// # Errors
/// The serializer's.
pub fn timestamp<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339())
}

/// [`timestamp`], or `null`.
///
/// # Errors
/// The serializer's.
pub fn optional_timestamp<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339()),
        None => s.serialize_none(),
    }
}

/// `active`, `expiring` or `revoked`.
///
/// # Errors
/// The serializer's.
pub fn status<S: Serializer>(status: &KeyStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}
