//! A position in a user's credit ledger: what the `cursor` of each entry stands for, so that a
//! client can ask for the page after it. Its wire form (sealed, so that it reveals nothing)
//! belongs to the HTTP layer.

use crate::credits::LedgerEntry;

/// Where an entry sits in the ledger (the store's ever-increasing sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LedgerCursor(i64);

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
}

/// A ledger entry with its position, as a page of the ledger lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionedEntry {
    pub cursor: LedgerCursor,
    pub entry: LedgerEntry,
}
