//! Group commit: concurrent requests' charges share one transaction.
//!
//! Leader/follower without a timer: the first request to find no batch running starts a drain
//! task (the leader) and every request waits for its own answer. The drain task takes what has
//! queued (up to [`BATCH_CAP`] charges), applies it, answers, and repeats until the queue is
//! empty. So a lone request is applied at once, and under load a batch forms exactly while the
//! previous one commits. The drain runs in its own task so that a client that disconnects (its
//! request future dropped) cannot strand the requests batched with it.
//!
//! A failed batch answers none of its requests as charged. When the failure is `Internal` (a
//! statement broke a constraint: the transaction rolled back, so nothing was applied) and the
//! batch held several requests, each request is retried alone, once, so one bad charge fails
//! only its own request. An `Unavailable` failure is answered to every request as it is: the
//! store is down (or the connection was lost, possibly during COMMIT, when a retry could apply
//! a charge twice), and the client retries after `Retry-After`.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use keys_domain::ports::StoreError;
use tokio::sync::oneshot;

/// Most charges in one transaction: enough to amortise the commit (a few hundred rows), few
/// enough that one transaction stays short and its row locks are held briefly.
pub(crate) const BATCH_CAP: usize = 256;

type Reply<O> = oneshot::Sender<Result<Vec<O>, StoreError>>;

struct Request<C, O> {
    items: Vec<C>,
    reply: Reply<O>,
}

struct Queue<C, O> {
    waiting: Vec<Request<C, O>>,
    /// Whether a drain task is running; it alone takes from `waiting`.
    draining: bool,
}

/// The queue of one ledger, and how big its batches were.
pub(crate) struct GroupCommit<C, O> {
    queue: Mutex<Queue<C, O>>,
    cap: usize,
    sizes: BatchSizes,
}

