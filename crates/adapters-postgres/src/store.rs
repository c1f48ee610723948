//! [`DbStore`]: the pool, and the one way port methods reach the database.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use keys_domain::ports::StoreError;
use r2d2::{CustomizeConnection as _, Pool, PooledConnection};

use crate::balance_cache::BalanceCache;
use crate::connect_gate::ConnectGate;
use crate::connection::{
    AnyConnection, CONNECT_DRAIN_LIMIT, ConnectionSetup, Manager, Target, lost_connection,
};
use crate::database_health::{DatabaseHealth, DbErrorCounts};
use crate::failure::{Failure, FromStoreError};
use crate::ledger_queue::LedgerQueue;
use crate::migrations;
use crate::pool_stats::{PoolState, WaitRecorder};
use crate::template_cache::TemplateCache;

/// How long a request waits for a pooled connection. Short, so a database outage becomes a fast
/// 503 rather than a hung request.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a charge waits for the ledger's connection while the database is known down: long
/// enough to connect to a database that is back, short enough that a charge fails fast.
const OUTAGE_CHECKOUT_TIMEOUT: Duration = Duration::from_millis(200);
/// PostgreSQL connections per instance.
const POSTGRES_POOL_SIZE: u32 = 16;
/// SQLite connections: many readers in WAL mode; writers take turns on the file lock.
const SQLITE_POOL_SIZE: u32 = 8;
/// Connections reserved for the ledger writer: one, for its one batch in flight (see
/// [`crate::ledger_queue`]). Reserved, so a batch never queues behind request reads for a
/// connection, and a burst of reads cannot time out a whole batch (and answer hundreds of
/// requests 503 at once).
const LEDGER_CONNECTIONS: u32 = 1;

/// See [`DbStore::usage_flush_chunk`].
const SQLITE_USAGE_FLUSH_CHUNK: usize = 32;

/// What a store call does, for the connection it gets and whether it queues as a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Read,
    Write,
    Ledger,
}

/// The store behind every persistence port, on PostgreSQL or SQLite. Cheap to clone.
#[derive(Clone)]
pub struct DbStore {
    inner: Arc<Inner>,
}

struct Inner {
    connections: Connections,
    /// The ledger writer's own connections (server pools only).
    ledger_pool: Option<Pool<Manager>>,
    gate: Arc<ConnectGate>,
    backend: &'static str,
    /// The ledger writer's queue: charges waiting for the next batch.
    ledger: LedgerQueue,
    balances: BalanceCache,
    templates: TemplateCache,
    /// Taken around the frequent SQLite writes (ledger batches, usage flushes): SQLite admits
    /// one writer at a time, and a writer that finds the file locked sleeps in its busy handler
    /// (1, 2, 5, 10 ms…) rather than waking when the lock is released. Queued here, the next
    /// writer starts the moment the previous one commits.
    sqlite_writer: Mutex<()>,
    /// What the log says about the database's availability.
    health: DatabaseHealth,
    /// How long checkouts of `connections` and of `ledger_pool` waited.
    waits: WaitRecorder,
    ledger_waits: WaitRecorder,
}

/// Where a port method's connection comes from.
enum Connections {
    /// The server's pool; r2d2's worker threads open its connections.
    Pool(Pool<Manager>),
    /// One-shot commands: each call opens its own connection on the calling blocking thread
    /// and closes it before returning, so no thread is left inside libpq when the process exits.
    Direct { manager: Manager },
}

/// A connection from either source.
enum Checkout {
    Pooled(PooledConnection<Manager>),
    Direct(AnyConnection),
}

