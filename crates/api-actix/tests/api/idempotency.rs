//! `Idempotency-Key` (issue 13 item 1): a retry gets the first response again and nothing is
//! done or charged twice, across restarts and instances; the store never holds a readable key.

use adapters_postgres::testing::{idempotency_record_bytes, idempotency_record_count};
use keys_domain::GrantAmount;
use keys_domain::idempotency_key::IdempotencyKey;
use keys_domain::ports::{ClaimOutcome, IdempotencyClaim, IdempotencyStore};
use keys_domain::use_cases::REPLAY_WINDOW;
use keys_domain::{Timestamp, UserId};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, expect_error, header, parts, unique};

const RENDER: &str = "/api/v1/public/documents";
const KEYS: &str = "/api/v1/keys";

fn render_body(name: &str) -> Value {
    json!({ "template_id": "classic", "fields": { "name": name } })
}

fn render(app: &TestApp, key: &str, idem: &str, body: &Value) -> RequestBuilder {
    app.public(key, Method::POST, RENDER)
        .header("Idempotency-Key", idem)
        .json(body)
}

fn replayed(h: &HeaderMap) -> bool {
    h.get("idempotent-replayed").is_some_and(|v| v == "true")
}

async fn send(req: RequestBuilder) -> (u16, HeaderMap, Value) {
    parts(req.send().await.unwrap()).await
}

async fn document_count(app: &TestApp, key: &str) -> usize {
    let (status, _, body) = parts(app.public_get(key, &format!("{RENDER}?limit=100")).await).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().len()
}

/// A user with `credits` and one API key.
async fn payer(app: &TestApp, credits: u64) -> (TestUser, String) {
    let user = app.user(credits).await;
    let (_, key) = app.create_key(&user, "ci").await;
    (user, key)
}

async fn a_retried_render_is_replayed_and_charged_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, key) = payer(&app, 10).await;
    let idem = unique("render-");

    let (s1, h1, b1) = send(render(&app, &key, &idem, &render_body("Ada"))).await;
    assert_eq!(s1, 201, "{b1}");
    assert!(!replayed(&h1));
    let (s2, h2, b2) = send(render(&app, &key, &idem, &render_body("Ada"))).await;
    assert_eq!((s2, &b2), (201, &b1), "the same status and body");
    assert!(replayed(&h2));
    assert_eq!(header(&h2, "cache-control"), "no-store");
    assert_eq!(header(&h2, "content-type"), "application/json");
    // The replay passed through the public scope: it carries the rate-limit headers too.
    assert!(h2.get("ratelimit-remaining").is_some());

    assert_eq!(app.balance(&user).await, 9, "one credit for render + retry");
    assert_eq!(document_count(&app, &key).await, 1);
    // Another key value is another request.
    let (s3, h3, b3) = send(render(&app, &key, &unique("render-"), &render_body("Ada"))).await;
    assert_eq!(s3, 201);
    assert!(!replayed(&h3));
    assert_ne!(b3["id"], b1["id"]);
    assert_eq!(app.balance(&user).await, 8);
}

async fn a_replayed_key_creation_returns_the_same_working_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(5).await;
    let idem = unique("create-");
    let create = || {
        app.dash(&user, Method::POST, KEYS)
            .header("Idempotency-Key", &idem)
            .json(&json!({ "name": "ci-bot" }))
    };
    let (s1, h1, first) = send(create()).await;
    assert_eq!(s1, 201, "{first}");
    assert_eq!(header(&h1, "cache-control"), "no-store");
    let (s2, h2, again) = send(create()).await;
    assert_eq!((s2, &again), (201, &first));
    assert!(replayed(&h2));
    assert_eq!(header(&h2, "cache-control"), "no-store");
    let full = again["key"].as_str().unwrap();
    assert_eq!(
        app.public_get(full, "/api/v1/public/me").await.status(),
        200,
        "the replayed key works"
    );
    let (_, _, list) = send(app.dash(&user, Method::GET, KEYS)).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "one key created");

    // Rotation: the same new key twice, the old key rotated once.
    let id = first["id"].as_str().unwrap();
    let rotate_idem = unique("rotate-");
    let rotate = || {
        app.dash(&user, Method::POST, &format!("{KEYS}/{id}/rotate"))
            .header("Idempotency-Key", &rotate_idem)
            .json(&json!({ "name": "ci-bot-2" }))
    };
    let (r1, _, new1) = send(rotate()).await;
    assert_eq!(r1, 201, "{new1}");
    let (r2, h, new2) = send(rotate()).await;
    assert_eq!((r2, &new2), (201, &new1));
    assert!(replayed(&h));
    assert_eq!(header(&h, "cache-control"), "no-store");
    let new_key = new2["key"].as_str().unwrap();
    assert_eq!(
        app.public_get(new_key, "/api/v1/public/me").await.status(),
        200
    );
    assert_eq!(
        app.public_get(full, "/api/v1/public/me").await.status(),
        401
    );
    let (_, _, list) = send(app.dash(&user, Method::GET, KEYS)).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);

    // What the store keeps holds neither key, nor any `jt_sk_` string, nor the key values.
    let stored = idempotency_record_bytes(&app.store).await;
    assert_eq!(idempotency_record_count(&app.store).await, 2);
    for needle in [full.as_bytes(), new_key.as_bytes(), b"jt_sk_", b"ci-bot"] {
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle),
            "the idempotency table holds {}",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(!stored.windows(idem.len()).any(|w| w == idem.as_bytes()));
}

