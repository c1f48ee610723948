//! The two credentials and every 401 of the contract's table.

use std::time::Duration;

use adapters_jwt::JwtKeys;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keys_domain::ports::{Clock, SystemClock};
use keys_domain::random::OsRandom;
use keys_domain::{ApiKeySecret, UserId};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, CHALLENGE, CHALLENGE_INVALID, TestApp, expect_error, header, parts};

const PUBLIC: &str = "/api/v1/public/credits/balance";
const DASHBOARD: &str = "/api/v1/keys";

async fn public_with(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url(PUBLIC));
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    req.send().await.unwrap()
}

async fn dashboard_with(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url(DASHBOARD));
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    req.send().await.unwrap()
}

async fn public_endpoints_accept_only_well_formed_live_api_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(10).await;
    let (_, key) = app.create_key(&user, "ci").await;

    let (_, h) = expect_error(public_with(&app, None).await, 401, "missing_api_key").await;
    assert_eq!(header(&h, "www-authenticate"), CHALLENGE);

    let mut bad_alphabet = key.clone();
    bad_alphabet.replace_range(12..13, "-");
    let mut bad_checksum = key.clone();
    let last = if key.ends_with('0') { "1" } else { "0" };
    bad_checksum.replace_range(43..44, last);
    let malformed = [
        key.replacen("jt_sk_", "jt_pk_", 1),
        key[..43].to_owned(),
        format!("{key}A"),
        bad_alphabet,
        bad_checksum,
        "not-a-key".to_owned(),
    ];
    for token in &malformed {
        let res = public_with(&app, Some(&format!("Bearer {token}"))).await;
        let (status, h, body) = parts(res).await;
        assert_eq!(status, 401, "{token}: {body}");
        assert_eq!(body["error"]["type"], "malformed_api_key", "{token}");
        assert_eq!(header(&h, "www-authenticate"), CHALLENGE_INVALID);
        assert!(!body.to_string().contains(token.as_str()), "echoed: {body}");
    }

    let unknown = ApiKeySecret::generate(&OsRandom);
    let res = public_with(&app, Some(&format!("Bearer {}", unknown.expose()))).await;
    let (e, h) = expect_error(res, 401, "invalid_api_key").await;
    assert_eq!(header(&h, "www-authenticate"), CHALLENGE_INVALID);
    assert!(!e.to_string().contains(unknown.expose()));

    for other in [
        format!("Bearer {}", user.token),
        "Basic dXNlcjpwYXNz".to_owned(),
        format!("Token {key}"),
    ] {
        let res = public_with(&app, Some(&other)).await;
        let (e, h) = expect_error(res, 401, "unsupported_credential").await;
        assert_eq!(header(&h, "www-authenticate"), CHALLENGE_INVALID);
        assert!(!e.to_string().contains(&key));
    }

    for two in [format!("Bearer {key} {key}"), "Bearer".to_owned()] {
        let res = public_with(&app, Some(&two)).await;
        expect_error(res, 401, "malformed_api_key").await;
    }

    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let res = public_with(&app, Some(&format!("{scheme} {key}"))).await;
        let (status, _, body) = parts(res).await;
        assert_eq!(status, 200, "{scheme}: {body}");
        assert_eq!(body, json!({ "balance": 10 }));
    }
}

async fn dashboard_endpoints_accept_only_valid_hs256_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let (_, key) = app.create_key(&user, "ci").await;
    let secret = app.config.jwt_secret.clone().unwrap();
    let now = SystemClock.now();

    let (_, h) = expect_error(dashboard_with(&app, None).await, 401, "missing_token").await;
    assert_eq!(header(&h, "www-authenticate"), CHALLENGE);

    let res = dashboard_with(&app, Some(&format!("Bearer {key}"))).await;
    let (e, h) = expect_error(res, 401, "api_key_not_accepted").await;
    assert_eq!(header(&h, "www-authenticate"), CHALLENGE_INVALID);
    assert!(!e.to_string().contains(&key));

    // alg: none with the claims of a valid token and no signature.
    let payload = user.token.split('.').nth(1).unwrap();
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
    let alg_none = format!("{none_header}.{payload}.");
    let expired = JwtKeys::new(secret.as_bytes())
        .issue(
            &user.id,
            now.minus(Duration::from_secs(7200)),
            Duration::from_secs(3600),
        )
        .unwrap();
    let foreign = JwtKeys::new(b"another secret")
        .issue(&user.id, now, Duration::from_secs(3600))
        .unwrap();
    let exp = now.as_millis() / 1000 + 3600;
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &json!({ "sub": user.id.as_str(), "exp": exp }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let no_exp = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": user.id.as_str() }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let no_sub = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "exp": exp }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    for (what, token) in [
        ("alg none", alg_none),
        ("expired", expired),
        ("other secret", foreign),
        ("HS512", hs512),
        ("no exp", no_exp),
        ("no sub", no_sub),
        ("garbage", "abc.def.ghi".to_owned()),
    ] {
        let res = dashboard_with(&app, Some(&format!("Bearer {token}"))).await;
        let (status, h, body) = parts(res).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"]["type"], "invalid_token", "{what}");
        assert_eq!(header(&h, "www-authenticate"), CHALLENGE_INVALID);
    }
    let res = dashboard_with(&app, Some(&format!("Basic {}", user.token))).await;
    expect_error(res, 401, "invalid_token").await;

    // `sub` and `exp` are all that is needed; extra claims are ignored.
    let minimal = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": user.id.as_str(), "exp": exp, "iat": exp - 3600, "aud": "x", "role": "y" }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    for token in [&minimal, &user.token] {
        let res = dashboard_with(&app, Some(&format!("bearer {token}"))).await;
        assert_eq!(res.status(), 200);
    }

    // A token for a user that does not exist reads nothing.
    let ghost = app.token_for(&UserId::new("usr_ghost"));
    let res = app
        .client
        .get(app.url("/api/v1/credits/balance"))
        .bearer_auth(&ghost)
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "invalid_token").await;
    let res = app
        .client
        .request(Method::GET, app.url(DASHBOARD))
        .bearer_auth(&ghost)
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(
        (status, body),
        (200, json!({ "data": [], "has_more": false }))
    );
}

async fn credentials_are_checked_before_the_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .client
        .post(app.url("/api/v1/keys"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "missing_token").await;
    let res = app
        .client
        .post(app.url("/api/v1/public/documents"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "missing_api_key").await;
}

on_both_backends!(
    public_endpoints_accept_only_well_formed_live_api_keys,
    dashboard_endpoints_accept_only_valid_hs256_tokens,
    credentials_are_checked_before_the_body,
);
