//! Connections: the one enum over both backends, the pool's connection manager, and the few
//! per-backend setup steps. Everything that differs between PostgreSQL and SQLite at run time
//! lives in this file.

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, ConnectionError, PgConnection, SqliteConnection};

use crate::connect_gate::ConnectGate;
use crate::connection_trust::ConnectionTrust;

/// A connection to either backend. Query code is written once against this type.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which backend a database URL names, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A libpq connection URL.
    Postgres(String),
    /// A file path.
    Sqlite(String),
}

/// How long a PostgreSQL connection attempt may take, so an unreachable server fails fast.
const PG_CONNECT_TIMEOUT_SECONDS: u32 = 2;
/// How long closing the store waits for connection attempts in flight: one attempt's timeout,
/// and a margin.
pub(crate) const CONNECT_DRAIN_LIMIT: Duration =
    Duration::from_secs(PG_CONNECT_TIMEOUT_SECONDS as u64 + 1);
/// How long a SQLite writer waits for another writer's lock before giving up.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Target {
    /// Parses `postgres://…`, `postgresql://…`, `sqlite://PATH` or `sqlite:PATH`.
    ///
    /// # Errors
    /// Any other scheme, or an empty SQLite path.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(with_connect_timeout(url)));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or(path);
            anyhow::ensure!(!path.is_empty(), "the SQLite URL `{url}` names no file");
            return Ok(Self::Sqlite(path.to_owned()));
        }
        anyhow::bail!(
            "unsupported DATABASE_URL scheme: expected postgres://, postgresql:// or sqlite://PATH"
        )
    }

    /// "postgres" or "sqlite".
    #[must_use]
    pub const fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

/// Adds libpq's `connect_timeout` unless the URL sets one (libpq's default is to wait forever).
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&connect_timeout={PG_CONNECT_TIMEOUT_SECONDS}")
    } else {
        format!("{url}?connect_timeout={PG_CONNECT_TIMEOUT_SECONDS}")
    }
}

/// The r2d2 manager: opens the backend the URL named (diesel's generic manager would try every
/// backend in turn and could create a SQLite file named like a PostgreSQL URL). Every connect
/// passes the store's [`ConnectGate`], so closing the store can wait for them.
#[derive(Debug)]
pub struct Manager {
    target: Target,
    gate: Arc<ConnectGate>,
    /// For the ledger's pool: when a checkout may skip its ping (see [`crate::connection_trust`]).
    trust: Option<Arc<ConnectionTrust>>,
}

impl Manager {
    #[must_use]
    pub const fn new(target: Target, gate: Arc<ConnectGate>) -> Self {
        Self {
            target,
            gate,
            trust: None,
        }
    }

    /// Replaces a connection that the server closed with an in-memory SQLite placeholder, which
    /// [`r2d2::ManageConnection::has_broken`] recognises at check-in, so the pool drops it and
    /// opens a new one instead of handing the dead one out again. (diesel marks such a
    /// connection broken only inside a transaction, and r2d2 shows `has_broken` the connection
    /// alone.) Only PostgreSQL connections are retired: an SQLite file has no server to lose.
    pub(crate) fn retire(conn: &mut AnyConnection) {
        if !matches!(conn, AnyConnection::Postgres(_)) {
            return;
        }
        if let Ok(placeholder) = SqliteConnection::establish(":memory:") {
            *conn = AnyConnection::Sqlite(placeholder);
        }
    }

    /// Whether `conn` is a placeholder left by [`Manager::retire`].
    fn is_retired(&self, conn: &AnyConnection) -> bool {
        matches!(
            (&self.target, conn),
            (Target::Postgres(_), AnyConnection::Sqlite(_))
        )
    }

    /// Checkouts (with `test_on_check_out`) ping unless `trust` says the connections are fresh.
    #[must_use]
    pub(crate) fn trusting(mut self, trust: Arc<ConnectionTrust>) -> Self {
        self.trust = Some(trust);
        self
    }

    /// Opens one connection, unless the store was closed.
    pub(crate) fn open(&self) -> Result<AnyConnection, ConnectionError> {
        let _pass = self.gate.enter().ok_or_else(|| {
            ConnectionError::BadConnection("the database store was closed".to_owned())
        })?;
        match &self.target {
            Target::Postgres(url) => PgConnection::establish(url).map(AnyConnection::Postgres),
            Target::Sqlite(path) => {
                crate::sqlite_file_mode::narrow_existing_sqlite_file(path).map_err(|e| {
                    ConnectionError::BadConnection(format!(
                        "cannot narrow the SQLite file {path} to mode 0600: {e}"
                    ))
                })?;
                SqliteConnection::establish(path)
                    .map(AnyConnection::Sqlite)
                    .map_err(|e| sqlite_open_failure(path, e))
            }
        }
    }
}

