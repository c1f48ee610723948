//! HTTP details at the edge (issue 11, items 1, 4 and 10): compressed bodies, slow bodies,
//! ambiguous framing, `HEAD`, `Allow` on 405 and `Cache-Control: no-store` on full keys.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp, expect_error, header, parts};
use crate::raw_http::exchange;

fn post_keys_head(app: &TestApp, token: &str, extra: &str, length: usize) -> String {
    format!(
        "POST /api/v1/keys HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\n{extra}Content-Length: {length}\r\n\r\n",
        crate::raw_http::addr(&app.base)
    )
}

async fn key_count(app: &TestApp, token: &str) -> usize {
    let res = app
        .client
        .get(app.url("/api/v1/keys"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().len()
}

/// Item 1: a compressed body is 415 before it is read, whatever the coding; nothing is created.
async fn compressed_bodies_are_refused_with_415_unread(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    for coding in ["gzip", "zstd", "br", "deflate", "identity, gzip"] {
        let res = app
            .dash(&user, Method::POST, "/api/v1/keys")
            .header("content-type", "application/json")
            .header("content-encoding", coding)
            .body(r#"{"name": "bomb"}"#)
            .send()
            .await
            .unwrap();
        expect_error(res, 415, "unsupported_media_type").await;
    }
    // Announced but never sent: the answer does not wait for the body.
    let head = post_keys_head(&app, &user.token, "Content-Encoding: zstd\r\n", 33_000);
    let got = exchange(
        &app.base,
        head,
        vec![],
        Duration::ZERO,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(got.status(), 415, "{}", got.text);
    assert!(got.text.contains("unsupported_media_type"), "{}", got.text);
    assert!(got.closed, "the unread body's connection is closed");
    assert_eq!(key_count(&app, &user.token).await, 0);
    // `identity` is no coding at all.
    let res = app
        .dash(&user, Method::POST, "/api/v1/keys")
        .header("content-encoding", "identity")
        .json(&json!({ "name": "plain" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// Item 4: a body trickled in slower than the deadline is 408 and the connection is closed.
async fn a_slow_body_is_408_and_closed(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, |c| c.tuning.body_timeout = Duration::from_secs(1)).await;
    let user = app.user(0).await;
    let head = post_keys_head(&app, &user.token, "", 60_000);
    let trickle = vec![b"{".to_vec(); 60];
    let got = exchange(
        &app.base,
        head,
        trickle,
        Duration::from_millis(200),
        Duration::from_secs(8),
    )
    .await;
    assert!(
        got.closed,
        "still open after {:?}: {}",
        got.elapsed, got.text
    );
    assert_eq!(got.status(), 408, "{}", got.text);
    assert!(got.text.contains("request_timeout"), "{}", got.text);
    assert!(got.elapsed < Duration::from_secs(5), "{:?}", got.elapsed);
    assert_eq!(key_count(&app, &user.token).await, 0);
}

/// Item 10: `Content-Length` with `Transfer-Encoding` is 400 and closes the connection, so a
/// request hidden in the body is never answered.
async fn content_length_with_transfer_encoding_is_400_and_closed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let smuggled = format!(
        "GET /api/v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        user.token
    );
    let body = format!("{:x}\r\n{{\"name\":\"a\"}}\r\n0\r\n\r\n{smuggled}", 12);
    let head = format!(
        "POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{body}",
        user.token
    );
    let got = exchange(
        &app.base,
        head,
        vec![],
        Duration::ZERO,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(got.status(), 400, "{}", got.text);
    assert!(got.text.contains("invalid_request"), "{}", got.text);
    assert!(got.closed, "{}", got.text);
    // A request read behind it on the same connection is refused alike, never served.
    assert!(
        !got.text.contains("HTTP/1.1 200"),
        "the smuggled request was served: {}",
        got.text
    );
    assert_eq!(
        got.responses(),
        got.text.matches("HTTP/1.1 400 ").count(),
        "{}",
        got.text
    );
    assert_eq!(key_count(&app, &user.token).await, 0);
}

/// Item 10: `HEAD` wherever `GET` works: same status and headers, no body.
async fn head_works_wherever_get_does(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(3).await;
    let (created, key) = app.create_key(&user, "ci").await;
    let id = created["id"].as_str().unwrap();
    let public = [
        "/api/v1/public/me",
        "/api/v1/public/credits/balance",
        "/api/v1/public/templates",
        "/api/v1/public/documents",
    ];
    let dashboard = [
        "/api/v1/keys".to_owned(),
        format!("/api/v1/keys/{id}"),
        "/api/v1/credits/balance".to_owned(),
    ];
    for path in ["/healthz", "/readyz"] {
        let res = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.text().await.unwrap(), "", "{path}");
    }
    for path in public {
        let res = app.public(&key, Method::HEAD, path).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.headers().contains_key("ratelimit-remaining"), "{path}");
        assert_eq!(res.text().await.unwrap(), "", "{path}");
    }
    for path in &dashboard {
        let res = app.dash(&user, Method::HEAD, path).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.text().await.unwrap(), "", "{path}");
    }
    // HEAD is authenticated like GET.
    let res = app
        .client
        .head(app.url("/api/v1/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// Item 10: a 405 names the methods the resource serves, and each of them is served.
async fn method_not_allowed_names_what_is_allowed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let (created, key) = app.create_key(&user, "ci").await;
    let id = created["id"].as_str().unwrap();
    let cases: Vec<(String, &str, bool)> = vec![
        ("/healthz".into(), "GET, HEAD", false),
        ("/readyz".into(), "GET, HEAD", false),
        ("/api/v1/public/me".into(), "GET, HEAD", false),
        ("/api/v1/public/credits/balance".into(), "GET, HEAD", false),
        ("/api/v1/public/templates".into(), "GET, HEAD", false),
        (
            "/api/v1/public/templates/classic/purchase".into(),
            "POST",
            false,
        ),
        ("/api/v1/public/documents".into(), "GET, HEAD, POST", false),
        ("/api/v1/public/documents/doc_x".into(), "GET, HEAD", false),
        ("/api/v1/keys".into(), "GET, HEAD, POST", true),
        (format!("/api/v1/keys/{id}"), "GET, HEAD, PATCH", true),
        (format!("/api/v1/keys/{id}/clients"), "GET, HEAD", true),
        (format!("/api/v1/keys/{id}/revoke"), "POST", true),
        (format!("/api/v1/keys/{id}/rotate"), "POST", true),
        ("/api/v1/credits/balance".into(), "GET, HEAD", true),
    ];
    let send = |path: &str, method: Method, dashboard: bool| {
        let req = app.client.request(method, app.url(path));
        if dashboard {
            req.bearer_auth(&user.token)
        } else {
            req.bearer_auth(&key)
        }
    };
    for (path, allow, dashboard) in &cases {
        let res = send(path, Method::from_bytes(b"PUT").unwrap(), *dashboard)
            .send()
            .await
            .unwrap();
        let (e, h) = expect_error(res, 405, "method_not_allowed").await;
        assert_eq!(header(&h, "allow"), *allow, "{path}: {e}");
        for method in allow.split(", ") {
            let res = send(
                path,
                Method::from_bytes(method.as_bytes()).unwrap(),
                *dashboard,
            )
            .json(&json!({}))
            .send()
            .await
            .unwrap();
            assert_ne!(res.status(), 405, "{method} {path}");
        }
    }
}

/// Item 10: a response that carries a full key is never stored by a cache.
async fn responses_with_a_full_key_are_no_store(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let res = app
        .dash(&user, Method::POST, "/api/v1/keys")
        .json(&json!({ "name": "ci" }))
        .send()
        .await
        .unwrap();
    let (status, h, body) = parts(res).await;
    assert_eq!(status, 201);
    assert_eq!(header(&h, "cache-control"), "no-store");
    let id = body["id"].as_str().unwrap();
    let res = app
        .dash(&user, Method::POST, &format!("/api/v1/keys/{id}/rotate"))
        .json(&json!({ "name": "ci-2" }))
        .send()
        .await
        .unwrap();
    let (status, h, body) = parts(res).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["key"].is_string());
    assert_eq!(header(&h, "cache-control"), "no-store");
}

on_both_backends!(
    compressed_bodies_are_refused_with_415_unread,
    a_slow_body_is_408_and_closed,
    content_length_with_transfer_encoding_is_400_and_closed,
    head_works_wherever_get_does,
    method_not_allowed_names_what_is_allowed,
    responses_with_a_full_key_are_no_store,
);
