//! `Idempotency`: claim, replay, refusals, and what is kept of a finished request.

use std::sync::{Arc, LazyLock, Mutex};

use keys_domain::UserId;
use keys_domain::idempotency_key::IdempotencyKey;
use keys_domain::ports::{
    ClaimOutcome, IdempotencyClaim, IdempotencyRecord, MockIdempotencyStore, StoreError,
};
use keys_domain::sealed_response::RecordedResponse;
use keys_domain::use_cases::{
    Begun, Idempotency, IdempotencyError, IdempotentRequest, REPLAY_WINDOW, Recorded, is_replayable,
};

use crate::support::{SeqRandom, T0, clock_at, other_user, user};

static USER: LazyLock<UserId> = LazyLock::new(user);

fn service(store: MockIdempotencyStore) -> Idempotency {
    Idempotency {
        store: Arc::new(store),
        clock: Arc::new(clock_at(T0)),
        random: Arc::new(SeqRandom::new(7)),
    }
}

fn key(value: &str) -> IdempotencyKey {
    IdempotencyKey::parse(value.as_bytes()).unwrap()
}

fn request<'a>(k: &'a IdempotencyKey, body: &'a [u8]) -> IdempotentRequest<'a> {
    IdempotentRequest {
        user: &USER,
        key: k,
        method: "POST",
        path: "/api/v1/public/documents",
        body,
    }
}

fn created() -> RecordedResponse {
    RecordedResponse {
        status: 201,
        body: br#"{"id":"doc_1","charged":1}"#.to_vec(),
    }
}

fn run(begun: Result<Begun, IdempotencyError>) -> keys_domain::use_cases::InFlight {
    let Ok(Begun::Run(in_flight)) = begun else {
        unreachable!("expected to run, got {begun:?}")
    };
    in_flight
}

/// The records of [`memory_store`]: each claim with its sealed response, once completed.
type Records = Arc<Mutex<Vec<(IdempotencyClaim, Option<Vec<u8>>)>>>;

/// A store in memory, enough to carry a record from the first request to its retry.
fn memory_store(records: Records) -> MockIdempotencyStore {
    let mut store = MockIdempotencyStore::new();
    let r = records.clone();
    store.expect_claim().returning(move |c| {
        let mut all = r.lock().unwrap();
        match all.iter().find(|(x, _)| x.lookup == c.lookup) {
            Some((x, sealed)) => Ok(ClaimOutcome::Existing(IdempotencyRecord {
                request: x.request,
                sealed: sealed.clone(),
            })),
            None => {
                all.push((c, None));
                Ok(ClaimOutcome::Claimed)
            }
        }
    });
    let r = records.clone();
    store.expect_complete().returning(move |lookup, sealed| {
        for (x, s) in r.lock().unwrap().iter_mut() {
            if x.lookup == *lookup {
                *s = Some(sealed.clone());
            }
        }
        Ok(())
    });
    let r = records;
    store.expect_release().returning(move |lookup| {
        r.lock()
            .unwrap()
            .retain(|(x, s)| x.lookup != *lookup || s.is_some());
        Ok(())
    });
    store
}

#[test]
fn the_first_request_claims_for_24_hours_and_its_success_is_replayed() {
    let records = Arc::new(Mutex::new(Vec::new()));
    let svc = service(memory_store(records.clone()));
    let k = key("order-42");
    let in_flight = run(futures_executor::block_on(svc.begin(request(&k, b"{}"))));
    {
        let all = records.lock().unwrap();
        assert_eq!(all[0].0.created_at, T0);
        assert_eq!(all[0].0.expires_at, T0.plus(REPLAY_WINDOW));
    }
    let recorded = futures_executor::block_on(svc.finish(in_flight, &created())).unwrap();
    assert_eq!(recorded, Recorded::Stored);
    // The store holds the response sealed, not in the clear.
    let sealed = records.lock().unwrap()[0].1.clone().unwrap();
    assert!(!sealed.windows(5).any(|w| w == b"doc_1"));
    let replay = futures_executor::block_on(svc.begin(request(&k, b"{}")));
    assert!(
        matches!(replay, Ok(Begun::Replay(ref r)) if *r == created()),
        "{replay:?}"
    );
}