async fn another_body_method_or_path_is_refused_with_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, key) = payer(&app, 100).await;
    let idem = unique("reuse-");
    let (s, _, _) = send(render(&app, &key, &idem, &render_body("Ada"))).await;
    assert_eq!(s, 201);
    let other_body = render(&app, &key, &idem, &render_body("Grace"))
        .send()
        .await
        .unwrap();
    expect_error(other_body, 422, "idempotency_key_reused").await;
    let other_path = app
        .public(
            &key,
            Method::POST,
            "/api/v1/public/templates/executive/purchase",
        )
        .header("Idempotency-Key", &idem)
        .send()
        .await
        .unwrap();
    expect_error(other_path, 422, "idempotency_key_reused").await;
    assert_eq!(app.balance(&user).await, 99, "the refusals charged nothing");

    // The same value from another user is that user's own key.
    let (other, other_key) = payer(&app, 5).await;
    let (s, h, _) = send(render(&app, &other_key, &idem, &render_body("Grace"))).await;
    assert_eq!(s, 201);
    assert!(!replayed(&h));
    assert_eq!(app.balance(&other).await, 4);

    // A purchase is replayed too (it has no body: the fingerprint is method and path).
    let buy = || {
        app.public(
            &key,
            Method::POST,
            "/api/v1/public/templates/executive/purchase",
        )
        .header("Idempotency-Key", "buy-executive")
    };
    let (b1, _, first) = send(buy()).await;
    assert_eq!(b1, 200, "{first}");
    let (b2, h, again) = send(buy()).await;
    assert_eq!((b2, &again), (200, &first));
    assert!(replayed(&h));
    assert_eq!(app.balance(&user).await, 49);
}

async fn invalid_idempotency_keys_are_400_with_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, key) = payer(&app, 5).await;
    let long = "k".repeat(256);
    for bad in [
        &b""[..],
        long.as_bytes(),
        "caf\u{e9}".as_bytes(),
        b"tab\there",
    ] {
        let res = app
            .public(&key, Method::POST, RENDER)
            .header(
                "Idempotency-Key",
                reqwest::header::HeaderValue::from_bytes(bad).unwrap(),
            )
            .json(&render_body("Ada"))
            .send()
            .await
            .unwrap();
        let (error, _) = expect_error(res, 400, "invalid_request").await;
        assert_eq!(error["field"], "Idempotency-Key", "{error}");
    }
    let twice = app
        .dash(&user, Method::POST, KEYS)
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    expect_error(twice, 400, "invalid_request").await;
    // 255 printable characters, spaces included, are fine.
    let ok = "a ~".repeat(85);
    let (s, _, body) = send(render(&app, &key, &ok, &render_body("Ada"))).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(app.balance(&user).await, 4);
}

