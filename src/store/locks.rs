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

/// What a booking takes before it reads the calendar of its dates: the
/// rooms' shared lock, then the shared locks of `dates` ascending (the one
/// lock order), whatever order they come in, in one statement: a course's
/// five dates and the rooms cost one round trip instead of six.
pub fn lock_slots(
    conn: &mut DbConnection,
    dates: impl IntoIterator<Item = NaiveDate>,
) -> Result<(), StoreError> {
    let DbConnection::Pg(pg) = conn else {
        return Ok(());
    };
    let mut keys: Vec<i32> = dates.into_iter().map(|d| d.num_days_from_ce()).collect();
    keys.sort_unstable();
    keys.dedup();
    let (spaces, keys): (Vec<String>, Vec<String>) = std::iter::once((ROOM_LOCKS, 0))
        .chain(keys.into_iter().map(|k| (DATE_LOCKS, k)))
        .map(|(space, key)| (space.to_string(), key.to_string()))
        .unzip();
    let function = function(Mode::Shared);
    // `unnest` yields the arrays in their order, so the locks are taken in
    // it; the keys are integers this code computed: nothing outside reaches
    // the SQL.
    diesel::sql_query(format!(
        "SELECT count({function}(s, k)) FROM unnest(ARRAY[{}], ARRAY[{}]) AS t (s, k)",
        spaces.join(", "),
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
