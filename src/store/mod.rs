//! Persistence with diesel over PostgreSQL or SQLite. Synchronous: callers
//! run it on a blocking thread. The store reads what a decision needs and
//! writes what was decided; it decides nothing but what only the database
//! can say race-free (a unique index taken, a row held): see
//! `docs/ARCHITECTURE.md`.
//!
//! Lookups by primary key, and aggregates, read with `get_result`, not
//! `first`: `first` adds `LIMIT ?`, and SQLite (3.47 and later) re-prepares
//! a statement whose LIMIT is a bound parameter every time it runs, which
//! cost a quarter of a patient read's CPU (callgrind, `make bench`).

/// Holds row `$id` of `$table` until the transaction ends: a concurrent
/// change waits, then sees this one's result. On PostgreSQL a row lock
/// (`FOR NO KEY UPDATE`, the lock an `UPDATE` of the row takes); on SQLite,
/// which has no row locks and serializes writers anyway, a self-assignment.
/// A self-assignment on PostgreSQL would write a new version of the row and,
/// where its page has no room, an entry in each of the table's indexes, for
/// nothing. With a `$row` type, the same statement returns the row as held:
/// one round trip where a read after the lock made two. Kept prepared: one
/// text per table.
///
/// `hold_row!(table.key, …)` holds a table whose key is not `id`.
macro_rules! hold_row {
    ($table:ident, $id:expr, $conn:expr) => {
        hold_row!($table.id, $id, $conn)
    };
    ($table:ident . $key:ident, $id:expr, $conn:expr) => {
        match &mut *$conn {
            $crate::store::DbConnection::Pg(pg) => {
                $table::table.find($id).select($table::$key).for_no_key_update().load::<String>(pg)
            }
            sqlite => $crate::store::Prepared(
                diesel::update($table::table.find($id))
                    .set($table::$key.eq($table::$key))
                    .returning($table::$key),
            )
            .load::<String>(sqlite),
        }
    };
    ($table:ident, $id:expr, $conn:expr, $row:ty) => {
        match &mut *$conn {
            $crate::store::DbConnection::Pg(pg) => $table::table
                .find($id)
                .select(<$row as Selectable<diesel::pg::Pg>>::construct_selection())
                .for_no_key_update()
                .get_result::<$row>(pg),
            sqlite => $crate::store::Prepared(
                diesel::update($table::table.find($id))
                    .set($table::id.eq($table::id))
                    .returning(<$row as Selectable<$crate::store::Backend>>::construct_selection()),
            )
            .get_result::<$row>(sqlite),
        }
    };
}

/// `$body` run on the backend's own connection, `$c` (a `&mut PgConnection`
/// or a `&mut SqliteConnection`), instead of through [`DbConnection`]. The
/// two-backend connection writes a statement's whole SQL text twice on every
/// execution, prepared or not (once to ask whether it may be cached, once
/// to collect its binds); the backend's own connection finds a statement
/// with a static query id by its type and writes no text. `$body` is
/// compiled once per backend.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match &mut *$conn {
            $crate::store::DbConnection::Pg($c) => $body,
            $crate::store::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// One page of `$table`'s rows in id order, as a boxed query to filter
/// further: the [`Rows`] `$rows` asks for.
macro_rules! page {
    ($table:ident, $select:expr, $rows:expr) => {{
        let rows: &$crate::store::Rows = $rows;
        let mut query =
            $table::table.select($select).order($table::id).limit(rows.limit).into_boxed();
        if let Some(after) = &rows.after {
            query = query.filter($table::id.gt(after.clone()));
        }
        query
    }};
}

pub mod appointments;
pub mod audit;
pub mod billing;
pub mod clients;
pub mod closures;
pub mod connection;
pub mod courses;
pub mod events;
pub mod idempotency;
pub mod intake;
pub mod locks;
pub mod migrations;
pub mod patients;
pub mod protocols;
pub mod rooms;
pub mod schema;
pub mod webhooks;

pub use connection::{
    build_pool, connect_postgres, retrying, write_transaction, DbConnection, DbPool,
};

/// The two-backend connection's backend, to name a row's columns by
/// (diesel's `as_returning` is not offered on it).
pub(crate) type Backend = <DbConnection as diesel::Connection>::Backend;

/// `left UNION ALL right`: two selects of the same row type read in one
/// round trip. diesel's own `union_all` is not offered on the two-backend
/// connection (its backend type does not declare the clause, although both
/// of ours have it); the branches must carry no `ORDER BY` or `LIMIT`. A
/// static query, prepared once per connection, when both branches are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnionAll<L, R>(pub L, pub R);

impl<L: diesel::query_builder::QueryId, R: diesel::query_builder::QueryId>
    diesel::query_builder::QueryId for UnionAll<L, R>
{
    type QueryId = UnionAll<L::QueryId, R::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = L::HAS_STATIC_QUERY_ID && R::HAS_STATIC_QUERY_ID;
}

