//! SQLite's WAL checkpoints, taken off the request path.
//!
//! A checkpoint copies the pages the WAL holds back into the database file. Left to SQLite
//! (`wal_autocheckpoint`), it runs inside whichever commit crosses the threshold: the ledger
//! writer's, which every paid request of that batch then waits for (tens of milliseconds at a
//! large threshold, half of a commit's CPU at a small one). Here a task runs a PASSIVE
//! checkpoint on a pool connection at a short interval: it never waits for or blocks the
//! writer or the readers, and copies each hot page once per interval. The connections'
//! `wal_autocheckpoint` (see `ConnectionSetup`) stays as a bound on the WAL's size should this task
//! fall behind.

use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use keys_domain::ports::StoreError;
use tokio::task::JoinHandle;

use crate::connection::AnyConnection;
use crate::store::DbStore;

impl DbStore {
    /// On SQLite, starts the checkpoint task (every `every`); `None` on PostgreSQL, which
    /// checkpoints by itself in its own processes. The task runs until aborted.
    #[must_use]
    pub fn spawn_wal_checkpointer(&self, every: Duration) -> Option<JoinHandle<()>> {
        if self.backend_name() != "sqlite" {
            return None;
        }
        let store = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = store.checkpoint().await {
                    // The next tick tries again; meanwhile SQLite's own threshold applies.
                    tracing::debug!(error = %e, "WAL checkpoint failed");
                }
            }
        }))
    }

    /// One PASSIVE checkpoint: copies what it can without waiting for any lock.
    async fn checkpoint(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            if let AnyConnection::Sqlite(lite) = conn {
                lite.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")?;
            }
            Ok(())
        })
        .await
    }
}
