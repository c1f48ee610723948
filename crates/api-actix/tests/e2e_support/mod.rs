//! Helpers for the end-to-end tests that run the real server (`startup::spawn`) over HTTP:
//! instances, owners with dashboard JWTs, keys, a private Redis, polling with deadlines.

// Test support: failing loudly is the point.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use adapters_jwt::JwtKeys;
use api_actix::config::Config;
use api_actix::startup::{Running, spawn};
use api_actix::wiring;
use keys_domain::GrantAmount;
use keys_domain::ports::{Clock as _, SystemClock};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The dashboard JWT secret every instance of a test shares.
pub const JWT_SECRET: &str = "e2e-test-secret-not-for-production";
/// The shared Redis of the development machine.
pub const SHARED_REDIS_URL: &str = "redis://127.0.0.1:6379";
const START_REDIS: &str =
    "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no";

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A test configuration: free port, shared JWT secret, no signal handling, two workers (the
/// machine has two cores shared by several builds).
pub fn config(database_url: &str) -> Config {
    let mut c = Config::for_database(database_url);
    c.bind = "127.0.0.1:0".into();
    c.jwt_secret = Some(JWT_SECRET.into());
    c.tuning.handle_signals = false;
    c.tuning.workers = Some(2);
    c.tuning.shutdown_timeout = Duration::from_secs(2);
    // Through Redis the per-minute limits count every test's requests from this machine's
    // address together, whatever the instance: high enough never to be met here. Tests of
    // those limits set their own.
    c.auth_failures_per_minute = 10_000;
    c.dashboard_writes_per_minute = 10_000;
    c.sign_in_links_per_minute = 10_000;
    c
}

/// One running server.
pub struct Instance {
    pub base: String,
    running: Running,
}

impl Instance {
    pub async fn start(config: &Config) -> Self {
        let running = spawn(config).await.expect("the server starts");
        Self {
            base: format!("http://{}", running.addr),
            running,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Graceful stop: in-flight requests finish and pending usage is flushed.
    pub async fn stop(self) {
        self.running.stop().await.expect("the server stops cleanly");
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A user with a dashboard token.
pub struct Owner {
    pub id: String,
    pub email: String,
    pub jwt: String,
}

/// Creates a user directly in the database (as `api-actix users create` does) and signs a
/// dashboard token with [`JWT_SECRET`]. Call after an instance has applied the migrations.
pub async fn create_owner(database_url: &str, credits: u64) -> Owner {
    let store = wiring::open_store(database_url).unwrap();
    let email = format!("{}@example.com", unique("owner"));
    let user = wiring::user_service(&store)
        .create(&email, GrantAmount::new(credits).ok())
        .await
        .unwrap();
    let jwt = JwtKeys::new(JWT_SECRET.as_bytes())
        .issue(&user.id, SystemClock.now(), Duration::from_secs(3600))
        .unwrap();
    Owner {
        id: user.id.as_str().to_owned(),
        email,
        jwt,
    }
}

/// A key as created through the dashboard. No `Debug`: `secret` is a full key.
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub preview: String,
    pub secret: String,
}

/// `POST /api/v1/keys` on `instance`.
pub async fn create_key(
    http: &reqwest::Client,
    instance: &Instance,
    owner: &Owner,
    name: &str,
) -> CreatedKey {
    let res = http
        .post(instance.url("/api/v1/keys"))
        .bearer_auth(&owner.jwt)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "creating a key");
    key_from(&res.json::<Value>().await.unwrap())
}

/// The id, name, preview and full key of a 201 key object.
pub fn key_from(body: &Value) -> CreatedKey {
    let field = |f: &str| {
        body[f]
            .as_str()
            .unwrap_or_else(|| panic!("key object without {f}"))
    };
    CreatedKey {
        id: field("id").to_owned(),
        name: field("name").to_owned(),
        preview: field("preview").to_owned(),
        secret: field("key").to_owned(),
    }
}

/// `GET /api/v1/public/me` with `key`: the status and the JSON body.
pub async fn me(http: &reqwest::Client, instance: &Instance, key: &CreatedKey) -> (u16, Value) {
    let res = http
        .get(instance.url("/api/v1/public/me"))
        .bearer_auth(&key.secret)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The `error.type` of an error body.
pub fn error_type(body: &Value) -> &str {
    body["error"]["type"].as_str().unwrap_or("")
}

/// `GET /api/v1/keys/{id}` on `instance`.
pub async fn key_object(
    http: &reqwest::Client,
    instance: &Instance,
    owner: &Owner,
    id: &str,
) -> Value {
    let res = http
        .get(instance.url(&format!("/api/v1/keys/{id}")))
        .bearer_auth(&owner.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "reading key {id}");
    res.json().await.unwrap()
}

/// `GET /readyz`: the status and body.
pub async fn readyz(http: &reqwest::Client, instance: &Instance) -> (u16, Value) {
    let res = http.get(instance.url("/readyz")).send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// Polls `probe` every 20 ms until it returns `Some`, failing after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the synchronous `probe` every 20 ms until it returns `Some`, failing after `limit`.
pub async fn eventually_sync<T>(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    eventually(what, limit, || std::future::ready(probe())).await
}

/// Fails if `text` contains anything shaped like a full key (`jt_sk_` + 38 base62 chars).
pub fn assert_no_full_key(what: &str, text: &str) {
    for (at, _) in text.match_indices("jt_sk_") {
        let tail = &text[at + 6..];
        let run = tail.bytes().take_while(u8::is_ascii_alphanumeric).count();
        assert!(
            run < 38,
            "{what} contains a full API key at byte {at} (not printed)"
        );
    }
}

/// The shared Redis answers PING, or a loud failure naming the start command.
pub fn require_shared_redis() {
    assert!(
        redis_pings(6379),
        "these tests need Redis on 127.0.0.1:6379; start it with `{START_REDIS}`"
    );
}

// Only the scale-out tests start their own Redis.
#[allow(unused_imports)]
pub use adapters_redis::testing::{PrivateRedis, redis_pings};

/// The `q`-th quantile (0..=1) of sorted `samples`, nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    assert!(!sorted.is_empty());
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
