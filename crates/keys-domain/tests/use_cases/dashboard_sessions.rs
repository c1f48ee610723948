//! `DashboardSessions`: sign-out moves the per-user cut-off; tokens issued until then fail.

use std::sync::Arc;

use keys_domain::ports::{MockRevocationNotifier, MockTokenCutoffStore, StoreError};
use keys_domain::use_cases::{DashboardSessions, SessionCheckError, SignOutError};

use futures_executor::block_on;

use crate::support::{T0, clock_at, secs, user};

fn sessions(cutoffs: MockTokenCutoffStore) -> DashboardSessions {
    // No announcement is expected: a call would fail the test.
    sessions_telling(cutoffs, MockRevocationNotifier::new())
}

fn sessions_telling(
    cutoffs: MockTokenCutoffStore,
    notifier: MockRevocationNotifier,
) -> DashboardSessions {
    DashboardSessions {
        cutoffs: Arc::new(cutoffs),
        notifier: Arc::new(notifier),
        clock: Arc::new(clock_at(T0)),
    }
}

#[test]
fn without_a_sign_out_every_token_passes() {
    let mut cutoffs = MockTokenCutoffStore::new();
    cutoffs.expect_tokens_cutoff().returning(|_| Ok(None));
    let s = sessions(cutoffs);
    assert_eq!(block_on(s.check(&user(), Some(T0))), Ok(()));
    assert_eq!(block_on(s.check(&user(), None)), Ok(()));
}

#[test]
fn tokens_issued_until_the_sign_out_second_are_refused() {
    let mut cutoffs = MockTokenCutoffStore::new();
    cutoffs.expect_tokens_cutoff().returning(|_| Ok(Some(T0)));
    let s = sessions(cutoffs);
    for issued in [T0.minus(secs(3600)), T0, T0.plus(secs(0))] {
        assert_eq!(
            block_on(s.check(&user(), Some(issued))),
            Err(SessionCheckError::SignedOut)
        );
    }
    assert_eq!(
        block_on(s.check(&user(), None)),
        Err(SessionCheckError::SignedOut),
        "a token without `iat` cannot be placed after the sign-out"
    );
    assert_eq!(block_on(s.check(&user(), Some(T0.plus(secs(1))))), Ok(()));
}

#[test]
fn sign_out_raises_the_cutoff_to_now_then_tells_the_other_instances() {
    let mut order = mockall::Sequence::new();
    let mut cutoffs = MockTokenCutoffStore::new();
    cutoffs
        .expect_raise_tokens_cutoff()
        .withf(|u, at| *u == user() && *at == T0)
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(true));
    let mut notifier = MockRevocationNotifier::new();
    notifier
        .expect_signed_out()
        .withf(|u| *u == user())
        .times(1)
        .in_sequence(&mut order)
        .return_const(());
    assert_eq!(
        block_on(sessions_telling(cutoffs, notifier).sign_out(&user())),
        Ok(())
    );

    // An unknown user or a store outage announces nothing (the plain mock would panic).

    let mut unknown = MockTokenCutoffStore::new();
    unknown
        .expect_raise_tokens_cutoff()
        .returning(|_, _| Ok(false));
    assert_eq!(
        block_on(sessions(unknown).sign_out(&user())),
        Err(SignOutError::UnknownUser)
    );

    let mut down = MockTokenCutoffStore::new();
    down.expect_tokens_cutoff()
        .returning(|_| Err(StoreError::Unavailable("down".into())));
    assert!(matches!(
        block_on(sessions(down).check(&user(), Some(T0))),
        Err(SessionCheckError::Store(StoreError::Unavailable(_)))
    ));
    let mut down = MockTokenCutoffStore::new();
    down.expect_raise_tokens_cutoff()
        .returning(|_, _| Err(StoreError::Unavailable("down".into())));
    assert!(matches!(
        block_on(sessions(down).sign_out(&user())),
        Err(SignOutError::Store(StoreError::Unavailable(_)))
    ));
}
