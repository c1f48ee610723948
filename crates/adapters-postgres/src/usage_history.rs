//! [`UsageHistory`]: requests per key per clock hour (written by `record_usage`).

use async_trait::async_trait;
use diesel::prelude::*;
use keys_domain::hourly_usage::HourCount;
use keys_domain::ports::{StoreError, UsageHistory};
use keys_domain::{KeyId, Timestamp};

use crate::cached_statements::AddToHour;
use crate::connection::AnyConnection;
use crate::on_conflict::OnConflictDoNothing;
use crate::schema::key_usage_hours as hours;
use crate::store::DbStore;

#[async_trait]
impl UsageHistory for DbStore {
    async fn hourly_usage(
        &self,
        key: &KeyId,
        from: Timestamp,
    ) -> Result<Vec<HourCount>, StoreError> {
        let key = key.clone();
        self.run(move |conn| {
            let rows: Vec<(i64, i64)> = hours::table
                .filter(hours::key_id.eq(key.as_str()))
                .filter(hours::hour_start.ge(from.as_millis()))
                .order(hours::hour_start.asc())
                .select((hours::hour_start, hours::count))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(start, count)| HourCount {
                    start: Timestamp::from_millis(start),
                    count: u64::try_from(count).unwrap_or(0),
                })
                .collect())
        })
        .await
    }

    async fn sweep_usage_hours(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.run(move |conn| {
            let n = diesel::delete(hours::table.filter(hours::hour_start.lt(before.as_millis())))
                .execute(conn)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}

/// Adds `count` to the key's hour, inside the caller's transaction. Portable upsert: update,
/// else insert; if a concurrent flush inserted the row meanwhile (the insert is a no-op), the
/// update is repeated, now finding it.
pub(crate) fn add_to_hour(
    conn: &mut AnyConnection,
    key: &str,
    hour_start: i64,
    count: i64,
) -> QueryResult<()> {
    let add = AddToHour {
        key,
        hour_start,
        count,
    };
    if add.execute(conn)? == 1 {
        return Ok(());
    }
    let inserted = OnConflictDoNothing(diesel::insert_into(hours::table).values((
        hours::key_id.eq(key),
        hours::hour_start.eq(hour_start),
        hours::count.eq(count),
    )))
    .execute(conn)?;
    if inserted == 0 {
        add.execute(conn)?;
    }
    Ok(())
}
