//! [`ExpiryReminderStore`]: live keys with an expiry, and each reminder recorded once.

use async_trait::async_trait;
use diesel::prelude::*;
use keys_domain::ports::{ExpiringKey, ExpiryReminderStore, QueuedWithChange, StoreError};
use keys_domain::{Email, KeyEvent, KeyId, KeyName, KeyPreview, KeyStatus, Timestamp};

use crate::alert_outbox::insert_email;
use crate::key_events::write_events;
use crate::schema::{api_keys, users};
use crate::store::DbStore;

type ExpiringRow = (String, String, String, String, i64, Option<i32>);

#[async_trait]
impl ExpiryReminderStore for DbStore {
    async fn expiring_before(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ExpiringKey>, StoreError> {
        self.run(move |conn| {
            let now = now.as_millis();
            // Neither revoked nor past a rotation's grace nor expired; served by the partial
            // index on `expires_at`.
            let rows: Vec<ExpiringRow> = api_keys::table
                .inner_join(users::table)
                .filter(api_keys::expires_at.gt(now))
                .filter(api_keys::expires_at.lt(until.as_millis()))
                .filter(
                    api_keys::status
                        .eq(KeyStatus::Active.as_str())
                        .or(api_keys::status
                            .eq(KeyStatus::Expiring.as_str())
                            .and(api_keys::revokes_at.gt(now))),
                )
                .order(api_keys::expires_at)
                .limit(i64::from(limit))
                .select((
                    api_keys::id,
                    api_keys::name,
                    api_keys::preview,
                    users::email,
                    api_keys::expires_at.assume_not_null(),
                    api_keys::expiry_reminded_days,
                ))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(
                    |(id, name, preview, email, expires_at, reminded)| ExpiringKey {
                        id: KeyId::new(id),
                        name: KeyName::from_stored(name),
                        preview: KeyPreview::from_stored(preview),
                        owner: Email::from_stored(email),
                        expires_at: Timestamp::from_millis(expires_at),
                        reminded: reminded.and_then(|d| u32::try_from(d).ok()),
                    },
                )
                .collect())
        })
        .await
    }

    async fn record_reminder(
        &self,
        key: &KeyId,
        expected: Option<u32>,
        days: u32,
        event: KeyEvent,
        email: QueuedWithChange,
    ) -> Result<bool, StoreError> {
        let key = key.clone();
        let expected = expected.and_then(|d| i32::try_from(d).ok());
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        self.run(move |conn| {
            conn.transaction(|conn| {
                // Compare-and-set on the last reminder: of two instances, one updates the row
                // and the other finds it changed (and waits for, then sees, the first's commit).
                let row = api_keys::table.find(key.as_str());
                let claimed = match expected {
                    None => diesel::update(row.filter(api_keys::expiry_reminded_days.is_null()))
                        .set(api_keys::expiry_reminded_days.eq(days))
                        .execute(conn)?,
                    Some(sent) => {
                        diesel::update(row.filter(api_keys::expiry_reminded_days.eq(sent)))
                            .set(api_keys::expiry_reminded_days.eq(days))
                            .execute(conn)?
                    }
                };
                if claimed == 0 {
                    return Ok(false);
                }
                write_events(conn, std::slice::from_ref(&event))?;
                insert_email(conn, &email.id, &key, &email.email, event.at)?;
                Ok(true)
            })
        })
        .await
    }
}