async fn concurrent_duplicates_execute_exactly_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, key) = payer(&app, 100).await;
    assert_eq!(
        app.public_get(&key, "/api/v1/public/me").await.status(),
        200
    );
    let idem = unique("burst-");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let req = render(&app, &key, &idem, &render_body("Ada"));
            tokio::spawn(async move { parts(req.send().await.unwrap()).await })
        })
        .collect();
    let mut executed = Vec::new();
    let mut replays = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (status, headers, body) = t.await.unwrap();
        match status {
            201 if replayed(&headers) => replays.push(body),
            201 => executed.push(body),
            409 => {
                assert_eq!(body["error"]["type"], "conflict", "{body}");
                conflicts += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    eprintln!(
        "1 executed, {conflicts} conflicts, {} replays",
        replays.len()
    );
    assert_eq!(
        executed.len(),
        1,
        "{conflicts} conflicts, {} replays",
        replays.len()
    );
    assert!(replays.iter().all(|b| *b == executed[0]));
    assert_eq!(app.balance(&user).await, 99, "one debit");
    assert_eq!(app.ledger_len(&user).await, 2, "the grant and one debit");
    assert_eq!(document_count(&app, &key).await, 1, "one document");
    // Once the first finished, every retry is a replay.
    let (s, h, b) = send(render(&app, &key, &idem, &render_body("Ada"))).await;
    assert_eq!((s, &b), (201, &executed[0]));
    assert!(replayed(&h));
}

async fn a_refused_request_is_not_kept_so_a_retry_after_a_top_up_runs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, key) = payer(&app, 0).await;
    let idem = unique("topup-");
    let res = render(&app, &key, &idem, &render_body("Ada"))
        .send()
        .await
        .unwrap();
    expect_error(res, 402, "insufficient_credits").await;
    assert_eq!(idempotency_record_count(&app.store).await, 0, "released");
    api_actix::wiring::user_service(&app.store)
        .grant(user.id.as_str(), GrantAmount::new(3).unwrap())
        .await
        .unwrap();
    let (s, h, body) = send(render(&app, &key, &idem, &render_body("Ada"))).await;
    assert_eq!(s, 201, "{body}");
    assert!(!replayed(&h));
    assert_eq!(body["balance"], 2);
}

async fn requests_without_the_header_store_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, key) = payer(&app, 5).await;
    for _ in 0..2 {
        let res = app
            .public(&key, Method::POST, RENDER)
            .json(&render_body("Ada"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    assert_eq!(
        app.balance(&user).await,
        3,
        "without the header, each request runs"
    );
    assert_eq!(idempotency_record_count(&app.store).await, 0);
}

/// The state a crash leaves when the process dies after claiming a key (possibly after the
/// charge committed) and before storing the response: a running record. Retries get 409 and
/// nothing runs again until it expires (docs/idempotency.md).
async fn a_record_left_running_by_a_crash_is_409_and_never_charges_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, key) = payer(&app, 5).await;
    let idem = "crashed-request";
    let body = serde_json::to_vec(&render_body("Ada")).unwrap();
    let secrets = IdempotencyKey::parse(idem.as_bytes())
        .unwrap()
        .derive(&UserId::new(user.id.as_str()));
    let now = Timestamp::from_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    );
    let claimed = app
        .store
        .claim(IdempotencyClaim {
            lookup: secrets.lookup,
            request: secrets.fingerprint("POST", RENDER, &body),
            created_at: now,
            expires_at: now.plus(REPLAY_WINDOW),
        })
        .await
        .unwrap();
    assert_eq!(claimed, ClaimOutcome::Claimed);
    for _ in 0..3 {
        let res: Response = app
            .public(&key, Method::POST, RENDER)
            .header("Idempotency-Key", idem)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        expect_error(res, 409, "conflict").await;
    }
    assert_eq!(app.balance(&user).await, 5);
    assert_eq!(document_count(&app, &key).await, 0);
    // Once the record expires (the sweeper's job), the key is free again.
    app.store
        .sweep_expired(now.plus(REPLAY_WINDOW))
        .await
        .unwrap();
    let res = app
        .public(&key, Method::POST, RENDER)
        .header("Idempotency-Key", idem)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

async fn replays_survive_a_restart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, key) = payer(&app, 10).await;
    let idem = unique("restart-");
    let (s, _, first) = send(render(&app, &key, &idem, &render_body("Ada"))).await;
    assert_eq!(s, 201);
    let (db, mut config) = app.stop().await;
    config.bind = "127.0.0.1:0".into();
    let app = TestApp::start(db, config).await;
    let (s, h, again) = send(render(&app, &key, &idem, &render_body("Ada"))).await;
    assert_eq!((s, &again), (201, &first));
    assert!(replayed(&h));
    assert_eq!(app.balance(&user).await, 9);
}

