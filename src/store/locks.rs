//! Locks that make a check and the write depending on it atomic where no
//! index can: a booking must not land on a date being closed, nor in a room
//! being deactivated. On SQLite every write transaction already holds the
//! database's one write lock (`BEGIN IMMEDIATE`), so these cost nothing
//! there; on PostgreSQL they are transaction-scoped advisory locks, released
//! at commit or rollback.

use chrono::{Datelike, NaiveDate};
use diesel::RunQueryDsl;

use super::{DbConnection, StoreError};

/// Advisory lock namespaces (the first key of PostgreSQL's two-key form).
const DATE_LOCKS: i32 = 1501;
const ROOM_LOCKS: i32 = 1502;

/// What a lock guards.
#[derive(Clone, Copy, Debug)]
pub enum Guard {
    /// The slots of one date: bookings share it, closing the date takes it alone.
    Date(NaiveDate),
    /// The set of active rooms: bookings share it, deactivating a room takes it alone.
    Rooms,
}

/// Shared locks do not block each other; an exclusive one waits for them
/// and blocks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// Takes `guard` in `mode` until the current transaction ends.
pub fn lock(conn: &mut DbConnection, guard: Guard, mode: Mode) -> Result<(), StoreError> {
    let DbConnection::Pg(pg) = conn else {
        return Ok(());
    };
    let (space, key) = match guard {
        Guard::Date(date) => (DATE_LOCKS, date.num_days_from_ce()),
        Guard::Rooms => (ROOM_LOCKS, 0),
    };
    let function = function(mode);
    // Both keys are integers this code computed: nothing outside reaches the SQL.
    diesel::sql_query(format!("SELECT {function}({space}, {key})")).execute(pg)?;
    Ok(())
}

/// Takes the locks of several dates in one statement, in ascending order
/// (the one lock order), whatever order `dates` come in: a course's five
/// dates cost one round trip instead of five.
pub fn lock_dates(
    conn: &mut DbConnection,
    dates: impl IntoIterator<Item = NaiveDate>,
    mode: Mode,
) -> Result<(), StoreError> {
    let DbConnection::Pg(pg) = conn else {
        return Ok(());
    };
    let mut keys: Vec<i32> = dates.into_iter().map(|d| d.num_days_from_ce()).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    let function = function(mode);
    let keys: Vec<String> = keys.iter().map(i32::to_string).collect();
    // `unnest` yields the array in its order, so the locks are taken ascending.
    diesel::sql_query(format!(
        "SELECT count({function}({DATE_LOCKS}, k)) FROM unnest(ARRAY[{}]) AS k",
        keys.join(", ")
    ))
    .execute(pg)?;
    Ok(())
}

fn function(mode: Mode) -> &'static str {
    match mode {
        Mode::Shared => "pg_advisory_xact_lock_shared",
        Mode::Exclusive => "pg_advisory_xact_lock",
    }
}
