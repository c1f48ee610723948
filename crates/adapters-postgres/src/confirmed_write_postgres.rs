//! A ledger batch planned from what the ledger last saw ([`crate::last_seen`]), written on
//! PostgreSQL in one statement and one round trip, on condition that the database still holds
//! exactly that.
//!
//! The locked way costs five round trips per batch (`BEGIN`, the payers' row locks, the keys'
//! read, the write, `COMMIT`), all while the batch holds its row locks, and PostgreSQL's own work
//! is under half of that time. This statement runs outside an explicit transaction: it locks the
//! payers' rows (`FOR NO KEY UPDATE`, in id order, as the locked way does), then the keys
//! (`FOR KEY SHARE`, see [`crate::ledger_batch`]; only once the payers' check has read its rows),
//! then the limited keys' spend rows of the batch's month (`FOR NO KEY UPDATE`), so the lock order
//! stays users → keys → spend, compares all three with the expected values (a key's controls
//! included), and writes only if every one is equal. It commits on its own, so PostgreSQL's answer comes after the commit,
//! and it returns one row when it wrote and none when it did not; in that case it changed nothing
//! and the batch goes the locked way. The comparison is made under the row locks and on the
//! latest committed rows (a locking read waits for, then re-reads, a row changed meanwhile), so
//! exactness stays in the database, as it does the locked way.

use diesel::sql_types::{Array, BigInt, Nullable, Text};
use keys_domain::charge_batch::BatchPlan;

use crate::batch_write_postgres::BatchWrite;
use crate::cached_statements::cached_statement;
use crate::last_seen::Expected;

// A copy of `BatchWrite`'s writes with the check added, on purpose: one statement for both ways
// (the locked way passing what it read) would carry the ownership insert into every batch here,
// a data-modifying CTE more on the hottest statement.
// `ok` is referenced by every write, so PostgreSQL computes it once, before any of them. The
// keys' CTE reads `users_ok`, which makes the payers' locks come first; both locking CTEs are
// `MATERIALIZED`, so each locks its rows in id order as a whole, never inlined into a join. As in
// `batch_write_postgres`, the balance update repeats `users.id = ANY(…)` for the generic plan.
cached_statement!(
    /// The expected state and the writes of one batch, borrowed from its plan.
    #[derive(Default)]
    ConfirmedWrite {
        expected_users: Vec<&'a str> as Array<Text>,
        expected_balances: Vec<i64> as Array<BigInt>,
        key_ids: Vec<&'a str> as Array<Text>,
        key_users: Vec<&'a str> as Array<Text>,
        key_statuses: Vec<&'a str> as Array<Text>,
        key_revoked_at: Vec<Option<i64>> as Array<Nullable<BigInt>>,
        key_revokes_at: Vec<Option<i64>> as Array<Nullable<BigInt>>,
        key_expires_at: Vec<Option<i64>> as Array<Nullable<BigInt>>,
        key_limits: Vec<Option<i64>> as Array<Nullable<BigInt>>,
        spend_keys: Vec<&'a str> as Array<Text>,
        spend_months: Vec<i64> as Array<BigInt>,
        spend_expected: Vec<i64> as Array<BigInt>,
        spend_write_keys: Vec<&'a str> as Array<Text>,
        spend_write_months: Vec<i64> as Array<BigInt>,
        spend_write_values: Vec<i64> as Array<BigInt>,
        balance_users: Vec<&'a str> as Array<Text>,
        balances: Vec<i64> as Array<BigInt>,
        ledger_users: Vec<&'a str> as Array<Text>,
        ledger_deltas: Vec<i64> as Array<BigInt>,
        ledger_balances: Vec<i64> as Array<BigInt>,
        ledger_reasons: Vec<&'a str> as Array<Text>,
        ledger_at: Vec<i64> as Array<BigInt>,
        document_ids: Vec<&'a str> as Array<Text>,
        document_users: Vec<&'a str> as Array<Text>,
        document_templates: Vec<&'a str> as Array<Text>,
        document_contents: Vec<&'a str> as Array<Text>,
        document_at: Vec<i64> as Array<BigInt>,
    } = "WITH payers AS MATERIALIZED (SELECT id, balance FROM users WHERE id = ANY(",
        expected_users: Array<Text>, "::text[]) ORDER BY id FOR NO KEY UPDATE), \
            users_ok AS (SELECT count(*) = cardinality(",
        expected_users: Array<Text>, "::text[]) AS ok FROM payers JOIN unnest(",
        expected_users: Array<Text>, "::text[], ",
        expected_balances: Array<BigInt>, "::bigint[]) AS e(id, balance) \
            ON payers.id = e.id AND payers.balance = e.balance), \
            paying_keys AS MATERIALIZED (SELECT id, user_id, status, revoked_at, revokes_at, \
            expires_at, monthly_credit_limit FROM api_keys \
            WHERE id = ANY(",
        key_ids: Array<Text>, "::text[]) AND (SELECT ok FROM users_ok) ORDER BY id FOR KEY SHARE), \
            keys_ok AS (SELECT (SELECT ok FROM users_ok) AND (SELECT count(*) FROM paying_keys k \
            JOIN unnest(",
        key_ids: Array<Text>, "::text[], ",
        key_users: Array<Text>, "::text[], ",
        key_statuses: Array<Text>, "::text[], ",
        key_revoked_at: Array<Nullable<BigInt>>, "::bigint[], ",
        key_revokes_at: Array<Nullable<BigInt>>, "::bigint[], ",
        key_expires_at: Array<Nullable<BigInt>>, "::bigint[], ",
        key_limits: Array<Nullable<BigInt>>, "::bigint[]) \
            AS e(id, user_id, status, revoked_at, revokes_at, expires_at, monthly_credit_limit) \
            ON k.id = e.id AND k.user_id = e.user_id AND k.status = e.status \
            AND k.revoked_at IS NOT DISTINCT FROM e.revoked_at \
            AND k.revokes_at IS NOT DISTINCT FROM e.revokes_at \
            AND k.expires_at IS NOT DISTINCT FROM e.expires_at \
            AND k.monthly_credit_limit IS NOT DISTINCT FROM e.monthly_credit_limit) = cardinality(",
        key_ids: Array<Text>, "::text[]) AS ok), \
            spending AS MATERIALIZED (SELECT key_id, month, spent FROM key_monthly_spend \
            WHERE key_id = ANY(",
        spend_keys: Array<Text>, "::text[]) AND month = ANY(",
        spend_months: Array<BigInt>, "::bigint[]) AND (SELECT ok FROM keys_ok) \
            ORDER BY key_id, month FOR NO KEY UPDATE), \
            ok AS (SELECT (SELECT ok FROM keys_ok) AND (SELECT count(*) FROM spending s \
            JOIN unnest(",
        spend_keys: Array<Text>, "::text[], ",
        spend_months: Array<BigInt>, "::bigint[], ",
        spend_expected: Array<BigInt>, "::bigint[]) AS e(key_id, month, spent) \
            ON s.key_id = e.key_id AND s.month = e.month AND s.spent = e.spent) = cardinality(",
        spend_keys: Array<Text>, "::text[]) AS ok), \
            spent AS (UPDATE key_monthly_spend SET spent = w.spent FROM unnest(",
        spend_write_keys: Array<Text>, "::text[], ",
        spend_write_months: Array<BigInt>, "::bigint[], ",
        spend_write_values: Array<BigInt>, "::bigint[]) AS w(key_id, month, spent) \
            WHERE key_monthly_spend.key_id = w.key_id AND key_monthly_spend.month = w.month \
            AND (SELECT ok FROM ok)), \
            balances AS (UPDATE users SET balance = b.balance FROM unnest(",
        balance_users: Array<Text>, "::text[], ",
        balances: Array<BigInt>, "::bigint[]) AS b(id, balance) WHERE users.id = b.id \
            AND users.id = ANY(",
        balance_users: Array<Text>, "::text[]) AND (SELECT ok FROM ok)), \
            ledger AS (INSERT INTO credit_ledger (user_id, delta, balance_after, reason, created_at) \
            SELECT user_id, delta, balance_after, reason, created_at FROM unnest(",
        ledger_users: Array<Text>, "::text[], ",
        ledger_deltas: Array<BigInt>, "::bigint[], ",
        ledger_balances: Array<BigInt>, "::bigint[], ",
        ledger_reasons: Array<Text>, "::text[], ",
        ledger_at: Array<BigInt>, "::bigint[]) WITH ORDINALITY \
            AS l(user_id, delta, balance_after, reason, created_at, n) \
            WHERE (SELECT ok FROM ok) ORDER BY n), \
            rendered AS (INSERT INTO documents (id, user_id, template_id, content, created_at) \
            SELECT * FROM unnest(",
        document_ids: Array<Text>, "::text[], ",
        document_users: Array<Text>, "::text[], ",
        document_templates: Array<Text>, "::text[], ",
        document_contents: Array<Text>, "::text[], ",
        document_at: Array<BigInt>, "::bigint[]) WHERE (SELECT ok FROM ok)) \
            SELECT 1 FROM ok WHERE ok.ok"
);

