//! Key controls (docs/api.md, "Key controls"): expiry, allowed networks, a monthly credit limit and
//! scopes, set on creation and by PATCH, each refusing with its own error, on both stores.

use std::time::Duration;

use adapters_postgres::testing::execute_sql;
use keys_domain::Timestamp;
use keys_domain::ports::{Clock, SystemClock};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, eventually, expect_error, header, parts};

fn in_days(days: u64) -> String {
    SystemClock
        .now()
        .plus(Duration::from_secs(days * 86_400))
        .to_rfc3339()
}

async fn create(app: &TestApp, user: &TestUser, body: Value) -> (u16, Value) {
    let res = app
        .dash(user, Method::POST, "/api/v1/keys")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    (status, body)
}

async fn patch(app: &TestApp, user: &TestUser, id: &str, body: Value) -> reqwest::Response {
    app.dash(user, Method::PATCH, &format!("/api/v1/keys/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn render(app: &TestApp, key: &str) -> reqwest::Response {
    app.public(key, Method::POST, "/api/v1/public/documents")
        .json(&json!({ "template_id": "classic", "fields": { "name": "Ada" } }))
        .send()
        .await
        .unwrap()
}

async fn controls_are_set_on_creation_shown_and_changed_by_patch(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(10).await;
    let expires = in_days(90);
    let (status, key) = create(
        &app,
        &user,
        json!({
            "name": "ci",
            "expires_at": expires,
            "allowed_networks": ["127.0.0.1/8", "2001:db8::/48"],
            "monthly_credit_limit": 500,
            "scopes": ["documents:write", "credits:read"],
        }),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(
        Timestamp::parse_rfc3339(key["expires_at"].as_str().unwrap()),
        Timestamp::parse_rfc3339(&expires)
    );
    assert_eq!(
        key["allowed_networks"],
        json!(["127.0.0.0/8", "2001:db8::/48"])
    );
    assert_eq!(key["monthly_credit_limit"], 500);
    assert_eq!(key["scopes"], json!(["credits:read", "documents:write"]));
    let id = key["id"].as_str().unwrap();

    let got = app.get_key(&user, id).await;
    assert_eq!(got["spent_this_month"], 0);
    assert_eq!(got["monthly_credit_limit"], 500);

    // A plain key shows every control unset and all four scopes.
    let (_, plain) = create(&app, &user, json!({ "name": "plain" })).await;
    for null in ["expires_at", "allowed_networks", "monthly_credit_limit"] {
        assert!(plain[null].is_null(), "{null}: {plain}");
    }
    assert_eq!(
        plain["scopes"],
        json!([
            "credits:read",
            "documents:read",
            "documents:write",
            "templates:purchase"
        ])
    );

    // PATCH: any subset; null removes a control; the rest is kept.
    let res = patch(
        &app,
        &user,
        id,
        json!({ "name": "ci-2", "expires_at": null, "scopes": null }),
    )
    .await;
    let (status, _, changed) = parts(res).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "ci-2");
    assert!(changed["expires_at"].is_null());
    assert_eq!(changed["scopes"].as_array().unwrap().len(), 4);
    assert_eq!(changed["monthly_credit_limit"], 500);
    assert_eq!(changed["allowed_networks"], key["allowed_networks"]);

    // The change is a key event `updated` naming what changed.
    let res = app
        .dash(&user, Method::GET, &format!("/api/v1/keys/{id}/events"))
        .send()
        .await
        .unwrap();
    let (_, _, events) = parts(res).await;
    let updated = &events["data"][0];
    assert_eq!(updated["type"], "updated", "{events}");
    assert_eq!(updated["actor"], "user");
    assert_eq!(
        updated["detail"]["changed"],
        json!(["name", "expires_at", "scopes"])
    );
    assert_eq!(updated["detail"]["name"], "ci-2");
    assert!(updated["detail"]["expires_at"].is_null());

    // A whole number written as a float is that integer, as JSON Schema's `integer` reads it.
    let res = patch(&app, &user, id, json!({ "monthly_credit_limit": 250.0 })).await;
    let (status, _, changed) = parts(res).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["monthly_credit_limit"], 250);
}

async fn invalid_controls_are_400_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let cases = [
        (json!({ "expires_at": "tomorrow" }), "expires_at"),
        (json!({ "expires_at": in_days(0) }), "expires_at"),
        (json!({ "expires_at": in_days(367) }), "expires_at"),
        (json!({ "allowed_networks": [] }), "allowed_networks"),
        (
            json!({ "allowed_networks": ["10.0.0.0/33"] }),
            "allowed_networks",
        ),
        (
            json!({ "allowed_networks": ["example.com"] }),
            "allowed_networks",
        ),
        (
            json!({ "allowed_networks": (0..21).map(|i| format!("10.{i}.0.0/16")).collect::<Vec<_>>() }),
            "allowed_networks",
        ),
        (json!({ "monthly_credit_limit": 0 }), "monthly_credit_limit"),
        (
            json!({ "monthly_credit_limit": 1_000_000_000_001_u64 }),
            "monthly_credit_limit",
        ),
        (
            json!({ "monthly_credit_limit": -5 }),
            "monthly_credit_limit",
        ),
        (
            json!({ "monthly_credit_limit": "10" }),
            "monthly_credit_limit",
        ),
        (
            json!({ "monthly_credit_limit": 2.5 }),
            "monthly_credit_limit",
        ),
        (json!({ "scopes": ["documents:delete"] }), "scopes"),
        (json!({ "scopes": "documents:read" }), "scopes"),
    ];
    let (_, key) = create(&app, &user, json!({ "name": "k" })).await;
    let id = key["id"].as_str().unwrap();
    for (fields, field) in cases {
        let mut body = fields.clone();
        body["name"] = json!("x");
        let res = app
            .dash(&user, Method::POST, "/api/v1/keys")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (error, _) = expect_error(res, 400, "invalid_request").await;
        assert_eq!(error["field"], field, "create {fields}: {error}");
        let (error, _) = expect_error(
            patch(&app, &user, id, fields.clone()).await,
            400,
            "invalid_request",
        )
        .await;
        assert_eq!(error["field"], field, "patch {fields}: {error}");
    }
    // Nothing was created or changed.
    let listed = app
        .dash(&user, Method::GET, "/api/v1/keys")
        .send()
        .await
        .unwrap();
    let (_, _, listed) = parts(listed).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get_key(&user, id).await["monthly_credit_limit"],
        Value::Null
    );
}

