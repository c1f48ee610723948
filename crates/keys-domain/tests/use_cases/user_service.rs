//! `UserService` and `parse_user_ref`: the CLI's account administration.

use std::sync::Arc;

use keys_domain::email::InvalidEmail;
use keys_domain::ports::{
    CreateUserError, GrantStoreError, MockAccountStore, StoreError, User, UserRef,
};
use keys_domain::use_cases::{CreateUserUseCaseError, GrantError, UserService, parse_user_ref};
use keys_domain::{Credits, Email, GrantAmount, UserId};

use crate::support::{SeqRandom, T0, clock_at, email, user};

fn service(accounts: MockAccountStore) -> UserService {
    UserService {
        accounts: Arc::new(accounts),
        clock: Arc::new(clock_at(T0)),
        random: Arc::new(SeqRandom::new(13)),
    }
}

fn ada(balance: u64) -> User {
    User {
        id: user(),
        email: email(),
        balance: Credits::new(balance),
        created_at: T0,
    }
}

#[test]
fn create_refuses_an_invalid_email_without_touching_the_store() {
    let got = futures_executor::block_on(service(MockAccountStore::new()).create("ada", None));
    assert_eq!(
        got,
        Err(CreateUserUseCaseError::InvalidEmail(InvalidEmail(
            "ada".into()
        )))
    );
}

#[test]
fn create_stores_a_normalised_email_with_a_fresh_id() {
    let mut accounts = MockAccountStore::new();
    accounts
        .expect_create_user()
        .withf(|id, mail, credits, now| {
            id.as_str().starts_with("usr_")
                && id.as_str().len() == 24
                && *mail == email()
                && *credits == Credits::new(100)
                && *now == T0
        })
        .times(1)
        .returning(|id, mail, credits, now| {
            Ok(User {
                id,
                email: mail,
                balance: credits,
                created_at: now,
            })
        });
    let got =
        futures_executor::block_on(service(accounts).create(" Ada@Example.COM ", Some(grant(100))))
            .unwrap();
    assert_eq!(got.email, email());
    assert_eq!(got.balance, Credits::new(100));
}

#[test]
fn create_maps_store_errors() {
    for (err, want) in [
        (
            CreateUserError::EmailTaken,
            CreateUserUseCaseError::EmailTaken("ada@example.com".into()),
        ),
        (
            CreateUserError::Store(StoreError::Unavailable("down".into())),
            CreateUserUseCaseError::Store(StoreError::Unavailable("down".into())),
        ),
    ] {
        let mut accounts = MockAccountStore::new();
        accounts
            .expect_create_user()
            .times(1)
            .returning(move |_, _, _, _| Err(err.clone()));
        let got = futures_executor::block_on(service(accounts).create("ADA@example.com", None));
        assert_eq!(got, Err(want));
    }
}

fn grant(n: u64) -> GrantAmount {
    GrantAmount::new(n).unwrap()
}

#[test]
fn a_grant_past_the_balance_limit_is_refused_with_the_balance() {
    let mut accounts = MockAccountStore::new();
    accounts.expect_find_user().returning(|_| Ok(Some(ada(0))));
    accounts.expect_grant().returning(|_, _, _| {
        Err(GrantStoreError::BalanceLimit {
            balance: Credits::new(9_007_199_254_740_000),
        })
    });
    let got = futures_executor::block_on(service(accounts).grant("usr_ada", grant(1000)));
    let err = got.unwrap_err();
    assert_eq!(
        err,
        GrantError::BalanceLimit {
            balance: Credits::new(9_007_199_254_740_000)
        }
    );
    assert!(err.to_string().contains("9007199254740991"), "{err}");
}

#[test]
fn create_refuses_initial_credits_past_the_limit() {
    let mut accounts = MockAccountStore::new();
    accounts
        .expect_create_user()
        .returning(|_, _, _, _| Err(CreateUserError::BalanceLimit));
    let got =
        futures_executor::block_on(service(accounts).create("ada@example.com", Some(grant(5))));
    assert_eq!(got, Err(CreateUserUseCaseError::BalanceLimit));
}

#[test]
fn grant_to_an_unknown_user_names_the_reference() {
    let mut accounts = MockAccountStore::new();
    accounts
        .expect_find_user()
        .withf(|r| *r == UserRef::Email(email()))
        .times(1)
        .returning(|_| Ok(None));
    accounts.expect_grant().never();
    let got = futures_executor::block_on(service(accounts).grant("ada@example.com", grant(5)));
    assert_eq!(got, Err(GrantError::UnknownUser("ada@example.com".into())));

    // The user vanished between lookup and grant.
    let mut accounts = MockAccountStore::new();
    accounts.expect_find_user().returning(|_| Ok(Some(ada(0))));
    accounts
        .expect_grant()
        .returning(|_, _, _| Err(GrantStoreError::UnknownUser));
    let got = futures_executor::block_on(service(accounts).grant("usr_ada", grant(5)));
    assert_eq!(got, Err(GrantError::UnknownUser("usr_ada".into())));
}

#[test]
fn grant_adds_to_the_found_user_and_returns_the_new_balance() {
    let mut accounts = MockAccountStore::new();
    accounts
        .expect_find_user()
        .withf(|r| *r == UserRef::Id(user()))
        .times(1)
        .returning(|_| Ok(Some(ada(20))));
    accounts
        .expect_grant()
        .withf(|id, amount, now| *id == user() && *amount == grant(100) && *now == T0)
        .times(1)
        .returning(|_, _, _| Ok(Credits::new(120)));
    let got = futures_executor::block_on(service(accounts).grant(" usr_ada ", grant(100)));
    assert_eq!(got, Ok(Credits::new(120)));
}

#[test]
fn grant_passes_store_errors_through() {
    let mut accounts = MockAccountStore::new();
    accounts
        .expect_find_user()
        .returning(|_| Err(StoreError::Unavailable("down".into())));
    let got = futures_executor::block_on(service(accounts).grant("usr_ada", grant(1)));
    assert_eq!(
        got,
        Err(GrantError::Store(StoreError::Unavailable("down".into())))
    );
}

#[test]
fn a_reference_with_an_at_sign_is_an_email_anything_else_an_id() {
    assert_eq!(
        parse_user_ref(" Ada@Example.com "),
        UserRef::Email(Email::parse("ada@example.com").unwrap())
    );
    assert_eq!(
        parse_user_ref(" usr_abc "),
        UserRef::Id(UserId::new("usr_abc"))
    );
    // Not a valid address, so it can only match an id (and matches nothing).
    assert_eq!(parse_user_ref("a@b"), UserRef::Id(UserId::new("a@b")));
    assert_eq!(parse_user_ref(""), UserRef::Id(UserId::new("")));
}