/// The case retries are for: the client sends a render and hangs up before the answer. The
/// render is not cut half way (it runs in a task of its own), and the retry is charged nothing
/// more: it gets the replay (or, if the server never started the first, runs it once).
async fn a_client_that_hangs_up_then_retries_is_charged_once(backend: Backend) {
    use std::io::Write;

    let app = TestApp::spawn(backend).await;
    let (user, key) = payer(&app, 10).await;
    let idem = unique("hangup-");
    let body = serde_json::to_string(&render_body("Ada")).unwrap();
    let head = format!(
        "POST {RENDER} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Idempotency-Key: {idem}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let addr = crate::raw_http::addr(&app.base);
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        // Gone before any answer.
        stream.shutdown(std::net::Shutdown::Both).unwrap();
    })
    .await
    .unwrap();
    let mut answer = None;
    for _ in 0..200 {
        let (status, headers, body) = send(render(&app, &key, &idem, &render_body("Ada"))).await;
        match status {
            409 => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
            201 => {
                answer = Some((replayed(&headers), body));
                break;
            }
            other => panic!("{other}: {body}"),
        }
    }
    let (was_replayed, body) = answer.expect("the retry got an answer");
    eprintln!("the retry after the hang-up was a replay: {was_replayed}");
    assert_eq!(body["charged"], 1);
    // A second retry is a replay of whatever the first answer was.
    let (s, h, again) = send(render(&app, &key, &idem, &render_body("Ada"))).await;
    assert_eq!((s, &again), (201, &body));
    assert!(replayed(&h));
    assert_eq!(
        app.balance(&user).await,
        9,
        "one credit (replayed: {was_replayed})"
    );
    assert_eq!(document_count(&app, &key).await, 1);
}

/// kill -9 while 100 renders, each with its own `Idempotency-Key` (and that value as the
/// document's text), are in flight; then every render is retried with its key on a restarted
/// server. Whatever instant the kill hit, no key ever has two documents: a retry is a replay,
/// a first run (the original never committed), or a 409 (a record the crash left running).
async fn a_kill_nine_never_lets_a_retry_charge_twice(backend: Backend) {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use keys_domain::DocumentId;
    use keys_domain::ports::CatalogStore;

    let db = crate::helpers::Database::fresh(backend).await;
    let secret = unique("kill-nine-secret-padding-to-32-bytes-");
    let (base, mut child) = crate::helpers::spawn_server_process(&db.url, &secret).await;
    let store = api_actix::wiring::open_store(&db.url).unwrap();
    let user = api_actix::wiring::user_service(&store)
        .create(
            &format!("{}@example.com", unique("k9i")),
            GrantAmount::new(10_000).ok(),
        )
        .await
        .unwrap();
    // An API key made through the store: the server's JWT secret does not matter here.
    let secret_key = {
        let keys = keys_domain::use_cases::KeyService {
            store: store.clone(),
            notifier: Arc::new(adapters_inprocess::NoOtherInstances),
            clock: Arc::new(keys_domain::ports::SystemClock),
            random: Arc::new(keys_domain::random::OsRandom),
            limits: keys_domain::api_key::KeyLimits::default(),
        };
        let issued = keys
            .issue(
                &user.id,
                keys_domain::KeyName::parse("k9").unwrap(),
                keys_domain::key_controls::KeyControls::default(),
            )
            .await
            .unwrap();
        issued.secret.expose().to_owned()
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let values: Vec<String> = (0..100).map(|i| format!("k9-{i}-{}", unique(""))).collect();
    let answered = Arc::new(tokio::sync::Notify::new());
    let first: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
    let tasks: Vec<_> = values
        .iter()
        .map(|idem| {
            let req = client
                .post(format!("{base}{RENDER}"))
                .bearer_auth(&secret_key)
                .header("Idempotency-Key", idem)
                .json(&render_body(idem));
            let (idem, first, answered) = (idem.clone(), first.clone(), answered.clone());
            tokio::spawn(async move {
                let Ok(res) = req.send().await else { return };
                if res.status().as_u16() != 201 {
                    return;
                }
                let Ok(body) = res.json::<Value>().await else {
                    return;
                };
                let mut seen = first.lock().unwrap();
                seen.insert(idem, body);
                if seen.len() == 25 {
                    answered.notify_one();
                }
            })
        })
        .collect();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(60), answered.notified()).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }

    let app = TestApp::start(db.clone(), crate::helpers::test_config(&db.url)).await;
    let first = first.lock().unwrap().clone();
    let (mut replays, mut runs, mut running) = (0, 0, 0);
    for idem in &values {
        let (status, headers, body) = send(
            app.public(&secret_key, Method::POST, RENDER)
                .header("Idempotency-Key", idem)
                .json(&render_body(idem)),
        )
        .await;
        match status {
            201 if replayed(&headers) => {
                replays += 1;
                if let Some(acknowledged) = first.get(idem) {
                    assert_eq!(
                        &body, acknowledged,
                        "a replay differs from the first answer"
                    );
                }
            }
            201 => {
                runs += 1;
                assert!(!first.contains_key(idem), "an answered render ran again");
            }
            409 => running += 1,
            other => panic!("{other}: {body}"),
        }
    }
    eprintln!(
        "{} answered before the kill; retries: {replays} replays, {runs} first runs, {running} \
         left running",
        first.len()
    );
    // Every document belongs to one key, and no key has two.
    let documents = crate::paid_path::assert_invariants(&app.store, &user.id).await;
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for id in &documents {
        let doc = app
            .store
            .find_document(&user.id, &DocumentId::new(id.clone()))
            .await
            .unwrap()
            .unwrap();
        let idem = doc.content.lines().next().unwrap().to_owned();
        *per_key.entry(idem).or_default() += 1;
    }
    assert!(per_key.values().all(|&n| n == 1), "a key was charged twice");
    assert!(per_key.keys().all(|k| values.contains(k)));
    assert!(documents.len() >= replays + runs);
    assert!(documents.len() <= replays + runs + running);
}

