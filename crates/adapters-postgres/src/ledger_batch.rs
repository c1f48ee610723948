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
//! On PostgreSQL a batch whose payers and keys the ledger remembers ([`LastSeen`]) is first
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

/// Applies `charges` in one transaction on `conn`; `seen` is the ledger's memory, updated with
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

/// The batch planned from the ledger's memory and written on condition (PostgreSQL); `None`
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
        AnyConnection::Postgres(pg) => {
            let ids: Vec<&str> = payers.iter().map(UserId::as_str).collect();
            users::table
                .filter(users::id.eq_any(&ids))
                .order(users::id)
                .select((users::id, users::balance))
                .for_no_key_update()
                .load(pg)?
        }
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
        AnyConnection::Postgres(pg) => {
            let ids: Vec<&str> = keys.iter().map(KeyId::as_str).collect();
            api_keys::table
                .filter(api_keys::id.eq_any(&ids))
                .order(api_keys::id)
                .select(columns)
                .for_key_share()
                .load(pg)?
        }
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
/// anew for every batch, a large share of the ledger's CPU.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keys_domain::api_key::{KeyLimits, NewApiKey};
    use keys_domain::credits::InsufficientCredits;
    use keys_domain::key_controls::KeyControls;
    use keys_domain::monthly_spend::{KeyLimitReached, MonthlyCreditLimit};
    use keys_domain::ports::{AccountStore, CatalogStore, ChargeKind, KeyStore, StateChange};
    use keys_domain::random::OsRandom;
    use keys_domain::template::Document;
    use keys_domain::{ApiKeySecret, DocumentId, Email, GrantAmount, KeyName, KeyState};

    use super::*;
    use crate::DbStore;
    use crate::testing::{drop_postgres_database, fresh_postgres_url, fresh_sqlite_url};

    /// 2027-01-15T08:00:00Z: the batches charge in January 2027 unless a test says otherwise.
    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);
    /// When the fixtures' users and keys were made: before any charge, December included.
    const CREATED: Timestamp = Timestamp::from_millis(T0.as_millis() - 40 * 86_400_000);

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(T0.as_millis() + ms)
    }

    /// A migrated store on a fresh database, dropped again at the end.
    struct Db {
        store: DbStore,
        url: String,
        _dir: Option<tempfile::TempDir>,
    }

    impl Db {
        fn postgres() -> Self {
            Self::migrated(fresh_postgres_url(), None)
        }

        fn sqlite() -> Self {
            let (dir, url) = fresh_sqlite_url();
            Self::migrated(url, Some(dir))
        }

        fn migrated(url: String, dir: Option<tempfile::TempDir>) -> Self {
            let store = DbStore::connect(&url).unwrap();
            store.run_migrations().unwrap();
            Self {
                store,
                url,
                _dir: dir,
            }
        }

        fn is_postgres(&self) -> bool {
            self.store.backend_name() == "postgres"
        }

        /// `work` on the ledger's own connection, as the ledger's threads run a batch.
        async fn on_ledger_connection<T: Send + 'static>(
            &self,
            work: impl FnOnce(&mut AnyConnection) -> Result<T, Failure<StoreError>> + Send + 'static,
        ) -> Result<T, StoreError> {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.run_ledger_here(work))
                .await
                .unwrap()
        }

        /// One batch through [`apply`], with `seen` as the ledger's memory.
        async fn apply(
            &self,
            charges: Vec<Charge>,
            seen: &mut LastSeen,
        ) -> Result<Applied, StoreError> {
            let store = self.store.clone();
            let mut lane = std::mem::take(seen);
            let (applied, lane) = tokio::task::spawn_blocking(move || {
                let applied = store.run_ledger_here(|conn| super::apply(conn, &charges, &mut lane));
                (applied, lane)
            })
            .await
            .unwrap();
            *seen = lane;
            applied
        }
    }

    impl Drop for Db {
        fn drop(&mut self) {
            if self.is_postgres() {
                drop_postgres_database(&self.url);
            }
        }
    }

    async fn new_user(db: &Db, credits: u64) -> UserId {
        let id = UserId::generate(&OsRandom);
        let email = Email::parse(&format!("{}@example.com", id.as_str().to_lowercase())).unwrap();
        db.store
            .create_user(id.clone(), email, Credits::new(credits), CREATED)
            .await
            .unwrap();
        id
    }

    async fn new_key(db: &Db, user: &UserId, name: &str, monthly_limit: Option<u64>) -> KeyId {
        let secret = ApiKeySecret::generate(&OsRandom);
        let key = NewApiKey {
            id: KeyId::generate(&OsRandom),
            user_id: user.clone(),
            name: KeyName::parse(name).unwrap(),
            preview: secret.preview(),
            hash: secret.hash(),
            created_at: CREATED,
            controls: KeyControls {
                monthly_credit_limit: monthly_limit.map(|n| MonthlyCreditLimit::new(n).unwrap()),
                ..KeyControls::default()
            },
        };
        db.store
            .insert(key, KeyLimits::default(), CREATED)
            .await
            .unwrap()
            .id
    }

    /// Revokes the key through the store's pool: another connection than the ledger's.
    async fn revoke(db: &Db, user: &UserId, key: &KeyId, now: Timestamp) {
        let revoked = KeyState::Revoked { revoked_at: now };
        let change = StateChange::new(KeyState::Active, revoked);
        let stored = db.store.transition(user, key, change).await.unwrap();
        assert_eq!(stored.map(|k| k.state), Some(revoked));
    }

    fn document(user: &UserId, created_at: Timestamp) -> Document {
        Document {
            id: DocumentId::generate(&OsRandom),
            user_id: user.clone(),
            template_id: TemplateId::new("classic"),
            content: "Ada\nCountess".into(),
            created_at,
        }
    }

    fn render(doc: &Document, key: Option<&KeyId>) -> Charge {
        Charge {
            user_id: doc.user_id.clone(),
            key_id: key.cloned(),
            cost: Credits::new(1),
            kind: ChargeKind::Render(doc.clone()),
            at: doc.created_at,
        }
    }

    fn purchase(user: &UserId, template: &str, price: u64, key: Option<&KeyId>) -> Charge {
        Charge {
            user_id: user.clone(),
            key_id: key.cloned(),
            cost: Credits::new(price),
            kind: ChargeKind::Purchase(TemplateId::new(template)),
            at: at(0),
        }
    }

    fn charged(charged: u64, balance: u64) -> ChargeOutcome {
        ChargeOutcome::Charged {
            charged: Credits::new(charged),
            balance: Credits::new(balance),
        }
    }

    fn short(required: u64, balance: u64) -> ChargeOutcome {
        ChargeOutcome::Insufficient(InsufficientCredits {
            required: Credits::new(required),
            balance: Credits::new(balance),
        })
    }

    async fn balance(db: &Db, user: &UserId) -> u64 {
        db.store.balance(user).await.unwrap().unwrap().get()
    }

    /// The user's ledger as stored, oldest first: (delta, balance after, reason).
    async fn ledger(db: &Db, user: &UserId) -> Vec<(i64, u64, String)> {
        let entries = db.store.ledger(user).await.unwrap();
        entries
            .into_iter()
            .map(|e| (e.delta, e.balance_after.get(), e.reason))
            .collect()
    }

    fn render_entry(delta: i64, after: u64, doc: &Document) -> (i64, u64, String) {
        (delta, after, format!("document_render:{}", doc.id.as_str()))
    }

    /// The ids of the user's stored documents, oldest first.
    async fn documents_of(db: &Db, user: &UserId) -> Vec<DocumentId> {
        let user = user.as_str().to_owned();
        let ids: Vec<String> = db
            .store
            .run::<_, StoreError, _>(move |conn| {
                Ok(documents::table
                    .filter(documents::user_id.eq(user))
                    .order((documents::created_at, documents::id))
                    .select(documents::id)
                    .load(conn)?)
            })
            .await
            .unwrap();
        ids.into_iter().map(DocumentId::new).collect()
    }

    /// The key's stored spend row for `month`, if there is one.
    async fn spend_row(db: &Db, key: &KeyId, month: SpendMonth) -> Option<i64> {
        let key = key.as_str().to_owned();
        db.store
            .run::<_, StoreError, _>(move |conn| {
                Ok(key_monthly_spend::table
                    .find((key, month.start().as_millis()))
                    .select(key_monthly_spend::spent)
                    .get_result(conn)
                    .optional()?)
            })
            .await
            .unwrap()
    }

    async fn owns(db: &Db, user: &UserId, template: &str) -> bool {
        let template = TemplateId::new(template);
        let listing = db.store.find_template(user, &template).await.unwrap();
        listing.unwrap().owned
    }

    async fn a_batch_commits_exactly_its_paid_charges(db: Db) {
        let ada = new_user(&db, 2).await;
        let live = new_key(&db, &ada, "live", None).await;
        let gone = new_key(&db, &ada, "gone", None).await;
        revoke(&db, &ada, &gone, at(-1)).await;
        let paid = document(&ada, at(1));
        let batch = vec![
            render(&paid, Some(&live)),
            purchase(&ada, "executive", 50, Some(&live)),
            render(&document(&ada, at(2)), Some(&gone)),
        ];
        let applied = db.apply(batch, &mut LastSeen::default()).await.unwrap();
        assert_eq!(
            applied.outcomes,
            vec![charged(1, 1), short(50, 1), ChargeOutcome::KeyNotAccepted]
        );
        assert_eq!(applied.balances, vec![(ada.clone(), Credits::new(1))]);
        assert_eq!(balance(&db, &ada).await, 1);
        // The sign-up grant and the one render; nothing of the two refused charges.
        assert_eq!(
            ledger(&db, &ada).await,
            vec![(2, 2, "grant".into()), render_entry(-1, 1, &paid)]
        );
        assert_eq!(documents_of(&db, &ada).await, vec![paid.id]);
        assert!(!owns(&db, &ada, "executive").await);
    }

    async fn a_limited_keys_spend_row_is_written_with_its_debits_and_refuses_past_the_limit(
        db: Db,
    ) {
        let ada = new_user(&db, 10).await;
        let capped = new_key(&db, &ada, "capped", Some(3)).await;
        let month = SpendMonth::of(T0);
        let mut seen = LastSeen::default();
        let first: Vec<Charge> = (1..=2)
            .map(|i| render(&document(&ada, at(i)), Some(&capped)))
            .collect();
        let applied = db.apply(first, &mut seen).await.unwrap();
        assert_eq!(applied.outcomes, vec![charged(1, 9), charged(1, 8)]);
        // Created by the batch that spent, holding its total.
        assert_eq!(spend_row(&db, &capped, month).await, Some(2));

        // The third credit fits the limit of 3, the fourth does not; a charge without the key
        // is not limited by it.
        let second = vec![
            render(&document(&ada, at(3)), Some(&capped)),
            render(&document(&ada, at(4)), Some(&capped)),
            render(&document(&ada, at(5)), None),
        ];
        let applied = db.apply(second, &mut seen).await.unwrap();
        let reached = ChargeOutcome::KeyLimitReached(KeyLimitReached {
            limit: Credits::new(3),
            spent: Credits::new(3),
            resets_at: month.resets_at(),
        });
        assert_eq!(
            applied.outcomes,
            vec![charged(1, 7), reached, charged(1, 6)]
        );
        assert_eq!(spend_row(&db, &capped, month).await, Some(3));
        assert_eq!(balance(&db, &ada).await, 6);
        assert_eq!(documents_of(&db, &ada).await.len(), 4);
    }

    async fn a_limited_keys_spend_starts_over_in_a_new_month(db: Db) {
        let ada = new_user(&db, 10).await;
        let capped = new_key(&db, &ada, "capped", Some(1)).await;
        let december = Timestamp::from_millis(T0.as_millis() - 30 * 86_400_000);
        let mut seen = LastSeen::default();
        let spent_up = vec![
            render(&document(&ada, december), Some(&capped)),
            render(
                &document(&ada, december.plus(Duration::from_secs(1))),
                Some(&capped),
            ),
        ];
        let applied = db.apply(spent_up, &mut seen).await.unwrap();
        assert_eq!(applied.outcomes[0], charged(1, 9));
        assert!(matches!(
            applied.outcomes[1],
            ChargeOutcome::KeyLimitReached(_)
        ));
        // December's spend is not January's.
        let applied = db
            .apply(
                vec![render(&document(&ada, at(1)), Some(&capped))],
                &mut seen,
            )
            .await
            .unwrap();
        assert_eq!(applied.outcomes, vec![charged(1, 8)]);
        assert_eq!(
            spend_row(&db, &capped, SpendMonth::of(december)).await,
            Some(1)
        );
        assert_eq!(spend_row(&db, &capped, SpendMonth::of(T0)).await, Some(1));
    }

    async fn a_batch_that_fails_to_write_changes_nothing_not_even_the_spend(db: Db) {
        let ada = new_user(&db, 10).await;
        let capped = new_key(&db, &ada, "capped", Some(5)).await;
        let stored = document(&ada, at(1));
        let mut seen = LastSeen::default();
        db.apply(vec![render(&stored, Some(&capped))], &mut seen)
            .await
            .unwrap();
        // Both charges are planned as paid; storing a document id a second time then breaks a
        // constraint, and the whole transaction rolls back.
        let batch = vec![
            render(&document(&ada, at(2)), Some(&capped)),
            render(&stored, Some(&capped)),
        ];
        let failed = db.apply(batch, &mut seen).await;
        assert!(matches!(failed.err(), Some(StoreError::Internal(_))));
        assert_eq!(spend_row(&db, &capped, SpendMonth::of(T0)).await, Some(1));
        assert_eq!(balance(&db, &ada).await, 9);
        assert_eq!(ledger(&db, &ada).await.len(), 2);
        assert_eq!(documents_of(&db, &ada).await, vec![stored.id]);
    }

    async fn each_users_charges_are_decided_against_their_own_balance(db: Db) {
        let ada = new_user(&db, 1).await;
        let bob = new_user(&db, 2).await;
        let cy = new_user(&db, 0).await;
        let nobody = UserId::new("usr_nobody");
        let a: Vec<Document> = (0..2).map(|i| document(&ada, at(i))).collect();
        let b: Vec<Document> = (0..3).map(|i| document(&bob, at(i))).collect();
        let batch = vec![
            render(&a[0], None),
            render(&b[0], None),
            render(&a[1], None),
            render(&b[1], None),
            render(&document(&cy, at(0)), None),
            render(&b[2], None),
            render(&document(&nobody, at(0)), None),
        ];
        let applied = db.apply(batch, &mut LastSeen::default()).await.unwrap();
        assert_eq!(
            applied.outcomes,
            vec![
                charged(1, 0),
                charged(1, 1),
                short(1, 0),
                charged(1, 0),
                short(1, 0),
                short(1, 0),
                ChargeOutcome::UnknownUser,
            ]
        );
        // A balance for each user charged (in lock order), none for the one only refused.
        let mut written = vec![(ada.clone(), Credits::ZERO), (bob.clone(), Credits::ZERO)];
        written.sort();
        assert_eq!(applied.balances, written);
        assert_eq!(
            ledger(&db, &ada).await,
            vec![(1, 1, "grant".into()), render_entry(-1, 0, &a[0])]
        );
        assert_eq!(
            ledger(&db, &bob).await,
            vec![
                (2, 2, "grant".into()),
                render_entry(-1, 1, &b[0]),
                render_entry(-1, 0, &b[1]),
            ]
        );
        assert!(ledger(&db, &cy).await.is_empty());
        assert_eq!(documents_of(&db, &ada).await, vec![a[0].id.clone()]);
        assert_eq!(
            documents_of(&db, &bob).await,
            vec![b[0].id.clone(), b[1].id.clone()]
        );
        assert!(documents_of(&db, &cy).await.is_empty());
        assert!(documents_of(&db, &nobody).await.is_empty());
    }

    async fn a_key_revoked_by_another_connection_is_refused_by_the_next_batch(db: Db) {
        let ada = new_user(&db, 10).await;
        let key = new_key(&db, &ada, "k", None).await;
        let mut seen = LastSeen::default();
        let (d1, d2) = (document(&ada, at(1)), document(&ada, at(2)));
        db.apply(vec![render(&d1, Some(&key))], &mut seen)
            .await
            .unwrap();
        let applied = db
            .apply(vec![render(&d2, Some(&key))], &mut seen)
            .await
            .unwrap();
        // On PostgreSQL the ledger now remembers the key as active and wrote this batch from
        // that memory: the next one starts from a memory the revocation makes stale.
        assert_eq!(applied.confirmed, db.is_postgres());

        revoke(&db, &ada, &key, at(10)).await;
        let d4 = document(&ada, at(12));
        let batch = vec![
            render(&document(&ada, at(11)), Some(&key)),
            render(&d4, None),
        ];
        let applied = db.apply(batch, &mut seen).await.unwrap();
        assert_eq!(
            applied.outcomes,
            vec![ChargeOutcome::KeyNotAccepted, charged(1, 7)]
        );
        assert!(!applied.confirmed, "planned from the stored key");
        assert_eq!(balance(&db, &ada).await, 7);
        assert_eq!(documents_of(&db, &ada).await, vec![d1.id, d2.id, d4.id]);
    }

    async fn credits_granted_by_another_connection_are_spent_by_the_next_batch(db: Db) {
        let ada = new_user(&db, 1).await;
        let mut seen = LastSeen::default();
        let d1 = document(&ada, at(1));
        db.apply(vec![render(&d1, None)], &mut seen).await.unwrap();
        // The ledger remembers a balance of 0; the grant commits 2 more elsewhere.
        let granted = db.store.grant(&ada, GrantAmount::new(2).unwrap(), at(5));
        assert_eq!(granted.await.unwrap(), Credits::new(2));
        let docs: Vec<Document> = (6..9).map(|i| document(&ada, at(i))).collect();
        let batch = docs.iter().map(|d| render(d, None)).collect();
        let applied = db.apply(batch, &mut seen).await.unwrap();
        assert_eq!(
            applied.outcomes,
            vec![charged(1, 1), charged(1, 0), short(1, 0)]
        );
        assert_eq!(
            ledger(&db, &ada).await,
            vec![
                (1, 1, "grant".into()),
                render_entry(-1, 0, &d1),
                (2, 2, "grant".into()),
                render_entry(-1, 1, &docs[0]),
                render_entry(-1, 0, &docs[1]),
            ]
        );
    }

    async fn the_locked_reads_find_exactly_the_stored_users_and_keys(db: Db) {
        let ada = new_user(&db, 3).await;
        let bob = new_user(&db, 4).await;
        let key = new_key(&db, &ada, "k", Some(7)).await;
        let missing = KeyId::new("key_missing");
        let (a, b, k) = (ada.clone(), bob.clone(), key.clone());
        let (one, many, keys, alone) = db
            .on_ledger_connection(move |conn| {
                conn.transaction(|conn| {
                    // One payer or key, and several: PostgreSQL reads them by different queries.
                    let one = lock_accounts(conn, std::slice::from_ref(&a))?;
                    let mut payers = vec![a, b, UserId::new("usr_nobody")];
                    payers.sort();
                    let many = lock_accounts(conn, &payers)?;
                    let mut ids = vec![k.clone(), missing];
                    ids.sort();
                    let keys = read_keys(conn, &ids)?;
                    let alone = read_keys(conn, &[k])?;
                    Ok((one, many, keys, alone))
                })
            })
            .await
            .unwrap();
        let balances = |accounts: &HashMap<UserId, Account>| {
            let mut found: Vec<(UserId, u64)> = accounts
                .iter()
                .map(|(u, a)| (u.clone(), a.balance.get()))
                .collect();
            found.sort();
            found
        };
        assert_eq!(balances(&one), vec![(ada.clone(), 3)]);
        let mut expected = vec![(ada.clone(), 3), (bob, 4)];
        expected.sort();
        assert_eq!(balances(&many), expected);
        assert_eq!(keys.len(), 1, "the missing key is absent");
        let read = &keys[&key];
        assert_eq!(read.columns.0, ada.as_str());
        assert_eq!(read.columns.1, "active");
        assert_eq!(read.monthly_credit_limit, Some(7));
        assert_eq!(alone[&key].columns, read.columns);
    }

    /// Each case on a fresh PostgreSQL database and a fresh SQLite file.
    macro_rules! on_both_backends {
        ($($case:ident),* $(,)?) => {
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        super::$case(super::Db::postgres()).await;
                    }
                )*
            }
            mod sqlite {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        super::$case(super::Db::sqlite()).await;
                    }
                )*
            }
        };
    }

    on_both_backends!(
        a_batch_commits_exactly_its_paid_charges,
        a_limited_keys_spend_row_is_written_with_its_debits_and_refuses_past_the_limit,
        a_limited_keys_spend_starts_over_in_a_new_month,
        a_batch_that_fails_to_write_changes_nothing_not_even_the_spend,
        each_users_charges_are_decided_against_their_own_balance,
        a_key_revoked_by_another_connection_is_refused_by_the_next_batch,
        credits_granted_by_another_connection_are_spent_by_the_next_batch,
        the_locked_reads_find_exactly_the_stored_users_and_keys,
    );
}
