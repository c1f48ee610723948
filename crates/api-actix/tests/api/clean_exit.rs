//! Every command exits cleanly on PostgreSQL, run after run. libpq opens connections through
//! OpenSSL, whose exit handlers crashed the process (SIGSEGV) in about one run in eight while a
//! pool thread was still connecting (docs/storage.md, "Exiting cleanly").

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::helpers::{Backend, Database, unique};

const CLI_RUNS: usize = 200;
const SERVE_RUNS: usize = 50;

fn api_actix(database_url: &str, secret: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_api-actix"));
    command
        .env("DATABASE_URL", database_url)
        .env("JWT_SECRET", secret)
        .env_remove("REDIS_URL")
        .env_remove("SMTP_URL")
        .env_remove("RUST_LOG")
        .env("JT_METRICS_BIND", "off");
    command
}

fn describe(status: ExitStatus) -> String {
    match status.signal() {
        Some(signal) => format!("killed by signal {signal}"),
        None => format!("exit code {:?}", status.code()),
    }
}

/// Runs `args` `CLI_RUNS` times; every run must exit 0.
fn run_repeatedly(url: &str, secret: &str, args: impl Fn(usize) -> Vec<String>) {
    let mut failures = Vec::new();
    for run in 0..CLI_RUNS {
        let args = args(run);
        let out = api_actix(url, secret).args(&args).output().unwrap();
        if !out.status.success() {
            failures.push(format!(
                "run {run} `{}`: {}; stderr: {}",
                args.join(" "),
                describe(out.status),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CLI_RUNS} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|&a| a.to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operator_command_exits_zero_run_after_run_on_postgres() {
    let db = Database::fresh(Backend::Postgres).await;
    let url = db.url.clone();
    let secret = unique("clean-exit-secret-padding-to-32-bytes-");
    tokio::task::spawn_blocking(move || {
        let email = "owner@example.com";
        run_repeatedly(&url, &secret, |_| strings(&["migrate"]));
        run_repeatedly(&url, &secret, |run| {
            let email = format!("user{run}@example.com");
            strings(&["users", "create", "--email", &email, "--credits", "5"])
        });
        let created = api_actix(&url, &secret)
            .args(["users", "create", "--email", email])
            .output()
            .unwrap();
        assert!(created.status.success(), "{}", describe(created.status));
        run_repeatedly(&url, &secret, |_| {
            strings(&["tokens", "issue", "--user", email])
        });
        run_repeatedly(&url, &secret, |_| {
            strings(&["credits", "grant", "--user", email, "--amount", "1"])
        });
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exits_zero_on_sigterm_run_after_run_on_postgres() {
    let db = Database::fresh(Backend::Postgres).await;
    let url = db.url.clone();
    let secret = unique("clean-exit-secret-padding-to-32-bytes-");
    tokio::task::spawn_blocking(move || {
        for run in 0..SERVE_RUNS {
            let mut child = api_actix(&url, &secret)
                .arg("serve")
                .env("JT_BIND", "127.0.0.1:0")
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // Serving once the "listening" line is out; the pool may still be filling then,
            // which is the moment the crash needed. The rest of the log is kept for a failure.
            let logs = BufReader::new(child.stderr.take().unwrap());
            let (listening_tx, listening_rx) = std::sync::mpsc::channel();
            let reader = std::thread::spawn(move || {
                let mut kept = Vec::new();
                for line in logs.lines().map_while(Result::ok) {
                    if line.contains("listening") {
                        let _ = listening_tx.send(());
                    }
                    kept.push(line);
                }
                kept
            });
            assert!(
                listening_rx.recv_timeout(Duration::from_secs(30)).is_ok(),
                "run {run}: the server did not start: {:?}",
                reader.join()
            );
            let killed = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(killed.success());
            let status = child.wait().unwrap();
            let logs = reader.join().unwrap();
            assert!(
                status.success(),
                "run {run}: {}; log:\n{}",
                describe(status),
                logs.join("\n")
            );
        }
    })
    .await
    .unwrap();
}

/// Reads one HTTP/1.1 response (head and a `Content-Length` body) from `stream`; `None` when
/// the server closed the connection before sending a byte.
fn read_response(stream: &mut std::net::TcpStream) -> Option<String> {
    use std::io::Read as _;
    let mut got = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return Some(text);
            }
        }
        let n = stream.read(&mut buf).unwrap_or(0);
        if n == 0 && got.is_empty() {
            return None;
        }
        assert!(n > 0, "closed before a whole response: {text}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// SIGTERM drains: a keep-alive connection opened before it is never served 200 again. Either
/// its next `/readyz` answers 503 `draining` with `Connection: close` and the connection
/// closes, or the drain already closed it while idle; and the process exits well before its
/// 10 s shutdown timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_keep_alive_connections() {
    use std::io::{Read as _, Write as _};
    let db = Database::fresh(Backend::Sqlite).await;
    let secret = unique("drain-secret-padding-to-32-bytes-");
    let (base, mut child) = crate::helpers::spawn_server_process(&db.url, &secret).await;
    let addr = base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let readyz = b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
        conn.write_all(readyz).unwrap();
        let before = read_response(&mut conn).expect("an answer before the signal");
        assert!(before.starts_with("HTTP/1.1 200"), "{before}");

        let signalled = std::time::Instant::now();
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        std::thread::sleep(Duration::from_millis(300));
        // The server may have closed the idle connection already: then the write or the read
        // finds it closed, which is the drain too.
        let during = conn
            .write_all(readyz)
            .ok()
            .and_then(|()| read_response(&mut conn));
        if let Some(during) = during {
            assert!(during.starts_with("HTTP/1.1 503"), "{during}");
            assert!(during.contains("\"status\":\"draining\""), "{during}");
            assert!(
                during.to_ascii_lowercase().contains("connection: close"),
                "{during}"
            );
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest);
            assert!(rest.is_empty(), "more after the close: {rest:?}");
        }

        let status = child.wait().unwrap();
        assert!(status.success(), "{}", describe(status));
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "exit took {:?}",
            signalled.elapsed()
        );
    })
    .await
    .unwrap();
}

/// SIGTERM under keep-alive load: connections that sit idle are closed by the server within
/// a second (not at their 5 s keep-alive timer), every request the server began to answer is
/// answered whole (a busy connection ends only between answers, after `Connection: close`),
/// and the process exits within 3 s, not at its 10 s shutdown timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_closes_idle_connections_and_answers_whole() {
    use std::io::{Read as _, Write as _};
    let db = Database::fresh(Backend::Sqlite).await;
    let secret = unique("load-drain-secret-padding-to-32-bytes-");
    let (base, mut child) = crate::helpers::spawn_server_process(&db.url, &secret).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let busy = (0..8)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut answered = 0_u32;
                let mut conn = std::net::TcpStream::connect(&addr).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                loop {
                    if conn.write_all(healthz).is_err() {
                        return answered;
                    }
                    // `read_response` fails the test on an answer cut short.
                    match read_response(&mut conn) {
                        Some(answer)
                            if answer.to_ascii_lowercase().contains("connection: close") =>
                        {
                            return answered + 1;
                        }
                        Some(answer) => {
                            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
                            answered += 1;
                        }
                        None => return answered,
                    }
                }
            })
        })
        .collect::<Vec<_>>();
    let mut idle = (0..4)
        .map(|_| {
            let mut conn = std::net::TcpStream::connect(&addr).unwrap();
            conn.write_all(healthz).unwrap();
            let answer = read_response(&mut conn).expect("an answer before the signal");
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            conn.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
            conn
        })
        .collect::<Vec<_>>();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let signalled = std::time::Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let idle_closed = tokio::task::spawn_blocking(move || {
        idle.iter_mut()
            .map(|conn| {
                let mut rest = [0_u8; 64];
                let read = conn.read(&mut rest);
                // 0 bytes (or a reset): the server closed it. A timeout is an error after 4 s.
                assert!(
                    matches!(read, Ok(0))
                        || read
                            .as_ref()
                            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
                    "an idle connection was not closed: {read:?} after {:?}",
                    signalled.elapsed()
                );
                signalled.elapsed()
            })
            .max()
    })
    .await
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let exited = signalled.elapsed();
    assert!(status.success(), "{}", describe(status));
    assert!(
        idle_closed.is_some_and(|t| t < Duration::from_secs(1)),
        "idle connections closed after {idle_closed:?}"
    );
    assert!(exited < Duration::from_secs(3), "exit took {exited:?}");
    for client in busy {
        assert!(client.join().unwrap() > 0, "a client was never answered");
    }
}
