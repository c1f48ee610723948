//! `SignIn`: links only for known addresses, only the token's hash stored, the link in the
//! email, the per-address limit passed to the store, exchange once.

use std::sync::{Arc, Mutex};

use futures_executor::block_on;
use keys_domain::ports::{MockAccountStore, MockSignInLinkStore, StoreError, User};
use keys_domain::sign_in_link::{LINK_LIFETIME, LINKS_PER_WINDOW, SignInTokenHash};
use keys_domain::use_cases::{ExchangeError, LinkRequestOutcome, SignIn, SignedIn};
use keys_domain::{Credits, UserId};

use crate::support::{SeqRandom, T0, clock_at, email, secs, user};

fn sign_in(accounts: MockAccountStore, links: MockSignInLinkStore) -> SignIn {
    SignIn {
        accounts: Arc::new(accounts),
        links: Arc::new(links),
        clock: Arc::new(clock_at(T0)),
        random: Arc::new(SeqRandom::new(7)),
        public_url: "https://dash.example".to_owned(),
    }
}

fn known_user() -> MockAccountStore {
    let mut accounts = MockAccountStore::new();
    accounts.expect_find_user().returning(|_| {
        Ok(Some(User {
            id: user(),
            email: email(),
            balance: Credits::ZERO,
            created_at: T0,
        }))
    });
    accounts
}

#[test]
fn an_unknown_address_stores_nothing() {
    let mut accounts = MockAccountStore::new();
    accounts.expect_find_user().returning(|_| Ok(None));
    let mut links = MockSignInLinkStore::new();
    links.expect_issue().never();
    assert_eq!(
        block_on(sign_in(accounts, links).request_link(&email())),
        Ok(LinkRequestOutcome::UnknownAddress)
    );
}

#[test]
fn a_known_address_gets_a_hashed_link_and_an_email_carrying_the_token() {
    let seen = Arc::new(Mutex::new(None));
    let keep = seen.clone();
    let mut links = MockSignInLinkStore::new();
    links
        .expect_issue()
        .withf(|_, _, window_start, max| {
            *window_start == T0.minus(secs(3600)) && *max == LINKS_PER_WINDOW
        })
        .returning(move |link, email, _, _| {
            *keep.lock().unwrap() = Some((link, email));
            Ok(true)
        });
    assert_eq!(
        block_on(sign_in(known_user(), links).request_link(&email())),
        Ok(LinkRequestOutcome::Queued)
    );
    let (link, mail) = seen.lock().unwrap().take().unwrap();
    assert_eq!(link.user_id, user());
    assert_eq!(link.created_at, T0);
    assert_eq!(link.expires_at, T0.plus(LINK_LIFETIME));
    assert_eq!(mail.email.to, email());
    let prefix = "https://dash.example/app/sign-in#token=";
    let at = mail.email.body.find(prefix).unwrap() + prefix.len();
    let token: String = mail.email.body[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    assert!(
        token.len() >= 22,
        "at least 128 bits: {} characters",
        token.len()
    );
    assert_eq!(
        link.token_hash,
        SignInTokenHash::of(&token),
        "only the hash is stored"
    );
}

#[test]
fn over_the_limit_nothing_is_sent() {
    let mut links = MockSignInLinkStore::new();
    links.expect_issue().returning(|_, _, _, _| Ok(false));
    assert_eq!(
        block_on(sign_in(known_user(), links).request_link(&email())),
        Ok(LinkRequestOutcome::TooMany)
    );
}

#[test]
fn a_link_whose_user_is_gone_signs_nobody_in() {
    let mut links = MockSignInLinkStore::new();
    links
        .expect_consume()
        .returning(|_, _| Ok(Some(UserId::new("usr_gone"))));
    let mut accounts = MockAccountStore::new();
    accounts.expect_find_user().returning(|_| Ok(None));
    assert_eq!(
        block_on(sign_in(accounts, links).exchange("good")),
        Err(ExchangeError::InvalidLink)
    );
}

#[test]
fn exchange_hashes_the_token_and_refuses_unknown_used_or_junk_tokens() {
    let mut links = MockSignInLinkStore::new();
    links
        .expect_consume()
        .withf(|hash, now| *hash == SignInTokenHash::of("good") && *now == T0)
        .returning(|_, _| Ok(Some(UserId::new("usr_ada"))));
    links
        .expect_consume()
        .withf(|hash, _| *hash == SignInTokenHash::of("down"))
        .returning(|_, _| Err(StoreError::Unavailable("down".into())));
    links.expect_consume().returning(|_, _| Ok(None));
    let s = sign_in(known_user(), links);
    assert_eq!(
        block_on(s.exchange("good")),
        Ok(SignedIn {
            user_id: user(),
            email: email()
        })
    );
    assert_eq!(
        block_on(s.exchange("used")),
        Err(ExchangeError::InvalidLink)
    );
    assert_eq!(block_on(s.exchange("")), Err(ExchangeError::InvalidLink));
    assert_eq!(
        block_on(s.exchange(&"x".repeat(500))),
        Err(ExchangeError::InvalidLink)
    );
    assert!(matches!(
        block_on(s.exchange("down")),
        Err(ExchangeError::Store(_))
    ));
}
