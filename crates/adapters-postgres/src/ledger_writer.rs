//! [`LedgerWriter`] on the store: concurrent callers' charges are group-committed (see
//! [`crate::group_commit`]), in one lane per set of users (see [`crate::ledger_lanes`]), and
//! each batch is one transaction (see [`crate::ledger_batch`]).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use keys_domain::ports::{Charge, ChargeOutcome, LedgerWriter, StoreError};

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
            let store = self.clone();
            tokio::spawn(async move {
                let lane = store.ledger_lanes().lane_for(&user);
                lane.queue
                    .drain(|batch| store.apply_batch(batch, lane.seen.clone()))
                    .await;
            });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Internal("the ledger task stopped".into())))
    }
}

impl DbStore {
    /// One batch, one transaction; the committed balances go to the balance cache before any
    /// request of the batch is answered. `seen` is the lane's memory.
    async fn apply_batch(
        &self,
        batch: Vec<Charge>,
        seen: Arc<Mutex<LastSeen>>,
    ) -> Result<Vec<ChargeOutcome>, StoreError> {
        let applied = self
            .run_ledger(move |conn| {
                // A poisoned memory is forgotten: it is only ever a guess.
                let mut seen = seen.lock().unwrap_or_else(|poisoned| {
                    let mut guard = poisoned.into_inner();
                    *guard = LastSeen::default();
                    guard
                });
                ledger_batch::apply(conn, &batch, &mut seen)
            })
            .await?;
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

    /// How many ledger batches of each size (power-of-two buckets: (smallest size, count))
    /// this store has applied: how well requests were grouped.
    #[must_use]
    pub fn ledger_batch_sizes(&self) -> Vec<(usize, u64)> {
        self.ledger_lanes().sizes()
    }
}
