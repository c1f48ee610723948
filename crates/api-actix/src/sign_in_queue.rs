//! Sign-in link requests, handled after their 202 (so the answer's timing says nothing about
//! whether the address has an account) and never dropped once answered 202: a request enters a
//! bounded queue before it is answered, and a task works through the queue, at most
//! [`LOOKUPS_IN_FLIGHT`] lookups at a time. Only a full queue refuses, with 503 and
//! `Retry-After`, which the client sees; each client address is limited upstream
//! (`sign_in_link_limit.rs`), so one client cannot fill it.
//!
//! Logging: a link queued is one line (a real user asked, and the per-address limits bound it);
//! every other outcome is a metric (`jt_sign_in_link_requests_total{outcome}`) and at most one
//! line per 10 s with the count, since a flood makes one per request.

use std::sync::Arc;
use std::time::Instant;

use keys_domain::Email;
use keys_domain::use_cases::{LinkRequestOutcome, SignIn};
use tokio::sync::{Semaphore, mpsc};

use crate::error::ApiError;
use crate::log_throttle::{LOG_EVERY, LogThrottle};
use crate::prometheus::SIGN_IN_LINK_REQUESTS;

/// Requests waiting for a lookup: about a minute of the default per-address limit from 8,000
/// addresses, a few kilobytes each at most.
pub const QUEUE_CAPACITY: usize = 4_096;
/// Lookups (a user read and, for a known address, a link write) at once.
pub const LOOKUPS_IN_FLIGHT: usize = 16;

/// The sending side, held by the HTTP handlers.
pub struct SignInQueue {
    tx: mpsc::Sender<Email>,
    full: Arc<LogThrottle>,
}

impl SignInQueue {
    /// Starts the task that works through the queue (on the current tokio runtime); it ends
    /// once every `SignInQueue` is dropped and the queue is empty.
    #[must_use]
    pub fn start(sign_in: SignIn) -> Self {
        let (tx, mut rx) = mpsc::channel::<Email>(QUEUE_CAPACITY);
        tokio::spawn(async move {
            let lookups = Arc::new(Semaphore::new(LOOKUPS_IN_FLIGHT));
            let refusals = Arc::new(Refusals::default());
            while let Some(email) = rx.recv().await {
                // Waits for a free lookup: the queue, not a drop, absorbs a burst.
                let Ok(permit) = lookups.clone().acquire_owned().await else {
                    break;
                };
                let (sign_in, refusals) = (sign_in.clone(), refusals.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let outcome = sign_in.request_link(&email).await;
                    refusals.record(&outcome);
                });
            }
        });
        Self {
            tx,
            full: Arc::new(LogThrottle::new(LOG_EVERY)),
        }
    }

    /// Queues a link request for `email`.
    ///
    /// # Errors
    /// `Overloaded` (503, `Retry-After`) when the queue is full or its task ended.
    pub fn submit(&self, email: Email) -> Result<(), ApiError> {
        self.tx.try_send(email).map_err(|_| {
            metrics::counter!(SIGN_IN_LINK_REQUESTS, "outcome" => "queue_full").increment(1);
            if let Some(n) = self.full.event(Instant::now()) {
                tracing::warn!(
                    refused = n,
                    "sign-in link requests refused with 503: the queue is full"
                );
            }
            ApiError::Overloaded("too many sign-in link requests are waiting; retry shortly")
        })
    }
}

/// The throttled lines of the outcomes a flood repeats.
#[derive(Debug)]
struct Refusals {
    unknown: LogThrottle,
    too_many: LogThrottle,
    unavailable: LogThrottle,
}

impl Default for Refusals {
    fn default() -> Self {
        Self {
            unknown: LogThrottle::new(LOG_EVERY),
            too_many: LogThrottle::new(LOG_EVERY),
            unavailable: LogThrottle::new(LOG_EVERY),
        }
    }
}

impl Refusals {
    fn record(&self, outcome: &Result<LinkRequestOutcome, keys_domain::ports::StoreError>) {
        let now = Instant::now();
        let label = match outcome {
            Ok(LinkRequestOutcome::Queued) => {
                tracing::info!("sign-in link queued");
                "queued"
            }
            Ok(LinkRequestOutcome::UnknownAddress) => {
                if let Some(n) = self.unknown.event(now) {
                    tracing::info!(
                        requests = n,
                        "sign-in links asked for addresses without an account"
                    );
                }
                "unknown_address"
            }
            Ok(LinkRequestOutcome::TooMany) => {
                if let Some(n) = self.too_many.event(now) {
                    tracing::warn!(
                        requests = n,
                        "sign-in links refused: the address had 5 links in the last hour"
                    );
                }
                "too_many"
            }
            Err(e) => {
                if let Some(n) = self.unavailable.event(now) {
                    tracing::warn!(error = %e, requests = n, "sign-in links not sent: store unavailable");
                }
                "store_unavailable"
            }
        };
        metrics::counter!(SIGN_IN_LINK_REQUESTS, "outcome" => label).increment(1);
    }
}
