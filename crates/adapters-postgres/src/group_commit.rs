//! Group commit: concurrent requests' charges share one transaction.
//!
//! Leader/follower without a timer: the first request to find no drainer running starts one (the
//! leader; in the ledger, a thread of its own) and every request waits for its own answer. The
//! drainer takes what has queued (up to [`BATCH_CAP`] charges), applies it, answers, and takes
//! the next batch at once. So a lone request is applied at once, and under load a batch forms
//! exactly while the previous one commits. When the queue is empty the drainer waits for work
//! for a while ([`LINGER`]) before it ends, so a steady trickle of requests does not start one
//! per request. The drainer is not any request's task, so a client that disconnects (its
//! request future dropped) cannot strand the requests batched with it; and it blocks its own
//! thread rather than an async worker's, so the next batch never waits for a busy HTTP worker
//! to poll it (the batches are the one serial path of the paid requests).
//!
//! A failed batch answers none of its requests as charged. When the failure is `Internal` (a
//! statement broke a constraint: the transaction rolled back, so nothing was applied) and the
//! batch held several requests, each request is retried alone, once, so one bad charge fails
//! only its own request. An `Unavailable` failure is answered to every request as it is: the
//! store is down (or the connection was lost, possibly during COMMIT, when a retry could apply
//! a charge twice), and the client retries after `Retry-After`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use keys_domain::ports::StoreError;
use tokio::sync::oneshot;

/// Most charges in one transaction: enough to amortise the commit (a few hundred rows), few
/// enough that one transaction stays short and its row locks are held briefly.
pub(crate) const BATCH_CAP: usize = 256;

/// How long an idle drainer waits for the next request before it ends.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

type Reply<O> = oneshot::Sender<Result<O, StoreError>>;

struct Request<C, O> {
    item: C,
    reply: Reply<O>,
}

struct Queue<C, O> {
    waiting: Vec<Request<C, O>>,
    /// Whether a drainer is running; it alone takes from `waiting`.
    draining: bool,
    /// Whether the drainer waits for work (on `GroupCommit::work`).
    idle: bool,
}

/// The queue of one ledger, and how big its batches were.
pub(crate) struct GroupCommit<C, O> {
    queue: Mutex<Queue<C, O>>,
    /// Wakes an idle drainer.
    work: Condvar,
    cap: usize,
    sizes: BatchSizes,
}

impl<C, O> GroupCommit<C, O> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                draining: false,
                idle: false,
            }),
            work: Condvar::new(),
            cap: cap.max(1),
            sizes: BatchSizes::default(),
        }
    }

    /// Queues a request; its answer, and whether the caller must start a drainer.
    pub(crate) fn enqueue(&self, item: C) -> (oneshot::Receiver<Result<O, StoreError>>, bool) {
        let (reply, answer) = oneshot::channel();
        let mut queue = self.lock();
        queue.waiting.push(Request { item, reply });
        let lead = !queue.draining;
        queue.draining = true;
        if queue.idle {
            self.work.notify_one();
        }
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

    /// The next batch: the oldest requests, at least one, up to `cap`. When nothing waits, waits
    /// up to `linger` for a request; empty (and the drainer ends) when none came.
    fn take(&self, linger: Duration) -> Vec<Request<C, O>> {
        let mut queue = self.lock();
        let deadline = Instant::now() + linger;
        while queue.waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                queue.draining = false;
                return Vec::new();
            }
            queue.idle = true;
            queue = self
                .work
                .wait_timeout(queue, left)
                .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard);
            queue.idle = false;
        }
        let n = queue.waiting.len().min(self.cap);
        queue.waiting.drain(..n).collect()
    }

    /// The drainer: applies batches with `run`, on the calling thread (which it blocks), until
    /// no request came for `linger`.
    pub(crate) fn drain<F>(&self, linger: Duration, mut run: F)
    where
        C: Clone,
        F: FnMut(Vec<C>) -> Result<Vec<O>, StoreError>,
    {
        loop {
            let mut batch = self.take(linger);
            if batch.is_empty() {
                return;
            }
            self.sizes.record(batch.len());
            if batch.len() <= 1 {
                let Some(request) = batch.pop() else { return };
                answer(vec![request.reply], run(vec![request.item]));
                continue;
            }
            // Cloned so that each request can be retried alone if the batch fails.
            let items = batch.iter().map(|r| r.item.clone()).collect();
            match run(items) {
                Err(StoreError::Internal(why)) => {
                    tracing::warn!(
                        requests = batch.len(),
                        error = %why,
                        "a ledger batch failed and was rolled back; retrying each request alone"
                    );
                    for request in batch {
                        answer(vec![request.reply], run(vec![request.item]));
                    }
                }
                outcome => {
                    let replies = batch.into_iter().map(|r| r.reply).collect();
                    answer(replies, outcome);
                }
            }
        }
    }
}

