//! SQLite's WAL checkpoints, taken off the request path.
//!
//! A checkpoint copies the pages the WAL holds back into the database file. Left to SQLite
//! (`wal_autocheckpoint`), it runs inside whichever commit crosses the threshold: the ledger
//! writer's, which every paid request of that batch then waits for (tens of milliseconds at a
//! large threshold, half of a commit's CPU at a small one). Here a task runs a PASSIVE
//! checkpoint on a pool connection at a short interval: it never waits for or blocks the
//! writer or the readers, and copies each hot page once per interval. When the WAL is large it
//! then takes a last, short step in the writers' turn, so that the WAL restarts (see
//! [`DbStore::checkpoint`]). The connections' `wal_autocheckpoint` (see `ConnectionSetup`)
//! stays as a bound on the WAL's size should this task fall behind.
//!
//! Beside it the same task writes the WAL to disk every few milliseconds, so that no sync finds
//! much of it dirty (`sqlite_file_flush.rs`).
//!
//! Every step goes through SQLite, syncs included, except two flushes: the database file's pages
//! before the turn, and the WAL's, are written to disk through descriptors that are never closed
//! (`sqlite_file_flush.rs`; docs/storage.md, "Nothing but SQLite closes a descriptor of the
//! files").

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use diesel::RunQueryDsl as _;
use keys_domain::ports::StoreError;
use tokio::task::JoinHandle;

use crate::connection::AnyConnection;
use crate::sqlite_file_flush::{database_file, flush_database_file, flush_file, wal_file};
use crate::store::DbStore;

impl DbStore {
    /// On SQLite, starts the checkpoint task (every `every`), which also flushes the WAL every
    /// [`WAL_FLUSH_EVERY`]; `None` on PostgreSQL, which checkpoints by itself in its own
    /// processes. The task runs until aborted.
    #[must_use]
    pub fn spawn_wal_checkpointer(&self, every: Duration) -> Option<JoinHandle<()>> {
        if self.backend_name() != "sqlite" {
            return None;
        }
        let store = self.clone();
        Some(tokio::spawn(async move {
            tokio::join!(
                store.checkpoint_every(every),
                store.flush_wal_every(WAL_FLUSH_EVERY)
            );
        }))
    }

