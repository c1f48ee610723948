//! Dashboard tokens (issue 11, items 2 and 3): the secret's minimum length and where it may
//! come from, the files that hold secrets, the 24-hour lifetime, and the per-user cut-off
//! that sign-out raises.

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};
use std::time::Duration;

use api_actix::startup::spawn;
use api_actix::wiring;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keys_domain::ports::{Clock, SystemClock};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, Database, TestApp, eventually, expect_error, test_config};

fn api_actix(database_url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_api-actix"));
    c.env("DATABASE_URL", database_url)
        .env_remove("JWT_SECRET")
        .env_remove("JWT_SECRET_FILE")
        .env_remove("REDIS_URL")
        .env_remove("SMTP_URL")
        .env("JT_METRICS_BIND", "off");
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn keys_list(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/keys"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_jwt_secret_refuses_to_start_naming_the_variable() {
    let db = Database::fresh(Backend::Sqlite).await;
    for short in ["", "a", "0123456789abcdef0123456789abcde"] {
        let mut config = test_config(&db.url);
        config.jwt_secret = Some(short.into());
        let Err(e) = spawn(&config).await else {
            panic!("started with a {}-byte secret", short.len());
        };
        assert!(
            format!("{e:#}").contains("JWT_SECRET must hold at least 32 bytes"),
            "{e:#}"
        );
    }
    // The binary, as an operator runs it: serve and the CLI refuse alike.
    for args in [
        &["serve"][..],
        &["tokens", "issue", "--user", "x@example.com"],
    ] {
        let out = api_actix(&db.url)
            .env("JWT_SECRET", "")
            .env("JT_BIND", "127.0.0.1:0")
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains("JWT_SECRET must hold at least 32 bytes"),
            "{}",
            stderr(&out)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt");
    std::fs::write(&file, "short\n").unwrap();
    let out = api_actix(&db.url)
        .env("JWT_SECRET_FILE", &file)
        .args(["tokens", "issue", "--user", "x@example.com"])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("JWT_SECRET_FILE must hold at least 32 bytes"),
        "{}",
        stderr(&out)
    );
    // Never a flag: argv is visible to every local user.
    let out = api_actix(&db.url)
        .args(["--jwt-secret", &"s".repeat(40), "migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--jwt-secret"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_file_signs_tokens_the_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt");
    let secret = format!("{}\n", "f".repeat(48));
    std::fs::write(&file, &secret).unwrap();
    let from_file = api_actix::jwt_secret::JwtSecret::from_file(&file).unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.jwt_secret = Some(from_file)).await;
    let user = app.user(0).await;
    let out = api_actix(&app.config.database_url)
        .env("JWT_SECRET_FILE", &file)
        .args(["tokens", "issue", "--user", &user.email])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(keys_list(&app, token.trim()).await.status(), 200);
    let both = api_actix(&app.config.database_url)
        .env("JWT_SECRET_FILE", &file)
        .env("JWT_SECRET", "x".repeat(40))
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(stderr(&both).contains("not both"), "{}", stderr(&both));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_database_file_is_readable_by_its_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jt.db");
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.database_url = format!("sqlite://{}", path.display());
        // The generated secret lives in this file.
        c.jwt_secret = None;
    })
    .await;
    app.user(1).await;
    for file in ["jt.db", "jt.db-wal", "jt.db-shm"] {
        let p = dir.path().join(file);
        if p.exists() {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}: {mode:o}");
        }
    }
}

