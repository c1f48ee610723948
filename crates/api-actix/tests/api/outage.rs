//! A database outage answers 503 with `Retry-After`, never 401. Uses a private PostgreSQL
//! server (initdb + pg_ctl in a temp dir) that the test stops; the shared one is never touched.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use keys_domain::ApiKeySecret;
use keys_domain::random::OsRandom;
use reqwest::Method;

use api_actix::config::Config;

use crate::helpers::{Backend, Database, TestApp, expect_error, header, parts, test_config};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Also used by `metrics_alerts.rs`.
pub(crate) struct PrivatePostgres {
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
    pub(crate) fn start() -> Self {
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
        pg.restart();
        pg
    }

    /// Starts the server on its data directory and port (again, after `stop`).
    pub(crate) fn restart(&mut self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let out = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("pg.log"))
            .args(["-o", &opts, "-w", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = true;
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The test app on this server, configured as `test_config` and then by `tweak`.
    pub(crate) async fn app(&self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        // The harness wants a Database; this one is not dropped by it (not a jt_test_ name).
        let db = Database::fresh(Backend::Sqlite).await;
        let mut config = test_config(&self.url());
        config.database_url = self.url();
        tweak(&mut config);
        TestApp::start(db, config).await
    }

    pub(crate) fn stop(&mut self) {
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
    let app = pg.app(|_| {}).await;
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

/// Issue 34, item 2: PostgreSQL restarts under a running instance, which closes the ledger's
/// kept connection. The first render after it is served: that connection is found closed and
/// replaced before the charge is sent, not used and answered with a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_postgres_restarts_the_first_render_is_served() {
    let mut pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let app = pg.app(|_| {}).await;
    let user = app.user(5).await;
    let (_, key) = app.create_key(&user, "ci").await;
    let render = || {
        app.public(&key, Method::POST, "/api/v1/public/documents")
            .json(&serde_json::json!({ "template_id": "classic", "fields": { "name": "Ada" } }))
            .send()
    };
    assert_eq!(render().await.unwrap().status(), 201);

    // Kept until the end: dropping it stops the server.
    let _pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg.restart();
        pg
    })
    .await
    .unwrap();
    // As a proxy would: wait until the instance says it is ready again.
    let ready = crate::helpers::eventually(Duration::from_secs(30), || {
        let res = app.client.get(app.url("/readyz")).send();
        async move { res.await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    let (status, _, body) = parts(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert!(
        ready.is_some(),
        "/readyz never said ready after the restart: {status} {body}"
    );

    let (status, _, body) = parts(render().await.unwrap()).await;
    assert_eq!(status, 201, "the first render after the restart: {body}");
    let (status, _, body) = parts(render().await.unwrap()).await;
    assert_eq!(status, 201);
    assert_eq!(body["balance"], 2, "three renders of five credits: {body}");
}

/// Issue 11, item 6: a client over its failed-authentication limit is answered before any store
/// is touched: 429 while the database is down, where a lookup would be 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_limit_answers_before_any_store() {
    let mut pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let app = pg.app(|config| config.auth_failures_per_minute = 1).await;
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

/// An outage under load is logged by its start and its end, with at most a line per 10 s in
/// between: never a line per request (there were three per failed request, 67,255 in a
/// second). The server runs as a process of its own, its log read whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_under_load_is_logged_by_its_start_and_end() {
    use std::io::{BufRead as _, BufReader};
    use std::sync::{Arc, Mutex};

    let mut pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let url = pg.url();
    let secret = crate::helpers::unique("outage-log-secret-padding-to-32-bytes-");
    let cli = |args: &[&str]| {
        let out = crate::helpers::binary(&url, &secret)
            .args(args)
            .output()
            .unwrap();
        crate::helpers::stdout_of(&out, &args.join(" "))
            .trim()
            .to_owned()
    };
    cli(&["users", "create", "--email", "outage@example.com"]);
    let token = cli(&["tokens", "issue", "--user", "outage@example.com"]);

    let mut server = crate::helpers::binary(&url, &secret)
        .arg("serve")
        .env("JT_BIND", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let (stderr, lines) = (server.stderr.take().unwrap(), lines.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
    }
    let started = crate::helpers::eventually(Duration::from_secs(30), || async {
        lines.lock().unwrap().iter().any(|l| l.contains("addr="))
    })
    .await;
    assert!(
        started.is_some(),
        "the server did not start: {:?}",
        lines.lock().unwrap()
    );
    let found = lines
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| {
            l.split("addr=")
                .nth(1)
                .map(|a| a.split_whitespace().next().unwrap().to_owned())
        })
        .unwrap();
    let keys_url = format!("http://{found}/api/v1/keys");
    let client = reqwest::Client::new();
    let list = |client: reqwest::Client, url: String, token: String| async move {
        client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(
        list(client.clone(), keys_url.clone(), token.clone()).await,
        200
    );

    let mut pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    let before = lines.lock().unwrap().len();
    let outage = std::time::Instant::now();
    let mut answered = Vec::new();
    for _ in 0..100 {
        let batch: Vec<_> = (0..20)
            .map(|_| tokio::spawn(list(client.clone(), keys_url.clone(), token.clone())))
            .collect();
        for t in batch {
            answered.push(t.await.unwrap());
        }
    }
    let failed = answered.iter().filter(|&&s| s == 503).count();
    assert!(
        failed >= 1_900,
        "{failed} of 2,000 answered 503: {answered:?}"
    );
    let during: Vec<String> = lines.lock().unwrap()[before..].to_vec();
    // The start of the outage (and each background worker that met it), then at most one
    // "still unavailable" summary per 10 s: never a line per failed request. The 2,000 requests
    // take 2 s when the pool keeps its broken connections and longer when it has dropped them
    // (each checkout then waits for a connection that cannot be made).
    let summaries = usize::try_from(outage.elapsed().as_secs() / 10).unwrap_or(usize::MAX);
    assert!(
        during.len() <= 5 + summaries,
        "{} lines for {failed} failed requests in {:?}:\n{}",
        during.len(),
        outage.elapsed(),
        during.join("\n")
    );
    assert!(
        during.iter().any(|l| l.contains("database unavailable")),
        "{during:?}"
    );

    pg = tokio::task::spawn_blocking(move || {
        pg.restart();
        pg
    })
    .await
    .unwrap();
    let back = crate::helpers::eventually(Duration::from_secs(30), || {
        let (client, url, token) = (client.clone(), keys_url.clone(), token.clone());
        async move { list(client, url, token).await == 200 }
    })
    .await;
    assert!(
        back.is_some(),
        "requests did not succeed again after the restart"
    );
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("database available again")),
        "{:?}",
        lines.lock().unwrap()
    );
    let _ = server.kill();
    let _ = server.wait();
    drop(pg);
}
