//! Courses: a whole series of infusions planned and booked in one
//! transaction, never in part.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::appointment::{Appointment, AppointmentStatus, Route};
use crate::domain::calendar::{Calendar, Session};
use crate::domain::protocol::{self, PlanRequest, Protocol, Shape, Slot};
use crate::domain::readiness::IntakePolicy;
use crate::domain::{FieldError, Refusal};

use super::appointments::{self, insert_in_free_room, lost_a_race};
use super::locks::{self, Guard, Mode};
use super::schema::{appointments as appointment_rows, courses};
use super::{closures, new_id, patients, write_transaction, DbConnection, StoreError};

/// A course as stored.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = courses)]
pub struct CourseRow {
    pub id: String,
    pub patient_id: String,
    pub protocol_code: String,
    pub session: String,
    pub allow_mixed_sessions: bool,
    pub infusions: i32,
    pub per_week: Option<i32>,
    pub weeks: Option<i32>,
    pub earliest_start: NaiveDate,
    pub cancel_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub created_by: String,
    /// UTC.
    pub created_at: NaiveDateTime,
}

/// A course with its appointments in date order.
#[derive(Clone, Debug)]
pub struct Course {
    pub row: CourseRow,
    pub appointments: Vec<Appointment>,
}

/// A course to plan or book.
#[derive(Clone, Debug)]
pub struct NewCourse {
    pub patient_id: String,
    pub protocol: Protocol,
    pub shape: Shape,
    pub per_week: Option<u32>,
    pub weeks: Option<u32>,
    pub session: Session,
    pub allow_mixed_sessions: bool,
    pub earliest_start: NaiveDate,
}

