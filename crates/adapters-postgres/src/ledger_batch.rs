//! The ledger writer's transaction: one batch of charges, applied all or nothing.
//!
//! The locked way: lock each payer's row once (sorted by id, so two instances' batches never
//! deadlock), read the paying keys (on PostgreSQL with `FOR KEY SHARE`, so a revocation
//! committing meanwhile either is seen or waits for this batch), let the pure planner decide
//! every charge in arrival order, then write each changed balance once and the ledger rows,
//! documents and ownership rows (on PostgreSQL all in one statement, see
//! [`crate::batch_write_postgres`]; on SQLite with cached statements), and commit. The caller
//! answers only after the commit.
//!
//! On PostgreSQL a batch whose payers and keys its lane remembers ([`LastSeen`]) is first
//! planned from that memory and written by one conditional statement
//! ([`crate::confirmed_write_postgres`]), which writes only if the rows still hold what was
//! remembered; otherwise it changes nothing and the batch goes the locked way.

use std::collections::{HashMap, HashSet};

use diesel::PgConnection;
use diesel::prelude::*;
use keys_domain::charge_batch::{self, Account, BatchPlan};
use keys_domain::monthly_spend::SpendMonth;
use keys_domain::ports::{Charge, ChargeOutcome, StoreError};
use keys_domain::{Credits, KeyId, TemplateId, Timestamp, UserId};

use crate::batch_write_postgres::BatchWrite;
use crate::cached_statements::{LockUser, SetBalance};
use crate::confirmed_write_postgres::ConfirmedWrite;
use crate::connection::AnyConnection;
use crate::failure::Failure;
use crate::last_seen::{KeyRead, LastSeen, controlled_snapshots};
use crate::schema::{
    api_keys, credit_ledger, documents, key_monthly_spend, template_ownership, users,
};

/// What a committed batch answers, and the balances it wrote (for the balance cache).
pub(crate) struct Applied {
    pub outcomes: Vec<ChargeOutcome>,
    pub balances: Vec<(UserId, Credits)>,
    /// Whether it was written as planned from memory (one round trip), not the locked way.
    pub confirmed: bool,
}

/// How often a batch is attempted when PostgreSQL rolls it back as a deadlock victim or a
/// serialization failure: such a rollback is certain, so trying again cannot apply anything
/// twice (unlike a connection lost around COMMIT, which is never retried here).
const ATTEMPTS: usize = 3;

/// Applies `charges` in one transaction on `conn`; `seen` is the lane's memory, updated with
/// what the batch found and wrote, and cleared of the batch's users and keys when it fails.
pub(crate) fn apply(
    conn: &mut AnyConnection,
    charges: &[Charge],
    seen: &mut LastSeen,
) -> Result<Applied, Failure<StoreError>> {
    let applied = apply_with_retries(conn, charges, seen);
    if applied.is_err() {
        seen.forget(charges);
    }
    applied
}

fn apply_with_retries(
    conn: &mut AnyConnection,
    charges: &[Charge],
    seen: &mut LastSeen,
) -> Result<Applied, Failure<StoreError>> {
    for _ in 1..ATTEMPTS {
        match attempt(conn, charges, seen) {
            Err(Failure::Db(e)) if rolled_back_for_retry(&e) => {
                tracing::warn!(error = %e, "ledger batch rolled back by the database; retrying");
            }
            done => return done,
        }
    }
    attempt(conn, charges, seen)
}

