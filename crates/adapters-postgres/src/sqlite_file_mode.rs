//! The embedded SQLite file is readable by its owner only (mode 0600): it holds key hashes,
//! balances and possibly the generated JWT secret. SQLite gives its `-wal` and `-shm` files the
//! database file's permissions, so restricting the main file covers them.

use std::fs::{OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Owner read and write, nobody else.
pub const SQLITE_FILE_MODE: u32 = 0o600;

/// Creates `path` with mode 0600 if it does not exist, and takes group and other access away
/// from an existing file (e.g. one an older version created with the umask's mode).
///
/// # Errors
/// The file cannot be created or its mode changed (e.g. the directory does not exist).
pub fn restrict_sqlite_file(path: &str) -> io::Result<()> {
    if path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    let path = Path::new(path);
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SQLITE_FILE_MODE)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_0600_and_existing_ones_lose_group_and_other_access() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh.db");
        restrict_sqlite_file(fresh.to_str().unwrap()).unwrap();
        assert_eq!(mode(&fresh), 0o600);

        let old = dir.path().join("old.db");
        std::fs::write(&old, b"").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        restrict_sqlite_file(old.to_str().unwrap()).unwrap();
        assert_eq!(mode(&old), 0o600);

        let missing_dir = dir.path().join("missing/x.db");
        assert!(restrict_sqlite_file(missing_dir.to_str().unwrap()).is_err());
    }
}
