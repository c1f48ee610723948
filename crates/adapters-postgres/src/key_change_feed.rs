//! [`KeyChangeFeed`] over the audit trail: every change a cached key record could miss writes a
//! key event in its own transaction, so reading `key_events` by `seq` tells an instance which
//! keys to evict, with no broker.
//!
//! `seq` is assigned when an event is inserted, not when its transaction commits. On SQLite the
//! two orders agree (one writer at a time). On PostgreSQL a transaction could take `seq` 10,
//! commit after another one's 11, and be skipped by a read that had already moved past 11. So
//! every writer of events holds a shared advisory lock from before its first event until its
//! commit ([`hold_feed_for_write`]), and a read takes the same lock exclusively before reading:
//! the writers it waits for commit first, and the ones that start after it take later `seq`s.
//! Writes of events are rare (key changes, alerts); a read holds the lock for one indexed query.

use async_trait::async_trait;
use diesel::dsl::max;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use keys_domain::KeyHash;
use keys_domain::ports::{ChangePosition, KeyChangeFeed, KeyChanges, StoreError};

use crate::connection::AnyConnection;
use crate::failure::Failure;
use crate::schema::{api_keys, key_events};
use crate::store::DbStore;

/// The advisory lock's key ("jtkf"), apart from any other advisory lock of this database.
const FEED_LOCK: i64 = 0x6A74_6B66;

/// How long a read waits for writers of events before it gives up (and is retried): a cache
/// that cannot read the feed stops trusting itself, it does not wait.
const READ_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '500ms'";

/// Called by every transaction that writes key events, before the first one. PostgreSQL only;
/// released at commit or rollback.
pub(crate) fn hold_feed_for_write(conn: &mut AnyConnection) -> QueryResult<()> {
    if let AnyConnection::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind::<BigInt, _>(FEED_LOCK)
            .execute(pg)?;
    }
    Ok(())
}

/// Starts a read of the feed, on the caller's transaction: waits for the writers in flight.
fn hold_feed_for_read(conn: &mut AnyConnection) -> QueryResult<()> {
    if let AnyConnection::Postgres(pg) = conn {
        diesel::sql_query(READ_LOCK_TIMEOUT).execute(pg)?;
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(FEED_LOCK)
            .execute(pg)?;
    }
    Ok(())
}

#[async_trait]
impl KeyChangeFeed for DbStore {
    async fn head(&self) -> Result<ChangePosition, StoreError> {
        self.run(|conn| {
            conn.transaction(|conn| {
                hold_feed_for_read(conn)?;
                let newest: Option<i64> =
                    key_events::table.select(max(key_events::seq)).first(conn)?;
                Ok(ChangePosition(newest.unwrap_or(0)))
            })
        })
        .await
    }

    async fn changed_after(
        &self,
        after: ChangePosition,
        limit: u32,
    ) -> Result<KeyChanges, StoreError> {
        self.run(move |conn| {
            let rows: Vec<(i64, Vec<u8>)> = conn.transaction(|conn| {
                hold_feed_for_read(conn)?;
                key_events::table
                    .inner_join(api_keys::table.on(api_keys::id.eq(key_events::key_id)))
                    .filter(key_events::seq.gt(after.0))
                    .order(key_events::seq)
                    .limit(i64::from(limit))
                    .select((key_events::seq, api_keys::key_hash))
                    .load(conn)
            })?;
            let mut changes = KeyChanges {
                keys: Vec::with_capacity(rows.len()),
                last: after,
            };
            for (seq, hash) in rows {
                let hash = KeyHash::from_slice(&hash).ok_or_else(|| {
                    Failure::Store(StoreError::Internal(format!(
                        "key event {seq}: stored key hash of {} bytes",
                        hash.len()
                    )))
                })?;
                changes.keys.push(hash);
                changes.last = ChangePosition(seq);
            }
            Ok(changes)
        })
        .await
    }
}
