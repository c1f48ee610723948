//! Instants as milliseconds since the Unix epoch, UTC.
//!
//! Stored as a plain 64-bit integer in every backend so one schema serves PostgreSQL and SQLite.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// RFC 3339 in UTC with exactly three fractional digits, so that every time in a body has the
/// same shape (the well-known `Rfc3339` drops trailing zeros: `…:40.77Z` beside `…:08.424Z`).
const MILLIS_UTC: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// An instant, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From milliseconds since the epoch.
    #[must_use]
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    #[must_use]
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant plus `d` (saturating).
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// This instant minus `d` (saturating).
    #[must_use]
    pub fn minus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(ms))
    }

    /// From RFC 3339 text with any offset (`2027-03-31T00:00:00Z`, `…+02:00`), to the
    /// millisecond; `None` when it does not parse.
    #[must_use]
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let at =
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
        i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self)
    }

    /// RFC 3339 in UTC, always with milliseconds, e.g. `2026-11-27T22:23:00.120Z`.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(MILLIS_UTC).ok())
            .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_with_any_offset() {
        let at = Timestamp::parse_rfc3339("2026-11-27T23:23:00.120+01:00").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-27T22:23:00.120Z");
        assert_eq!(Timestamp::parse_rfc3339(&at.to_rfc3339()), Some(at));
        assert_eq!(Timestamp::parse_rfc3339("2026-11-27"), None);
        assert_eq!(Timestamp::parse_rfc3339("tomorrow"), None);
    }

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(
            Timestamp::from_millis(0).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_795_818_180_120).to_rfc3339(),
            "2026-11-27T22:23:00.120Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_795_818_180_123).to_rfc3339(),
            "2026-11-27T22:23:00.123Z"
        );
    }
}
