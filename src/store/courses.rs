//! Courses: what planning or booking one reads, and writing a decided
//! series whole, never in part. Writes run in the caller's transaction.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::appointment::{Appointment, AppointmentStatus, NewAppointment, Route};
use crate::domain::calendar::Session;
use crate::domain::course::{Course, CourseFacts, CourseRequest, PastCourse, Plan};
use crate::domain::protocol::Occupancy;
use crate::domain::Refusal;

use super::locks;
use super::schema::{appointments as appointment_rows, courses};
use super::{
    appointments, intake, new_id, patients, protocols, DbConnection, Found, Prepared, Rows,
    StoreError,
};

#[derive(Queryable, Selectable)]
#[diesel(table_name = courses)]
struct CourseRow {
    id: String,
    patient_id: String,
    protocol_code: String,
    session: String,
    allow_mixed_sessions: bool,
    infusions: i32,
    per_week: Option<i32>,
    weeks: Option<i32>,
    earliest_start: NaiveDate,
    cancel_reason: Option<String>,
    cancelled_by: Option<String>,
    created_by: String,
    created_at: NaiveDateTime,
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn column(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// What planning or booking `request` reads: its protocol, the patient's
/// intake and earlier courses, and how full each session of `window` is.
/// Takes no lock: [`insert`] takes the rooms' and the dates' before it
/// writes, and the write itself refuses a room gone or a date closed since.
pub fn facts(
    conn: &mut DbConnection,
    request: &CourseRequest,
    window: Option<(NaiveDate, NaiveDate)>,
) -> Result<CourseFacts, StoreError> {
    let patient_id = request.patient_id.as_str();
    let protocol = match protocols::find(conn, &request.protocol) {
        Err(StoreError::NotFound(_)) => None,
        other => Some(other?),
    };
    let occupancy = match window {
        Some((from, to)) => appointments::occupancy(conn, from, to, Some(patient_id))?,
        None => Occupancy::default(),
    };
    Ok(CourseFacts {
        protocol,
        intake: intake::intake_record(conn, patient_id)?,
        history: history(conn, patient_id)?,
        occupancy,
    })
}

/// The patient's courses, with their infusions' statuses, in one query.
fn history(conn: &mut DbConnection, patient_id: &str) -> Result<Vec<PastCourse>, StoreError> {
    let rows: Vec<(String, Option<String>, Option<String>)> =
        on_backend!(conn, |c| courses::table
            .left_join(appointment_rows::table)
            .filter(courses::patient_id.eq(patient_id))
            .order(courses::id)
            .select((courses::id, courses::cancel_reason, appointment_rows::status.nullable()))
            .load(c))?;
    let mut history: Vec<PastCourse> = Vec::new();
    for (id, cancel_reason, status) in rows {
        if history.last().is_none_or(|course| course.id != id) {
            history.push(PastCourse {
                id,
                cancelled: cancel_reason.is_some(),
                infusions: Vec::new(),
            });
        }
        if let (Some(status), Some(course)) = (status, history.last_mut()) {
            course
                .infusions
                .push(AppointmentStatus::parse(&status).ok_or_else(|| {
                    StoreError::Invalid(format!("appointment status `{status}`"))
                })?);
        }
    }
    Ok(history)
}

/// Writes a decided course: the course, then its infusions, each in a free
/// room of its session, in one statement ([`appointments::insert_all`]); the
/// course as stored. Holds the rooms, each date and each slot first (the
/// one lock order of [`locks::lock_slots`]), so that no room is deactivated
/// nor date closed before commit and the bookings of a session take their
/// rooms one after another; one closed or emptied of rooms since the plan
/// was read refuses the write. Losing a room, a date or the patient's day to
/// a concurrent write is [`StoreError::LostRace`]: the whole course is
/// planned again.
pub fn insert(
    conn: &mut DbConnection,
    request: &CourseRequest,
    plan: &Plan,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Course, StoreError> {
    let series = &plan.series;
    locks::lock_slots(conn, series.iter().map(|s| (s.date, s.session)))?;
    let id = new_id();
    let row = on_backend!(conn, |c| diesel::insert_into(courses::table)
        .values((
            courses::id.eq(&id),
            courses::patient_id.eq(request.patient_id.as_str()),
            courses::protocol_code.eq(&plan.protocol.code),
            courses::session.eq(request.session.as_str()),
            courses::allow_mixed_sessions.eq(request.allow_mixed_sessions),
            courses::infusions.eq(column(plan.shape.infusions())),
            courses::per_week.eq(request.per_week.map(column)),
            courses::weeks.eq(request.weeks.map(column)),
            courses::earliest_start.eq(request.earliest_start.get()),
            courses::created_by.eq(by),
            courses::created_at.eq(now.naive_utc()),
        ))
        .returning(CourseRow::as_select())
        .get_result::<CourseRow>(c))?;
    let infusions: Vec<NewAppointment> = series
        .iter()
        .map(|slot| NewAppointment {
            patient_id: request.patient_id.as_str().to_owned(),
            date: slot.date,
            session: slot.session,
            starts_at: slot.starts_at,
            route: Route::Iv,
            course_id: Some(id.clone()),
        })
        .collect();
    let appointments = match appointments::insert_all(conn, &infusions, now) {
        Err(StoreError::Refused(Refusal::SlotFull | Refusal::PatientAlreadyBookedThatDay(_))) => {
            return Err(StoreError::LostRace)
        }
        other => other?,
    };
    course(row, appointments)
}

/// A course from its row and its appointments.
fn course(row: CourseRow, appointments: Vec<Appointment>) -> Result<Course, StoreError> {
    Ok(Course {
        session: Session::parse(&row.session)
            .ok_or_else(|| StoreError::Invalid(format!("course session `{}`", row.session)))?,
        id: row.id,
        patient_id: row.patient_id,
        protocol: row.protocol_code,
        allow_mixed_sessions: row.allow_mixed_sessions,
        infusions: count(row.infusions),
        per_week: row.per_week.map(count),
        weeks: row.weeks.map(count),
        earliest_start: row.earliest_start,
        cancel_reason: row.cancel_reason,
        cancelled_by: row.cancelled_by,
        created_by: row.created_by,
        created_at: row.created_at.and_utc(),
        appointments,
    })
}

fn with_appointments(
    conn: &mut DbConnection,
    rows: Vec<CourseRow>,
) -> Result<Vec<Course>, StoreError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let all = appointments::for_courses(conn, &ids)?;
    rows.into_iter()
        .map(|row| {
            let appointments = all
                .iter()
                .filter(|a| a.course_id.as_deref() == Some(row.id.as_str()))
                .cloned()
                .collect();
            course(row, appointments)
        })
        .collect()
}

/// A course from its row, with its appointments read.
fn whole(conn: &mut DbConnection, row: CourseRow) -> Result<Course, StoreError> {
    with_appointments(conn, vec![row])?.pop().ok_or(StoreError::NotFound("course"))
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Course, StoreError> {
    let row =
        on_backend!(conn, |c| courses::table.find(id).select(CourseRow::as_select()).get_result(c))
            .found("course")?;
    whole(conn, row)
}

/// Reads a course, holding its row until commit so that two cancels do not
/// interleave.
pub fn hold(conn: &mut DbConnection, id: &str) -> Result<Course, StoreError> {
    let row = hold_row!(courses, id, conn, CourseRow).found("course")?;
    whole(conn, row)
}

pub fn list_for_patient(
    conn: &mut DbConnection,
    patient_id: &str,
    rows: &Rows,
) -> Result<Vec<Course>, StoreError> {
    if !patients::exists(conn, patient_id)? {
        return Err(StoreError::NotFound("patient"));
    }
    let rows = on_backend!(conn, |c| page!(courses, CourseRow::as_select(), rows)
        .filter(courses::patient_id.eq(patient_id))
        .load(c))?;
    with_appointments(conn, rows)
}

/// Writes a decided cancellation of `current` (as held): the infusions
/// `left` (those still scheduled), and the course's reason and canceller.
/// The course as written, its infusions in `current`'s order, each from the
/// statement that wrote it or, untouched, as held.
pub fn cancel(
    conn: &mut DbConnection,
    current: Course,
    left: &[String],
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Course, StoreError> {
    let mut cancelled = appointments::cancel_scheduled(conn, left, reason, by, now)?;
    let row = on_backend!(conn, |c| Prepared(
        diesel::update(courses::table.find(&current.id))
            .set((courses::cancel_reason.eq(reason), courses::cancelled_by.eq(by)))
            .returning(CourseRow::as_select()),
    )
    .get_result::<CourseRow>(c))
    .found("course")?;
    let infusions = current
        .appointments
        .into_iter()
        .map(|held| match cancelled.iter().position(|c| c.id == held.id) {
            Some(at) => cancelled.swap_remove(at),
            None => held,
        })
        .collect();
    course(row, infusions)
}