impl<L, R> diesel::query_builder::Query for UnionAll<L, R>
where
    L: diesel::query_builder::Query,
    R: diesel::query_builder::Query<SqlType = L::SqlType>,
{
    type SqlType = L::SqlType;
}

impl<L, R, DB> diesel::query_builder::QueryFragment<DB> for UnionAll<L, R>
where
    DB: diesel::backend::Backend,
    L: diesel::query_builder::QueryFragment<DB>,
    R: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" UNION ALL ");
        self.1.walk_ast(out.reborrow())
    }
}

impl<L, R, Conn> diesel::RunQueryDsl<Conn> for UnionAll<L, R> {}

/// `Q`, prepared and planned on each execution instead of once per
/// connection. For a lookup on a table that can be nearly empty when its
/// statistics are taken and then grows fast (the kept idempotency answers,
/// on a fresh database or after the expired ones are pruned): PostgreSQL
/// plans it as a sequential scan then, and a connection keeps that plan
/// until autovacuum analyzes the table again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replanned<Q>(pub Q);

impl<Q> diesel::query_builder::QueryId for Replanned<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Replanned<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Replanned<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        out.unsafe_to_cache_prepared();
        self.0.walk_ast(out)
    }
}

impl<Q, Conn> diesel::RunQueryDsl<Conn> for Replanned<Q> {}

/// `Q`, kept prepared on each connection, keyed by its text, where diesel
/// would prepare it anew on every execution: an `UPDATE`, a multi-row
/// `INSERT`, a hand-written query. PostgreSQL then parses and plans it once
/// per connection, as pgbench's `-M prepared` does its own. Only for a text
/// from a small fixed set (a few columns set, a few rows, keys bound, not
/// written in): the cache keeps every text it is given. A lookup by key
/// only, whose plan a table's growth cannot turn stale (see [`Replanned`]).
/// Read its rows (`load`, `get_result`; a write `RETURNING` a column):
/// diesel's `execute` passes the statement on by reference, which loses
/// this and prepares it anew.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prepared<Q>(pub Q);

impl<Q> diesel::query_builder::QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Prepared<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        self.0.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

impl<Q, Conn> diesel::RunQueryDsl<Conn> for Prepared<Q> {}

use crate::domain::Refusal;

/// What can go wrong below the domain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist: what it is, for the answer.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A clinic rule refused the change, decided inside a transaction.
    #[error("refused: {}", .0.code())]
    Refused(Refusal),
    /// A concurrent booking took the room this one was writing: the whole
    /// transaction may be tried again (see [`retrying`]).
    #[error("lost a room to a concurrent booking")]
    LostRace,
    /// The resource is not the version the request's `If-Match` names.
    #[error("precondition failed")]
    PreconditionFailed,
    /// Another process is writing the answer to the request's idempotency key.
    #[error("idempotency key in flight")]
    KeyInFlight,
    /// The request's idempotency key answered a different request.
    #[error("idempotency key reused")]
    KeyReused,
    /// The request's idempotency key answered this same request already:
    /// the change is rolled back, and the kept answer sent again.
    #[error("idempotency key answered")]
    KeyAnswered(Box<idempotency::StoredAnswer>),
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

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> Self {
        StoreError::Refused(refusal)
    }
}

/// Names what a lookup by key did not find.
pub trait Found<T> {
    fn found(self, what: &'static str) -> Result<T, StoreError>;
}

impl<T> Found<T> for diesel::QueryResult<T> {
    fn found(self, what: &'static str) -> Result<T, StoreError> {
        match self {
            Err(diesel::result::Error::NotFound) => Err(StoreError::NotFound(what)),
            other => Ok(other?),
        }
    }
}

impl From<diesel::result::Error> for StoreError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => StoreError::NotFound("resource"),
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

/// Which rows of a list in id order: `limit` of them, after the id `after`
/// if given (the cursor of a page).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    pub after: Option<String>,
    pub limit: i64,
}

/// A new UUIDv7 id as text: time-ordered, so ordering by id is creation order.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A write a unique index may refuse, on `constraint` (as PostgreSQL names
/// it) or `column` (as SQLite's message names it): refused, a `conflict`
/// with `detail`.
pub fn unique_or_conflict(
    written: diesel::QueryResult<usize>,
    (constraint, column): (&str, &str),
    detail: impl FnOnce() -> String,
) -> Result<(), StoreError> {
    match written.map_err(StoreError::from) {
        Err(e) if is_unique_violation(&e, constraint, column) => {
            Err(Refusal::Conflict { detail: detail(), appointment_ids: Vec::new() }.into())
        }
        other => other.map(drop),
    }
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
