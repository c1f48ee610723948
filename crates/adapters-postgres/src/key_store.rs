//! [`KeyStore`] on the shared schema.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use keys_domain::api_key::{ApiKey, KeyLimits, NewApiKey};
use keys_domain::hourly_usage::hour_start;
use keys_domain::monthly_spend::SpendMonth;
use keys_domain::ports::{
    InsertKeyError, KeyListQuery, KeyStore, KeyUpdate, RotateKeyStoreError, Rotation, StateChange,
    StoreError, UpdateKeyStoreError,
};
use keys_domain::usage::UsageDelta;
use keys_domain::{
    Actor, Credits, EventDetail, KeyEvent, KeyHash, KeyId, KeyState, ListError, Page,
    RevocationReason, Timestamp, UserId,
};

use crate::alert_outbox::insert_email;
use crate::cached_statements::AddKeyUsage;
use crate::connection::AnyConnection;
use crate::failure::{Failure, UniqueIndex};
use crate::key_client_store::write_clients;
use crate::key_controls_columns::control_columns;
use crate::key_events::write_events;
use crate::key_row::{EXPIRING, KeyRow, REVOKED, state_columns};
use crate::pages::key_page;
use crate::schema::{api_keys, key_monthly_spend};
use crate::store::DbStore;
use crate::usage_history::add_to_hour;
use crate::user_lock::lock_user;

/// The partial unique index on a user's live key names (see the `api_keys` migration).
const LIVE_NAME_INDEX: UniqueIndex = UniqueIndex {
    name: "api_keys_live_name",
    columns: "api_keys.user_id, api_keys.name",
};

/// Locks one key row (the user's) and reads it; `None` when it is not the user's.
///
/// On PostgreSQL `FOR UPDATE`, the one row lock that excludes a ledger batch's `FOR KEY SHARE`
/// on the paying keys: a batch then either sees this change or makes it wait for its commit,
/// while the usage flush's updates (`FOR NO KEY UPDATE`) and the batches never wait on each
/// other. Every change of a key's state goes through here.
fn lock_key(
    conn: &mut AnyConnection,
    user: &str,
    id: &str,
) -> Result<Option<KeyRow>, diesel::result::Error> {
    let mine = api_keys::table
        .filter(api_keys::id.eq(id))
        .filter(api_keys::user_id.eq(user));
    match conn {
        AnyConnection::Postgres(pg) => mine
            .select(KeyRow::as_select())
            .for_update()
            .first(pg)
            .optional(),
        // SQLite: a write takes the database's write lock (held already, after `lock_user`).
        AnyConnection::Sqlite(_) => {
            let n = diesel::update(mine)
                .set(api_keys::status.eq(api_keys::status))
                .execute(conn)?;
            if n == 0 {
                return Ok(None);
            }
            mine.select(KeyRow::as_select()).first(conn).optional()
        }
    }
}

/// Writes `to` over the key's state columns, and `reason` when given.
fn write_state(
    conn: &mut AnyConnection,
    id: &str,
    to: KeyState,
    reason: Option<RevocationReason>,
) -> QueryResult<()> {
    let (status, revoked_at, revokes_at) = state_columns(to);
    let row = api_keys::table.find(id);
    let columns = (
        api_keys::status.eq(status),
        api_keys::revoked_at.eq(revoked_at),
        api_keys::revokes_at.eq(revokes_at),
    );
    match reason {
        Some(reason) => diesel::update(row)
            .set((columns, api_keys::revocation_reason.eq(reason.as_str())))
            .execute(conn)?,
        None => diesel::update(row).set(columns).execute(conn)?,
    };
    Ok(())
}