fn rolled_back_for_retry(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

fn attempt(
    conn: &mut AnyConnection,
    charges: &[Charge],
    seen: &mut LastSeen,
) -> Result<Applied, Failure<StoreError>> {
    if let AnyConnection::Postgres(pg) = conn {
        if let Some(applied) = confirmed(pg, charges, seen)? {
            return Ok(applied);
        }
    }
    locked(conn, charges, seen)
}

/// The batch planned from the lane's memory and written on condition (PostgreSQL); `None`
/// when the memory lacks a payer or key, the batch buys a template, or the rows changed since:
/// in all three cases nothing was written.
fn confirmed(
    pg: &mut PgConnection,
    charges: &[Charge],
    seen: &mut LastSeen,
) -> Result<Option<Applied>, Failure<StoreError>> {
    if !charge_batch::purchasers(charges).is_empty() {
        return Ok(None);
    }
    let payers = charge_batch::payers(charges);
    let Some(expected) = seen.expected(&payers, &charge_batch::keys(charges), batch_month(charges))
    else {
        return Ok(None);
    };
    let plan = charge_batch::plan(charges, expected.accounts(), &expected.key_snapshots()?);
    let Some(write) = ConfirmedWrite::of(&expected, &plan) else {
        return Ok(None);
    };
    if write.execute(pg)? == 0 {
        return Ok(None);
    }
    for (user, balance) in &plan.balances {
        seen.balance(user, *balance);
    }
    for (key, month, spent) in &plan.key_spend {
        seen.spent(key, *month, *spent);
    }
    Ok(Some(Applied {
        outcomes: plan.outcomes,
        balances: plan.balances,
        confirmed: true,
    }))
}

/// The month a batch's limited keys spend in: that of its first charge (a batch spans
/// milliseconds; one that straddles midnight of a month's end counts in the earlier month).
fn batch_month(charges: &[Charge]) -> SpendMonth {
    SpendMonth::of(charges.first().map_or(Timestamp::from_millis(0), |c| c.at))
}

/// The locked way: one transaction that reads the payers and keys under lock.
fn locked(
    conn: &mut AnyConnection,
    charges: &[Charge],
    seen: &mut LastSeen,
) -> Result<Applied, Failure<StoreError>> {
    let remember = matches!(conn, AnyConnection::Postgres(_));
    conn.transaction(|conn| {
        let payers = charge_batch::payers(charges);
        let mut accounts = lock_accounts(conn, &payers)?;
        let purchasers = charge_batch::purchasers(charges);
        if !purchasers.is_empty() {
            read_ownership(conn, &purchasers, &mut accounts)?;
        }
        let keys = read_keys(conn, &charge_batch::keys(charges))?;
        let month = batch_month(charges);
        let spent = read_spend(conn, &keys, month)?;
        let found: Vec<(UserId, Credits)> = if remember {
            accounts
                .iter()
                .map(|(u, a)| (u.clone(), a.balance))
                .collect()
        } else {
            Vec::new()
        };
        let snapshots = controlled_snapshots(keys.iter(), month, &spent)?;
        let plan = charge_batch::plan(charges, accounts, &snapshots);
        write(conn, &plan)?;
        write_spend(conn, &plan.key_spend)?;
        if remember {
            // Remembered before COMMIT; a failed COMMIT makes `apply` forget the batch.
            for (user, balance) in found.iter().chain(&plan.balances) {
                seen.balance(user, *balance);
            }
            // A limited key's spend is remembered only where its row exists after the batch
            // (read, or written by it): the conditional write updates, and checks, that row.
            for (id, spent) in &spent {
                seen.spent(id, month, Credits::from_stored(*spent));
            }
            for (id, month, spent) in &plan.key_spend {
                seen.spent(id, *month, *spent);
            }
            for (id, read) in keys {
                seen.key(id, read);
            }
        }
        Ok(Applied {
            outcomes: plan.outcomes,
            balances: plan.balances,
            confirmed: false,
        })
    })
}

/// Locks the payers' rows and reads their balances; a missing user is absent from the map.
fn lock_accounts(
    conn: &mut AnyConnection,
    payers: &[UserId],
) -> QueryResult<HashMap<UserId, Account>> {
    let rows: Vec<(String, i64)> = match conn {
        // Row locks in id order: the one thing that serialises batches across instances.
        // `FOR NO KEY UPDATE`, the lock the balance update takes anyway: it excludes other
        // batches but not the foreign-key checks (`FOR KEY SHARE`) of a transaction writing a
        // row that references the user (the usage flusher updating a key), which would
        // otherwise wait on us while we wait on its key row: a deadlock.
        // A batch of one payer (every batch of a hot user) by `id = $1`: PostgreSQL plans
        // `id = ANY($1)` anew at every execution (a custom plan, 0.15 ms at bind), but settles
        // on a generic plan for `id = $1`.
        AnyConnection::Postgres(pg) => match payers {
            [one] => users::table
                .find(one.as_str())
                .select((users::id, users::balance))
                .for_no_key_update()
                .load(pg)?,
            _ => {
                let ids: Vec<&str> = payers.iter().map(UserId::as_str).collect();
                users::table
                    .filter(users::id.eq_any(&ids))
                    .order(users::id)
                    .select((users::id, users::balance))
                    .for_no_key_update()
                    .load(pg)?
            }
        },
        // One statement per payer rather than one `IN (…)` per batch: its text is the same
        // whatever the batch, so SQLite prepares it once per connection (diesel's statement
        // cache); a list's text changes with its length and was prepared anew for every batch.
        AnyConnection::Sqlite(lite) => {
            let mut rows = Vec::with_capacity(payers.len());
            for (i, id) in payers.iter().enumerate() {
                // A write as the first statement takes SQLite's write lock at once (see
                // `lock_user`): the whole batch then runs alone, and no read lock ever has to
                // be upgraded.
                if i == 0 {
                    LockUser { user: id.as_str() }.execute(lite)?;
                }
                let balance = users::table
                    .find(id.as_str())
                    .select(users::balance)
                    .get_result::<i64>(lite)
                    .optional()?;
                if let Some(balance) = balance {
                    rows.push((id.as_str().to_owned(), balance));
                }
            }
            rows
        }
    };
    Ok(rows
        .into_iter()
        .map(|(id, balance)| {
            let account = Account {
                balance: Credits::from_stored(balance),
                owned: HashSet::new(),
            };
            (UserId::new(id), account)
        })
        .collect())
}

fn read_ownership(
    conn: &mut AnyConnection,
    purchasers: &[UserId],
    accounts: &mut HashMap<UserId, Account>,
) -> QueryResult<()> {
    let ids: Vec<&str> = purchasers.iter().map(UserId::as_str).collect();
    let rows: Vec<(String, String)> = template_ownership::table
        .filter(template_ownership::user_id.eq_any(&ids))
        .select((template_ownership::user_id, template_ownership::template_id))
        .load(conn)?;
    for (user, template) in rows {
        if let Some(account) = accounts.get_mut(&UserId::new(user)) {
            account.owned.insert(TemplateId::new(template));
        }
    }
    Ok(())
}

type KeyRow = (
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// The paying keys' stored columns as of now. On PostgreSQL `FOR KEY SHARE` waits for a change
/// of a key's state in flight (it holds the key row `FOR UPDATE`, see `key_store::lock_key`)
/// and makes one that starts later wait for this batch's commit; unlike `FOR SHARE` it neither
/// waits for nor holds up the usage flush, whose updates of the same rows change no key column.
fn read_keys(conn: &mut AnyConnection, keys: &[KeyId]) -> QueryResult<HashMap<KeyId, KeyRead>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let columns = (
        api_keys::id,
        api_keys::user_id,
        api_keys::status,
        api_keys::revoked_at,
        api_keys::revokes_at,
        api_keys::expires_at,
        api_keys::monthly_credit_limit,
    );
    let rows: Vec<KeyRow> = match conn {
        // One key by `id = $1`, as in `lock_accounts`.
        AnyConnection::Postgres(pg) => match keys {
            [one] => api_keys::table
                .find(one.as_str())
                .select(columns)
                .for_key_share()
                .load(pg)?,
            _ => {
                let ids: Vec<&str> = keys.iter().map(KeyId::as_str).collect();
                api_keys::table
                    .filter(api_keys::id.eq_any(&ids))
                    .order(api_keys::id)
                    .select(columns)
                    .for_key_share()
                    .load(pg)?
            }
        },
        // One cached statement per key, as in `lock_accounts`.
        AnyConnection::Sqlite(lite) => {
            let mut rows = Vec::with_capacity(keys.len());
            for id in keys {
                let row = api_keys::table
                    .find(id.as_str())
                    .select(columns)
                    .get_result::<KeyRow>(lite)
                    .optional()?;
                rows.extend(row);
            }
            rows
        }
    };
    Ok(rows
        .into_iter()
        .map(
            |(id, user, status, revoked_at, revokes_at, expires_at, limit)| {
                let read = KeyRead {
                    columns: (user, status, revoked_at, revokes_at),
                    expires_at,
                    monthly_credit_limit: limit,
                };
                (KeyId::new(id), read)
            },
        )
        .collect())
}

/// What the keys with a monthly limit spent in `month`, read under the payer's lock (every
/// batch of a key locks its user first, so nothing else writes these rows meanwhile).
fn read_spend(
    conn: &mut AnyConnection,
    keys: &HashMap<KeyId, KeyRead>,
    month: SpendMonth,
) -> QueryResult<HashMap<KeyId, i64>> {
    let limited: Vec<&str> = keys
        .iter()
        .filter(|(_, k)| k.monthly_credit_limit.is_some())
        .map(|(id, _)| id.as_str())
        .collect();
    if limited.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64)> = key_monthly_spend::table
        .filter(key_monthly_spend::key_id.eq_any(&limited))
        .filter(key_monthly_spend::month.eq(month.start().as_millis()))
        .select((key_monthly_spend::key_id, key_monthly_spend::spent))
        .load(conn)?;
    Ok(rows.into_iter().map(|(k, s)| (KeyId::new(k), s)).collect())
}