impl std::ops::Deref for Checkout {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Direct(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Direct(conn) => conn,
        }
    }
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
    /// migrate (see [`DbStore::run_migrations`]). Call [`DbStore::close`] before the process
    /// exits.
    ///
    /// # Errors
    /// An unsupported URL.
    pub fn connect(database_url: &str) -> anyhow::Result<DbStore> {
        let target = Target::parse(database_url)?;
        let backend = target.backend_name();
        let gate = Arc::new(ConnectGate::default());
        let builder = |setup: ConnectionSetup| {
            let builder = Pool::builder()
                .connection_timeout(CHECKOUT_TIMEOUT)
                // No `SELECT 1` before every checkout: it doubled the round trips of each
                // lookup. A connection that broke is dropped when a query on it fails
                // (`has_broken`), and that query's failure is `Unavailable`, a 503.
                .test_on_check_out(false)
                .min_idle(Some(1))
                .error_handler(Box::new(RetriesAtDebug));
            builder.connection_customizer(Box::new(setup))
        };
        let size = match target {
            Target::Sqlite(_) => SQLITE_POOL_SIZE,
            Target::Postgres(_) => POSTGRES_POOL_SIZE,
        };
        let pool = builder(ConnectionSetup::default())
            .max_size(size)
            .build_unchecked(Manager::new(target.clone(), gate.clone()));
        let ledger = LedgerQueue::new();
        // A kept ledger connection that the database closed is found by a ping and replaced
        // before a charge is sent on it; the ping is skipped while batches keep completing.
        let ledger_pool = builder(ConnectionSetup::ledger())
            .max_size(LEDGER_CONNECTIONS)
            .test_on_check_out(true)
            .build_unchecked(Manager::new(target, gate.clone()).trusting(ledger.trust().clone()));
        Ok(Self::with(
            Connections::Pool(pool),
            Some(ledger_pool),
            ledger,
            gate,
            backend,
        ))
    }

    /// As [`DbStore::connect`], for a command that makes a few calls and exits: no pool and no
    /// background threads; each call opens and closes its own connection.
    ///
    /// # Errors
    /// An unsupported URL.
    pub fn connect_one_shot(database_url: &str) -> anyhow::Result<DbStore> {
        let target = Target::parse(database_url)?;
        let backend = target.backend_name();
        let gate = Arc::new(ConnectGate::default());
        let manager = Manager::new(target, gate.clone());
        Ok(Self::with(
            Connections::Direct { manager },
            None,
            LedgerQueue::new(),
            gate,
            backend,
        ))
    }

    fn with(
        connections: Connections,
        ledger_pool: Option<Pool<Manager>>,
        ledger: LedgerQueue,
        gate: Arc<ConnectGate>,
        backend: &'static str,
    ) -> Self {
        DbStore {
            inner: Arc::new(Inner {
                connections,
                ledger_pool,
                gate,
                backend,
                ledger,
                balances: BalanceCache::default(),
                templates: TemplateCache::default(),
                sqlite_writer: Mutex::new(()),
                health: DatabaseHealth::default(),
                waits: WaitRecorder::default(),
                ledger_waits: WaitRecorder::default(),
            }),
        }
    }

    /// On SQLite, first empties the WAL into the database file (`empty_the_wal`). Then stops
    /// opening connections and waits (a few seconds at most) for the attempts in flight, so the
    /// process can exit without a pool thread inside libpq (see `docs/storage.md`). Later calls
    /// answer `StoreError::Unavailable`.
    pub async fn close(&self) {
        self.empty_the_wal().await;
        let gate = self.inner.gate.clone();
        let drained = tokio::task::spawn_blocking(move || gate.close(CONNECT_DRAIN_LIMIT)).await;
        if !matches!(drained, Ok(true)) {
            tracing::warn!("a database connection attempt was still running at close");
        }
    }

    /// Applies pending embedded migrations; how many were applied. Blocking: call it before
    /// serving or from `spawn_blocking`.
    ///
    /// # Errors
    /// The database is unreachable or a migration failed.
    pub fn run_migrations(&self) -> anyhow::Result<usize> {
        let mut conn = self.inner.checkout().map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to the {} database: {e}",
                self.backend_name()
            )
        })?;
        migrations::run_pending(&mut conn)
    }

    /// The backend's migrations by name, split into applied and pending (nothing is applied).
    ///
    /// # Errors
    /// The database is unreachable or its migration table cannot be read.
    pub fn migration_status(&self) -> anyhow::Result<migrations::MigrationStatus> {
        let mut conn = self.inner.checkout().map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to the {} database: {e}",
                self.backend_name()
            )
        })?;
        migrations::status(&mut conn)
    }

    pub(crate) fn ledger_queue(&self) -> &LedgerQueue {
        &self.inner.ledger
    }

    pub(crate) fn balance_cache(&self) -> &BalanceCache {
        &self.inner.balances
    }

    pub(crate) fn template_cache(&self) -> &TemplateCache {
        &self.inner.templates
    }

    /// "postgres" or "sqlite".
    #[must_use]
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend
    }

    /// The server's pools now (none for a one-shot store): `requests`, then `ledger`. Takes
    /// each pool's lock briefly: for a scrape, not for a request.
    #[must_use]
    pub fn pool_states(&self) -> Vec<PoolState> {
        let state = |name, pool: &Pool<Manager>, waits: &WaitRecorder| {
            let now = pool.state();
            PoolState {
                pool: name,
                idle: now.idle_connections,
                in_use: now.connections.saturating_sub(now.idle_connections),
                max: pool.max_size(),
                waits: waits.snapshot(),
            }
        };
        let mut states = Vec::with_capacity(2);
        if let Connections::Pool(pool) = &self.inner.connections {
            states.push(state("requests", pool, &self.inner.waits));
        }
        if let Some(pool) = &self.inner.ledger_pool {
            states.push(state("ledger", pool, &self.inner.ledger_waits));
        }
        states
    }

    /// Failed calls since the store was opened, by kind.
    #[must_use]
    pub fn error_counts(&self) -> DbErrorCounts {
        self.inner.health.error_counts()
    }

    /// Most keys a usage flush should write per transaction; `None`: all in one. On SQLite
    /// writes take turns, and one transaction for a flush of many busy keys (statements on
    /// random pages) holds the write lock while ledger batches wait: chunks bound that wait.
    /// A key writes about three scattered pages (its row, its hour, its client), so a chunk
    /// of 32 holds the turn for a millisecond or two: each paid request in flight then waits
    /// for at most about that, where larger chunks put the flush's waits in the slowest
    /// hundredth of renders. On PostgreSQL the flush blocks no batch, and chunks would only
    /// cost commits.
    #[must_use]
    pub fn usage_flush_chunk(&self) -> Option<usize> {
        (self.inner.backend == "sqlite").then_some(SQLITE_USAGE_FLUSH_CHUNK)
    }

    /// Runs `work` with a pooled connection on the blocking thread pool. `work` holds the whole
    /// transaction, so nothing blocking leaks into the async caller.
    pub(crate) async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Failure<E>> + Send + 'static,
        T: Send + 'static,
        E: FromStoreError + Send + 'static,
    {
        self.run_with(Role::Read, work).await
    }

    /// As [`DbStore::run`], for a frequent write: on SQLite it waits its turn in process.
    pub(crate) async fn run_write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Failure<E>> + Send + 'static,
        T: Send + 'static,
        E: FromStoreError + Send + 'static,
    {
        self.run_with(Role::Write, work).await
    }

    async fn run_with<T, E, F>(&self, role: Role, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Failure<E>> + Send + 'static,
        T: Send + 'static,
        E: FromStoreError + Send + 'static,
    {
        let inner = self.inner.clone();
        let joined = tokio::task::spawn_blocking(move || inner.run_here(role, work)).await;
        match joined {
            Ok(result) => result.map_err(Failure::into_port_error),
            Err(e) => Err(E::from_store_error(StoreError::Internal(format!(
                "store task failed: {e}"
            )))),
        }
    }

    /// As [`DbStore::run_write`], on the ledger writer's reserved connection and on the calling
    /// thread, which it blocks: for the ledger's own threads (see [`crate::ledger_writer`]).
    pub(crate) fn run_ledger_here<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Failure<E>>,
        E: FromStoreError,
    {
        self.inner
            .run_here(Role::Ledger, work)
            .map_err(Failure::into_port_error)
    }
}

