//! Issue 34, item 5: the series an operator alerts on (deploy/prometheus/alerts.yml,
//! docs/operating.md "Observe"). They exist from the start, keep moving while a dependency is
//! down, pass `promtool check metrics`, and the alert rules pass `promtool check rules` and
//! their unit tests, naming only series the service serves. Faults use a private PostgreSQL and
//! a private Redis; the shared ones are never stopped.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use adapters_redis::testing::PrivateRedis;
use reqwest::Method;

use crate::helpers::{Backend, TestApp, binary, eventually, stdout_of, unique};
use crate::outage::PrivatePostgres;

/// The value of a series line (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn must(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// The families of a scrape, by name, with their type.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

async fn scrape_at(client: &reqwest::Client, addr: &str) -> String {
    let res = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

async fn scrape(app: &TestApp) -> String {
    scrape_at(
        &app.client,
        &app.metrics.expect("metrics are on").to_string(),
    )
    .await
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `promtool ARGS` (with `stdin` as its input, if given), which must succeed.
fn promtool(args: &[&str], dir: &Path, stdin: Option<&str>) -> String {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "promtool cannot be run ({e}): install it with `bash scripts/ensure-services.sh` \
                 (Debian's prometheus package ships it)"
            )
        });
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed:\n{said}",
        args.join(" ")
    );
    said
}

/// Every `jt_…` and `process_…` name in `text`.
fn series_named(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if at_word_start && (text[i..].starts_with("jt_") || text[i..].starts_with("process_")) {
            let end = text[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(text.len(), |n| i + n);
            names.push(text[i..end].to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The family a series name belongs to (`x_bucket` of histogram `x` is `x`).
fn family_of<'a>(name: &'a str, families: &BTreeMap<String, String>) -> Option<&'a str> {
    if families.contains_key(name) {
        return Some(name);
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        name.strip_suffix(suffix)
            .filter(|base| families.get(*base).is_some_and(|k| k == "histogram"))
    })
}

/// The server binary, killed when dropped (also when the test fails).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `db_url` as a process of its own (a registry no other test has touched), metrics on a
/// free port: the server, its API address and its metrics address.
async fn serve_with_metrics(db_url: &str, secret: &str) -> (Server, String, String) {
    let mut child = binary(db_url, secret)
        .arg("serve")
        .env("JT_BIND", "127.0.0.1:0")
        .env("JT_METRICS_BIND", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in logs.lines().map_while(Result::ok) {
            let field = |name: &str| {
                line.split(name)
                    .nth(1)
                    .and_then(|v| v.split_whitespace().next())
                    .map(|v| {
                        v.trim_start_matches("Some(")
                            .trim_end_matches(')')
                            .to_owned()
                    })
            };
            if line.contains("listening")
                && let (Some(api), Some(metrics)) = (field("addr="), field("metrics="))
            {
                let _ = tx.send((api, metrics));
            }
        }
    });
    let server = Server(child);
    let (api, metrics) =
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("the server did not start");
    (server, api, metrics)
}

