//! A database outage answers 503 with `Retry-After`, never 401. Uses a private PostgreSQL
//! server (initdb + pg_ctl in a temp dir) that the test stops; the shared one is never touched.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use keys_domain::ApiKeySecret;
use keys_domain::random::OsRandom;
use reqwest::Method;

use crate::helpers::{Backend, Database, TestApp, expect_error, header, parts, test_config};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

fn as_postgres(program: &str) -> Command {
    // PostgreSQL refuses to run as root; tests on CI run as root, so drop to `postgres` then.
    let path = format!("{PG_BIN}/{program}");
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_to_postgres(path: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown {path:?} to postgres failed");
    }
}

impl PrivatePostgres {
    fn start() -> Self {
        assert!(
            Path::new(PG_BIN).join("initdb").exists(),
            "PostgreSQL 15 binaries not found in {PG_BIN}; install postgresql-15"
        );
        let dir = tempfile::tempdir().unwrap();
        chown_to_postgres(dir.path());
        let data: PathBuf = dir.path().join("data");
        let out = as_postgres("initdb")
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut pg = Self {
            dir,
            port,
            running: false,
        };
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            pg.dir.path().display()
        );
        let log = pg.dir.path().join("pg.log");
        let out = as_postgres("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &opts, "-w", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.running = true;
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn stop(&mut self) {
        if !self.running {
            return;
        }
        let _ = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        self.running = false;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_with_retry_after_never_401() {
    let mut pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    // The harness wants a Database; this one is not dropped by it (not a jt_test_ name).
    let db = Database::fresh(Backend::Sqlite).await;
    let mut config = test_config(&pg.url());
    config.database_url = pg.url();
    let app = TestApp::start(db, config).await;
    let user = app.user(5).await;
    let (_, key) = app.create_key(&user, "ci").await;
    assert_eq!(
        app.public_get(&key, "/api/v1/public/me").await.status(),
        200
    );

    tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    // Past the key cache's TTL, so the key must be looked up again.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let res = app.public_get(&key, "/api/v1/public/me").await;
    let (_, h) = expect_error(res, 503, "service_unavailable").await;
    assert!(header(&h, "retry-after").parse::<u64>().unwrap() >= 1);
    assert!(h.get("www-authenticate").is_none());

    let unknown = ApiKeySecret::generate(&OsRandom);
    let res = app.public_get(unknown.expose(), "/api/v1/public/me").await;
    expect_error(res, 503, "service_unavailable").await;

    // A malformed key is refused without touching the store.
    let res = app.public_get("jt_sk_short", "/api/v1/public/me").await;
    expect_error(res, 401, "malformed_api_key").await;

    let res = app
        .dash(&user, Method::GET, "/api/v1/keys")
        .send()
        .await
        .unwrap();
    let (_, h) = expect_error(res, 503, "service_unavailable").await;
    assert!(h.get("retry-after").is_some());

    // Sign-in: exchanging a link is 503, not "invalid link"; asking for one is still 202 (the
    // work happens after the answer and is logged when the store is down).
    let res = app
        .client
        .post(app.url("/api/v1/auth/session"))
        .json(&serde_json::json!({ "token": "any-token" }))
        .send()
        .await
        .unwrap();
    let (_, h) = expect_error(res, 503, "service_unavailable").await;
    assert!(h.get("retry-after").is_some());
    let res = app
        .client
        .post(app.url("/api/v1/auth/email-link"))
        .json(&serde_json::json!({ "email": user.email }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);

    let (status, _, body) = parts(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 503);
    assert_eq!(body["database"], "down");
    assert_eq!(body["status"], "unavailable");

    // Liveness does not depend on the database.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Issue 11, item 6: a client over its failed-authentication limit is answered before any store
/// is touched: 429 while the database is down, where a lookup would be 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_limit_answers_before_any_store() {
    let mut pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let db = Database::fresh(Backend::Sqlite).await;
    let mut config = test_config(&pg.url());
    config.database_url = pg.url();
    config.auth_failures_per_minute = 1;
    let app = TestApp::start(db, config).await;
    let unknown = ApiKeySecret::generate(&OsRandom);
    let res = app.public_get(unknown.expose(), "/api/v1/public/me").await;
    expect_error(res, 401, "invalid_api_key").await;
    tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    let other = ApiKeySecret::generate(&OsRandom);
    let res = app.public_get(other.expose(), "/api/v1/public/me").await;
    expect_error(res, 429, "rate_limited").await;
}
