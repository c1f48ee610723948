//! The embedded schema migrations, one directory per backend (`migrations/postgres`,
//! `migrations/sqlite` at the workspace root).

use diesel::connection::SimpleConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::connection::AnyConnection;

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Serialises migrations of instances starting together against one PostgreSQL database.
const PG_MIGRATION_LOCK: &str = "SELECT pg_advisory_lock(7265636174)";
const PG_MIGRATION_UNLOCK: &str = "SELECT pg_advisory_unlock(7265636174)";

/// Applies the pending migrations of the connection's backend; how many ran. Refuses a database
/// that holds migrations this release does not know (a newer release migrated it): serving it
/// with an older schema's queries could write what the newer one no longer means.
pub fn run_pending(conn: &mut AnyConnection) -> anyhow::Result<usize> {
    let unknown = status(conn)?.unknown;
    anyhow::ensure!(
        unknown.is_empty(),
        "the database holds migrations this release does not know (applied by a newer release?): {}; \
         run the release that applied them",
        unknown.join(", ")
    );
    let applied = match conn {
        AnyConnection::Postgres(c) => {
            c.batch_execute(PG_MIGRATION_LOCK)?;
            let applied = c.run_pending_migrations(POSTGRES).map(|v| v.len());
            c.batch_execute(PG_MIGRATION_UNLOCK)?;
            applied
        }
        AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE).map(|v| v.len()),
    };
    applied.map_err(|e| anyhow::anyhow!("migration failed: {e}"))
}

/// The migrations by name (`2025-01-01-000001_users_and_ledger`), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationStatus {
    pub applied: Vec<String>,
    pub pending: Vec<String>,
    /// Versions in the database's migration table that no embedded migration has.
    pub unknown: Vec<String>,
}

/// Which of the backend's embedded migrations are applied; applies nothing. A database never
/// migrated has every migration pending.
pub fn status(conn: &mut AnyConnection) -> anyhow::Result<MigrationStatus> {
    fn split<C: MigrationHarness<B>, B: diesel::backend::Backend>(
        conn: &mut C,
        source: &EmbeddedMigrations,
    ) -> anyhow::Result<MigrationStatus> {
        let all = diesel::migration::MigrationSource::<B>::migrations(source)
            .map_err(|e| anyhow::anyhow!("cannot list the migrations: {e}"))?;
        // One read of the migration table answers all three lists.
        let in_table: Vec<String> = conn
            .applied_migrations()
            .map_err(|e| anyhow::anyhow!("cannot read the migration table: {e}"))?
            .iter()
            .map(ToString::to_string)
            .collect();
        let (mut applied, mut pending) = (Vec::new(), Vec::new());
        for m in &all {
            let list = if in_table.contains(&m.name().version().to_string()) {
                &mut applied
            } else {
                &mut pending
            };
            list.push(m.name().to_string());
        }
        let known: Vec<String> = all.iter().map(|m| m.name().version().to_string()).collect();
        let mut unknown: Vec<String> = in_table
            .into_iter()
            .filter(|version| !known.contains(version))
            .collect();
        unknown.sort();
        Ok(MigrationStatus {
            applied,
            pending,
            unknown,
        })
    }
    match conn {
        AnyConnection::Postgres(c) => split(c, &POSTGRES),
        AnyConnection::Sqlite(c) => split(c, &SQLITE),
    }
}

/// Reverts every applied migration; how many were reverted.
#[cfg(all(test, feature = "testing"))]
fn revert_all(conn: &mut AnyConnection) -> anyhow::Result<usize> {
    match conn {
        AnyConnection::Postgres(c) => c.revert_all_migrations(POSTGRES).map(|v| v.len()),
        AnyConnection::Sqlite(c) => c.revert_all_migrations(SQLITE).map(|v| v.len()),
    }
    .map_err(|e| anyhow::anyhow!("revert failed: {e}"))
}

#[cfg(test)]
#[cfg(feature = "testing")]
mod tests {
    use diesel::r2d2::ManageConnection;

    use super::*;
    use crate::connection::{ConnectionSetup, Manager, Target};

    fn up_down_up(url: &str) {
        let manager = Manager::new(Target::parse(url).unwrap(), Default::default());
        let mut conn = manager.connect().unwrap();
        r2d2::CustomizeConnection::on_acquire(&ConnectionSetup::default(), &mut conn).unwrap();
        let total = std::fs::read_dir(match conn {
            AnyConnection::Postgres(_) => "../../migrations/postgres",
            AnyConnection::Sqlite(_) => "../../migrations/sqlite",
        })
        .unwrap()
        .count();
        assert!(total >= 5);
        assert_eq!(run_pending(&mut conn).unwrap(), total, "all up");
        assert_eq!(run_pending(&mut conn).unwrap(), 0, "nothing pending");
        assert_eq!(revert_all(&mut conn).unwrap(), total, "all down");
        assert_eq!(run_pending(&mut conn).unwrap(), total, "all up again");
        // The seeded catalogue is back after the round trip.
        let seeded: i64 = diesel::RunQueryDsl::get_result(
            diesel::QueryDsl::count(crate::schema::templates::table),
            &mut conn,
        )
        .unwrap();
        assert_eq!(seeded, 2);
    }

    #[test]
    fn every_migration_goes_up_down_and_up_again_on_sqlite() {
        let (_dir, url) = crate::testing::fresh_sqlite_url();
        up_down_up(&url);
    }

    #[test]
    fn every_migration_goes_up_down_and_up_again_on_postgres() {
        let url = crate::testing::fresh_postgres_url();
        up_down_up(&url);
        crate::testing::drop_postgres_database(&url);
    }
}
