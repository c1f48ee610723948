//! Dashboard key management: creation shown once, listing, validation, revocation, rotation,
//! per-user scope and usage tracking.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, eventually, expect_error, parts};

const FIELDS: [&str; 14] = [
    "id",
    "name",
    "preview",
    "status",
    "created_at",
    "last_used_at",
    "usage_count",
    "revoked_at",
    "revokes_at",
    "revocation_reason",
    "expires_at",
    "allowed_networks",
    "monthly_credit_limit",
    "scopes",
];

fn field_names(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn expected(with_key: bool) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = FIELDS.iter().map(|f| (*f).to_owned()).collect();
    if with_key {
        s.insert("key".into());
    }
    s
}

async fn post(app: &TestApp, user: &TestUser, path: &str, body: Value) -> reqwest::Response {
    app.dash(user, Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn a_key_is_shown_once_and_listed_newest_first_without_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let (first, first_key) = app.create_key(&user, "first").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (second, second_key) = app.create_key(&user, "second").await;

    assert_eq!(field_names(&first), expected(true));
    assert!(first_key.starts_with("jt_sk_") && first_key.len() == 44);
    assert!(first_key[6..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        first["preview"],
        format!("{}...{}", &first_key[..10], &first_key[40..])
    );
    assert_eq!(first["name"], "first");
    assert_eq!(first["status"], "active");
    assert_eq!(first["usage_count"], 0);
    for null in ["last_used_at", "revoked_at", "revokes_at"] {
        assert!(first[null].is_null(), "{null}");
    }
    let created = first["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");

    let got = app.get_key(&user, first["id"].as_str().unwrap()).await;
    let mut with_spend = expected(false);
    with_spend.insert("spent_this_month".into());
    assert_eq!(field_names(&got), with_spend);
    assert_eq!(got["preview"], first["preview"]);

    let res = app
        .dash(&user, Method::GET, "/api/v1/keys")
        .send()
        .await
        .unwrap();
    let (status, _, list) = parts(res).await;
    assert_eq!(status, 200);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], second["id"], "newest first");
    assert_eq!(data[1]["id"], first["id"]);
    for k in data {
        assert_eq!(field_names(k), expected(false));
    }
    let text = list.to_string();
    assert!(!text.contains(&first_key) && !text.contains(&second_key));
}

async fn key_names_are_validated_and_unique_among_live_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    for (body, what) in [
        (json!({}), "missing"),
        (json!({ "name": "" }), "empty"),
        (json!({ "name": "   " }), "blank"),
        (json!({ "name": "x".repeat(101) }), "too long"),
        (json!({ "name": "a\u{7}b" }), "control"),
        (json!({ "name": 5 }), "wrong type"),
    ] {
        let (e, _) = expect_error(
            post(&app, &user, "/api/v1/keys", body).await,
            400,
            "invalid_request",
        )
        .await;
        assert_eq!(e["field"], "name", "{what}: {e}");
    }
    let res = app
        .dash(&user, Method::POST, "/api/v1/keys")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let (e, _) = expect_error(res, 400, "invalid_request").await;
    assert!(e.get("field").is_none());
    let res = app
        .dash(&user, Method::POST, "/api/v1/keys")
        .header("content-type", "text/plain")
        .body("{\"name\": \"ci\"}")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_request").await;

    let (ci, _) = app.create_key(&user, "  ci  ").await;
    assert_eq!(ci["name"], "ci", "trimmed");
    expect_error(
        post(&app, &user, "/api/v1/keys", json!({ "name": "ci" })).await,
        409,
        "conflict",
    )
    .await;
    // Another user may use the same name.
    let other = app.user(0).await;
    app.create_key(&other, "ci").await;
    // Once revoked, the name is free again.
    let id = ci["id"].as_str().unwrap();
    let res = post(&app, &user, &format!("/api/v1/keys/{id}/revoke"), json!({})).await;
    assert_eq!(res.status(), 200);
    app.create_key(&user, "ci").await;
    let x = "x".repeat(100);
    app.create_key(&user, &x).await;
}

async fn a_user_has_at_most_25_live_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let mut first = None;
    for i in 0..25 {
        let (k, _) = app.create_key(&user, &format!("k{i}")).await;
        first.get_or_insert(k);
    }
    let (e, _) = expect_error(
        post(&app, &user, "/api/v1/keys", json!({ "name": "k25" })).await,
        409,
        "conflict",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("25"));
    let id = first.unwrap()["id"].as_str().unwrap().to_owned();
    let res = post(&app, &user, &format!("/api/v1/keys/{id}/revoke"), json!({})).await;
    assert_eq!(res.status(), 200);
    app.create_key(&user, "k25").await;
}