#[test]
fn another_body_is_reused_and_a_running_first_request_is_in_progress() {
    let records = Arc::new(Mutex::new(Vec::new()));
    let svc = service(memory_store(records));
    let k = key("order-42");
    let in_flight = run(futures_executor::block_on(svc.begin(request(&k, b"{}"))));
    assert_eq!(
        futures_executor::block_on(svc.begin(request(&k, b"{}"))).unwrap_err(),
        IdempotencyError::InProgress
    );
    assert_eq!(
        futures_executor::block_on(svc.begin(request(&k, b"{\"a\":1}"))).unwrap_err(),
        IdempotencyError::Reused
    );
    futures_executor::block_on(svc.finish(in_flight, &created())).unwrap();
    assert_eq!(
        futures_executor::block_on(svc.begin(request(&k, b"{\"a\":1}"))).unwrap_err(),
        IdempotencyError::Reused
    );
}

#[test]
fn a_failure_releases_the_key_so_a_retry_runs() {
    let records = Arc::new(Mutex::new(Vec::new()));
    let svc = service(memory_store(records.clone()));
    let k = key("order-42");
    for status in [402, 409, 500, 503] {
        let in_flight = run(futures_executor::block_on(svc.begin(request(&k, b"{}"))));
        let failed = RecordedResponse {
            status,
            body: b"{}".to_vec(),
        };
        assert_eq!(
            futures_executor::block_on(svc.finish(in_flight, &failed)).unwrap(),
            Recorded::Released
        );
        assert!(records.lock().unwrap().is_empty());
    }
    assert!(is_replayable(200) && is_replayable(201));
    assert!(!is_replayable(402) && !is_replayable(503));
}

#[test]
fn the_look_up_depends_on_the_user_and_never_holds_the_value() {
    let mut store = MockIdempotencyStore::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    store.expect_claim().times(2).returning(move |c| {
        s.lock().unwrap().push(c.lookup);
        Ok(ClaimOutcome::Claimed)
    });
    let svc = service(store);
    let k = key("order-42");
    run(futures_executor::block_on(svc.begin(request(&k, b"{}"))));
    let other = other_user();
    run(futures_executor::block_on(svc.begin(IdempotentRequest {
        user: &other,
        ..request(&k, b"{}")
    })));
    let seen = seen.lock().unwrap();
    assert_ne!(seen[0], seen[1]);
    assert!(!seen[0].as_bytes().windows(8).any(|w| w == b"order-42"));
}

#[test]
fn a_store_outage_is_a_store_error_and_an_unreadable_record_is_internal() {
    let mut store = MockIdempotencyStore::new();
    store
        .expect_claim()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("down".into())));
    let k = key("order-42");
    let fingerprint = k
        .derive(&user())
        .fingerprint("POST", "/api/v1/public/documents", b"{}");
    store.expect_claim().returning(move |_| {
        Ok(ClaimOutcome::Existing(IdempotencyRecord {
            request: fingerprint,
            sealed: Some(b"garbage".to_vec()),
        }))
    });
    let svc = service(store);
    assert!(matches!(
        futures_executor::block_on(svc.begin(request(&k, b"{}"))),
        Err(IdempotencyError::Store(StoreError::Unavailable(_)))
    ));
    assert!(matches!(
        futures_executor::block_on(svc.begin(request(&k, b"{}"))),
        Err(IdempotencyError::Store(StoreError::Internal(_)))
    ));
}

#[test]
fn a_failed_completion_is_reported_and_leaves_the_key_running() {
    let mut store = MockIdempotencyStore::new();
    store
        .expect_claim()
        .returning(|_| Ok(ClaimOutcome::Claimed));
    store
        .expect_complete()
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable("down".into())));
    store.expect_release().never();
    let svc = service(store);
    let k = key("order-42");
    let in_flight = run(futures_executor::block_on(svc.begin(request(&k, b"{}"))));
    assert!(futures_executor::block_on(svc.finish(in_flight, &created())).is_err());
}
