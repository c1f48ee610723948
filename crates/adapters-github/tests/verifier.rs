//! `GithubReportVerifier` against a `file://` key list made here with a fresh P-256 key pair.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use adapters_github::testing::{TestSigner, key_list};
use adapters_github::{GithubReportVerifier, KeyListSource};
use keys_domain::ports::{ReportVerifier, VerifyError};
use keys_domain::report_digest::ReportDigest;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(keys: &[(&TestSigner, bool)]) -> Self {
        let f = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        f.publish(keys);
        f
    }

    fn publish(&self, keys: &[(&TestSigner, bool)]) {
        std::fs::write(self.dir.path().join("keys.json"), key_list(keys)).unwrap();
    }

    fn verifier(&self) -> GithubReportVerifier {
        let location = format!("file://{}", self.dir.path().join("keys.json").display());
        GithubReportVerifier::new(&location)
            .unwrap()
            .with_reread_interval(Duration::ZERO)
    }
}

const BODY: &[u8] = br#"[{"token":"x","type":"t","url":"u","source":"content"}]"#;

#[tokio::test]
async fn a_signature_over_the_exact_body_with_a_current_key_verifies() {
    let current = TestSigner::generate("k1");
    let f = Fixture::new(&[(&current, true)]);
    let v = f.verifier();
    assert_eq!(
        v.verify("k1", &current.sign(BODY), &ReportDigest::of(BODY))
            .await,
        Ok(())
    );
    // Surrounding whitespace in the headers is tolerated.
    let padded = format!(" {} ", current.sign(BODY));
    assert_eq!(
        v.verify(" k1", &padded, &ReportDigest::of(BODY)).await,
        Ok(())
    );
}

#[tokio::test]
async fn everything_else_is_invalid() {
    let current = TestSigner::generate("k1");
    let retired = TestSigner::generate("k0");
    let stranger = TestSigner::generate("k9");
    let f = Fixture::new(&[(&current, true), (&retired, false)]);
    let v = f.verifier();
    let mut tampered = BODY.to_vec();
    tampered[3] ^= 1;
    let cases = [
        ("k1", current.sign(&tampered), BODY.to_vec()),
        ("k1", current.sign(BODY), tampered.clone()),
        ("k1", stranger.sign(BODY), BODY.to_vec()),
        ("k9", stranger.sign(BODY), BODY.to_vec()),
        ("k0", retired.sign(BODY), BODY.to_vec()),
        ("k1", "not base64!".to_owned(), BODY.to_vec()),
        ("k1", "AAAA".to_owned(), BODY.to_vec()),
        ("k1", "A".repeat(500), BODY.to_vec()),
        ("k1", String::new(), BODY.to_vec()),
    ];
    for (id, sig, body) in cases {
        assert!(
            matches!(
                v.verify(id, &sig, &ReportDigest::of(&body)).await,
                Err(VerifyError::Invalid(_))
            ),
            "{id} {sig}"
        );
    }
}

#[tokio::test]
async fn an_unknown_identifier_re_reads_the_list_once() {
    let old = TestSigner::generate("k1");
    let f = Fixture::new(&[(&old, true)]);
    let v = f.verifier();
    assert_eq!(
        v.verify("k1", &old.sign(BODY), &ReportDigest::of(BODY))
            .await,
        Ok(())
    );
    let new = TestSigner::generate("k2");
    f.publish(&[(&old, false), (&new, true)]);
    // Still cached: k1 is current until the list is read again...
    assert_eq!(
        v.verify("k1", &old.sign(BODY), &ReportDigest::of(BODY))
            .await,
        Ok(())
    );
    // ...which an unknown identifier triggers.
    assert_eq!(
        v.verify("k2", &new.sign(BODY), &ReportDigest::of(BODY))
            .await,
        Ok(())
    );
    assert!(matches!(
        v.verify("k1", &old.sign(BODY), &ReportDigest::of(BODY))
            .await,
        Err(VerifyError::Invalid(_))
    ));
}

#[tokio::test]
async fn re_reads_are_rate_limited_by_default() {
    let k = TestSigner::generate("k1");
    let f = Fixture::new(&[(&k, true)]);
    let location = format!("file://{}", f.dir.path().join("keys.json").display());
    let v = GithubReportVerifier::new(&location).unwrap();
    assert_eq!(
        v.verify("k1", &k.sign(BODY), &ReportDigest::of(BODY)).await,
        Ok(())
    );
    let new = TestSigner::generate("k2");
    f.publish(&[(&k, true), (&new, true)]);
    // Within a second of the last read, an unknown identifier does not read again.
    assert!(
        v.verify("k2", &new.sign(BODY), &ReportDigest::of(BODY))
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        v.verify("k2", &new.sign(BODY), &ReportDigest::of(BODY))
            .await,
        Ok(())
    );
}

