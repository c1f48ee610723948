//! Test helpers for this and other crates' tests (cargo feature `testing`): a fresh PostgreSQL
//! database or a temp SQLite file per test.
//!
//! These fail loudly by design: a test that cannot get its database must fail, naming the fix.
#![allow(clippy::panic, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

/// Where the test PostgreSQL server is unless `DATABASE_URL` names one.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432";
/// How to start the shared server on a development machine.
pub const START_POSTGRES: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
/// Name prefix of the databases made here; older ones are dropped by later calls.
const PREFIX: &str = "jt_test_";
/// Test databases older than this are left-overs of finished runs.
const STALE_AFTER_SECONDS: u64 = 2 * 3600;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The server URL: `DATABASE_URL` when it is a PostgreSQL URL, else the default.
#[must_use]
pub fn postgres_server_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned())
}

/// Creates a fresh, empty, uniquely named PostgreSQL database via the server in env
/// `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432`) and returns its URL.
/// Databases this made more than two hours ago are dropped on the way, so runs that cannot
/// clean up (other crates get only a URL) do not pile up on a shared server.
///
/// # Panics
/// When the server is unreachable (naming how to start it) or refuses to create the database.
#[must_use]
pub fn fresh_postgres_url() -> String {
    let server = postgres_server_url();
    let mut admin = PgConnection::establish(&server).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {server} ({e}). Start it with: {START_POSTGRES} \
             (or set DATABASE_URL to a reachable postgres:// server)"
        )
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    drop_stale_databases(&mut admin, now);
    let name = format!(
        "{PREFIX}{now}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .unwrap_or_else(|e| panic!("cannot create test database {name} on {server}: {e}"));
    with_database(&server, &name)
}

/// Drops a database made by [`fresh_postgres_url`] (terminating its connections).
///
/// # Panics
/// When the server is unreachable.
pub fn drop_postgres_database(url: &str) {
    let Some(name) = database_name(url) else {
        return;
    };
    if !name.starts_with(PREFIX) {
        return;
    }
    let server = postgres_server_url();
    let mut admin = PgConnection::establish(&server).unwrap_or_else(|e| {
        panic!("PostgreSQL is not reachable at {server} ({e}). Start it with: {START_POSTGRES}")
    });
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
}

/// A temp dir and a `sqlite://…/test.db` URL inside it (the file is created on first use).
///
/// # Panics
/// When no temp dir can be made.
#[must_use]
pub fn fresh_sqlite_url() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("cannot create a temp dir for a SQLite test database");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    (dir, url)
}

/// Every byte of every row of `idempotency_records` (all columns, row after row): for tests
/// that check what the store keeps.
pub async fn idempotency_record_bytes(store: &crate::DbStore) -> Vec<u8> {
    use diesel::prelude::*;

    use crate::schema::idempotency_records as records;
    store
        .run::<_, keys_domain::ports::StoreError, _>(|conn| {
            let rows = records::table
                .select((
                    records::lookup,
                    records::request,
                    records::sealed,
                    records::created_at,
                    records::expires_at,
                ))
                .load::<(Vec<u8>, Vec<u8>, Option<Vec<u8>>, i64, i64)>(conn)?;
            let mut out = Vec::new();
            for (lookup, request, sealed, created, expires) in rows {
                out.extend(lookup);
                out.extend(request);
                out.extend(sealed.unwrap_or_default());
                out.extend(created.to_be_bytes());
                out.extend(expires.to_be_bytes());
            }
            Ok(out)
        })
        .await
        .expect("cannot read idempotency_records")
}

/// How many rows `idempotency_records` holds.
pub async fn idempotency_record_count(store: &crate::DbStore) -> i64 {
    use diesel::prelude::*;

    use crate::schema::idempotency_records as records;
    store
        .run::<_, keys_domain::ports::StoreError, _>(|conn| {
            Ok(records::table.count().get_result::<i64>(conn)?)
        })
        .await
        .expect("cannot count idempotency_records")
}

#[derive(QueryableByName)]
struct Datname {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

fn drop_stale_databases(admin: &mut PgConnection, now: u64) {
    let names: Vec<Datname> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'jt\\_test\\_%'")
            .load(admin)
            .unwrap_or_default();
    for Datname { datname } in names {
        let created = datname
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|c| c + STALE_AFTER_SECONDS < now) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{datname}\" WITH (FORCE)"
            ));
        }
    }
}

/// `url` with its database (path) replaced by `name`, keeping any query string.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn database_name(url: &str) -> Option<&str> {
    let base = url.split('?').next()?;
    let after_scheme = &base[base.find("://")? + 3..];
    let name = &after_scheme[after_scheme.find('/')? + 1..];
    (!name.is_empty()).then_some(name)
}

/// Runs one SQL statement on the store's database (both backends): for tests that must put a
/// row in a state no API reaches in a test's time, such as a key whose expiry has passed.
pub async fn execute_sql(store: &crate::DbStore, sql: &str) -> usize {
    use diesel::RunQueryDsl;

    let sql = sql.to_owned();
    store
        .run::<_, keys_domain::ports::StoreError, _>(move |conn| {
            Ok(diesel::sql_query(sql).execute(conn)?)
        })
        .await
        .expect("cannot run the test's SQL")
}

/// This process's descriptors of the file at `path`, and whether each is open read-only
/// (`/proc/self/fdinfo`'s `flags:` is octal; its low two bits are the access mode, 0 for
/// read-only).
pub fn own_descriptors_of(path: &std::path::Path) -> Vec<bool> {
    std::fs::read_dir("/proc/self/fd")
        .expect("cannot read /proc/self/fd")
        .filter_map(Result::ok)
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
        .map(|fd| {
            let info = std::fs::read_to_string(format!(
                "/proc/self/fdinfo/{}",
                fd.file_name().to_string_lossy()
            ))
            .unwrap_or_default();
            info.lines()
                .find_map(|line| line.strip_prefix("flags:"))
                .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
                .is_some_and(|flags| flags & 0o3 == 0)
        })
        .collect()
}

/// The POSIX locks `pid` holds on the file with `inode` (`/proc/locks` lines read
/// `N: POSIX ADVISORY READ PID MAJ:MIN:INODE START END`; a waiter's has `->` after `N:`).
/// The kernel writes the file anew at each `read` call's offset, a page at a time, so lines can
/// shift between calls while other processes take or drop locks: a lock missed by one whole
/// read is looked for twice more before it counts as not held. A server that lost its locks
/// shows none in any read.
pub fn posix_locks_held(pid: u32, inode: u64) -> usize {
    (0..3)
        .map(|_| locks_in_one_read(pid, inode))
        .find(|&n| n > 0)
        .unwrap_or(0)
}

fn locks_in_one_read(pid: u32, inode: u64) -> usize {
    let locks = std::fs::read_to_string("/proc/locks").expect("cannot read /proc/locks");
    locks
        .lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().filter(|f| *f != "->").collect();
            fields.get(4) == Some(&pid.to_string().as_str())
                && fields
                    .get(5)
                    .and_then(|id| id.rsplit(':').next())
                    .and_then(|i| i.parse::<u64>().ok())
                    == Some(inode)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(database_name("postgres://h/x?a=b"), Some("x"));
        assert_eq!(database_name("postgres://h"), None);
    }
}
