//! A position in a user's credit ledger, handed to clients as the opaque `cursor` of each
//! entry so that they can ask for the page after it.

use crate::credits::LedgerEntry;

/// Where an entry sits in the ledger (the store's ever-increasing sequence number). Clients get
/// it as text and give it back unchanged; they are told nothing about what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LedgerCursor(i64);

/// The text is not a cursor this service hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("starting_after is not a ledger cursor")]
pub struct InvalidLedgerCursor;

impl LedgerCursor {
    /// From the stored sequence number.
    #[must_use]
    pub const fn from_stored(seq: i64) -> Self {
        Self(seq)
    }

    #[must_use]
    pub const fn as_stored(self) -> i64 {
        self.0
    }

    /// Reads the text form of a cursor (plain decimal digits, at most 18 of them, positive).
    ///
    /// # Errors
    /// [`InvalidLedgerCursor`] for anything else.
    pub fn parse(text: &str) -> Result<Self, InvalidLedgerCursor> {
        let well_formed =
            (1..=18).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
        match text.parse::<i64>() {
            Ok(seq) if well_formed && seq > 0 => Ok(Self(seq)),
            _ => Err(InvalidLedgerCursor),
        }
    }
}

impl std::fmt::Display for LedgerCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A ledger entry with its position, as a page of the ledger lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionedEntry {
    pub cursor: LedgerCursor,
    pub entry: LedgerEntry,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = LedgerCursor::from_stored(42);
        assert_eq!(LedgerCursor::parse(&c.to_string()), Ok(c));
        for junk in [
            "",
            "0",
            "-1",
            "+1",
            " 1",
            "1a",
            "abc",
            "9999999999999999999",
            "1.0",
        ] {
            assert_eq!(
                LedgerCursor::parse(junk),
                Err(InvalidLedgerCursor),
                "{junk:?}"
            );
        }
    }
}