impl<'a> ConfirmedWrite<'a> {
    /// The statement for `plan`, made against `expected`; `None` when the plan buys templates
    /// (never planned from memory, see [`crate::ledger_batch`]) or spends on a key whose spend
    /// row `expected` does not hold (the update would find no row).
    pub(crate) fn of(expected: &'a Expected, plan: &'a BatchPlan) -> Option<Self> {
        let BatchWrite {
            balance_users,
            balances,
            ledger_users,
            ledger_deltas,
            ledger_balances,
            ledger_reasons,
            ledger_at,
            owner_users,
            document_ids,
            document_users,
            document_templates,
            document_contents,
            document_at,
            ..
        } = BatchWrite::of(plan);
        if !owner_users.is_empty() {
            return None;
        }
        let mut w = ConfirmedWrite {
            balance_users,
            balances,
            ledger_users,
            ledger_deltas,
            ledger_balances,
            ledger_reasons,
            ledger_at,
            document_ids,
            document_users,
            document_templates,
            document_contents,
            document_at,
            ..ConfirmedWrite::default()
        };
        for (user, balance) in &expected.users {
            w.expected_users.push(user.as_str());
            w.expected_balances.push(*balance);
        }
        for (key, read) in &expected.keys {
            let (user, status, revoked_at, revokes_at) = &read.columns;
            w.key_ids.push(key.as_str());
            w.key_users.push(user);
            w.key_statuses.push(status);
            w.key_revoked_at.push(*revoked_at);
            w.key_revokes_at.push(*revokes_at);
            w.key_expires_at.push(read.expires_at);
            w.key_limits.push(read.monthly_credit_limit);
        }
        let month = expected.month.start().as_millis();
        for (key, spent) in &expected.spend {
            w.spend_keys.push(key.as_str());
            w.spend_months.push(month);
            w.spend_expected.push(*spent);
        }
        for (key, spend_month, spent) in &plan.key_spend {
            let remembered = expected.spend.iter().any(|(k, _)| k == key);
            if !remembered || spend_month.start().as_millis() != month {
                return None;
            }
            w.spend_write_keys.push(key.as_str());
            w.spend_write_months.push(month);
            w.spend_write_values.push(spent.as_i64());
        }
        Some(w)
    }
}