/// The body of [`KeyStore::insert`], inside a transaction whose user row is already locked:
/// settle expired `expiring` keys, check name and limit, insert.
fn insert_locked(
    conn: &mut AnyConnection,
    key: NewApiKey,
    limits: KeyLimits,
    now: Timestamp,
) -> Result<ApiKey, Failure<InsertKeyError>> {
    let user = key.user_id.as_str();
    // An expiring key past its revokes_at is revoked; make the rows say so before counting, and
    // record when it stopped working (its grace period's end, by the service itself).
    let expired = api_keys::table
        .filter(api_keys::user_id.eq(user))
        .filter(api_keys::status.eq(EXPIRING))
        .filter(api_keys::revokes_at.le(now.as_millis()));
    let ended: Vec<(String, Option<i64>)> = expired
        .select((api_keys::id, api_keys::revokes_at))
        .load(conn)?;
    let settled: Vec<KeyEvent> = ended
        .into_iter()
        .map(|(id, at)| KeyEvent {
            key_id: KeyId::new(id),
            actor: Actor::System,
            at: Timestamp::from_millis(at.unwrap_or_else(|| now.as_millis())),
            detail: EventDetail::Revoked {
                reason: RevocationReason::Rotation,
            },
        })
        .collect();
    write_events(conn, &settled)?;
    diesel::update(expired)
        .set((
            api_keys::status.eq(REVOKED),
            api_keys::revoked_at.eq(api_keys::revokes_at),
            api_keys::revokes_at.eq(None::<i64>),
        ))
        .execute(conn)?;

    let live = api_keys::table
        .filter(api_keys::user_id.eq(user))
        .filter(api_keys::status.ne(REVOKED));
    let same_name: i64 = live
        .filter(api_keys::name.eq(key.name.as_str()))
        .count()
        .get_result(conn)?;
    if same_name > 0 {
        return Err(Failure::Port(InsertKeyError::DuplicateName));
    }
    let live_count: i64 = live.count().get_result(conn)?;
    if live_count >= i64::from(limits.max_live_keys) {
        return Err(Failure::Port(InsertKeyError::TooManyKeys));
    }

    let (status, revoked_at, revokes_at) = state_columns(KeyState::Active);
    let (expires_at, networks, limit, scopes) = control_columns(&key.controls);
    let inserted = diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(key.id.as_str()),
            api_keys::user_id.eq(user),
            api_keys::name.eq(key.name.as_str()),
            api_keys::preview.eq(key.preview.as_str()),
            api_keys::key_hash.eq(key.hash.as_bytes().as_slice()),
            api_keys::status.eq(status),
            api_keys::revoked_at.eq(revoked_at),
            api_keys::revokes_at.eq(revokes_at),
            api_keys::created_at.eq(key.created_at.as_millis()),
            api_keys::usage_count.eq(0_i64),
            api_keys::expires_at.eq(expires_at),
            api_keys::allowed_networks.eq(networks),
            api_keys::monthly_credit_limit.eq(limit),
            api_keys::scopes.eq(scopes),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(key.into_key()),
        // The partial unique index backs the check above.
        Err(e) if LIVE_NAME_INDEX.is_violated_by(&e) => {
            Err(Failure::Port(InsertKeyError::DuplicateName))
        }
        Err(e) => Err(e.into()),
    }
}

/// When a change's email is queued: the time of its events (the use case's clock), else the
/// time its new state names.
fn key_now(change: &StateChange) -> Timestamp {
    change.events.first().map_or(
        match change.to {
            KeyState::Revoked { revoked_at } => revoked_at,
            KeyState::Expiring { revokes_at } => revokes_at,
            KeyState::Active => Timestamp::from_millis(0),
        },
        |e| e.at,
    )
}

#[async_trait]
impl KeyStore for DbStore {
    async fn insert(
        &self,
        key: NewApiKey,
        limits: KeyLimits,
        now: Timestamp,
    ) -> Result<ApiKey, InsertKeyError> {
        let created = KeyEvent::created(&key);
        self.run(move |conn| {
            conn.transaction(|conn| {
                if !lock_user(conn, key.user_id.as_str())? {
                    return Err(Failure::Port(InsertKeyError::UnknownUser));
                }
                let key = insert_locked(conn, key, limits, now)?;
                write_events(conn, &[created])?;
                Ok(key)
            })
        })
        .await
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        let hash = *hash;
        self.run(move |conn| {
            let row = api_keys::table
                .filter(api_keys::key_hash.eq(hash.as_bytes().as_slice()))
                .select(KeyRow::as_select())
                .first(conn)
                .optional()?;
            Ok(row.map(KeyRow::into_key).transpose()?)
        })
        .await
    }

    async fn find(&self, user: &UserId, id: &KeyId) -> Result<Option<ApiKey>, StoreError> {
        let (user, id) = (user.clone(), id.clone());
        self.run(move |conn| {
            let row = api_keys::table
                .filter(api_keys::id.eq(id.as_str()))
                .filter(api_keys::user_id.eq(user.as_str()))
                .select(KeyRow::as_select())
                .first(conn)
                .optional()?;
            Ok(row.map(KeyRow::into_key).transpose()?)
        })
        .await
    }

    async fn list(
        &self,
        user: &UserId,
        query: &KeyListQuery,
        now: Timestamp,
    ) -> Result<Page<ApiKey>, ListError> {
        let (user, query) = (user.clone(), query.clone());
        self.run(move |conn| {
            let rows = key_page(conn, &user, &query, now)?;
            Ok(rows.try_map(KeyRow::into_key)?)
        })
        .await
    }

