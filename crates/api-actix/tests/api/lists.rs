//! Paged lists (`docs/api.md`, "Lists"): `limit`, `starting_after`, `has_more`, the keys' `status` filter, document
//! items without `content`, the dashboard ledger, and a 400 naming the field for bad values.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, expect_error, parts};

/// `page` without its items' sealed cursors (fresh in every response).
fn strip_cursors(mut page: Value) -> Value {
    if let Some(items) = page["data"].as_array_mut() {
        for item in items {
            if let Some(o) = item.as_object_mut() {
                o.remove("cursor");
            }
        }
    }
    page
}

async fn dash_get(app: &TestApp, user: &TestUser, path: &str) -> Value {
    let res = app.dash(user, Method::GET, path).send().await.unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Follows `starting_after` from `path` until `has_more` is false; the pages' `data`.
async fn walk(
    mut get: impl AsyncFnMut(String) -> Value,
    path: &str,
    cursor_of: &str,
) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut url = path.to_owned();
    loop {
        let body = get(url.clone()).await;
        let data = body["data"].as_array().unwrap().clone();
        let more = body["has_more"].as_bool().expect("has_more is a boolean");
        let sep = if path.contains('?') { '&' } else { '?' };
        if let Some(last) = data.last() {
            url = format!(
                "{path}{sep}starting_after={}",
                last[cursor_of].as_str().unwrap()
            );
        }
        pages.push(data);
        if !more {
            return pages;
        }
    }
}

