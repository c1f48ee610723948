//! [`ConnectGate`]: knows which threads are opening a database connection right now, and can
//! stop new ones, so a process never exits while one of r2d2's worker threads is inside libpq.
//!
//! Why: libpq negotiates TLS through OpenSSL, and OpenSSL's `atexit` handlers tear its state
//! down when the process exits. A pool worker still opening a connection at that moment touches
//! freed state and the process dies with SIGSEGV after its work was done (diesel-rs/diesel#3441).
//! Closing the gate and waiting for the connects in flight removes that window.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct ConnectGate {
    state: Mutex<GateState>,
    idle: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    in_flight: usize,
}

/// Held while one connection is being opened; dropping it lets [`ConnectGate::close`] go on.
#[derive(Debug)]
pub struct ConnectPass<'a> {
    gate: &'a ConnectGate,
}

impl ConnectGate {
    /// A pass to open one connection, or `None` once the gate is closed.
    pub fn enter(&self) -> Option<ConnectPass<'_>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.closed {
            return None;
        }
        state.in_flight += 1;
        Some(ConnectPass { gate: self })
    }

    /// Refuses every later connect and waits, at most `limit`, for those in flight to end.
    /// Whether they all ended.
    pub fn close(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.closed = true;
        while state.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .idle
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Drop for ConnectPass<'_> {
    fn drop(&mut self) {
        let mut state = self
            .gate
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.in_flight -= 1;
        if state.in_flight == 0 {
            self.gate.idle.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn close_waits_for_the_connects_in_flight_and_refuses_new_ones() {
        let gate = Arc::new(ConnectGate::default());
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let worker = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let pass = gate.enter().unwrap();
                entered_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(150));
                let released_at = Instant::now();
                drop(pass);
                released_at
            })
        };
        entered_rx.recv().unwrap();
        assert!(gate.close(Duration::from_secs(5)));
        let closed_at = Instant::now();
        let released_at = worker.join().unwrap();
        assert!(released_at <= closed_at, "close returned before the pass");
        assert!(gate.enter().is_none());
    }

    #[test]
    fn close_gives_up_after_its_limit() {
        let gate = ConnectGate::default();
        let _pass = gate.enter().unwrap();
        assert!(!gate.close(Duration::from_millis(20)));
    }
}
