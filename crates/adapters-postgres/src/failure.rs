//! How database failures become port errors.
//!
//! A closure run by [`crate::DbStore`] fails with a [`Failure`]: a diesel error (classified here),
//! a store error found while reading rows, or the port's own error (e.g. `DuplicateName`), which
//! also rolls the transaction back.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use keys_domain::ListError;
use keys_domain::ports::{
    CreateUserError, GrantStoreError, InsertKeyError, RotateKeyStoreError, StoreError,
};

/// Why a store closure stopped.
#[derive(Debug)]
pub enum Failure<E> {
    Db(DieselError),
    Store(StoreError),
    Port(E),
}

impl<E> From<DieselError> for Failure<E> {
    fn from(e: DieselError) -> Self {
        Self::Db(e)
    }
}

impl<E> From<StoreError> for Failure<E> {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl<E: FromStoreError> Failure<E> {
    /// The port error this failure is reported as.
    pub fn into_port_error(self) -> E {
        match self {
            Self::Db(e) => E::from_store_error(classify(&e)),
            Self::Store(e) => E::from_store_error(e),
            Self::Port(e) => e,
        }
    }
}

/// The port error types that can carry a [`StoreError`].
pub trait FromStoreError {
    fn from_store_error(e: StoreError) -> Self;
}

impl FromStoreError for StoreError {
    fn from_store_error(e: StoreError) -> Self {
        e
    }
}

impl FromStoreError for InsertKeyError {
    fn from_store_error(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl FromStoreError for RotateKeyStoreError {
    fn from_store_error(e: StoreError) -> Self {
        Self::Insert(InsertKeyError::Store(e))
    }
}

impl FromStoreError for keys_domain::ports::UpdateKeyStoreError {
    fn from_store_error(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl FromStoreError for ListError {
    fn from_store_error(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl FromStoreError for GrantStoreError {
    fn from_store_error(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl FromStoreError for CreateUserError {
    fn from_store_error(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Messages of transient failures that diesel reports as `Unknown`: a lost PostgreSQL
/// connection, a deadlock victim, SQLite's busy timeout.
const TRANSIENT_MESSAGES: &[&str] = &[
    "database is locked",
    "database is busy",
    "deadlock detected",
    "server closed the connection",
    "terminating connection",
    "no connection to the server",
    "connection to server",
    "could not receive data",
    "could not send data",
    "the database system is shutting down",
    "the database system is starting up",
    "canceling statement due to lock timeout",
];

/// `Unavailable` for what a retry can fix (the caller answers 503), `Internal` for the rest.
/// Outages are logged by their start and end (`database_health.rs`), not here per call.
#[must_use]
pub fn classify(e: &DieselError) -> StoreError {
    if is_transient(e) {
        StoreError::Unavailable(e.to_string())
    } else {
        tracing::error!(error = %e, "unexpected database error");
        StoreError::Internal(e.to_string())
    }
}

/// Whether a retry can fix `e`: the connection or the server, not the statement.
#[must_use]
pub fn is_transient(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::SerializationFailure
            | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
        | DieselError::BrokenTransactionManager => true,
        DieselError::DatabaseError(_, info) => {
            let message = info.message().to_ascii_lowercase();
            TRANSIENT_MESSAGES.iter().any(|m| message.contains(m))
        }
        _ => false,
    }
}

/// A unique index, as each backend names it in a violation: PostgreSQL by the constraint's
/// name, SQLite by its columns in the message (`UNIQUE constraint failed: t.a, t.b`).
pub struct UniqueIndex {
    pub name: &'static str,
    pub columns: &'static str,
}

impl UniqueIndex {
    /// Whether `e` is a violation of this index (and not of another one on the same table).
    #[must_use]
    pub fn is_violated_by(&self, e: &DieselError) -> bool {
        let DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = e else {
            return false;
        };
        match info.constraint_name() {
            Some(name) => name == self.name,
            None => info.message().strip_prefix("UNIQUE constraint failed: ") == Some(self.columns),
        }
    }
}