/// The generated secret and a configured one never meet silently: `tokens issue` without a
/// configured secret says on stderr what it signed with, and a server given `JWT_SECRET` on a
/// database that keeps a generated secret says so at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_secrets_never_meet_silently() {
    use std::io::{BufRead as _, BufReader};
    let db = Database::fresh(Backend::Sqlite).await;
    let url = db.url.clone();
    let secret = "a-configured-secret-of-at-least-32-bytes";
    tokio::task::spawn_blocking(move || {
        let created = api_actix(&url)
            .args(["users", "create", "--email", "two@example.com"])
            .output()
            .unwrap();
        assert!(created.status.success(), "{}", stderr(&created));
        let generated = api_actix(&url)
            .args(["tokens", "issue", "--user", "two@example.com"])
            .output()
            .unwrap();
        assert!(generated.status.success(), "{}", stderr(&generated));
        assert!(
            stderr(&generated).contains("signed with the secret kept in the database"),
            "{}",
            stderr(&generated)
        );
        let configured = api_actix(&url)
            .env("JWT_SECRET", secret)
            .args(["tokens", "issue", "--user", "two@example.com"])
            .output()
            .unwrap();
        assert!(configured.status.success());
        assert!(!stderr(&configured).contains("kept in the database"));

        let mut server = api_actix(&url)
            .env("JWT_SECRET", secret)
            .env("JT_BIND", "127.0.0.1:0")
            .arg("serve")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut seen = Vec::new();
        for line in BufReader::new(server.stderr.take().unwrap())
            .lines()
            .map_while(Result::ok)
        {
            let listening = line.contains("listening");
            seen.push(line);
            if listening {
                break;
            }
        }
        let _ = server.kill();
        let _ = server.wait();
        assert!(
            seen.iter()
                .any(|l| l.contains("also keeps a generated secret")),
            "{}",
            seen.join("\n")
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_issue_refuses_lifetimes_over_24_hours() {
    let db = Database::fresh(Backend::Sqlite).await;
    let secret = "c".repeat(40);
    let created = api_actix(&db.url)
        .env("JWT_SECRET", &secret)
        .args(["users", "create", "--email", "t@example.com"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    let issue = |ttl: &str| {
        api_actix(&db.url)
            .env("JWT_SECRET", &secret)
            .args([
                "tokens",
                "issue",
                "--user",
                "t@example.com",
                "--ttl-seconds",
                ttl,
            ])
            .output()
            .unwrap()
    };
    assert!(issue("86400").status.success());
    let out = issue("86401");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("at most 86400 seconds (24 hours)"),
        "{}",
        stderr(&out)
    );
}

fn sign(secret: &[u8], claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Item 3: `exp` = u64::MAX and any lifetime over 24 hours are refused.
async fn tokens_living_over_24_hours_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user(0).await;
    let secret = app.config.jwt_secret.clone().unwrap();
    let now = SystemClock.now().as_millis() / 1000;
    let day = 24 * 3600;
    let sub = user.id.as_str();
    let ok = sign(
        secret.as_bytes(),
        &json!({ "sub": sub, "iat": now, "exp": now + day }),
    );
    assert_eq!(keys_list(&app, &ok).await.status(), 200);
    for claims in [
        json!({ "sub": sub, "iat": now, "exp": u64::MAX }),
        json!({ "sub": sub, "exp": u64::MAX }),
        json!({ "sub": sub, "iat": now, "exp": now + day + 1 }),
        json!({ "sub": sub, "exp": now + 2 * day }),
        json!({ "sub": sub, "iat": now + 30 * day, "exp": now + 30 * day + 60 }),
    ] {
        let res = keys_list(&app, &sign(secret.as_bytes(), &claims)).await;
        expect_error(res, 401, "invalid_token").await;
    }
}

/// The contract's bound for a revocation to reach every instance; a sign-out revokes tokens.
const REVOCATION_BOUND: Duration = Duration::from_secs(1);

/// Asks `instance` with `token` until it answers 401 `invalid_token` for the sign-out; fails
/// when it still accepts the token after `REVOCATION_BOUND`.
async fn refused_within_the_bound(instance: &TestApp, token: &str) -> Duration {
    let took = eventually(REVOCATION_BOUND, || async {
        keys_list(instance, token).await.status() == 401
    })
    .await
    .unwrap_or_else(|| panic!("a signed-out token was accepted for over {REVOCATION_BOUND:?}"));
    let (e, _) = expect_error(keys_list(instance, token).await, 401, "invalid_token").await;
    assert!(e["message"].as_str().unwrap().contains("sign-out"), "{e}");
    took
}

/// Item 3: after the user's sign-out, every token issued before it is refused: at once on the
/// instance that answered the sign-out (its cached cut-off is evicted before the 204), and on
/// another instance within the revocation bound, here without Redis (its cached cut-off
/// expires; `scale_out.rs` shows Redis's announcement doing it at once). A new token works.
async fn sign_out_refuses_every_earlier_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.user(0).await;
    let bob = app.user(0).await;
    let second = TestApp::start(app.db.clone(), app.config.clone()).await;
    let older = app
        .jwt
        .issue(
            &ada.id,
            SystemClock.now().minus(Duration::from_secs(600)),
            Duration::from_secs(3600),
        )
        .unwrap();
    // Both instances now hold Ada's cut-off ("never signed out") in their caches.
    for instance in [&app, &second] {
        for token in [&ada.token, &older] {
            assert_eq!(keys_list(instance, token).await.status(), 200);
        }
    }

    let res = app
        .dash(&ada, Method::POST, "/api/v1/auth/sign-out")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for token in [&ada.token, &older] {
        let (e, _) = expect_error(keys_list(&app, token).await, 401, "invalid_token").await;
        assert!(e["message"].as_str().unwrap().contains("sign-out"), "{e}");
    }
    for token in [&ada.token, &older] {
        refused_within_the_bound(&second, token).await;
    }
    let res = app
        .dash(&ada, Method::POST, "/api/v1/keys")
        .json(&json!({ "name": "after" }))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "invalid_token").await;
    // Other users keep their sessions.
    assert_eq!(keys_list(&app, &bob.token).await.status(), 200);
    assert_eq!(keys_list(&second, &bob.token).await.status(), 200);
    // A token issued after the sign-out (the next whole second) works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = app.token_for(&ada.id);
    assert_eq!(keys_list(&second, &fresh).await.status(), 200);
    assert_eq!(keys_list(&app, &fresh).await.status(), 200);
}

/// A sign-out written by another process (the use case over the bare store, announcing
/// nothing) is honoured by every running instance within the revocation bound.
async fn a_sign_out_made_elsewhere_is_honoured_within_the_bound(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.user(0).await;
    let second = TestApp::start(app.db.clone(), app.config.clone()).await;
    for instance in [&app, &second] {
        assert_eq!(keys_list(instance, &ada.token).await.status(), 200);
    }
    wiring::dashboard_sessions(&app.store)
        .sign_out(&ada.id)
        .await
        .unwrap();
    for instance in [&app, &second] {
        refused_within_the_bound(instance, &ada.token).await;
    }
}

on_both_backends!(
    tokens_living_over_24_hours_are_refused,
    sign_out_refuses_every_earlier_token,
    a_sign_out_made_elsewhere_is_honoured_within_the_bound,
);
