//! A consistent copy of the embedded store, taken while it serves: `VACUUM INTO`, which reads
//! the database in one read transaction (writers go on meanwhile, in WAL mode) and writes a new,
//! compacted database file. Through SQLite, like everything on the database's files
//! (docs/storage.md, "Nothing but SQLite closes a descriptor of the files"); the copy gets the
//! store's mode (0600). On PostgreSQL, `pg_dump` or WAL archiving do this job.

use std::path::Path;

use diesel::RunQueryDsl as _;
use keys_domain::ports::StoreError;

use crate::connection::AnyConnection;
use crate::failure::Failure;
use crate::store::DbStore;

impl DbStore {
    /// Writes a consistent copy of the SQLite database to `to`, a file that must not exist.
    ///
    /// # Errors
    /// The store is PostgreSQL; `to` exists or cannot be written; the database cannot be read.
    pub async fn backup_into(&self, to: &Path) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.backend_name() == "sqlite",
            "backup copies the embedded SQLite store; back PostgreSQL up with pg_dump or WAL archiving"
        );
        anyhow::ensure!(
            !to.exists(),
            "{} exists: a backup is written to a new file",
            to.display()
        );
        let target = to
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("{} is not a UTF-8 path", to.display()))?
            .to_owned();
        self.run(move |conn| {
            let AnyConnection::Sqlite(lite) = conn else {
                return Err(Failure::from(StoreError::Internal(
                    "not a SQLite connection".into(),
                )));
            };
            diesel::sql_query("VACUUM INTO ?")
                .bind::<diesel::sql_types::Text, _>(&target)
                .execute(lite)?;
            Ok(())
        })
        .await
        .map_err(|e: StoreError| anyhow::anyhow!("the backup to {} failed: {e}", to.display()))
    }
}
