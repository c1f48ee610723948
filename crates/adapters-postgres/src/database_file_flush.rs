//! Writing the SQLite database file's pages to disk ahead of the checkpoint's step in the
//! writers' turn.
//!
//! SQLite syncs the database file only when a checkpoint has copied the whole WAL. Under load
//! only the step in the writers' turn does (`wal_checkpointer.rs`), so that step's sync writes
//! every page the PASSIVE steps copied since the WAL last restarted, while the ledger waits for
//! it. Flushed here first, outside the turn, those pages are clean, and the turn's sync writes
//! only the few its own step copies.
//!
//! SQLite exposes no call that syncs the file without checkpointing, so this holds a descriptor
//! of its own: read-only, opened once per database file and **never closed**. Closing any
//! descriptor of the file would release every POSIX lock the process holds on it, SQLite's
//! included (docs/storage.md, "Nothing but SQLite closes a descriptor of the files").

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt as _;
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

/// Writes the pages of `conn`'s database file that the OS holds dirty to disk and waits for
/// them (`fdatasync`). Nothing for an in-memory database.
///
/// # Errors
/// The file's name could not be read, or opening or syncing the file failed. Nothing is lost
/// then: the checkpoint's own sync still writes these pages, only inside the writers' turn.
pub(crate) fn flush_database_file(conn: &mut SqliteConnection) -> io::Result<()> {
    let main: Vec<MainFile> =
        diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .load(conn)
            .map_err(io::Error::other)?;
    match main.first() {
        Some(main) if !main.file.is_empty() => descriptor_of(&main.file)?.sync_data(),
        _ => Ok(()),
    }
}

/// The descriptor kept for the file at `path`, opened on first use.
fn descriptor_of(path: &str) -> io::Result<&'static File> {
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
    use crate::testing::{fresh_sqlite_url, posix_locks_held};

    /// This process's descriptors of the file at `path`.
    fn descriptors_of(path: &str) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter(|target| target == std::path::Path::new(path))
            .count()
    }

    #[test]
    fn flushing_keeps_sqlites_locks_and_opens_the_file_once() {
        let (_dir, url) = fresh_sqlite_url();
        let path = url.trim_start_matches("sqlite://").to_owned();
        let mut conn = SqliteConnection::establish(&path).unwrap();
        conn.batch_execute(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB); \
             INSERT INTO t VALUES (zeroblob(100000)); PRAGMA wal_checkpoint(PASSIVE);",
        )
        .unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        // A connection in WAL mode holds a lock on the database file while it is open.
        assert!(
            posix_locks_held(std::process::id(), inode) > 0,
            "the open connection holds no lock: nothing to check"
        );
        let before = descriptors_of(&path);

        flush_database_file(&mut conn).unwrap();
        flush_database_file(&mut conn).unwrap();

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
    }

    #[test]
    fn an_in_memory_database_has_no_file_to_flush() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        flush_database_file(&mut conn).unwrap();
    }
}
