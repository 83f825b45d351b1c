//! Closures: dates on which the clinic has no slots. Writes run in the
//! caller's transaction.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::calendar::{Closure, Closures};

use super::locks::{self, Guard, Mode};
use super::schema::{appointments, closures};
use super::{new_id, unique_or_conflict, DbConnection, Found, Rows, StoreError};

#[derive(Queryable, Selectable)]
#[diesel(table_name = closures)]
struct ClosureRow {
    id: String,
    date: NaiveDate,
    reason: String,
    created_at: NaiveDateTime,
}

impl From<ClosureRow> for Closure {
    fn from(row: ClosureRow) -> Closure {
        Closure {
            id: row.id,
            date: row.date,
            reason: row.reason,
            created_at: row.created_at.and_utc(),
        }
    }
}

/// The closed dates from `from` to `to`, inclusive.
pub fn dates_between(
    conn: &mut DbConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Closures, StoreError> {
    let dates: Vec<NaiveDate> = on_backend!(conn, |c| closures::table
        .filter(closures::date.between(from, to))
        .select(closures::date)
        .load(c))?;
    Ok(dates.into_iter().collect())
}

pub fn list(
    conn: &mut DbConnection,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    rows: &Rows,
) -> Result<Vec<Closure>, StoreError> {
    let mut query = page!(closures, ClosureRow::as_select(), rows);
    if let Some(from) = from {
        query = query.filter(closures::date.ge(from));
    }
    if let Some(to) = to {
        query = query.filter(closures::date.le(to));
    }
    let rows: Vec<ClosureRow> = query.load(conn)?;
    Ok(rows.into_iter().map(Closure::from).collect())
}

/// What closing `date` reads: the active appointments on it, after waiting
/// for bookings of the date in flight and holding new ones off.
pub fn booked_on(conn: &mut DbConnection, date: NaiveDate) -> Result<Vec<String>, StoreError> {
    locks::lock(conn, Guard::Date(date), Mode::Exclusive)?;
    Ok(appointments::table
        .filter(appointments::date.eq(date))
        .filter(super::appointments::HoldsSlot)
        .order((appointments::session, appointments::id))
        .select(appointments::id)
        .load(conn)?)
}

/// Closes `date`, as decided; a date closed already is a conflict.
pub fn insert(
    conn: &mut DbConnection,
    date: NaiveDate,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Closure, StoreError> {
    let id = new_id();
    let now = now.naive_utc();
    let inserted = diesel::insert_into(closures::table)
        .values((
            closures::id.eq(&id),
            closures::date.eq(date),
            closures::reason.eq(reason),
            closures::created_at.eq(now),
        ))
        .execute(conn);
    let date_key = ("closures_date_key", "closures.date");
    unique_or_conflict(inserted, date_key, || format!("{date} is already closed"))?;
    Ok(Closure { id, date, reason: reason.to_owned(), created_at: now.and_utc() })
}

/// Reopens a date. `NotFound` if there is no such closure.
/// The closure `id`, held until commit.
pub fn hold(conn: &mut DbConnection, id: &str) -> Result<Closure, StoreError> {
    hold_row!(closures, id, conn)?;
    let row: ClosureRow = closures::table
        .find(id)
        .select(ClosureRow::as_select())
        .get_result(conn)
        .found("closure")?;
    Ok(row.into())
}

pub fn delete(conn: &mut DbConnection, id: &str) -> Result<(), StoreError> {
    let deleted = diesel::delete(closures::table.find(id)).execute(conn)?;
    if deleted == 0 {
        Err(StoreError::NotFound("closure"))
    } else {
        Ok(())
    }
}
