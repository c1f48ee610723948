//! [`AlertOutbox`]: the durable email outbox and the per-key alert cooldown.

use async_trait::async_trait;
use diesel::prelude::*;
use keys_domain::alert_email::OutgoingEmail;
use keys_domain::ports::{AlertOutbox, OutboxBacklog, QueuedEmail, StoreError};
use keys_domain::usage::ALERT_COOLDOWN;
use keys_domain::{AlertId, Email, KeyEvent, KeyId, Timestamp};

use crate::connection::AnyConnection;
use crate::key_events::write_events;
use crate::on_conflict::OnConflictDoNothing;
use crate::schema::{email_outbox, key_alerts};
use crate::store::DbStore;

/// Longest `last_error` kept; SMTP replies can be long and this is for operators only.
const MAX_ERROR_CHARS: usize = 1000;

/// `kind` of an email about a key (a high-usage alert, a leak notice).
pub(crate) const KIND_ALERT: &str = "key_alert";
/// `kind` of a sign-in email row: its body holds a one-time link, blanked once it is done with.
pub(crate) const KIND_SIGN_IN: &str = "sign_in";
/// What a sign-in email's body becomes once sent or abandoned.
const SPENT_SIGN_IN_BODY: &str = "(sign-in link removed after delivery)";

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = email_outbox)]
struct OutboxRow {
    id: String,
    key_id: Option<String>,
    to_address: String,
    subject: String,
    body: String,
    attempts: i32,
}

impl TryFrom<OutboxRow> for QueuedEmail {
    type Error = StoreError;

    /// A negative attempt count (which the table's CHECK already refuses) is a corrupt row, not
    /// a fresh one: counting it as 0 would give an email its permanent rejections back.
    fn try_from(r: OutboxRow) -> Result<Self, StoreError> {
        let attempts = u32::try_from(r.attempts).map_err(|_| {
            StoreError::Internal(format!("outbox email {} has a corrupt attempt count", r.id))
        })?;
        Ok(QueuedEmail {
            id: AlertId::new(r.id),
            key_id: r.key_id.map(KeyId::new),
            email: OutgoingEmail {
                to: Email::from_stored(r.to_address),
                subject: r.subject,
                body: r.body,
            },
            attempts,
        })
    }
}

/// Puts `email` in the outbox, due at once, on the caller's transaction.
pub(crate) fn insert_email(
    conn: &mut AnyConnection,
    id: &AlertId,
    key: &KeyId,
    email: &OutgoingEmail,
    now: Timestamp,
) -> QueryResult<()> {
    diesel::insert_into(email_outbox::table)
        .values((
            email_outbox::id.eq(id.as_str()),
            email_outbox::key_id.eq(Some(key.as_str())),
            email_outbox::kind.eq(KIND_ALERT),
            email_outbox::to_address.eq(email.to.as_str()),
            email_outbox::subject.eq(email.subject.as_str()),
            email_outbox::body.eq(email.body.as_str()),
            email_outbox::attempts.eq(0),
            email_outbox::next_attempt_at.eq(now.as_millis()),
            email_outbox::created_at.eq(now.as_millis()),
        ))
        .execute(conn)?;
    Ok(())
}

#[async_trait]
impl AlertOutbox for DbStore {
    async fn backlog(&self) -> Result<OutboxBacklog, StoreError> {
        self.run(move |conn| {
            let (pending, oldest): (i64, Option<i64>) = email_outbox::table
                .filter(email_outbox::sent_at.is_null())
                .filter(email_outbox::abandoned_at.is_null())
                .select((
                    diesel::dsl::count_star(),
                    diesel::dsl::min(email_outbox::created_at),
                ))
                .first(conn)?;
            Ok(OutboxBacklog {
                pending: u64::try_from(pending).unwrap_or(0),
                oldest: oldest.map(Timestamp::from_millis),
            })
        })
        .await
    }

