//! `JT_TOP_UP_URL` (issue 35, item 5): where a 402 sends customers to buy credits, and where
//! the dashboard's "Buy more credits" link goes.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, Database, TestApp, binary, expect_error, unique};

/// With `&` and `"`, which the page must escape.
const SHOP: &str = "https://shop.example.com/credits?from=api&note=\"more\"";
const SHOP_IN_HTML: &str = "https://shop.example.com/credits?from=api&amp;note=&quot;more&quot;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_402_and_the_dashboard_name_the_configured_top_up_address() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.top_up_url = SHOP.to_owned()).await;
    let user = app.user(0).await;
    let (_, key) = app.create_key(&user, "poor").await;
    let res = app
        .public(&key, Method::POST, "/api/v1/public/documents")
        .json(&json!({ "template_id": "classic", "fields": { "name": "Ada" } }))
        .send()
        .await
        .unwrap();
    let (error, _) = expect_error(res, 402, "insufficient_credits").await;
    assert_eq!(error["top_up_url"], SHOP);
    let res = app
        .public(
            &key,
            Method::POST,
            "/api/v1/public/templates/executive/purchase",
        )
        .send()
        .await
        .unwrap();
    let (error, _) = expect_error(res, 402, "insufficient_credits").await;
    assert_eq!(error["top_up_url"], SHOP);
    for page in ["/app", "/app/credits"] {
        let html = app
            .client
            .get(app.url(page))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains(&format!("<a id=\"top-up\" href=\"{SHOP_IN_HTML}\"")),
            "{page}: {html}"
        );
        assert!(!html.contains("{{"), "{page}: a slot left unfilled");
    }
}

/// From the environment to the page, through the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jt_top_up_url_sets_it() {
    let db = Database::fresh(Backend::Sqlite).await;
    let mut server = binary(&db.url, &unique("top-up-secret-long-enough-to-sign-"))
        .arg("serve")
        .env("JT_BIND", "127.0.0.1:0")
        .env("JT_TOP_UP_URL", "https://shop.example.com/buy")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = BufReader::new(server.stderr.take().unwrap());
    let addr = tokio::task::spawn_blocking(move || {
        logs.lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split("addr=")
                    .nth(1)
                    .map(|a| a.split_whitespace().next().unwrap_or_default().to_owned())
            })
            .expect("the server did not start")
    })
    .await
    .unwrap();
    let html = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(format!("http://{addr}/app/credits"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        html.contains("<a id=\"top-up\" href=\"https://shop.example.com/buy\""),
        "{html}"
    );
}
