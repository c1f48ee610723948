//! The per-request cost of the key format: what a malformed key's 401 and an authenticated
//! request pay before any I/O. Run with `cargo bench -p keys-domain`.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keys_domain::key_hash::KeyHash;
use keys_domain::random::OsRandom;
use keys_domain::{ApiKeySecret, KeyState, Timestamp};

fn key_ops(c: &mut Criterion) {
    let key = ApiKeySecret::generate(&OsRandom);
    let text = key.expose().to_owned();
    let mut bad_checksum = text.clone();
    bad_checksum.replace_range(43..44, if text.ends_with('0') { "1" } else { "0" });
    let stored = key.hash();

    c.bench_function("generate", |b| {
        b.iter(|| ApiKeySecret::generate(black_box(&OsRandom)));
    });
    c.bench_function("parse_valid", |b| {
        b.iter(|| ApiKeySecret::parse(black_box(&text)).unwrap());
    });
    c.bench_function("parse_bad_checksum", |b| {
        b.iter(|| ApiKeySecret::parse(black_box(&bad_checksum)).unwrap_err());
    });
    c.bench_function("sha256_key", |b| b.iter(|| KeyHash::of(black_box(&text))));
    c.bench_function("authenticate_pure_path", |b| {
        // parse → hash → constant-time compare → state check: everything but the cache lookup.
        let now = Timestamp::from_millis(1_800_000_000_000);
        b.iter(|| {
            let k = ApiKeySecret::parse(black_box(&text)).unwrap();
            let h = k.hash();
            h.ct_eq(black_box(&stored)) && KeyState::Active.is_accepted(now)
        });
    });
    c.bench_function("preview", |b| b.iter(|| key.preview()));
}

criterion_group!(benches, key_ops);
criterion_main!(benches);
