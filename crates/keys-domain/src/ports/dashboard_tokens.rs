use std::time::Duration;

use crate::ids::UserId;
use crate::timestamp::Timestamp;

/// Why a token was refused. Each message is safe to show the client: it never echoes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token must be signed with HS256")]
    WrongAlgorithm,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token must carry `sub` and `exp`")]
    MissingClaim,
    #[error("the token's `sub` is empty")]
    EmptySubject,
    #[error("the token is not a valid dashboard token")]
    Invalid,
    #[error("the token lives longer than 24 hours (`exp` - `iat`); issue a shorter one")]
    TooLong,
    #[error("the token's `iat` lies in the future")]
    IssuedInFuture,
    #[error("the token was issued before the user's last sign-out; sign in again")]
    SignedOut,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub user_id: UserId,
    /// `iat`, when the token has one.
    pub issued_at: Option<Timestamp>,
}

/// A token could not be signed (not expected with an HMAC key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the dashboard token could not be signed")]
pub struct SigningFailed;

/// Dashboard tokens: signed for a user (the CLI's `tokens issue`, the sign-in exchange) and
/// verified on every dashboard request. At most 24 hours of lifetime
/// ([`crate::use_cases::check_token_lifetime`]); the sign-out cut-off is not decided here (the
/// dashboard gate checks it against `issued_at`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait DashboardTokens: Send + Sync {
    /// A token for `user`, valid for `ttl` from `now`.
    ///
    /// # Errors
    /// [`SigningFailed`].
    fn issue(&self, user: &UserId, now: Timestamp, ttl: Duration) -> Result<String, SigningFailed>;

    /// The user a token names, and when it was issued.
    ///
    /// # Errors
    /// [`TokenError`]: anything but a valid, unexpired token with a non-empty subject that
    /// lives at most 24 hours.
    fn verify(&self, token: &str, now: Timestamp) -> Result<VerifiedToken, TokenError>;
}
