//! [`LedgerWriter`] on the store: concurrent callers' charges are group-committed (see
//! [`crate::group_commit`]), in one lane per set of users (see [`crate::ledger_lanes`]), and
//! each batch is one transaction (see [`crate::ledger_batch`]).

use async_trait::async_trait;
use keys_domain::ports::{Charge, ChargeOutcome, LedgerWriter, StoreError};

use crate::ledger_batch;
use crate::store::DbStore;

#[async_trait]
impl LedgerWriter for DbStore {
    async fn apply(&self, charges: Vec<Charge>) -> Result<Vec<ChargeOutcome>, StoreError> {
        // A request's charges are its one user's; its lane is that user's.
        let Some(user) = charges.first().map(|c| c.user_id.clone()) else {
            return Ok(Vec::new());
        };
        let (answer, lead) = self.ledger_lanes().lane_for(&user).enqueue(charges);
        if lead {
            let store = self.clone();
            tokio::spawn(async move {
                store
                    .ledger_lanes()
                    .lane_for(&user)
                    .drain(|batch| store.apply_batch(batch))
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
    /// request of the batch is answered.
    async fn apply_batch(&self, batch: Vec<Charge>) -> Result<Vec<ChargeOutcome>, StoreError> {
        let applied = self
            .run_ledger(move |conn| ledger_batch::apply(conn, &batch))
            .await?;
        self.balance_cache().committed(&applied.balances);
        Ok(applied.outcomes)
    }

    /// How many ledger batches of each size (power-of-two buckets: (smallest size, count))
    /// this store has applied: how well requests were grouped.
    #[must_use]
    pub fn ledger_batch_sizes(&self) -> Vec<(usize, u64)> {
        self.ledger_lanes().sizes()
    }
}