    async fn transition(
        &self,
        user: &UserId,
        id: &KeyId,
        change: StateChange,
    ) -> Result<Option<ApiKey>, StoreError> {
        let (user, id) = (user.clone(), id.clone());
        self.run(move |conn| {
            conn.transaction(|conn| {
                // Lock, compare, write: the row lock makes the compare-and-set atomic, so of two
                // concurrent changes from one state only one writes its events and email.
                let Some(row) = lock_key(conn, user.as_str(), id.as_str())? else {
                    return Ok(None);
                };
                let mut key = row.into_key()?;
                if key.state == change.expected {
                    write_state(conn, id.as_str(), change.to, change.reason)?;
                    write_events(conn, &change.events)?;
                    if let Some(queued) = &change.email {
                        insert_email(conn, &queued.id, &id, &queued.email, key_now(&change))?;
                    }
                    key.state = change.to;
                    key.revocation_reason = change.reason.or(key.revocation_reason);
                }
                Ok(Some(key))
            })
        })
        .await
    }

    async fn rotate(
        &self,
        user: &UserId,
        rotation: Rotation,
    ) -> Result<ApiKey, RotateKeyStoreError> {
        let user = user.clone();
        self.run(move |conn| {
            conn.transaction(|conn| {
                // User first, then key: the same order as insert, so no lock cycle.
                if !lock_user(conn, user.as_str())? {
                    return Err(Failure::Port(RotateKeyStoreError::NotFound));
                }
                let Some(old) = lock_key(conn, user.as_str(), rotation.old_id.as_str())? else {
                    return Err(Failure::Port(RotateKeyStoreError::NotFound));
                };
                if old.state()? != rotation.expected {
                    return Err(Failure::Port(RotateKeyStoreError::StateChanged));
                }
                write_state(
                    conn,
                    rotation.old_id.as_str(),
                    rotation.old_to,
                    Some(RevocationReason::Rotation),
                )?;
                let events = rotation.events();
                let mut new_key = rotation.new_key;
                new_key.user_id = user;
                let key = insert_locked(conn, new_key, rotation.limits, rotation.now).map_err(
                    |f| match f {
                        Failure::Port(e) => Failure::Port(RotateKeyStoreError::Insert(e)),
                        Failure::Db(e) => Failure::Db(e),
                        Failure::Store(e) => Failure::Store(e),
                    },
                )?;
                write_events(conn, &events)?;
                Ok(key)
            })
        })
        .await
    }

    async fn update(
        &self,
        user: &UserId,
        id: &KeyId,
        update: KeyUpdate,
    ) -> Result<Option<ApiKey>, UpdateKeyStoreError> {
        let (user, id) = (user.clone(), id.clone());
        self.run(move |conn| {
            conn.transaction(|conn| {
                // User first, then key: the order of insert and rotate, so no lock cycle.
                if !lock_user(conn, user.as_str())? {
                    return Ok(None);
                }
                let Some(row) = lock_key(conn, user.as_str(), id.as_str())? else {
                    return Ok(None);
                };
                let mut key = row.into_key()?;
                if key.controls.monthly_credit_limit.is_none()
                    && update.controls.monthly_credit_limit.is_some()
                {
                    // Spend counts while a limit is set: a new limit starts from zero.
                    diesel::delete(
                        key_monthly_spend::table.filter(key_monthly_spend::key_id.eq(id.as_str())),
                    )
                    .execute(conn)?;
                }
                let (expires_at, networks, limit, scopes) = control_columns(&update.controls);
                let name = update
                    .name
                    .as_ref()
                    .unwrap_or(&key.name)
                    .as_str()
                    .to_owned();
                let written = diesel::update(api_keys::table.find(id.as_str()))
                    .set((
                        api_keys::name.eq(&name),
                        api_keys::expires_at.eq(expires_at),
                        api_keys::allowed_networks.eq(networks),
                        api_keys::monthly_credit_limit.eq(limit),
                        api_keys::scopes.eq(scopes),
                        // A new expiry gets its own reminders.
                        api_keys::expiry_reminded_days.eq(None::<i32>),
                    ))
                    .execute(conn);
                match written {
                    Ok(_) => {}
                    Err(e) if LIVE_NAME_INDEX.is_violated_by(&e) => {
                        return Err(Failure::Port(UpdateKeyStoreError::DuplicateName));
                    }
                    Err(e) => return Err(e.into()),
                }
                write_events(conn, &[update.event])?;
                if let Some(name) = update.name {
                    key.name = name;
                }
                key.controls = update.controls;
                Ok(Some(key))
            })
        })
        .await
    }

