//! The diesel store behind every persistence port: one type, [`DbStore`], on PostgreSQL or on
//! an embedded SQLite file, chosen by the database URL.
//!
//! One query code path serves both backends where one can: [`connection::AnyConnection`] is a
//! `#[derive(diesel::MultiConnection)]` enum and [`schema`] is a single set of `table!`s (ids are
//! TEXT and timestamps BIGINT unix milliseconds in both). The backends part ways where their
//! engines differ, each in a file named for it or a `match` on the connection: URL parsing and
//! connection setup ([`connection`]), the migrations directories ([`migrations`]), the embedded
//! file's mode, checkpoints and online backup (`sqlite_file_mode`, `wal_checkpointer`,
//! `backup`), and the paid path's writes (`ledger_batch` with PostgreSQL's one-statement
//! writes in `batch_write_postgres` and `confirmed_write_postgres`; usage rows in
//! `key_store`). See `docs/storage.md`.
//!
//! Every port method runs its whole transaction in one `spawn_blocking` closure; a pool checkout
//! or connection failure is `StoreError::Unavailable` (a fast 503), never "not found".

mod account_store;
mod alert_outbox;
mod backup;
mod balance_cache;
mod batch_write_postgres;
mod cached_statements;
mod catalog_store;
mod confirmed_write_postgres;
mod connect_gate;
pub mod connection;
mod connection_trust;
mod database_health;
mod expiry_reminder_store;
mod failure;
mod group_commit;
mod idempotency_store;
mod key_change_feed;
mod key_client_store;
mod key_controls_columns;
mod key_events;
mod key_row;
mod key_store;
mod last_seen;
mod ledger_batch;
mod ledger_queue;
mod ledger_writer;
mod migrations;
pub use migrations::MigrationStatus;
mod on_conflict;
mod pages;
mod pool_stats;
pub mod schema;
mod settings_store;
mod sign_in_link_store;
mod sqlite_file_flush;
mod sqlite_file_mode;
mod store;
mod template_cache;
#[cfg(feature = "testing")]
pub mod testing;
mod token_cutoff_store;
mod usage_history;
mod user_lock;
mod wal_checkpointer;

pub use database_health::DbErrorCounts;
pub use group_commit::BatchSizeCounts;
pub use pool_stats::{PoolState, WaitHistogram};
pub use store::DbStore;