impl<C, O> GroupCommit<C, O> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                draining: false,
            }),
            cap: cap.max(1),
            sizes: BatchSizes::default(),
        }
    }

    /// Queues a request; its answer, and whether the caller must start the drain task.
    pub(crate) fn enqueue(
        &self,
        items: Vec<C>,
    ) -> (oneshot::Receiver<Result<Vec<O>, StoreError>>, bool) {
        let (reply, answer) = oneshot::channel();
        let mut queue = self.lock();
        queue.waiting.push(Request { items, reply });
        let lead = !queue.draining;
        queue.draining = true;
        (answer, lead)
    }

    /// The distribution of applied batch sizes so far.
    pub(crate) fn sizes(&self) -> &BatchSizes {
        &self.sizes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<C, O>> {
        // A poisoned queue is still a valid queue: every operation on it is a push or a drain.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next batch: whole requests, at least one, up to `cap` items; empty (and the drain
    /// ends) when nothing waits.
    fn take(&self) -> Vec<Request<C, O>> {
        let mut queue = self.lock();
        if queue.waiting.is_empty() {
            queue.draining = false;
            return Vec::new();
        }
        let mut items = 0;
        let mut n = 0;
        for request in &queue.waiting {
            if n > 0 && items + request.items.len() > self.cap {
                break;
            }
            items += request.items.len();
            n += 1;
        }
        queue.waiting.drain(..n).collect()
    }

    /// The drain task: applies batches with `run` until the queue is empty.
    pub(crate) async fn drain<F, Fut>(&self, mut run: F)
    where
        C: Clone,
        F: FnMut(Vec<C>) -> Fut,
        Fut: Future<Output = Result<Vec<O>, StoreError>>,
    {
        loop {
            let mut batch = self.take();
            if batch.is_empty() {
                return;
            }
            let lengths: Vec<usize> = batch.iter().map(|r| r.items.len()).collect();
            self.sizes.record(lengths.iter().sum());
            if batch.len() <= 1 {
                let Some(request) = batch.pop() else { return };
                let outcome = run(request.items).await;
                answer(vec![request.reply], &lengths, outcome);
                continue;
            }
            // Cloned so that each request can be retried alone if the batch fails.
            let flat = batch.iter().flat_map(|r| r.items.iter().cloned()).collect();
            match run(flat).await {
                Err(StoreError::Internal(why)) => {
                    tracing::warn!(
                        requests = batch.len(),
                        error = %why,
                        "a ledger batch failed and was rolled back; retrying each request alone"
                    );
                    for request in batch {
                        let n = [request.items.len()];
                        let outcome = run(request.items).await;
                        answer(vec![request.reply], &n, outcome);
                    }
                }
                outcome => {
                    let replies = batch.into_iter().map(|r| r.reply).collect();
                    answer(replies, &lengths, outcome);
                }
            }
        }
    }
}

/// Splits a batch's outcomes back into its requests' answers.
fn answer<O>(replies: Vec<Reply<O>>, lengths: &[usize], outcome: Result<Vec<O>, StoreError>) {
    match outcome {
        Ok(outcomes) if outcomes.len() == lengths.iter().sum::<usize>() => {
            let mut rest = outcomes.into_iter();
            for (reply, &n) in replies.into_iter().zip(lengths) {
                // A receiver gone (client disconnected) changes nothing: the charge stands.
                let _ = reply.send(Ok(rest.by_ref().take(n).collect()));
            }
        }
        Ok(_) => {
            for reply in replies {
                let _ = reply.send(Err(StoreError::Internal(
                    "the ledger answered a different number of outcomes".into(),
                )));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// Batch sizes in power-of-two buckets: 1, 2-3, 4-7, … 256+.
#[derive(Default)]
pub(crate) struct BatchSizes {
    buckets: [AtomicU64; 10],
}

impl BatchSizes {
    fn record(&self, size: usize) {
        let bucket = (usize::BITS - size.max(1).leading_zeros() - 1) as usize;
        self.buckets[bucket.min(9)].fetch_add(1, Ordering::Relaxed);
    }

    /// (smallest size of the bucket, batches) for every non-empty bucket.
    pub(crate) fn snapshot(&self) -> Vec<(usize, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (1 << i, b.load(Ordering::Relaxed)))
            .filter(|&(_, n)| n > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Notify;

    use super::*;

    type Ledger = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A ledger that applies a batch all or nothing: item 13 breaks a constraint (`Internal`),
    /// item 99 finds the store down.
    async fn apply(ledger: Ledger, items: Vec<u32>) -> Result<Vec<u32>, StoreError> {
        tokio::task::yield_now().await;
        if items.contains(&13) {
            return Err(StoreError::Internal("constraint".into()));
        }
        if items.contains(&99) {
            return Err(StoreError::Unavailable("down".into()));
        }
        ledger.lock().unwrap().push(items.clone());
        Ok(items.iter().map(|i| i * 10).collect())
    }

    /// Submits each request as a task of its own, as concurrent HTTP requests do.
    async fn submit_all(
        group: &Arc<GroupCommit<u32, u32>>,
        ledger: &Ledger,
        requests: Vec<Vec<u32>>,
    ) -> Vec<Result<Vec<u32>, StoreError>> {
        let mut answers = Vec::new();
        for items in requests {
            let (answer, lead) = group.enqueue(items);
            if lead {
                let (group, ledger) = (group.clone(), ledger.clone());
                tokio::spawn(async move {
                    group.drain(|batch| apply(ledger.clone(), batch)).await;
                });
            }
            answers.push(answer);
        }
        let mut out = Vec::new();
        for answer in answers {
            out.push(answer.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_lone_request_is_applied_at_once_and_answered() {
        let group = Arc::new(GroupCommit::new(BATCH_CAP));
        let ledger = Ledger::default();
        let out = submit_all(&group, &ledger, vec![vec![1, 2]]).await;
        assert_eq!(out, vec![Ok(vec![10, 20])]);
        assert_eq!(*ledger.lock().unwrap(), vec![vec![1, 2]]);
        assert_eq!(group.sizes().snapshot(), vec![(2, 1)]);
    }

    /// Starts a drain whose first batch is held until `release`; returns once that batch has
    /// been taken (so requests queued from now on wait for the next one).
    async fn held_drain(group: &Arc<GroupCommit<u32, u32>>, ledger: &Ledger) -> Arc<Notify> {
        let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (g, l, s, r) = (
            group.clone(),
            ledger.clone(),
            started.clone(),
            release.clone(),
        );
        tokio::spawn(async move {
            let mut held = true;
            g.drain(|batch| {
                let (l, s, r) = (l.clone(), s.clone(), r.clone());
                let hold = std::mem::replace(&mut held, false);
                async move {
                    if hold {
                        s.notify_one();
                        r.notified().await;
                    }
                    apply(l, batch).await
                }
            })
            .await;
        });
        started.notified().await;
        release
    }

    #[tokio::test]
    async fn requests_that_arrive_during_a_commit_form_the_next_batch_up_to_the_cap() {
        let group = Arc::new(GroupCommit::<u32, u32>::new(4));
        let ledger = Ledger::default();
        // The first request's commit is held until six more have queued.
        let (first, lead) = group.enqueue(vec![0]);
        assert!(lead);
        let release = held_drain(&group, &ledger).await;
        let mut rest = Vec::new();
        for i in 1..=6 {
            let (answer, lead) = group.enqueue(vec![i]);
            assert!(!lead, "a drain task is already running");
            rest.push(answer);
        }
        release.notify_one();
        assert_eq!(first.await.unwrap(), Ok(vec![0]));
        for (i, answer) in (1..=6).zip(rest) {
            assert_eq!(answer.await.unwrap(), Ok(vec![i * 10]));
        }
        assert_eq!(
            *ledger.lock().unwrap(),
            vec![vec![0], vec![1, 2, 3, 4], vec![5, 6]],
            "the queued requests were batched in arrival order, at most 4 at a time"
        );
    }

    #[tokio::test]
    async fn a_failed_batch_is_retried_request_by_request_and_nothing_twice() {
        let group = Arc::new(GroupCommit::<u32, u32>::new(BATCH_CAP));
        let ledger = Ledger::default();
        // Hold a first batch so that the next three requests share one.
        let (first, _) = group.enqueue(vec![0]);
        let release = held_drain(&group, &ledger).await;
        let answers: Vec<_> = [vec![1], vec![13, 2], vec![3]]
            .into_iter()
            .map(|items| group.enqueue(items).0)
            .collect();
        release.notify_one();
        first.await.unwrap().unwrap();
        let mut out = Vec::new();
        for answer in answers {
            out.push(answer.await.unwrap());
        }
        assert_eq!(out[0], Ok(vec![10]));
        assert!(matches!(out[1], Err(StoreError::Internal(_))), "{out:?}");
        assert_eq!(out[2], Ok(vec![30]));
        // The failed batch applied nothing; each good request was applied exactly once.
        assert_eq!(*ledger.lock().unwrap(), vec![vec![0], vec![1], vec![3]]);
    }

    #[tokio::test]
    async fn an_unavailable_store_fails_the_whole_batch_without_a_retry() {
        let group = Arc::new(GroupCommit::<u32, u32>::new(BATCH_CAP));
        let ledger = Ledger::default();
        let out = submit_all(&group, &ledger, vec![vec![99]]).await;
        assert_eq!(out, vec![Err(StoreError::Unavailable("down".into()))]);
        assert!(ledger.lock().unwrap().is_empty());
    }

    #[test]
    fn batch_sizes_fall_into_power_of_two_buckets() {
        let sizes = BatchSizes::default();
        for n in [1, 2, 3, 4, 7, 8, 300] {
            sizes.record(n);
        }
        assert_eq!(
            sizes.snapshot(),
            vec![(1, 1), (2, 2), (4, 2), (8, 1), (256, 1)]
        );
    }
}