impl Inner {
    /// `work` on a connection for `role`, on this thread (which it blocks).
    fn run_here<T, E, F>(&self, role: Role, work: F) -> Result<T, Failure<E>>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Failure<E>>,
    {
        let result = self.run_on_connection(role, work);
        self.health.observe(&result);
        result
    }

    fn run_on_connection<T, E, F>(&self, role: Role, work: F) -> Result<T, Failure<E>>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Failure<E>>,
    {
        let checkout = match (&self.ledger_pool, role) {
            // In an outage a charge waits at most briefly for a connection, not the full
            // checkout timeout: the ledger's connection is replaced, not reused dead.
            (Some(pool), Role::Ledger) => {
                let timeout = if self.health.is_down() {
                    OUTAGE_CHECKOUT_TIMEOUT
                } else {
                    CHECKOUT_TIMEOUT
                };
                timed_get(pool, &self.ledger_waits, timeout)
            }
            _ => self.checkout(),
        };
        let mut conn = checkout.map_err(|e| {
            Failure::Store(StoreError::Unavailable(format!(
                "no database connection: {e}"
            )))
        })?;
        // A poisoned lock guards nothing but the turn: take it anyway.
        let _turn = (role != Role::Read && matches!(*conn, AnyConnection::Sqlite(_))).then(|| {
            self.sqlite_writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        });
        let result = work(&mut conn);
        if let Err(Failure::Db(e)) = &result
            && lost_connection(e)
        {
            // The server may have restarted: the ledger's kept connections are pinged before
            // their next charge, and a ledger connection found closed is never handed out again
            // (see `Manager::retire`). A request connection stays: during an outage it fails
            // fast, where an emptied pool would make each request wait for a checkout.
            self.ledger.trust().failed();
            if role == Role::Ledger {
                Manager::retire(&mut conn);
            }
        }
        result
    }