async fn revocation_is_immediate_and_idempotent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(5).await;
    let (k, key) = app.create_key(&user, "ci").await;
    let id = k["id"].as_str().unwrap();
    assert_eq!(
        app.public_get(&key, "/api/v1/public/me").await.status(),
        200
    );

    let res = app
        .dash(&user, Method::POST, &format!("/api/v1/keys/{id}/revoke"))
        .send()
        .await
        .unwrap();
    let (status, _, revoked) = parts(res).await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["revoked_at"].is_string());
    assert!(revoked.get("key").is_none());

    let res = app.public_get(&key, "/api/v1/public/me").await;
    let (e, _) = expect_error(res, 401, "revoked_api_key").await;
    assert!(!e.to_string().contains(&key));

    let res = post(&app, &user, &format!("/api/v1/keys/{id}/revoke"), json!({})).await;
    let (status, _, again) = parts(res).await;
    assert_eq!(status, 200);
    assert_eq!(again["revoked_at"], revoked["revoked_at"], "unchanged");
    assert_eq!(app.get_key(&user, id).await["status"], "revoked");

    let res = post(&app, &user, "/api/v1/keys/key_nope/revoke", json!({})).await;
    expect_error(res, 404, "not_found").await;
}

async fn rotation_with_zero_grace_revokes_the_old_key_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(5).await;
    let (old, old_key) = app.create_key(&user, "ci").await;
    let old_id = old["id"].as_str().unwrap();
    let rotate = format!("/api/v1/keys/{old_id}/rotate");

    for (body, field) in [
        (json!({ "grace_period_seconds": 0 }), "name"),
        (
            json!({ "name": "ci-2", "grace_period_seconds": 604_801 }),
            "grace_period_seconds",
        ),
        (
            json!({ "name": "ci-2", "grace_period_seconds": -1 }),
            "grace_period_seconds",
        ),
        (
            json!({ "name": "ci-2", "grace_period_seconds": "60" }),
            "grace_period_seconds",
        ),
    ] {
        let (e, _) = expect_error(
            post(&app, &user, &rotate, body).await,
            400,
            "invalid_request",
        )
        .await;
        assert_eq!(e["field"], field, "{e}");
    }
    assert_eq!(
        app.get_key(&user, old_id).await["status"],
        "active",
        "400 changed nothing"
    );

    let res = post(
        &app,
        &user,
        &rotate,
        json!({ "name": "ci-2", "grace_period_seconds": 0 }),
    )
    .await;
    let (status, _, new) = parts(res).await;
    assert_eq!(status, 201, "{new}");
    assert_eq!(field_names(&new), expected(true));
    assert_eq!(new["name"], "ci-2");
    assert_eq!(new["status"], "active");
    assert_ne!(new["id"], old["id"]);
    let new_key = new["key"].as_str().unwrap();

    let old_now = app.get_key(&user, old_id).await;
    assert_eq!(old_now["status"], "revoked");
    assert!(old_now["revoked_at"].is_string());
    expect_error(
        app.public_get(&old_key, "/api/v1/public/me").await,
        401,
        "revoked_api_key",
    )
    .await;
    assert_eq!(
        app.public_get(new_key, "/api/v1/public/me").await.status(),
        200
    );

    // Rotating a revoked key is a conflict; the default grace is 0, and the old name is free.
    let res = post(&app, &user, &rotate, json!({ "name": "ci-3" })).await;
    expect_error(res, 409, "conflict").await;
    let new_id = new["id"].as_str().unwrap();
    let res = post(
        &app,
        &user,
        &format!("/api/v1/keys/{new_id}/rotate"),
        json!({ "name": "ci" }),
    )
    .await;
    assert_eq!(res.status(), 201);
    assert_eq!(app.get_key(&user, new_id).await["status"], "revoked");
}

async fn rotation_with_grace_keeps_the_old_key_until_revokes_at(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(5).await;
    let (old, old_key) = app.create_key(&user, "ci").await;
    let old_id = old["id"].as_str().unwrap();
    let rotate = format!("/api/v1/keys/{old_id}/rotate");

    // The old key keeps its name while it is expiring.
    let res = post(
        &app,
        &user,
        &rotate,
        json!({ "name": "ci", "grace_period_seconds": 60 }),
    )
    .await;
    expect_error(res, 409, "conflict").await;

    let res = post(
        &app,
        &user,
        &rotate,
        json!({ "name": "ci-2", "grace_period_seconds": 2 }),
    )
    .await;
    let (status, _, new) = parts(res).await;
    assert_eq!(status, 201, "{new}");
    let new_key = new["key"].as_str().unwrap().to_owned();

    let expiring = app.get_key(&user, old_id).await;
    assert_eq!(expiring["status"], "expiring");
    assert!(expiring["revoked_at"].is_null());
    let revokes_at = expiring["revokes_at"].as_str().unwrap().to_owned();
    assert_eq!(
        app.public_get(&old_key, "/api/v1/public/me").await.status(),
        200
    );
    assert_eq!(
        app.public_get(&new_key, "/api/v1/public/me").await.status(),
        200
    );

    let stopped = eventually(Duration::from_secs(6), || async {
        app.public_get(&old_key, "/api/v1/public/me").await.status() == 401
    })
    .await;
    assert!(
        stopped.is_some(),
        "old key still accepted after its grace period"
    );
    expect_error(
        app.public_get(&old_key, "/api/v1/public/me").await,
        401,
        "revoked_api_key",
    )
    .await;
    let after = app.get_key(&user, old_id).await;
    assert_eq!(after["status"], "revoked");
    assert_eq!(after["revoked_at"], revokes_at.as_str());
    assert!(after["revokes_at"].is_null());
    assert_eq!(
        app.public_get(&new_key, "/api/v1/public/me").await.status(),
        200
    );
    let res = post(&app, &user, &rotate, json!({ "name": "ci-3" })).await;
    expect_error(res, 409, "conflict").await;
}

