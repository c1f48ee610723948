//! A position in a key's audit trail, handed to clients as the opaque `cursor` of each event.

/// Where an event sits in the trail (the store's ever-increasing sequence number). Clients get
/// it as text and give it back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventCursor(i64);

/// The text is not a cursor this service hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("starting_after is not an event cursor")]
pub struct InvalidEventCursor;

impl EventCursor {
    /// The largest cursor handed out: reading after it starts at the newest event.
    pub const NEWEST: Self = Self(999_999_999_999_999_999);

    /// From the stored sequence number.
    #[must_use]
    pub const fn from_stored(seq: i64) -> Self {
        Self(seq)
    }

    #[must_use]
    pub const fn as_stored(self) -> i64 {
        self.0
    }

    /// The position just after `self` in the newest-first order's opposite direction: a cursor
    /// that reads from `self` inclusive. Used for an event that is not stored (see
    /// `KeyAuditTrail`), so that the page after it starts with the newest stored one.
    #[must_use]
    pub const fn above(self) -> Self {
        if self.0 >= Self::NEWEST.0 {
            Self::NEWEST
        } else {
            Self(self.0 + 1)
        }
    }

    /// Reads the text form (`ev_` and 1 to 18 decimal digits, positive).
    ///
    /// # Errors
    /// [`InvalidEventCursor`] for anything else.
    pub fn parse(text: &str) -> Result<Self, InvalidEventCursor> {
        let digits = text.strip_prefix("ev_").ok_or(InvalidEventCursor)?;
        let well_formed =
            (1..=18).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        match digits.parse::<i64>() {
            Ok(seq) if well_formed && seq > 0 => Ok(Self(seq)),
            _ => Err(InvalidEventCursor),
        }
    }
}

impl std::fmt::Display for EventCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ev_{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = EventCursor::from_stored(42);
        assert_eq!(c.to_string(), "ev_42");
        assert_eq!(EventCursor::parse(&c.to_string()), Ok(c));
        let newest = EventCursor::NEWEST.to_string();
        assert_eq!(EventCursor::parse(&newest), Ok(EventCursor::NEWEST));
        assert_eq!(EventCursor::NEWEST.above(), EventCursor::NEWEST);
        for junk in [
            "",
            "42",
            "ev_",
            "ev_0",
            "ev_-1",
            "ev_1a",
            "ev_9999999999999999999",
        ] {
            assert_eq!(
                EventCursor::parse(junk),
                Err(InvalidEventCursor),
                "{junk:?}"
            );
        }
    }
}