    async fn spent_in(&self, id: &KeyId, month: SpendMonth) -> Result<Credits, StoreError> {
        let id = id.clone();
        self.run(move |conn| {
            let spent: Option<i64> = key_monthly_spend::table
                .find((id.as_str(), month.start().as_millis()))
                .select(key_monthly_spend::spent)
                .first(conn)
                .optional()?;
            Ok(spent.map_or(Credits::ZERO, Credits::from_stored))
        })
        .await
    }

    async fn record_usage(&self, batch: &[UsageDelta]) -> Result<(), StoreError> {
        let mut batch = batch.to_vec();
        // One lock order for every batch, so two instances' flushes cannot deadlock.
        batch.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        self.run_write(move |conn| {
            Ok(conn.transaction(|conn| {
                match conn {
                    AnyConnection::Postgres(pg) => record_usage_postgres(pg, &batch)?,
                    AnyConnection::Sqlite(_) => record_usage_rows(conn, &batch)?,
                }
                write_clients(conn, &batch)
            })?)
        })
        .await
    }
}

/// Usage counts stop at 2^53 − 1, the largest integer a JSON reader keeps exact: a count past
/// i64 would fail its flush, and every later one, on PostgreSQL.
const MAX_USAGE_COUNT: u64 = (1 << 53) - 1;

/// A batch's count as stored: at most [`MAX_USAGE_COUNT`], which the statements also bound.
fn stored_count(count: u64) -> i64 {
    i64::try_from(count.min(MAX_USAGE_COUNT)).unwrap_or(i64::MAX)
}

/// One key at a time: on SQLite each statement is a function call, not a round trip.
fn record_usage_rows(conn: &mut AnyConnection, batch: &[UsageDelta]) -> QueryResult<()> {
    for delta in batch {
        let count = stored_count(delta.count);
        AddKeyUsage {
            key: delta.key_id.as_str(),
            count,
            at: delta.last_used_at.as_millis(),
        }
        .execute(conn)?;
        // The chart's hourly count, in the same transaction as usage_count. A batch spans at
        // most one flush interval, so its requests are counted in the hour of its last one.
        add_to_hour(
            conn,
            delta.key_id.as_str(),
            hour_start(delta.last_used_at).as_millis(),
            count,
        )?;
    }
    Ok(())
}

/// The whole batch in two statements over arrays: per key, two round trips would hold every key
/// row of the flush for the whole transaction. `batch` is in key order; deltas of one key are summed first (a key may appear
/// once only in an `ON CONFLICT DO UPDATE`). PostgreSQL's `GREATEST` skips a NULL
/// `last_used_at`.
fn record_usage_postgres(pg: &mut diesel::PgConnection, batch: &[UsageDelta]) -> QueryResult<()> {
    use diesel::sql_types::{Array, Text};
    let mut ids: Vec<&str> = Vec::with_capacity(batch.len());
    let (mut counts, mut ats, mut hours) = (Vec::new(), Vec::new(), Vec::new());
    for d in batch {
        let count = stored_count(d.count);
        let at = d.last_used_at.as_millis();
        if ids.last() == Some(&d.key_id.as_str()) {
            if let (Some(c), Some(a), Some(h)) =
                (counts.last_mut(), ats.last_mut(), hours.last_mut())
            {
                *c = count.saturating_add(*c);
                if at > *a {
                    *a = at;
                    *h = hour_start(d.last_used_at).as_millis();
                }
            }
            continue;
        }
        ids.push(d.key_id.as_str());
        counts.push(count);
        ats.push(at);
        hours.push(hour_start(d.last_used_at).as_millis());
    }
    // As `AddKeyUsage`: the count stops at 2^53 − 1.
    diesel::sql_query(
        "UPDATE api_keys AS k \
         SET usage_count = CASE WHEN k.usage_count > 9007199254740991 - d.count \
         THEN 9007199254740991 ELSE k.usage_count + d.count END, \
         last_used_at = GREATEST(k.last_used_at, d.at) \
         FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS d(id, count, at) \
         WHERE k.id = d.id",
    )
    .bind::<Array<Text>, _>(&ids)
    .bind::<Array<BigInt>, _>(&counts)
    .bind::<Array<BigInt>, _>(&ats)
    .execute(pg)?;
    diesel::sql_query(
        "INSERT INTO key_usage_hours (key_id, hour_start, count) \
         SELECT id, hour, count FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS d(id, hour, count) \
         ON CONFLICT (key_id, hour_start) DO UPDATE SET count = \
         CASE WHEN key_usage_hours.count > 9007199254740991 - EXCLUDED.count \
         THEN 9007199254740991 ELSE key_usage_hours.count + EXCLUDED.count END",
    )
    .bind::<Array<Text>, _>(&ids)
    .bind::<Array<BigInt>, _>(&hours)
    .bind::<Array<BigInt>, _>(&counts)
    .execute(pg)?;
    Ok(())
}