/// The counters an alert reads are there, at 0, before their first event (`rate()` of a series
/// that appears with its first event misses that event, and `absent()` cannot tell "none yet"
/// from "not served"); `jt_build_info` names the build; `process_*` are there. Then, after
/// traffic that includes a refused key, the whole scrape passes `promtool check metrics`, the
/// rules pass `promtool check rules` and their unit tests, and every series they name is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerting_series_exist_from_the_start_and_pass_promtool() {
    let (_dir, db_url) = adapters_postgres::testing::fresh_sqlite_url();
    let secret = unique("metrics-alerts-secret-padding-to-32-bytes-");
    let cli = |args: &[&str]| {
        let out = binary(&db_url, &secret).args(args).output().unwrap();
        stdout_of(&out, &args.join(" ")).trim().to_owned()
    };
    cli(&["migrate"]);
    cli(&[
        "users",
        "create",
        "--email",
        "sre@example.com",
        "--credits",
        "5",
    ]);
    let token = cli(&["tokens", "issue", "--user", "sre@example.com"]);
    let (_server, api, metrics) = serve_with_metrics(&db_url, &secret).await;
    let client = reqwest::Client::new();

    let first = scrape_at(&client, &metrics).await;
    for kind in api_actix::metric_names::AUTH_FAILURE_TYPES {
        assert_eq!(
            sample(
                &first,
                &format!("jt_auth_failures_total{{type=\"{kind}\"}}")
            ),
            Some(0.0),
            "{kind}:\n{first}"
        );
    }
    for kind in ["unavailable", "transient", "internal"] {
        assert_eq!(
            sample(&first, &format!("jt_db_errors_total{{kind=\"{kind}\"}}")),
            Some(0.0),
            "{kind}:\n{first}"
        );
    }
    assert_eq!(sample(&first, "jt_usage_flush_failures_total"), Some(0.0));
    assert_eq!(
        sample(&first, "jt_alert_outbox_oldest_age_seconds"),
        Some(0.0)
    );
    let build = first
        .lines()
        .find(|l| l.starts_with("jt_build_info{"))
        .unwrap_or_else(|| panic!("no jt_build_info:\n{first}"));
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        build.starts_with(&format!("jt_build_info{{version=\"{version}\",commit=\"")),
        "{build}"
    );
    assert!(build.ends_with("\"} 1"), "{build}");
    let commit = build
        .split("commit=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repository())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        Some(head) => assert_eq!(commit, head, "built from another commit than HEAD"),
        None => assert_eq!(commit, "unknown"),
    }
    for (pool, max) in [("requests", 8.0), ("ledger", 1.0)] {
        assert_eq!(
            sample(&first, &format!("jt_db_connections_max{{pool=\"{pool}\"}}")),
            Some(max),
            "{first}"
        );
        for state in ["idle", "in_use"] {
            let series = format!("jt_db_connections{{pool=\"{pool}\",state=\"{state}\"}}");
            assert!(sample(&first, &series).is_some(), "{series}:\n{first}");
        }
    }
    // Start-up (migrations, the JWT secret) already took connections.
    assert!(must(&first, r#"jt_db_pool_wait_seconds_count{pool="requests"}"#) >= 1.0);
    assert!(must(&first, "process_resident_memory_bytes") > 1e6);
    assert!(must(&first, "process_open_fds") >= 3.0);
    assert!(must(&first, "process_max_fds") >= must(&first, "process_open_fds"));
    assert!(must(&first, "process_cpu_seconds_total") >= 0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = must(&first, "process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 300.0,
        "{started} vs {now}"
    );

    // Traffic: a key created and used, a refused key, an unknown path.
    let created: serde_json::Value = client
        .post(format!("http://{api}/api/v1/keys"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "sre" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap();
    let get = |path: &str, bearer: &str| {
        client
            .request(Method::GET, format!("http://{api}{path}"))
            .bearer_auth(bearer)
            .send()
    };
    assert_eq!(get("/api/v1/public/me", key).await.unwrap().status(), 200);
    assert_eq!(
        get("/api/v1/public/me", "jt_sk_nope")
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(get("/no/such/thing", key).await.unwrap().status(), 404);
    let text = scrape_at(&client, &metrics).await;
    assert_eq!(
        sample(&text, r#"jt_auth_failures_total{type="malformed_api_key"}"#),
        Some(1.0)
    );
    promtool(&["check", "metrics"], &repository(), Some(&text));

    let rules_dir = repository().join("deploy/prometheus");
    promtool(&["check", "rules", "alerts.yml"], &rules_dir, None);
    promtool(&["test", "rules", "alerts.test.yml"], &rules_dir, None);
    let rules = std::fs::read_to_string(rules_dir.join("alerts.yml")).unwrap();
    let served = families(&text);
    // Served only with REDIS_URL (and a revocation heard): checked by the Redis test below.
    let with_redis = ["jt_redis_up", "jt_revocation_propagation_seconds_bucket"];
    let named = series_named(&rules);
    assert!(named.len() >= 10, "{named:?}");
    for name in &named {
        if with_redis.contains(&name.as_str()) {
            continue;
        }
        assert!(
            family_of(name, &served).is_some(),
            "alerts.yml names {name}, which /metrics does not serve:\n{text}"
        );
    }
}

/// During a database outage the outbox's age keeps growing (it froze at 4.0 s through a 14.5 s
/// outage, so no alert on it could fire), the failed calls are counted by kind, and so are the
/// usage flushes the store refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_database_outage_the_outbox_age_grows_and_failures_are_counted() {
    let mut pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let app = pg
        .app(|config| {
            config.metrics_bind = Some("127.0.0.1:0".into());
            // The key stays cached through the outage, so a request still records usage to
            // flush.
            config.tuning.key_cache_ttl = Duration::from_secs(120);
            config.tuning.key_feed_interval = None;
        })
        .await;
    let user = app.user(5).await;
    let (_, key) = app.create_key(&user, "outage").await;
    assert_eq!(
        app.public_get(&key, "/api/v1/public/me").await.status(),
        200
    );
    // An alert email queued 10 s ago, not due for an hour: it stays pending.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    adapters_postgres::testing::execute_sql(
        &app.store,
        &format!(
            "INSERT INTO email_outbox (id, to_address, subject, body, attempts, next_attempt_at, \
             created_at) VALUES ('{}', 'ops@example.com', 'usage', 'body', 0, {}, {})",
            unique("alr_metrics_"),
            now + 3_600_000,
            now - 10_000
        ),
    )
    .await;
    let before = scrape(&app).await;
    assert!(must(&before, "jt_alert_outbox_pending") >= 1.0);
    let age = must(&before, "jt_alert_outbox_oldest_age_seconds");
    assert!((10.0..60.0).contains(&age), "{age}");
    assert_eq!(
        sample(&before, r#"jt_db_connections_max{pool="requests"}"#),
        Some(16.0)
    );
    let unavailable_before = must(&before, r#"jt_db_errors_total{kind="unavailable"}"#);
    let transient_before = must(&before, r#"jt_db_errors_total{kind="transient"}"#);
    let flush_failures_before = must(&before, "jt_usage_flush_failures_total");

    let mut pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    // Served from the cache; its usage cannot be written.
    assert_eq!(
        app.public_get(&key, "/api/v1/public/me").await.status(),
        200
    );
    let failed_flush = eventually(Duration::from_secs(20), || async {
        sample(&scrape(&app).await, "jt_usage_flush_failures_total")
            .is_some_and(|n| n > flush_failures_before)
    })
    .await;
    assert!(failed_flush.is_some(), "no usage flush failure counted");

    let during = scrape(&app).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = scrape(&app).await;
    let (a1, a2) = (
        must(&during, "jt_alert_outbox_oldest_age_seconds"),
        must(&later, "jt_alert_outbox_oldest_age_seconds"),
    );
    assert!(a1 > age, "{age} -> {a1}");
    assert!(
        a2 - a1 >= 1.9,
        "the age froze during the outage: {a1} -> {a2}"
    );
    assert!(must(&later, "jt_alert_outbox_pending") >= 1.0, "{later}");
    let failed = must(&later, r#"jt_db_errors_total{kind="unavailable"}"#) - unavailable_before
        + must(&later, r#"jt_db_errors_total{kind="transient"}"#)
        - transient_before;
    assert!(failed >= 2.0, "failed calls not counted:\n{later}");
    // A checkout that timed out is a wait too (up to the checkout timeout each).
    let waited = must(&later, r#"jt_db_pool_wait_seconds_sum{pool="requests"}"#)
        - must(&before, r#"jt_db_pool_wait_seconds_sum{pool="requests"}"#);
    assert!(waited > 0.1, "{waited}");
    assert!(
        must(&later, r#"jt_db_pool_wait_seconds_count{pool="requests"}"#)
            > must(&before, r#"jt_db_pool_wait_seconds_count{pool="requests"}"#)
    );

    // Back: the outbox is read again, and the age is the email's own.
    pg = tokio::task::spawn_blocking(move || {
        pg.restart();
        pg
    })
    .await
    .unwrap();
    let back = eventually(Duration::from_secs(30), || async {
        app.public_get(&key, "/api/v1/public/me").await.status() == 200
            && app
                .dash(&user, Method::GET, "/api/v1/keys")
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(back.is_some(), "the database did not come back");
    let after = scrape(&app).await;
    assert!(must(&after, "jt_alert_outbox_oldest_age_seconds") > a2);
    drop(app);
    drop(pg);
}

/// `jt_redis_up` follows Redis (a private one, killed and restarted), and a revocation heard
/// from Redis is a positive time in the propagation histogram (its `_sum` read 0 with `_count` 1:
/// same-host times were truncated to whole milliseconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_up_follows_redis_and_revocations_are_timed() {
    let mut redis = tokio::task::spawn_blocking(PrivateRedis::started)
        .await
        .unwrap();
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.metrics_bind = Some("127.0.0.1:0".into());
        c.redis_url = Some(url);
    })
    .await;
    let first = scrape(&app).await;
    assert_eq!(sample(&first, "jt_redis_up"), Some(1.0), "{first}");
    assert_eq!(
        families(&first).get("jt_redis_up").map(String::as_str),
        Some("gauge")
    );

    let user = app.user(0).await;
    let (created, _) = app.create_key(&user, "revoked").await;
    let id = created["id"].as_str().unwrap();
    let res = app
        .dash(&user, Method::POST, &format!("/api/v1/keys/{id}/revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The registry is the process's: other tests' revocations may be in it too.
    let heard = eventually(Duration::from_secs(10), || async {
        let text = scrape(&app).await;
        sample(&text, "jt_revocation_propagation_seconds_count").is_some_and(|n| n >= 1.0)
    })
    .await;
    assert!(heard.is_some(), "no revocation heard");
    let text = scrape(&app).await;
    assert!(
        must(&text, "jt_revocation_propagation_seconds_sum") > 0.0,
        "observations summed to 0:\n{text}"
    );
    assert!(text.contains("jt_revocation_propagation_seconds_bucket{le="));

    redis.kill();
    let down = eventually(Duration::from_secs(10), || async {
        sample(&scrape(&app).await, "jt_redis_up") == Some(0.0)
    })
    .await;
    assert!(down.is_some(), "jt_redis_up stayed 1 with Redis killed");
    redis = tokio::task::spawn_blocking(move || {
        redis.start();
        redis
    })
    .await
    .unwrap();
    let up = eventually(Duration::from_secs(10), || async {
        sample(&scrape(&app).await, "jt_redis_up") == Some(1.0)
    })
    .await;
    assert!(up.is_some(), "jt_redis_up did not come back to 1");
    app.stop().await;
    drop(redis);
}

/// Without `REDIS_URL`, no `jt_redis_up` (an alert on `== 0` must not fire for what is not
/// configured).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_there_is_no_redis_up() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.metrics_bind = Some("127.0.0.1:0".into());
    })
    .await;
    let text = scrape(&app).await;
    assert!(!text.contains("jt_redis_up"), "{text}");
    app.stop().await;
}
