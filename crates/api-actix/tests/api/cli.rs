//! The operator CLI, run as the built binary against a temp SQLite file.

use std::process::{Command, Output};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, Database, TestApp, TestUser, parts, test_config};

pub(crate) fn cli(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_api-actix"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("JWT_SECRET")
        .env_remove("JWT_SECRET_FILE")
        .env_remove("REDIS_URL")
        .env_remove("SMTP_URL")
        .env("JT_METRICS_BIND", "off")
        .output()
        .expect("run api-actix")
}

pub(crate) fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    serde_json::from_str(stdout.trim()).unwrap()
}

pub(crate) fn failed_with(out: &Output, needle: &str) {
    assert!(
        !out.status.success(),
        "should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(needle), "stderr: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_create_users_grant_credits_and_issue_tokens() {
    let db = Database::fresh(Backend::Sqlite).await;
    let url = db.url.clone();

    assert!(cli(&url, &["migrate"]).status.success());

    let user = ok_json(&cli(
        &url,
        &[
            "users",
            "create",
            "--email",
            "Ada@Example.com",
            "--credits",
            "7",
        ],
    ));
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(
        user,
        json!({ "id": id, "email": "ada@example.com", "balance": 7 })
    );
    let zero = ok_json(&cli(
        &url,
        &["users", "create", "--email", "bea@example.com"],
    ));
    assert_eq!(zero["balance"], 0);

    failed_with(
        &cli(&url, &["users", "create", "--email", "ada@example.com"]),
        "already exists",
    );
    failed_with(
        &cli(&url, &["users", "create", "--email", "not-an-email"]),
        "not a valid email",
    );

    assert_eq!(
        ok_json(&cli(
            &url,
            &[
                "credits",
                "grant",
                "--user",
                "ada@example.com",
                "--amount",
                "5"
            ]
        )),
        json!({ "balance": 12 })
    );
    assert_eq!(
        ok_json(&cli(
            &url,
            &["credits", "grant", "--user", &id, "--amount", "1"]
        )),
        json!({ "balance": 13 })
    );
    failed_with(
        &cli(&url, &["credits", "grant", "--user", &id, "--amount", "0"]),
        "positive",
    );
    failed_with(
        &cli(&url, &["credits", "grant", "--user", &id, "--amount", "-3"]),
        "positive",
    );
    failed_with(
        &cli(
            &url,
            &[
                "credits",
                "grant",
                "--user",
                "ghost@example.com",
                "--amount",
                "1",
            ],
        ),
        "no user",
    );
    failed_with(
        &cli(&url, &["tokens", "issue", "--user", "ghost@example.com"]),
        "no user",
    );

    let out = cli(
        &url,
        &[
            "tokens",
            "issue",
            "--user",
            "ada@example.com",
            "--ttl-seconds",
            "600",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    let token = stdout.trim().to_owned();
    assert_eq!(token.split('.').count(), 3);
    let by_id = cli(&url, &["tokens", "issue", "--user", &id]);
    assert!(by_id.status.success());

    // The server, without JWT_SECRET either, reads the same generated secret.
    let mut config = test_config(&url);
    config.jwt_secret = None;
    let app = TestApp::start(db, config).await;
    let ada = TestUser {
        id: keys_domain::UserId::new(id.clone()),
        email: "ada@example.com".into(),
        token,
    };
    let (status, _, body) = parts(
        app.dash(&ada, Method::GET, "/api/v1/credits/balance")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!({ "balance": 13 })));
    let (_, key) = app.create_key(&ada, "from-cli").await;
    assert_eq!(
        app.public_get(&key, "/api/v1/public/me").await.status(),
        200
    );
}

/// Settings that cannot work are refused at start, naming the variable, with exit status 2
/// and before the database is touched (the SQLite file is never created).
#[test]
fn unusable_settings_are_refused_before_the_database_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.db");
    let url = format!("sqlite://{}", file.display());
    let missing_keys = format!("file://{}/missing.json", dir.path().display());
    for (variable, value) in [
        ("JT_PUBLIC_URL", "garbage"),
        ("JT_PUBLIC_URL", "ftp://x/"),
        ("JT_PUBLIC_URL", "https://"),
        ("JT_GITHUB_SCANNING_KEYS", missing_keys.as_str()),
        ("JT_GITHUB_SCANNING_KEYS", "ftp://example.com/keys"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_api-actix"))
            .arg("serve")
            .env("DATABASE_URL", &url)
            .env("JT_BIND", "127.0.0.1:0")
            .env("JT_METRICS_BIND", "off")
            .env_remove("REDIS_URL")
            .env_remove("SMTP_URL")
            .env(variable, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(variable)
                || stderr.contains("--public-url")
                || stderr.contains("--github-scanning-keys"),
            "{variable}={value}: {stderr}"
        );
        assert!(
            !file.exists(),
            "{variable}={value}: the database was created"
        );
    }
}
