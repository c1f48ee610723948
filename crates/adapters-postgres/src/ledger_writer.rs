//! [`LedgerWriter`] on the store: concurrent callers' charges are group-committed (see
//! [`crate::group_commit`]), in one lane per set of users (see [`crate::ledger_lanes`]), and
//! each batch is one transaction (see [`crate::ledger_batch`]).

use std::sync::Mutex;

use async_trait::async_trait;
use keys_domain::UserId;
use keys_domain::ports::{Charge, ChargeOutcome, LedgerWriter, StoreError};

use crate::group_commit::{BatchSizeCounts, LINGER};
use crate::last_seen::LastSeen;
use crate::ledger_batch;
use crate::store::DbStore;

#[async_trait]
impl LedgerWriter for DbStore {
    async fn apply(&self, charges: Vec<Charge>) -> Result<Vec<ChargeOutcome>, StoreError> {
        // A request's charges are its one user's; its lane is that user's.
        let Some(user) = charges.first().map(|c| c.user_id.clone()) else {
            return Ok(Vec::new());
        };
        let (answer, lead) = self.ledger_lanes().lane_for(&user).queue.enqueue(charges);
        if lead {
            self.start_drainer(user);
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Internal("the ledger task stopped".into())))
    }
}

impl DbStore {
    /// Starts the drainer of `user`'s lane on a thread of its own (see [`crate::group_commit`]):
    /// it blocks on the database, and ends once its lane has been idle for a while.
    fn start_drainer(&self, user: UserId) {
        let store = self.clone();
        let drain = move || {
            let lane = store.ledger_lanes().lane_for(&user);
            lane.queue
                .drain(LINGER, |batch| store.apply_batch(&batch, &lane.seen));
        };
        let spawned = std::thread::Builder::new()
            .name("ledger".into())
            .spawn(drain.clone());
        if let Err(e) = spawned {
            // Out of threads: the runtime's blocking pool still drains the lane.
            tracing::warn!(error = %e, "no thread for the ledger; using the blocking pool");
            drop(tokio::task::spawn_blocking(drain));
        }
    }

    /// One batch, one transaction; the committed balances go to the balance cache before any
    /// request of the batch is answered. `seen` is the lane's memory.
    fn apply_batch(
        &self,
        batch: &[Charge],
        seen: &Mutex<LastSeen>,
    ) -> Result<Vec<ChargeOutcome>, StoreError> {
        let applied = self.run_ledger_here(|conn| {
            // A poisoned memory is forgotten: it is only ever a guess.
            let mut seen = seen.lock().unwrap_or_else(|poisoned| {
                let mut guard = poisoned.into_inner();
                *guard = LastSeen::default();
                guard
            });
            ledger_batch::apply(conn, batch, &mut seen)
        });
        let trust = self.ledger_lanes().trust();
        let applied = applied
            .inspect(|_| trust.succeeded())
            .inspect_err(|_| trust.failed())?;
        self.ledger_lanes().written(applied.confirmed);
        self.balance_cache().committed(&applied.balances);
        Ok(applied.outcomes)
    }

    /// Committed ledger batches so far: (written as planned from a lane's memory, in one round
    /// trip; written the locked way). Only PostgreSQL's batches can be the first kind.
    #[must_use]
    pub fn ledger_batch_ways(&self) -> (u64, u64) {
        self.ledger_lanes().ways()
    }

    /// How many ledger batches of each size this store has applied.
    #[must_use]
    pub fn ledger_batch_sizes(&self) -> BatchSizeCounts {
        self.ledger_lanes().sizes()
    }
}
