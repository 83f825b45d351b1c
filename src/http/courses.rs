//! `/v1/courses`: plan and book a whole series of infusions, read courses,
//! cancel what is left of one.

use actix_web::web::Path;
use actix_web::{get, post};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::access::{self, Role};
use crate::domain::calendar::Session;
use crate::domain::course::{self, Course, CourseRequest, CourseStatus, Plan, ResponseCheck};
use crate::domain::protocol::Protocol;
use crate::domain::values::{Id, Reason};
use crate::domain::Refusal;
use crate::store::courses as store;
use crate::store::{appointments, patients, protocols, retrying, DbConnection, StoreError};

use super::appointments::AppointmentResponse;
use super::audit::{PatientId, Seen, Touched};
use super::auth::{Admits, Ctx, Outcome, Reply, Staff, StaffAndPatient};
use super::error::ApiError;
use super::extract::{Json, Query};
use super::openapi::{
    BodyErrors, CommonErrors, CourseConflict, NotFound, TransitionConflict, ValidationFailed,
};
use super::pagination::{Page, PageQuery, PageRequest};
use super::{ok, Answer, AppState};

/// One infusion of a plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedInfusion {
    pub date: NaiveDate,
    pub session: Session,
    /// RFC 3339 in the clinic's offset.
    pub starts_at: String,
    /// When the session ends: RFC 3339 in the clinic's offset.
    pub ends_at: String,
}

/// The series a booking would make now. Nothing is stored.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", "protocol": "pain-5-day", "infusions": 5,
    "appointments": [
        {"date": "2026-12-07", "session": "morning", "starts_at": "2026-12-07T08:00:00-05:00",
            "ends_at": "2026-12-07T12:00:00-05:00"},
        {"date": "2026-12-08", "session": "morning", "starts_at": "2026-12-08T08:00:00-05:00",
            "ends_at": "2026-12-08T12:00:00-05:00"},
        {"date": "2026-12-09", "session": "morning", "starts_at": "2026-12-09T08:00:00-05:00",
            "ends_at": "2026-12-09T12:00:00-05:00"},
        {"date": "2026-12-10", "session": "morning", "starts_at": "2026-12-10T08:00:00-05:00",
            "ends_at": "2026-12-10T12:00:00-05:00"},
        {"date": "2026-12-11", "session": "morning", "starts_at": "2026-12-11T08:00:00-05:00",
            "ends_at": "2026-12-11T12:00:00-05:00"}
    ]
}))]
pub struct CoursePlan {
    pub patient_id: String,
    pub protocol: String,
    pub infusions: u32,
    pub appointments: Vec<PlannedInfusion>,
}

/// A course with its appointments and, once reached, its response check.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac700-0a1b-7c00-8d22-0123456789ab", "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b",
    "protocol": "pain-5-day", "session": "morning", "allow_mixed_sessions": false,
    "infusions": 5, "per_week": null, "weeks": null, "earliest_start": "2026-12-02",
    "cancel_reason": null, "cancelled_by": null, "created_by": "scheduler:front-desk",
    "status": "scheduled", "response": null, "needs_review": false,
    "created_at": "2026-12-02T10:00:00-05:00",
    "appointments": [{"id": "019ac700-0a1b-7c00-8d22-0123456789ac",
        "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", "room_id": "019ac5a0-0000-7000-8000-000000000001",
        "date": "2026-12-07", "session": "morning", "status": "scheduled", "route": "iv",
        "pain_before": null, "pain_after": null, "cancel_reason": null, "cancelled_by": null,
        "course_id": "019ac700-0a1b-7c00-8d22-0123456789ab", "phq9": null,
        "starts_at": "2026-12-07T08:00:00-05:00", "ends_at": "2026-12-07T12:00:00-05:00",
        "checked_in_at": null, "completed_at": null,
        "created_at": "2026-12-02T10:00:00-05:00", "updated_at": "2026-12-02T10:00:00-05:00"}]
}))]
pub struct CourseResponse {
    #[serde(flatten)]
    pub course: Course,
    pub status: CourseStatus,
    /// The response at the protocol's check infusion, once recorded.
    pub response: Option<ResponseCheck>,
    /// True when the response improved by less than the configured fraction.
    pub needs_review: bool,
    /// RFC 3339 in the clinic's offset.
    pub created_at: String,
    /// The infusions, in date order.
    pub appointments: Vec<AppointmentResponse>,
}

