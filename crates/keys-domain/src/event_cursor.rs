//! A position in a key's audit trail: what the `cursor` of each event stands for. Its wire form
//! (sealed, so that it reveals nothing) belongs to the HTTP layer.

/// Where an event sits in the trail (the store's ever-increasing sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventCursor(i64);

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn above_the_newest_is_the_newest() {
        assert_eq!(EventCursor::NEWEST.above(), EventCursor::NEWEST);
        assert_eq!(
            EventCursor::from_stored(41).above(),
            EventCursor::from_stored(42)
        );
    }
}
