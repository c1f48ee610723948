//! Integer edges: no balance above 2^53 − 1, refused rather than clamped or wrapped, and the
//! ledger still sums to the balance.

use keys_domain::ports::{CreateUserError, GrantStoreError, UserRef};
use keys_domain::random::OsRandom;
use keys_domain::{Credits, Email, GrantAmount, UserId};

use super::{Store, T0, assert_ledger_matches};

const MAX: u64 = (1 << 53) - 1;

async fn user_with(store: &impl Store, credits: u64) -> UserId {
    let id = UserId::generate(&OsRandom);
    let email = Email::parse(&format!("{}@example.com", id.as_str().to_lowercase())).unwrap();
    let user = store
        .create_user(id.clone(), email, Credits::new(credits), T0)
        .await
        .unwrap();
    assert_eq!(user.balance, Credits::new(credits), "the stored balance");
    id
}

fn grant(n: u64) -> GrantAmount {
    GrantAmount::new(n).unwrap()
}

pub async fn grants_never_take_a_balance_past_2_pow_53_minus_1(store: impl Store) {
    assert_eq!(Credits::MAX_BALANCE.get(), MAX);
    let user = user_with(&store, MAX - 5).await;
    assert_eq!(
        store.grant(&user, grant(5), T0).await,
        Ok(Credits::new(MAX))
    );
    for n in [1, GrantAmount::MAX] {
        assert_eq!(
            store.grant(&user, grant(n), T0).await,
            Err(GrantStoreError::BalanceLimit {
                balance: Credits::new(MAX)
            })
        );
    }
    assert_eq!(store.balance(&user).await.unwrap(), Some(Credits::new(MAX)));
    let ledger = assert_ledger_matches(&store, &user).await;
    assert_eq!(ledger.len(), 2, "a refused grant writes no ledger entry");
    assert_eq!(ledger[1].balance_after, Credits::new(MAX));
}

pub async fn concurrent_grants_near_the_limit_never_overshoot(store: impl Store) {
    let big = GrantAmount::MAX;
    let user = user_with(&store, MAX - 3 * big - 7).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move { store.grant(&user, grant(big), T0).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(b) => {
                ok += 1;
                assert!(b.get() <= MAX);
            }
            Err(GrantStoreError::BalanceLimit { balance }) => assert!(balance.get() <= MAX),
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    assert_eq!(ok, 3);
    assert_eq!(
        store.balance(&user).await.unwrap(),
        Some(Credits::new(MAX - 7))
    );
    assert_eq!(assert_ledger_matches(&store, &user).await.len(), 4);
}

pub async fn initial_credits_past_the_limit_are_refused(store: impl Store) {
    for credits in [MAX + 1, u64::MAX, 1 << 63] {
        let id = UserId::generate(&OsRandom);
        let email = Email::parse(&format!("{}@example.com", id.as_str().to_lowercase())).unwrap();
        assert_eq!(
            store
                .create_user(id.clone(), email, Credits::new(credits), T0)
                .await,
            Err(CreateUserError::BalanceLimit),
            "{credits}"
        );
        assert_eq!(store.find_user(&UserRef::Id(id)).await.unwrap(), None);
    }
    let at_limit = user_with(&store, MAX).await;
    assert_ledger_matches(&store, &at_limit).await;
}