    async fn enqueue(
        &self,
        id: AlertId,
        key: &KeyId,
        email: OutgoingEmail,
        event: KeyEvent,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = key.clone();
        self.run(move |conn| {
            conn.transaction(|conn| {
                let cutoff = now.minus(ALERT_COOLDOWN).as_millis();
                // Claim the key's cooldown slot with conditional writes only: an UPDATE that
                // matches just when the last alert is old enough, else an insert that is a no-op
                // when any row exists. Concurrent callers serialise on the row (PostgreSQL
                // re-checks the UPDATE's condition after waiting; SQLite has one writer), so
                // exactly one of them stores the email.
                let renewed = diesel::update(
                    key_alerts::table
                        .filter(key_alerts::key_id.eq(key.as_str()))
                        .filter(key_alerts::last_alert_at.le(cutoff)),
                )
                .set(key_alerts::last_alert_at.eq(now.as_millis()))
                .execute(conn)?;
                let claimed = renewed == 1
                    || OnConflictDoNothing(diesel::insert_into(key_alerts::table).values((
                        key_alerts::key_id.eq(key.as_str()),
                        key_alerts::last_alert_at.eq(now.as_millis()),
                    )))
                    .execute(conn)?
                        == 1;
                if !claimed {
                    return Ok(false);
                }
                insert_email(conn, &id, &key, &email, now)?;
                write_events(conn, &[event])?;
                Ok(true)
            })
        })
        .await
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<QueuedEmail>, StoreError> {
        let (now, lease_until) = (now.as_millis(), lease_until.as_millis());
        self.run(move |conn| {
            let claimable = email_outbox::sent_at
                .is_null()
                .and(email_outbox::abandoned_at.is_null())
                .and(
                    email_outbox::locked_until
                        .is_null()
                        .or(email_outbox::locked_until.lt(now)),
                );
            let candidates = email_outbox::table
                .filter(claimable)
                .filter(email_outbox::next_attempt_at.le(now))
                .order((email_outbox::next_attempt_at.asc(), email_outbox::id.asc()))
                .limit(i64::from(limit))
                .select(OutboxRow::as_select())
                .load(conn)?;
            // Each row is claimed by its own conditional update (no transaction around them):
            // when two workers race for a row, the condition fails for the second.
            let mut claimed = Vec::with_capacity(candidates.len());
            for row in candidates {
                let n = diesel::update(
                    email_outbox::table
                        .filter(email_outbox::id.eq(row.id.as_str()))
                        .filter(claimable),
                )
                .set(email_outbox::locked_until.eq(lease_until))
                .execute(conn)?;
                if n == 1 {
                    claimed.push(QueuedEmail::try_from(row)?);
                }
            }
            Ok(claimed)
        })
        .await
    }

    async fn mark_sent(&self, id: &AlertId, now: Timestamp) -> Result<(), StoreError> {
        let id = id.clone();
        self.run(move |conn| {
            conn.transaction(|conn| {
                diesel::update(email_outbox::table.find(id.as_str()))
                    .set((
                        email_outbox::sent_at.eq(now.as_millis()),
                        email_outbox::locked_until.eq(None::<i64>),
                    ))
                    .execute(conn)?;
                blank_sign_in_body(conn, id.as_str())?;
                Ok(())
            })
        })
        .await
    }

    async fn mark_failed(
        &self,
        id: &AlertId,
        attempts: u32,
        retry_at: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        self.record_failed_attempt(id, attempts, error, AfterFailure::RetryAt(retry_at))
            .await
    }

    async fn mark_abandoned(
        &self,
        id: &AlertId,
        attempts: u32,
        now: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        self.record_failed_attempt(id, attempts, error, AfterFailure::AbandonedAt(now))
            .await
    }
}

/// A sign-in email's link is a credential: once the email is done with, its body is blanked so
/// no copy of the link outlives its delivery in the database.
fn blank_sign_in_body(
    conn: &mut crate::connection::AnyConnection,
    id: &str,
) -> Result<(), diesel::result::Error> {
    diesel::update(
        email_outbox::table
            .filter(email_outbox::id.eq(id))
            .filter(email_outbox::kind.eq(KIND_SIGN_IN)),
    )
    .set(email_outbox::body.eq(SPENT_SIGN_IN_BODY))
    .execute(conn)?;
    Ok(())
}

/// What a failed attempt leaves an email waiting for.
enum AfterFailure {
    RetryAt(Timestamp),
    AbandonedAt(Timestamp),
}

impl DbStore {
    /// Releases the claim and records the attempt count and error, then reschedules or abandons.
    async fn record_failed_attempt(
        &self,
        id: &AlertId,
        attempts: u32,
        error: &str,
        after: AfterFailure,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        self.run(move |conn| {
            let row = email_outbox::table.find(id.as_str());
            let attempt = (
                email_outbox::attempts.eq(i32::try_from(attempts).unwrap_or(i32::MAX)),
                email_outbox::locked_until.eq(None::<i64>),
                email_outbox::last_error.eq(error),
            );
            match after {
                AfterFailure::RetryAt(at) => {
                    diesel::update(row)
                        .set((attempt, email_outbox::next_attempt_at.eq(at.as_millis())))
                        .execute(conn)?;
                }
                AfterFailure::AbandonedAt(at) => {
                    diesel::update(row)
                        .set((attempt, email_outbox::abandoned_at.eq(at.as_millis())))
                        .execute(conn)?;
                    blank_sign_in_body(conn, id.as_str())?;
                }
            }
            Ok(())
        })
        .await
    }
}
