//! The one place idle per-key state is dropped: the in-process rate limiter and usage window
//! (alone, or as the Redis adapters' fallback) and the Redis limiter's leases. Sweeping on a
//! timer keeps the request path free of the occasional full scan.

use std::sync::Arc;
use std::time::Duration;

use keys_domain::Timestamp;
use keys_domain::ports::Clock;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One sweep of one adapter's idle state, as of `now`.
pub type Sweep = Arc<dyn Fn(Timestamp) + Send + Sync>;

/// Runs every `sweeps` every `interval` until `shutdown`.
#[must_use = "the sweeper stops when its shutdown token is cancelled"]
pub fn spawn_sweeper(
    sweeps: Vec<Sweep>,
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
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use keys_domain::ports::SystemClock;

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
}
