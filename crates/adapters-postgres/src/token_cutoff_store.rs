//! [`TokenCutoffStore`]: the per-user cut-off of dashboard tokens that sign-out raises.

use async_trait::async_trait;
use diesel::prelude::*;
use keys_domain::ports::{StoreError, TokenCutoffStore};
use keys_domain::{Timestamp, UserId};

use crate::on_conflict::OnConflictDoNothing;
use crate::schema::dashboard_token_cutoffs as cutoffs;
use crate::store::DbStore;
use crate::user_lock::lock_user;

#[async_trait]
impl TokenCutoffStore for DbStore {
    async fn tokens_cutoff(&self, user: &UserId) -> Result<Option<Timestamp>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |conn| {
            Ok(cutoffs::table
                .find(user.as_str())
                .select(cutoffs::cutoff)
                .first::<i64>(conn)
                .optional()?
                .map(Timestamp::from_millis))
        })
        .await
    }

    async fn raise_tokens_cutoff(&self, user: &UserId, at: Timestamp) -> Result<bool, StoreError> {
        let user = user.as_str().to_owned();
        self.run_write(move |conn| {
            conn.transaction(|conn| {
                // The user's row lock first, as every write on a user's behalf: on SQLite the
                // transaction's first statement is then a write, so it never has to upgrade a
                // read lock (which fails at once, whatever the busy timeout, when another
                // writer committed meanwhile).
                if !lock_user(conn, user.as_str())? {
                    return Ok(false);
                }
                OnConflictDoNothing(diesel::insert_into(cutoffs::table).values((
                    cutoffs::user_id.eq(user.as_str()),
                    cutoffs::cutoff.eq(at.as_millis()),
                )))
                .execute(conn)?;
                // Never backwards: a sign-out that lost a race keeps the later instant.
                diesel::update(
                    cutoffs::table
                        .filter(cutoffs::user_id.eq(user.as_str()))
                        .filter(cutoffs::cutoff.lt(at.as_millis())),
                )
                .set(cutoffs::cutoff.eq(at.as_millis()))
                .execute(conn)?;
                Ok(true)
            })
        })
        .await
    }
}
