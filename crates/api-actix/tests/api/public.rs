//! Public endpoints: balance, me, templates, purchases, documents; 400/402/403/404/413.

use std::collections::BTreeMap;

use futures_like::join_all;
use keys_domain::ports::AccountStore;
use keys_domain::{GrantAmount, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, expect_error, parts};

const ALL_SCOPES: [&str; 4] = [
    "credits:read",
    "documents:read",
    "documents:write",
    "templates:purchase",
];

/// A tiny join_all so the tests need no futures crate.
mod futures_like {
    pub async fn join_all<F>(futs: Vec<F>) -> Vec<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}

async fn render(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.public(key, Method::POST, "/api/v1/public/documents")
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn balance_me_and_templates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(120).await;
    let (k, key) = app.create_key(&user, "ci-bot").await;

    let (status, h, body) =
        parts(app.public_get(&key, "/api/v1/public/credits/balance").await).await;
    assert_eq!((status, body), (200, json!({ "balance": 120 })));
    assert!(h.get("x-request-id").is_some());

    let (status, _, me) = parts(app.public_get(&key, "/api/v1/public/me").await).await;
    assert_eq!(status, 200);
    assert_eq!(
        me,
        json!({
            "user_id": user.id.as_str(),
            "key": { "id": k["id"], "name": "ci-bot", "preview": k["preview"], "scopes": ALL_SCOPES },
            "scopes": ALL_SCOPES,
        })
    );
    assert!(!me.to_string().contains(&key));

    let (status, _, templates) =
        parts(app.public_get(&key, "/api/v1/public/templates").await).await;
    assert_eq!(status, 200);
    let data = templates["data"].as_array().unwrap();
    let by_id: BTreeMap<&str, &Value> = data
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t))
        .collect();
    assert_eq!(
        by_id["classic"],
        &json!({ "id": "classic", "name": by_id["classic"]["name"], "premium": false, "price": 0, "owned": true })
    );
    assert_eq!(by_id["executive"]["premium"], true);
    assert_eq!(by_id["executive"]["price"], 50);
    assert_eq!(by_id["executive"]["owned"], false);

    let (status, _, dash) = parts(
        app.dash(&user, Method::GET, "/api/v1/credits/balance")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, dash), (200, json!({ "balance": 120 })));
}

async fn purchases_charge_once_and_a_402_debits_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(30).await;
    let (_, key) = app.create_key(&user, "ci").await;
    let buy = |id: &str| {
        app.public(
            &key,
            Method::POST,
            &format!("/api/v1/public/templates/{id}/purchase"),
        )
        .send()
    };

    let (e, _) = expect_error(buy("executive").await.unwrap(), 402, "insufficient_credits").await;
    assert_eq!(e["required"], 50);
    assert_eq!(e["balance"], 30);
    assert_eq!(e["top_up_url"], "https://app.jobtactics.io/credits");
    assert_eq!(app.balance(&user).await, 30);
    assert_eq!(app.ledger_len(&user).await, 1);

    expect_error(buy("nope").await.unwrap(), 404, "not_found").await;

    app.store
        .grant(
            &user.id,
            GrantAmount::new(40).unwrap(),
            Timestamp::from_millis(0),
        )
        .await
        .unwrap();
    let (status, _, p) = parts(buy("executive").await.unwrap()).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        p,
        json!({ "template_id": "executive", "owned": true, "charged": 50, "balance": 20 })
    );
    let (_, _, again) = parts(buy("executive").await.unwrap()).await;
    assert_eq!(
        again,
        json!({ "template_id": "executive", "owned": true, "charged": 0, "balance": 20 })
    );
    let (_, _, free) = parts(buy("classic").await.unwrap()).await;
    assert_eq!(
        free,
        json!({ "template_id": "classic", "owned": true, "charged": 0, "balance": 20 })
    );
    assert_eq!(app.balance(&user).await, 20);
    assert_eq!(app.ledger_len(&user).await, 3, "grant, grant, one purchase");

    let (_, _, templates) = parts(app.public_get(&key, "/api/v1/public/templates").await).await;
    let exec = templates["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "executive")
        .unwrap()
        .clone();
    assert_eq!(exec["owned"], true);

    // Now owned, the premium template renders.
    let res = render(
        &app,
        &key,
        &json!({ "template_id": "executive", "fields": { "name": "Ada" } }),
    )
    .await;
    assert_eq!(res.status(), 201);
}

