//! Appointments: booking with a room assigned, listing, and state changes.
//! Double booking is prevented by two partial unique indexes (room and
//! session; patient and day, over active appointments); a lost race on a
//! room is retried with another free room.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};

use crate::domain::appointment::{Appointment, AppointmentStatus, PainScore, Route};
use crate::domain::calendar::{Calendar, Session};
use crate::domain::protocol::Occupancy;
use crate::domain::readiness::{readiness, IntakePolicy};
use crate::domain::{FieldError, Refusal};

use super::locks::{self, Guard, Mode};
use super::schema::{appointments, rooms};
use super::{
    closures, intake, is_unique_violation, new_id, patients, write_transaction, DbConnection,
    StoreError,
};

/// Attempts at a room before giving up: each lost race means another
/// booking took a room, so this bounds retries without bounding capacity.
const MAX_ROOM_ATTEMPTS: usize = 16;

/// `appointments.status IN ('scheduled', 'checked_in', 'completed')`: the
/// statuses that hold a room and a patient's day, written out as literals,
/// the same text as the predicate of the partial indexes in the migrations.
/// Bound as parameters, the list would hide from the query planners (SQLite,
/// and PostgreSQL's generic plans for prepared statements) that those
/// indexes apply, and every range query would read the cancelled rows too.
/// A type of its own rather than `diesel::dsl::sql`, whose statements diesel
/// never caches: PostgreSQL then parsed and planned them on every request.
#[derive(Debug, Clone, Copy, QueryId, ValidGrouping)]
struct HoldsSlot;

const HOLDS_SLOT_SQL: &str = "appointments.status IN ('scheduled', 'checked_in', 'completed')";

impl Expression for HoldsSlot {
    type SqlType = diesel::sql_types::Bool;
}

impl<QS> AppearsOnTable<QS> for HoldsSlot where appointments::status: AppearsOnTable<QS> {}

impl<QS> SelectableExpression<QS> for HoldsSlot where appointments::status: SelectableExpression<QS> {}

impl<DB: diesel::backend::Backend> QueryFragment<DB> for HoldsSlot {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(HOLDS_SLOT_SQL);
        Ok(())
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = appointments)]
struct AppointmentRow {
    id: String,
    patient_id: String,
    room_id: String,
    date: NaiveDate,
    session: String,
    starts_at: NaiveDateTime,
    status: String,
    route: String,
    pain_before: Option<i32>,
    pain_after: Option<i32>,
    cancel_reason: Option<String>,
    cancelled_by: Option<String>,
    checked_in_at: Option<NaiveDateTime>,
    completed_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    course_id: Option<String>,
    phq9: Option<i32>,
}

fn invalid(what: &str, value: &str) -> StoreError {
    StoreError::Invalid(format!("appointment {what} `{value}`"))
}

impl TryFrom<AppointmentRow> for Appointment {
    type Error = StoreError;

    fn try_from(row: AppointmentRow) -> Result<Self, StoreError> {
        let score = |v: Option<i32>| match v {
            None => Ok(None),
            Some(v) => PainScore::new(v)
                .map(Some)
                .ok_or_else(|| invalid("pain score", &v.to_string())),
        };
        Ok(Appointment {
            session: Session::parse(&row.session)
                .ok_or_else(|| invalid("session", &row.session))?,
            status: AppointmentStatus::parse(&row.status)
                .ok_or_else(|| invalid("status", &row.status))?,
            route: Route::parse(&row.route).ok_or_else(|| invalid("route", &row.route))?,
            pain_before: score(row.pain_before)?,
            pain_after: score(row.pain_after)?,
            id: row.id,
            patient_id: row.patient_id,
            room_id: row.room_id,
            date: row.date,
            starts_at: row.starts_at.and_utc(),
            cancel_reason: row.cancel_reason,
            cancelled_by: row.cancelled_by,
            checked_in_at: row.checked_in_at.map(|t| t.and_utc()),
            completed_at: row.completed_at.map(|t| t.and_utc()),
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
            course_id: row.course_id,
            phq9: row.phq9,
        })
    }
}

/// Reads an appointment inside a write transaction, holding its row until
/// commit: a concurrent change (cancel racing check-in, say) waits and then
/// sees this one's result. The self-assignment is the portable row lock
/// (`FOR UPDATE` is PostgreSQL's; SQLite writers are serialized anyway).
fn find_for_update(conn: &mut DbConnection, id: &str) -> Result<Appointment, StoreError> {
    diesel::update(appointments::table.find(id))
        .set(appointments::id.eq(appointments::id))
        .execute(conn)?;
    find(conn, id)
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Appointment, StoreError> {
    appointments::table
        .find(id)
        .select(AppointmentRow::as_select())
        .get_result(conn)?
        .try_into()
}

/// The appointments of these courses, in date and session order.
pub fn for_courses(
    conn: &mut DbConnection,
    course_ids: &[String],
) -> Result<Vec<Appointment>, StoreError> {
    appointments::table
        .filter(appointments::course_id.eq_any(course_ids))
        .order((appointments::date, appointments::starts_at))
        .select(AppointmentRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Appointment::try_from)
        .collect()
}

/// Filters of a listing; all optional.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub patient_id: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub status: Option<AppointmentStatus>,
}

