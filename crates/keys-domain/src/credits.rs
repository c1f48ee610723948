//! Credit rules: integer amounts, a balance that never goes negative, and a ledger entry for
//! every change, so the balance always equals the sum of the ledger.

use crate::ids::UserId;
use crate::timestamp::Timestamp;

/// An amount of credits (never negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Credits(u64);

impl Credits {
    pub const ZERO: Self = Self(0);

    #[must_use]
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// As a signed ledger amount (saturating; balances never reach 2^63).
    #[must_use]
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// From a stored signed value; negative values (which the stores' checks forbid) read as 0.
    #[must_use]
    pub fn from_stored(n: i64) -> Self {
        Self(u64::try_from(n).unwrap_or(0))
    }
}

impl std::fmt::Display for Credits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a debit costs.
pub mod prices {
    use super::Credits;

    /// Rendering one document.
    pub const DOCUMENT_RENDER: Credits = Credits::new(1);
}

/// The balance does not cover the cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this operation costs {required} credits but the balance is {balance}")]
pub struct InsufficientCredits {
    pub required: Credits,
    pub balance: Credits,
}

/// Why a ledger entry was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerReason {
    /// Credits granted by an operator or at sign-up.
    Grant,
    /// A premium template was bought.
    TemplatePurchase(String),
    /// A document was rendered.
    DocumentRender(String),
}

impl LedgerReason {
    /// The stored form, e.g. `template_purchase:executive`.
    #[must_use]
    pub fn to_stored(&self) -> String {
        match self {
            Self::Grant => "grant".to_owned(),
            Self::TemplatePurchase(t) => format!("template_purchase:{t}"),
            Self::DocumentRender(d) => format!("document_render:{d}"),
        }
    }
}

/// One change to a balance. `delta` is negative for debits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub user_id: UserId,
    pub delta: i64,
    pub balance_after: Credits,
    pub reason: String,
    pub created_at: Timestamp,
}

/// Checks a debit of `cost` against `balance`: the new balance, or why not.
///
/// # Errors
/// [`InsufficientCredits`] when `cost > balance`.
pub fn debit(balance: Credits, cost: Credits) -> Result<Credits, InsufficientCredits> {
    balance
        .0
        .checked_sub(cost.0)
        .map(Credits)
        .ok_or(InsufficientCredits {
            required: cost,
            balance,
        })
}

/// A credit grant must be positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the amount must be a positive whole number")]
pub struct InvalidGrant;

/// Validates a grant amount.
///
/// # Errors
/// [`InvalidGrant`] when `amount` is not positive.
pub fn grant_amount(amount: i64) -> Result<Credits, InvalidGrant> {
    if amount > 0 {
        Ok(Credits::from_stored(amount))
    } else {
        Err(InvalidGrant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debit_never_goes_negative() {
        assert_eq!(debit(Credits::new(5), Credits::new(5)), Ok(Credits::ZERO));
        assert_eq!(
            debit(Credits::new(4), Credits::new(5)),
            Err(InsufficientCredits {
                required: Credits::new(5),
                balance: Credits::new(4)
            })
        );
        assert_eq!(grant_amount(0), Err(InvalidGrant));
        assert_eq!(grant_amount(3), Ok(Credits::new(3)));
    }
}
