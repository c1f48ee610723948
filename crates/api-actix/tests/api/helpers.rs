//! The test harness: a running app over a fresh database, users, tokens, and request helpers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adapters_jwt::JwtKeys;
use adapters_postgres::DbStore;
use adapters_postgres::testing::{drop_postgres_database, fresh_postgres_url, fresh_sqlite_url};
use api_actix::config::Config;
use api_actix::startup::{Running, spawn};
use api_actix::wiring;
use keys_domain::ports::{AccountStore, Clock, SystemClock, UserRef};
use keys_domain::rate_limit::RateLimitPolicy;
use keys_domain::{GrantAmount, UserId};
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;
use tempfile::TempDir;

/// Runs each named `async fn name(backend: Backend)` of the calling module once per store.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Postgres).await;
                }
            )+
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database, removed when dropped.
pub struct Database {
    pub url: String,
    backend: Backend,
    _dir: Option<TempDir>,
}

impl Database {
    pub async fn fresh(backend: Backend) -> Arc<Self> {
        let db = match backend {
            Backend::Sqlite => {
                let (dir, url) = fresh_sqlite_url();
                Self {
                    url,
                    backend,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let url = tokio::task::spawn_blocking(fresh_postgres_url)
                    .await
                    .expect("fresh_postgres_url");
                Self {
                    url,
                    backend,
                    _dir: None,
                }
            }
        };
        Arc::new(db)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.backend == Backend::Postgres {
            drop_postgres_database(&self.url);
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A string unique within this test run.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}{}x{}x{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Defaults for tests: port 0, a known JWT secret, rate and abuse limits no test hits by accident.
pub fn test_config(database_url: &str) -> Config {
    let mut c = Config::for_database(database_url);
    c.bind = "127.0.0.1:0".into();
    c.jwt_secret = Some(unique("test-secret-at-least-32-bytes-").into());
    c.rate_limit = RateLimitPolicy {
        per_second: 10_000,
        burst: 10_000,
    };
    // Likewise the abuse limits: the tests that check them lower them.
    c.auth_failures_per_minute = 10_000;
    c.dashboard_writes_per_minute = 10_000;
    c.sign_in_links_per_minute = 10_000;
    c.tuning.workers = Some(2);
    c.tuning.handle_signals = false;
    c.tuning.usage_flush_interval = Duration::from_millis(100);
    c.tuning.shutdown_timeout = Duration::from_secs(5);
    c
}

pub struct TestUser {
    pub id: UserId,
    pub email: String,
    pub token: String,
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub store: Arc<DbStore>,
    pub config: Config,
    pub jwt: JwtKeys,
    pub db: Arc<Database>,
    /// Where `/metrics` is served, when the config asked for it.
    pub metrics: Option<std::net::SocketAddr>,
    running: Option<Running>,
}

/// A test that did not stop its app: send the server its stop command now (the command goes
/// out when `stop` is called), so its workers, which hold the store's pool, end with the test.
/// Left running, a pool kept reconnecting to the test's dropped database until the process
/// exited, and a thread inside libpq at exit crashes it (see docs/storage.md, "Exiting cleanly").
impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            drop(running.handle.stop(false));
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = Database::fresh(backend).await;
        let mut config = test_config(&db.url);
        tweak(&mut config);
        Self::start(db, config).await
    }

    /// Starts an app on `db` (a second instance when another app already uses it).
    pub async fn start(db: Arc<Database>, config: Config) -> Self {
        let running = spawn(&config).await.expect("the app starts");
        let store = wiring::open_store(&config.database_url).expect("store");
        let jwt = wiring::jwt_keys(&config, store.as_ref())
            .await
            .expect("jwt keys");
        Self {
            base: format!("http://{}", running.addr),
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            store,
            config,
            jwt,
            db,
            metrics: running.metrics_addr,
            running: Some(running),
        }
    }

    /// Stops gracefully (usage flushed); the database stays.
    pub async fn stop(mut self) -> (Arc<Database>, Config) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
        (self.db.clone(), self.config.clone())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn user(&self, credits: u64) -> TestUser {
        let email = format!("{}@example.com", unique("user"));
        let user = wiring::user_service(&self.store)
            .create(&email, GrantAmount::new(credits).ok())
            .await
            .expect("create user");
        let token = self.token_for(&user.id);
        TestUser {
            id: user.id,
            email,
            token,
        }
    }

    pub fn token_for(&self, id: &UserId) -> String {
        self.jwt
            .issue(id, SystemClock.now(), Duration::from_secs(3600))
            .unwrap()
    }

    pub fn dash(&self, user: &TestUser, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&user.token)
    }

    pub fn public(&self, key: &str, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    pub async fn public_get(&self, key: &str, path: &str) -> Response {
        self.public(key, reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
    }

    pub async fn create_key(&self, user: &TestUser, name: &str) -> (Value, String) {
        let res = self
            .dash(user, reqwest::Method::POST, "/api/v1/keys")
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap();
        let (status, _, body) = parts(res).await;
        assert_eq!(status, 201, "{body}");
        let key = body["key"]
            .as_str()
            .expect("key shown on creation")
            .to_owned();
        (body, key)
    }

    pub async fn get_key(&self, user: &TestUser, id: &str) -> Value {
        let res = self
            .dash(user, reqwest::Method::GET, &format!("/api/v1/keys/{id}"))
            .send()
            .await
            .unwrap();
        let (status, _, body) = parts(res).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The balance as stored now. Read from the user's row rather than `AccountStore::balance`,
    /// whose per-process cache may be up to 1 s behind debits made by the app (another store).
    pub async fn balance(&self, user: &TestUser) -> u64 {
        let found = self.store.find_user(&UserRef::Id(user.id.clone())).await;
        found.unwrap().unwrap().balance.get()
    }

    pub async fn ledger_len(&self, user: &TestUser) -> usize {
        self.store.ledger(&user.id).await.unwrap().len()
    }
}

/// Status, headers and JSON body (`Value::Null` when the body is not JSON).
pub async fn parts(res: Response) -> (u16, HeaderMap, Value) {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(
        !body.is_null() || text.is_empty(),
        "not JSON ({status}): {text}"
    );
    (status, headers, body)
}

/// Asserts a contract error and returns its error object and headers.
pub async fn expect_error(res: Response, status: u16, kind: &str) -> (Value, HeaderMap) {
    let (got, headers, body) = parts(res).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    // Every error quotes the request id it was answered under.
    assert_eq!(
        body["error"]["request_id"].as_str(),
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (body["error"].clone(), headers)
}

/// Polls `check` until it holds or `timeout` passes; how long it took.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub const CHALLENGE: &str = "Bearer realm=\"jobtactics\"";
pub const CHALLENGE_INVALID: &str = "Bearer realm=\"jobtactics\", error=\"invalid_token\"";

pub fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
}

/// The built binary as a process of its own against `database_url`, signing dashboard tokens
/// with `jwt_secret`, and nothing else of the environment: no Redis, no SMTP, no secret file, no
/// metrics listener, the default log level and format.
pub fn binary(database_url: &str, jwt_secret: &str) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_api-actix"));
    command
        .env("DATABASE_URL", database_url)
        .env("JWT_SECRET", jwt_secret)
        .env_remove("JWT_SECRET_FILE")
        .env_remove("REDIS_URL")
        .env_remove("SMTP_URL")
        .env_remove("RUST_LOG")
        .env_remove("JT_LOG_FORMAT")
        .env("JT_METRICS_BIND", "off");
    command
}

/// The stdout of a command that must have succeeded (`what` names it in the failure).
pub fn stdout_of(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Starts the `api-actix` binary serving `db_url` as a process of its own, so that a test can
/// kill it with SIGKILL; its base URL once it listens, and the child.
pub async fn spawn_server_process(db_url: &str, jwt_secret: &str) -> (String, std::process::Child) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let mut child = binary(db_url, jwt_secret)
        .arg("serve")
        .env("JT_BIND", "127.0.0.1:0")
        .env("JT_RATE_LIMIT_PER_SECOND", "100000")
        .env("JT_RATE_LIMIT_BURST", "100000")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = BufReader::new(child.stderr.take().unwrap());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in logs.lines().map_while(Result::ok) {
            if line.contains("listening")
                && let Some(addr) = line.split("addr=").nth(1)
            {
                let addr = addr.split_whitespace().next().unwrap_or_default();
                let _ = addr_tx.send(addr.to_owned());
            }
        }
    });
    let addr = tokio::task::spawn_blocking(move || addr_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the server did not start");
    (format!("http://{addr}"), child)
}
