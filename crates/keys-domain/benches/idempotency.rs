//! What an `Idempotency-Key` costs a request in CPU, besides its two store round trips: the
//! derivation and fingerprint (every such request), sealing (a first request that succeeded),
//! opening (a replay). Run with `cargo bench -p keys-domain --bench idempotency`.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keys_domain::UserId;
use keys_domain::idempotency_key::IdempotencyKey;
use keys_domain::random::OsRandom;
use keys_domain::sealed_response::{RecordedResponse, open, seal};

fn idempotency(c: &mut Criterion) {
    let user = UserId::new("usr_0123456789abcdefghij");
    let value = b"5f0c7a8e-3b1d-4c2a-9e6f-1a2b3c4d5e6f";
    let body = br#"{"template_id":"classic","fields":{"name":"Ada","title":"Engineer"}}"#;
    // A render's response, about the size of a real one.
    let response = RecordedResponse {
        status: 201,
        body: vec![b'x'; 300],
    };
    let secrets = IdempotencyKey::parse(value).unwrap().derive(&user);
    let sealed = seal(&secrets, &response, &OsRandom);

    c.bench_function("idempotency_parse_derive_fingerprint", |b| {
        b.iter(|| {
            let s = IdempotencyKey::parse(black_box(value))
                .unwrap()
                .derive(&user);
            s.fingerprint("POST", "/api/v1/public/documents", black_box(body))
        });
    });
    c.bench_function("idempotency_seal_300_bytes", |b| {
        b.iter(|| seal(&secrets, black_box(&response), &OsRandom));
    });
    c.bench_function("idempotency_open_300_bytes", |b| {
        b.iter(|| open(&secrets, black_box(&sealed)).unwrap());
    });
}

criterion_group!(benches, idempotency);
criterion_main!(benches);
