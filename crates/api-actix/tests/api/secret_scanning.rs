//! `POST /api/v1/secret-scanning/github` over HTTP, on both stores: signatures made with a P-256
//! key pair generated here and served through a `file://` key list; what a report revokes,
//! records and answers; and the audit trail it leaves at `GET /api/v1/keys/{id}/events`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use adapters_github::testing::{TestSigner, key_list};
use keys_domain::random::OsRandom;
use keys_domain::{ApiKeySecret, KeyHash};
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{Backend, TestApp, TestUser, expect_error, parts};

const PATH: &str = "/api/v1/secret-scanning/github";

/// GitHub as the tests play it: signers and the key-list file the app reads.
pub struct FakeGithub {
    pub current: TestSigner,
    pub retired: TestSigner,
    dir: TempDir,
}

impl FakeGithub {
    pub fn new() -> Self {
        let github = Self {
            current: TestSigner::generate("gh-current-1"),
            retired: TestSigner::generate("gh-retired-0"),
            dir: tempfile::tempdir().unwrap(),
        };
        github.publish(&[(&github.current, true), (&github.retired, false)]);
        github
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("secret_scanning.json")
    }

    pub fn publish(&self, keys: &[(&TestSigner, bool)]) {
        std::fs::write(self.path(), key_list(keys)).unwrap();
    }

    pub fn location(&self) -> String {
        format!("file://{}", self.path().display())
    }
}

pub async fn app_with(backend: Backend, github: &FakeGithub) -> TestApp {
    let location = github.location();
    TestApp::spawn_with(backend, |c| c.github_scanning_keys = location).await
}

pub fn report(tokens: &[&str]) -> Vec<u8> {
    let items: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({
                "token": t,
                "type": "jobtactics_api_key",
                "url": "https://github.com/octo/repo/blob/abc123/.env",
                "source": "content",
            })
        })
        .collect();
    serde_json::to_vec(&items).unwrap()
}

