//! Every operation of `/openapi.json` lists every status the service gives on it, and the
//! service gives every status an operation lists (issue 35, item 3).
//!
//! How: one test drives every route through every answer it documents, against real servers:
//! one over SQLite, one whose failed-authentication limit is 1 (the gates' 429s), and one over
//! a PostgreSQL database behind a proxy that the test cuts (the store outage's 503s). Each
//! answer is recorded as (method, route pattern, status), and each probe also asserts the
//! status it is there for, so the list cannot silently drift into probing nothing. At the end,
//! for every operation of the route table: every status seen must be documented, and every
//! status documented must have been seen, but for the few in [`NOT_PROVOKED`], each with why.
//!
//! Why not collect what the rest of the suite sees: the tests of this binary run in parallel,
//! in no set order, and there is no hook after the last one; a comparison that depended on
//! which tests happened to run before it would pass or fail by chance. Driving each route here
//! gives the same answer on every run, with any test filter.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::time::Duration;

use api_actix::routes::{ENDPOINTS, Endpoint, Gate};
use keys_domain::ApiKeySecret;
use keys_domain::idempotency_key::IdempotencyKey;
use keys_domain::ports::{
    ClaimOutcome, Clock as _, IdempotencyClaim, IdempotencyStore as _, SystemClock,
};
use keys_domain::random::OsRandom;
use keys_domain::use_cases::REPLAY_WINDOW;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::dashboard_sign_in::stored_link;
use crate::helpers::{Backend, Database, TestApp, TestUser, test_config, unique};
use crate::secret_scanning::{FakeGithub, report};

const RENDER: &str = "/api/v1/public/documents";
const PURCHASE: &str = "/api/v1/public/templates/{id}/purchase";
const SECRET_SCANNING: &str = "/api/v1/secret-scanning/github";

/// Documented statuses this test does not provoke: (route pattern or `*`, status, why).
const NOT_PROVOKED: &[(&str, u16, &str)] = &[
    (
        "*",
        500,
        "an unexpected failure: nothing a client sends can cause one",
    ),
    (
        "/api/v1/auth/email-link",
        503,
        "the queue of link requests full for 10 s: only a flood from many addresses fills it",
    ),
];

/// (method, route pattern) → status → the first probe that got it.
#[derive(Default)]
struct Seen {
    answers: BTreeMap<(String, &'static str), BTreeMap<u16, String>>,
    /// Probes that got another status than the one they are there for.
    unexpected: Vec<String>,
}

impl Seen {
    fn note(&mut self, method: &str, path: &'static str, what: &str, expected: u16, got: u16) {
        if got != expected {
            self.unexpected.push(format!(
                "{method} {path} ({what}): {got}, expected {expected}"
            ));
        }
        self.answers
            .entry((method.to_owned(), path))
            .or_default()
            .entry(got)
            .or_insert_with(|| what.to_owned());
    }

    async fn probe(
        &mut self,
        method: &str,
        path: &'static str,
        what: &str,
        expected: u16,
        req: RequestBuilder,
    ) {
        let got = status_of(req, what).await;
        self.note(method, path, what, expected, got);
    }
}

async fn status_of(req: RequestBuilder, what: &str) -> u16 {
    req.send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .status()
        .as_u16()
}

/// `pattern` with each `{segment}` replaced by `value`.
fn at(pattern: &str, value: &str) -> String {
    pattern
        .split('/')
        .map(|s| if s.starts_with('{') { value } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// The status of the answer to a request written byte by byte (reqwest sends neither both
/// framing headers nor a body that stops short).
async fn raw_status(base: &str, request: String) -> u16 {
    let addr = base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        conn.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 256];
        while head.len() < 12 {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "the connection closed without an answer");
            head.extend_from_slice(&buf[..n]);
        }
        std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
    })
    .await
    .unwrap()
}

/// A request's head, with `Authorization` when given.
fn head(method: &str, path: &str, auth: Option<&str>, extra: &str) -> String {
    let auth = auth.map_or_else(String::new, |a| format!("Authorization: Bearer {a}\r\n"));
    format!("{method} {path} HTTP/1.1\r\nHost: probe\r\n{auth}{extra}")
}

/// The credentials of one app's probes.
struct Who {
    user: TestUser,
    key: String,
}

