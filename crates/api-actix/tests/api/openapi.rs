//! `/openapi.json` documents exactly the routes the app serves, and `/docs` renders it from
//! assets the binary serves itself.

use std::collections::BTreeSet;

use api_actix::routes::{ENDPOINTS, Gate};
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, header, parts};

const SIGN_OUT: &str = "/api/v1/auth/sign-out";
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// (method, path) of every operation in the document, `HEAD` implied by `GET`.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            if method == "GET" {
                ops.insert(("HEAD".to_owned(), path.clone()));
            }
            ops.insert((method, path.clone()));
        }
    }
    ops
}

/// The same from the route table that mounts every route.
fn mounted() -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for e in ENDPOINTS {
        for (m, _) in e.methods {
            if m.as_str() == "GET" {
                ops.insert(("HEAD".to_owned(), e.path.to_owned()));
            }
            ops.insert((m.as_str().to_owned(), e.path.to_owned()));
        }
    }
    ops
}

async fn document(app: &TestApp) -> Value {
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    let (status, h, doc) = parts(res).await;
    assert_eq!(status, 200);
    assert!(header(&h, "content-type").starts_with("application/json"));
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_mounted_routes() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let (documented, mounted) = (documented(&doc), mounted());
    let undocumented: Vec<_> = mounted.difference(&documented).collect();
    let unmounted: Vec<_> = documented.difference(&mounted).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from /openapi.json: {undocumented:?}"
    );
    assert!(
        unmounted.is_empty(),
        "documented but not mounted: {unmounted:?}"
    );
    // The contract's routes are all there.
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/public/me",
        "/api/v1/public/credits/balance",
        "/api/v1/public/templates",
        "/api/v1/public/templates/{id}/purchase",
        "/api/v1/public/documents",
        "/api/v1/public/documents/{id}",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
        "/api/v1/keys/{id}/revoke",
        "/api/v1/keys/{id}/rotate",
        "/api/v1/credits/balance",
        "/api/v1/credits/ledger",
        "/api/v1/keys/{id}/events",
        "/api/v1/secret-scanning/github",
        "/api/v1/keys/{id}/usage",
        "/api/v1/auth/email-link",
        "/api/v1/auth/session",
        "/api/v1/auth/sign-out",
        "/app",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
}