/// Splits a batch's outcomes back into its requests' answers.
fn answer<O>(replies: Vec<Reply<O>>, outcome: Result<Vec<O>, StoreError>) {
    match outcome {
        Ok(outcomes) if outcomes.len() == replies.len() => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A receiver gone (client disconnected) changes nothing: the charge stands.
                let _ = reply.send(Ok(outcome));
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

/// Power-of-two buckets of batch sizes: 1, 2-3, 4-7, … 256-511, 512 and more.
const BUCKETS: usize = 10;

/// Applied batch sizes, counted as they are applied.
#[derive(Default)]
pub(crate) struct BatchSizes {
    buckets: [AtomicU64; BUCKETS],
    /// Charges in all those batches.
    charges: AtomicU64,
}

impl BatchSizes {
    fn record(&self, size: usize) {
        let bucket = (usize::BITS - size.max(1).leading_zeros() - 1) as usize;
        self.buckets[bucket.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.charges.fetch_add(size as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> BatchSizeCounts {
        BatchSizeCounts {
            batches: self.buckets.each_ref().map(|b| b.load(Ordering::Relaxed)),
            charges: self.charges.load(Ordering::Relaxed),
        }
    }
}

/// How many ledger batches of each size were applied, and the charges they held: how well
/// paid requests were grouped into transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSizeCounts {
    /// Batches per bucket: 1, 2-3, 4-7, … 256-511, 512 and more.
    pub batches: [u64; BUCKETS],
    pub charges: u64,
}

impl BatchSizeCounts {
    /// Each bucket's largest size (`None` for the last, unbounded one) with the batches of at
    /// most that size: a Prometheus histogram's `le` buckets.
    #[must_use]
    pub fn cumulative(&self) -> Vec<(Option<u64>, u64)> {
        let mut total = 0;
        self.batches
            .iter()
            .enumerate()
            .map(|(i, n)| {
                total += n;
                ((i + 1 < BUCKETS).then(|| (2_u64 << i) - 1), total)
            })
            .collect()
    }

    /// Every batch counted.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.batches.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::thread::JoinHandle;

    use super::*;

    type Ledger = Arc<Mutex<Vec<Vec<u32>>>>;
    type Answer = oneshot::Receiver<Result<u32, StoreError>>;

    /// A ledger that applies a batch all or nothing: item 13 breaks a constraint (`Internal`),
    /// item 99 finds the store down.
    fn apply(ledger: &Ledger, items: &[u32]) -> Result<Vec<u32>, StoreError> {
        if items.contains(&13) {
            return Err(StoreError::Internal("constraint".into()));
        }
        if items.contains(&99) {
            return Err(StoreError::Unavailable("down".into()));
        }
        ledger.lock().unwrap().push(items.to_vec());
        Ok(items.iter().map(|i| i * 10).collect())
    }

    /// A drainer on a thread of its own, as the ledger starts one.
    fn drainer(
        group: &Arc<GroupCommit<u32, u32>>,
        ledger: &Ledger,
        linger: Duration,
    ) -> JoinHandle<()> {
        let (group, ledger) = (group.clone(), ledger.clone());
        std::thread::spawn(move || group.drain(linger, |batch| apply(&ledger, &batch)))
    }

    /// Queues each request, starting a drainer when told to, as concurrent HTTP requests do.
    fn submit_all(
        group: &Arc<GroupCommit<u32, u32>>,
        ledger: &Ledger,
        requests: Vec<u32>,
    ) -> Vec<Result<u32, StoreError>> {
        let answers: Vec<Answer> = requests
            .into_iter()
            .map(|item| {
                let (answer, lead) = group.enqueue(item);
                if lead {
                    drainer(group, ledger, Duration::ZERO);
                }
                answer
            })
            .collect();
        answers
            .into_iter()
            .map(|a| a.blocking_recv().unwrap())
            .collect()
    }

    #[test]
    fn a_lone_request_is_applied_at_once_and_answered() {
        let group = Arc::new(GroupCommit::new(BATCH_CAP));
        let ledger = Ledger::default();
        let out = submit_all(&group, &ledger, vec![1]);
        assert_eq!(out, vec![Ok(10)]);
        assert_eq!(*ledger.lock().unwrap(), vec![vec![1]]);
        let sizes = group.sizes().snapshot();
        assert_eq!((sizes.batches[0], sizes.total(), sizes.charges), (1, 1, 1));
    }

    /// Starts a drainer whose first batch is held until the returned sender is used; returns
    /// once that batch has been taken (so requests queued from now on wait for the next one).
    fn held_drain(group: &Arc<GroupCommit<u32, u32>>, ledger: &Ledger) -> mpsc::Sender<()> {
        let (started, taken) = mpsc::channel();
        let (release, held) = mpsc::channel();
        let (group, ledger) = (group.clone(), ledger.clone());
        std::thread::spawn(move || {
            let mut first = true;
            group.drain(Duration::ZERO, |batch| {
                if std::mem::replace(&mut first, false) {
                    started.send(()).unwrap();
                    held.recv().unwrap();
                }
                apply(&ledger, &batch)
            });
        });
        taken.recv().unwrap();
        release
    }

    #[test]
    fn requests_that_arrive_during_a_commit_form_the_next_batch_up_to_the_cap() {
        let group = Arc::new(GroupCommit::<u32, u32>::new(4));
        let ledger = Ledger::default();
        // The first request's commit is held until six more have queued.
        let (first, lead) = group.enqueue(0);
        assert!(lead);
        let release = held_drain(&group, &ledger);
        let mut rest = Vec::new();
        for i in 1..=6 {
            let (answer, lead) = group.enqueue(i);
            assert!(!lead, "a drainer is already running");
            rest.push(answer);
        }
        release.send(()).unwrap();
        assert_eq!(first.blocking_recv().unwrap(), Ok(0));
        for (i, answer) in (1..=6).zip(rest) {
            assert_eq!(answer.blocking_recv().unwrap(), Ok(i * 10));
        }
        assert_eq!(
            *ledger.lock().unwrap(),
            vec![vec![0], vec![1, 2, 3, 4], vec![5, 6]],
            "the queued requests were batched in arrival order, at most 4 at a time"
        );
    }

    #[test]
    fn a_failed_batch_is_retried_request_by_request_and_nothing_twice() {
        let group = Arc::new(GroupCommit::<u32, u32>::new(BATCH_CAP));
        let ledger = Ledger::default();
        // Hold a first batch so that the next three requests share one.
        let (first, _) = group.enqueue(0);
        let release = held_drain(&group, &ledger);
        let answers: Vec<_> = [1, 13, 3]
            .into_iter()
            .map(|item| group.enqueue(item).0)
            .collect();
        release.send(()).unwrap();
        first.blocking_recv().unwrap().unwrap();
        let out: Vec<_> = answers
            .into_iter()
            .map(|a| a.blocking_recv().unwrap())
            .collect();
        assert_eq!(out[0], Ok(10));
        assert!(matches!(out[1], Err(StoreError::Internal(_))), "{out:?}");
        assert_eq!(out[2], Ok(30));
        // The failed batch applied nothing; each good request was applied exactly once.
        assert_eq!(*ledger.lock().unwrap(), vec![vec![0], vec![1], vec![3]]);
    }

    #[test]
    fn an_unavailable_store_fails_the_whole_batch_without_a_retry() {
        let group = Arc::new(GroupCommit::<u32, u32>::new(BATCH_CAP));
        let ledger = Ledger::default();
        let out = submit_all(&group, &ledger, vec![99]);
        assert_eq!(out, vec![Err(StoreError::Unavailable("down".into()))]);
        assert!(ledger.lock().unwrap().is_empty());
    }

    #[test]
    fn an_idle_drainer_takes_the_next_request_and_ends_once_none_came_for_its_linger() {
        let group = Arc::new(GroupCommit::<u32, u32>::new(BATCH_CAP));
        let ledger = Ledger::default();
        let (first, lead) = group.enqueue(1);
        assert!(lead);
        let running = drainer(&group, &ledger, Duration::from_millis(300));
        assert_eq!(first.blocking_recv().unwrap(), Ok(10));
        // The drainer now waits for work: the next request is its, no second drainer needed.
        let (second, lead) = group.enqueue(2);
        assert!(!lead, "the idle drainer takes it");
        assert_eq!(second.blocking_recv().unwrap(), Ok(20));
        // Once its linger passes with nothing queued, it ends, and the next request leads.
        running.join().unwrap();
        let (third, lead) = group.enqueue(3);
        assert!(lead, "no drainer runs any more");
        drainer(&group, &ledger, Duration::ZERO);
        assert_eq!(third.blocking_recv().unwrap(), Ok(30));
        assert_eq!(*ledger.lock().unwrap(), vec![vec![1], vec![2], vec![3]]);
    }

    #[test]
    fn batch_sizes_fall_into_power_of_two_buckets() {
        let sizes = BatchSizes::default();
        for n in [1, 2, 3, 4, 7, 8, 300, 600] {
            sizes.record(n);
        }
        let counts = sizes.snapshot();
        assert_eq!(counts.batches, [1, 2, 2, 1, 0, 0, 0, 0, 1, 1]);
        assert_eq!(counts.charges, 925);
        let cumulative = counts.cumulative();
        assert_eq!(cumulative[0], (Some(1), 1));
        assert_eq!(cumulative[2], (Some(7), 5));
        assert_eq!(cumulative[8], (Some(511), 7));
        assert_eq!(cumulative[9], (None, 8));
    }
}