/// Why the SQLite file cannot be opened, naming the missing directory, the usual cause, which
/// SQLite's "unable to open database file" does not name.
fn sqlite_open_failure(path: &str, e: ConnectionError) -> ConnectionError {
    let dir = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty());
    match dir {
        Some(dir) if !dir.exists() => ConnectionError::BadConnection(format!(
            "cannot create the SQLite file {path}: the directory {} does not exist (create it, or point DATABASE_URL elsewhere)",
            dir.display()
        )),
        _ => e,
    }
}

/// Whether `e` says the connection itself is gone: the server closed it, or nothing can be sent
/// on it. Any statement on it will fail the same way.
pub(crate) fn lost_connection(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        e,
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        )
    )
}

impl r2d2::ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        self.open().map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        if self.trust.as_ref().is_some_and(|t| t.trusted()) {
            return Ok(());
        }
        conn.ping().map_err(diesel::r2d2::Error::QueryError)?;
        if let Some(trust) = &self.trust {
            trust.succeeded();
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken() || self.is_retired(conn)
    }
}

/// Per-connection settings (not stored in the database, except SQLite's WAL mode).
///
/// SQLite, every connection:
/// - `busy_timeout` first, so the other pragmas and every later lock wait instead of failing.
/// - WAL: readers never block the writer or each other.
/// - `synchronous = NORMAL` is the WAL setting SQLite recommends: a commit is atomic and
///   consistent; only the last commits before a power loss (not a process crash) can be lost.
/// - `foreign_keys` is off by default in SQLite.
/// - `cache_size`: 512 KiB, not SQLite's 2 MB. The request pool's connections read one key, one
///   balance or one page of a list at a time, from pages the OS already caches; eight private
///   2 MB caches of the same file were a quarter of the process's memory after 100,000 distinct
///   keys, and their churn fragmented the rest.
/// - `wal_autocheckpoint`: at SQLite's default (every 1,000 pages, 4 MB) the ledger's commits
///   ran a checkpoint every few dozen batches, and half of a commit's CPU was checkpointing the
///   same hot pages (balances, index tails) again and again. A server checkpoints in the
///   background instead (`wal_checkpointer.rs`), and lets a busy WAL reach 262,144 pages
///   before restarting it; 524,288 pages (2 GiB) only bounds the WAL should that task fall
///   behind, and serves one-shot commands.
///
/// The ledger writer's connections also get settings of their own ([`ConnectionSetup::ledger`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionSetup {
    ledger: bool,
}

impl ConnectionSetup {
    /// The ledger writer's connections.
    ///
    /// - SQLite: a 32 MB page cache instead of SQLite's 2 MB. With many users every charge lands
    ///   on a random page of the users table and of the ledger's per-user index; once those outgrew
    ///   2 MB, `perf` showed the batch's B-tree inserts reading pages back from the OS and
    ///   spilling dirty ones to the WAL mid-transaction. Only this connection, so the process's
    ///   memory grows by at most this much. And `temp_store = MEMORY`: inside the batch's
    ///   transaction every write statement that may fail after changing pages (a multi-row
    ///   insert, a table with a trigger) keeps a statement journal of the pages it changes, and
    ///   past 64 KiB SQLite spills it to a temporary file, opened, written and deleted per
    ///   statement; in memory it costs neither the writes nor the CPU.
    /// - PostgreSQL: `plan_cache_mode = force_generic_plan`. The batch's statements are
    ///   prepared once, but PostgreSQL re-planned them at every execution (custom plans, chosen
    ///   because the generic plan's guess of 10 rows per array looks dearer), a planning cost paid
    ///   at every batch's bind. Their generic plans use the primary keys (the balance
    ///   update's join repeats `users.id = ANY(…)` for that). And `enable_seqscan = off`: a
    ///   generic plan guesses ten elements for `id = ANY($1)`, and on a table of a few dozen
    ///   pages a scan of all of it looks cheaper than ten index probes, so the one-round-trip
    ///   write's read of the paying keys scanned `api_keys` and filtered nearly every row out.
    ///   Every statement of the ledger reads by primary key, and a scan's cost grows with the table.
    ///   Only these connections: the request pool's ad-hoc queries keep PostgreSQL's choice.
    #[must_use]
    pub fn ledger() -> Self {
        Self { ledger: true }
    }
}

/// Pages between automatic checkpoints (see [`ConnectionSetup`]).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 524_288;
/// The ledger writer's page cache, in KiB (see [`ConnectionSetup::ledger`]).
const LEDGER_CACHE_KIB: u32 = 32 * 1024;
/// Every other connection's page cache, in KiB (see [`ConnectionSetup`]).
const POOL_CACHE_KIB: u32 = 512;