pub async fn post_signed(app: &TestApp, signer: &TestSigner, body: Vec<u8>) -> reqwest::Response {
    let signature = signer.sign(&body);
    app.client
        .post(app.url(PATH))
        .header("Content-Type", "application/json")
        .header("Github-Public-Key-Identifier", &signer.identifier)
        .header("Github-Public-Key-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn sha256_hex(token: &str) -> String {
    KeyHash::of(token).to_hex()
}

async fn events(app: &TestApp, user: &TestUser, key_id: &str, query: &str) -> (u16, Value) {
    let res = app
        .dash(
            user,
            Method::GET,
            &format!("/api/v1/keys/{key_id}/events{query}"),
        )
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    (status, body)
}

fn types(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn works(app: &TestApp, key: &str) -> bool {
    app.public_get(key, "/api/v1/public/me").await.status() == 200
}

async fn a_valid_report_revokes_the_key_records_the_leak_and_labels_every_token(backend: Backend) {
    let github = FakeGithub::new();
    let app = app_with(backend, &github).await;
    let user = app.user(0).await;
    let (created, key) = app.create_key(&user, "leaky").await;
    let id = created["id"].as_str().unwrap();
    assert!(works(&app, &key).await);
    let stranger = ApiKeySecret::generate(&OsRandom);
    let junk = "not a key at all";

    let res = post_signed(
        &app,
        &github.current,
        report(&[&key, stranger.expose(), junk]),
    )
    .await;
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!([
            {"token_hash": sha256_hex(&key), "token_type": "jobtactics_api_key", "label": "true_positive"},
            {"token_hash": sha256_hex(stranger.expose()), "token_type": "jobtactics_api_key", "label": "false_positive"},
            {"token_hash": sha256_hex(junk), "token_type": "jobtactics_api_key", "label": "false_positive"},
        ])
    );
    assert!(
        !body.to_string().contains(&key),
        "the answer echoes the key"
    );

    // Revoked at once, with its reason; refused.
    let object = app.get_key(&user, id).await;
    assert_eq!(object["status"], "revoked");
    assert_eq!(object["revocation_reason"], "leaked");
    let (err, _) = expect_error(
        app.public_get(&key, "/api/v1/public/me").await,
        401,
        "revoked_api_key",
    )
    .await;
    assert!(!err.to_string().contains(&key));

    // The trail: revoked (by GitHub's scanning) on top of the report, on top of the creation.
    let (status, page) = events(&app, &user, id, "").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(types(&page), ["revoked", "leak_reported", "created"]);
    let data = page["data"].as_array().unwrap();
    assert_eq!(data[0]["actor"], "github_secret_scanning");
    assert_eq!(data[0]["detail"], json!({"reason": "leaked"}));
    assert_eq!(data[1]["actor"], "github_secret_scanning");
    assert_eq!(
        data[1]["detail"],
        json!({"url": "https://github.com/octo/repo/blob/abc123/.env", "source": "content"})
    );
    assert_eq!(data[2]["actor"], "user");
    assert!(data[0]["at"].as_str().unwrap().ends_with('Z'));
    assert!(!page.to_string().contains(&key));

    // Reported again: still a true positive, nothing new recorded.
    let res = post_signed(&app, &github.current, report(&[&key])).await;
    let (status, _, again) = parts(res).await;
    assert_eq!(status, 200);
    assert_eq!(again[0]["label"], "true_positive");
    let (_, page) = events(&app, &user, id, "").await;
    assert_eq!(types(&page), ["revoked", "leak_reported", "created"]);
    app.stop().await;
}

async fn bad_signatures_are_refused_and_revoke_nothing(backend: Backend) {
    let github = FakeGithub::new();
    let app = app_with(backend, &github).await;
    let user = app.user(0).await;
    let (_, key) = app.create_key(&user, "kept").await;
    let body = report(&[&key]);
    let stranger = TestSigner::generate("gh-unknown-9");
    let send = |id: Option<&str>, sig: Option<String>, body: Vec<u8>| {
        let mut req = app
            .client
            .post(app.url(PATH))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(id) = id {
            req = req.header("Github-Public-Key-Identifier", id);
        }
        if let Some(sig) = sig {
            req = req.header("Github-Public-Key-Signature", sig);
        }
        req.send()
    };
    let good = github.current.sign(&body);
    let mut tampered = body.clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 0x01;
    let cases = vec![
        ("no headers", send(None, None, body.clone()).await.unwrap()),
        (
            "no signature",
            send(Some(&github.current.identifier), None, body.clone())
                .await
                .unwrap(),
        ),
        (
            "no identifier",
            send(None, Some(good.clone()), body.clone()).await.unwrap(),
        ),
        (
            "not base64",
            send(
                Some(&github.current.identifier),
                Some("%%%".into()),
                body.clone(),
            )
            .await
            .unwrap(),
        ),
        (
            "not DER",
            send(
                Some(&github.current.identifier),
                Some("AAAA".into()),
                body.clone(),
            )
            .await
            .unwrap(),
        ),
        (
            "another key's signature",
            send(
                Some(&github.current.identifier),
                Some(stranger.sign(&body)),
                body.clone(),
            )
            .await
            .unwrap(),
        ),
        (
            "unknown identifier",
            send(
                Some(&stranger.identifier),
                Some(stranger.sign(&body)),
                body.clone(),
            )
            .await
            .unwrap(),
        ),
        (
            "retired key",
            send(
                Some(&github.retired.identifier),
                Some(github.retired.sign(&body)),
                body.clone(),
            )
            .await
            .unwrap(),
        ),
        (
            "tampered body",
            send(
                Some(&github.current.identifier),
                Some(good.clone()),
                tampered,
            )
            .await
            .unwrap(),
        ),
    ];
    for (what, res) in cases {
        let (err, headers) = expect_error(res, 401, "invalid_signature").await;
        assert!(headers.get("www-authenticate").is_some(), "{what}");
        assert!(!err.to_string().contains(&key), "{what}: {err}");
        assert!(works(&app, &key).await, "{what} revoked the key");
    }
    app.stop().await;
}

async fn malformed_and_empty_reports(backend: Backend) {
    let github = FakeGithub::new();
    let app = app_with(backend, &github).await;
    for body in [
        &b"{\"token\": 1}"[..],
        b"not json",
        b"[{\"type\": \"x\"}]",
        b"",
    ] {
        let res = post_signed(&app, &github.current, body.to_vec()).await;
        expect_error(res, 400, "invalid_request").await;
    }
    let res = post_signed(&app, &github.current, b"[]".to_vec()).await;
    let (status, _, body) = parts(res).await;
    assert_eq!((status, body), (200, json!([])));
    // Over 1 MiB: 413 before anything is verified. The answer reaches a client still sending
    // its body (the server reads it first), whether just over or megabytes over the limit.
    for size in [1024 * 1024 + 1, 3 * 1024 * 1024] {
        let big = vec![b' '; size];
        let res = post_signed(&app, &github.current, big).await;
        expect_error(res, 413, "payload_too_large").await;
    }
    // Just under 1 MiB of valid report is read.
    let mut near = report(&["x"]);
    near.resize(1024 * 1024 - 16, b' ');
    let res = post_signed(&app, &github.current, near).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

async fn a_thousand_tokens_in_one_report_are_all_labelled(backend: Backend) {
    let github = FakeGithub::new();
    let app = app_with(backend, &github).await;
    let user = app.user(0).await;
    let mut ours = Vec::new();
    for i in 0..5 {
        ours.push(app.create_key(&user, &format!("bulk-{i}")).await.1);
    }
    let strangers: Vec<ApiKeySecret> = (0..990)
        .map(|_| ApiKeySecret::generate(&OsRandom))
        .collect();
    let mut tokens: Vec<&str> = strangers.iter().map(ApiKeySecret::expose).collect();
    tokens.extend(ours.iter().map(String::as_str));
    tokens.extend(["jt_sk_short", "x", "", "jt_sk_", "ghp_abc"]);
    assert_eq!(tokens.len(), 1000);
    let started = Instant::now();
    let res = post_signed(&app, &github.current, report(&tokens)).await;
    let took = started.elapsed();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 200);
    let labels = body.as_array().unwrap();
    assert_eq!(labels.len(), 1000);
    let positives = labels
        .iter()
        .filter(|l| l["label"] == "true_positive")
        .count();
    assert_eq!(positives, 5);
    for key in &ours {
        assert!(!works(&app, key).await);
    }
    // A figure for docs/secret-scanning.md, not a pass/fail bound (GitHub waits 30 s).
    eprintln!("{backend:?}: 1000 tokens (5 ours) answered in {took:?}");
    app.stop().await;
}

async fn concurrent_reports_of_one_key_revoke_it_once(backend: Backend) {
    let github = FakeGithub::new();
    let app = app_with(backend, &github).await;
    let user = app.user(0).await;
    let (created, key) = app.create_key(&user, "raced").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let body = report(&[&key]);
    let sends: Vec<_> = (0..8)
        .map(|_| post_signed(&app, &github.current, body.clone()))
        .collect();
    for res in futures_util::future::join_all(sends).await {
        let (status, _, labels) = parts(res).await;
        assert_eq!(status, 200);
        assert_eq!(labels[0]["label"], "true_positive");
    }
    let (_, page) = events(&app, &user, &id, "").await;
    assert_eq!(types(&page), ["revoked", "leak_reported", "created"]);
    app.stop().await;
}

async fn an_unknown_identifier_re_reads_the_key_list(backend: Backend) {
    let github = FakeGithub::new();
    let app = app_with(backend, &github).await;
    let user = app.user(0).await;
    let (_, key) = app.create_key(&user, "rotated-signer").await;
    // Warm the cache with the first list.
    let res = post_signed(&app, &github.current, report(&["nothing"])).await;
    assert_eq!(res.status(), 200);
    // GitHub publishes a new key; a report signed with it makes the app read the list again.
    let next = TestSigner::generate("gh-current-2");
    github.publish(&[(&github.current, false), (&next, true)]);
    // Re-reads prompted by unknown identifiers are at most one a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = post_signed(&app, &next, report(&[&key])).await;
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["label"], "true_positive");
    assert!(!works(&app, &key).await);
    // The old key is retired now.
    let res = post_signed(&app, &github.current, report(&["x"])).await;
    expect_error(res, 401, "invalid_signature").await;
    app.stop().await;
}