/// Writes the limited keys' spend after the batch (absolute values: see [`read_spend`]). The
/// upsert is spelled the same on both backends.
fn write_spend(
    conn: &mut AnyConnection,
    spend: &[(KeyId, SpendMonth, Credits)],
) -> QueryResult<()> {
    use diesel::sql_types::{BigInt, Text};
    for (key, month, spent) in spend {
        diesel::sql_query(
            "INSERT INTO key_monthly_spend (key_id, month, spent) VALUES ($1, $2, $3) \
             ON CONFLICT (key_id, month) DO UPDATE SET spent = excluded.spent",
        )
        .bind::<Text, _>(key.as_str())
        .bind::<BigInt, _>(month.start().as_millis())
        .bind::<BigInt, _>(spent.as_i64())
        .execute(conn)?;
    }
    Ok(())
}

/// Inserts `$rows` (a `Vec` of value tuples) into `$table` on SQLite with multi-row statements
/// of fixed sizes (32, 16, 8, 4, 2, 1 rows: 13 rows are 8 + 4 + 1). A statement over a
/// fixed-size array has a static query id, so diesel prepares each size once per connection;
/// one statement over the whole batch changed its text with the batch's size and was prepared
/// anew for every batch (14 % of the ledger's CPU).
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let mut rest = &$rows[..];
        while !rest.is_empty() {
            rest = insert_largest_chunk!($conn, $table, rest, 32, 16, 8, 4, 2, 1);
        }
    }};
}