impl Who {
    async fn of(app: &TestApp, credits: u64) -> Self {
        let user = app.user(credits).await;
        let (_, key) = app.create_key(&user, &unique("probe-")).await;
        Self { user, key }
    }

    /// The credential `gate` takes.
    fn credential(&self, gate: Gate) -> Option<&str> {
        match gate {
            Gate::ApiKey => Some(&self.key),
            Gate::Dashboard => Some(&self.user.token),
            Gate::Open | Gate::Signed | Gate::SignIn => None,
        }
    }

    fn with(&self, gate: Gate, req: RequestBuilder) -> RequestBuilder {
        match self.credential(gate) {
            Some(c) => req.bearer_auth(c),
            None => req,
        }
    }
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).unwrap()
}

/// Every operation: (endpoint, method).
fn operations() -> impl Iterator<Item = (&'static Endpoint, &'static str)> {
    ENDPOINTS
        .iter()
        .flat_map(|e| e.methods.iter().map(move |(m, _)| (e, m.as_str())))
}

async fn document(app: &TestApp) -> Value {
    app.client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn has_body(doc: &Value, path: &str, method: &str) -> bool {
    doc["paths"][path][method.to_ascii_lowercase()]["requestBody"].is_object()
}

/// A key of `user` with only `scopes`.
async fn key_with_scopes(app: &TestApp, user: &TestUser, scopes: &[&str]) -> String {
    let res = app
        .dash(user, Method::POST, "/api/v1/keys")
        .json(&json!({ "name": unique("scoped-"), "scopes": scopes }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["key"].as_str().unwrap().to_owned()
}

/// An `Idempotency-Key` left running (as a crash would leave it) for `user`'s request.
async fn running(app: &TestApp, user: &TestUser, idem: &str, path: &str, body: &[u8]) {
    let secrets = IdempotencyKey::parse(idem.as_bytes())
        .unwrap()
        .derive(&user.id);
    let now = SystemClock.now();
    let claimed = app
        .store
        .claim(IdempotencyClaim {
            lookup: secrets.lookup,
            request: secrets.fingerprint("POST", path, body),
            created_at: now,
            expires_at: now.plus(REPLAY_WINDOW),
        })
        .await
        .unwrap();
    assert_eq!(claimed, ClaimOutcome::Claimed);
}

/// A request that the operation answers with success while its stores are up.
fn good_request(
    app: &TestApp,
    who: &Who,
    github: &FakeGithub,
    endpoint: &Endpoint,
    m: &str,
    key_id: &str,
) -> RequestBuilder {
    let path = endpoint.path;
    let concrete = match path {
        "/app/{view}" => at(path, "keys"),
        "/app/assets/{name}" => at(path, "app.js"),
        PURCHASE => at(path, "classic"),
        "/api/v1/public/documents/{id}" => at(path, "doc_missing"),
        _ => at(path, key_id),
    };
    let req = who.with(
        endpoint.gate,
        app.client.request(method(m), app.url(&concrete)),
    );
    match (m, path) {
        ("POST", RENDER) => {
            req.json(&json!({ "template_id": "classic", "fields": { "name": "Ada" } }))
        }
        ("POST", "/api/v1/keys" | "/api/v1/keys/{id}/rotate") | ("PATCH", _) => {
            req.json(&json!({ "name": unique("good-") }))
        }
        ("POST", "/api/v1/auth/email-link") => req.json(&json!({ "email": who.user.email })),
        ("POST", "/api/v1/auth/session") => req.json(&json!({ "token": "t".repeat(22) })),
        ("POST", SECRET_SCANNING) => {
            let body = report(&[ApiKeySecret::generate(&OsRandom).expose()]);
            req.header("Content-Type", "application/json")
                .header("Github-Public-Key-Identifier", &github.current.identifier)
                .header("Github-Public-Key-Signature", github.current.sign(&body))
                .body(body)
        }
        _ => req,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_given_is_documented_and_every_documented_status_is_given() {
    let github = FakeGithub::new();
    let location = github.location();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.github_scanning_keys = location;
        // The 408s: a body that stops short is answered after this.
        c.tuning.body_timeout = Duration::from_millis(300);
    })
    .await;
    let doc = document(&app).await;
    let mut seen = Seen::default();
    pipeline(&app, &mut seen).await;
    gates(&app, &mut seen).await;
    bodies(&app, &doc, &github, &mut seen).await;
    handlers(&app, &github, &mut seen).await;
    over_the_failure_limit(&mut seen).await;
    store_outage(&github, &mut seen).await;

    let mut problems = seen.unexpected.clone();
    for (endpoint, m) in operations() {
        let responses = doc["paths"][endpoint.path][m.to_ascii_lowercase()]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{m} {} is not documented", endpoint.path));
        let documented: BTreeSet<u16> = responses.keys().map(|s| s.parse().unwrap()).collect();
        let empty = BTreeMap::new();
        let given = seen
            .answers
            .get(&(m.to_owned(), endpoint.path))
            .unwrap_or(&empty);
        for (status, what) in given {
            if !documented.contains(status) {
                problems.push(format!(
                    "{m} {} answers {status} ({what}), which its document does not list",
                    endpoint.path
                ));
            }
        }
        for status in &documented {
            let excused = NOT_PROVOKED
                .iter()
                .any(|(p, s, _)| s == status && (*p == "*" || *p == endpoint.path));
            if !given.contains_key(status) && !excused {
                problems.push(format!(
                    "{m} {} documents {status}, which no probe got",
                    endpoint.path
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The request pipeline's answers, on every operation: ambiguous framing (400), an encoded
/// body (415), and a method the path does not serve (405, listed on each of its operations;
/// behind a gate, only with a credential that passes it).
async fn pipeline(app: &TestApp, seen: &mut Seen) {
    let who = Who::of(app, 0).await;
    for (endpoint, m) in operations() {
        let path = at(endpoint.path, "probe-id");
        let request = head(
            m,
            &path,
            None,
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        );
        let got = raw_status(&app.base, request).await;
        seen.note(m, endpoint.path, "both framing headers", 400, got);
        seen.probe(
            m,
            endpoint.path,
            "Content-Encoding: gzip",
            415,
            app.client
                .request(method(m), app.url(&path))
                .header("Content-Encoding", "gzip"),
        )
        .await;
    }
    for endpoint in ENDPOINTS {
        let other = ["PUT", "DELETE", "PATCH", "POST", "GET"]
            .into_iter()
            .find(|o| endpoint.methods.iter().all(|(m, _)| m.as_str() != *o))
            .unwrap();
        let url = app.url(&at(endpoint.path, "probe-id"));
        let got = status_of(
            who.with(endpoint.gate, app.client.request(method(other), url)),
            other,
        )
        .await;
        for (m, _) in endpoint.methods {
            seen.note(
                m.as_str(),
                endpoint.path,
                &format!("{other} instead"),
                405,
                got,
            );
        }
    }
}

/// The gates' refusals: no credential (401) and a key without the scope (403).
async fn gates(app: &TestApp, seen: &mut Seen) {
    let user = app.user(5).await;
    let credits_only = key_with_scopes(app, &user, &["credits:read"]).await;
    let documents_only = key_with_scopes(app, &user, &["documents:read"]).await;
    for (endpoint, m) in operations() {
        let url = app.url(&at(endpoint.path, "probe-id"));
        match endpoint.gate {
            Gate::ApiKey | Gate::Dashboard => {
                seen.probe(
                    m,
                    endpoint.path,
                    "no credential",
                    401,
                    app.client.request(method(m), &url),
                )
                .await;
            }
            Gate::Open | Gate::Signed | Gate::SignIn => {}
        }
        if let Some((_, scope)) = endpoint.scopes.iter().find(|(s, _)| s.as_str() == m) {
            let key = if scope.as_str() == "credits:read" {
                &documents_only
            } else {
                &credits_only
            };
            seen.probe(
                m,
                endpoint.path,
                "a key without the scope",
                403,
                app.client.request(method(m), &url).bearer_auth(key),
            )
            .await;
        }
    }
    seen.probe(
        "POST",
        "/api/v1/auth/session",
        "an unknown link",
        401,
        app.client
            .post(app.url("/api/v1/auth/session"))
            .json(&json!({ "token": "u".repeat(22) })),
    )
    .await;
    seen.probe(
        "POST",
        SECRET_SCANNING,
        "no signature",
        401,
        app.client.post(app.url(SECRET_SCANNING)).body("[]"),
    )
    .await;
}

/// What reading a body gives: malformed JSON (400), too large (413), too slow (408).
async fn bodies(app: &TestApp, doc: &Value, github: &FakeGithub, seen: &mut Seen) {
    let who = Who::of(app, 5).await;
    let (key, _) = app.create_key(&who.user, "bodies").await;
    let key_id = key["id"].as_str().unwrap();
    for (endpoint, m) in operations() {
        if !has_body(doc, endpoint.path, m) {
            continue;
        }
        let path = at(endpoint.path, key_id);
        let credential = who.credential(endpoint.gate);
        // The report's headers name a current key, so it is read (and refused for its size).
        let signed = if endpoint.path == SECRET_SCANNING {
            format!(
                "Github-Public-Key-Identifier: {}\r\nGithub-Public-Key-Signature: {}\r\n",
                github.current.identifier,
                github.current.sign(b"x")
            )
        } else {
            String::new()
        };
        let limit = endpoint.body_limit.unwrap_or(64 * 1024);
        let big = format!("[\"{}\"]", "x".repeat(limit));
        let mut req = who
            .with(endpoint.gate, app.client.request(method(m), app.url(&path)))
            .header("Content-Type", "application/json")
            .body(big);
        if endpoint.path == SECRET_SCANNING {
            req = req
                .header("Github-Public-Key-Identifier", &github.current.identifier)
                .header("Github-Public-Key-Signature", github.current.sign(b"x"));
        }
        seen.probe(m, endpoint.path, "a body over the limit", 413, req)
            .await;
        let short = head(
            m,
            &path,
            credential,
            &format!(
                "{signed}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\""
            ),
        );
        let got = raw_status(&app.base, short).await;
        seen.note(m, endpoint.path, "a body that stops short", 408, got);
        if endpoint.path != SECRET_SCANNING {
            seen.probe(
                m,
                endpoint.path,
                "malformed JSON",
                400,
                who.with(endpoint.gate, app.client.request(method(m), app.url(&path)))
                    .header("Content-Type", "application/json")
                    .body("{"),
            )
            .await;
        }
    }
}

/// Each handler's own answers.
#[allow(clippy::too_many_lines)] // one list, route by route
async fn handlers(app: &TestApp, github: &FakeGithub, seen: &mut Seen) {
    let who = Who::of(app, 100).await;
    let poor = Who::of(app, 0).await;
    let get = |path: &str| app.client.get(app.url(path));
    let public = |m: Method, path: &str| app.public(&who.key, m, path);
    let dash = |m: Method, path: &str| app.dash(&who.user, m, path);

    // The pages and the documentation.
    for (path, concrete) in [
        ("/healthz", "/healthz"),
        ("/readyz", "/readyz"),
        ("/openapi.json", "/openapi.json"),
        ("/docs", "/docs"),
        ("/docs/docs.js", "/docs/docs.js"),
        ("/docs/docs.css", "/docs/docs.css"),
        ("/app", "/app"),
        ("/app/{view}", "/app/keys"),
        ("/app/assets/{name}", "/app/assets/app.js"),
    ] {
        seen.probe("GET", path, "served", 200, get(concrete)).await;
    }
    seen.probe("GET", "/app/{view}", "no such view", 404, get("/app/nope"))
        .await;
    seen.probe(
        "GET",
        "/app/assets/{name}",
        "no such file",
        404,
        get("/app/assets/nope.js"),
    )
    .await;

    // The public API.
    seen.probe(
        "GET",
        "/api/v1/public/me",
        "the key's user",
        200,
        public(Method::GET, "/api/v1/public/me"),
    )
    .await;
    seen.probe(
        "GET",
        "/api/v1/public/credits/balance",
        "the balance",
        200,
        public(Method::GET, "/api/v1/public/credits/balance"),
    )
    .await;
    seen.probe(
        "GET",
        "/api/v1/public/templates",
        "the catalogue",
        200,
        public(Method::GET, "/api/v1/public/templates"),
    )
    .await;
    let classic = json!({ "template_id": "classic", "fields": { "name": "Ada" } });
    let res = public(Method::POST, RENDER)
        .json(&classic)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let rendered: Value = res.json().await.unwrap();
    seen.note("POST", RENDER, "a render", 201, status);
    seen.probe(
        "GET",
        "/api/v1/public/documents/{id}",
        "the document",
        200,
        public(
            Method::GET,
            &format!(
                "/api/v1/public/documents/{}",
                rendered["id"].as_str().unwrap()
            ),
        ),
    )
    .await;
    seen.probe(
        "GET",
        "/api/v1/public/documents/{id}",
        "no such document",
        404,
        public(Method::GET, "/api/v1/public/documents/doc_missing"),
    )
    .await;
    seen.probe("GET", RENDER, "the list", 200, public(Method::GET, RENDER))
        .await;
    seen.probe(
        "GET",
        RENDER,
        "limit=0",
        400,
        public(Method::GET, "/api/v1/public/documents?limit=0"),
    )
    .await;
    seen.probe(
        "POST",
        RENDER,
        "no credits",
        402,
        app.public(&poor.key, Method::POST, RENDER).json(&classic),
    )
    .await;
    seen.probe(
        "POST",
        RENDER,
        "a premium template not bought",
        403,
        public(Method::POST, RENDER)
            .json(&json!({ "template_id": "executive", "fields": { "name": "Ada" } })),
    )
    .await;
    seen.probe(
        "POST",
        RENDER,
        "no such template",
        404,
        public(Method::POST, RENDER)
            .json(&json!({ "template_id": "nope", "fields": { "name": "Ada" } })),
    )
    .await;
    let body = serde_json::to_vec(&classic).unwrap();
    running(app, &who.user, "probe-running-render", RENDER, &body).await;
    seen.probe(
        "POST",
        RENDER,
        "an Idempotency-Key still running",
        409,
        public(Method::POST, RENDER)
            .header("Idempotency-Key", "probe-running-render")
            .header("Content-Type", "application/json")
            .body(body),
    )
    .await;
    let first = public(Method::POST, RENDER)
        .header("Idempotency-Key", "probe-reused")
        .json(&classic);
    assert_eq!(status_of(first, "a first render").await, 201);
    seen.probe(
        "POST",
        RENDER,
        "an Idempotency-Key reused",
        422,
        public(Method::POST, RENDER)
            .header("Idempotency-Key", "probe-reused")
            .json(&json!({ "template_id": "classic", "fields": { "name": "Bob" } })),
    )
    .await;
    let purchase = |id: &str| public(Method::POST, &at(PURCHASE, id));
    seen.probe(
        "POST",
        PURCHASE,
        "a free template",
        200,
        purchase("classic"),
    )
    .await;
    seen.probe(
        "POST",
        PURCHASE,
        "no credits",
        402,
        app.public(&poor.key, Method::POST, &at(PURCHASE, "executive")),
    )
    .await;
    seen.probe("POST", PURCHASE, "no such template", 404, purchase("nope"))
        .await;
    running(
        app,
        &who.user,
        "probe-running-purchase",
        &at(PURCHASE, "executive"),
        &[],
    )
    .await;
    seen.probe(
        "POST",
        PURCHASE,
        "an Idempotency-Key still running",
        409,
        purchase("executive").header("Idempotency-Key", "probe-running-purchase"),
    )
    .await;
    assert_eq!(
        status_of(
            purchase("classic").header("Idempotency-Key", "probe-bought"),
            "a first purchase"
        )
        .await,
        200
    );
    seen.probe(
        "POST",
        PURCHASE,
        "an Idempotency-Key reused",
        422,
        purchase("executive").header("Idempotency-Key", "probe-bought"),
    )
    .await;

    // The dashboard's API.
    let keys = "/api/v1/keys";
    let name = unique("dash-");
    let res = dash(Method::POST, keys)
        .header("Idempotency-Key", "probe-create")
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    seen.note("POST", keys, "a new key", 201, res.status().as_u16());
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    seen.probe(
        "POST",
        keys,
        "a name taken",
        409,
        dash(Method::POST, keys).json(&json!({ "name": name })),
    )
    .await;
    seen.probe(
        "POST",
        keys,
        "an Idempotency-Key reused",
        422,
        dash(Method::POST, keys)
            .header("Idempotency-Key", "probe-create")
            .json(&json!({ "name": unique("other-") })),
    )
    .await;
    seen.probe("GET", keys, "the list", 200, dash(Method::GET, keys))
        .await;
    seen.probe(
        "GET",
        keys,
        "status=bogus",
        400,
        dash(Method::GET, "/api/v1/keys?status=bogus"),
    )
    .await;
    let one = "/api/v1/keys/{id}";
    let mine = at(one, &id);
    let missing = at(one, "key_missing");
    seen.probe("GET", one, "the key", 200, dash(Method::GET, &mine))
        .await;
    seen.probe("GET", one, "no such key", 404, dash(Method::GET, &missing))
        .await;
    seen.probe(
        "PATCH",
        one,
        "a new name",
        200,
        dash(Method::PATCH, &mine).json(&json!({ "name": unique("renamed-") })),
    )
    .await;
    seen.probe(
        "PATCH",
        one,
        "a bad limit",
        400,
        dash(Method::PATCH, &mine).json(&json!({ "monthly_credit_limit": 0 })),
    )
    .await;
    seen.probe(
        "PATCH",
        one,
        "no such key",
        404,
        dash(Method::PATCH, &missing).json(&json!({ "name": "x" })),
    )
    .await;
    for sub in ["events", "usage", "clients"] {
        let pattern = match sub {
            "events" => "/api/v1/keys/{id}/events",
            "usage" => "/api/v1/keys/{id}/usage",
            _ => "/api/v1/keys/{id}/clients",
        };
        seen.probe(
            "GET",
            pattern,
            "the key's",
            200,
            dash(Method::GET, &at(pattern, &id)),
        )
        .await;
        seen.probe(
            "GET",
            pattern,
            "no such key",
            404,
            dash(Method::GET, &at(pattern, "key_missing")),
        )
        .await;
    }
    let rotate = "/api/v1/keys/{id}/rotate";
    let res = dash(Method::POST, &at(rotate, &id))
        .header("Idempotency-Key", "probe-rotate")
        .json(&json!({ "name": unique("rotated-"), "grace_period_seconds": 3600 }))
        .send()
        .await
        .unwrap();
    seen.note("POST", rotate, "a rotation", 201, res.status().as_u16());
    seen.probe(
        "POST",
        rotate,
        "an Idempotency-Key reused",
        422,
        dash(Method::POST, &at(rotate, &id))
            .header("Idempotency-Key", "probe-rotate")
            .json(&json!({ "name": unique("again-") })),
    )
    .await;
    seen.probe(
        "POST",
        rotate,
        "no such key",
        404,
        dash(Method::POST, &at(rotate, "key_missing")).json(&json!({ "name": "x" })),
    )
    .await;
    let revoke = "/api/v1/keys/{id}/revoke";
    seen.probe(
        "POST",
        revoke,
        "the key",
        200,
        dash(Method::POST, &at(revoke, &id)),
    )
    .await;
    seen.probe(
        "POST",
        revoke,
        "no such key",
        404,
        dash(Method::POST, &at(revoke, "key_missing")),
    )
    .await;
    seen.probe(
        "POST",
        rotate,
        "a revoked key",
        409,
        dash(Method::POST, &at(rotate, &id)).json(&json!({ "name": unique("late-") })),
    )
    .await;
    seen.probe(
        "PATCH",
        one,
        "a revoked key",
        409,
        dash(Method::PATCH, &mine).json(&json!({ "name": unique("late-") })),
    )
    .await;
    seen.probe(
        "GET",
        "/api/v1/credits/balance",
        "the balance",
        200,
        dash(Method::GET, "/api/v1/credits/balance"),
    )
    .await;
    seen.probe(
        "GET",
        "/api/v1/credits/ledger",
        "the ledger",
        200,
        dash(Method::GET, "/api/v1/credits/ledger"),
    )
    .await;
    seen.probe(
        "GET",
        "/api/v1/credits/ledger",
        "limit=0",
        400,
        dash(Method::GET, "/api/v1/credits/ledger?limit=0"),
    )
    .await;

    // Signing in and out.
    let email_link = "/api/v1/auth/email-link";
    seen.probe(
        "POST",
        email_link,
        "an address",
        202,
        app.client
            .post(app.url(email_link))
            .json(&json!({ "email": who.user.email })),
    )
    .await;
    seen.probe(
        "POST",
        email_link,
        "not an address",
        400,
        app.client
            .post(app.url(email_link))
            .json(&json!({ "email": "nobody" })),
    )
    .await;
    let session = "/api/v1/auth/session";
    let token = stored_link(app, &poor.user.id, Duration::ZERO).await;
    seen.probe(
        "POST",
        session,
        "a link's token",
        200,
        app.client
            .post(app.url(session))
            .json(&json!({ "token": token })),
    )
    .await;
    seen.probe(
        "POST",
        session,
        "no token",
        400,
        app.client.post(app.url(session)).json(&json!({})),
    )
    .await;
    // Last: it ends the user's tokens.
    seen.probe(
        "POST",
        "/api/v1/auth/sign-out",
        "signed in",
        204,
        app.dash(&poor.user, Method::POST, "/api/v1/auth/sign-out"),
    )
    .await;

    // GitHub's report.
    let body = report(&[ApiKeySecret::generate(&OsRandom).expose()]);
    seen.probe(
        "POST",
        SECRET_SCANNING,
        "a signed report",
        200,
        app.client
            .post(app.url(SECRET_SCANNING))
            .header("Content-Type", "application/json")
            .header("Github-Public-Key-Identifier", &github.current.identifier)
            .header("Github-Public-Key-Signature", github.current.sign(&body))
            .body(body),
    )
    .await;
}

/// Past the failed-authentication limit every gate answers 429, whatever the credential.
async fn over_the_failure_limit(seen: &mut Seen) {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.auth_failures_per_minute = 1).await;
    let who = Who::of(&app, 5).await;
    let unknown = ApiKeySecret::generate(&OsRandom);
    let got = status_of(
        app.public(unknown.expose(), Method::GET, "/api/v1/public/me"),
        "an unknown key",
    )
    .await;
    seen.note("GET", "/api/v1/public/me", "an unknown key", 401, got);
    let github = FakeGithub::new();
    for (endpoint, m) in operations() {
        if matches!(endpoint.gate, Gate::ApiKey | Gate::Dashboard | Gate::SignIn) {
            let req = good_request(&app, &who, &github, endpoint, m, "key_missing");
            seen.probe(m, endpoint.path, "over the failure limit", 429, req)
                .await;
        }
    }
}

/// A TCP proxy to PostgreSQL that can be cut: then it drops every connection and refuses new
/// ones, as a database that went away.
struct Cuttable {
    port: u16,
    cut: CancellationToken,
}

impl Cuttable {
    async fn to(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = CancellationToken::new();
        let stop = cut.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stop.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let (stop, upstream) = (stop.clone(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        () = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Self { port, cut }
    }
}

/// `url` with its host and port replaced by `127.0.0.1:port`; and the host and port it had.
fn through(url: &str, port: u16) -> (String, String) {
    let scheme_end = url.find("://").unwrap() + 3;
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    let (user, host) = authority
        .rsplit_once('@')
        .map_or(("", authority), |(u, h)| (u, h));
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    let user = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    let proxied = format!(
        "{}{user}127.0.0.1:{port}{}",
        &url[..scheme_end],
        &url[authority_end..]
    );
    (proxied, host)
}

/// While the database is down, every operation that needs it answers 503, and the others
/// answer as usual.
async fn store_outage(github: &FakeGithub, seen: &mut Seen) {
    let db = Database::fresh(Backend::Postgres).await;
    let upstream = through(&db.url, 0).1;
    let proxy = Cuttable::to(upstream).await;
    let mut config = test_config(&through(&db.url, proxy.port).0);
    config.github_scanning_keys = github.location();
    let app = TestApp::start(db, config).await;
    let who = Who::of(&app, 5).await;
    let (key, _) = app.create_key(&who.user, "outage").await;
    let key_id = key["id"].as_str().unwrap().to_owned();
    proxy.cut.cancel();
    // Past the key cache's trust in its change feed and the token cut-off's cache.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let probes = operations().map(|(endpoint, m)| {
        let expected = match (endpoint.gate, endpoint.path) {
            (Gate::ApiKey | Gate::Dashboard | Gate::Signed, _)
            | (_, "/api/v1/auth/session" | "/readyz") => 503,
            (_, "/api/v1/auth/email-link") => 202,
            _ => 200,
        };
        let req = good_request(&app, &who, github, endpoint, m, &key_id);
        async move {
            let got = status_of(req, "the database down").await;
            (m, endpoint.path, expected, got)
        }
    });
    for (m, path, expected, got) in futures_util::future::join_all(probes).await {
        seen.note(m, path, "the database down", expected, got);
    }
}