    /// Checkpoints `every` after the last one ended, not at an interval: after a last step, a
    /// tick due at once would find the WAL not yet restarted (no write since) and take the whole
    /// last step again.
    async fn checkpoint_every(&self, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.checkpoint(LAST_STEP_FRAMES).await {
                // The next one tries again; meanwhile SQLite's own threshold applies.
                tracing::debug!(error = %e, "WAL checkpoint failed");
            }
        }
    }

    /// Flushes the WAL `every` after the last flush ended, when it was written since the last
    /// flush began (its modification time moved), so an idle store syncs nothing. A failure
    /// leaves the frames to the checkpoint's own sync, so it is logged, not returned.
    async fn flush_wal_every(&self, every: Duration) {
        let mut wal: Option<PathBuf> = None;
        let mut flushed_as_of: Option<SystemTime> = None;
        loop {
            tokio::time::sleep(every).await;
            if wal.is_none() {
                match self.database_file().await {
                    Ok(Some(database)) => wal = Some(wal_file(&database)),
                    // In memory: no WAL to flush.
                    Ok(None) => return,
                    Err(e) => tracing::debug!(error = %e, "the database file's name was not read"),
                }
            }
            let Some(path) = wal.clone() else { continue };
            let flushed = tokio::task::spawn_blocking(move || {
                // Read before the sync: a frame written during it moves the time again.
                let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                if written.is_some() && written == flushed_as_of {
                    return Ok(written);
                }
                flush_file(&path).map(|()| written)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|flushed| flushed.map_err(|e| e.to_string()));
            match flushed {
                Ok(written) => flushed_as_of = written,
                Err(e) => tracing::debug!(error = %e, "flushing the WAL failed"),
            }
        }
    }

    /// A PASSIVE checkpoint; when the WAL held `last_step_frames` or more, a last one in the
    /// writers' turn, which copies what was committed since, so that the next writer starts the
    /// WAL again from its beginning (SQLite restarts it only when a write begins with every
    /// frame copied). Without that last step a busy ledger always commits during the
    /// checkpoint, the WAL never restarts, and once it holds `wal_autocheckpoint` pages a ledger
    /// commit checkpoints, fsync included, while its whole batch waits.
    ///
    /// The ledger waits for the last step, so what it syncs is made small first, outside the
    /// turn: the database file's pages, which no PASSIVE step syncs until one copies the whole
    /// WAL, are flushed; then more PASSIVE steps copy what the ledger committed during the step
    /// before, until few frames are left (see [`CatchUp`]); then the file is flushed again.
    /// Answers what the first step found.
    async fn checkpoint(&self, last_step_frames: i64) -> Result<CheckpointResult, StoreError> {
        let first = self
            .run(|conn| Ok(wal_checkpoint(conn, Mode::Passive)?))
            .await?;
        if first.log < last_step_frames {
            return Ok(first);
        }
        self.flush_database_file().await;
        let mut catch_up = CatchUp::after(first);
        while catch_up.goes_on() {
            let step = self
                .run(|conn| Ok(wal_checkpoint(conn, Mode::Passive)?))
                .await?;
            catch_up.record(step);
        }
        if !catch_up.wal_restarted() {
            self.flush_database_file().await;
            self.run_write(|conn| Ok(wal_checkpoint(conn, Mode::Passive)?))
                .await?;
        }
        Ok(first)
    }

    /// On SQLite, copies the whole WAL into the database file and empties the WAL file
    /// (`wal_checkpoint(TRUNCATE)`), for a store that stops: a busy WAL can hold hundreds of
    /// megabytes, which the next start would otherwise read back and copy before anything else.
    /// SQLite answers "busy" at once while another checkpoint runs (the checkpoint task's last
    /// step may still be in flight), so it tries again every 50 ms for [`EMPTYING_FOR`]; a try
    /// also waits for other processes' readers, up to the busy timeout. A failure leaves the WAL
    /// to the next start, which loses nothing.
    pub(crate) async fn empty_the_wal(&self) {
        if self.backend_name() != "sqlite" {
            return;
        }
        let until = tokio::time::Instant::now() + EMPTYING_FOR;
        while tokio::time::Instant::now() < until {
            let emptied = self
                .run_write(|conn| Ok(wal_checkpoint(conn, Mode::Truncate)?))
                .await;
            match emptied {
                Ok(CheckpointResult { busy: 0, .. }) => return,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err::<_, StoreError>(e) => {
                    tracing::info!(error = %e, "the WAL was not emptied at close");
                    return;
                }
            }
        }
        tracing::info!("the WAL was not emptied at close: another connection held it");
    }

    /// [`flush_database_file`] on a pool connection. A failure only leaves the pages to the
    /// turn's own sync, so it is logged, not returned.
    async fn flush_database_file(&self) {
        let flushed = self
            .on_sqlite(|lite| flush_database_file(lite).map_err(|e| e.to_string()))
            .await
            .and_then(|flushed| flushed.unwrap_or(Ok(())));
        if let Err(e) = flushed {
            tracing::debug!(error = %e, "flushing the database file failed");
        }
    }

    /// [`database_file`] on a pool connection; `None` in memory and on PostgreSQL.
    async fn database_file(&self) -> Result<Option<PathBuf>, String> {
        self.on_sqlite(|lite| database_file(lite).map_err(|e| e.to_string()))
            .await
            .and_then(|file| file.unwrap_or(Ok(None)))
    }

    /// `work` on a pool connection if the store is SQLite; `None` on PostgreSQL.
    async fn on_sqlite<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut diesel::SqliteConnection) -> T + Send + 'static,
    ) -> Result<Option<T>, String> {
        self.run(|conn| match conn {
            AnyConnection::Sqlite(lite) => {
                Ok::<_, crate::failure::Failure<StoreError>>(Some(work(lite)))
            }
            AnyConnection::Postgres(_) => Ok(None),
        })
        .await
        .map_err(|e: StoreError| e.to_string())
    }
}

