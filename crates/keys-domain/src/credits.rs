//! Credit rules: integer amounts, a balance that never goes negative, and a ledger entry for
//! every change, so the balance always equals the sum of the ledger.

use crate::ids::UserId;
use crate::timestamp::Timestamp;

/// An amount of credits (never negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Credits(u64);

impl Credits {
    pub const ZERO: Self = Self(0);

    /// The largest balance: 2^53 − 1, the largest integer that every JSON client (JavaScript's
    /// `Number` included) reads exactly.
    pub const MAX_BALANCE: Self = Self(9_007_199_254_740_991);

    #[must_use]
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + other` when the sum stays within [`Credits::MAX_BALANCE`].
    #[must_use]
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0
            .checked_add(other.0)
            .filter(|sum| *sum <= Self::MAX_BALANCE.0)
            .map(Self)
    }

    /// As a signed ledger amount (saturating; balances never exceed 2^53 − 1).
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

/// "1 credit", "50 credits".
#[must_use]
pub fn credits_phrase(n: Credits) -> String {
    if n.get() == 1 {
        "1 credit".to_owned()
    } else {
        format!("{n} credits")
    }
}

/// What a debit costs.
pub mod prices {
    use super::Credits;

    /// Rendering one document. Never zero: only a charge writes a ledger row, and a user's
    /// documents are listed through their renders' rows (`LedgerReason::DOCUMENT_RENDER_PREFIX`).
    pub const DOCUMENT_RENDER: Credits = Credits::new(1);
    const _: () = assert!(
        DOCUMENT_RENDER.get() > 0,
        "a free render would be missing from lists"
    );
}

/// The balance does not cover the cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this operation costs {} but the balance is {balance}", credits_phrase(*required))]
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
    /// How a [`LedgerReason::DocumentRender`]'s stored form begins; the document's id follows.
    /// Every render is charged, so a user's documents are their ledger rows with this prefix.
    pub const DOCUMENT_RENDER_PREFIX: &'static str = "document_render:";

    /// The stored form, e.g. `template_purchase:executive`.
    #[must_use]
    pub fn to_stored(&self) -> String {
        match self {
            Self::Grant => "grant".to_owned(),
            Self::TemplatePurchase(t) => format!("template_purchase:{t}"),
            Self::DocumentRender(d) => format!("{}{d}", Self::DOCUMENT_RENDER_PREFIX),
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

/// Why a grant amount was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidGrant {
    #[error("the amount must be a whole number")]
    NotANumber,
    #[error("the amount must be positive")]
    NotPositive,
    #[error("the amount must be at most 1000000000000 per grant")]
    TooLarge,
}

/// Credits granted at once: 1 to 10^12. Bounded so that no single grant can approach the
/// balance limit of 2^53 − 1 and every sum the stores compute stays far inside 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantAmount(Credits);

impl GrantAmount {
    /// The largest single grant.
    pub const MAX: u64 = 1_000_000_000_000;

    /// # Errors
    /// `NotPositive` for 0, `TooLarge` above [`GrantAmount::MAX`].
    pub fn new(amount: u64) -> Result<Self, InvalidGrant> {
        match amount {
            0 => Err(InvalidGrant::NotPositive),
            n if n > Self::MAX => Err(InvalidGrant::TooLarge),
            n => Ok(Self(Credits(n))),
        }
    }

    /// Reads a decimal amount as an operator types it (`-5` is "not positive", not a flag).
    ///
    /// # Errors
    /// [`InvalidGrant`] saying which rule failed.
    pub fn parse(text: &str) -> Result<Self, InvalidGrant> {
        Self::new(parse_amount(text)?)
    }

    #[must_use]
    pub const fn credits(self) -> Credits {
        self.0
    }
}

/// Reads a sign and decimal digits into a non-negative amount.
fn parse_amount(text: &str) -> Result<u64, InvalidGrant> {
    use std::num::IntErrorKind;
    match text.trim().parse::<i128>() {
        Ok(n) if n < 0 => Err(InvalidGrant::NotPositive),
        Ok(n) => u64::try_from(n).map_err(|_| InvalidGrant::TooLarge),
        Err(e) => match e.kind() {
            IntErrorKind::PosOverflow => Err(InvalidGrant::TooLarge),
            IntErrorKind::NegOverflow => Err(InvalidGrant::NotPositive),
            _ => Err(InvalidGrant::NotANumber),
        },
    }
}

/// A new account's starting credits: `0` (no grant), or a grant amount.
///
/// # Errors
/// As [`GrantAmount::parse`], except that 0 is accepted.
pub fn parse_initial_credits(text: &str) -> Result<Option<GrantAmount>, InvalidGrant> {
    match parse_amount(text)? {
        0 => Ok(None),
        n => GrantAmount::new(n).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_credit_is_singular() {
        let one = InsufficientCredits {
            required: Credits::new(1),
            balance: Credits::new(0),
        };
        assert_eq!(
            one.to_string(),
            "this operation costs 1 credit but the balance is 0"
        );
        let fifty = InsufficientCredits {
            required: Credits::new(50),
            balance: Credits::new(7),
        };
        assert_eq!(
            fifty.to_string(),
            "this operation costs 50 credits but the balance is 7"
        );
    }

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
    }

    #[test]
    fn grants_are_1_to_10_to_the_12() {
        let ok = |s: &str| GrantAmount::parse(s).map(|g| g.credits().get());
        assert_eq!(ok("3"), Ok(3));
        assert_eq!(ok(" 1000000000000 "), Ok(1_000_000_000_000));
        assert_eq!(ok("+7"), Ok(7));
        assert_eq!(ok("0"), Err(InvalidGrant::NotPositive));
        assert_eq!(ok("-5"), Err(InvalidGrant::NotPositive));
        assert_eq!(
            ok("-99999999999999999999999999999999999999999"),
            Err(InvalidGrant::NotPositive)
        );
        assert_eq!(ok("1000000000001"), Err(InvalidGrant::TooLarge));
        assert_eq!(ok("18446744073709551615"), Err(InvalidGrant::TooLarge));
        assert_eq!(
            ok("99999999999999999999999999999999999999999"),
            Err(InvalidGrant::TooLarge)
        );
        for junk in ["", "1.5", "1e3", "ten", "0x10", "--5"] {
            assert_eq!(ok(junk), Err(InvalidGrant::NotANumber), "{junk:?}");
        }
        assert_eq!(parse_initial_credits("0"), Ok(None));
        assert_eq!(parse_initial_credits("-5"), Err(InvalidGrant::NotPositive));
        assert_eq!(
            parse_initial_credits("12").map(|g| g.map(GrantAmount::credits)),
            Ok(Some(Credits::new(12)))
        );
    }

    #[test]
    fn a_balance_never_exceeds_2_pow_53_minus_1() {
        let max = Credits::MAX_BALANCE;
        assert_eq!(max.get(), (1_u64 << 53) - 1);
        assert_eq!(
            Credits::new(max.get() - 5).checked_add(Credits::new(5)),
            Some(max)
        );
        assert_eq!(max.checked_add(Credits::new(1)), None);
        assert_eq!(Credits::new(u64::MAX).checked_add(Credits::new(1)), None);
    }
}
