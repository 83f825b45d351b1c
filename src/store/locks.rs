//! Locks that make a check and the write depending on it atomic where no
//! index can: a booking must not land on a date being closed, nor in a room
//! being deactivated. On SQLite every write transaction already holds the
//! database's one write lock (`BEGIN IMMEDIATE`), so these cost nothing
//! there; on PostgreSQL they are transaction-scoped advisory locks, released
//! at commit or rollback.

use chrono::{Datelike, NaiveDate};
use diesel::sql_types::{Array, BigInt, Integer};
use diesel::{QueryableByName, RunQueryDsl};

use crate::domain::calendar::Session;

use super::{DbConnection, Prepared, StoreError};

/// Advisory lock namespaces (the first key of PostgreSQL's two-key form),
/// all of them here so that no two share one.
const DATE_LOCKS: i32 = 1501;
const ROOM_LOCKS: i32 = 1502;
/// Idempotency keys, by the hash of caller and key (`store::idempotency`).
pub(super) const KEY_LOCKS: i32 = 1503;
const SLOT_LOCKS: i32 = 1504;

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
        Guard::Date(date) => (DATE_LOCKS, date_key(date)),
        Guard::Rooms => (ROOM_LOCKS, 0),
    };
    let function = function(mode);
    // Two texts in all, the keys bound: kept prepared.
    let taken: Taken = Prepared(
        diesel::sql_query(format!("SELECT count({function}($1, $2)) AS taken"))
            .bind::<Integer, _>(space)
            .bind::<Integer, _>(key),
    )
    .get_result(pg)?;
    taken.all_of(1)
}

/// What a booking takes before it reads the calendar of its slots: the
/// rooms' shared lock, the shared locks of the slots' dates ascending, then
/// the exclusive locks of the slots (date and session) ascending (the one
/// lock order), whatever order they come in, in one statement: a course's
/// five slots and the rooms cost one round trip instead of eleven.
///
/// A slot's lock queues the bookings of one session: the next one reads the
/// rooms after the last one committed and takes the next free room. Without
/// it they raced for the same first free room, and all but one waited on
/// its index entry, failed and started over (`make bench`'s concurrent
/// courses on the same Mondays: 842 rollbacks in 24 s, 579 with these locks).
pub fn lock_slots(
    conn: &mut DbConnection,
    slots: impl IntoIterator<Item = (NaiveDate, Session)>,
) -> Result<(), StoreError> {
    let DbConnection::Pg(pg) = conn else {
        return Ok(());
    };
    let mut slots: Vec<i32> =
        slots.into_iter().map(|(date, session)| slot_key(date, session)).collect();
    slots.sort_unstable();
    slots.dedup();
    // A slot's key holds its date's: `key / 2` (`slot_key`), in the same order.
    let mut dates: Vec<i32> = slots.iter().map(|k| k / 2).collect();
    dates.dedup();
    let (spaces, keys): (Vec<i32>, Vec<i32>) = std::iter::once((ROOM_LOCKS, 0))
        .chain(dates.into_iter().map(|k| (DATE_LOCKS, k)))
        .chain(slots.into_iter().map(|k| (SLOT_LOCKS, k)))
        .unzip();
    let shared = function(Mode::Shared);
    let exclusive = function(Mode::Exclusive);
    // `unnest` yields the arrays in their order, so the locks are taken in
    // it. One text, the keys bound: kept prepared.
    let expected = spaces.len();
    let taken: Taken = Prepared(
        diesel::sql_query(format!(
            "SELECT count(CASE WHEN s = {SLOT_LOCKS} THEN {exclusive}(s, k) ELSE {shared}(s, k) \
             END) AS taken FROM unnest($1::int4[], $2::int4[]) AS t (s, k)"
        ))
        .bind::<Array<Integer>, _>(spaces)
        .bind::<Array<Integer>, _>(keys),
    )
    .get_result(pg)?;
    taken.all_of(expected)
}

/// How many locks a statement took (read, not executed, so that it stays
/// [`Prepared`]).
#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = BigInt)]
    taken: i64,
}

impl Taken {
    /// Whether the statement took the `expected` locks it names.
    fn all_of(self, expected: usize) -> Result<(), StoreError> {
        if usize::try_from(self.taken).ok() == Some(expected) {
            return Ok(());
        }
        Err(StoreError::Invalid(format!("{} of {expected} locks taken", self.taken)))
    }
}

/// The key of a date's lock, which closing the date and booking on it share.
fn date_key(date: NaiveDate) -> i32 {
    date.num_days_from_ce()
}

/// The key of a slot's lock: its date's key, doubled, and its session, so
/// that halving it gives the date's key back.
fn slot_key(date: NaiveDate, session: Session) -> i32 {
    let half = match session {
        Session::Morning => 0,
        Session::Afternoon => 1,
    };
    date_key(date) * 2 + half
}

fn function(mode: Mode) -> &'static str {
    match mode {
        Mode::Shared => "pg_advisory_xact_lock_shared",
        Mode::Exclusive => "pg_advisory_xact_lock",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_key_halves_to_its_date_key_and_orders_as_its_slot() {
        let monday = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let tuesday = NaiveDate::from_ymd_opt(2026, 12, 8).unwrap();
        let keys = [
            slot_key(monday, Session::Morning),
            slot_key(monday, Session::Afternoon),
            slot_key(tuesday, Session::Morning),
            slot_key(tuesday, Session::Afternoon),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for (key, date) in keys.iter().zip([monday, monday, tuesday, tuesday]) {
            assert_eq!(key / 2, date_key(date), "{date}");
        }
    }
}
