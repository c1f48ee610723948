//! [`SignInLinkStore`]: one-time sign-in links (hashes only) and their queued emails.

use async_trait::async_trait;
use diesel::prelude::*;
use keys_domain::ports::{LinkEmail, NewSignInLink, SignInLinkStore, StoreError};
use keys_domain::sign_in_link::SignInTokenHash;
use keys_domain::{Timestamp, UserId};

use crate::alert_outbox::KIND_SIGN_IN;
use crate::schema::{email_outbox, sign_in_links};
use crate::store::DbStore;
use crate::user_lock::lock_user;

#[async_trait]
impl SignInLinkStore for DbStore {
    async fn issue(
        &self,
        link: NewSignInLink,
        email: LinkEmail,
        window_start: Timestamp,
        max_in_window: u32,
    ) -> Result<bool, StoreError> {
        self.run(move |conn| {
            conn.transaction(|conn| {
                // The user's row lock serialises concurrent requests for one address, so the
                // count below cannot be read by two of them before either inserts.
                if !lock_user(conn, link.user_id.as_str())? {
                    return Ok(false);
                }
                let recent: i64 = sign_in_links::table
                    .filter(sign_in_links::user_id.eq(link.user_id.as_str()))
                    .filter(sign_in_links::created_at.gt(window_start.as_millis()))
                    .count()
                    .get_result(conn)?;
                if recent >= i64::from(max_in_window) {
                    return Ok(false);
                }
                diesel::insert_into(sign_in_links::table)
                    .values((
                        sign_in_links::id.eq(link.id.as_str()),
                        sign_in_links::user_id.eq(link.user_id.as_str()),
                        sign_in_links::token_hash.eq(link.token_hash.as_bytes().as_slice()),
                        sign_in_links::created_at.eq(link.created_at.as_millis()),
                        sign_in_links::expires_at.eq(link.expires_at.as_millis()),
                    ))
                    .execute(conn)?;
                let now = link.created_at.as_millis();
                diesel::insert_into(email_outbox::table)
                    .values((
                        email_outbox::id.eq(email.id.as_str()),
                        email_outbox::key_id.eq(None::<String>),
                        email_outbox::kind.eq(KIND_SIGN_IN),
                        email_outbox::to_address.eq(email.email.to.as_str()),
                        email_outbox::subject.eq(email.email.subject.as_str()),
                        email_outbox::body.eq(email.email.body.as_str()),
                        email_outbox::attempts.eq(0),
                        email_outbox::next_attempt_at.eq(now),
                        email_outbox::created_at.eq(now),
                    ))
                    .execute(conn)?;
                Ok(true)
            })
        })
        .await
    }

    async fn consume(
        &self,
        token_hash: &SignInTokenHash,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError> {
        let hash = *token_hash.as_bytes();
        let now = now.as_millis();
        self.run(move |conn| {
            conn.transaction(|conn| {
                let link =
                    sign_in_links::table.filter(sign_in_links::token_hash.eq(hash.as_slice()));
                // The conditional write is the consumption: of two concurrent exchanges, the
                // second finds `used_at` set (PostgreSQL re-checks after the first commits;
                // SQLite has one writer) and changes nothing.
                let used = diesel::update(
                    link.filter(sign_in_links::used_at.is_null())
                        .filter(sign_in_links::expires_at.gt(now)),
                )
                .set(sign_in_links::used_at.eq(now))
                .execute(conn)?;
                if used != 1 {
                    return Ok(None);
                }
                Ok(link
                    .select(sign_in_links::user_id)
                    .first::<String>(conn)
                    .optional()?
                    .map(UserId::new))
            })
        })
        .await
    }

    async fn sweep_sign_in_links(&self, created_before: Timestamp) -> Result<u64, StoreError> {
        let before = created_before.as_millis();
        self.run(move |conn| {
            conn.transaction(|conn| {
                diesel::delete(
                    email_outbox::table
                        .filter(email_outbox::kind.eq(KIND_SIGN_IN))
                        .filter(email_outbox::created_at.lt(before)),
                )
                .execute(conn)?;
                let n = diesel::delete(
                    sign_in_links::table.filter(sign_in_links::created_at.lt(before)),
                )
                .execute(conn)?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
        })
        .await
    }
}
