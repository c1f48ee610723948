//! Integer edges of the operator CLI: amounts are 1 to 10^12 (0 allowed as a new user's
//! credits), no balance exceeds 2^53 − 1, an out-of-range value is refused with the rule, and
//! what is printed is what was stored.

use adapters_postgres::DbStore;
use keys_domain::ports::AccountStore;
use keys_domain::{Credits, Email, Timestamp, UserId};

use crate::cli::{cli, failed_with, ok_json};
use crate::helpers::{Backend, Database};

const MAX: u64 = (1 << 53) - 1;

async fn stored_balance(store: &DbStore, id: &str) -> u64 {
    store
        .balance(&UserId::new(id))
        .await
        .unwrap()
        .unwrap()
        .get()
}

async fn ledger_sum(store: &DbStore, id: &str) -> i64 {
    let ledger = store.ledger(&UserId::new(id)).await.unwrap();
    ledger.iter().map(|e| e.delta).sum()
}

async fn amounts_are_bounded_and_the_cli_prints_what_was_stored(backend: Backend) {
    let db = Database::fresh(backend).await;
    let url = db.url.clone();
    assert!(cli(&url, &["migrate"]).status.success());
    let store = DbStore::connect(&url).unwrap();

    for (credits, rule) in [
        ("-5", "the amount must be positive"),
        ("18446744073709551615", "at most 1000000000000"),
        ("9223372036854775807", "at most 1000000000000"),
        ("1000000000001", "at most 1000000000000"),
        ("1.5", "whole number"),
    ] {
        let args = [
            "users",
            "create",
            "--email",
            "x@example.com",
            "--credits",
            credits,
        ];
        failed_with(&cli(&url, &args), rule);
    }
    let none = store
        .find_user(&keys_domain::ports::UserRef::Email(
            Email::parse("x@example.com").unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(none, None, "a refused create stores nothing");

    let big = ok_json(&cli(
        &url,
        &[
            "users",
            "create",
            "--email",
            "big@example.com",
            "--credits",
            "1000000000000",
        ],
    ));
    let id = big["id"].as_str().unwrap().to_owned();
    assert_eq!(big["balance"], 1_000_000_000_000_u64);
    assert_eq!(stored_balance(&store, &id).await, 1_000_000_000_000);

    for (amount, rule) in [
        ("-5", "the amount must be positive"),
        ("0", "the amount must be positive"),
        ("18446744073709551615", "at most 1000000000000"),
    ] {
        failed_with(
            &cli(
                &url,
                &["credits", "grant", "--user", &id, "--amount", amount],
            ),
            rule,
        );
    }

    // A balance just under the limit (only reachable through the store, as 9007 grants would
    // be slow): the grant that would cross 2^53 - 1 is refused and changes nothing.
    let near = UserId::new("usr_near_the_limit");
    store
        .create_user(
            near.clone(),
            Email::parse("near@example.com").unwrap(),
            Credits::new(MAX - 3),
            Timestamp::from_millis(0),
        )
        .await
        .unwrap();
    let granted = ok_json(&cli(
        &url,
        &["credits", "grant", "--user", near.as_str(), "--amount", "3"],
    ));
    assert_eq!(granted["balance"], MAX);
    failed_with(
        &cli(
            &url,
            &["credits", "grant", "--user", near.as_str(), "--amount", "1"],
        ),
        "9007199254740991",
    );
    failed_with(
        &cli(
            &url,
            &[
                "credits",
                "grant",
                "--user",
                near.as_str(),
                "--amount",
                "1000000000000",
            ],
        ),
        "9007199254740991",
    );
    assert_eq!(stored_balance(&store, near.as_str()).await, MAX);
    assert_eq!(
        ledger_sum(&store, near.as_str()).await,
        i64::try_from(MAX).unwrap(),
        "the ledger sums to the balance"
    );
    store.close().await;
}

on_both_backends!(amounts_are_bounded_and_the_cli_prints_what_was_stored);
