//! Operator actions from the CLI: create users, grant credits, resolve a user reference.

use std::sync::Arc;

use crate::credits::{Credits, GrantAmount};
use crate::email::{Email, InvalidEmail};
use crate::ids::UserId;
use crate::ports::{
    AccountStore, Clock, CreateUserError, GrantStoreError, StoreError, User, UserRef,
};
use crate::random::RandomSource;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateUserUseCaseError {
    #[error(transparent)]
    InvalidEmail(#[from] InvalidEmail),
    #[error("a user with email {0} already exists")]
    EmailTaken(String),
    #[error(
        "the initial credits exceed the balance limit of {}",
        Credits::MAX_BALANCE
    )]
    BalanceLimit,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("no user matches `{0}`")]
    UnknownUser(String),
    #[error(
        "refused: the balance is {balance} and may not exceed {} (2^53 - 1); nothing was granted",
        Credits::MAX_BALANCE
    )]
    BalanceLimit { balance: Credits },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Account administration.
#[derive(Clone)]
pub struct UserService {
    pub accounts: Arc<dyn AccountStore>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
}

/// Reads `ID_OR_EMAIL`: anything with an `@` is an email, anything else an id.
#[must_use]
pub fn parse_user_ref(s: &str) -> UserRef {
    match Email::parse(s) {
        Ok(email) if s.contains('@') => UserRef::Email(email),
        _ => UserRef::Id(UserId::new(s.trim())),
    }
}

impl UserService {
    /// Creates a user with `credits` as a first grant (none when `None`). The returned balance
    /// is the stored one.
    ///
    /// # Errors
    /// `InvalidEmail`, `EmailTaken`, `Store`.
    pub async fn create(
        &self,
        email: &str,
        credits: Option<GrantAmount>,
    ) -> Result<User, CreateUserUseCaseError> {
        let email = Email::parse(email)?;
        let credits = credits.map_or(Credits::ZERO, GrantAmount::credits);
        let id = UserId::generate(self.random.as_ref());
        self.accounts
            .create_user(id, email.clone(), credits, self.clock.now())
            .await
            .map_err(|e| match e {
                CreateUserError::EmailTaken => {
                    CreateUserUseCaseError::EmailTaken(email.as_str().to_owned())
                }
                CreateUserError::BalanceLimit => CreateUserUseCaseError::BalanceLimit,
                CreateUserError::Store(s) => CreateUserUseCaseError::Store(s),
            })
    }

    /// The user named by `id_or_email`, if any.
    ///
    /// # Errors
    /// `Store`.
    pub async fn find(&self, id_or_email: &str) -> Result<Option<User>, StoreError> {
        self.accounts.find_user(&parse_user_ref(id_or_email)).await
    }

    /// Grants `amount` to the user; the new balance.
    ///
    /// # Errors
    /// `UnknownUser`, `BalanceLimit` (nothing granted), `Store`.
    pub async fn grant(
        &self,
        id_or_email: &str,
        amount: GrantAmount,
    ) -> Result<Credits, GrantError> {
        let unknown = || GrantError::UnknownUser(id_or_email.to_owned());
        let user = self.find(id_or_email).await?.ok_or_else(unknown)?;
        self.accounts
            .grant(&user.id, amount, self.clock.now())
            .await
            .map_err(|e| match e {
                GrantStoreError::UnknownUser => unknown(),
                GrantStoreError::BalanceLimit { balance } => GrantError::BalanceLimit { balance },
                GrantStoreError::Store(s) => GrantError::Store(s),
            })
    }
}
