//! Closures: dates on which the clinic has no slots.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::appointment::AppointmentStatus;
use crate::domain::calendar::Closures;
use crate::domain::Refusal;

use super::locks::{self, Guard, Mode};
use super::schema::{appointments, closures};
use super::{is_unique_violation, new_id, write_transaction, DbConnection, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = closures)]
pub struct Closure {
    pub id: String,
    pub date: NaiveDate,
    pub reason: String,
    /// UTC.
    pub created_at: NaiveDateTime,
}

/// The closed dates from `from` to `to`, inclusive.
pub fn dates_between(
    conn: &mut DbConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Closures, StoreError> {
    let dates: Vec<NaiveDate> = closures::table
        .filter(closures::date.between(from, to))
        .select(closures::date)
        .load(conn)?;
    Ok(dates.into_iter().collect())
}

pub fn list(
    conn: &mut DbConnection,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Closure>, StoreError> {
    let mut query = closures::table
        .select(Closure::as_select())
        .order(closures::id)
        .limit(limit)
        .into_boxed();
    if let Some(from) = from {
        query = query.filter(closures::date.ge(from));
    }
    if let Some(to) = to {
        query = query.filter(closures::date.le(to));
    }
    if let Some(after) = after {
        query = query.filter(closures::id.gt(after.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// Closes `date`. Refused while active appointments stand on it, naming
/// them: nothing is cancelled silently.
pub fn insert(
    conn: &mut DbConnection,
    date: NaiveDate,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Closure, StoreError> {
    let id = new_id();
    let result = write_transaction(conn, |conn| {
        // Waits for bookings of the date in flight, and holds new ones off.
        locks::lock(conn, Guard::Date(date), Mode::Exclusive)?;
        let booked: Vec<String> = appointments::table
            .filter(appointments::date.eq(date))
            .filter(
                appointments::status
                    .eq_any(AppointmentStatus::ACTIVE.map(AppointmentStatus::as_str)),
            )
            .order((appointments::session, appointments::id))
            .select(appointments::id)
            .load(conn)?;
        if !booked.is_empty() {
            return Err(StoreError::Refused(Refusal::Conflict {
                detail: format!(
                    "{date} has {} appointment(s); reschedule or cancel them before closing it",
                    booked.len()
                ),
                appointment_ids: booked,
            }));
        }
        diesel::insert_into(closures::table)
            .values((
                closures::id.eq(&id),
                closures::date.eq(date),
                closures::reason.eq(reason),
                closures::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        Ok(closures::table
            .find(&id)
            .select(Closure::as_select())
            .get_result(conn)?)
    });
    match result {
        Err(e) if is_unique_violation(&e, "closures_date_key", "closures.date") => {
            Err(StoreError::Refused(Refusal::Conflict {
                detail: format!("{date} is already closed"),
                appointment_ids: Vec::new(),
            }))
        }
        other => other,
    }
}

/// Reopens a date. `NotFound` if there is no such closure.
pub fn delete(conn: &mut DbConnection, id: &str) -> Result<(), StoreError> {
    let deleted = diesel::delete(closures::table.find(id)).execute(conn)?;
    if deleted == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}
