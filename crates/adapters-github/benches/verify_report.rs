//! What a secret-scanning report costs before any store is asked: the signature check over the
//! raw body (a 1,000-token report, about 180 KB) with a cached key. Run with
//! `cargo bench -p adapters-github`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use adapters_github::GithubReportVerifier;
use adapters_github::testing::{TestSigner, key_list};
use criterion::{Criterion, criterion_group, criterion_main};
use keys_domain::ports::ReportVerifier;
use keys_domain::report_digest::ReportDigest;

fn verify_report(c: &mut Criterion) {
    let signer = TestSigner::generate("bench");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    std::fs::write(&path, key_list(&[(&signer, true)])).unwrap();
    let verifier = GithubReportVerifier::new(&format!("file://{}", path.display())).unwrap();
    let body = serde_json::to_vec(
        &(0..1000)
            .map(|i| {
                serde_json::json!({
                    "token": format!("jt_sk_{i:038}"),
                    "type": "jobtactics_api_key",
                    "url": format!("https://github.com/octo/repo/blob/{i:040}/.env"),
                    "source": "content",
                })
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let signature = signer.sign(&body);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // The first call reads the key list; the bench measures the cached path.
    rt.block_on(verifier.verify("bench", &signature, &ReportDigest::of(&body)))
        .unwrap();
    let digest = ReportDigest::of(&body);
    c.bench_function("verify_1000_token_report", |b| {
        b.iter(|| {
            rt.block_on(verifier.verify("bench", black_box(&signature), black_box(&digest)))
                .unwrap();
        });
    });
    // What the receiver pays in all: the digest as the body streams in, then the check.
    c.bench_function("hash_and_verify_1000_token_report", |b| {
        b.iter(|| {
            let digest = ReportDigest::of(black_box(&body));
            rt.block_on(verifier.verify("bench", black_box(&signature), &digest))
                .unwrap();
        });
    });
}

criterion_group!(benches, verify_report);
criterion_main!(benches);
