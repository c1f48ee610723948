//! [`LedgerWriter`] on the store: concurrent callers' charges are group-committed in the
//! ledger's queue (see [`crate::ledger_queue`] and [`crate::group_commit`]), and each batch is
//! one transaction (see [`crate::ledger_batch`]).

use std::sync::Mutex;

use async_trait::async_trait;
use keys_domain::ports::{Charge, ChargeOutcome, LedgerWriter, StoreError};

use crate::group_commit::{BatchSizeCounts, LINGER};
use crate::last_seen::LastSeen;
use crate::ledger_batch;
use crate::store::DbStore;

#[async_trait]
impl LedgerWriter for DbStore {
    async fn charge(&self, charge: Charge) -> Result<ChargeOutcome, StoreError> {
        let (answer, lead) = self.ledger_queue().queue.enqueue(charge);
        if lead {
            self.start_drainer();
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Internal("the ledger task stopped".into())))
    }
}

impl DbStore {
    /// Starts the queue's drainer on a thread of its own (see [`crate::group_commit`]): it
    /// blocks on the database, and ends once the queue has been idle for a while.
    fn start_drainer(&self) {
        let store = self.clone();
        let drain = move || {
            let ledger = store.ledger_queue();
            ledger
                .queue
                .drain(LINGER, |batch| store.apply_batch(&batch, &ledger.seen));
        };
        let spawned = std::thread::Builder::new()
            .name("ledger".into())
            .spawn(drain.clone());
        if let Err(e) = spawned {
            // Out of threads: the runtime's blocking pool still drains the queue.
            tracing::warn!(error = %e, "no thread for the ledger; using the blocking pool");
            drop(tokio::task::spawn_blocking(drain));
        }
    }

    /// One batch, one transaction; the committed balances go to the balance cache before any
    /// request of the batch is answered. `seen` is the queue's memory.
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
        let trust = self.ledger_queue().trust();
        let applied = applied
            .inspect(|_| trust.succeeded())
            .inspect_err(|_| trust.failed())?;
        self.ledger_queue().written(applied.confirmed);
        self.balance_cache().committed(&applied.balances);
        Ok(applied.outcomes)
    }

    /// Committed ledger batches so far: (written as planned from the ledger's memory, in one round
    /// trip; written the locked way). Only PostgreSQL's batches can be the first kind.
    #[must_use]
    pub fn ledger_batch_ways(&self) -> (u64, u64) {
        self.ledger_queue().ways()
    }

    /// How many ledger batches of each size this store has applied.
    #[must_use]
    pub fn ledger_batch_sizes(&self) -> BatchSizeCounts {
        self.ledger_queue().sizes()
    }
}
