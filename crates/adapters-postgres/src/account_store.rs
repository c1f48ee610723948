//! [`AccountStore`]: users, balances and the credit ledger.

use async_trait::async_trait;
use diesel::prelude::*;
use keys_domain::credits::LedgerReason;
use keys_domain::ports::{
    AccountStore, CreateUserError, GrantStoreError, StoreError, User, UserRef,
};
use keys_domain::{
    Credits, Email, GrantAmount, LedgerCursor, LedgerEntry, Page, PageRequest, PositionedEntry,
    Timestamp, UserId,
};

use crate::connection::AnyConnection;
use crate::failure::{Failure, UniqueIndex};
use crate::pages::{PositionedLedgerRow, ledger_page};
use crate::schema::{credit_ledger, users};
use crate::store::DbStore;

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: String,
    email: String,
    balance: i64,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: UserId::new(r.id),
            email: Email::from_stored(r.email),
            balance: Credits::from_stored(r.balance),
            created_at: Timestamp::from_millis(r.created_at),
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = credit_ledger)]
struct LedgerRow {
    user_id: String,
    delta: i64,
    balance_after: i64,
    reason: String,
    created_at: i64,
}

/// The user's balance as this transaction sees it; `None` for an unknown user.
pub(crate) fn read_balance(conn: &mut AnyConnection, user: &str) -> QueryResult<Option<i64>> {
    users::table
        .find(user)
        .select(users::balance)
        .first(conn)
        .optional()
}

/// Appends a ledger entry. Called in the transaction that changed the balance to
/// `balance_after`, so the ledger always sums to the balance.
pub(crate) fn append_ledger(
    conn: &mut AnyConnection,
    user: &str,
    delta: i64,
    balance_after: i64,
    reason: &LedgerReason,
    now: Timestamp,
) -> QueryResult<()> {
    diesel::insert_into(credit_ledger::table)
        .values((
            credit_ledger::user_id.eq(user),
            credit_ledger::delta.eq(delta),
            credit_ledger::balance_after.eq(balance_after),
            credit_ledger::reason.eq(reason.to_stored()),
            credit_ledger::created_at.eq(now.as_millis()),
        ))
        .execute(conn)?;
    Ok(())
}

/// `users.email UNIQUE` (PostgreSQL's default name for it).
const EMAIL_INDEX: UniqueIndex = UniqueIndex {
    name: "users_email_key",
    columns: "users.email",
};

#[async_trait]
impl AccountStore for DbStore {
    async fn create_user(
        &self,
        id: UserId,
        email: Email,
        initial_credits: Credits,
        now: Timestamp,
    ) -> Result<User, CreateUserError> {
        // Checked before any SQL: a value past the limit is refused, never clamped or stored.
        let Some(balance) = Credits::ZERO
            .checked_add(initial_credits)
            .and_then(|c| i64::try_from(c.get()).ok())
        else {
            return Err(CreateUserError::BalanceLimit);
        };
        self.run(move |conn| {
            conn.transaction(|conn| {
                let inserted = diesel::insert_into(users::table)
                    .values((
                        users::id.eq(id.as_str()),
                        users::email.eq(email.as_str()),
                        users::balance.eq(balance),
                        users::created_at.eq(now.as_millis()),
                    ))
                    .execute(conn);
                match inserted {
                    Ok(_) => {}
                    Err(e) if EMAIL_INDEX.is_violated_by(&e) => {
                        return Err(Failure::Port(CreateUserError::EmailTaken));
                    }
                    Err(e) => return Err(e.into()),
                }
                if balance > 0 {
                    append_ledger(
                        conn,
                        id.as_str(),
                        balance,
                        balance,
                        &LedgerReason::Grant,
                        now,
                    )?;
                }
                // What was stored, not what was asked for.
                let stored = read_balance(conn, id.as_str())?.ok_or_else(|| {
                    Failure::Store(StoreError::Internal("the new user vanished".into()))
                })?;
                Ok(User {
                    id,
                    email,
                    balance: Credits::from_stored(stored),
                    created_at: now,
                })
            })
        })
        .await
    }

