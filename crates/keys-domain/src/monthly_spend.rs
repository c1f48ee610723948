//! A key's monthly credit limit and what it spent in the current UTC calendar month.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::credits::Credits;
use crate::timestamp::Timestamp;

/// The most credits a key may spend in one UTC calendar month: 1 to 10^12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MonthlyCreditLimit(Credits);

/// The limit is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("monthly_credit_limit must be a whole number from 1 to 1000000000000")]
pub struct InvalidMonthlyLimit;

impl MonthlyCreditLimit {
    pub const MAX: u64 = 1_000_000_000_000;

    /// # Errors
    /// [`InvalidMonthlyLimit`] outside 1 to 10^12.
    pub fn new(n: u64) -> Result<Self, InvalidMonthlyLimit> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(Credits::new(n)))
        } else {
            Err(InvalidMonthlyLimit)
        }
    }

    /// As stored; `None` outside the range.
    #[must_use]
    pub fn from_stored(n: i64) -> Option<Self> {
        u64::try_from(n).ok().and_then(|n| Self::new(n).ok())
    }

    #[must_use]
    pub const fn credits(self) -> Credits {
        self.0
    }
}

/// The UTC calendar month an instant falls in, by its first millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpendMonth(Timestamp);

impl SpendMonth {
    /// The month `at` falls in.
    #[must_use]
    pub fn of(at: Timestamp) -> Self {
        let date = to_date(at);
        Self(start_of(date.year(), date.month()))
    }

    /// Its first millisecond: how it is stored.
    #[must_use]
    pub const fn start(self) -> Timestamp {
        self.0
    }

    /// The first millisecond of the next month: when the spend resets.
    #[must_use]
    pub fn resets_at(self) -> Timestamp {
        let date = to_date(self.0);
        match date.month() {
            Month::December => start_of(date.year() + 1, Month::January),
            m => start_of(date.year(), m.next()),
        }
    }
}

fn to_date(at: Timestamp) -> Date {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.as_millis()) * 1_000_000)
        .map_or(Date::MIN, OffsetDateTime::date)
}

fn start_of(year: i32, month: Month) -> Timestamp {
    let date = Date::from_calendar_date(year, month, 1).unwrap_or(Date::MIN);
    let at = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc();
    let millis = at.unix_timestamp_nanos() / 1_000_000;
    Timestamp::from_millis(i64::try_from(millis).unwrap_or(i64::MIN))
}

/// Why a charge was refused by its key's monthly limit: the contract's `limit`, `spent` and
/// `resets_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimitReached {
    pub limit: Credits,
    /// Spent this month before the refused charge.
    pub spent: Credits,
    pub resets_at: Timestamp,
}

/// The key's spend after `cost`, or why that would pass its `limit`.
///
/// # Errors
/// [`KeyLimitReached`] when `spent + cost` is over `limit`.
pub fn spend(
    limit: MonthlyCreditLimit,
    month: SpendMonth,
    spent: Credits,
    cost: Credits,
) -> Result<Credits, KeyLimitReached> {
    match spent.checked_add(cost) {
        Some(after) if after <= limit.credits() => Ok(after),
        _ => Err(KeyLimitReached {
            limit: limit.credits(),
            spent,
            resets_at: month.resets_at(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_and_reset_on_utc_calendar_boundaries() {
        // 2026-12-06T12:00:00Z
        let at = Timestamp::from_millis(1_796_990_400_000);
        let month = SpendMonth::of(at);
        assert_eq!(month.start().to_rfc3339(), "2026-12-01T00:00:00.000Z");
        assert_eq!(month.resets_at().to_rfc3339(), "2027-01-01T00:00:00.000Z");
        assert_eq!(SpendMonth::of(month.resets_at()).start(), month.resets_at());
        let last_ms = Timestamp::from_millis(month.resets_at().as_millis() - 1);
        assert_eq!(SpendMonth::of(last_ms), month);
        let feb = SpendMonth::of(Timestamp::from_millis(1_803_000_000_000));
        assert_eq!(feb.start().to_rfc3339(), "2027-02-01T00:00:00.000Z");
        assert_eq!(feb.resets_at().to_rfc3339(), "2027-03-01T00:00:00.000Z");
    }

    #[test]
    fn spending_up_to_the_limit_is_allowed_and_past_it_refused() {
        let limit = MonthlyCreditLimit::new(50).unwrap();
        let month = SpendMonth::of(Timestamp::from_millis(0));
        assert_eq!(
            spend(limit, month, Credits::new(49), Credits::new(1)),
            Ok(Credits::new(50))
        );
        let refused = spend(limit, month, Credits::new(50), Credits::new(1)).unwrap_err();
        assert_eq!(
            (refused.limit, refused.spent),
            (Credits::new(50), Credits::new(50))
        );
        assert_eq!(refused.resets_at, month.resets_at());
        assert!(MonthlyCreditLimit::new(0).is_err());
        assert!(MonthlyCreditLimit::new(MonthlyCreditLimit::MAX + 1).is_err());
    }
}