async fn scopes_refuse_with_403_and_an_rfc_6750_challenge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(10).await;
    let (status, created) = create(
        &app,
        &user,
        json!({ "name": "reader", "scopes": ["credits:read"] }),
    )
    .await;
    assert_eq!(status, 201);
    let key = created["key"].as_str().unwrap();

    assert_eq!(
        app.public_get(key, "/api/v1/public/credits/balance")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.public_get(key, "/api/v1/public/templates")
            .await
            .status(),
        200
    );
    let (status, _, me) = parts(app.public_get(key, "/api/v1/public/me").await).await;
    assert_eq!(status, 200);
    assert_eq!(me["scopes"], json!(["credits:read"]));
    assert_eq!(me["key"]["scopes"], json!(["credits:read"]));

    let (error, h) = expect_error(render(&app, key).await, 403, "insufficient_scope").await;
    assert_eq!(error["required_scope"], "documents:write");
    assert_eq!(
        header(&h, "www-authenticate"),
        r#"Bearer realm="jobtactics", error="insufficient_scope", scope="documents:write""#
    );
    assert!(
        h.get("ratelimit-remaining").is_some(),
        "the key was admitted: {h:?}"
    );
    for (method, path, scope) in [
        (Method::GET, "/api/v1/public/documents", "documents:read"),
        (
            Method::GET,
            "/api/v1/public/documents/doc_x",
            "documents:read",
        ),
        (
            Method::POST,
            "/api/v1/public/templates/executive/purchase",
            "templates:purchase",
        ),
    ] {
        let res = app.public(key, method, path).send().await.unwrap();
        let (error, _) = expect_error(res, 403, "insufficient_scope").await;
        assert_eq!(error["required_scope"], scope, "{path}");
    }
    // Refused before any charge.
    assert_eq!(app.balance(&user).await, 10);

    // Widened by PATCH: the next request may render.
    let id = created["id"].as_str().unwrap();
    let res = patch(
        &app,
        &user,
        id,
        json!({ "scopes": ["credits:read", "documents:write"] }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let rendered = eventually(Duration::from_secs(1), || async {
        render(&app, key).await.status() == 201
    })
    .await;
    assert!(rendered.is_some(), "the new scope did not apply within 1 s");
}

async fn allowed_networks_refuse_other_addresses(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = "127.0.0.1/32".parse().unwrap();
    })
    .await;
    let user = app.user(10).await;
    let (_, created) = create(
        &app,
        &user,
        json!({ "name": "office", "allowed_networks": ["203.0.113.0/24", "2001:db8::/48"] }),
    )
    .await;
    let key = created["key"].as_str().unwrap();
    let me = |from: &'static str| {
        let req = app.public(key, Method::GET, "/api/v1/public/me");
        let req = if from.is_empty() {
            req
        } else {
            req.header("X-Forwarded-For", from)
        };
        async move { req.send().await.unwrap() }
    };
    // The proxy's own address (no X-Forwarded-For) is outside the list.
    let (_, h) = expect_error(me("").await, 401, "network_not_allowed").await;
    assert!(header(&h, "www-authenticate").starts_with("Bearer realm=\"jobtactics\""));
    assert_eq!(me("203.0.113.77").await.status(), 200);
    assert_eq!(me("2001:db8:0:42::1").await.status(), 200);
    expect_error(me("198.51.100.7").await, 401, "network_not_allowed").await;
    // The last untrusted hop counts, not what the client put first.
    expect_error(
        me("203.0.113.5, 198.51.100.7").await,
        401,
        "network_not_allowed",
    )
    .await;

    // Narrowed by PATCH: refused at once.
    let id = created["id"].as_str().unwrap();
    let res = patch(
        &app,
        &user,
        id,
        json!({ "allowed_networks": ["192.0.2.0/24"] }),
    )
    .await;
    assert_eq!(res.status(), 200);
    expect_error(me("203.0.113.77").await, 401, "network_not_allowed").await;
    // Removed: anywhere.
    let res = patch(&app, &user, id, json!({ "allowed_networks": null })).await;
    assert_eq!(res.status(), 200);
    assert_eq!(me("198.51.100.7").await.status(), 200);
}