#[tokio::test]
async fn an_unreadable_list_is_unavailable_and_a_stale_one_keeps_working() {
    let k = TestSigner::generate("k1");
    let f = Fixture::new(&[(&k, true)]);
    let missing = format!("file://{}/nope.json", f.dir.path().display());
    let v = GithubReportVerifier::new(&missing).unwrap();
    assert!(matches!(
        v.verify("k1", &k.sign(BODY), &ReportDigest::of(BODY)).await,
        Err(VerifyError::Unavailable(_))
    ));
    let v = f.verifier();
    assert_eq!(
        v.verify("k1", &k.sign(BODY), &ReportDigest::of(BODY)).await,
        Ok(())
    );
    std::fs::write(f.dir.path().join("keys.json"), "garbage").unwrap();
    // The unknown identifier's re-read fails; the cached list still verifies k1.
    assert!(
        v.verify("k2", &k.sign(BODY), &ReportDigest::of(BODY))
            .await
            .is_err()
    );
    assert_eq!(
        v.verify("k1", &k.sign(BODY), &ReportDigest::of(BODY)).await,
        Ok(())
    );
}

/// While the key source fails, a 3 s stream of forged identifiers (one request every 5 ms)
/// reads it at most 3 times: reads back off after a failure (1 s, 2 s, …).
#[tokio::test]
async fn forged_identifiers_while_the_source_fails_read_it_at_most_three_times_in_3_s() {
    let k = TestSigner::generate("k1");
    let f = Fixture::new(&[(&k, true)]);
    let location = format!("file://{}", f.dir.path().join("keys.json").display());
    let v = GithubReportVerifier::new(&location).unwrap();
    assert_eq!(
        v.verify("k1", &k.sign(BODY), &ReportDigest::of(BODY)).await,
        Ok(())
    );
    std::fs::remove_file(f.dir.path().join("keys.json")).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = v.reads();
    let started = std::time::Instant::now();
    let mut n = 0_u32;
    while started.elapsed() < Duration::from_secs(3) {
        n += 1;
        let forged = format!("forged-{n}");
        assert!(
            v.verify(&forged, &k.sign(BODY), &ReportDigest::of(BODY))
                .await
                .is_err()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reads = v.reads() - before;
    assert!(
        reads <= 3,
        "{reads} reads for {n} forged identifiers in 3 s"
    );
    // The list read before the failure still verifies its key.
    assert_eq!(
        v.verify("k1", &k.sign(BODY), &ReportDigest::of(BODY)).await,
        Ok(())
    );
}

/// A key-list server that answers its first request with `list` and never answers the others.
async fn server_that_hangs_after_one_answer(list: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        let mut first = true;
        while let Ok((mut conn, _)) = listener.accept().await {
            if first {
                first = false;
                let mut buf = [0_u8; 4096];
                let _ = conn.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{list}",
                    list.len()
                );
                conn.write_all(reply.as_bytes()).await.unwrap();
            } else {
                held.push(conn); // read nothing, answer nothing
            }
        }
    });
    format!("http://{addr}/keys")
}

/// While reads prompted by forged identifiers hang, a correctly signed report for a known key
/// is answered at once: it never waits for a read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_key_is_never_kept_waiting_by_a_hanging_read() {
    let k = TestSigner::generate("k1");
    let url = server_that_hangs_after_one_answer(key_list(&[(&k, true)])).await;
    let v = std::sync::Arc::new(
        GithubReportVerifier::new(&url)
            .unwrap()
            .with_reread_interval(Duration::ZERO),
    );
    assert_eq!(
        v.verify("k1", &k.sign(BODY), &ReportDigest::of(BODY)).await,
        Ok(())
    );
    let forged: Vec<_> = (0..4)
        .map(|n| {
            let (v, sig) = (v.clone(), k.sign(BODY));
            tokio::spawn(async move {
                v.verify(&format!("forged-{n}"), &sig, &ReportDigest::of(BODY))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    assert_eq!(
        v.verify("k1", &k.sign(BODY), &ReportDigest::of(BODY)).await,
        Ok(())
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "a known key waited {:?}",
        started.elapsed()
    );
    let waited = std::time::Instant::now();
    for f in forged {
        assert!(f.await.unwrap().is_err());
    }
    // One read in flight at a time, each at most 2 s.
    assert!(
        waited.elapsed() < Duration::from_secs(6),
        "{:?}",
        waited.elapsed()
    );
    assert!(v.reads() <= 5, "{} reads", v.reads());
}

#[test]
fn locations_are_urls_or_absolute_files() {
    assert_eq!(
        KeyListSource::parse("file:///etc/keys.json").unwrap(),
        KeyListSource::File("/etc/keys.json".into())
    );
    assert!(KeyListSource::parse("file://relative.json").is_err());
    assert!(KeyListSource::parse("ftp://x").is_err());
    assert!(KeyListSource::parse(adapters_github::DEFAULT_KEYS_URL).is_ok());
}

/// GitHub's own documented example (its partner-program page): a real key list entry, body and
/// signature, so the format GitHub actually sends is verified, not only our test signer's.
#[tokio::test]
async fn github_s_documented_example_verifies() {
    let id = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
    let pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----\n";
    let body = br#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
    let signature = "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let list = serde_json::json!({"public_keys": [{"key_identifier": id, "key": pem, "is_current": true}]});
    std::fs::write(&path, list.to_string()).unwrap();
    let v = GithubReportVerifier::new(&format!("file://{}", path.display())).unwrap();
    assert_eq!(
        v.verify(id, signature, &ReportDigest::of(body)).await,
        Ok(())
    );
    assert!(
        v.verify(id, signature, &ReportDigest::of(&body[1..]))
            .await
            .is_err()
    );
}
