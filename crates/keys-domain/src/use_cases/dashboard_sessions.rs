//! Dashboard sessions: how long a dashboard token may live, and sign-out, which refuses every
//! token of the user issued until then: at once on the instance that served it (its cut-off
//! cache evicts on the write), and on the others when the announcement arrives, or at the
//! latest when their cached cut-off expires (as a key revocation).
//!
//! Token issue times have one-second precision (JWT `iat`), so a token issued in the same
//! second as a sign-out is refused too: a refused fresh token costs a retry, an accepted stale
//! one would defeat the sign-out.

use std::sync::Arc;
use std::time::Duration;

use crate::ids::UserId;
use crate::ports::{Clock, RevocationNotifier, StoreError, TokenCutoffStore};
use crate::timestamp::Timestamp;

/// The longest a dashboard token may live (docs/api.md).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// How far in the future an issue time may lie (clock skew between issuers).
pub const ISSUED_AT_SKEW: Duration = Duration::from_secs(60);

/// Why a token's lifetime is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenLifetimeError {
    #[error("the token lives longer than 24 hours")]
    TooLong,
    #[error("the token claims to be issued in the future")]
    IssuedInFuture,
}

/// A token expiring at `expires_at` may live at most [`MAX_TOKEN_LIFETIME`] after its issue
/// time, and (so a forged future `iat` cannot stretch it) after `now` as well.
///
/// # Errors
/// `TooLong`, `IssuedInFuture`.
pub fn check_token_lifetime(
    issued_at: Option<Timestamp>,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<(), TokenLifetimeError> {
    if let Some(iat) = issued_at {
        if iat > now.plus(ISSUED_AT_SKEW) {
            return Err(TokenLifetimeError::IssuedInFuture);
        }
        if expires_at > iat.plus(MAX_TOKEN_LIFETIME) {
            return Err(TokenLifetimeError::TooLong);
        }
    }
    if expires_at > now.plus(MAX_TOKEN_LIFETIME) {
        return Err(TokenLifetimeError::TooLong);
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionCheckError {
    #[error("the token was issued before the user's last sign-out")]
    SignedOut,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignOutError {
    #[error("no such user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sign-out and the per-user token cut-off.
#[derive(Clone)]
pub struct DashboardSessions {
    pub cutoffs: Arc<dyn TokenCutoffStore>,
    pub notifier: Arc<dyn RevocationNotifier>,
    pub clock: Arc<dyn Clock>,
}

impl DashboardSessions {
    /// Whether a token of `user` issued at `issued_at` (`None`: the token has no `iat`) is
    /// still honoured. A token without an issue time cannot be placed before or after a
    /// sign-out, so once the user has signed out it is refused.
    ///
    /// # Errors
    /// `SignedOut`, `Store`.
    pub async fn check(
        &self,
        user: &UserId,
        issued_at: Option<Timestamp>,
    ) -> Result<(), SessionCheckError> {
        let Some(cutoff) = self.cutoffs.tokens_cutoff(user).await? else {
            return Ok(());
        };
        match issued_at {
            Some(iat) if whole_seconds(iat) > whole_seconds(cutoff) => Ok(()),
            _ => Err(SessionCheckError::SignedOut),
        }
    }

    /// Refuses every token of `user` issued until now.
    ///
    /// # Errors
    /// `UnknownUser`, `Store`.
    pub async fn sign_out(&self, user: &UserId) -> Result<(), SignOutError> {
        if !self
            .cutoffs
            .raise_tokens_cutoff(user, self.clock.now())
            .await?
        {
            return Err(SignOutError::UnknownUser);
        }
        self.notifier.signed_out(user).await;
        Ok(())
    }
}

fn whole_seconds(t: Timestamp) -> i64 {
    t.as_millis().div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    #[test]
    fn lifetimes_over_24_hours_are_refused() {
        let day = MAX_TOKEN_LIFETIME;
        assert_eq!(check_token_lifetime(Some(NOW), NOW.plus(day), NOW), Ok(()));
        assert_eq!(check_token_lifetime(None, NOW.plus(day), NOW), Ok(()));
        let too_long = NOW.plus(day).plus(Duration::from_secs(1));
        assert_eq!(
            check_token_lifetime(Some(NOW), too_long, NOW),
            Err(TokenLifetimeError::TooLong)
        );
        assert_eq!(
            check_token_lifetime(None, too_long, NOW),
            Err(TokenLifetimeError::TooLong)
        );
        assert_eq!(
            check_token_lifetime(None, Timestamp::from_millis(i64::MAX), NOW),
            Err(TokenLifetimeError::TooLong)
        );
        // A forged future `iat` cannot stretch the lifetime.
        let later = NOW.plus(Duration::from_secs(3600));
        assert_eq!(
            check_token_lifetime(Some(later), later.plus(day), NOW),
            Err(TokenLifetimeError::IssuedInFuture)
        );
        assert_eq!(
            check_token_lifetime(Some(NOW.plus(ISSUED_AT_SKEW)), NOW.plus(day), NOW),
            Ok(())
        );
    }
}