on_both_backends!(
    a_kill_nine_never_lets_a_retry_charge_twice,
    a_client_that_hangs_up_then_retries_is_charged_once,
    a_retried_render_is_replayed_and_charged_once,
    a_replayed_key_creation_returns_the_same_working_key,
    another_body_method_or_path_is_refused_with_422,
    invalid_idempotency_keys_are_400_with_field,
    concurrent_duplicates_execute_exactly_once,
    a_refused_request_is_not_kept_so_a_retry_after_a_top_up_runs,
    requests_without_the_header_store_nothing,
    a_record_left_running_by_a_crash_is_409_and_never_charges_again,
    replays_survive_a_restart,
);

/// Two instances on one PostgreSQL database: a retry that reaches the other instance is
/// replayed (a key creation included), and concurrent duplicates split across both still run
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_replays_and_shares_the_claim() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let mut config = a.config.clone();
    config.bind = "127.0.0.1:0".into();
    let b = TestApp::start(a.db.clone(), config).await;
    let (user, key) = payer(&a, 50).await;

    let idem = unique("across-");
    let (s, _, first) = send(render(&a, &key, &idem, &render_body("Ada"))).await;
    assert_eq!(s, 201);
    let (s, h, again) = send(render(&b, &key, &idem, &render_body("Ada"))).await;
    assert_eq!((s, &again), (201, &first));
    assert!(replayed(&h));

    let create_idem = unique("create-");
    let create = |app: &TestApp| {
        app.dash(&user, Method::POST, KEYS)
            .header("Idempotency-Key", &create_idem)
            .json(&json!({ "name": "second" }))
    };
    let (s, _, created) = send(create(&a)).await;
    assert_eq!(s, 201);
    let (s, h, replay) = send(create(&b)).await;
    assert_eq!((s, &replay), (201, &created));
    assert!(replayed(&h));

    let burst = unique("burst-");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let app = if i % 2 == 0 { &a } else { &b };
            let req = render(app, &key, &burst, &render_body("Grace"));
            tokio::spawn(async move { parts(req.send().await.unwrap()).await })
        })
        .collect();
    let mut executed = 0;
    for t in tasks {
        let (status, headers, body) = t.await.unwrap();
        assert!(status == 201 || status == 409, "{status}: {body}");
        if status == 201 && !replayed(&headers) {
            executed += 1;
        }
    }
    assert_eq!(executed, 1);
    assert_eq!(a.balance(&user).await, 48, "two renders, each charged once");
}

/// `examples/retry-render.sh` against a running server: it creates a key, renders with an
/// `Idempotency-Key`, retries, and checks that one credit was charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_client_charges_one_credit_for_a_render_and_its_retry() {
    for tool in ["bash", "curl", "python3"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "the example needs `{tool}`: install it (apt-get install {tool})"
        );
    }
    // The script issues its dashboard token with `api-actix tokens issue`, as documented: the
    // CLI needs the server's database and JWT secret.
    let secret = unique("example-secret-padding-to-32-bytes-");
    let jwt = secret.clone();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.jwt_secret = Some(jwt.into())).await;
    let user = app.user(5).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/retry-render.sh"
    );
    let (base, email, db_url) = (app.base.clone(), user.email.clone(), app.db.url.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(script)
            .env("BASE_URL", base)
            .env("JT_USER", email)
            .env("API_ACTIX", env!("CARGO_BIN_EXE_api-actix"))
            .env("DATABASE_URL", db_url)
            .env("JWT_SECRET", secret)
            .env_remove("TOKEN")
            .env_remove("JWT_SECRET_FILE")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("OK: one credit charged"), "{stdout}");
    // It prints the preview, never a full key.
    let full_key = stdout.match_indices("jt_sk_").any(|(i, _)| {
        stdout[i + 6..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .count()
            >= 38
    });
    assert!(!full_key, "{stdout}");
    assert_eq!(app.balance(&user).await, 4);
}