pub fn list(
    conn: &mut DbConnection,
    filter: &Filter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Appointment>, StoreError> {
    let mut query = appointments::table
        .select(AppointmentRow::as_select())
        .order(appointments::id)
        .limit(limit)
        .into_boxed();
    if let Some(patient_id) = &filter.patient_id {
        query = query.filter(appointments::patient_id.eq(patient_id.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(appointments::date.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(appointments::date.le(to));
    }
    if let Some(status) = filter.status {
        query = query.filter(appointments::status.eq(status.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(appointments::id.gt(after.to_owned()));
    }
    query
        .load(conn)?
        .into_iter()
        .map(Appointment::try_from)
        .collect()
}

/// Active rooms free in a session, in name order.
fn free_rooms(
    conn: &mut DbConnection,
    date: NaiveDate,
    session: Session,
) -> Result<Vec<String>, StoreError> {
    let taken = appointments::table
        .filter(appointments::date.eq(date))
        .filter(appointments::session.eq(session.as_str()))
        .filter(HoldsSlot)
        .select(appointments::room_id);
    Ok(rooms::table
        .filter(rooms::active.eq(true))
        .filter(rooms::id.ne_all(taken))
        .order((rooms::name, rooms::id))
        .select(rooms::id)
        .load(conn)?)
}

/// The first free room of a session; `slot_full` if there is none.
fn first_free_room(
    conn: &mut DbConnection,
    date: NaiveDate,
    session: Session,
) -> Result<String, StoreError> {
    free_rooms(conn, date, session)?
        .into_iter()
        .next()
        .ok_or(StoreError::Refused(Refusal::SlotFull))
}

/// Whether the patient holds an active appointment on `date`, other than `except`.
fn patient_booked_on(
    conn: &mut DbConnection,
    patient_id: &str,
    date: NaiveDate,
    except: Option<&str>,
) -> Result<bool, StoreError> {
    // No id is empty, so `""` excepts nothing.
    let query = appointments::table
        .filter(appointments::patient_id.eq(patient_id))
        .filter(appointments::date.eq(date))
        .filter(HoldsSlot)
        .filter(appointments::id.ne(except.unwrap_or("")));
    Ok(diesel::select(diesel::dsl::exists(query)).get_result(conn)?)
}

/// The calendar's verdict on a slot, with the closures read in the same
/// transaction. Takes the date's and the rooms' shared locks first, so the
/// date cannot be closed nor the chosen room deactivated before commit.
fn check_slot(
    conn: &mut DbConnection,
    calendar: &Calendar,
    date: NaiveDate,
    session: Session,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    // One lock order everywhere: the rooms, then dates ascending.
    locks::lock(conn, Guard::Rooms, Mode::Shared)?;
    locks::lock(conn, Guard::Date(date), Mode::Shared)?;
    let closed = closures::dates_between(conn, date, date)?;
    calendar
        .check_bookable(date, session, now, &closed)
        .map(|t| t.with_timezone(&Utc))
        .map_err(StoreError::Refused)
}

/// Refuses with `not_ready` unless every blocking readiness item is done.
pub fn require_ready(
    conn: &mut DbConnection,
    patient_id: &str,
    today: NaiveDate,
    policy: IntakePolicy,
) -> Result<(), StoreError> {
    // The refusal goes to whoever books: why a screening failed is for clinicians.
    let record = intake::intake_record(conn, patient_id)?.without_reasons();
    let readiness = readiness(&record, today, policy);
    if readiness.ready {
        Ok(())
    } else {
        Err(StoreError::Refused(Refusal::NotReady {
            items: readiness.open_blocking(),
            refused: "booking",
        }))
    }
}

/// Refuses a check-in while the lamotrigine prescriber consult is open, or
/// while the latest screening found a contraindication (one recorded after
/// the booking, say).
pub fn require_check_in_cleared(
    conn: &mut DbConnection,
    patient_id: &str,
    today: NaiveDate,
    policy: IntakePolicy,
) -> Result<(), StoreError> {
    let record = intake::intake_record(conn, patient_id)?.without_reasons();
    let checklist = readiness(&record, today, policy);
    let mut items: Vec<_> = checklist.open_consult().into_iter().collect();
    if record.latest_screening_ineligible() {
        items.extend(
            checklist
                .items
                .into_iter()
                .filter(|i| i.code == "screening"),
        );
    }
    if items.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Refused(Refusal::NotReady {
            items,
            refused: "check-in",
        }))
    }
}

/// Runs `attempt` until it is not beaten to a room, mapping the patient's
/// day index to its refusal.
fn with_room_retries<T>(
    conn: &mut DbConnection,
    date: NaiveDate,
    mut attempt: impl FnMut(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    for _ in 0..MAX_ROOM_ATTEMPTS {
        match attempt(conn) {
            Err(e) if lost_room(&e) => continue,
            Err(e) if lost_patient_day(&e) => {
                return Err(StoreError::Refused(Refusal::PatientAlreadyBookedThatDay(
                    date,
                )))
            }
            other => return other,
        }
    }
    Err(StoreError::Refused(Refusal::SlotFull))
}

/// A booking request, checked for shape by the caller.
#[derive(Clone, Debug)]
pub struct NewBooking {
    pub patient_id: String,
    pub date: NaiveDate,
    pub session: Session,
    pub route: Route,
}

/// Books the session for the patient in a free room, or refuses with the
/// rule that stops it. A refused booking stores nothing.
pub fn book(
    conn: &mut DbConnection,
    calendar: &Calendar,
    policy: IntakePolicy,
    booking: &NewBooking,
    now: DateTime<Utc>,
) -> Result<Appointment, StoreError> {
    let NewBooking {
        patient_id,
        date,
        session,
        route,
    } = booking;
    with_room_retries(conn, *date, |conn| {
        write_transaction(conn, |conn| {
            if !patients::exists(conn, patient_id)? {
                return Err(StoreError::Rejected(vec![FieldError::new(
                    "patient_id",
                    "no patient has this id",
                )]));
            }
            let starts_at = check_slot(conn, calendar, *date, *session, now)?;
            require_ready(conn, patient_id, calendar.local_date(now), policy)?;
            if patient_booked_on(conn, patient_id, *date, None)? {
                return Err(StoreError::Refused(Refusal::PatientAlreadyBookedThatDay(
                    *date,
                )));
            }
            let id = insert_in_free_room(
                conn, patient_id, *date, *session, starts_at, *route, None, now,
            )?;
            find(conn, &id)
        })
    })
}

/// Inserts a scheduled appointment in the first free room of the session;
/// `slot_full` if there is none. Returns the new id.
#[expect(clippy::too_many_arguments, reason = "one appointment's columns")]
pub(super) fn insert_in_free_room(
    conn: &mut DbConnection,
    patient_id: &str,
    date: NaiveDate,
    session: Session,
    starts_at: DateTime<Utc>,
    route: Route,
    course_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let room_id = first_free_room(conn, date, session)?;
    let id = new_id();
    let now = now.naive_utc();
    diesel::insert_into(appointments::table)
        .values((
            appointments::id.eq(&id),
            appointments::patient_id.eq(patient_id),
            appointments::room_id.eq(&room_id),
            appointments::date.eq(date),
            appointments::session.eq(session.as_str()),
            appointments::starts_at.eq(starts_at.naive_utc()),
            appointments::status.eq(AppointmentStatus::Scheduled.as_str()),
            appointments::route.eq(route.as_str()),
            appointments::course_id.eq(course_id),
            appointments::created_at.eq(now),
            appointments::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Whether `error` means another booking won a room or the patient's day.
pub(super) fn lost_a_race(error: &StoreError) -> bool {
    lost_room(error)
        || lost_patient_day(error)
        || matches!(error, StoreError::Refused(Refusal::SlotFull))
}

/// A concurrent booking took the room: `appointments_room_slot_key`.
fn lost_room(error: &StoreError) -> bool {
    is_unique_violation(error, "appointments_room_slot_key", "appointments.room_id")
}

/// A concurrent booking took the patient's day: `appointments_patient_day_key`.
fn lost_patient_day(error: &StoreError) -> bool {
    is_unique_violation(
        error,
        "appointments_patient_day_key",
        "appointments.patient_id",
    )
}

/// Moves a scheduled appointment to another slot under the booking rules,
/// in one statement: the old slot is freed only if the new one is taken.
pub fn reschedule(
    conn: &mut DbConnection,
    calendar: &Calendar,
    id: &str,
    date: NaiveDate,
    session: Session,
    now: DateTime<Utc>,
) -> Result<Appointment, StoreError> {
    with_room_retries(conn, date, |conn| {
        write_transaction(conn, |conn| {
            let current = find_for_update(conn, id)?;
            current
                .status
                .after(crate::domain::appointment::Action::Reschedule)
                .map_err(StoreError::Refused)?;
            let starts_at = check_slot(conn, calendar, date, session, now)?;
            if patient_booked_on(conn, &current.patient_id, date, Some(id))? {
                return Err(StoreError::Refused(Refusal::PatientAlreadyBookedThatDay(
                    date,
                )));
            }
            let room_id = if current.date == date && current.session == session {
                current.room_id.clone()
            } else {
                first_free_room(conn, date, session)?
            };
            diesel::update(appointments::table.find(id))
                .set((
                    appointments::room_id.eq(&room_id),
                    appointments::date.eq(date),
                    appointments::session.eq(session.as_str()),
                    appointments::starts_at.eq(starts_at.naive_utc()),
                    appointments::updated_at.eq(now.naive_utc()),
                ))
                .execute(conn)?;
            find(conn, id)
        })
    })
}

/// What a state change writes; `None` leaves a column as it is.
#[derive(AsChangeset, Default)]
#[diesel(table_name = appointments)]
pub struct Change {
    pub status: Option<&'static str>,
    pub route: Option<&'static str>,
    pub pain_before: Option<i32>,
    pub pain_after: Option<i32>,
    pub cancel_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub checked_in_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
    pub phq9: Option<i32>,
}

/// Reads the appointment, lets `decide` refuse or describe the change, and
/// writes it, all in one transaction.
pub fn change(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
    decide: impl FnOnce(&mut DbConnection, &Appointment) -> Result<Change, StoreError>,
) -> Result<Appointment, StoreError> {
    write_transaction(conn, |conn| {
        let current = find_for_update(conn, id)?;
        let mut change = decide(conn, &current)?;
        change.updated_at = Some(now.naive_utc());
        diesel::update(appointments::table.find(id))
            .set(change)
            .execute(conn)?;
        find(conn, id)
    })
}

/// How full each session of `from`..=`to` is, in three queries whatever the
/// range's length (one grouped query for all appointments), plus one for
/// the days `patient` is already booked, if given.
pub fn occupancy(
    conn: &mut DbConnection,
    from: NaiveDate,
    to: NaiveDate,
    patient: Option<&str>,
) -> Result<Occupancy, StoreError> {
    let capacity: i64 = rooms::table
        .filter(rooms::active.eq(true))
        .count()
        .get_result(conn)?;
    let counts: Vec<(NaiveDate, String, i64)> = appointments::table
        .filter(appointments::date.between(from, to))
        .filter(HoldsSlot)
        .group_by((appointments::date, appointments::session))
        .select((
            appointments::date,
            appointments::session,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    let mut booked = BTreeMap::new();
    for (date, session, n) in counts {
        let session = Session::parse(&session).ok_or_else(|| invalid("session", &session))?;
        booked.insert((date, session), n);
    }
    let patient_days = match patient {
        None => Default::default(),
        Some(patient) => appointments::table
            .filter(appointments::patient_id.eq(patient))
            .filter(appointments::date.between(from, to))
            .filter(HoldsSlot)
            .select(appointments::date)
            .load::<NaiveDate>(conn)?
            .into_iter()
            .collect(),
    };
    Ok(Occupancy {
        capacity,
        booked,
        closures: closures::dates_between(conn, from, to)?,
        patient_days,
    })
}

#[cfg(test)]
mod tests {
    use super::{AppointmentStatus, HOLDS_SLOT_SQL};

    /// The planners use the partial indexes only when a query's predicate
    /// is the indexes' own: keep the texts the same, and the same as the
    /// domain's list of statuses that hold a slot.
    #[test]
    fn slot_predicate_is_the_partial_indexes_predicate() {
        let statuses: Vec<String> = AppointmentStatus::ACTIVE
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let predicate = format!("status IN ({})", statuses.join(", "));
        assert_eq!(HOLDS_SLOT_SQL, format!("appointments.{predicate}"));
        for (up, indexes) in [
            (
                include_str!("../../migrations/sqlite/20261127000002_create_scheduling/up.sql"),
                2,
            ),
            (
                include_str!("../../migrations/postgres/20261127000002_create_scheduling/up.sql"),
                2,
            ),
            (
                include_str!("../../migrations/sqlite/20261127000005_index_active_slots/up.sql"),
                1,
            ),
            (
                include_str!("../../migrations/postgres/20261127000005_index_active_slots/up.sql"),
                1,
            ),
        ] {
            let found = up.matches(&format!("WHERE {predicate}")).count();
            assert_eq!(found, indexes, "{predicate}");
        }
    }
}
