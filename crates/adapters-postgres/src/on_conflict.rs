//! `INSERT … ON CONFLICT DO NOTHING` for the multi-backend connection.
//!
//! diesel's upsert DSL is per backend, and the `MultiConnection` backend does not offer it. The
//! clause itself is spelled the same in PostgreSQL and SQLite (≥ 3.24), so this wrapper appends
//! it to any insert statement; binds still go through diesel, placeholders per backend.

use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

use crate::connection::MultiBackend;

/// The wrapped insert, skipped (0 rows affected) when it would violate a unique constraint.
#[derive(Debug, Clone, Copy)]
pub struct OnConflictDoNothing<Q>(pub Q);

impl<Q: QueryFragment<MultiBackend>> QueryFragment<MultiBackend> for OnConflictDoNothing<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" ON CONFLICT DO NOTHING");
        Ok(())
    }
}

impl<Q> QueryId for OnConflictDoNothing<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, C> RunQueryDsl<C> for OnConflictDoNothing<Q> {}
