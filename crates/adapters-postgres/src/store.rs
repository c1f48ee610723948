//! [`DbStore`]: the pool, and the one way port methods reach the database.

use std::sync::Arc;
use std::time::Duration;

use keys_domain::ports::StoreError;
use r2d2::Pool;

use crate::connection::{AnyConnection, Manager, SqliteSetup, Target};
use crate::failure::{Failure, FromStoreError};
use crate::migrations;

/// How long a request waits for a pooled connection. Short, so a database outage becomes a fast
/// 503 rather than a hung request.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);
/// PostgreSQL connections per instance.
const POSTGRES_POOL_SIZE: u32 = 16;
/// SQLite connections: many readers in WAL mode; writers take turns on the file lock.
const SQLITE_POOL_SIZE: u32 = 8;

/// The store behind every persistence port, on PostgreSQL or SQLite. Cheap to clone.
#[derive(Clone)]
pub struct DbStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<Manager>,
    backend: &'static str,
}

impl std::fmt::Debug for DbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may carry a password.
        f.debug_struct("DbStore")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

impl DbStore {
    /// `postgres://…` / `postgresql://…` → PostgreSQL; `sqlite://PATH` or `sqlite:PATH` → an
    /// embedded SQLite file (created if missing). Builds the pool lazily: an unreachable
    /// database is not an error here but `StoreError::Unavailable` from each call. Does not
    /// migrate (see [`DbStore::run_migrations`]).
    ///
    /// # Errors
    /// An unsupported URL.
    pub fn connect(database_url: &str) -> anyhow::Result<DbStore> {
        let target = Target::parse(database_url)?;
        let backend = target.backend_name();
        let builder = Pool::builder()
            .connection_timeout(CHECKOUT_TIMEOUT)
            .min_idle(Some(1));
        let pool = match target {
            Target::Postgres(_) => builder
                .max_size(POSTGRES_POOL_SIZE)
                .build_unchecked(Manager::new(target)),
            Target::Sqlite(_) => builder
                .max_size(SQLITE_POOL_SIZE)
                .connection_customizer(Box::new(SqliteSetup))
                .build_unchecked(Manager::new(target)),
        };
        Ok(DbStore {
            inner: Arc::new(Inner { pool, backend }),
        })
    }

    /// Applies pending embedded migrations; how many were applied. Blocking: call it before
    /// serving or from `spawn_blocking`.
    ///
    /// # Errors
    /// The database is unreachable or a migration failed.
    pub fn run_migrations(&self) -> anyhow::Result<usize> {
        let mut conn = self.inner.pool.get().map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to the {} database: {e}",
                self.backend_name()
            )
        })?;
        migrations::run_pending(&mut conn)
    }

    /// "postgres" or "sqlite".
    #[must_use]
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend
    }

    /// Runs `work` with a pooled connection on the blocking thread pool. `work` holds the whole
    /// transaction, so nothing blocking leaks into the async caller.
    pub(crate) async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Failure<E>> + Send + 'static,
        T: Send + 'static,
        E: FromStoreError + Send + 'static,
    {
        let pool = self.inner.pool.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| {
                tracing::warn!(error = %e, "no database connection");
                Failure::Store(StoreError::Unavailable(format!(
                    "no database connection: {e}"
                )))
            })?;
            work(&mut conn)
        })
        .await;
        match joined {
            Ok(result) => result.map_err(Failure::into_port_error),
            Err(e) => Err(E::from_store_error(StoreError::Internal(format!(
                "store task failed: {e}"
            )))),
        }
    }
}
