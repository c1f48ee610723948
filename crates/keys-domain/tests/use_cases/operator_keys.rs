//! `OperatorKeys`: revoke a key by its full text, as the operator, with the reason given.

use std::sync::Arc;

use keys_domain::ports::{MockKeyStore, MockRevocationNotifier};
use keys_domain::use_cases::{OperatorKeys, OperatorRevokeError};
use keys_domain::{Actor, ApiKey, ApiKeySecret, EventDetail, KeyState, RevocationReason};

use crate::support::{SeqRandom, T0, clock_at, stored_key, user};

fn service(keys: MockKeyStore, notifier: MockRevocationNotifier) -> OperatorKeys {
    OperatorKeys {
        keys: Arc::new(keys),
        notifier: Arc::new(notifier),
        clock: Arc::new(clock_at(T0)),
    }
}

#[test]
fn revokes_as_the_operator_with_the_reason_given() {
    let (key, secret) = stored_key(&user(), "ci", KeyState::Active, 4);
    let hash = key.hash;
    let mut keys = MockKeyStore::new();
    let found = key.clone();
    keys.expect_find_by_hash()
        .returning(move |_| Ok(Some(found.clone())));
    let after = ApiKey {
        state: KeyState::Revoked { revoked_at: T0 },
        revocation_reason: Some(RevocationReason::Operator),
        ..key
    };
    keys.expect_transition()
        .withf(|_, _, c| {
            c.reason == Some(RevocationReason::Operator)
                && c.email.is_none()
                && c.events.len() == 1
                && c.events[0].actor == Actor::Operator
                && c.events[0].detail
                    == EventDetail::Revoked {
                        reason: RevocationReason::Operator,
                    }
        })
        .times(1)
        .returning(move |_, _, _| Ok(Some(after.clone())));
    let mut notifier = MockRevocationNotifier::new();
    notifier
        .expect_key_changed()
        .withf(move |h| *h == hash)
        .times(1)
        .return_const(());
    let (out, now) = futures_executor::block_on(
        service(keys, notifier).revoke(secret.expose(), RevocationReason::Operator),
    )
    .unwrap();
    assert!(now);
    assert_eq!(out.revocation_reason, Some(RevocationReason::Operator));
}

#[test]
fn unknown_and_malformed_keys_are_refused_without_a_write() {
    let stranger = ApiKeySecret::generate(&SeqRandom::new(8));
    let mut keys = MockKeyStore::new();
    keys.expect_find_by_hash().times(1).returning(|_| Ok(None));
    keys.expect_transition().never();
    let svc = service(keys, MockRevocationNotifier::new());
    assert_eq!(
        futures_executor::block_on(svc.revoke(stranger.expose(), RevocationReason::Leaked)),
        Err(OperatorRevokeError::UnknownKey)
    );
    assert!(matches!(
        futures_executor::block_on(svc.revoke("jt_sk_short", RevocationReason::Leaked)),
        Err(OperatorRevokeError::Malformed(_))
    ));
}
