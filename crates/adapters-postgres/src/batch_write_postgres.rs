//! A ledger batch's writes on PostgreSQL, in one statement, on condition that the batch's rows
//! still hold what it was planned against.
//!
//! The balances, ledger rows, ownership rows and documents of a batch go to the server as
//! arrays, unnested by data-modifying CTEs: one round trip whatever the batch's size or number
//! of users (one `UPDATE` per user and chunked inserts were 10 to 35 round trips per batch, and
//! the batch's row locks are held across all of them). The statement's text never changes, so
//! it is declared with [`cached_statement!`] and diesel prepares it once per connection.
//!
//! The statement first locks the payers' rows (`FOR NO KEY UPDATE`, in id order), then the
//! paying keys (`FOR KEY SHARE`, see [`crate::ledger_batch`]; only once the payers' check has
//! read its rows, so the lock order stays users → keys), compares both with the expected values,
//! and writes only if every one is equal. It returns one row when it wrote and none when it did
//! not, in which case it changed nothing. The comparison is made under the row locks and on the
//! latest committed rows (a locking read waits for, then re-reads, a row changed meanwhile).
//!
//! - A batch planned from what its lane last saw ([`crate::last_seen`]) runs it outside an
//!   explicit transaction: one round trip, where the locked way costs five (`BEGIN`, the payers'
//!   locks, the keys' read, the write, `COMMIT`), all while the batch holds its row locks, and
//!   PostgreSQL's own work was under half of that time. It commits on its own, so PostgreSQL's
//!   answer comes after the commit; no row means the batch goes the locked way.
//! - The locked way runs it inside its transaction with what it has just read under the same
//!   locks, so the comparison holds and the same statement writes both ways.

use diesel::sql_types::{Array, BigInt, Nullable, Text};
use keys_domain::charge_batch::BatchPlan;

use crate::cached_statements::cached_statement;
use crate::last_seen::Expected;

// Every CTE runs to completion whether or not it is read; `ok` is referenced by every write, so
// PostgreSQL computes it once, before any of them. The keys' CTE reads `users_ok`, which makes
// the payers' locks come first; both locking CTEs are `MATERIALIZED`, so each locks its rows in
// id order as a whole, never inlined into a join. The balances' `users.id = ANY(…)` repeats the
// join for the planner: the ledger's connections use generic plans (`ConnectionSetup::ledger`),
// and the generic plan of the bare join guessed 10 rows from `unnest` and scanned the whole
// users table at every batch (0.87 ms per batch with 1,000 users, growing with the table;
// PostgreSQL picked that plan itself once batches held many users); with it, the batch's users
// are read by primary key. `WITH ORDINALITY … ORDER BY` keeps the ledger's `seq` in the plan's
// arrival order, which the running `balance_after` follows.
cached_statement!(
    /// The expected state and the writes of one batch, borrowed from them.
    #[derive(Default)]
    BatchWrite {
        expected_users: Vec<&'a str> as Array<Text>,
        expected_balances: Vec<i64> as Array<BigInt>,
        key_ids: Vec<&'a str> as Array<Text>,
        key_users: Vec<&'a str> as Array<Text>,
        key_statuses: Vec<&'a str> as Array<Text>,
        key_revoked_at: Vec<Option<i64>> as Array<Nullable<BigInt>>,
        key_revokes_at: Vec<Option<i64>> as Array<Nullable<BigInt>>,
        balance_users: Vec<&'a str> as Array<Text>,
        balances: Vec<i64> as Array<BigInt>,
        ledger_users: Vec<&'a str> as Array<Text>,
        ledger_deltas: Vec<i64> as Array<BigInt>,
        ledger_balances: Vec<i64> as Array<BigInt>,
        ledger_reasons: Vec<&'a str> as Array<Text>,
        ledger_at: Vec<i64> as Array<BigInt>,
        owner_users: Vec<&'a str> as Array<Text>,
        owner_templates: Vec<&'a str> as Array<Text>,
        owner_at: Vec<i64> as Array<BigInt>,
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
            paying_keys AS MATERIALIZED (SELECT id, user_id, status, revoked_at, revokes_at FROM api_keys \
            WHERE id = ANY(",
        key_ids: Array<Text>, "::text[]) AND (SELECT ok FROM users_ok) ORDER BY id FOR KEY SHARE), \
            ok AS (SELECT (SELECT ok FROM users_ok) AND (SELECT count(*) FROM paying_keys k \
            JOIN unnest(",
        key_ids: Array<Text>, "::text[], ",
        key_users: Array<Text>, "::text[], ",
        key_statuses: Array<Text>, "::text[], ",
        key_revoked_at: Array<Nullable<BigInt>>, "::bigint[], ",
        key_revokes_at: Array<Nullable<BigInt>>, "::bigint[]) \
            AS e(id, user_id, status, revoked_at, revokes_at) ON k.id = e.id \
            AND k.user_id = e.user_id AND k.status = e.status \
            AND k.revoked_at IS NOT DISTINCT FROM e.revoked_at \
            AND k.revokes_at IS NOT DISTINCT FROM e.revokes_at) = cardinality(",
        key_ids: Array<Text>, "::text[]) AS ok), \
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
            owned AS (INSERT INTO template_ownership (user_id, template_id, acquired_at) \
            SELECT * FROM unnest(",
        owner_users: Array<Text>, "::text[], ",
        owner_templates: Array<Text>, "::text[], ",
        owner_at: Array<BigInt>, "::bigint[]) WHERE (SELECT ok FROM ok)), \
            rendered AS (INSERT INTO documents (id, user_id, template_id, content, created_at) \
            SELECT * FROM unnest(",
        document_ids: Array<Text>, "::text[], ",
        document_users: Array<Text>, "::text[], ",
        document_templates: Array<Text>, "::text[], ",
        document_contents: Array<Text>, "::text[], ",
        document_at: Array<BigInt>, "::bigint[]) WHERE (SELECT ok FROM ok)) \
            SELECT 1 FROM ok WHERE ok.ok"
);

impl<'a> BatchWrite<'a> {
    /// The statement writing `plan`, made against `expected`.
    pub(crate) fn of(expected: &'a Expected, plan: &'a BatchPlan) -> Self {
        let mut w = BatchWrite::default();
        for (user, balance) in &expected.users {
            w.expected_users.push(user.as_str());
            w.expected_balances.push(*balance);
        }
        for (key, (user, status, revoked_at, revokes_at)) in &expected.keys {
            w.key_ids.push(key.as_str());
            w.key_users.push(user);
            w.key_statuses.push(status);
            w.key_revoked_at.push(*revoked_at);
            w.key_revokes_at.push(*revokes_at);
        }
        for (user, balance) in &plan.balances {
            w.balance_users.push(user.as_str());
            w.balances.push(balance.as_i64());
        }
        for e in &plan.ledger {
            w.ledger_users.push(e.user_id.as_str());
            w.ledger_deltas.push(e.delta);
            w.ledger_balances.push(e.balance_after.as_i64());
            w.ledger_reasons.push(e.reason.as_str());
            w.ledger_at.push(e.created_at.as_millis());
        }
        for (user, template, at) in &plan.ownership {
            w.owner_users.push(user.as_str());
            w.owner_templates.push(template.as_str());
            w.owner_at.push(at.as_millis());
        }
        for d in &plan.documents {
            w.document_ids.push(d.id.as_str());
            w.document_users.push(d.user_id.as_str());
            w.document_templates.push(d.template_id.as_str());
            w.document_contents.push(d.content.as_str());
            w.document_at.push(d.created_at.as_millis());
        }
        w
    }
}
