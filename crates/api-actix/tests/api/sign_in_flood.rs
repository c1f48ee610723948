//! A flood of `POST /api/v1/auth/email-link` from one address, against the server as a process
//! of its own behind a trusted proxy, with a real SMTP server: while 128 connections flood for
//! 8 s, 20 real users asking from 20 other addresses all get their link by email, and the
//! server's log grows by less than 1 MB.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adapters_smtp::testing::TestSmtpServer;
use reqwest::Client;
use serde_json::json;

use crate::helpers::{Backend, Database, binary, stdout_of, unique};

const FLOOD_CONNECTIONS: usize = 128;
const FLOOD_FOR: Duration = Duration::from_secs(8);
const USERS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_link_requests_from_one_address_loses_no_real_users_link() {
    let db = Database::fresh(Backend::Sqlite).await;
    let secret = unique("flood-secret-padding-to-32-bytes-");
    let smtp = TestSmtpServer::start();
    let emails: Vec<String> = (0..USERS)
        .map(|i| format!("{}@example.com", unique(&format!("real{i}-"))))
        .collect();
    for email in &emails {
        let out = binary(&db.url, &secret)
            .args(["users", "create", "--email", email])
            .output()
            .unwrap();
        stdout_of(&out, "users create");
    }

    let mut server = binary(&db.url, &secret)
        .arg("serve")
        .env("JT_BIND", "127.0.0.1:0")
        .env("JT_TRUSTED_PROXIES", "127.0.0.1")
        .env("SMTP_URL", smtp.url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every byte the server logs is counted; the address comes from the "listening" line.
    let log_bytes = Arc::new(AtomicU64::new(0));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let reader = {
        let mut stderr = server.stderr.take().unwrap();
        let log_bytes = log_bytes.clone();
        std::thread::spawn(move || {
            let mut start = Vec::new();
            let mut buf = [0_u8; 64 * 1024];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log_bytes.fetch_add(n as u64, Ordering::Relaxed);
                if start.len() < 64 * 1024 {
                    start.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&start);
                    if let Some(addr) = text.split("addr=").nth(1) {
                        let addr: String =
                            addr.chars().take_while(|c| !c.is_whitespace()).collect();
                        let _ = addr_tx.send(addr);
                    }
                }
            }
        })
    };
    let addr = tokio::task::spawn_blocking(move || addr_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the server did not start");
    let base = format!("http://{addr}");
    let logged_at_start = log_bytes.load(Ordering::Relaxed);
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(FLOOD_CONNECTIONS)
        .build()
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (flooded, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let flood: Vec<_> = (0..FLOOD_CONNECTIONS)
        .map(|n| {
            let (client, url, stop) = (
                client.clone(),
                format!("{base}/api/v1/auth/email-link"),
                stop.clone(),
            );
            let (flooded, refused) = (flooded.clone(), refused.clone());
            tokio::spawn(async move {
                let mut i = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let sent = client
                        .post(&url)
                        .header("x-forwarded-for", "198.51.100.1")
                        .json(&json!({ "email": format!("flood{n}x{i}@example.com") }))
                        .send()
                        .await;
                    flooded.fetch_add(1, Ordering::Relaxed);
                    if sent.is_ok_and(|r| r.status() == 429) {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    let started = Instant::now();
    for (i, email) in emails.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let res = client
            .post(format!("{base}/api/v1/auth/email-link"))
            .header("x-forwarded-for", format!("192.0.2.{}", i + 1))
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "{email}'s request");
    }
    tokio::time::sleep(FLOOD_FOR.saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        task.await.unwrap();
    }

    let received = tokio::task::spawn_blocking(move || {
        let got = smtp.wait_for_messages(USERS, Duration::from_secs(30));
        (smtp, got)
    })
    .await
    .unwrap()
    .1;
    for email in &emails {
        assert!(
            received.iter().any(|m| m.to.iter().any(|t| t == email)),
            "no link reached {email}: {} of {USERS} users got theirs",
            emails
                .iter()
                .filter(|e| received.iter().any(|m| m.to.contains(e)))
                .count()
        );
    }
    let (flooded, refused) = (
        flooded.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    assert!(flooded > 1_000, "the flood sent only {flooded} requests");
    assert!(
        refused >= flooded - 30,
        "the flooding address was refused {refused} of {flooded} times"
    );
    let logged = log_bytes.load(Ordering::Relaxed) - logged_at_start;
    assert!(
        logged < 1_000_000,
        "the log grew by {logged} bytes during the flood"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    server.wait().unwrap();
    reader.join().unwrap();
}