/// Whether the patient has a course whose infusions all took place.
fn has_completed_course(conn: &mut DbConnection, patient_id: &str) -> Result<bool, StoreError> {
    let ids: Vec<String> = courses::table
        .filter(courses::patient_id.eq(patient_id))
        .filter(courses::cancel_reason.is_null())
        .select(courses::id)
        .load(conn)?;
    for id in ids {
        let statuses: Vec<String> = appointment_rows::table
            .filter(appointment_rows::course_id.eq(&id))
            .select(appointment_rows::status)
            .load(conn)?;
        let done = statuses
            .iter()
            .any(|s| s == AppointmentStatus::Completed.as_str())
            && statuses.iter().all(|s| {
                s == AppointmentStatus::Completed.as_str()
                    || s == AppointmentStatus::NoShow.as_str()
                    || s == AppointmentStatus::Cancelled.as_str()
            });
        if done {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The rules a course must meet before any date is looked at.
fn check(
    conn: &mut DbConnection,
    course: &NewCourse,
    today: NaiveDate,
    policy: IntakePolicy,
) -> Result<(), StoreError> {
    let patient = match patients::find(conn, &course.patient_id) {
        Err(StoreError::NotFound) => {
            return Err(StoreError::Rejected(vec![FieldError::new(
                "patient_id",
                "no patient has this id",
            )]))
        }
        other => other?,
    };
    let protocol = &course.protocol;
    if !protocol
        .categories
        .iter()
        .any(|c| patient.details.has_category(*c))
    {
        return Err(StoreError::Rejected(vec![FieldError::new(
            "protocol",
            format!(
                "{} does not treat any of the patient's indications",
                protocol.code
            ),
        )]));
    }
    if protocol.requires_completed_course && !has_completed_course(conn, &course.patient_id)? {
        return Err(StoreError::Rejected(vec![FieldError::new(
            "protocol",
            format!(
                "{} follows a completed course; the patient has none",
                protocol.code
            ),
        )]));
    }
    appointments::require_ready(conn, &course.patient_id, today, policy)
}

/// The earliest series that fits now, from one read of the horizon's occupancy.
fn earliest_series(
    conn: &mut DbConnection,
    calendar: &Calendar,
    course: &NewCourse,
    now: DateTime<Utc>,
) -> Result<Option<Vec<Slot>>, StoreError> {
    let today = calendar.local_date(now);
    let from = course.earliest_start.max(today);
    let to = calendar.horizon_end(today);
    if from > to {
        return Ok(None);
    }
    let occupancy = appointments::occupancy(conn, from, to, Some(&course.patient_id))?;
    let request = PlanRequest {
        session: course.session,
        allow_mixed_sessions: course.allow_mixed_sessions,
        earliest_start: course.earliest_start,
        now,
    };
    Ok(protocol::plan(course.shape, request, calendar, &occupancy))
}

/// The dry run: the series `book` would book now, or why not. Stores nothing.
pub fn plan(
    conn: &mut DbConnection,
    calendar: &Calendar,
    policy: IntakePolicy,
    course: &NewCourse,
    now: DateTime<Utc>,
) -> Result<Vec<Slot>, StoreError> {
    let today = calendar.local_date(now);
    let last = calendar.horizon_end(today);
    if course.earliest_start > last {
        return Err(StoreError::Refused(Refusal::OutsideHorizon { last }));
    }
    check(conn, course, today, policy)?;
    earliest_series(conn, calendar, course, now)?.ok_or(StoreError::Refused(
        Refusal::NoCapacityForSeries { next_start: None },
    ))
}

/// Attempts at booking a series whose start still fits: each failed one
/// lost a room (or the patient's day) to a concurrent booking.
const MAX_ATTEMPTS: usize = 8;

/// Plans and books the whole series in one transaction, a room per slot.
/// Losing a room to a concurrent booking retries with the rooms left; if
/// the series no longer fits from the start first planned, everything is
/// rolled back and the refusal names the next start that would fit.
pub fn book(
    conn: &mut DbConnection,
    calendar: &Calendar,
    policy: IntakePolicy,
    course: &NewCourse,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Course, StoreError> {
    let today = calendar.local_date(now);
    let last = calendar.horizon_end(today);
    if course.earliest_start > last {
        return Err(StoreError::Refused(Refusal::OutsideHorizon { last }));
    }
    // The start of the first plan: later attempts must keep it.
    let mut first_start: Option<NaiveDate> = None;
    for _ in 0..MAX_ATTEMPTS {
        let id = new_id();
        let mut planned: Option<NaiveDate> = None;
        let attempt = write_transaction(conn, |conn| {
            check(conn, course, today, policy)?;
            locks::lock(conn, Guard::Rooms, Mode::Shared)?;
            let series = earliest_series(conn, calendar, course, now)?.ok_or(
                StoreError::Refused(Refusal::NoCapacityForSeries { next_start: None }),
            )?;
            let start = series.first().map(|s| s.date);
            if first_start.is_some() && start != first_start {
                return Err(StoreError::Refused(Refusal::NoCapacityForSeries {
                    next_start: start,
                }));
            }
            planned = start;
            // Hold each date against closing (dates ascending, after the
            // rooms: the one lock order), then make sure none closed since the read.
            locks::lock_dates(conn, series.iter().map(|s| s.date), Mode::Shared)?;
            if let (Some(first), Some(last)) = (series.first(), series.last()) {
                let closed = closures::dates_between(conn, first.date, last.date)?;
                if series.iter().any(|s| closed.contains(&s.date)) {
                    return Err(StoreError::Refused(Refusal::SlotFull));
                }
            }
            diesel::insert_into(courses::table)
                .values((
                    courses::id.eq(&id),
                    courses::patient_id.eq(&course.patient_id),
                    courses::protocol_code.eq(&course.protocol.code),
                    courses::session.eq(course.session.as_str()),
                    courses::allow_mixed_sessions.eq(course.allow_mixed_sessions),
                    courses::infusions
                        .eq(i32::try_from(course.shape.infusions()).unwrap_or(i32::MAX)),
                    courses::per_week.eq(course.per_week.and_then(|n| i32::try_from(n).ok())),
                    courses::weeks.eq(course.weeks.and_then(|n| i32::try_from(n).ok())),
                    courses::earliest_start.eq(course.earliest_start),
                    courses::created_by.eq(by),
                    courses::created_at.eq(now.naive_utc()),
                ))
                .execute(conn)?;
            for slot in &series {
                insert_in_free_room(
                    conn,
                    &course.patient_id,
                    slot.date,
                    slot.session,
                    slot.starts_at,
                    Route::Iv,
                    Some(&id),
                    now,
                )?;
            }
            find(conn, &id)
        });
        match attempt {
            Err(error) if lost_a_race(&error) => {
                first_start = first_start.or(planned);
            }
            other => return other,
        }
    }
    let next = earliest_series(conn, calendar, course, now)?;
    Err(StoreError::Refused(Refusal::NoCapacityForSeries {
        next_start: next.and_then(|s| s.first().map(|slot| slot.date)),
    }))
}

fn with_appointments(
    conn: &mut DbConnection,
    rows: Vec<CourseRow>,
) -> Result<Vec<Course>, StoreError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let all = appointments::for_courses(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let appointments = all
                .iter()
                .filter(|a| a.course_id.as_deref() == Some(row.id.as_str()))
                .cloned()
                .collect();
            Course { row, appointments }
        })
        .collect())
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Course, StoreError> {
    let row = courses::table
        .find(id)
        .select(CourseRow::as_select())
        .get_result(conn)?;
    with_appointments(conn, vec![row])?
        .pop()
        .ok_or(StoreError::NotFound)
}

pub fn list_for_patient(
    conn: &mut DbConnection,
    patient_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Course>, StoreError> {
    if !patients::exists(conn, patient_id)? {
        return Err(StoreError::NotFound);
    }
    let mut query = courses::table
        .filter(courses::patient_id.eq(patient_id))
        .select(CourseRow::as_select())
        .order(courses::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(courses::id.gt(after.to_owned()));
    }
    let rows = query.load(conn)?;
    with_appointments(conn, rows)
}

/// Cancels what is left of a course: every scheduled appointment whose
/// session has not begun, in one transaction. `invalid_transition` when
/// nothing is left.
pub fn cancel(
    conn: &mut DbConnection,
    id: &str,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Course, StoreError> {
    write_transaction(conn, |conn| {
        // Holds the course so two cancels do not interleave.
        diesel::update(courses::table.find(id))
            .set(courses::id.eq(courses::id))
            .execute(conn)?;
        let current = find(conn, id)?;
        let remaining: Vec<&Appointment> = current
            .appointments
            .iter()
            .filter(|a| a.status == AppointmentStatus::Scheduled && a.starts_at > now)
            .collect();
        if current.row.cancel_reason.is_some() || remaining.is_empty() {
            return Err(StoreError::Refused(Refusal::InvalidTransition {
                from: "course",
                action: "cancel",
                why: Some("nothing is left of this course to cancel".into()),
            }));
        }
        let ids: Vec<&str> = remaining.iter().map(|a| a.id.as_str()).collect();
        let stamp = now.naive_utc();
        diesel::update(
            appointment_rows::table
                .filter(appointment_rows::id.eq_any(&ids))
                .filter(appointment_rows::status.eq(AppointmentStatus::Scheduled.as_str())),
        )
        .set((
            appointment_rows::status.eq(AppointmentStatus::Cancelled.as_str()),
            appointment_rows::cancel_reason.eq(reason),
            appointment_rows::cancelled_by.eq(by),
            appointment_rows::updated_at.eq(stamp),
        ))
        .execute(conn)?;
        diesel::update(courses::table.find(id))
            .set((
                courses::cancel_reason.eq(reason),
                courses::cancelled_by.eq(by),
            ))
            .execute(conn)?;
        find(conn, id)
    })
}