    /// A connection for one port call: from the pool, or opened now for a one-shot command.
    fn checkout(&self) -> Result<Checkout, String> {
        match &self.connections {
            Connections::Pool(pool) => timed_get(pool, &self.waits, CHECKOUT_TIMEOUT),
            Connections::Direct { manager } => {
                // As a request pool's connection (the default setup does nothing on PostgreSQL).
                let mut conn = manager.open().map_err(|e| e.to_string())?;
                ConnectionSetup::default()
                    .on_acquire(&mut conn)
                    .map_err(|e| e.to_string())?;
                Ok(Checkout::Direct(conn))
            }
        }
    }
}

/// A pooled connection, the wait for it recorded (a timed-out wait too: that is the one that
/// matters).
fn timed_get(
    pool: &Pool<Manager>,
    waits: &WaitRecorder,
    timeout: Duration,
) -> Result<Checkout, String> {
    let started = Instant::now();
    let got = pool.get_timeout(timeout);
    waits.record(started.elapsed());
    got.map(Checkout::Pooled).map_err(|e| e.to_string())
}

/// r2d2 logs every failed connection attempt of its background fill as an error: a database
/// that is down at start printed six such lines before the one error that matters. Whoever
/// needed the connection reports the failure (a 503, or the start-up error), so the retries are
/// only worth a debug line.
#[derive(Debug)]
struct RetriesAtDebug;

impl<E: std::fmt::Display> r2d2::HandleError<E> for RetriesAtDebug {
    fn handle_error(&self, error: E) {
        tracing::debug!(error = %error, "database connection attempt failed");
    }
}
