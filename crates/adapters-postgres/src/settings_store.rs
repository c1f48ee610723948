//! [`SettingsStore`]: small named values, and the readiness ping.

use async_trait::async_trait;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use keys_domain::ports::{SettingsStore, StoreError};

use crate::on_conflict::OnConflictDoNothing;
use crate::schema::settings;
use crate::store::DbStore;

#[async_trait]
impl SettingsStore for DbStore {
    async fn get_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.run(move |conn| {
            conn.transaction(|conn| {
                // Insert-if-absent first (a write, so SQLite takes its lock up front); a
                // concurrent winner's row makes this a no-op, and the read returns that value.
                OnConflictDoNothing(diesel::insert_into(settings::table).values((
                    settings::name.eq(name.as_str()),
                    settings::value.eq(value.as_str()),
                )))
                .execute(conn)?;
                Ok(settings::table
                    .find(name.as_str())
                    .select(settings::value)
                    .first::<String>(conn)?)
            })
        })
        .await
    }

    async fn get(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_owned();
        self.run(move |conn| {
            Ok(settings::table
                .find(name.as_str())
                .select(settings::value)
                .first::<String>(conn)
                .optional()?)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| Ok(conn.batch_execute("SELECT 1")?)).await
    }
}
