//! When the ledger's kept connection is pinged before a batch is sent on it.
//!
//! A PostgreSQL restart, or a proxy's idle timeout, closes a pooled connection without the pool
//! noticing. A charge sent on it fails after it may have been sent, so its fate is unknown and
//! its request a 503; and the pool keeps the connection. Pinging at every checkout would add a
//! round trip to every batch. So, like HikariCP's bypass window, a checkout pings only when no
//! batch has completed within [`TRUSTED_FOR`], or the last one failed, or any call of the store
//! found its connection closed since; a ping that fails makes r2d2 drop that connection and open
//! another before the batch is sent. A server cannot be stopped and started again within the
//! window, so a connection trusted by it was not closed by a restart.
//!
//! Under load batches complete continuously and no ping is sent. The trust is one per store,
//! not per connection: exact, as the ledger has one connection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long after a completed batch the ledger's connections are trusted without a ping.
pub(crate) const TRUSTED_FOR: Duration = Duration::from_millis(100);

/// The ledger connections' trust: when a batch last completed, and whether the last one failed.
#[derive(Debug)]
pub(crate) struct ConnectionTrust {
    started: Instant,
    /// Milliseconds since `started` at the last completed batch, plus one; 0: none yet.
    last_ok: AtomicU64,
    failed: AtomicBool,
}

impl Default for ConnectionTrust {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            last_ok: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        }
    }
}

impl ConnectionTrust {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// Whether a checkout may skip its ping.
    pub(crate) fn trusted(&self) -> bool {
        let last = self.last_ok.load(Ordering::Relaxed);
        let window = u64::try_from(TRUSTED_FOR.as_millis()).unwrap_or(u64::MAX);
        last != 0
            && !self.failed.load(Ordering::Relaxed)
            && self.now().saturating_sub(last) <= window
    }

    /// A batch, or a ping, completed on a ledger connection.
    pub(crate) fn succeeded(&self) {
        self.last_ok.store(self.now(), Ordering::Relaxed);
        self.failed.store(false, Ordering::Relaxed);
    }

    /// A batch failed, or a call found its connection closed: the next checkout pings,
    /// whatever the time.
    pub(crate) fn failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_only_after_a_success_within_the_window_and_no_failure_since() {
        let trust = ConnectionTrust::default();
        assert!(!trust.trusted(), "nothing completed yet");
        trust.succeeded();
        assert!(trust.trusted());
        trust.failed();
        assert!(!trust.trusted(), "the last batch failed");
        trust.succeeded();
        assert!(trust.trusted());
        let stale = ConnectionTrust {
            started: Instant::now() - TRUSTED_FOR * 3,
            last_ok: AtomicU64::new(1),
            failed: AtomicBool::new(false),
        };
        assert!(!stale.trusted(), "idle past the window");
    }
}
