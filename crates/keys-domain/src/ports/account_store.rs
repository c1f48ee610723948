use async_trait::async_trait;

use super::StoreError;
use crate::credits::{Credits, GrantAmount, LedgerEntry};
use crate::email::Email;
use crate::ids::UserId;
use crate::ledger_cursor::{LedgerCursor, PositionedEntry};
use crate::page::{Page, PageRequest};
use crate::timestamp::Timestamp;

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub balance: Credits,
    pub created_at: Timestamp,
}

/// How the CLI names a user: an id or an email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(UserId),
    Email(Email),
}

/// Why a user could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateUserError {
    #[error("a user with this email already exists")]
    EmailTaken,
    /// The initial credits exceed [`Credits::MAX_BALANCE`]; nothing was created.
    #[error("the initial credits exceed the balance limit")]
    BalanceLimit,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a grant was not applied. Nothing was written in any case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantStoreError {
    #[error("no such user")]
    UnknownUser,
    /// The grant would take the balance above [`Credits::MAX_BALANCE`].
    #[error("the grant would take the balance above the limit")]
    BalanceLimit { balance: Credits },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Users, balances and the credit ledger. Every balance change writes one ledger entry in the
/// same transaction, so the balance always equals the sum of the user's ledger.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates a user; a positive `initial_credits` is written as a `grant` ledger entry. The
    /// returned user's balance is the one stored.
    ///
    /// # Errors
    /// `EmailTaken`, `BalanceLimit` (above [`Credits::MAX_BALANCE`]), `Store(Unavailable)`.
    async fn create_user(
        &self,
        id: UserId,
        email: Email,
        initial_credits: Credits,
        now: Timestamp,
    ) -> Result<User, CreateUserError>;

    /// The user named by id or email; `None` when there is none.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn find_user(&self, user: &UserRef) -> Result<Option<User>, StoreError>;

    /// The user's balance; `None` for an unknown user.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn balance(&self, user: &UserId) -> Result<Option<Credits>, StoreError>;

    /// Adds `amount` with a `grant` ledger entry, in one transaction, unless the balance would
    /// exceed [`Credits::MAX_BALANCE`] (checked atomically with the increment); the new balance.
    ///
    /// # Errors
    /// `UnknownUser`, `BalanceLimit` (nothing written), `Store(Unavailable)`.
    async fn grant(
        &self,
        user: &UserId,
        amount: GrantAmount,
        now: Timestamp,
    ) -> Result<Credits, GrantStoreError>;

    /// The user's ledger, oldest first (audits and tests).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn ledger(&self, user: &UserId) -> Result<Vec<LedgerEntry>, StoreError>;

    /// One page of the user's ledger, newest first, reading at most `page.limit + 1` entries:
    /// those before `page.after` when set. An unknown user has an empty ledger.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn ledger_page(
        &self,
        user: &UserId,
        page: PageRequest<LedgerCursor>,
    ) -> Result<Page<PositionedEntry>, StoreError>;
}
