//! Persistence with diesel over PostgreSQL or SQLite. Synchronous: callers
//! run it on a blocking thread.
//!
//! Lookups by primary key, and aggregates, read with `get_result`, not
//! `first`: `first` adds `LIMIT ?`, and SQLite (3.47 and later) re-prepares
//! a statement whose LIMIT is a bound parameter every time it runs, which
//! cost a quarter of a patient read's CPU (callgrind, `make bench`).

pub mod appointments;
pub mod closures;
pub mod connection;
pub mod courses;
pub mod intake;
pub mod locks;
pub mod migrations;
pub mod patients;
pub mod protocols;
pub mod rooms;
pub mod schema;

pub use connection::{build_pool, write_transaction, DbConnection, DbPool};

/// What can go wrong below the domain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A clinic rule refused the change, decided inside a transaction.
    #[error("refused: {}", .0.code())]
    Refused(crate::domain::Refusal),
    /// The domain refused a change made inside a transaction.
    #[error("rejected: {} field(s)", .0.len())]
    Rejected(Vec<crate::domain::FieldError>),
    /// The database cannot be reached or opened.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database: {0}")]
    Database(diesel::result::Error),
    /// A stored value the code cannot read back: a bug or a hand edit.
    #[error("invalid stored value: {0}")]
    Invalid(String),
    #[error("migrations: {0}")]
    Migration(String),
}

impl From<diesel::result::Error> for StoreError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => StoreError::NotFound,
            // SQLite past its busy timeout: the database is there but busy.
            Error::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().contains("database is locked") =>
            {
                StoreError::Unavailable("the database stayed locked past the busy timeout".into())
            }
            // PostgreSQL broke a deadlock or a serialization conflict: the
            // request may simply be sent again.
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                StoreError::Unavailable("a concurrent transaction conflicted; retry".into())
            }
            Error::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().contains("deadlock detected") =>
            {
                StoreError::Unavailable("a concurrent transaction conflicted; retry".into())
            }
            // The server dropped the connection (a restart, a failover, an
            // administrator): the pool replaces it; the request may be sent again.
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                StoreError::Unavailable("the database connection was lost; retry".into())
            }
            Error::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().contains("terminating connection") =>
            {
                StoreError::Unavailable("the database connection was lost; retry".into())
            }
            other => StoreError::Database(other),
        }
    }
}

/// A new UUIDv7 id as text: time-ordered, so ordering by id is creation order.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether `error` is a unique violation of the index `constraint` (as
/// PostgreSQL names it) or on `column` (as SQLite's message names it,
/// `table.column`).
pub fn is_unique_violation(error: &StoreError, constraint: &str, column: &str) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        StoreError::Database(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
            info.constraint_name() == Some(constraint) || info.message().contains(column)
        }
        _ => false,
    }
}