async fn the_endpoint_is_outside_the_failed_authentication_limit(backend: Backend) {
    let github = FakeGithub::new();
    let location = github.location();
    let app = TestApp::spawn_with(backend, |c| {
        c.github_scanning_keys = location;
        c.auth_failures_per_minute = 3;
    })
    .await;
    // Bad signatures do not count as failed authentications...
    for _ in 0..6 {
        let res = app
            .client
            .post(app.url(PATH))
            .header("Github-Public-Key-Identifier", "nope")
            .header("Github-Public-Key-Signature", "AAAA")
            .body("[]")
            .send()
            .await
            .unwrap();
        expect_error(res, 401, "invalid_signature").await;
    }
    // ...and an address over the limit (bad API keys) can still deliver reports.
    for _ in 0..5 {
        let _ = app.public_get("jt_sk_bad", "/api/v1/public/me").await;
    }
    expect_error(
        app.public_get("jt_sk_bad", "/api/v1/public/me").await,
        429,
        "rate_limited",
    )
    .await;
    let res = post_signed(&app, &github.current, b"[]".to_vec()).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

async fn the_audit_trail_pages_newest_first_and_is_the_owner_s_alone(backend: Backend) {
    let github = FakeGithub::new();
    let app = app_with(backend, &github).await;
    let user = app.user(0).await;
    let (created, _) = app.create_key(&user, "trail").await;
    let id = created["id"].as_str().unwrap().to_owned();
    // created, then rotated with a grace period (rotated + revocation_scheduled).
    let res = app
        .dash(&user, Method::POST, &format!("/api/v1/keys/{id}/rotate"))
        .json(&json!({"name": "trail-2", "grace_period_seconds": 3600}))
        .send()
        .await
        .unwrap();
    let (status, _, rotated) = parts(res).await;
    assert_eq!(status, 201);
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get_key(&user, &id).await["revocation_reason"],
        Value::Null
    );
    // Then revoked by its owner.
    let res = app
        .dash(&user, Method::POST, &format!("/api/v1/keys/{id}/revoke"))
        .send()
        .await
        .unwrap();
    let (_, _, revoked) = parts(res).await;
    assert_eq!(revoked["revocation_reason"], "user");

    let (_, all) = events(&app, &user, &id, "").await;
    assert_eq!(
        types(&all),
        ["revoked", "revocation_scheduled", "rotated", "created"]
    );
    assert_eq!(all["has_more"], false);
    let data = all["data"].as_array().unwrap();
    assert_eq!(data[0]["detail"], json!({"reason": "user"}));
    assert_eq!(data[2]["detail"], json!({"replaced_by": new_id}));
    assert!(
        data[1]["detail"]["revokes_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    for e in data {
        let mut members: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["actor", "at", "cursor", "detail", "type"]);
    }

    // One at a time, following each page's last cursor.
    let mut seen = Vec::new();
    let mut query = "?limit=1".to_owned();
    loop {
        let (status, page) = events(&app, &user, &id, &query).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(types(&page));
        if page["has_more"] == false {
            break;
        }
        let cursor = page["data"][0]["cursor"].as_str().unwrap();
        query = format!("?limit=1&starting_after={cursor}");
    }
    assert_eq!(seen, types(&all));

    // The replacement's own trail starts with its creation from the old key.
    let (_, new_trail) = events(&app, &user, &new_id, "").await;
    assert_eq!(
        new_trail["data"][0]["detail"],
        json!({"name": "trail-2", "rotated_from": id})
    );

    // Another user's key is not found; bad parameters are 400 with the field.
    let other = app.user(0).await;
    let res = app
        .dash(&other, Method::GET, &format!("/api/v1/keys/{id}/events"))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "not_found").await;
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?starting_after=bogus", "starting_after"),
    ] {
        let res = app
            .dash(
                &user,
                Method::GET,
                &format!("/api/v1/keys/{id}/events{query}"),
            )
            .send()
            .await
            .unwrap();
        let (err, _) = expect_error(res, 400, "invalid_request").await;
        assert_eq!(err["field"], field);
    }
    // An API key is not accepted there.
    let (_, key) = app.create_key(&user, "api").await;
    let res = app
        .public(&key, Method::GET, &format!("/api/v1/keys/{id}/events"))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "api_key_not_accepted").await;
    app.stop().await;
}

