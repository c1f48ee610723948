//! Test support: a real SMTP server (Python's aiosmtpd) in a child process.
//!
//! Test code: it panics on any setup failure so the test stops loudly with the reason.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::fs::{self, File};
use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Debian's Python, which has `python3-aiosmtpd`; a `python3` earlier on `PATH` may not.
const PYTHON: &str = "/usr/bin/python3";

/// A recipient the server refuses with `550` (permanent).
pub const REJECTED_RECIPIENT: &str = "reject-550@example.com";
/// A recipient the server refuses with `451` (transient).
pub const DEFERRED_RECIPIENT: &str = "defer-451@example.com";
/// A sender for tests, shaped like the service's default `MAIL_FROM`.
pub const SENDER: &str = "JobTactics <alerts@jobtactics.io>";

const SERVER_SCRIPT: &str = r#"
import asyncio, email, json, os, sys
from email import policy
from aiosmtpd.smtp import SMTP

port, out_path, ready_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() == "reject-550@example.com":
            return "550 5.1.1 mailbox unavailable"
        if address.lower() == "defer-451@example.com":
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        msg = email.message_from_bytes(raw, policy=policy.default)
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        record = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "header_from": str(msg.get("From", "")),
            "header_to": str(msg.get("To", "")),
            "subject": str(msg.get("Subject", "")),
            "content_type": str(msg.get("Content-Type", "")),
            "body": text.replace("\r\n", "\n"),
            "raw": raw.decode("utf-8", "replace"),
        }
        with open(out_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return "250 Message accepted for delivery"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(), enable_SMTPUTF8=True), "127.0.0.1", port, reuse_address=True
    )
    with open(ready_path, "w") as f:
        f.write("ready")
    await server.serve_forever()

asyncio.run(main())
"#;

/// One message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ReceivedMessage {
    /// Envelope sender (`MAIL FROM`).
    pub from: String,
    /// Envelope recipients (`RCPT TO`) that were accepted.
    pub to: Vec<String>,
    /// The `From:` header, e.g. `JobTactics <alerts@jobtactics.io>`.
    pub header_from: String,
    /// The `To:` header.
    pub header_to: String,
    /// The decoded `Subject:` header.
    pub subject: String,
    /// The `Content-Type:` header.
    pub content_type: String,
    /// The decoded plain-text body, `\n` line endings.
    pub body: String,
    /// The message as received.
    pub raw: String,
}

/// A real SMTP server on `127.0.0.1:port`, recording each accepted message. The child process
/// is killed on drop.
pub struct TestSmtpServer {
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl TestSmtpServer {
    /// Starts a server on a free port and waits until it is ready.
    ///
    /// # Panics
    /// When `/usr/bin/python3` lacks aiosmtpd, or the server does not come up.
    #[must_use]
    pub fn start() -> Self {
        require_aiosmtpd();
        let dir = tempfile::tempdir().expect("temp dir for the test SMTP server");
        fs::write(dir.path().join("server.py"), SERVER_SCRIPT).expect("write server script");
        let port = free_port();
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.spawn();
        server
    }

    /// `smtp://127.0.0.1:PORT`, plain SMTP without TLS.
    #[must_use]
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Kills the server: connections to the port are refused until [`restart`](Self::restart).
    /// Messages received so far are kept.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (stopping it first if it runs).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Whether the server process runs.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Every message accepted so far, oldest first (across restarts).
    #[must_use]
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        let text = match fs::read_to_string(self.messages_path()) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("reading the test SMTP server's messages: {e}"),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a JSON line written by the server script"))
            .collect()
    }

    /// Waits (up to `timeout`) until at least `n` messages arrived, and returns all of them.
    ///
    /// # Panics
    /// When fewer than `n` arrived in time.
    #[must_use]
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} email(s) at the test SMTP server within {timeout:?}, got {}: {got:#?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn messages_path(&self) -> PathBuf {
        self.dir.path().join("messages.jsonl")
    }

    fn spawn(&mut self) {
        let ready = self.dir.path().join("ready");
        let _ = fs::remove_file(&ready);
        let stderr_path = self.dir.path().join("stderr.log");
        let stderr = File::create(&stderr_path).expect("stderr file for the test SMTP server");
        let mut child = Command::new(PYTHON)
            .arg(self.dir.path().join("server.py"))
            .arg(self.port.to_string())
            .arg(self.messages_path())
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {PYTHON} for the test SMTP server: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready.exists() {
            if let Some(status) = child.try_wait().expect("polling the test SMTP server") {
                let mut err = String::new();
                let _ = File::open(&stderr_path).and_then(|mut f| f.read_to_string(&mut err));
                panic!(
                    "the test SMTP server on port {} exited ({status}) before it was ready:\n{err}",
                    self.port
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the test SMTP server on port {} was not ready within 30 s",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The ready file is written after the socket listens; double-check from this side.
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the test SMTP server on port {} does not accept connections: {e}",
                self.port
            );
        }
        self.child = Some(child);
    }
}

impl Drop for TestSmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that nothing listens on right now (connections to it are refused).
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding an ephemeral port")
        .port()
}

fn require_aiosmtpd() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{PYTHON} cannot import aiosmtpd, which the SMTP tests need: install it: apt-get install -y python3-aiosmtpd"
    );
}
