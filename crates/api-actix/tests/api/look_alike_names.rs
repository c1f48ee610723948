//! Key names that look alike (`docs/domain.md`, key names): invisible format and
//! separator characters are refused, and names are NFC-normalised before the uniqueness check.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp, expect_error, parts};

async fn invisible_characters_are_refused_and_normalised_names_collide(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let post = |name: &str| {
        app.dash(&user, Method::POST, "/api/v1/keys")
            .json(&json!({ "name": name }))
            .send()
    };
    app.create_key(&user, "ci-bot").await;
    for name in [
        "ci-bot\u{200b}",
        "\u{202e}ci-bot",
        "ci-\u{200d}bot",
        "ci-bot\u{2028}x",
        "ci-bot\u{2029}x",
        "\u{feff}ci-bot",
    ] {
        let (error, _) = expect_error(post(name).await.unwrap(), 400, "invalid_request").await;
        assert_eq!(error["field"], "name", "{name:?}");
    }

    // A decomposed accent is stored composed, and the composed spelling is then taken.
    let (status, _, body) = parts(post("cafe\u{301}").await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "caf\u{e9}");
    expect_error(post("caf\u{e9}").await.unwrap(), 409, "conflict").await;

    // Rotation names follow the same rules.
    let id = body["id"].as_str().unwrap();
    let res = app
        .dash(&user, Method::POST, &format!("/api/v1/keys/{id}/rotate"))
        .json(&json!({ "name": "ci-bot\u{200b}" }))
        .send()
        .await
        .unwrap();
    let (error, _) = expect_error(res, 400, "invalid_request").await;
    assert_eq!(error["field"], "name");
}

on_both_backends!(invisible_characters_are_refused_and_normalised_names_collide);