impl CourseResponse {
    /// The course as `viewer` sees who booked and cancelled it
    /// ([`access::actor_seen_by`]).
    fn new(
        state: &AppState,
        viewer: Role,
        mut course: Course,
        protocol: Option<&Protocol>,
    ) -> Self {
        course.created_by = access::actor_seen_by(&course.created_by, viewer);
        course.cancelled_by = course.cancelled_by.map(|by| access::actor_seen_by(&by, viewer));
        let (response, needs_review) = protocol.map_or((None, false), |p| {
            course::response(p, &course.appointments, state.settings.response_improvement)
        });
        Self {
            status: course.status(),
            response,
            needs_review,
            created_at: state.local(course.created_at),
            appointments: std::mem::take(&mut course.appointments)
                .into_iter()
                .map(|a| AppointmentResponse::new(state, viewer, a))
                .collect(),
            course,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Patient moved away"}))]
pub struct CancelCourse {
    pub reason: Reason,
}

/// The dry run: the earliest series that fits now. Nothing is stored.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "courses", request_body = CourseRequest,
    responses(
        (status = 200, description = "The series a booking would make now", body = CoursePlan),
        CommonErrors, BodyErrors, CourseConflict, ValidationFailed))]
#[post("/courses/plan")]
pub async fn plan_course(ctx: Ctx<Staff>, body: Json<CourseRequest>) -> Answer {
    let Json(request) = body;
    let plan = plan_now(&ctx, request.clone(), None).await?;
    ok(CoursePlan {
        patient_id: request.patient_id.into_string(),
        infusions: plan.shape.infusions(),
        protocol: plan.protocol.code,
        appointments: plan
            .series
            .into_iter()
            .map(|s| PlannedInfusion {
                date: s.date,
                session: s.session,
                starts_at: ctx.local(s.starts_at),
                ends_at: ctx.local(ctx.calendar.ends_at(s.date, s.session).to_utc()),
            })
            .collect(),
    })
}

/// Reads what `request` needs and asks the domain for the series; stores
/// nothing.
async fn plan_now<A: Admits>(
    ctx: &Ctx<A>,
    request: CourseRequest,
    keep_start: Option<NaiveDate>,
) -> Result<Plan, ApiError> {
    let (clinic, role) = (ctx.clinic(), ctx.caller.role);
    ctx.db(move |conn| {
        let window = course::window(&request, &clinic);
        let facts = store::facts(conn, &request, window)?.seen_by(role);
        course::plan_reading(&request, facts, &clinic, keep_start, |from, to| {
            appointments::occupancy(conn, from, to, Some(request.patient_id.as_str()))
        })
    })
    .await
}

/// Book a whole course: the earliest series that fits, every infusion in one
/// transaction, a room per slot. Never a partial series. A series that stops
/// fitting from the start first planned, while booking, is refused with the
/// next start that would fit. A patient holds one course at a time: while
/// one is scheduled or in progress, another is refused with
/// `course_already_active` naming it.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "courses", request_body = CourseRequest,
    responses(
        (status = 201, description = "Booked", body = CourseResponse,
            headers(("location" = String, description = "The course's URL"))),
        CommonErrors, BodyErrors, CourseConflict, ValidationFailed))]
#[post("/courses")]
pub async fn book_course(ctx: Ctx<Staff>, body: Json<CourseRequest>) -> Answer {
    let Json(request) = body;
    let (clinic, role, by) = (ctx.clinic(), ctx.caller.role, ctx.caller.label());
    // The start the first attempt planned: a retry after a lost room keeps it.
    let mut planned: Option<NaiveDate> = None;
    let accompaniment = ctx.accompaniment();
    let attempt = {
        let request = request.clone();
        move |tx: &mut DbConnection| {
            accompaniment.claim(tx)?;
            // One course at a time per patient: a concurrent booking for
            // the same patient waits here, then sees this one's course.
            patients::lock(tx, request.patient_id.as_str())?;
            let window = course::window(&request, &clinic);
            let facts = store::facts(tx, &request, window)?.seen_by(role);
            let plan = course::plan_reading(&request, facts, &clinic, planned, |from, to| {
                appointments::occupancy(tx, from, to, Some(request.patient_id.as_str()))
            })?;
            planned = plan.start();
            let booked = store::insert(tx, &request, &plan, &by, clinic.now)?;
            let protocol = plan.protocol;
            accompaniment.finish(tx, booked, |state, booked| {
                let location = format!("/v1/courses/{}", booked.id);
                Reply::created(location, &CourseResponse::new(state, role, booked, Some(&protocol)))
            })
        }
    };
    let outcome = ctx
        .db(move |conn| match Outcome::settled(retrying(conn, attempt)) {
            Err(StoreError::LostRace) => Ok(None),
            other => other.map(Some),
        })
        .await?;
    let Some(outcome) = outcome else {
        // Every attempt lost a room at the same start: name the next one.
        let next = plan_now(&ctx, request, None).await?;
        return Err(Refusal::NoCapacityForSeries { next_start: next.start() }.into());
    };
    Ok(ctx.answer(outcome))
}