fn ids(pages: &[Vec<Value>]) -> Vec<String> {
    pages
        .iter()
        .flatten()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn key_lists_page_newest_first_and_filter_by_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let mut created = Vec::new();
    for i in 0..7 {
        let (key, _) = app.create_key(&user, &format!("k{i}")).await;
        created.push(key["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    for id in &created[1..3] {
        let res = app
            .dash(&user, Method::POST, &format!("/api/v1/keys/{id}/revoke"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let pages = walk(
        async |url| dash_get(&app, &user, &url).await,
        "/api/v1/keys?limit=3",
        "id",
    )
    .await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    assert_eq!(ids(&pages), newest_first);
    assert!(pages.iter().flatten().all(|k| k.get("key").is_none()));

    // The default limit is 20: all 7 on one page.
    let all = dash_get(&app, &user, "/api/v1/keys").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 7);
    assert_eq!(all["has_more"], false);

    let revoked = walk(
        async |url| dash_get(&app, &user, &url).await,
        "/api/v1/keys?status=revoked&limit=1",
        "id",
    )
    .await;
    assert_eq!(ids(&revoked), vec![created[2].clone(), created[1].clone()]);
    assert!(revoked.iter().flatten().all(|k| k["status"] == "revoked"));
    let active = dash_get(&app, &user, "/api/v1/keys?status=active&limit=100").await;
    let active_ids: BTreeSet<&str> = active["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(active_ids.len(), 5);
    assert!(!active_ids.contains(created[1].as_str()));
    let expiring = dash_get(&app, &user, "/api/v1/keys?status=expiring").await;
    assert_eq!(expiring, json!({ "data": [], "has_more": false }));

    // Another user's page is their own.
    let other = app.user(0).await;
    let theirs = dash_get(&app, &other, "/api/v1/keys").await;
    assert_eq!(theirs, json!({ "data": [], "has_more": false }));
}

async fn document_lists_page_newest_first_without_content(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(10).await;
    let (_, key) = app.create_key(&user, "docs").await;
    let mut created = Vec::new();
    for i in 0..5 {
        let res = app
            .public(&key, Method::POST, "/api/v1/public/documents")
            .json(&json!({ "template_id": "classic", "fields": { "name": format!("Ada {i}") } }))
            .send()
            .await
            .unwrap();
        let (status, _, body) = parts(res).await;
        assert_eq!(status, 201, "{body}");
        created.push(body["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let get = async |url: String| {
        let (status, _, body) = parts(app.public_get(&key, &url).await).await;
        assert_eq!(status, 200, "{body}");
        body
    };
    let pages = walk(get, "/api/v1/public/documents?limit=2", "id").await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    assert_eq!(
        ids(&pages),
        created.iter().rev().cloned().collect::<Vec<_>>()
    );
    for item in pages.iter().flatten() {
        let fields: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, BTreeSet::from(["id", "template_id", "created_at"]));
    }
    // The document itself still has its content.
    let (status, _, one) = parts(
        app.public_get(&key, &format!("/api/v1/public/documents/{}", created[0]))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(one["content"].as_str().unwrap().contains("Ada 0"));
}

async fn the_ledger_lists_entries_newest_first_with_cursors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(5).await;
    let (_, key) = app.create_key(&user, "ledger").await;
    for _ in 0..3 {
        let res = app
            .public(&key, Method::POST, "/api/v1/public/documents")
            .json(&json!({ "template_id": "classic", "fields": {} }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let pages = walk(
        async |url| dash_get(&app, &user, &url).await,
        "/api/v1/credits/ledger?limit=3",
        "cursor",
    )
    .await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 1]);
    let entries: Vec<&Value> = pages.iter().flatten().collect();
    let shape: Vec<(i64, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["delta"].as_i64().unwrap(),
                e["balance_after"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shape, vec![(-1, 2), (-1, 3), (-1, 4), (5, 5)]);
    assert_eq!(entries[3]["reason"], "grant");
    for e in &entries {
        let fields: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            BTreeSet::from(["delta", "balance_after", "reason", "created_at", "cursor"])
        );
        assert!(e["created_at"].as_str().unwrap().ends_with('Z'));
    }
    // Only dashboard tokens read it.
    let res = app.public_get(&key, "/api/v1/credits/ledger").await;
    expect_error(res, 401, "api_key_not_accepted").await;
    // Another user's ledger is not this one.
    let other = app.user(0).await;
    let theirs = dash_get(&app, &other, "/api/v1/credits/ledger").await;
    assert_eq!(theirs, json!({ "data": [], "has_more": false }));
}

async fn bad_list_parameters_are_400_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(1).await;
    let other = app.user(1).await;
    let (theirs, _) = app.create_key(&other, "theirs").await;
    let (_, key) = app.create_key(&user, "mine").await;
    let their_key = format!(
        "/api/v1/keys?starting_after={}",
        theirs["id"].as_str().unwrap()
    );
    for (path, field) in [
        ("/api/v1/keys?limit=0", "limit"),
        ("/api/v1/keys?limit=101", "limit"),
        ("/api/v1/keys?limit=ten", "limit"),
        ("/api/v1/keys?limit=-1", "limit"),
        ("/api/v1/keys?status=deleted", "status"),
        ("/api/v1/keys?status=ACTIVE", "status"),
        ("/api/v1/keys?starting_after=key_nope", "starting_after"),
        (their_key.as_str(), "starting_after"),
        ("/api/v1/credits/ledger?limit=1000", "limit"),
        (
            "/api/v1/credits/ledger?starting_after=abc",
            "starting_after",
        ),
        ("/api/v1/credits/ledger?starting_after=-1", "starting_after"),
    ] {
        let res = app.dash(&user, Method::GET, path).send().await.unwrap();
        let (error, _) = expect_error(res, 400, "invalid_request").await;
        assert_eq!(error["field"], field, "{path}");
    }
    // An empty starting_after is the same as none: the first page.
    for list in ["/api/v1/keys", "/api/v1/credits/ledger"] {
        let first = dash_get(&app, &user, list).await;
        let empty = dash_get(&app, &user, &format!("{list}?starting_after=")).await;
        assert_eq!(strip_cursors(empty), strip_cursors(first), "{list}");
    }
    // Ledger cursors are sealed: they read as no number, and work only for their owner.
    let mine = dash_get(&app, &user, "/api/v1/credits/ledger").await;
    let cursor = mine["data"][0]["cursor"].as_str().unwrap().to_owned();
    assert!(
        cursor.len() >= 40 && !cursor.bytes().all(|b| b.is_ascii_digit()),
        "{cursor}"
    );
    let ok = app
        .dash(
            &user,
            Method::GET,
            &format!("/api/v1/credits/ledger?starting_after={cursor}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "the owner's own cursor");
    let mut tampered = cursor.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (who, text) in [
        (&other, &cursor),
        (&user, &tampered),
        (&user, &"1".to_owned()),
    ] {
        let res = app
            .dash(
                who,
                Method::GET,
                &format!("/api/v1/credits/ledger?starting_after={text}"),
            )
            .send()
            .await
            .unwrap();
        let (error, _) = expect_error(res, 400, "invalid_request").await;
        assert_eq!(error["field"], "starting_after", "{text}");
    }
    for (path, field) in [
        ("/api/v1/public/documents?limit=0", "limit"),
        (
            "/api/v1/public/documents?starting_after=doc_nope",
            "starting_after",
        ),
    ] {
        let (error, _) =
            expect_error(app.public_get(&key, path).await, 400, "invalid_request").await;
        assert_eq!(error["field"], field, "{path}");
    }
    // Credentials are checked before parameters.
    let res = app
        .client
        .get(app.url("/api/v1/keys?limit=0"))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "missing_token").await;
}

on_both_backends!(
    key_lists_page_newest_first_and_filter_by_status,
    document_lists_page_newest_first_without_content,
    the_ledger_lists_entries_newest_first_with_cursors,
    bad_list_parameters_are_400_naming_the_field,
);
