//! The operator's key commands and the shape of the command line, run as the built binary:
//! `keys list`, `keys revoke` (the key on standard input), `migrate --status`, and which flags
//! each subcommand's help shows.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use keys_domain::ApiKeySecret;
use keys_domain::random::OsRandom;
use serde_json::Value;

use crate::cli::{cli, failed_with, ok_json};
use crate::helpers::{Backend, TestApp, eventually, expect_error};

fn cli_with_stdin(database_url: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_api-actix"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("JWT_SECRET")
        .env_remove("JWT_SECRET_FILE")
        .env_remove("REDIS_URL")
        .env_remove("SMTP_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run api-actix");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn keys_list_and_revoke_from_stdin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = app.config.database_url.clone();
    let user = app.user(0).await;
    let (first, _) = app.create_key(&user, "first").await;
    let (second, key) = app.create_key(&user, "second").await;

    // One key object a line, newest first, by id or by email; never a key or a hash.
    for who in [user.id.as_str(), user.email.as_str()] {
        let listed = lines(&cli(&url, &["keys", "list", "--user", who]));
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0]["id"], second["id"]);
        assert_eq!(listed[1]["id"], first["id"]);
        assert_eq!(listed[0]["status"], "active");
        assert_eq!(listed[0]["revocation_reason"], Value::Null);
        assert!(listed[0].get("key").is_none());
    }
    failed_with(
        &cli(&url, &["keys", "list", "--user", "nobody@example.com"]),
        "no user matches",
    );

    // Revoke: the key on stdin (with echo's newline), reason leaked; the key object printed.
    assert_eq!(
        app.public_get(&key, "/api/v1/public/me").await.status(),
        200
    );
    let out = cli_with_stdin(
        &url,
        &["keys", "revoke", "--reason", "leaked"],
        &format!("{key}\n"),
    );
    let printed = ok_json(&out);
    assert_eq!(printed["id"], second["id"]);
    assert_eq!(printed["status"], "revoked");
    assert_eq!(printed["revocation_reason"], "leaked");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&key));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&key));
    // The running server refuses it within 1 s (its cache trusts a key for 500 ms).
    let refused = eventually(Duration::from_secs(1), || async {
        app.public_get(&key, "/api/v1/public/me").await.status() == 401
    })
    .await;
    assert!(
        refused.is_some(),
        "the server still accepts the revoked key"
    );
    expect_error(
        app.public_get(&key, "/api/v1/public/me").await,
        401,
        "revoked_api_key",
    )
    .await;
    let res = app
        .dash(
            &user,
            reqwest::Method::GET,
            &format!("/api/v1/keys/{}/events", second["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    let trail: Value = res.json().await.unwrap();
    assert_eq!(trail["data"][0]["type"], "revoked");
    assert_eq!(trail["data"][0]["actor"], "operator");
    assert_eq!(trail["data"][0]["detail"]["reason"], "leaked");

    // Again: unchanged, still exit 0. Default reason is operator.
    let again = ok_json(&cli_with_stdin(&url, &["keys", "revoke"], &key));
    assert_eq!(again["revocation_reason"], "leaked");
    let (_, other) = app.create_key(&user, "third").await;
    let by_operator = ok_json(&cli_with_stdin(&url, &["keys", "revoke"], &other));
    assert_eq!(by_operator["revocation_reason"], "operator");

    // Unknown, malformed or missing keys exit non-zero; the key never comes back in the error.
    let stranger = ApiKeySecret::generate(&OsRandom);
    let out = cli_with_stdin(&url, &["keys", "revoke"], stranger.expose());
    failed_with(&out, "no key matches");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(stranger.expose()));
    failed_with(
        &cli_with_stdin(&url, &["keys", "revoke"], "jt_sk_nope"),
        "not an API key",
    );
    failed_with(
        &cli_with_stdin(&url, &["keys", "revoke"], ""),
        "standard input",
    );
    // Never from argv: there is no such argument.
    assert!(
        !cli(&url, &["keys", "revoke", stranger.expose()])
            .status
            .success()
    );
    assert!(
        !cli(&url, &["keys", "revoke", "--reason", "user"])
            .status
            .success()
    );
    app.stop().await;
}

on_both_backends!(keys_list_and_revoke_from_stdin);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_status_lists_applied_and_pending() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/status.db", dir.path().display());
    // Pending migrations: listed, and the exit status says so.
    let out = cli(&url, &["migrate", "--status"]);
    assert!(!out.status.success(), "pending migrations exit non-zero");
    assert!(String::from_utf8_lossy(&out.stderr).contains("pending"));
    let before: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(before["unknown"], serde_json::json!([]));
    let pending = before["pending"].as_array().unwrap();
    assert!(pending.len() >= 10, "{before}");
    assert_eq!(before["applied"], serde_json::json!([]));
    assert!(pending.iter().any(|m| m == "2026-11-29-000200_key_events"));
    assert!(cli(&url, &["migrate"]).status.success());
    let after = ok_json(&cli(&url, &["migrate", "--status"]));
    assert_eq!(after["pending"], serde_json::json!([]));
    assert_eq!(after["applied"], before["pending"]);
}