impl r2d2::CustomizeConnection<AnyConnection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), diesel::r2d2::Error> {
        if let AnyConnection::Postgres(pg) = conn
            && self.ledger
        {
            pg.batch_execute("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        if let AnyConnection::Sqlite(conn) = conn {
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                 PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};",
                SQLITE_BUSY_TIMEOUT.as_millis()
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
            // Negative: a size in KiB rather than in pages.
            let pragmas = if self.ledger {
                format!("PRAGMA cache_size = -{LEDGER_CACHE_KIB}; PRAGMA temp_store = MEMORY;")
            } else {
                format!("PRAGMA cache_size = -{POOL_CACHE_KIB};")
            };
            conn.batch_execute(&pragmas)
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use diesel::r2d2::ManageConnection;

    use super::*;

    /// A connection to `url` as a pool with `setup` hands it out.
    fn acquire(setup: ConnectionSetup, url: &str) -> AnyConnection {
        let manager = Manager::new(Target::parse(url).unwrap(), Default::default());
        let mut conn = manager.connect().unwrap_or_else(|e| {
            panic!(
                "cannot connect to {url} ({e}). PostgreSQL starts with: \
                 pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
            )
        });
        r2d2::CustomizeConnection::on_acquire(&setup, &mut conn).unwrap();
        conn
    }

    /// The value of SQLite's pragma `name` on a connection set up by `setup`.
    fn sqlite_pragma(setup: ConnectionSetup, name: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Pragma {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            value: i64,
        }
        let dir = std::env::temp_dir().join(format!("jt-pragma-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/c.db", dir.display());
        let mut conn = acquire(setup, &url);
        let AnyConnection::Sqlite(lite) = &mut conn else {
            unreachable!()
        };
        let query = diesel::sql_query(format!("SELECT {name} AS value FROM pragma_{name}"));
        let row: Pragma = diesel::RunQueryDsl::get_result(query, lite).unwrap();
        row.value
    }

    /// Needs the PostgreSQL server of `DATABASE_URL` (default 127.0.0.1:5432); fails, naming
    /// how to start it, when it is down.
    fn pg_setting(setup: ConnectionSetup, name: &str) -> String {
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres"))
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut conn = acquire(setup, &url);
        let AnyConnection::Postgres(pg) = &mut conn else {
            unreachable!()
        };
        let query = diesel::sql_query(format!("SELECT current_setting('{name}') AS value"));
        let row: Setting = diesel::RunQueryDsl::get_result(query, pg).unwrap();
        row.value
    }

    #[test]
    fn only_the_ledger_connections_of_postgresql_force_generic_plans_without_table_scans() {
        let ledger = |name| pg_setting(ConnectionSetup::ledger(), name);
        let other = |name| pg_setting(ConnectionSetup::default(), name);
        assert_eq!(ledger("plan_cache_mode"), "force_generic_plan");
        assert_eq!(ledger("enable_seqscan"), "off");
        assert_eq!(other("plan_cache_mode"), "auto");
        assert_eq!(other("enable_seqscan"), "on");
    }

    #[test]
    fn only_the_ledger_connection_gets_the_large_page_cache_and_in_memory_temp_files() {
        let ledger = |name| sqlite_pragma(ConnectionSetup::ledger(), name);
        let other = |name| sqlite_pragma(ConnectionSetup::default(), name);
        assert_eq!(ledger("cache_size"), -32_768, "32 MB, in KiB");
        assert_eq!(other("cache_size"), -512, "512 KiB");
        assert_eq!(ledger("temp_store"), 2, "MEMORY");
        assert_eq!(other("temp_store"), 0, "SQLite's default");
    }

    #[test]
    fn parses_both_schemes() {
        assert_eq!(
            Target::parse("sqlite://jobtactics.db").unwrap(),
            Target::Sqlite("jobtactics.db".into())
        );
        assert_eq!(
            Target::parse("sqlite:///tmp/x/test.db").unwrap(),
            Target::Sqlite("/tmp/x/test.db".into())
        );
        assert_eq!(
            Target::parse("sqlite:data.db").unwrap(),
            Target::Sqlite("data.db".into())
        );
        assert_eq!(
            Target::parse("postgres://u@h:5432/db").unwrap(),
            Target::Postgres("postgres://u@h:5432/db?connect_timeout=2".into())
        );
        assert_eq!(
            Target::parse("postgresql://u@h/db?sslmode=disable").unwrap(),
            Target::Postgres("postgresql://u@h/db?sslmode=disable&connect_timeout=2".into())
        );
        assert!(Target::parse("mysql://x").is_err());
        assert!(Target::parse("sqlite://").is_err());
    }
}
