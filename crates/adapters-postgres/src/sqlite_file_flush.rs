//! Writing SQLite's files to disk ahead of SQLite's own syncs, so that those find little to
//! write: the database file before the checkpoint's step in the writers' turn, and the WAL
//! every few milliseconds.
//!
//! - The database file. SQLite syncs it only when a checkpoint has copied the whole WAL. Under
//!   load only the step in the writers' turn does (`wal_checkpointer.rs`), so that step's sync
//!   writes every page the PASSIVE steps copied since the WAL last restarted, while the ledger
//!   waits for it. Flushed here first, outside the turn, those pages are clean, and the turn's
//!   sync writes only the few its own step copies.
//! - The WAL. With `synchronous = NORMAL` SQLite syncs it only at a checkpoint, which then
//!   writes out every frame committed since the last. A WAL frame is 24 bytes of header and a
//!   page, so each frame's write shares an OS page with the frame before it, and a write to an
//!   OS page that a sync is writing out waits for that sync's I/O (ext4's
//!   `ext4_block_write_begin`): the ledger's next commit waited for all of it. Flushed every few
//!   milliseconds, each sync is short, and so is that wait.
//!
//! SQLite exposes no call that syncs a file without checkpointing, so this holds descriptors
//! of its own: read-only, opened once per file and **never closed**. Closing any descriptor of
//! the database file would release every POSIX lock the process holds on it, SQLite's
//! included (docs/storage.md, "Nothing but SQLite closes a descriptor of the files"); the WAL's
//! is kept the same way, so that the rule has no exception.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use diesel::RunQueryDsl as _;
use diesel::SqliteConnection;

/// A file's identity: `(device, inode)`.
type FileId = (u64, u64);

/// The descriptors opened here, by the file they hold. Leaked: never closed.
type Kept = Mutex<HashMap<FileId, &'static File>>;

static KEPT: OnceLock<Kept> = OnceLock::new();

/// `conn`'s main database file, as `pragma_database_list` names it.
#[derive(diesel::QueryableByName)]
struct MainFile {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
}

/// `conn`'s main database file; `None` for an in-memory database.
///
/// # Errors
/// The file's name could not be read.
pub(crate) fn database_file(conn: &mut SqliteConnection) -> io::Result<Option<PathBuf>> {
    let main: Vec<MainFile> =
        diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .load(conn)
            .map_err(io::Error::other)?;
    Ok(main
        .into_iter()
        .next()
        .filter(|main| !main.file.is_empty())
        .map(|main| PathBuf::from(main.file)))
}

/// The WAL of the database file at `database`: SQLite names it after the file.
pub(crate) fn wal_file(database: &Path) -> PathBuf {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Writes the pages of `conn`'s database file that the OS holds dirty to disk and waits for
/// them (`fdatasync`). Nothing for an in-memory database.
///
/// # Errors
/// The file's name could not be read, or opening or syncing the file failed. Nothing is lost
/// then: the checkpoint's own sync still writes these pages, only inside the writers' turn.
pub(crate) fn flush_database_file(conn: &mut SqliteConnection) -> io::Result<()> {
    match database_file(conn)? {
        Some(main) => flush_file(&main),
        None => Ok(()),
    }
}

/// Writes the dirty pages of the SQLite file at `path` (the database or its WAL) to disk and
/// waits for them (`fdatasync`). Nothing when there is no such file: a WAL exists only while a
/// connection has the database open.
///
/// # Errors
/// Opening or syncing the file failed. Nothing is lost then: SQLite's own syncs write the same
/// pages, only later and for longer.
pub(crate) fn flush_file(path: &Path) -> io::Result<()> {
    match descriptor_of(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The descriptor kept for the file at `path`, opened on first use.
fn descriptor_of(path: &Path) -> io::Result<&'static File> {
    let meta = std::fs::metadata(path)?;
    let kept = KEPT.get_or_init(Mutex::default);
    let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&file) = kept.get(&(meta.dev(), meta.ino())) {
        return Ok(file);
    }
    // Leaked at once, so that no path drops it: not a lost race for the entry below (the path
    // replaced meanwhile by a file already kept), nor an error.
    let file: &'static File = Box::leak(Box::new(File::open(path)?));
    // Keyed by the inode the descriptor itself opened: should the path have been replaced
    // meanwhile, the entry still names the file it holds.
    let opened = file.metadata()?;
    Ok(*kept.entry((opened.dev(), opened.ino())).or_insert(file))
}

#[cfg(test)]
mod tests {
    use diesel::Connection as _;
    use diesel::connection::SimpleConnection as _;

    use super::*;
    use crate::testing::{fresh_sqlite_url, own_descriptors_of, posix_locks_held};

    /// This process's descriptors of the file at `path`.
    fn descriptors_of(path: &str) -> usize {
        own_descriptors_of(Path::new(path)).len()
    }

    #[test]
    fn flushing_keeps_sqlites_locks_and_opens_each_file_once() {
        let (_dir, url) = fresh_sqlite_url();
        let path = url.trim_start_matches("sqlite://").to_owned();
        let mut conn = SqliteConnection::establish(&path).unwrap();
        conn.batch_execute(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB); \
             INSERT INTO t VALUES (zeroblob(100000)); PRAGMA wal_checkpoint(PASSIVE);",
        )
        .unwrap();
        let wal = wal_file(Path::new(&path));
        assert!(wal.exists(), "no WAL beside {path}: nothing to check");
        let wal = wal.to_str().unwrap().to_owned();
        let inode = std::fs::metadata(&path).unwrap().ino();
        // A connection in WAL mode holds a lock on the database file while it is open.
        assert!(
            posix_locks_held(std::process::id(), inode) > 0,
            "the open connection holds no lock: nothing to check"
        );
        let (before, wal_before) = (descriptors_of(&path), descriptors_of(&wal));

        flush_database_file(&mut conn).unwrap();
        flush_database_file(&mut conn).unwrap();
        conn.batch_execute("INSERT INTO t VALUES (zeroblob(100000))")
            .unwrap();
        flush_file(Path::new(&wal)).unwrap();
        flush_file(Path::new(&wal)).unwrap();

        // Closing any descriptor of the file would release all of them at once.
        assert!(
            posix_locks_held(std::process::id(), inode) > 0,
            "flushing released SQLite's locks on the file"
        );
        assert_eq!(
            descriptors_of(&path),
            before + 1,
            "one descriptor of its own, kept and reused"
        );
        assert_eq!(
            descriptors_of(&wal),
            wal_before + 1,
            "one descriptor of the WAL, kept and reused"
        );
    }

    #[test]
    fn an_in_memory_database_has_no_file_to_flush() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        flush_database_file(&mut conn).unwrap();
        assert_eq!(database_file(&mut conn).unwrap(), None);
    }

    #[test]
    fn a_wal_that_does_not_exist_has_nothing_to_flush() {
        let dir = tempfile::tempdir().unwrap();
        let wal = wal_file(&dir.path().join("keys.db"));
        assert_eq!(wal, dir.path().join("keys.db-wal"));
        flush_file(&wal).unwrap();
        assert!(!wal.exists(), "flushing created the WAL");
    }
}
