//! Sign-in by email link: the one-time token, its hash, its limits and the email that carries
//! it (docs/dashboard.md, "Sign-in links").

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::alert_email::OutgoingEmail;
use crate::base62;
use crate::email::Email;
use crate::random::RandomSource;

/// How long a link works after it was sent.
pub const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Links per address per [`LINK_RATE_WINDOW`]; more requests are answered alike and send nothing.
pub const LINKS_PER_WINDOW: u32 = 5;
/// The window [`LINKS_PER_WINDOW`] counts over.
pub const LINK_RATE_WINDOW: Duration = Duration::from_secs(3600);
/// How long a dashboard token obtained through a link lives.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Base62 characters of a token: 43 × log2(62) ≈ 256 bits from the OS CSPRNG.
pub const TOKEN_CHARS: usize = 43;
/// Longest token text worth hashing; anything longer is not one of ours.
pub const MAX_TOKEN_CHARS: usize = 128;

/// A one-time sign-in token. Its `Debug` hides it: it is a credential until used.
#[derive(Clone, PartialEq, Eq)]
pub struct SignInToken(String);

impl SignInToken {
    /// A fresh token from `random`.
    #[must_use]
    pub fn generate(random: &dyn RandomSource) -> Self {
        Self(base62::random_chars(random, TOKEN_CHARS))
    }

    /// The text that goes into the link.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps.
    #[must_use]
    pub fn hash(&self) -> SignInTokenHash {
        SignInTokenHash::of(&self.0)
    }
}

impl fmt::Debug for SignInToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignInToken(…)")
    }
}

/// SHA-256 of a token: the only form a store keeps. A 256-bit random token needs no salt or
/// slow hash: it cannot be guessed from its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInTokenHash([u8; 32]);

impl SignInTokenHash {
    /// SHA-256 of `token` as presented.
    #[must_use]
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// `{public_url}/app/sign-in#token=…`. In the fragment, so the token never reaches a server log
/// or a `Referer`: the page reads it and exchanges it with a `POST`.
#[must_use]
pub fn sign_in_url(public_url: &str, token: &SignInToken) -> String {
    format!(
        "{}/app/sign-in#token={}",
        public_url.trim_end_matches('/'),
        token.expose()
    )
}

/// The email that carries a link.
#[must_use]
pub fn sign_in_email(to: Email, url: &str) -> OutgoingEmail {
    let minutes = LINK_LIFETIME.as_secs() / 60;
    OutgoingEmail {
        to,
        subject: "Your JobTactics sign-in link".to_owned(),
        body: format!(
            "Hello,\n\n\
             Open this link to sign in to your JobTactics dashboard:\n\n\
             {url}\n\n\
             It works once, for {minutes} minutes. If you did not ask to sign in, ignore this\n\
             email: nobody can use the link without access to your mailbox.\n\n\
             -- JobTactics\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsRandom;

    #[test]
    fn tokens_are_long_random_and_hidden_from_debug() {
        let a = SignInToken::generate(&OsRandom);
        let b = SignInToken::generate(&OsRandom);
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_CHARS);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_eq!(a.hash(), SignInTokenHash::of(a.expose()));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn the_link_carries_the_token_in_the_fragment() {
        let t = SignInToken::generate(&OsRandom);
        let url = sign_in_url("https://x.example/", &t);
        assert_eq!(
            url,
            format!("https://x.example/app/sign-in#token={}", t.expose())
        );
        let email = sign_in_email(Email::parse("ada@example.com").unwrap(), &url);
        assert!(email.body.contains(&url));
        assert!(email.body.contains("15 minutes"));
    }
}