/// Inserts the first `N` rows of `$rest`, for the largest listed `N` it holds; the rest.
macro_rules! insert_largest_chunk {
    ($conn:expr, $table:expr, $rest:expr, $($n:literal),+) => {{
        let rest = $rest;
        $(
            if rest.len() >= $n {
                let (chunk, tail) = rest.split_at($n);
                let chunk = <&[_; $n]>::try_from(chunk).map_err(|_| {
                    diesel::result::Error::QueryBuilderError("a ledger chunk of the wrong size".into())
                })?;
                diesel::insert_into($table).values(chunk).execute($conn)?;
                tail
            } else
        )+
        {
            rest
        }
    }};
}

fn write(conn: &mut AnyConnection, plan: &BatchPlan) -> QueryResult<()> {
    match conn {
        AnyConnection::Postgres(pg) => BatchWrite::of(plan).execute(pg).map(drop),
        AnyConnection::Sqlite(lite) => write_sqlite(lite, plan),
    }
}

/// One statement per balance and chunked inserts: in process, SQLite has no round trips to
/// save, and a per-user `UPDATE` is a cached statement (see [`crate::cached_statements`]). The
/// inserted values are owned: a fixed-size insert's static query id needs `'static` binds.
fn write_sqlite(conn: &mut SqliteConnection, plan: &BatchPlan) -> QueryResult<()> {
    for (user, balance) in &plan.balances {
        SetBalance {
            user: user.as_str(),
            balance: balance.as_i64(),
        }
        .execute(conn)?;
    }
    if !plan.ledger.is_empty() {
        let rows: Vec<_> = plan
            .ledger
            .iter()
            .map(|e| {
                (
                    credit_ledger::user_id.eq(e.user_id.as_str().to_owned()),
                    credit_ledger::delta.eq(e.delta),
                    credit_ledger::balance_after.eq(e.balance_after.as_i64()),
                    credit_ledger::reason.eq(e.reason.as_str().to_owned()),
                    credit_ledger::created_at.eq(e.created_at.as_millis()),
                )
            })
            .collect();
        insert_rows!(conn, credit_ledger::table, rows);
    }
    if !plan.documents.is_empty() {
        let rows: Vec<_> = plan
            .documents
            .iter()
            .map(|d| {
                (
                    documents::id.eq(d.id.as_str().to_owned()),
                    documents::user_id.eq(d.user_id.as_str().to_owned()),
                    documents::template_id.eq(d.template_id.as_str().to_owned()),
                    documents::content.eq(d.content.as_str().to_owned()),
                    documents::created_at.eq(d.created_at.as_millis()),
                )
            })
            .collect();
        insert_rows!(conn, documents::table, rows);
    }
    if !plan.ownership.is_empty() {
        let rows: Vec<_> = plan
            .ownership
            .iter()
            .map(|(user, template, at)| {
                (
                    template_ownership::user_id.eq(user.as_str().to_owned()),
                    template_ownership::template_id.eq(template.as_str().to_owned()),
                    template_ownership::acquired_at.eq(at.as_millis()),
                )
            })
            .collect();
        insert_rows!(conn, template_ownership::table, rows);
    }
    Ok(())
}
