//! The embedded SQLite file is readable by its owner only (mode 0600): it holds key hashes,
//! balances and possibly the generated JWT secret.
//!
//! SQLite itself creates the file with that mode (`SQLITE_DEFAULT_FILE_PERMISSIONS=0600`, set in
//! `.cargo/config.toml`) and gives its `-wal` and `-shm` files the database file's mode. Here
//! only an existing file that is too open (e.g. one an older version created with the umask's
//! mode) is narrowed, by path. Nothing here opens a descriptor of the database: closing any
//! descriptor of a file releases every POSIX lock the process holds on it, SQLite's included,
//! after which another process takes the database for unused and deletes its WAL
//! (docs/storage.md, "Nothing but SQLite closes a descriptor of the files").

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Takes group and other access away from `path` if it exists; a missing file is left for
/// SQLite to create (with mode 0600).
///
/// # Errors
/// The file exists and its mode cannot be read or changed.
pub fn narrow_existing_sqlite_file(path: &str) -> io::Result<()> {
    if path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    let mode = match std::fs::metadata(Path::new(path)) {
        Ok(meta) => meta.permissions().mode(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use diesel::Connection as _;
    use diesel::connection::SimpleConnection as _;

    use super::*;

    /// Owner read and write, nobody else: what `.cargo/config.toml` asks SQLite for.
    const SQLITE_FILE_MODE: u32 = 0o600;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn sqlite_creates_the_database_its_wal_and_shm_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fresh.db");
        narrow_existing_sqlite_file(file.to_str().unwrap()).unwrap();
        assert!(!file.exists(), "the file is SQLite's to create");
        let mut conn = diesel::SqliteConnection::establish(file.to_str().unwrap()).unwrap();
        conn.batch_execute(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1)",
        )
        .unwrap();
        for name in ["fresh.db", "fresh.db-wal", "fresh.db-shm"] {
            assert_eq!(mode(&dir.path().join(name)), SQLITE_FILE_MODE, "{name}");
        }
    }

    #[test]
    fn an_existing_file_loses_group_and_other_access() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        std::fs::write(&old, b"").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        narrow_existing_sqlite_file(old.to_str().unwrap()).unwrap();
        assert_eq!(mode(&old), 0o600);
    }
}