async fn an_expired_key_is_refused_reads_expired_and_is_final(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(10).await;
    let (_, created) = create(
        &app,
        &user,
        json!({ "name": "quarter", "expires_at": in_days(1) }),
    )
    .await;
    let (key, id) = (
        created["key"].as_str().unwrap(),
        created["id"].as_str().unwrap(),
    );
    // Its expiry passes (no test waits the minute an expiry is at least ahead). A cached key
    // expires by itself; this one is not cached yet, as it was never used.
    let past = SystemClock.now().as_millis() - 1_000;
    execute_sql(
        &app.store,
        &format!("UPDATE api_keys SET expires_at = {past} WHERE id = '{id}'"),
    )
    .await;
    let res = patch(&app, &user, id, json!({})).await;
    let (status, _, body) = parts(res).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    expect_error(
        app.public_get(key, "/api/v1/public/me").await,
        401,
        "expired_api_key",
    )
    .await;
    assert_eq!(app.get_key(&user, id).await["status"], "expired");
    let res = app
        .dash(&user, Method::GET, "/api/v1/keys?status=expired")
        .send()
        .await
        .unwrap();
    let (_, _, listed) = parts(res).await;
    assert_eq!(listed["data"][0]["id"], id, "{listed}");
    let res = app
        .dash(&user, Method::GET, "/api/v1/keys?status=active")
        .send()
        .await
        .unwrap();
    let (_, _, active) = parts(res).await;
    assert!(active["data"].as_array().unwrap().is_empty(), "{active}");
    // Terminal like revoked: no rotation, no change.
    let res = app
        .dash(&user, Method::POST, &format!("/api/v1/keys/{id}/rotate"))
        .json(&json!({ "name": "next" }))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "conflict").await;
    expect_error(
        patch(&app, &user, id, json!({ "name": "renamed" })).await,
        409,
        "conflict",
    )
    .await;
}

