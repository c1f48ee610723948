//! Sign-in link requests, worked through after their 202 (so the answer's timing says nothing
//! about whether the address has an account) and never dropped once accepted: a request enters
//! a bounded queue before it is answered, and this loop takes them in order, at most
//! `in_flight` lookups at a time, waiting for a free one rather than dropping. A request that
//! finds the queue full waits at `submit` for a place, as long as its caller allows.

use std::sync::Arc;

use keys_domain::Email;
use keys_domain::ports::StoreError;
use keys_domain::use_cases::{LinkRequestOutcome, SignIn};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

/// What became of one request; the caller counts and logs it.
pub type LinkOutcomeObserver = Arc<dyn Fn(&Result<LinkRequestOutcome, StoreError>) + Send + Sync>;

/// The queue's sending side.
#[derive(Clone)]
pub struct SignInLinkRequests {
    tx: mpsc::Sender<Email>,
}

/// The queue's loop has ended: nothing was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

impl SignInLinkRequests {
    /// Queues a link request for `email`, waiting for a place while the queue is full (the
    /// caller bounds the wait).
    ///
    /// # Errors
    /// [`QueueFull`] when the loop has ended.
    pub async fn submit(&self, email: Email) -> Result<(), QueueFull> {
        self.tx.send(email).await.map_err(|_| QueueFull)
    }
}

/// Starts the loop (on the current tokio runtime): `capacity` requests may wait, `in_flight`
/// are looked up at once, and `observe` hears each outcome. The loop ends once every
/// [`SignInLinkRequests`] is dropped and the queue is empty.
#[must_use]
pub fn spawn_sign_in_link_worker(
    sign_in: SignIn,
    capacity: usize,
    in_flight: usize,
    observe: LinkOutcomeObserver,
) -> (SignInLinkRequests, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Email>(capacity.max(1));
    let task = tokio::spawn(async move {
        let lookups = Arc::new(Semaphore::new(in_flight.max(1)));
        while let Some(email) = rx.recv().await {
            let Ok(permit) = lookups.clone().acquire_owned().await else {
                break;
            };
            let (sign_in, observe) = (sign_in.clone(), observe.clone());
            tokio::spawn(async move {
                let _permit = permit;
                observe(&sign_in.request_link(&email).await);
            });
        }
    });
    (SignInLinkRequests { tx }, task)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use keys_domain::ports::{MockAccountStore, MockSignInLinkStore, SystemClock};
    use keys_domain::random::OsRandom;

    use super::*;

    fn sign_in(accounts: MockAccountStore) -> SignIn {
        SignIn {
            accounts: Arc::new(accounts),
            links: Arc::new(MockSignInLinkStore::new()),
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
            public_url: "https://dash.example".to_owned(),
        }
    }

    #[tokio::test]
    async fn every_accepted_request_is_looked_up_even_past_the_lookups_in_flight() {
        let mut accounts = MockAccountStore::new();
        accounts.expect_find_user().returning(|_| Ok(None));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let observe: LinkOutcomeObserver = {
            let seen = seen.clone();
            Arc::new(move |o| seen.lock().unwrap().push(o.clone()))
        };
        let (requests, _task) = spawn_sign_in_link_worker(sign_in(accounts), 100, 2, observe);
        for i in 0..50 {
            let email = Email::parse(&format!("u{i}@example.com")).unwrap();
            requests.submit(email).await.unwrap();
        }
        for _ in 0..200 {
            if seen.lock().unwrap().len() == 50 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 50, "none dropped");
        assert!(
            seen.iter()
                .all(|o| *o == Ok(LinkRequestOutcome::UnknownAddress))
        );
    }

    /// A queue whose loop has ended refuses at once.
    #[tokio::test]
    async fn a_queue_whose_loop_ended_refuses_at_submit() {
        let (requests, task) =
            spawn_sign_in_link_worker(sign_in(MockAccountStore::new()), 1, 1, Arc::new(|_| {}));
        // The loop is stopped, so nothing leaves the queue.
        task.abort();
        let _ = task.await;
        let email = || Email::parse("a@example.com").unwrap();
        assert_eq!(requests.submit(email()).await, Err(QueueFull));
    }
}
