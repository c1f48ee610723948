//! `Admission`: a key is authenticated, then counted, then rate-limited; a refused credential
//! is neither counted nor rate-limited, a rate-limited request is still counted.

use std::sync::Arc;
use std::time::Duration;

use keys_domain::ports::{MockClock, MockKeyStore, MockRateLimiter, MockUsageRecorder};
use keys_domain::rate_limit::RateDecision;
use keys_domain::use_cases::{Admission, AdmitError, Admitted, AuthError, Authenticator, Caller};
use keys_domain::{ApiKeySecret, KeyState};

use crate::support::{SeqRandom, T0, clock_at, stored_key, user};

fn decision(allowed: bool) -> RateDecision {
    RateDecision {
        allowed,
        limit: 40,
        remaining: if allowed { 39 } else { 0 },
        reset_after: Duration::from_millis(50),
        retry_after: (!allowed).then_some(Duration::from_millis(50)),
        window: Duration::from_secs(2),
    }
}

fn admit(
    store: MockKeyStore,
    clock: MockClock,
    usage: MockUsageRecorder,
    limiter: MockRateLimiter,
    token: &str,
) -> Result<Admitted, AdmitError> {
    let admission = Admission {
        authenticator: Authenticator {
            store: Arc::new(store),
            clock: Arc::new(clock),
        },
        usage: Arc::new(usage),
        limiter: Arc::new(limiter),
    };
    futures_executor::block_on(admission.admit(token, Caller::UNKNOWN))
}

fn store_knowing(key: keys_domain::ApiKey) -> MockKeyStore {
    let mut store = MockKeyStore::new();
    store
        .expect_find_by_hash()
        .times(1)
        .returning(move |_| Ok(Some(key.clone())));
    store
}

#[test]
fn an_accepted_key_is_counted_then_checked_and_admitted_with_its_rate_state() {
    let (key, secret) = stored_key(&user(), "k", KeyState::Active, 5);
    let mut usage = MockUsageRecorder::new();
    let (id, owner) = (key.id.clone(), key.user_id.clone());
    usage
        .expect_record()
        .withf(move |k, u, at, client, agent| {
            *k == id && *u == owner && *at == T0 && client.is_none() && agent == "-"
        })
        .times(1)
        .return_const(());
    let mut limiter = MockRateLimiter::new();
    let id = key.id.clone();
    limiter
        .expect_check()
        .withf(move |k| *k == id)
        .times(1)
        .return_const(decision(true));
    let admitted = admit(
        store_knowing(key.clone()),
        clock_at(T0),
        usage,
        limiter,
        secret.expose(),
    )
    .unwrap();
    assert_eq!(admitted.key, key);
    assert_eq!(admitted.rate, decision(true));
}

#[test]
fn a_rate_limited_request_is_counted_and_refused_with_the_decision() {
    let (key, secret) = stored_key(&user(), "k", KeyState::Active, 5);
    let mut usage = MockUsageRecorder::new();
    usage.expect_record().times(1).return_const(());
    let mut limiter = MockRateLimiter::new();
    limiter
        .expect_check()
        .times(1)
        .return_const(decision(false));
    let got = admit(
        store_knowing(key),
        clock_at(T0),
        usage,
        limiter,
        secret.expose(),
    );
    assert_eq!(got.unwrap_err(), AdmitError::RateLimited(decision(false)));
}

#[test]
fn a_refused_credential_is_neither_counted_nor_rate_limited() {
    // Mocks without expectations fail the test if anything calls them.
    let got = admit(
        MockKeyStore::new(),
        MockClock::new(),
        MockUsageRecorder::new(),
        MockRateLimiter::new(),
        "jt_sk_short",
    );
    assert!(matches!(
        got,
        Err(AdmitError::Auth(AuthError::Malformed(_)))
    ));

    let unknown = ApiKeySecret::generate(&SeqRandom::new(8));
    let mut store = MockKeyStore::new();
    store.expect_find_by_hash().times(1).returning(|_| Ok(None));
    let got = admit(
        store,
        MockClock::new(),
        MockUsageRecorder::new(),
        MockRateLimiter::new(),
        unknown.expose(),
    );
    assert_eq!(got.unwrap_err(), AdmitError::Auth(AuthError::Unknown));
}