/// Over HTTP: every documented method of every documented path is routed (never the "no such
/// route" 404 nor a 405), and every other method is a 405 whose `Allow` lists exactly the
/// documented ones. A route served but not documented, or the reverse, fails here.
/// A standard validator (PyPI's `openapi-spec-validator`, installed by
/// `scripts/ensure-services.sh`) accepts the document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_validator_accepts_the_document() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc = document(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let home = std::env::var("XDG_CACHE_HOME")
        .unwrap_or_else(|_| format!("{}/.cache", std::env::var("HOME").unwrap()));
    let validator = format!("{home}/jobtactics/tools-venv/bin/openapi-spec-validator");
    let out = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {validator} ({e}): install it with `bash scripts/ensure-services.sh`"
            )
        });
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Generated clients name their methods after operation ids: each is present, unique and
/// lowerCamelCase (`listDocuments`, `getKey`), so no generator drops or renames one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_has_a_unique_camel_case_id() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc = document(&app).await;
    let mut ids = BTreeSet::new();
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            count += 1;
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{method} {path}: {id} is not lowerCamelCase"
            );
            assert!(ids.insert(id.to_owned()), "{id} names two operations");
        }
    }
    assert_eq!(ids.len(), count);
    for expected in [
        "listDocuments",
        "listTemplates",
        "listKeys",
        "getKey",
        "renderDocument",
    ] {
        assert!(ids.contains(expected), "{expected} missing: {ids:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_nothing_else_is() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.user(100).await;
    let (_, key) = app.create_key(&user, "probe").await;
    let doc = document(&app).await;
    let ops = documented(&doc);
    let mut paths: Vec<&String> = ops
        .iter()
        .map(|(_, p)| p)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Signing out ends the probe's token: that path goes last, and its POST last of all.
    paths.sort_by_key(|p| p.as_str() == SIGN_OUT);
    for path in paths {
        let concrete = path.replace("{id}", "probe-id");
        let mut methods = METHODS;
        if path == SIGN_OUT {
            methods.sort_by_key(|m| *m == "POST");
        }
        let served: BTreeSet<&str> = ops
            .iter()
            .filter(|(_, p)| p == path)
            .map(|(m, _)| m.as_str())
            .collect();
        let gate = ENDPOINTS.iter().find(|e| e.path == path).unwrap().gate;
        for method in methods {
            let mut req = app.client.request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&concrete),
            );
            req = match gate {
                Gate::Open | Gate::Signed | Gate::SignIn => req,
                Gate::ApiKey => req.bearer_auth(&key),
                Gate::Dashboard => req.bearer_auth(&user.token),
            };
            if method == "POST" {
                req = req.json(&serde_json::json!({}));
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let allow = res
                .headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = if method == "HEAD" {
                Value::Null
            } else {
                res.json::<Value>().await.unwrap_or(Value::Null)
            };
            if served.contains(method) {
                assert_ne!(status, 405, "{method} {path}: {body}");
                assert!(
                    !(status == 404 && body["error"]["message"] == "no such route"),
                    "{method} {path} is documented but not routed"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is served but not documented: {body}"
                );
                let allow: BTreeSet<String> = allow
                    .unwrap()
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .collect();
                let expected: BTreeSet<String> = served.iter().map(|s| (*s).to_owned()).collect();
                assert_eq!(allow, expected, "Allow of {path}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_schemas_and_errors_are_described() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc = document(&app).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["dashboard_jwt"]["bearerFormat"], "JWT");
    let me = &doc["paths"]["/api/v1/public/me"]["get"];
    assert!(me["security"][0]["api_key"].is_array(), "{me}");
    assert!(me["responses"]["401"].is_object());
    assert!(me["responses"]["429"].is_object());
    let create = &doc["paths"]["/api/v1/keys"]["post"];
    assert!(create["security"][0]["dashboard_jwt"].is_array());
    assert!(create["requestBody"].is_object());
    for status in ["201", "400", "401", "409", "413", "415"] {
        assert!(create["responses"][status].is_object(), "{status}");
    }
    assert!(doc["paths"]["/healthz"]["get"]["security"].is_null());
    // Key controls (section 11): the PATCH, and each new error where it can happen.
    let update = &doc["paths"]["/api/v1/keys/{id}"]["patch"];
    assert_eq!(update["operationId"], "updateKey", "{update}");
    for status in ["200", "400", "404", "409"] {
        assert!(update["responses"][status].is_object(), "PATCH {status}");
    }
    let render = &doc["paths"]["/api/v1/public/documents"]["post"]["responses"];
    let text = |status: &str| {
        render[status]["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(text("401").contains("expired_api_key") && text("401").contains("network_not_allowed"));
    assert!(
        text("402").contains("key_credit_limit_reached"),
        "{}",
        text("402")
    );
    assert!(text("403").contains("insufficient_scope") && text("403").contains("documents:write"));
    assert!(
        doc["paths"]["/api/v1/public/me"]["get"]["responses"]["403"].is_null(),
        "me needs no scope"
    );
    let schemas = &doc["components"]["schemas"];
    for name in [
        "KeyObject",
        "ErrorBody",
        "CreateKeyRequest",
        "RenderedDocumentObject",
    ] {
        assert!(schemas[name].is_object(), "{name}");
    }
    let error = &schemas["ErrorDetail"]["properties"];
    assert!(
        error["type"].is_object() && error["request_id"].is_object(),
        "{error}"
    );
}

/// The dashboard's header set: loads only from the service, framed by no one, no referrer.
fn assert_framed_by_no_one(headers: &reqwest::header::HeaderMap) {
    assert_eq!(
        header(headers, "content-security-policy"),
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    assert_eq!(header(headers, "x-frame-options"), "DENY");
    assert_eq!(header(headers, "referrer-policy"), "no-referrer");
    assert_eq!(header(headers, "x-content-type-options"), "nosniff");
}

/// JSON answers echo the client's `X-Request-Id`: none may be sniffed as HTML by a browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_says_nosniff() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.user(5).await;
    let (_, key) = app.create_key(&user, "nosniff").await;
    let answers = [
        app.client.get(app.url("/healthz")).send().await.unwrap(),
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
        app.client
            .get(app.url("/no/such/path"))
            .send()
            .await
            .unwrap(),
        app.client
            .get(app.url("/api/v1/public/me"))
            .header("x-request-id", "<script>alert(1)</script>")
            .send()
            .await
            .unwrap(),
        app.public_get(&key, "/api/v1/public/credits/balance").await,
    ];
    for res in answers {
        assert_eq!(
            header(res.headers(), "x-content-type-options"),
            "nosniff",
            "{} {}",
            res.url(),
            res.status()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_loads_only_from_the_service() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_framed_by_no_one(res.headers());
    assert!(header(res.headers(), "content-type").starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let url = part.split('"').next().unwrap();
            assert!(
                url.starts_with('/') && !url.starts_with("//"),
                "{url} leaves the origin"
            );
            assets.push(url.to_owned());
        }
    }
    assert!(assets.contains(&"/docs/docs.js".to_owned()));
    for asset in assets.iter().filter(|a| a.starts_with("/docs/")) {
        let res = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{asset}");
        assert_framed_by_no_one(res.headers());
        let body = res.text().await.unwrap();
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{asset} names another origin"
        );
    }
}

/// The required members of an object schema, following `allOf` and `$ref`s.
fn required_members(doc: &Value, schema: &Value) -> BTreeSet<String> {
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.trim_start_matches("#/components/schemas/");
        return required_members(doc, &doc["components"]["schemas"][name]);
    }
    let mut members: BTreeSet<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        members.extend(required_members(doc, part));
    }
    members
}

/// Members a client can count on are `required`: a key object as the API sends it has exactly
/// the schema's required members (`null` when empty), plus `key` on creation only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_always_present_are_required() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc = document(&app).await;
    let required = required_members(&doc, &doc["components"]["schemas"]["KeyObject"]);
    for member in [
        "last_used_at",
        "revoked_at",
        "revokes_at",
        "revocation_reason",
        "expires_at",
        "allowed_networks",
        "monthly_credit_limit",
        "scopes",
    ] {
        assert!(required.contains(member), "{member}: {required:?}");
    }
    let user = app.user(5).await;
    let (created, _) = app.create_key(&user, "members").await;
    let sent = |object: &Value| -> BTreeSet<String> {
        object.as_object().unwrap().keys().cloned().collect()
    };
    let mut with_key = required.clone();
    with_key.insert("key".to_owned());
    assert_eq!(sent(&created), with_key);
    // `GET /api/v1/keys/{id}` adds `spent_this_month`, which the lists leave out.
    let read = app.get_key(&user, created["id"].as_str().unwrap()).await;
    let mut with_spent = required.clone();
    with_spent.insert("spent_this_month".to_owned());
    assert_eq!(sent(&read), with_spent);
    let res = app
        .dash(&user, reqwest::Method::GET, "/api/v1/keys")
        .send()
        .await
        .unwrap();
    let (_, _, list) = parts(res).await;
    assert_eq!(sent(&list["data"][0]), required);
}

/// The answers the issue found missing: a sign-in's 429 and a store outage's 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_secret_scanning_list_their_limits_and_outages() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc = document(&app).await;
    let responses = |path: &str| doc["paths"][path]["post"]["responses"].clone();
    for path in ["/api/v1/auth/email-link", "/api/v1/auth/session"] {
        assert!(responses(path)["429"].is_object(), "{path}");
    }
    for path in ["/api/v1/auth/session", "/api/v1/secret-scanning/github"] {
        assert!(responses(path)["503"].is_object(), "{path}");
    }
    let limit = responses("/api/v1/secret-scanning/github")["413"]["description"].clone();
    assert!(limit.as_str().unwrap().contains("1 MiB"), "{limit}");
}
