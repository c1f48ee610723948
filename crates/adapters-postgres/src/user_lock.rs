//! The user row lock that every write transaction on a user's keys or balance takes first.

use diesel::prelude::*;

use crate::cached_statements::LockUser;
use crate::connection::AnyConnection;

/// Locks the user's row for the rest of the transaction; `false` when there is no such user.
///
/// Every write transaction on a user's keys or balance starts here. On PostgreSQL the row lock
/// serialises them per user (so the key limit holds under concurrent inserts); on SQLite a
/// write as the first statement takes the write lock at once, so the transaction never has to
/// upgrade a read lock (which fails with SQLITE_BUSY instead of waiting).
pub(crate) fn lock_user(conn: &mut AnyConnection, user: &str) -> QueryResult<bool> {
    Ok(LockUser { user }.execute(conn)? == 1)
}
