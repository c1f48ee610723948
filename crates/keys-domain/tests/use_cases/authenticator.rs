//! `Authenticator`: parse first, then one lookup by hash; a down store is never "unknown".

use std::sync::Arc;

use keys_domain::ports::{MockClock, MockKeyStore, StoreError};
use keys_domain::use_cases::{AuthError, Authenticator};
use keys_domain::{ApiKey, ApiKeySecret, KeyHash, KeyState, MalformedKey};

use crate::support::{SeqRandom, T0, clock_at, secs, stored_key, user};

fn authenticate(store: MockKeyStore, clock: MockClock, token: &str) -> Result<ApiKey, AuthError> {
    let auth = Authenticator {
        store: Arc::new(store),
        clock: Arc::new(clock),
    };
    futures_executor::block_on(auth.authenticate(token, None))
}

/// A store that knows exactly `key` (looked up by `hash`).
fn store_with(key: Option<ApiKey>, hash: KeyHash) -> MockKeyStore {
    let mut store = MockKeyStore::new();
    store
        .expect_find_by_hash()
        .withf(move |h| *h == hash)
        .times(1)
        .returning(move |_| Ok(key.clone()));
    store
}

#[test]
fn malformed_keys_touch_no_store_and_no_clock() {
    let good = ApiKeySecret::generate(&SeqRandom::new(3));
    let mut bad_sum = good.expose().to_owned();
    let last = if bad_sum.ends_with('0') { "1" } else { "0" };
    bad_sum.replace_range(43..44, last);
    let cases = [
        (String::new(), MalformedKey::MissingPrefix),
        (
            "eyJhbGciOiJIUzI1NiJ9.e30.sig".to_owned(),
            MalformedKey::MissingPrefix,
        ),
        (
            good.expose()[..40].to_owned(),
            MalformedKey::WrongLength { actual: 40 },
        ),
        (
            format!("{}-", &good.expose()[..43]),
            MalformedKey::BadAlphabet,
        ),
        (bad_sum, MalformedKey::BadChecksum),
    ];
    for (token, why) in cases {
        // Mocks without expectations fail the test if anything calls them.
        let got = authenticate(MockKeyStore::new(), MockClock::new(), &token);
        assert_eq!(got, Err(AuthError::Malformed(why)), "{why:?}");
    }
}

#[test]
fn a_well_formed_but_unknown_key_is_unknown() {
    let secret = ApiKeySecret::generate(&SeqRandom::new(4));
    let store = store_with(None, secret.hash());
    assert_eq!(
        authenticate(store, MockClock::new(), secret.expose()),
        Err(AuthError::Unknown)
    );
}

#[test]
fn a_loosely_matched_record_with_another_hash_is_unknown() {
    let secret = ApiKeySecret::generate(&SeqRandom::new(4));
    let (someone_else, _) = stored_key(&user(), "k", KeyState::Active, 9);
    let store = store_with(Some(someone_else), secret.hash());
    assert_eq!(
        authenticate(store, clock_at(T0), secret.expose()),
        Err(AuthError::Unknown)
    );
}

#[test]
fn an_active_key_is_accepted() {
    let (key, secret) = stored_key(&user(), "k", KeyState::Active, 5);
    let store = store_with(Some(key.clone()), secret.hash());
    assert_eq!(authenticate(store, clock_at(T0), secret.expose()), Ok(key));
}

#[test]
fn a_revoked_key_is_revoked() {
    let state = KeyState::Revoked {
        revoked_at: T0.minus(secs(1)),
    };
    let (key, secret) = stored_key(&user(), "k", state, 5);
    let store = store_with(Some(key), secret.hash());
    assert_eq!(
        authenticate(store, clock_at(T0), secret.expose()),
        Err(AuthError::Revoked)
    );
}

#[test]
fn an_expiring_key_is_accepted_until_revokes_at_only() {
    let revokes_at = T0.plus(secs(60));
    let state = KeyState::Expiring { revokes_at };
    let (key, secret) = stored_key(&user(), "k", state, 5);

    let before = revokes_at.minus(std::time::Duration::from_millis(1));
    let store = store_with(Some(key.clone()), secret.hash());
    assert_eq!(
        authenticate(store, clock_at(before), secret.expose()),
        Ok(key.clone())
    );
    for at in [revokes_at, revokes_at.plus(secs(1))] {
        let store = store_with(Some(key.clone()), secret.hash());
        assert_eq!(
            authenticate(store, clock_at(at), secret.expose()),
            Err(AuthError::Revoked)
        );
    }
}

#[test]
fn an_unavailable_store_is_a_store_error_never_unknown() {
    let secret = ApiKeySecret::generate(&SeqRandom::new(6));
    let mut store = MockKeyStore::new();
    store
        .expect_find_by_hash()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("timeout".into())));
    assert_eq!(
        authenticate(store, MockClock::new(), secret.expose()),
        Err(AuthError::Store(StoreError::Unavailable("timeout".into())))
    );
}
