//! A ledger batch's writes on PostgreSQL, in one statement.
//!
//! The balances, ledger rows, ownership rows and documents of a batch go to the server as
//! arrays, unnested by data-modifying CTEs: one round trip whatever the batch's size or number
//! of users (one `UPDATE` per user and chunked inserts were 10 to 35 round trips per batch, and
//! the batch's row locks are held across all of them). The statement's text never changes, so
//! it has a static query id and diesel prepares it once per connection.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Text};
use keys_domain::charge_batch::BatchPlan;

/// The columns of one batch, borrowed from its plan.
#[derive(Default)]
pub(crate) struct BatchWrite<'a> {
    balance_users: Vec<&'a str>,
    balances: Vec<i64>,
    ledger_users: Vec<&'a str>,
    ledger_deltas: Vec<i64>,
    ledger_balances: Vec<i64>,
    ledger_reasons: Vec<&'a str>,
    ledger_at: Vec<i64>,
    owner_users: Vec<&'a str>,
    owner_templates: Vec<&'a str>,
    owner_at: Vec<i64>,
    document_ids: Vec<&'a str>,
    document_users: Vec<&'a str>,
    document_templates: Vec<&'a str>,
    document_contents: Vec<&'a str>,
    document_at: Vec<i64>,
}

impl QueryId for BatchWrite<'_> {
    type QueryId = BatchWrite<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

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

// Every CTE runs to completion whether or not it is read. `WITH ORDINALITY … ORDER BY` keeps
// the ledger's `seq` in the plan's arrival order, which the running `balance_after` follows.
impl QueryFragment<Pg> for BatchWrite<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH balances AS (UPDATE users SET balance = b.balance FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.balance_users)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<BigInt>, _>(&self.balances)?;
        out.push_sql(
            "::bigint[]) AS b(id, balance) WHERE users.id = b.id), \
             ledger AS (INSERT INTO credit_ledger (user_id, delta, balance_after, reason, created_at) \
             SELECT user_id, delta, balance_after, reason, created_at FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.ledger_users)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<BigInt>, _>(&self.ledger_deltas)?;
        out.push_sql("::bigint[], ");
        out.push_bind_param::<Array<BigInt>, _>(&self.ledger_balances)?;
        out.push_sql("::bigint[], ");
        out.push_bind_param::<Array<Text>, _>(&self.ledger_reasons)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<BigInt>, _>(&self.ledger_at)?;
        out.push_sql(
            "::bigint[]) WITH ORDINALITY \
             AS l(user_id, delta, balance_after, reason, created_at, n) ORDER BY n), \
             owned AS (INSERT INTO template_ownership (user_id, template_id, acquired_at) \
             SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.owner_users)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.owner_templates)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<BigInt>, _>(&self.owner_at)?;
        out.push_sql(
            "::bigint[])) \
             INSERT INTO documents (id, user_id, template_id, content, created_at) \
             SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.document_ids)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.document_users)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.document_templates)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.document_contents)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<BigInt>, _>(&self.document_at)?;
        out.push_sql("::bigint[])");
        Ok(())
    }
}

impl RunQueryDsl<PgConnection> for BatchWrite<'_> {}
