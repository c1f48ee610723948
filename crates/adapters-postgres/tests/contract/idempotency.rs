//! Idempotency records: exclusive claims, completion, release, expiry; the same on every backend.

use std::sync::Arc;

use keys_domain::idempotency_key::{IdempotencyKey, LookupHash, RequestFingerprint};
use keys_domain::ports::{ClaimOutcome, IdempotencyClaim, IdempotencyRecord, IdempotencyStore};
use keys_domain::{Timestamp, UserId};

use super::{T0, at};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A look-up and fingerprint as the use case derives them.
fn derived(value: &str, body: &[u8]) -> (LookupHash, RequestFingerprint) {
    let secrets = IdempotencyKey::parse(value.as_bytes())
        .unwrap()
        .derive(&UserId::new("usr_1"));
    (
        secrets.lookup,
        secrets.fingerprint("POST", "/api/v1/public/documents", body),
    )
}

fn claim(value: &str, body: &[u8], now: Timestamp) -> IdempotencyClaim {
    let (lookup, request) = derived(value, body);
    IdempotencyClaim {
        lookup,
        request,
        created_at: now,
        expires_at: Timestamp::from_millis(now.as_millis() + DAY_MS),
    }
}

fn existing(value: &str, body: &[u8], sealed: Option<&[u8]>) -> ClaimOutcome {
    ClaimOutcome::Existing(IdempotencyRecord {
        request: derived(value, body).1,
        sealed: sealed.map(<[u8]>::to_vec),
    })
}

pub async fn a_claim_holds_its_key_until_completed_and_then_keeps_the_response(
    store: impl IdempotencyStore,
) {
    let first = claim("k-1", b"{}", T0);
    assert_eq!(
        store.claim(first.clone()).await.unwrap(),
        ClaimOutcome::Claimed
    );
    // Running: a second claim (even with another body) finds the record, sealed nothing yet.
    assert_eq!(
        store
            .claim(claim("k-1", b"{\"x\":1}", at(1)))
            .await
            .unwrap(),
        existing("k-1", b"{}", None)
    );
    store
        .complete(&first.lookup, b"sealed-1".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.claim(claim("k-1", b"{}", at(2))).await.unwrap(),
        existing("k-1", b"{}", Some(b"sealed-1"))
    );
    // Completed records are final: neither a second completion nor a release changes them.
    store
        .complete(&first.lookup, b"sealed-2".to_vec())
        .await
        .unwrap();
    store.release(&first.lookup).await.unwrap();
    assert_eq!(
        store.claim(claim("k-1", b"{}", at(3))).await.unwrap(),
        existing("k-1", b"{}", Some(b"sealed-1"))
    );
    // Another key is independent.
    assert_eq!(
        store.claim(claim("k-2", b"{}", at(3))).await.unwrap(),
        ClaimOutcome::Claimed
    );
}

pub async fn a_released_claim_lets_a_retry_run(store: impl IdempotencyStore) {
    let first = claim("k-1", b"{}", T0);
    assert_eq!(
        store.claim(first.clone()).await.unwrap(),
        ClaimOutcome::Claimed
    );
    store.release(&first.lookup).await.unwrap();
    assert_eq!(
        store.claim(claim("k-1", b"{}", at(1))).await.unwrap(),
        ClaimOutcome::Claimed
    );
}

pub async fn of_concurrent_claims_exactly_one_wins(store: impl IdempotencyStore + 'static) {
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.claim(claim("k-race", b"{}", at(i))).await.unwrap() })
        })
        .collect();
    let mut claimed = 0;
    for t in tasks {
        match t.await.unwrap() {
            ClaimOutcome::Claimed => claimed += 1,
            other => assert_eq!(other, existing("k-race", b"{}", None)),
        }
    }
    assert_eq!(claimed, 1);
}

pub async fn expired_records_are_replaced_and_swept(store: impl IdempotencyStore) {
    let first = claim("k-1", b"{}", T0);
    store.claim(first.clone()).await.unwrap();
    store
        .complete(&first.lookup, b"old".to_vec())
        .await
        .unwrap();
    store.claim(claim("k-2", b"{}", T0)).await.unwrap();
    store.claim(claim("k-3", b"{}", at(10))).await.unwrap();
    // Just before expiry the record holds; at expiry a claim starts anew, with a new body.
    assert_eq!(
        store
            .claim(claim("k-1", b"{}", at(DAY_MS - 1)))
            .await
            .unwrap(),
        existing("k-1", b"{}", Some(b"old"))
    );
    assert_eq!(
        store.claim(claim("k-1", b"[]", at(DAY_MS))).await.unwrap(),
        ClaimOutcome::Claimed
    );
    // The sweep drops k-2 (expired) and keeps k-1 (renewed) and k-3 (not yet expired).
    assert_eq!(store.sweep_expired(at(DAY_MS)).await.unwrap(), 1);
    assert_eq!(
        store.claim(claim("k-3", b"{}", at(DAY_MS))).await.unwrap(),
        existing("k-3", b"{}", None)
    );
    assert_eq!(store.sweep_expired(at(3 * DAY_MS)).await.unwrap(), 2);
    assert_eq!(store.sweep_expired(at(3 * DAY_MS)).await.unwrap(), 0);
}