async fn a_rotation_without_grace_records_its_reason(backend: Backend) {
    let github = FakeGithub::new();
    let app = app_with(backend, &github).await;
    let user = app.user(0).await;
    let (created, _) = app.create_key(&user, "now").await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["revocation_reason"], Value::Null);
    let res = app
        .dash(&user, Method::POST, &format!("/api/v1/keys/{id}/rotate"))
        .json(&json!({"name": "now-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        app.get_key(&user, &id).await["revocation_reason"],
        "rotation"
    );
    let (_, trail) = events(&app, &user, &id, "").await;
    assert_eq!(types(&trail), ["revoked", "rotated", "created"]);
    assert_eq!(trail["data"][0]["detail"], json!({"reason": "rotation"}));
    app.stop().await;
}

/// 1 MiB reports announced with headers that cannot verify (none; a signature that is not DER;
/// an identifier GitHub never published): each refused at once, its body never waited for
/// (only 10 of its bytes are ever sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_whose_headers_cannot_verify_is_refused_before_its_body_arrives() {
    let github = FakeGithub::new();
    let signer = adapters_github::testing::TestSigner::generate("known");
    github.publish(&[(&signer, true)]);
    let app = app_with(Backend::Sqlite, &github).await;
    let good_signature = signer.sign(b"[]");
    let cases = [
        String::new(),
        format!(
            "Github-Public-Key-Identifier: {}\r\nGithub-Public-Key-Signature: AAAA\r\n",
            signer.identifier
        ),
        format!(
            "Github-Public-Key-Identifier: never-published\r\nGithub-Public-Key-Signature: {good_signature}\r\n"
        ),
    ];
    for headers in cases {
        let head = format!(
            "POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}\
             Content-Length: {}\r\n\r\n[{{\"token\"",
            1024 * 1024
        );
        let got = crate::raw_http::exchange(
            &app.base,
            head,
            Vec::new(),
            Duration::from_secs(60),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(got.status(), 401, "{headers}: {}", got.text);
        assert!(got.text.contains("invalid_signature"), "{}", got.text);
        assert!(
            got.elapsed < Duration::from_secs(5),
            "answered after {:?}",
            got.elapsed
        );
    }
}

/// Eight reports whose bodies are still arriving hold every slot: a ninth is 503 with
/// `Retry-After` before its body is read, and once the slots free up a report is handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_eight_reports_are_read_at_once() {
    let github = FakeGithub::new();
    let signer = adapters_github::testing::TestSigner::generate("slots");
    github.publish(&[(&signer, true)]);
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.github_scanning_keys = github.location();
        c.tuning.body_timeout = Duration::from_secs(3);
    })
    .await;
    let head = |length: usize| {
        format!(
            "POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Github-Public-Key-Identifier: {}\r\nGithub-Public-Key-Signature: {}\r\n\
             Content-Length: {length}\r\n\r\n[",
            signer.identifier,
            signer.sign(b"[]")
        )
    };
    // Eight bodies that never finish: each holds a slot until the body deadline.
    let holders: Vec<_> = (0..8)
        .map(|_| {
            let base = app.base.clone();
            let head = head(1000);
            tokio::spawn(async move {
                crate::raw_http::exchange(
                    &base,
                    head,
                    Vec::new(),
                    Duration::from_secs(60),
                    Duration::from_secs(8),
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ninth = crate::raw_http::exchange(
        &app.base,
        head(1000),
        Vec::new(),
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(ninth.status(), 503, "{}", ninth.text);
    assert!(
        ninth.text.to_ascii_lowercase().contains("retry-after:"),
        "{}",
        ninth.text
    );
    for holder in holders {
        let held = holder.await.unwrap();
        assert_eq!(held.status(), 408, "{}", held.text);
    }
    let res = post_signed(&app, &signer, report(&["not-a-key"])).await;
    assert_eq!(res.status(), 200, "a slot is free again");
}

on_both_backends!(
    a_valid_report_revokes_the_key_records_the_leak_and_labels_every_token,
    bad_signatures_are_refused_and_revoke_nothing,
    malformed_and_empty_reports,
    a_thousand_tokens_in_one_report_are_all_labelled,
    concurrent_reports_of_one_key_revoke_it_once,
    an_unknown_identifier_re_reads_the_key_list,
    the_endpoint_is_outside_the_failed_authentication_limit,
    the_audit_trail_pages_newest_first_and_is_the_owner_s_alone,
    a_rotation_without_grace_records_its_reason,
);
