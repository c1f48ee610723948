//! A raw TCP client, for requests reqwest will not send: ambiguous framing, a body trickled a
//! byte at a time, a body never sent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// What came back before the server closed the connection (or `read_for` passed).
pub struct RawExchange {
    pub text: String,
    /// The server closed the connection (EOF) rather than the wait running out.
    pub closed: bool,
    pub elapsed: Duration,
}

impl RawExchange {
    pub fn status(&self) -> u16 {
        self.text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {:?}", self.text))
    }

    /// How many responses the server sent.
    pub fn responses(&self) -> usize {
        self.text.matches("HTTP/1.1 ").count()
    }
}

/// `base` is `http://host:port`.
pub fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// Sends `head` (and, if any, each of `trickle` after `gap`), then reads until EOF or
/// `read_for`.
pub async fn exchange(
    base: &str,
    head: String,
    trickle: Vec<Vec<u8>>,
    gap: Duration,
    read_for: Duration,
) -> RawExchange {
    let addr = addr(base);
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let mut pieces = trickle.into_iter();
        let mut next_piece = Instant::now() + gap;
        let closed = loop {
            if started.elapsed() > read_for {
                break false;
            }
            if Instant::now() >= next_piece {
                if let Some(piece) = pieces.next() {
                    // The server may have answered and closed already.
                    let _ = stream.write_all(&piece);
                }
                next_piece = Instant::now() + gap;
            }
            match stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break true,
            }
        };
        RawExchange {
            text: String::from_utf8_lossy(&out).into_owned(),
            closed,
            elapsed: started.elapsed(),
        }
    })
    .await
    .unwrap()
}