/// One course with its appointments. A patient token reads its own.
///
/// **Roles:** admin, clinician, scheduler, patient (its own).
#[utoipa::path(tag = "courses", params(("id" = String, Path, description = "The course's id")),
    responses((status = 200, description = "The course", body = CourseResponse), CommonErrors,
        NotFound))]
#[get("/courses/{id}")]
pub async fn get_course(ctx: Ctx<StaffAndPatient>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    let (course, protocol) = ctx
        .db(move |conn| {
            let course = store::find(conn, &id)?;
            with_protocol(conn, course)
        })
        .await?;
    ctx.caller.require_own(&course.patient_id, "course")?;
    ctx.saw(&course);
    ok(CourseResponse::new(&ctx, ctx.caller.role, course, Some(&protocol)))
}

/// A course and its protocol, for its response check.
fn with_protocol(
    conn: &mut DbConnection,
    course: Course,
) -> Result<(Course, Protocol), StoreError> {
    let protocol = protocols::find(conn, &course.protocol)?;
    Ok((course, protocol))
}

/// A patient's courses. A patient token reads its own.
///
/// **Roles:** admin, clinician, scheduler, patient (its own).
#[utoipa::path(tag = "courses",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses((status = 200, description = "A page of courses", body = Page<CourseResponse>),
        CommonErrors, NotFound, ValidationFailed))]
#[get("/patients/{id}/courses")]
pub async fn list_patient_courses(
    ctx: Ctx<StaffAndPatient>,
    id: Path<Id>,
    query: Query<PageQuery>,
) -> Answer {
    let patient_id = id.into_inner().into_string();
    ctx.caller.require_own_patient(&patient_id)?;
    let page = PageRequest::parse(query.0.limit, query.0.cursor)?;
    let at = page.rows();
    ctx.saw(&PatientId(&patient_id));
    let (courses, all) = ctx
        .read(move |conn| {
            let courses = store::list_for_patient(conn, &patient_id, &at)?;
            Ok((courses, protocols::list(conn)?))
        })
        .await?;
    let viewer = ctx.caller.role;
    ok(page.shown(courses, &ctx, |state, c| {
        let protocol = all.iter().find(|p| p.code == c.protocol);
        CourseResponse::new(state, viewer, c, protocol)
    }))
}

/// Cancel what is left of a course: every scheduled infusion that has not
/// begun, in one transaction, with a reason.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "courses", params(("id" = String, Path, description = "The course's id")),
    request_body = CancelCourse,
    responses((status = 200, description = "Cancelled", body = CourseResponse), CommonErrors,
        BodyErrors, NotFound, TransitionConflict, ValidationFailed))]
#[post("/courses/{id}/cancel")]
pub async fn cancel_course(ctx: Ctx<Staff>, id: Path<Id>, body: Json<CancelCourse>) -> Answer {
    let (id, reason, by, now) =
        (id.into_inner().into_string(), body.0.reason.into_string(), ctx.caller.label(), ctx.now());
    let (precondition, state, role) = (ctx.precondition(), ctx.state(), ctx.caller.role);
    ctx.write(
        move |tx| {
            let current = store::hold(tx, &id)?;
            let protocol = protocols::find(tx, &current.protocol)?;
            precondition
                .check(|| CourseResponse::new(&state, role, current.clone(), Some(&protocol)))?;
            let left = course::cancellation(&current, now)?;
            let course = store::cancel(tx, current, &left, &reason, &by, now)?;
            Ok((Cancelled { course, left }, protocol))
        },
        move |state, (cancelled, protocol)| {
            Reply::ok(&CourseResponse::new(state, role, cancelled.course, Some(&protocol)))
        },
    )
    .await
}

/// A cancelled course and the appointments its cancellation cancelled: the
/// others (completed, or cancelled before) it returns unchanged.
struct Cancelled {
    course: Course,
    left: Vec<String>,
}

impl Touched for Cancelled {
    fn touched(&self, seen: &mut Seen) {
        let course = &self.course;
        seen.record("course", &course.id, Some(&course.patient_id));
        for appointment in &course.appointments {
            let (id, patient) = (&appointment.id, Some(appointment.patient_id.as_str()));
            if self.left.contains(id) {
                seen.record("appointment", id, patient);
            } else {
                seen.read_only("appointment", id, patient);
            }
        }
    }
}