/// How often the WAL is flushed outside SQLite (see `sqlite_file_flush.rs`): each sync then
/// writes at most this long of the ledger's frames, and a commit that touches an OS page under
/// that sync's I/O waits at most as long as that I/O.
const WAL_FLUSH_EVERY: Duration = Duration::from_millis(10);

/// WAL frames past which a checkpoint takes its last step in the writers' turn, and so how
/// often a busy ledger's WAL restarts: 262,144 frames (1 GiB of pages) is a few seconds of a busy
/// ledger's writes. Each restart holds every paid request in flight for the last step (on a
/// large database tens of milliseconds: it syncs pages scattered through the file) and, in the
/// ledger's next commit, a sync of the new WAL header; the flushes and catch-up steps before it
/// compete with the ledger for the disk and the CPU. That cost is about the same at any
/// threshold, so the threshold sets the share of requests that pay it, and at half this value
/// that share reached the slowest hundredth on a large database. The price is disk: the WAL
/// file keeps its largest size, about 1.1 GB under sustained load, until the store closes
/// ([`DbStore::empty_the_wal`]). A light load skips the step: a PASSIVE step then copies every
/// frame, and the next write restarts the WAL by itself.
const LAST_STEP_FRAMES: i64 = 262_144;

/// Frames new to a step outside the turn that still let it be the last before the turn's: it
/// is short, and so is the turn's step, which copies what the ledger committed meanwhile.
const LEFT_FOR_THE_TURN: i64 = 256;

/// Most steps outside the turn per checkpoint: when the ledger commits faster than a step
/// copies, what is left never shrinks, and the turn's step takes it as it is.
const MAX_CATCH_UP_STEPS: u32 = 4;

/// The PASSIVE steps between a checkpoint's first step and its last, in the writers' turn.
/// Each copies what was committed while the one before ran, so the frames new to a step shrink
/// as long as the ledger commits slower than a step copies.
#[derive(Debug, Clone, Copy)]
struct CatchUp {
    /// Frames the newest step had copied into the database when it ended.
    copied: i64,
    /// Frames the newest step found that the one before had not copied.
    new_frames: i64,
    steps: u32,
    restarted: bool,
}

impl CatchUp {
    fn after(first: CheckpointResult) -> Self {
        Self {
            copied: first.checkpointed,
            new_frames: i64::MAX,
            steps: 0,
            restarted: false,
        }
    }

    fn goes_on(&self) -> bool {
        !self.restarted && self.new_frames > LEFT_FOR_THE_TURN && self.steps < MAX_CATCH_UP_STEPS
    }

    fn record(&mut self, step: CheckpointResult) {
        // Fewer frames than the step before had copied: a writer began with every frame
        // copied and restarted the WAL, which is what the turn's step is for (or there is no
        // WAL any more: -1).
        self.restarted = step.log < self.copied;
        self.new_frames = step.log - self.copied;
        self.steps += 1;
        self.copied = step.checkpointed;
    }

    fn wal_restarted(&self) -> bool {
        self.restarted
    }
}

/// How long closing tries to empty the WAL (see [`DbStore::empty_the_wal`]).
const EMPTYING_FOR: Duration = Duration::from_secs(2);

/// What `PRAGMA wal_checkpoint` answers.
#[derive(diesel::QueryableByName, Debug, Clone, Copy, Default)]
struct CheckpointResult {
    /// 1 when another connection held what the mode waits for (another checkpoint, a writer, or
    /// for TRUNCATE a reader) past the busy timeout; a PASSIVE step never waits.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    /// Frames in the WAL (-1 when the checkpoint could not run).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    log: i64,
    /// Frames of the WAL copied into the database when it ended (-1 likewise).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    checkpointed: i64,
}