async fn users_never_reach_each_others_keys_or_documents(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user(5).await;
    let bob = app.user(5).await;
    let (a, a_key) = app.create_key(&alice, "alice").await;
    let (_, b_key) = app.create_key(&bob, "bob").await;
    let a_id = a["id"].as_str().unwrap();

    let res = app
        .dash(&bob, Method::GET, &format!("/api/v1/keys/{a_id}"))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "not_found").await;
    let res = post(
        &app,
        &bob,
        &format!("/api/v1/keys/{a_id}/revoke"),
        json!({}),
    )
    .await;
    expect_error(res, 404, "not_found").await;
    let res = post(
        &app,
        &bob,
        &format!("/api/v1/keys/{a_id}/rotate"),
        json!({ "name": "mine" }),
    )
    .await;
    expect_error(res, 404, "not_found").await;
    let res = app
        .dash(&bob, Method::GET, "/api/v1/keys")
        .send()
        .await
        .unwrap();
    let (_, _, list) = parts(res).await;
    assert!(!list.to_string().contains(a_id));
    assert_eq!(app.get_key(&alice, a_id).await["status"], "active");
    assert_eq!(
        app.public_get(&a_key, "/api/v1/public/me").await.status(),
        200
    );

    let res = app
        .public(&a_key, Method::POST, "/api/v1/public/documents")
        .json(&json!({ "template_id": "classic", "fields": { "name": "Alice" } }))
        .send()
        .await
        .unwrap();
    let (status, _, doc) = parts(res).await;
    assert_eq!(status, 201, "{doc}");
    let doc_id = doc["id"].as_str().unwrap();
    let res = app
        .public_get(&b_key, &format!("/api/v1/public/documents/{doc_id}"))
        .await;
    expect_error(res, 404, "not_found").await;
    let res = app.public_get(&b_key, "/api/v1/public/documents").await;
    let (_, _, docs) = parts(res).await;
    assert_eq!(docs, json!({ "data": [], "has_more": false }));
    let res = app
        .public_get(&b_key, "/api/v1/public/credits/balance")
        .await;
    assert_eq!(parts(res).await.2, json!({ "balance": 5 }));
    assert_eq!(app.balance(&alice).await, 4);
}

async fn usage_is_counted_for_every_authenticated_request_and_shown_within_2s(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(5).await;
    let (k, key) = app.create_key(&user, "ci").await;
    let id = k["id"].as_str().unwrap();
    assert_eq!(
        app.public_get(&key, "/api/v1/public/credits/balance")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.public_get(&key, "/api/v1/public/documents/doc_missing")
            .await
            .status(),
        404
    );
    let res = app
        .public(&key, Method::POST, "/api/v1/public/documents")
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Not counted: refused before a key was authenticated.
    let res = app
        .public_get(&format!("{key}x"), "/api/v1/public/me")
        .await;
    assert_eq!(res.status(), 401);

    let shown = eventually(Duration::from_secs(2), || async {
        app.get_key(&user, id).await["usage_count"] == 3
    })
    .await;
    assert!(shown.is_some(), "usage not visible within 2 s");
    let k = app.get_key(&user, id).await;
    assert!(k["last_used_at"].is_string());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.get_key(&user, id).await["usage_count"],
        3,
        "no double counting"
    );
}

on_both_backends!(
    a_key_is_shown_once_and_listed_newest_first_without_secrets,
    key_names_are_validated_and_unique_among_live_keys,
    a_user_has_at_most_25_live_keys,
    revocation_is_immediate_and_idempotent,
    rotation_with_zero_grace_revokes_the_old_key_at_once,
    rotation_with_grace_keeps_the_old_key_until_revokes_at,
    users_never_reach_each_others_keys_or_documents,
    usage_is_counted_for_every_authenticated_request_and_shown_within_2s,
);
