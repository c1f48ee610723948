//! The HTTP side of the sign-in link queue (`workers::spawn_sign_in_link_worker` works through
//! it): a request that finds the queue full waits for a place (the contract's "sent late, never
//! dropped"), and only one that still has none after [`QUEUE_WAIT`] is a 503 with
//! `Retry-After`, never a 202 that is then dropped; and what
//! becomes of the requests is counted (`jt_sign_in_link_requests_total{outcome}`) and logged:
//! a link queued is one line (a real user asked, and the per-address limits bound it), every
//! other outcome at most one line per 10 s with the count, since a flood makes one per request.

use std::sync::Arc;
use std::time::Instant;

use keys_domain::Email;
use keys_domain::ports::StoreError;
use keys_domain::use_cases::LinkRequestOutcome;
use workers::{LinkOutcomeObserver, SignInLinkRequests};

use crate::error::ApiError;
use crate::log_throttle::{LOG_EVERY, LogThrottle};
use crate::metric_names::SIGN_IN_LINK_REQUESTS;

/// Requests waiting for a lookup: about a minute of the default per-address limit from 8,000
/// addresses, a few kilobytes each at most.
pub const QUEUE_CAPACITY: usize = 4_096;
/// Lookups (a user read and, for a known address, a link write) at once.
pub const LOOKUPS_IN_FLIGHT: usize = 16;
/// Longest a request waits for a place in a full queue: the body deadline's length.
pub const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the handler puts a request.
pub struct SignInQueue {
    requests: SignInLinkRequests,
    full: LogThrottle,
}

impl SignInQueue {
    #[must_use]
    pub fn new(requests: SignInLinkRequests) -> Self {
        Self {
            requests,
            full: LogThrottle::new(LOG_EVERY),
        }
    }

    /// Queues a link request for `email`, waiting up to [`QUEUE_WAIT`] for a place.
    ///
    /// # Errors
    /// `Overloaded` (503, `Retry-After`) when the queue stayed full.
    pub async fn submit(&self, email: Email) -> Result<(), ApiError> {
        let queued = tokio::time::timeout(QUEUE_WAIT, self.requests.submit(email)).await;
        queued.ok().and_then(Result::ok).ok_or_else(|| {
            metrics::counter!(SIGN_IN_LINK_REQUESTS, "outcome" => "queue_full").increment(1);
            if let Some(n) = self.full.event(Instant::now()) {
                tracing::warn!(
                    refused = n,
                    "sign-in link requests refused with 503: the queue stayed full for 10 s"
                );
            }
            ApiError::Overloaded("too many sign-in link requests are waiting; retry shortly")
        })
    }
}

/// What the worker tells of each request: counted, and logged as said above.
#[must_use]
pub fn outcome_observer() -> LinkOutcomeObserver {
    let refusals = Refusals::default();
    Arc::new(move |outcome| refusals.record(outcome))
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
    fn record(&self, outcome: &Result<LinkRequestOutcome, StoreError>) {
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
