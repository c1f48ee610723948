//! A ledger batch's writes on PostgreSQL, in one statement.
//!
//! The balances, ledger rows, ownership rows and documents of a batch go to the server as
//! arrays, unnested by data-modifying CTEs: one round trip whatever the batch's size or number
//! of users, where one `UPDATE` per user and chunked inserts would be a round trip each, with
//! the batch's row locks held across all of them. The statement's text never changes, so
//! it is declared with [`cached_statement!`] and diesel prepares it once per connection.

use diesel::sql_types::{Array, BigInt, Text};
use keys_domain::charge_batch::BatchPlan;

use crate::cached_statements::cached_statement;

// Every CTE runs to completion whether or not it is read. The balances' `users.id = ANY(…)`
// repeats the join for the planner: the ledger's connections use generic plans
// (`ConnectionSetup::ledger`), and the generic plan of the bare join guessed 10 rows from
// `unnest` and scanned the whole users table at every batch (a cost that grows with the table;
// PostgreSQL picked that plan itself once batches held many users);
// with it, the batch's users are read by primary key. `WITH ORDINALITY … ORDER BY` keeps
// the ledger's `seq` in the plan's arrival order, which the running `balance_after` follows.
cached_statement!(
    /// The columns of one batch, borrowed from its plan.
    #[derive(Default)]
    BatchWrite {
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
    } = "WITH balances AS (UPDATE users SET balance = b.balance FROM unnest(",
        balance_users: Array<Text>, "::text[], ",
        balances: Array<BigInt>, "::bigint[]) AS b(id, balance) WHERE users.id = b.id \
            AND users.id = ANY(",
        balance_users: Array<Text>, "::text[])), \
            ledger AS (INSERT INTO credit_ledger (user_id, delta, balance_after, reason, created_at) \
            SELECT user_id, delta, balance_after, reason, created_at FROM unnest(",
        ledger_users: Array<Text>, "::text[], ",
        ledger_deltas: Array<BigInt>, "::bigint[], ",
        ledger_balances: Array<BigInt>, "::bigint[], ",
        ledger_reasons: Array<Text>, "::text[], ",
        ledger_at: Array<BigInt>, "::bigint[]) WITH ORDINALITY \
            AS l(user_id, delta, balance_after, reason, created_at, n) ORDER BY n), \
            owned AS (INSERT INTO template_ownership (user_id, template_id, acquired_at) \
            SELECT * FROM unnest(",
        owner_users: Array<Text>, "::text[], ",
        owner_templates: Array<Text>, "::text[], ",
        owner_at: Array<BigInt>, "::bigint[])) \
            INSERT INTO documents (id, user_id, template_id, content, created_at) \
            SELECT * FROM unnest(",
        document_ids: Array<Text>, "::text[], ",
        document_users: Array<Text>, "::text[], ",
        document_templates: Array<Text>, "::text[], ",
        document_contents: Array<Text>, "::text[], ",
        document_at: Array<BigInt>, "::bigint[])"
);

impl<'a> BatchWrite<'a> {
    pub(crate) fn of(plan: &'a BatchPlan) -> Self {
        let mut w = BatchWrite::default();
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
