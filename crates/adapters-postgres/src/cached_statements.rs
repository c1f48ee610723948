//! Statements written so that each is prepared once per connection: [`cached_statement!`],
//! and the frequent `UPDATE`s declared with it.
//!
//! Diesel never caches an `UPDATE` built with its DSL (the SQL of a changeset may change with
//! its values), so every balance update, row lock and usage count would be parsed anew, once
//! per user of every batch, on the ledger's hottest path. Each
//! statement declared here has fixed text and its own type, hence a static query id, which
//! diesel's statement cache keys on. PostgreSQL's batch write uses the same macro
//! ([`crate::batch_write_postgres`]).

use diesel::sql_types::{BigInt, Bool, Text};

/// Declares a statement: its fields (Rust type as SQL type) and its text, as literal pieces
/// with a field bound between each two. It runs on any backend that has the binds' SQL types.
macro_rules! cached_statement {
    (
        $(#[$meta:meta])*
        $name:ident { $($field:ident: $ty:ty as $sql:ty),+ $(,)? }
        = $first:literal $(, $bind:ident: $bind_sql:ty, $piece:literal)*
    ) => {
        $(#[$meta])*
        pub(crate) struct $name<'a> {
            $(pub(crate) $field: $ty,)+
        }

        impl diesel::query_builder::QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl<'a, DB> diesel::query_builder::QueryFragment<DB> for $name<'a>
        where
            DB: diesel::backend::Backend,
            $(DB: diesel::sql_types::HasSqlType<$bind_sql>,)*
            $($ty: diesel::serialize::ToSql<$sql, DB>,)+
        {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
            ) -> diesel::QueryResult<()> {
                out.push_sql($first);
                $(
                    out.push_bind_param::<$bind_sql, _>(&self.$bind)?;
                    out.push_sql($piece);
                )*
                Ok(())
            }
        }

        impl<Conn> diesel::RunQueryDsl<Conn> for $name<'_> {}
    };
}
pub(crate) use cached_statement;

cached_statement!(
    /// Takes the user's row lock (on SQLite, the write lock) without changing it; 1 row when
    /// the user exists.
    LockUser { user: &'a str as Text } = "UPDATE users SET balance = balance WHERE id = ", user: Text, ""
);

cached_statement!(
    /// Writes a user's balance.
    SetBalance { user: &'a str as Text, balance: i64 as BigInt }
        = "UPDATE users SET balance = ", balance: BigInt, " WHERE id = ", user: Text, ""
);

cached_statement!(
    /// Adds a key's requests to its count, which stops at 2^53 − 1 (the largest integer a JSON
    /// reader keeps exact; past i64 the addition would fail every later flush), and keeps the
    /// later of the two last-use times (spelled portably: SQLite has no `GREATEST`).
    AddKeyUsage { key: &'a str as Text, count: i64 as BigInt, at: i64 as BigInt }
        = "UPDATE api_keys SET usage_count = CASE WHEN usage_count > 9007199254740991 - ",
          count: BigInt, " THEN 9007199254740991 ELSE usage_count + ", count: BigInt,
          " END, last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < ", at: BigInt,
          " THEN ", at: BigInt, " ELSE last_used_at END WHERE id = ", key: Text, ""
);

cached_statement!(
    /// Adds requests to a key's existing hourly row, up to 2^53 − 1 as `AddKeyUsage`; 0 rows
    /// when the hour has none yet.
    #[derive(Clone, Copy)]
    AddToHour { key: &'a str as Text, hour_start: i64 as BigInt, count: i64 as BigInt }
        = "UPDATE key_usage_hours SET count = CASE WHEN count > 9007199254740991 - ",
          count: BigInt, " THEN 9007199254740991 ELSE count + ", count: BigInt,
          " END WHERE key_id = ", key: Text, " AND hour_start = ", hour_start: BigInt, ""
);

cached_statement!(
    /// Adds requests to a key's existing client; `last_seen` and `browser` only grow, whichever
    /// of two instances' flushes lands last. 0 rows when the key has no such client yet.
    AddClientUse {
        key: &'a str as Text,
        network: &'a str as Text,
        user_agent: &'a str as Text,
        requests: i64 as BigInt,
        last_seen: i64 as BigInt,
        browser: bool as Bool,
    } = "UPDATE key_clients SET requests = requests + ", requests: BigInt,
        ", last_seen = CASE WHEN last_seen < ", last_seen: BigInt, " THEN ", last_seen: BigInt,
        " ELSE last_seen END, browser = (browser OR ", browser: Bool, ") WHERE key_id = ",
        key: Text, " AND network = ", network: Text, " AND user_agent = ", user_agent: Text, ""
);

cached_statement!(
    /// Inserts a key's client, or adds to it when another instance inserted it meanwhile.
    InsertClient {
        key: &'a str as Text,
        network: &'a str as Text,
        user_agent: &'a str as Text,
        first_seen: i64 as BigInt,
        last_seen: i64 as BigInt,
        requests: i64 as BigInt,
        browser: bool as Bool,
    } = "INSERT INTO key_clients \
         (key_id, network, user_agent, first_seen, last_seen, requests, browser) VALUES (",
        key: Text, ", ", network: Text, ", ", user_agent: Text, ", ", first_seen: BigInt, ", ",
        last_seen: BigInt, ", ", requests: BigInt, ", ", browser: Bool,
        ") ON CONFLICT (key_id, network, user_agent) DO UPDATE SET \
         requests = key_clients.requests + excluded.requests, \
         last_seen = CASE WHEN excluded.last_seen > key_clients.last_seen \
         THEN excluded.last_seen ELSE key_clients.last_seen END, \
         browser = (key_clients.browser OR excluded.browser)"
);
