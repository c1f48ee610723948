//! Logs, from the built binary: JSON lines, one line per record, the start-up summary, an
//! invalid `RUST_LOG`, a failure printed once, and the request id and trace in the request span.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Database, unique};

fn api_actix(database_url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_api-actix"));
    c.env("DATABASE_URL", database_url)
        .env_remove("JWT_SECRET_FILE")
        .env_remove("REDIS_URL")
        .env_remove("SMTP_URL")
        .env_remove("RUST_LOG")
        .env_remove("JT_LOG_FORMAT")
        .env("JT_METRICS_BIND", "off")
        .env("JT_BIND", "127.0.0.1:0");
    c
}

/// A running `serve`, its stderr lines collected by a thread.
struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no `{needle}` in:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// SIGTERM, then every line.
    fn stop(mut self) -> Vec<String> {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        assert!(self.child.wait().unwrap().success());
        self.seen.extend(self.lines.iter());
        self.seen
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_the_request_id_and_trace() {
    let db = Database::fresh(Backend::Sqlite).await;
    let secret = unique("log-test-secret-that-is-long-enough-");
    let mut command = api_actix(&db.url);
    command
        .env("JT_LOG_FORMAT", "json")
        .env("JWT_SECRET", &secret)
        // Debug for the service: each request's end is logged with its span.
        .env("RUST_LOG", "info,api_actix=debug")
        .env("JT_HIGH_USAGE_THRESHOLD", "1");
    let mut served = Served::start(command);
    let listening: Value = serde_json::from_str(&served.wait_for("listening")).unwrap();
    let addr = listening["addr"].as_str().unwrap().to_owned();
    let url = |path: &str| format!("http://{addr}{path}");
    let client = reqwest::Client::new();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = client
        .get(url("/nope"))
        .header("x-request-id", "log-test-request")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // A key used once crosses the threshold of 1: the alert email (multi-line) is logged.
    let cli = |args: &[&str]| {
        let out = api_actix(&db.url)
            .env("JWT_SECRET", &secret)
            .args(args)
            .output()
            .unwrap();
        crate::helpers::stdout_of(&out, &args.join(" "))
            .trim()
            .to_owned()
    };
    cli(&["users", "create", "--email", "logs@example.com"]);
    let token = cli(&["tokens", "issue", "--user", "logs@example.com"]);
    let created: Value = client
        .post(url("/api/v1/keys"))
        .bearer_auth(&token)
        .json(&json!({ "name": "logged" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap();
    let me = client
        .get(url("/api/v1/public/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let alert = served.wait_for("email logged instead of sent");
    let lines = served.stop();

    let records: Vec<Value> = lines
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}"))
        })
        .collect();
    assert!(records.iter().all(Value::is_object));
    // The start-up line: version and settings, the secret masked.
    let start = records
        .iter()
        .find(|r| r["message"] == "starting api-actix")
        .expect("start-up line");
    assert_eq!(start["version"], env!("CARGO_PKG_VERSION"));
    let config = start["config"].as_str().unwrap();
    assert!(
        config.contains("bind=127.0.0.1:0") && config.contains("log_format=json"),
        "{config}"
    );
    assert!(
        config.contains("jwt_secret=configured (hidden)"),
        "{config}"
    );
    assert!(
        lines.iter().all(|l| !l.contains(&secret)),
        "the secret was logged"
    );
    assert!(lines.iter().all(|l| !l.contains(key)), "the key was logged");
    // The request's span carries the inbound request id and the caller's trace.
    let request = records
        .iter()
        .find(|r| r["span"]["request_id"] == "log-test-request")
        .unwrap_or_else(|| panic!("no record of the request in:\n{}", lines.join("\n")));
    assert_eq!(request["span"]["trace_id"], trace_id);
    assert_eq!(request["span"]["parent_span_id"], "00f067aa0ba902b7");
    // And its method and route pattern (unmatched here; a matched one below).
    assert_eq!(request["span"]["method"], "GET");
    assert_eq!(request["span"]["route"], "unmatched");
    assert!(
        records
            .iter()
            .any(|r| r["span"]["method"] == "POST" && r["span"]["route"] == "/api/v1/keys"),
        "no record in the span of POST /api/v1/keys:\n{}",
        lines.join("\n")
    );
    // The email body (several lines) is one record, whole.
    let alert: Value = serde_json::from_str(&alert).unwrap();
    let body = alert["body"].as_str().unwrap();
    assert!(
        body.contains("High usage") || body.contains("high-usage"),
        "{body}"
    );
    assert!(body.contains("-- JobTactics"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_keep_a_multi_line_email_on_one_line() {
    let db = Database::fresh(Backend::Sqlite).await;
    let secret = unique("log-test-secret-that-is-long-enough-");
    let mut command = api_actix(&db.url);
    command
        .env("JWT_SECRET", &secret)
        .env("JT_HIGH_USAGE_THRESHOLD", "1");
    let mut served = Served::start(command);
    let listening = served.wait_for("listening");
    let addr = listening
        .split("addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let cli = |args: &[&str]| {
        let out = api_actix(&db.url)
            .env("JWT_SECRET", &secret)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    cli(&["users", "create", "--email", "text@example.com"]);
    let token = cli(&["tokens", "issue", "--user", "text@example.com"]);
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("http://{addr}/api/v1/keys"))
        .bearer_auth(&token)
        .json(&json!({ "name": "texty" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap();
    client
        .get(format!("http://{addr}/api/v1/public/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let alert = served.wait_for("email logged instead of sent");
    let lines = served.stop();
    assert!(
        alert.contains("Hello,") && alert.contains("-- JobTactics"),
        "{alert}"
    );
    // Every line is a record of its own: it starts with a timestamp.
    for line in &lines {
        assert!(
            line.starts_with("20") && line.as_bytes().get(4) == Some(&b'-'),
            "a record spans lines: {line}"
        );
    }
}

#[test]
fn an_invalid_rust_log_stops_the_start() {
    let out = api_actix("sqlite:///nonexistent-dir/x.db")
        .env("RUST_LOG", "api_actix=loud")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("RUST_LOG") && stderr.contains("api_actix=loud"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Filters that parse but name nothing this service logs under would silence it.
    for silent in ["warning", "infoo", "api_actx=debug"] {
        let out = api_actix("sqlite:///nonexistent-dir/x.db")
            .env("RUST_LOG", silent)
            .arg("serve")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{silent}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("RUST_LOG") && stderr.contains(silent),
            "{silent}: {stderr}"
        );
    }
    let out = api_actix("sqlite:///nonexistent-dir/x.db")
        .env("JT_LOG_FORMAT", "yaml")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("JT_LOG_FORMAT")
            || String::from_utf8_lossy(&out.stderr).contains("yaml")
    );
}

#[test]
fn a_database_that_is_down_is_reported_once() {
    // Nothing listens on port 1.
    for format in ["text", "json"] {
        let out = api_actix("postgres://jt:pw@127.0.0.1:1/jt")
            .env("JT_LOG_FORMAT", format)
            .env("JWT_SECRET", unique("down-test-secret-long-enough-to-use-"))
            .arg("serve")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let errors: Vec<&&str> = lines
            .iter()
            .filter(|l| {
                l.contains("ERROR") || l.contains("\"level\":\"ERROR\"") || l.starts_with("error")
            })
            .collect();
        assert_eq!(errors.len(), 1, "{format}: {stderr}");
        assert!(
            errors[0].contains("127.0.0.1") && !errors[0].contains(":pw@"),
            "{stderr}"
        );
        // The start-up line and the failure, nothing else (no pool retries).
        assert_eq!(lines.len(), 2, "{format}: {stderr}");
    }
}

/// A server whose stderr reader goes away (`api-actix serve 2>&1 | head -1`) keeps serving and
/// exits 0 on SIGTERM; it exited 101, panicking on the write error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stderr_is_not_fatal() {
    let db = Database::fresh(Backend::Sqlite).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = api_actix(&db.url)
        .env(
            "JWT_SECRET",
            unique("closed-stderr-secret-that-is-long-enough-"),
        )
        .env("JT_BIND", format!("127.0.0.1:{port}"))
        .arg("serve")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut first = String::new();
        BufReader::new(server.stderr.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.contains("starting api-actix"), "{first}");
    } // the reader is gone: every later line fails to write
    let client = reqwest::Client::new();
    let up = crate::helpers::eventually(Duration::from_secs(20), || {
        let client = client.clone();
        async move {
            client
                .get(format!("http://127.0.0.1:{port}/api/v1/nope"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 404)
        }
    })
    .await;
    assert!(
        up.is_some(),
        "the server stopped serving: {:?}",
        server.try_wait()
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}
