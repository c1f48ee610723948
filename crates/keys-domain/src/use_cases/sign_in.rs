//! Sign-in by email link: request a link for an address, exchange a link's token for the user
//! it signs in (the HTTP layer then issues the dashboard token), and sweep old links.

use std::sync::Arc;

use crate::email::Email;
use crate::ids::{AlertId, SignInLinkId, UserId};
use crate::ports::{
    AccountStore, Clock, LinkEmail, NewSignInLink, SignInLinkStore, StoreError, UserRef,
};
use crate::random::RandomSource;
use crate::sign_in_link::{
    LINK_LIFETIME, LINK_RATE_WINDOW, LINKS_PER_WINDOW, MAX_TOKEN_CHARS, SignInToken,
    SignInTokenHash, sign_in_email, sign_in_url,
};

/// What a link request did. The client is told none of it (always 202): it is for logs and
/// tests only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRequestOutcome {
    /// A link was stored and its email queued.
    Queued,
    /// No user has this address; nothing was stored.
    UnknownAddress,
    /// The address already had [`LINKS_PER_WINDOW`] links within the window.
    TooMany,
}

/// The account a sign-in link signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub user_id: UserId,
    pub email: Email,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    #[error("the sign-in link is unknown, already used or expired")]
    InvalidLink,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The sign-in use cases.
#[derive(Clone)]
pub struct SignIn {
    pub accounts: Arc<dyn AccountStore>,
    pub links: Arc<dyn SignInLinkStore>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    /// `JT_PUBLIC_URL`: where the emailed link points.
    pub public_url: String,
}

impl SignIn {
    /// For a known address, stores a new link (its hash) and queues its email, within the
    /// per-address limit.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn request_link(&self, email: &Email) -> Result<LinkRequestOutcome, StoreError> {
        let Some(user) = self
            .accounts
            .find_user(&UserRef::Email(email.clone()))
            .await?
        else {
            return Ok(LinkRequestOutcome::UnknownAddress);
        };
        let now = self.clock.now();
        let token = SignInToken::generate(self.random.as_ref());
        let link = NewSignInLink {
            id: SignInLinkId::generate(self.random.as_ref()),
            user_id: user.id,
            token_hash: token.hash(),
            created_at: now,
            expires_at: now.plus(LINK_LIFETIME),
        };
        let email = LinkEmail {
            id: AlertId::generate(self.random.as_ref()),
            email: sign_in_email(user.email, &sign_in_url(&self.public_url, &token)),
        };
        let stored = self
            .links
            .issue(link, email, now.minus(LINK_RATE_WINDOW), LINKS_PER_WINDOW)
            .await?;
        Ok(if stored {
            LinkRequestOutcome::Queued
        } else {
            LinkRequestOutcome::TooMany
        })
    }

    /// Uses the link whose token is `token`, once: the account it signs in (its id and
    /// address, so that a page already signed in elsewhere can say which account it would
    /// switch to).
    ///
    /// # Errors
    /// `InvalidLink` (unknown, used, expired, not a token at all, or its user is gone), `Store`.
    pub async fn exchange(&self, token: &str) -> Result<SignedIn, ExchangeError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Err(ExchangeError::InvalidLink);
        }
        let user = self
            .links
            .consume(&SignInTokenHash::of(token), self.clock.now())
            .await?
            .ok_or(ExchangeError::InvalidLink)?;
        let account = self
            .accounts
            .find_user(&UserRef::Id(user))
            .await?
            .ok_or(ExchangeError::InvalidLink)?;
        Ok(SignedIn {
            user_id: account.id,
            email: account.email,
        })
    }

    /// Deletes links (and their queued emails) once they count for nothing: expired, and out
    /// of the rate window. How many links.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let horizon = LINK_RATE_WINDOW.max(LINK_LIFETIME);
        self.links
            .sweep_sign_in_links(self.clock.now().minus(horizon))
            .await
    }
}
