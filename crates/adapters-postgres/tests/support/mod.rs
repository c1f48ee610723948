//! Stores for the tests: a fresh PostgreSQL database or a temp SQLite file, migrated, and
//! removed again when the test ends.

use adapters_postgres::DbStore;
use adapters_postgres::testing::{drop_postgres_database, fresh_postgres_url, fresh_sqlite_url};

/// A migrated store that cleans up after itself.
pub struct TestDb {
    store: Option<DbStore>,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn postgres() -> Self {
        Self::migrated(fresh_postgres_url(), None)
    }

    pub fn sqlite() -> Self {
        let (dir, url) = fresh_sqlite_url();
        Self::migrated(url, Some(dir))
    }

    fn migrated(url: String, dir: Option<tempfile::TempDir>) -> Self {
        let store = DbStore::connect(&url).unwrap();
        let applied = store.run_migrations().unwrap();
        assert!(applied >= 5, "migrations applied: {applied}");
        Self {
            store: Some(store),
            url,
            _dir: dir,
        }
    }

    pub fn store(&self) -> &DbStore {
        self.store.as_ref().unwrap()
    }

    #[allow(dead_code)] // used by some test crates only
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        drop(self.store.take());
        if self.url.starts_with("postgres") {
            drop_postgres_database(&self.url);
        }
    }
}