/// A migration a newer release applied: `migrate --status` lists it and exits non-zero;
/// `migrate`, every other command and `serve` refuse the database, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_migrated_by_a_newer_release_is_refused_naming_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("newer.db");
    let url = format!("sqlite://{}", file.display());
    assert!(cli(&url, &["migrate"]).status.success());
    let inserted = Command::new("sqlite3")
        .arg(&file)
        .arg("INSERT INTO __diesel_schema_migrations (version) VALUES ('20991231000000')")
        .status()
        .expect("sqlite3 (apt-get install sqlite3)");
    assert!(inserted.success());

    let out = cli(&url, &["migrate", "--status"]);
    assert!(!out.status.success());
    let status: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(status["unknown"], serde_json::json!(["20991231000000"]));
    assert_eq!(status["pending"], serde_json::json!([]));
    for args in [
        &["migrate"][..],
        &["users", "create", "--email", "late@example.com"],
        &["serve"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_api-actix"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env("JT_BIND", "127.0.0.1:0")
            .env("JT_METRICS_BIND", "off")
            .env_remove("REDIS_URL")
            .env_remove("SMTP_URL")
            .env_remove("JWT_SECRET")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} ran on a newer schema");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("20991231000000"), "{args:?}: {stderr}");
    }
}

#[test]
fn serve_only_flags_appear_only_under_serve() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_api-actix"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let serve = help(&["serve", "--help"]);
    let serve_only = [
        "--bind",
        "--smtp-url",
        "--mail-from",
        "--rate-limit-per-second",
        "--rate-limit-burst",
        "--high-usage-threshold",
        "--auth-failures-per-minute",
        "--dashboard-writes-per-minute",
        "--trusted-proxies",
        "--github-scanning-keys",
        "--metrics-bind",
        "--cors-origins",
    ];
    for flag in serve_only {
        assert!(serve.contains(flag), "serve --help lacks {flag}");
    }
    for args in [
        &["users", "--help"][..],
        &["users", "create", "--help"],
        &["tokens", "issue", "--help"],
        &["credits", "grant", "--help"],
        &["keys", "list", "--help"],
        &["migrate", "--help"],
        &["--help"],
    ] {
        let text = help(args);
        for flag in serve_only {
            assert!(!text.contains(flag), "{args:?} shows {flag}:\n{text}");
        }
        assert!(text.contains("--database-url"), "{args:?}");
    }
    let create = help(&["users", "create", "--help"]);
    let email_line = create
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("--email"))
        .take(2)
        .collect::<String>();
    assert!(email_line.contains("email address"), "{create}");
}

#[test]
fn a_missing_sqlite_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nowhere/jt.db", dir.path().display());
    let out = cli(&url, &["migrate"]);
    failed_with(&out, &format!("{}/nowhere", dir.path().display()));
    failed_with(&out, "does not exist");
}