async fn documents_render_and_refusals_debit_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(2).await;
    let (_, key) = app.create_key(&user, "ci").await;

    let (e, _) = expect_error(
        render(
            &app,
            &key,
            &json!({ "template_id": "executive", "fields": {} }),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(e["reason"], "template_not_purchased");
    expect_error(
        render(&app, &key, &json!({ "template_id": "nope" })).await,
        404,
        "not_found",
    )
    .await;
    for (body, field) in [
        (json!({ "fields": { "name": "Ada" } }), "template_id"),
        (json!({ "template_id": 7 }), "template_id"),
        (
            json!({ "template_id": "classic", "fields": { "name": 1 } }),
            "fields.name",
        ),
        (json!({ "template_id": "classic", "fields": [] }), "fields"),
    ] {
        let (e, _) = expect_error(render(&app, &key, &body).await, 400, "invalid_request").await;
        assert_eq!(e["field"], field, "{e}");
    }
    for raw in ["{", "[]", "null", "\"x\"", ""] {
        let res = app
            .public(&key, Method::POST, "/api/v1/public/documents")
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "invalid_request").await;
    }
    assert_eq!(app.balance(&user).await, 2);
    assert_eq!(app.ledger_len(&user).await, 1);

    let res = render(
        &app,
        &key,
        &json!({ "template_id": "classic", "fields": { "name": "Ada" } }),
    )
    .await;
    let (status, _, first) = parts(res).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["template_id"], "classic");
    assert_eq!(first["charged"], 1);
    assert_eq!(first["balance"], 1);
    assert!(first["content"].as_str().unwrap().contains("Ada"));
    assert!(first["id"].is_string() && first["created_at"].is_string());

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let res = render(
        &app,
        &key,
        &json!({ "template_id": "classic", "fields": { "name": "Bea" } }),
    )
    .await;
    let (_, _, second) = parts(res).await;
    assert_eq!(second["balance"], 0);

    let (e, _) = expect_error(
        render(&app, &key, &json!({ "template_id": "classic" })).await,
        402,
        "insufficient_credits",
    )
    .await;
    assert_eq!(
        (e["required"].clone(), e["balance"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(app.balance(&user).await, 0);
    assert_eq!(app.ledger_len(&user).await, 3);

    let (_, _, list) = parts(app.public_get(&key, "/api/v1/public/documents").await).await;
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], second["id"], "newest first");
    assert_eq!(data[1]["id"], first["id"]);
    let id = first["id"].as_str().unwrap();
    let (status, _, got) = parts(
        app.public_get(&key, &format!("/api/v1/public/documents/{id}"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["content"], first["content"]);
    expect_error(
        app.public_get(&key, "/api/v1/public/documents/doc_nope")
            .await,
        404,
        "not_found",
    )
    .await;
}

async fn concurrent_renders_never_overspend(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(25).await;
    let (_, key) = app.create_key(&user, "ci").await;
    let requests = (0..60)
        .map(|i| {
            let req = app
                .public(&key, Method::POST, "/api/v1/public/documents")
                .json(&json!({ "template_id": "classic", "fields": { "name": format!("n{i}") } }));
            async move { req.send().await.unwrap().status().as_u16() }
        })
        .collect();
    let statuses = join_all(requests).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    assert_eq!((created, refused), (25, 35), "{statuses:?}");
    assert_eq!(app.balance(&user).await, 0);
    let ledger = app.store.ledger(&user.id).await.unwrap();
    assert_eq!(ledger.len(), 26);
    assert_eq!(ledger.iter().map(|e| e.delta).sum::<i64>(), 0);
    let (_, _, list) = parts(
        app.public_get(&key, "/api/v1/public/documents?limit=100")
            .await,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 25);
    assert_eq!(list["has_more"], false);
}

async fn bodies_over_64_kib_are_refused_with_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(5).await;
    let (_, key) = app.create_key(&user, "ci").await;
    let big = json!({ "template_id": "classic", "fields": { "name": "x".repeat(70 * 1024) } });
    expect_error(render(&app, &key, &big).await, 413, "payload_too_large").await;
    let res = app
        .dash(&user, Method::POST, "/api/v1/keys")
        .json(&json!({ "name": "x".repeat(70 * 1024) }))
        .send()
        .await
        .unwrap();
    expect_error(res, 413, "payload_too_large").await;
    assert_eq!(app.balance(&user).await, 5);
    // Just under the limit is fine.
    let fits = json!({ "template_id": "classic", "fields": { "name": "x".repeat(60 * 1024) } });
    assert_eq!(render(&app, &key, &fits).await.status(), 201);
}

async fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let (_, key) = app.create_key(&user, "ci").await;
    for path in ["/", "/nope", "/api/v1/nope", "/api/v2/keys"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        expect_error(res, 404, "not_found").await;
    }
    expect_error(
        app.public_get(&key, "/api/v1/public/nope").await,
        404,
        "not_found",
    )
    .await;
    let res = app
        .dash(&user, Method::DELETE, "/api/v1/keys")
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["type"], "method_not_allowed");
    let res = app
        .public(&key, Method::PUT, "/api/v1/public/documents")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
}

on_both_backends!(
    balance_me_and_templates,
    purchases_charge_once_and_a_402_debits_nothing,
    documents_render_and_refusals_debit_nothing,
    concurrent_renders_never_overspend,
    bodies_over_64_kib_are_refused_with_413,
    unknown_routes_and_methods_answer_json,
);