/// Which `PRAGMA wal_checkpoint` a step runs.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Copies what it can without waiting for or blocking anyone.
    Passive,
    /// Copies the whole WAL, waiting for writers and readers, then empties the WAL file.
    Truncate,
}

/// One checkpoint on `conn` (nothing on PostgreSQL).
fn wal_checkpoint(conn: &mut AnyConnection, mode: Mode) -> diesel::QueryResult<CheckpointResult> {
    let sql = match mode {
        Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    match conn {
        AnyConnection::Sqlite(lite) => diesel::sql_query(sql).get_result(lite),
        AnyConnection::Postgres(_) => Ok(CheckpointResult::default()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use diesel::connection::SimpleConnection as _;

    use super::*;
    use crate::testing::{fresh_sqlite_url, own_descriptors_of};

    fn frames(log: i64, checkpointed: i64) -> CheckpointResult {
        CheckpointResult {
            busy: 0,
            log,
            checkpointed,
        }
    }

    /// A catch-up after a first step that copied all of a large WAL.
    fn after_a_large_wal() -> CatchUp {
        CatchUp::after(frames(8_000, 8_000))
    }

    #[test]
    fn catching_up_stops_once_a_step_finds_few_new_frames() {
        let mut catch_up = after_a_large_wal();
        assert!(
            catch_up.goes_on(),
            "the first step's copy took a while: catch up"
        );
        catch_up.record(frames(9_000, 9_000));
        assert!(
            catch_up.goes_on(),
            "1,000 new frames: still too many for the turn"
        );
        catch_up.record(frames(9_000 + LEFT_FOR_THE_TURN, 9_000 + LEFT_FOR_THE_TURN));
        assert!(
            !catch_up.goes_on(),
            "few enough new frames: the turn's step comes next"
        );
        assert!(!catch_up.wal_restarted());
    }

    #[test]
    fn catching_up_gives_up_after_its_steps_when_the_writer_outruns_them() {
        let mut catch_up = after_a_large_wal();
        let mut log = 8_000;
        for _ in 0..MAX_CATCH_UP_STEPS {
            assert!(catch_up.goes_on());
            log += 2_000;
            catch_up.record(frames(log, log));
        }
        assert!(
            !catch_up.goes_on(),
            "the turn's step takes what is left as it is"
        );
        assert!(
            !catch_up.wal_restarted(),
            "the WAL still needs the turn's step"
        );
    }

    #[test]
    fn a_wal_that_restarted_meanwhile_needs_no_step_in_the_turn() {
        let mut catch_up = after_a_large_wal();
        catch_up.record(frames(40, 40));
        assert!(!catch_up.goes_on());
        assert!(catch_up.wal_restarted());
    }

    /// Runs `sql` on SQLite in the writers' turn, as the ledger writes.
    async fn write(store: &DbStore, sql: &'static str) {
        store
            .run_write(move |conn| {
                if let AnyConnection::Sqlite(lite) = conn {
                    lite.batch_execute(sql)?;
                }
                Ok::<_, crate::failure::Failure<StoreError>>(())
            })
            .await
            .unwrap();
    }

    /// A migrated store on a fresh SQLite file with a table of pages to write; its temp dir and
    /// the file's path.
    async fn store_with_pages() -> (tempfile::TempDir, String, DbStore) {
        let (dir, url) = fresh_sqlite_url();
        let store = DbStore::connect(&url).unwrap();
        store.run_migrations().unwrap();
        write(
            &store,
            "CREATE TABLE pages (id INTEGER PRIMARY KEY, body BLOB)",
        )
        .await;
        let path = url.trim_start_matches("sqlite://").to_owned();
        (dir, path, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_store_leaves_an_empty_wal_and_every_write_in_the_database_file() {
        let (_dir, path, store) = store_with_pages().await;
        write(
            &store,
            "PRAGMA wal_autocheckpoint = 0; INSERT INTO pages (body) VALUES (zeroblob(300000))",
        )
        .await;
        let wal = format!("{path}-wal");
        let before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert!(
            before > 300_000,
            "the WAL holds the writes ({before} bytes)"
        );

        store.close().await;

        let after = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert_eq!(after, 0, "the WAL still holds {after} bytes");
        let body: Vec<u8> = std::process::Command::new("sqlite3")
            .args([path.as_str(), "SELECT length(body) FROM pages"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run sqlite3 ({e}): apt-get install sqlite3"))
            .stdout;
        assert_eq!(String::from_utf8_lossy(&body).trim(), "300000");
    }

    /// This process's read-only descriptors of the file at `path`. SQLite opens its files
    /// read-write, so these are the flushes' own.
    fn read_only_descriptors_of(path: &Path) -> usize {
        own_descriptors_of(path)
            .into_iter()
            .filter(|&read_only| read_only)
            .count()
    }

    /// The task flushes the WAL on its own short period, long before its first checkpoint.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpoint_task_flushes_the_wal_between_checkpoints() {
        let (_dir, path, store) = store_with_pages().await;
        write(&store, "INSERT INTO pages (body) VALUES (zeroblob(300000))").await;
        let wal = wal_file(Path::new(&path));
        assert_eq!(read_only_descriptors_of(&wal), 0);

        let task = store
            .spawn_wal_checkpointer(Duration::from_secs(3600))
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while read_only_descriptors_of(&wal) == 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(WAL_FLUSH_EVERY).await;
        }
        task.abort();

        assert_eq!(
            read_only_descriptors_of(&wal),
            1,
            "the task did not flush the WAL through a descriptor of its own"
        );
    }

    /// A threshold for the last step small enough for a test's writer to cross many times.
    const LAST_STEP: i64 = 4_096;

    /// A writer that commits without pause, as the ledger does under load, and never
    /// checkpoints by itself (`wal_autocheckpoint = 0`): only the checkpointer can bound its WAL.
    /// Each commit appends a page of its own, so a WAL that never restarted would hold one frame
    /// per commit. Each last step also flushes the database file first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_never_pauses_still_has_its_wal_restarted() {
        let (_dir, _path, store) = store_with_pages().await;
        let stop = Arc::new(AtomicBool::new(false));
        let made = Arc::new(AtomicU32::new(0));
        let writer = {
            let (store, stop, made) = (store.clone(), stop.clone(), made.clone());
            tokio::spawn(async move {
                let mut commits = 0_u32;
                while !stop.load(Ordering::Relaxed) {
                    write(
                        &store,
                        "PRAGMA wal_autocheckpoint = 0; \
                         INSERT INTO pages (body) VALUES (zeroblob(3000))",
                    )
                    .await;
                    commits += 1;
                    made.store(commits, Ordering::Relaxed);
                }
                commits
            })
        };
        let mut largest = 0;
        let mut last_steps = 0;
        // Until the writer has made enough commits to show anything (a loaded machine makes
        // them slower), at least 150 checkpoint ticks.
        let enough = u32::try_from(5 * LAST_STEP).unwrap();
        let mut ticks = 0;
        while ticks < 150 || (made.load(Ordering::Relaxed) < enough && ticks < 6_000) {
            ticks += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            let found = store.checkpoint(LAST_STEP).await.unwrap();
            largest = largest.max(found.log);
            last_steps += u32::from(found.log >= LAST_STEP);
        }
        stop.store(true, Ordering::Relaxed);
        let commits = writer.await.unwrap();
        assert!(
            i64::from(commits) > 4 * LAST_STEP,
            "the writer made only {commits} commits: too few to show anything"
        );
        assert!(last_steps > 0, "no checkpoint took its last step");
        assert!(
            largest < 3 * LAST_STEP,
            "the WAL reached {largest} frames over {commits} commits: it did not restart"
        );
        store.close().await;
    }
}
