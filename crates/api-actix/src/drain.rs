//! Draining after a stop signal: from the signal on, `/readyz` answers 503 `draining` (a load
//! balancer stops sending new work at once), and every answer carries `Connection: close`, so
//! keep-alive clients reconnect elsewhere after their request in flight instead of holding the
//! connection until the shutdown timeout.
//!
//! Process-wide: a process serves one server, and only its stop signal starts draining (servers
//! that tests start in process never do).

use std::sync::atomic::{AtomicBool, Ordering};

static DRAINING: AtomicBool = AtomicBool::new(false);

/// From now on, this process drains.
pub fn begin() {
    DRAINING.store(true, Ordering::Relaxed);
}

/// Whether this process is draining.
#[must_use]
pub fn draining() -> bool {
    DRAINING.load(Ordering::Relaxed)
}