async fn a_monthly_limit_admits_exactly_its_credits_under_concurrency(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(1_000).await;
    let (_, created) = create(
        &app,
        &user,
        json!({ "name": "capped", "monthly_credit_limit": 50 }),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (client, url, key) = (
            app.client.clone(),
            app.url("/api/v1/public/documents"),
            key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({ "template_id": "classic", "fields": {} }))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            (status, body)
        }));
    }
    let mut created_docs = 0;
    let mut limited = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            201 => created_docs += 1,
            402 => {
                assert_eq!(body["error"]["type"], "key_credit_limit_reached", "{body}");
                assert_eq!(body["error"]["limit"], 50);
                assert_eq!(body["error"]["spent"], 50);
                let resets =
                    Timestamp::parse_rfc3339(body["error"]["resets_at"].as_str().unwrap()).unwrap();
                assert!(resets > SystemClock.now());
                limited += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((created_docs, limited), (50, 150));
    assert_eq!(app.balance(&user).await, 950);
    let id = created["id"].as_str().unwrap();
    assert_eq!(app.get_key(&user, id).await["spent_this_month"], 50);

    // Raised by PATCH: the key may spend again, up to the new limit.
    let res = patch(&app, &user, id, json!({ "monthly_credit_limit": 51 })).await;
    assert_eq!(res.status(), 200);
    assert_eq!(render(&app, &key).await.status(), 201);
    expect_error(render(&app, &key).await, 402, "key_credit_limit_reached").await;
    // Another key of the same user is not limited by it.
    let (_, other) = app.create_key(&user, "free").await;
    assert_eq!(render(&app, &other).await.status(), 201);
}

async fn a_rotation_copies_the_controls(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(10).await;
    let (_, created) = create(
        &app,
        &user,
        json!({
            "name": "old",
            "expires_at": in_days(30),
            "allowed_networks": ["10.0.0.0/8"],
            "monthly_credit_limit": 7,
            "scopes": ["documents:read"],
        }),
    )
    .await;
    let res = app
        .dash(
            &user,
            Method::POST,
            &format!("/api/v1/keys/{}/rotate", created["id"].as_str().unwrap()),
        )
        .json(&json!({ "name": "new" }))
        .send()
        .await
        .unwrap();
    let (status, _, new) = parts(res).await;
    assert_eq!(status, 201, "{new}");
    for field in [
        "expires_at",
        "allowed_networks",
        "monthly_credit_limit",
        "scopes",
    ] {
        assert_eq!(new[field], created[field], "{field}");
    }
    // The new key is held to them: 127.0.0.1 is not in 10.0.0.0/8.
    expect_error(
        app.public_get(new["key"].as_str().unwrap(), "/api/v1/public/me")
            .await,
        401,
        "network_not_allowed",
    )
    .await;
}

on_both_backends!(
    controls_are_set_on_creation_shown_and_changed_by_patch,
    invalid_controls_are_400_naming_the_field,
    scopes_refuse_with_403_and_an_rfc_6750_challenge,
    allowed_networks_refuse_other_addresses,
    an_expired_key_is_refused_reads_expired_and_is_final,
    a_monthly_limit_admits_exactly_its_credits_under_concurrency,
    a_rotation_copies_the_controls,
);
