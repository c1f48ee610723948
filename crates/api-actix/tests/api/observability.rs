//! What operators and integrators rely on around the API: metrics, request ids, CORS, and the
//! small things (times with milliseconds, "1 credit", a body's content type).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, expect_error, header, parts};

/// The value of a series line (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let addr = app.metrics.expect("metrics are on");
    let res = app
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(res.headers(), "content-type").starts_with("text/plain"));
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_listener_with_route_patterns() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.metrics_bind = Some("127.0.0.1:0".into());
    })
    .await;
    let metrics = app.metrics.unwrap();
    assert_ne!(
        metrics.port(),
        app.config
            .bind
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap()
    );
    let user = app.user(10).await;
    let (created, key) = app.create_key(&user, "metered").await;
    let before = scrape(&app).await;
    for _ in 0..3 {
        assert_eq!(
            app.public_get(&key, "/api/v1/public/me").await.status(),
            200
        );
    }
    let id = created["id"].as_str().unwrap();
    let res = app
        .dash(&user, Method::GET, &format!("/api/v1/keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .public(&key, Method::POST, "/api/v1/public/documents")
        .json(&json!({ "template_id": "classic", "fields": { "name": "Ada" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Failures of each kind.
    let bad = app.public_get("jt_sk_nope", "/api/v1/public/me").await;
    assert_eq!(bad.status(), 401);
    assert_eq!(
        app.client
            .get(app.url("/api/v1/public/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        app.client
            .get(app.url("/no/such/thing"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let after = scrape(&app).await;
    let delta = |series: &str| {
        sample(&after, series).unwrap_or_else(|| panic!("no {series} in:\n{after}"))
            - sample(&before, series).unwrap_or(0.0)
    };
    // Other tests in this process may share the registry: assert at least our own requests.
    assert!(delta(r#"jt_http_requests_total{route="/api/v1/public/me",status="200"}"#) >= 3.0);
    assert!(delta(r#"jt_http_requests_total{route="/api/v1/keys/{id}",status="200"}"#) >= 1.0);
    assert!(delta(r#"jt_http_requests_total{route="unmatched",status="404"}"#) >= 1.0);
    assert!(!after.contains(id), "a raw path became a label");
    assert!(delta(r#"jt_http_request_duration_seconds_count{route="/api/v1/public/me"}"#) >= 3.0);
    assert!(after.contains(
        r#"jt_http_request_duration_seconds_bucket{route="/api/v1/public/me",le="0.005"}"#
    ));
    assert!(delta(r#"jt_auth_failures_total{type="malformed_api_key"}"#) >= 1.0);
    assert!(delta(r#"jt_auth_failures_total{type="missing_api_key"}"#) >= 1.0);
    assert!(delta("jt_credits_debited_total") >= 1.0);
    // The ledger's series are this app's store's own.
    let batches = sample(&after, "jt_ledger_batch_size_count").unwrap();
    assert!(batches >= 1.0, "{after}");
    assert!(sample(&after, "jt_ledger_batch_size_sum").unwrap() >= batches);
    assert_eq!(
        sample(&after, r#"jt_ledger_batch_size_bucket{le="+Inf"}"#),
        Some(batches)
    );
    assert_eq!(
        sample(&after, r#"jt_ledger_batches_total{way="confirmed"}"#).unwrap()
            + sample(&after, r#"jt_ledger_batches_total{way="locked"}"#).unwrap(),
        batches
    );
    assert!(
        delta(r#"jt_key_cache_requests_total{result="hit"}"#)
            + delta(r#"jt_key_cache_requests_total{result="miss"}"#)
            >= 4.0
    );
    for series in [
        "jt_rate_limited_total",
        "jt_alert_outbox_pending",
        "jt_alert_outbox_oldest_age_seconds",
        "jt_leaked_keys_revoked_total",
        r#"jt_key_cache_requests_total{result="hit"}"#,
        r#"jt_key_cache_requests_total{result="miss"}"#,
    ] {
        assert!(
            sample(&after, series).is_some(),
            "{series} missing:\n{after}"
        );
    }
    assert!(after.contains("# TYPE jt_http_request_duration_seconds histogram"));
    // The listener serves only /metrics.
    let other = app
        .client
        .get(format!("http://{metrics}/api/v1/public/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_requests_are_counted() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.metrics_bind = Some("127.0.0.1:0".into());
        c.rate_limit = keys_domain::rate_limit::RateLimitPolicy {
            per_second: 1,
            burst: 1,
        };
    })
    .await;
    let user = app.user(0).await;
    let (_, key) = app.create_key(&user, "busy").await;
    let before = sample(&scrape(&app).await, "jt_rate_limited_total").unwrap();
    let mut limited = 0;
    for _ in 0..5 {
        if app.public_get(&key, "/api/v1/public/me").await.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 1);
    let after = sample(&scrape(&app).await, "jt_rate_limited_total").unwrap();
    assert!(after - before >= f64::from(limited), "{before} -> {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_off_binds_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert!(app.config.metrics_bind.is_none());
    assert!(app.metrics.is_none());
    assert_eq!(api_actix::config::metrics_bind("off"), None);
    assert_eq!(api_actix::config::metrics_bind(" OFF "), None);
    assert_eq!(
        api_actix::config::metrics_bind("127.0.0.1:9464").as_deref(),
        Some("127.0.0.1:9464")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_request_id_is_kept_and_every_error_quotes_it() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.user(0).await;
    let (_, key) = app.create_key(&user, "ids").await;
    // Kept and echoed, on success and on every kind of error.
    let ok = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(header(ok.headers(), "x-request-id"), "client-id-1");
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (app.client.get(app.url("/nope")), 404),
        (app.client.delete(app.url("/healthz")), 405),
        (app.client.get(app.url("/api/v1/public/me")), 401),
        (
            app.public(&key, Method::POST, "/api/v1/public/documents")
                .header("content-type", "application/json")
                .body(vec![b' '; 70 * 1024]),
            413,
        ),
        (
            app.public(&key, Method::POST, "/api/v1/public/documents")
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body("{}"),
            415,
        ),
        (
            app.public(&key, Method::POST, "/api/v1/public/documents")
                .json(&json!({ "template_id": "classic" })),
            402,
        ),
        (app.dash(&user, Method::GET, "/api/v1/keys?limit=0"), 400),
    ];
    for (i, (req, status)) in cases.into_iter().enumerate() {
        let id = format!("req {i} ~!@#$%^&*()");
        let res = req.header("x-request-id", &id).send().await.unwrap();
        let (got, h, body) = parts(res).await;
        assert_eq!(got, status, "{body}");
        assert_eq!(header(&h, "x-request-id"), id);
        assert_eq!(body["error"]["request_id"], id.as_str(), "{body}");
    }
    // Generated when absent or unacceptable (too long, not printable ASCII).
    for inbound in [
        None,
        Some("x".repeat(129)),
        Some("caf\u{e9}".to_owned()),
        Some(String::new()),
    ] {
        let mut req = app.client.get(app.url("/nope"));
        if let Some(v) = &inbound {
            req = req.header("x-request-id", v.as_str());
        }
        let (_, h, body) = parts(req.send().await.unwrap()).await;
        let id = header(&h, "x-request-id");
        assert_eq!(id.len(), 32, "{inbound:?}");
        assert_eq!(body["error"]["request_id"], id);
    }
    let a = app.client.get(app.url("/healthz")).send().await.unwrap();
    let b = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_ne!(
        header(a.headers(), "x-request-id"),
        header(b.headers(), "x-request-id")
    );
    // 128 characters is still kept.
    let long = "y".repeat(128);
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    assert_eq!(header(res.headers(), "x-request-id"), long);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_preflights_without_credentials_for_listed_origins_only() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.cors_origins = "https://app.example.com, http://localhost:3000"
            .parse()
            .unwrap();
    })
    .await;
    let user = app.user(0).await;
    let (_, key) = app.create_key(&user, "browser").await;
    let preflight = |origin: &str, path: &str| {
        app.client
            .request(Method::OPTIONS, app.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
    };
    // No credential needed for the preflight, on public and dashboard routes alike.
    for path in ["/api/v1/public/me", "/api/v1/keys"] {
        let res = preflight("https://app.example.com", path)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        let h = res.headers();
        assert_eq!(
            header(h, "access-control-allow-origin"),
            "https://app.example.com"
        );
        assert!(
            header(h, "access-control-allow-headers")
                .to_ascii_lowercase()
                .contains("authorization")
        );
        assert!(header(h, "access-control-allow-methods").contains("GET"));
    }
    // The actual request carries the CORS headers, and exposes the request id.
    let res = app
        .public(&key, Method::GET, "/api/v1/public/me")
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(res.headers(), "access-control-allow-origin"),
        "http://localhost:3000"
    );
    assert!(
        header(res.headers(), "access-control-expose-headers")
            .to_ascii_lowercase()
            .contains("x-request-id")
    );
    // Another origin gets no permission, and the refusal is a JSON error with a request id.
    let res = preflight("https://evil.example.net", "/api/v1/public/me")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let (status, h, body) = parts(res).await;
    assert!(status >= 400, "{status}");
    assert_eq!(body["error"]["request_id"], header(&h, "x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cors_origins_there_are_no_cors_headers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-"))
    );
    let res = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/keys"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-"))
    );
}

/// `YYYY-MM-DDT…`.
fn looks_like_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
}

/// Every string that looks like a time, anywhere in `v`.
fn times(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if looks_like_time(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| times(x, out)),
        Value::Object(o) => o.values().for_each(|x| times(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_always_have_milliseconds() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.user(50).await;
    let mut found = Vec::new();
    // Enough objects that some fall on a whole ten or hundred milliseconds.
    for i in 0..12 {
        let (k, key) = app.create_key(&user, &format!("t{i}")).await;
        times(&k, &mut found);
        let res = app
            .public(&key, Method::POST, "/api/v1/public/documents")
            .json(&json!({ "template_id": "classic" }))
            .send()
            .await
            .unwrap();
        times(&res.json().await.unwrap(), &mut found);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    for path in ["/api/v1/keys?limit=100", "/api/v1/credits/ledger?limit=100"] {
        let (_, _, body) = parts(app.dash(&user, Method::GET, path).send().await.unwrap()).await;
        times(&body, &mut found);
    }
    assert!(found.len() > 40, "{found:?}");
    for t in &found {
        let fraction = t
            .split('.')
            .nth(1)
            .unwrap_or_else(|| panic!("no fraction: {t}"));
        assert_eq!(fraction.len(), 4, "{t}");
        assert!(
            fraction.ends_with('Z') && fraction[..3].bytes().all(|b| b.is_ascii_digit()),
            "{t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_credit_is_singular_in_the_402() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.user(0).await;
    let (_, key) = app.create_key(&user, "broke").await;
    let res = app
        .public(&key, Method::POST, "/api/v1/public/documents")
        .json(&json!({ "template_id": "classic" }))
        .send()
        .await
        .unwrap();
    let (e, _) = expect_error(res, 402, "insufficient_credits").await;
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("costs 1 credit but"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_not_sent_as_json_is_told_so() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.user(0).await;
    for content_type in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
    ] {
        let mut req = app
            .dash(&user, Method::POST, "/api/v1/keys")
            .body(r#"{"name": "ci"}"#);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let (e, _) = expect_error(req.send().await.unwrap(), 400, "invalid_request").await;
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains("Content-Type: application/json"),
            "{message}"
        );
        if let Some(ct) = content_type {
            assert!(message.contains(ct), "{message}");
        }
    }
}
