//! The one place idle per-key state is dropped: the in-process rate limiter and usage window
//! (alone, or as the Redis adapters' fallback), the Redis limiter's leases, and the expired
//! idempotency records of the store. Sweeping on a timer keeps the request path free of the
//! occasional full scan.

use std::sync::Arc;
use std::time::Duration;

use keys_domain::Timestamp;
use keys_domain::ports::Clock;
use keys_domain::use_cases::Idempotency;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One sweep of one adapter's idle state, as of `now`.
pub type Sweep = Arc<dyn Fn(Timestamp) + Send + Sync>;

/// Runs every `sweeps`, then drops the expired records of `idempotency`, every `interval`
/// until `shutdown`.
#[must_use = "the sweeper stops when its shutdown token is cancelled"]
pub fn spawn_sweeper(
    sweeps: Vec<Sweep>,
    idempotency: Option<Idempotency>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        // The first tick fires at once, when there is nothing to sweep yet.
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    let now = clock.now();
                    for sweep in &sweeps {
                        sweep(now);
                    }
                    // A store that is down now is swept on a later tick; records past their
                    // expiry are ignored by claims meanwhile.
                    if let Some(records) = &idempotency {
                        match records.sweep_expired(now).await {
                            Ok(0) => {}
                            Ok(n) => tracing::debug!(n, "expired idempotency records removed"),
                            Err(e) => tracing::warn!(error = %e, "idempotency records not swept"),
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use keys_domain::ports::{MockClock, MockIdempotencyStore, StoreError, SystemClock};
    use keys_domain::random::OsRandom;

    use super::*;

    #[tokio::test]
    async fn sweeps_every_target_each_interval_and_stops_on_shutdown() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let sweep: Sweep = Arc::new(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let token = CancellationToken::new();
        let task = spawn_sweeper(
            vec![sweep.clone(), sweep],
            None,
            Arc::new(SystemClock),
            Duration::from_millis(20),
            token.clone(),
        );
        tokio::time::sleep(Duration::from_millis(110)).await;
        token.cancel();
        task.await.unwrap();
        let n = runs.load(Ordering::SeqCst);
        assert!(n >= 2 && n % 2 == 0, "{n} sweeps");
    }

    #[tokio::test]
    async fn removes_expired_idempotency_records_as_of_each_tick_even_after_a_failure() {
        let mut store = MockIdempotencyStore::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        store
            .expect_sweep_expired()
            .withf(|now| *now == Timestamp::from_millis(42))
            .returning(move |_| {
                // The first tick finds the store down; the next ones still sweep.
                if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(StoreError::Unavailable("down".into()))
                } else {
                    Ok(3)
                }
            });
        let mut clock = MockClock::new();
        clock.expect_now().return_const(Timestamp::from_millis(42));
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let records = Idempotency {
            store: Arc::new(store),
            clock: clock.clone(),
            random: Arc::new(OsRandom),
        };
        let token = CancellationToken::new();
        let task = spawn_sweeper(
            Vec::new(),
            Some(records),
            clock,
            Duration::from_millis(20),
            token.clone(),
        );
        tokio::time::sleep(Duration::from_millis(110)).await;
        token.cancel();
        task.await.unwrap();
        assert!(calls.load(Ordering::SeqCst) >= 2);
    }
}
