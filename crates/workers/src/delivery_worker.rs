//! The background task that drains the alert outbox.

use std::time::Duration;

use keys_domain::use_cases::AlertDelivery;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Emails claimed per round. A full round is followed at once by another, so a backlog drains
/// without waiting for the next tick.
pub const DELIVERY_BATCH: u32 = 20;

/// Longest pause after the outbox store failed; short enough to keep the 10 s delivery promise
/// once the store is back, long enough not to flood the log while it is down.
const MAX_STORE_BACKOFF: Duration = Duration::from_secs(5);

/// Every `poll` (≈1 s) runs [`AlertDelivery::run_once`]. Failed emails are rescheduled by the use
/// case (exponential back-off with jitter), or abandoned after repeated permanent rejections
/// (logged at ERROR); an unavailable outbox is retried with a growing pause and logged once when
/// it becomes unavailable and once when it is back (the database's own outage lines carry the
/// count in between). Stops when `shutdown` is cancelled, after finishing the round in progress
/// (so an email the server accepted is also marked sent).
#[must_use = "the worker stops when its shutdown token is cancelled; await the handle to wait for it"]
pub fn spawn_delivery_worker(
    delivery: AlertDelivery,
    poll: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut pause = Duration::ZERO;
        let mut failing = false;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
            pause = match delivery.run_once(DELIVERY_BATCH).await {
                Ok(report) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("alert outbox available again");
                    }
                    if report.sent > 0 {
                        tracing::info!(sent = report.sent, "alert emails delivered");
                    }
                    if report.failed > 0 {
                        tracing::warn!(
                            failed = report.failed,
                            "alert emails not accepted by the mail server; rescheduled with back-off"
                        );
                    }
                    if report.abandoned > 0 {
                        tracing::error!(
                            abandoned = report.abandoned,
                            "alert emails abandoned after repeated permanent rejections; \
                             the outbox keeps each one with its last error"
                        );
                    }
                    let full =
                        report.sent + report.failed + report.abandoned >= DELIVERY_BATCH as usize;
                    if full { Duration::ZERO } else { poll }
                }
                Err(e) => {
                    let next = (pause * 2).clamp(poll, MAX_STORE_BACKOFF.max(poll));
                    if std::mem::replace(&mut failing, true) {
                        tracing::debug!(error = %e, retry_in_ms = next.as_millis(), "alert outbox still unavailable");
                    } else {
                        tracing::error!(error = %e, "alert outbox unavailable; retrying with back-off until it is back");
                    }
                    next
                }
            };
        }
        tracing::debug!("alert delivery worker stopped");
    })
}