    async fn find_user(&self, user: &UserRef) -> Result<Option<User>, StoreError> {
        let user = user.clone();
        self.run(move |conn| {
            let query = users::table.select(UserRow::as_select());
            let row = match &user {
                UserRef::Id(id) => query.filter(users::id.eq(id.as_str())).first(conn),
                UserRef::Email(email) => query.filter(users::email.eq(email.as_str())).first(conn),
            }
            .optional()?;
            Ok(row.map(User::from))
        })
        .await
    }

    async fn balance(&self, user: &UserId) -> Result<Option<Credits>, StoreError> {
        if let Some(balance) = self.balance_cache().get(user) {
            return Ok(Some(balance));
        }
        let started = self.balance_cache().stamp();
        let id = user.clone();
        let balance = self
            .run(move |conn| Ok(read_balance(conn, id.as_str())?.map(Credits::from_stored)))
            .await?;
        if let Some(balance) = balance {
            self.balance_cache().put(user, balance, started);
        }
        Ok(balance)
    }

    async fn grant(
        &self,
        user: &UserId,
        amount: GrantAmount,
        now: Timestamp,
    ) -> Result<Credits, GrantStoreError> {
        let id = user.clone();
        // Both fit in i64 with room to spare (at most 10^12 and 2^53 - 1), so neither the
        // bound nor the sum can overflow, and SQLite never turns the balance into a REAL.
        let amount = amount.credits().as_i64();
        let ceiling = Credits::MAX_BALANCE.as_i64() - amount;
        let granted = self
            .run(move |conn| {
                let user = id;
                conn.transaction(|conn| {
                    // The increment is the first statement: it locks the row (see `lock_user`). Its
                    // condition makes the limit check and the write one atomic step.
                    let n = diesel::update(
                        users::table
                            .find(user.as_str())
                            .filter(users::balance.le(ceiling)),
                    )
                    .set(users::balance.eq(users::balance + amount))
                    .execute(conn)?;
                    let balance = read_balance(conn, user.as_str())?
                        .ok_or(Failure::Port(GrantStoreError::UnknownUser))?;
                    if n == 0 {
                        return Err(Failure::Port(GrantStoreError::BalanceLimit {
                            balance: Credits::from_stored(balance),
                        }));
                    }
                    append_ledger(
                        conn,
                        user.as_str(),
                        amount,
                        balance,
                        &LedgerReason::Grant,
                        now,
                    )?;
                    Ok(Credits::from_stored(balance))
                })
            })
            .await?;
        // Forgotten, not stored: concurrent grants may finish in another order than they
        // committed (see `balance_cache`).
        self.balance_cache().forget(user);
        Ok(granted)
    }

    async fn ledger(&self, user: &UserId) -> Result<Vec<LedgerEntry>, StoreError> {
        let user = user.clone();
        self.run(move |conn| {
            let rows = credit_ledger::table
                .filter(credit_ledger::user_id.eq(user.as_str()))
                .order(credit_ledger::seq.asc())
                .select(LedgerRow::as_select())
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|r| LedgerEntry {
                    user_id: UserId::new(r.user_id),
                    delta: r.delta,
                    balance_after: Credits::from_stored(r.balance_after),
                    reason: r.reason,
                    created_at: Timestamp::from_millis(r.created_at),
                })
                .collect())
        })
        .await
    }

    async fn ledger_page(
        &self,
        user: &UserId,
        page: PageRequest<LedgerCursor>,
    ) -> Result<Page<PositionedEntry>, StoreError> {
        let user = user.clone();
        self.run(move |conn| {
            let rows = ledger_page(conn, &user, &page)?;
            Ok(rows.try_map(|r: PositionedLedgerRow| {
                Ok::<_, StoreError>(PositionedEntry {
                    cursor: LedgerCursor::from_stored(r.seq),
                    entry: LedgerEntry {
                        user_id: UserId::new(r.user_id),
                        delta: r.delta,
                        balance_after: Credits::from_stored(r.balance_after),
                        reason: r.reason,
                        created_at: Timestamp::from_millis(r.created_at),
                    },
                })
            })?)
        })
        .await
    }
}
