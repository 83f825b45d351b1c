//! `/v1/courses`: plan and book a whole series of infusions, read courses,
//! cancel what is left of one.

use actix_web::http::header;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::access::{STAFF, STAFF_AND_PATIENT};
use crate::domain::appointment::{AppointmentStatus, PainScore};
use crate::domain::calendar::Session;
use crate::domain::check_text;
use crate::domain::course::{self, CourseStatus, Response};
use crate::domain::protocol::{self, Slot};
use crate::store::courses::{self as store, Course, NewCourse};
use crate::store::{protocols, DbConnection, StoreError};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{dates, Id, Json, Query};
use super::openapi::{
    CourseConflict, Forbidden, MalformedRequest, NotFound, PayloadTooLarge, ServerErrors,
    TransitionConflict, Unauthorized, UnsupportedMediaType, ValidationFailed,
};
use super::pagination::{Page, PageQuery, PageRequest};
use super::AppState;

const MAX_REASON: usize = 500;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(plan_course)
        .service(book_course)
        .service(get_course)
        .service(list_patient_courses)
        .service(cancel_course);
}

/// A course to plan or book: the earliest series of the protocol that fits
/// from `earliest_start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", "protocol": "pain-5-day",
    "session": "morning", "earliest_start": "2026-12-02"
}))]
pub struct CourseRequest {
    pub patient_id: Id,
    /// A protocol code, e.g. `pain-5-day`, `pain-8-10-day`, `mental-health`, `maintenance`.
    pub protocol: String,
    /// The session for every infusion (unless `allow_mixed_sessions`).
    pub session: Session,
    /// The first date the course may start on (clinic-local).
    #[serde(deserialize_with = "dates::required")]
    #[schema(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub earliest_start: NaiveDate,
    /// How many infusions, where the protocol offers a choice (8, 9 or 10 for `pain-8-10-day`).
    #[serde(default)]
    pub infusions: Option<u32>,
    /// Infusions a week (`mental-health`: 2 or 3).
    #[serde(default)]
    pub per_week: Option<u32>,
    /// Weeks (`mental-health`: 2 or 3).
    #[serde(default)]
    pub weeks: Option<u32>,
    /// Let a day take the other session when the requested one is full.
    #[serde(default)]
    pub allow_mixed_sessions: bool,
}

/// One infusion of a plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedInfusion {
    pub date: NaiveDate,
    pub session: Session,
    /// RFC 3339 in the clinic's offset.
    pub starts_at: String,
}

/// The series a booking would make now. Nothing is stored.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", "protocol": "pain-5-day", "infusions": 5,
    "appointments": [
        {"date": "2026-12-07", "session": "morning", "starts_at": "2026-12-07T08:00:00-05:00"},
        {"date": "2026-12-08", "session": "morning", "starts_at": "2026-12-08T08:00:00-05:00"},
        {"date": "2026-12-09", "session": "morning", "starts_at": "2026-12-09T08:00:00-05:00"},
        {"date": "2026-12-10", "session": "morning", "starts_at": "2026-12-10T08:00:00-05:00"},
        {"date": "2026-12-11", "session": "morning", "starts_at": "2026-12-11T08:00:00-05:00"}
    ]
}))]
pub struct CoursePlan {
    pub patient_id: String,
    pub protocol: String,
    pub infusions: u32,
    pub appointments: Vec<PlannedInfusion>,
}

/// One infusion of a course.
#[derive(Debug, Serialize, ToSchema)]
pub struct CourseAppointment {
    pub id: String,
    pub date: NaiveDate,
    pub session: Session,
    pub starts_at: String,
    pub room_id: String,
    pub status: AppointmentStatus,
    pub pain_before: Option<PainScore>,
    pub pain_after: Option<PainScore>,
    pub phq9: Option<i32>,
}

/// A course with its appointments and, once reached, its response check.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac700-0a1b-7c00-8d22-0123456789ab", "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b",
    "protocol": "pain-5-day", "session": "morning", "allow_mixed_sessions": false,
    "infusions": 5, "per_week": null, "weeks": null, "earliest_start": "2026-12-02", "status": "scheduled",
    "appointments": [{"id": "019ac700-0a1b-7c00-8d22-0123456789ac", "date": "2026-12-07", "session": "morning",
        "starts_at": "2026-12-07T08:00:00-05:00", "room_id": "019ac5a0-0000-7000-8000-000000000001",
        "status": "scheduled", "pain_before": null, "pain_after": null, "phq9": null}],
    "response": null, "needs_review": false, "cancel_reason": null, "cancelled_by": null,
    "created_by": "scheduler:front-desk", "created_at": "2026-12-02T10:00:00-05:00"
}))]
pub struct CourseResponse {
    pub id: String,
    pub patient_id: String,
    pub protocol: String,
    pub session: Session,
    pub allow_mixed_sessions: bool,
    pub infusions: i32,
    pub per_week: Option<i32>,
    pub weeks: Option<i32>,
    pub earliest_start: NaiveDate,
    pub status: CourseStatus,
    pub appointments: Vec<CourseAppointment>,
    /// The response at the protocol's check infusion, once recorded.
    pub response: Option<Response>,
    /// True when the response improved by less than the configured fraction.
    pub needs_review: bool,
    pub cancel_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Patient moved away"}))]
pub struct CancelCourse {
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}

/// A course and its protocol, read together.
fn load(conn: &mut DbConnection, id: &str) -> Result<(Course, protocol::Protocol), StoreError> {
    let course = store::find(conn, id)?;
    let protocol = protocols::find(conn, &course.row.protocol_code)?;
    Ok((course, protocol))
}

impl CourseResponse {
    fn new(state: &AppState, course: Course, protocol: Option<&protocol::Protocol>) -> Self {
        let row = course.row;
        let status = course::status(row.cancel_reason.is_some(), &course.appointments);
        let (response, needs_review) = protocol.map_or((None, false), |p| {
            course::response(p, &course.appointments, state.settings.response_improvement)
        });
        Self {
            appointments: course
                .appointments
                .into_iter()
                .map(|a| CourseAppointment {
                    starts_at: state.local(a.starts_at),
                    id: a.id,
                    date: a.date,
                    session: a.session,
                    room_id: a.room_id,
                    status: a.status,
                    pain_before: a.pain_before,
                    pain_after: a.pain_after,
                    phq9: a.phq9,
                })
                .collect(),
            session: Session::parse(&row.session).unwrap_or(Session::Morning),
            status,
            response,
            needs_review,
            id: row.id,
            patient_id: row.patient_id,
            protocol: row.protocol_code,
            allow_mixed_sessions: row.allow_mixed_sessions,
            infusions: row.infusions,
            per_week: row.per_week,
            weeks: row.weeks,
            earliest_start: row.earliest_start,
            cancel_reason: row.cancel_reason,
            cancelled_by: row.cancelled_by,
            created_by: row.created_by,
            created_at: state.local(row.created_at.and_utc()),
        }
    }
}

/// Reads the protocol and checks the request's shape against it.
fn new_course(conn: &mut DbConnection, body: CourseRequest) -> Result<NewCourse, StoreError> {
    let protocol = match protocols::find(conn, &body.protocol) {
        Err(StoreError::NotFound) => {
            return Err(StoreError::Rejected(vec![crate::domain::FieldError::new(
                "protocol",
                "no protocol has this code",
            )]))
        }
        other => other?,
    };
    let shape = protocol::shape(&protocol, body.infusions, body.per_week, body.weeks)
        .map_err(StoreError::Rejected)?;
    Ok(NewCourse {
        patient_id: body.patient_id.into_string(),
        protocol,
        shape,
        per_week: body.per_week,
        weeks: body.weeks,
        session: body.session,
        allow_mixed_sessions: body.allow_mixed_sessions,
        earliest_start: body.earliest_start,
    })
}

fn planned(state: &AppState, slots: Vec<Slot>) -> Vec<PlannedInfusion> {
    slots
        .into_iter()
        .map(|s| PlannedInfusion {
            date: s.date,
            session: s.session,
            starts_at: state.local(s.starts_at),
        })
        .collect()
}

/// The dry run: the earliest series that fits now. Nothing is stored.
#[utoipa::path(
    tag = "courses",
    operation_id = "plan_course",
    request_body = CourseRequest,
    responses(
        (status = 200, description = "The series a booking would make now", body = CoursePlan),
        MalformedRequest, Unauthorized, Forbidden, CourseConflict, PayloadTooLarge,
        UnsupportedMediaType, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/courses/plan")]
pub async fn plan_course(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CourseRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    let Json(body) = body;
    let (calendar, policy, now) = (state.calendar.clone(), state.policy, state.now());
    let (course, slots) = state
        .db(move |conn| {
            let course = new_course(conn, body)?;
            let slots = store::plan(conn, &calendar, policy, &course, now)?;
            Ok((course, slots))
        })
        .await?;
    Ok(HttpResponse::Ok().json(CoursePlan {
        patient_id: course.patient_id,
        protocol: course.protocol.code,
        infusions: course.shape.infusions(),
        appointments: planned(&state, slots),
    }))
}

/// Book a whole course: the earliest series that fits, every infusion in one
/// transaction, a room per slot. Never a partial series.
#[utoipa::path(
    tag = "courses",
    operation_id = "book_course",
    request_body = CourseRequest,
    responses(
        (status = 201, description = "Booked", body = CourseResponse,
            headers(("location" = String, description = "The course's URL"))),
        (status = 409, description = "Not ready, or no whole series fits (`next_start` gives the next start that would)",
            body = super::error::Problem, content_type = "application/problem+json",
            examples(
                ("no_capacity_for_series" = (value = json!({"type": "urn:problem:infusion-api:no_capacity_for_series",
                    "title": "No capacity for the whole series", "status": 409,
                    "detail": "the series does not fit as asked; the next start that fits is 2026-12-14",
                    "code": "no_capacity_for_series", "next_start": "2026-12-14"}))),
                ("not_ready" = (value = json!({"type": "urn:problem:infusion-api:not_ready",
                    "title": "The patient is not ready", "status": 409,
                    "detail": "the patient is not ready for booking: screening", "code": "not_ready",
                    "items": [{"code": "screening", "status": "open", "blocking": true, "detail": "no screening recorded"}]})))
            )),
        MalformedRequest, Unauthorized, Forbidden, PayloadTooLarge, UnsupportedMediaType,
        ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/courses")]
pub async fn book_course(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CourseRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    let Json(body) = body;
    let (calendar, policy, now, by) = (
        state.calendar.clone(),
        state.policy,
        state.now(),
        caller.label(),
    );
    let (course, protocol) = state
        .db(move |conn| {
            let new = new_course(conn, body)?;
            let booked = store::book(conn, &calendar, policy, &new, &by, now)?;
            Ok((booked, new.protocol))
        })
        .await?;
    log::info!(
        "course {} booked for patient {}: {} infusions",
        course.row.id,
        course.row.patient_id,
        course.appointments.len()
    );
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/courses/{}", course.row.id)))
        .json(CourseResponse::new(&state, course, Some(&protocol))))
}

/// One course with its appointments. A patient token reads its own.
#[utoipa::path(
    tag = "courses",
    operation_id = "get_course",
    params(("id" = String, Path, description = "The course's id")),
    responses(
        (status = 200, description = "The course", body = CourseResponse),
        Unauthorized, Forbidden, NotFound, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/courses/{id}")]
pub async fn get_course(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF_AND_PATIENT)?;
    let id = id.into_inner().into_string();
    let (course, protocol) = state
        .db(move |conn| load(conn, &id))
        .await
        .map_err(|e| e.naming("course"))?;
    caller
        .require_own_patient(&course.row.patient_id)
        .map_err(|e| e.naming("course"))?;
    Ok(HttpResponse::Ok().json(CourseResponse::new(&state, course, Some(&protocol))))
}

/// A patient's courses. A patient token reads its own.
#[utoipa::path(
    tag = "courses",
    operation_id = "list_patient_courses",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses(
        (status = 200, description = "A page of courses", body = Page<CourseResponse>),
        Unauthorized, Forbidden, NotFound, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/patients/{id}/courses")]
pub async fn list_patient_courses(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let patient_id = id.into_inner().into_string();
    caller
        .require(STAFF_AND_PATIENT)?
        .require_own_patient(&patient_id)?;
    let page = PageRequest::parse(query.0.limit, query.0.cursor)?;
    let (after, fetch) = (page.after.clone(), page.fetch());
    let rows = state
        .db(move |conn| {
            let courses = store::list_for_patient(conn, &patient_id, after.as_deref(), fetch)?;
            let all = protocols::list(conn)?;
            Ok((courses, all))
        })
        .await
        .map_err(|e| e.naming("patient"))?;
    let (courses, all) = rows;
    Ok(HttpResponse::Ok().json(page.page(
        courses,
        |c| c.row.id.as_str(),
        |c| {
            let protocol = all.iter().find(|p| p.code == c.row.protocol_code);
            CourseResponse::new(&state, c, protocol)
        },
    )))
}

/// Cancel what is left of a course: every scheduled infusion that has not
/// begun, in one transaction, with a reason.
#[utoipa::path(
    tag = "courses",
    operation_id = "cancel_course",
    params(("id" = String, Path, description = "The course's id")),
    request_body = CancelCourse,
    responses(
        (status = 200, description = "Cancelled", body = CourseResponse),
        MalformedRequest, Unauthorized, Forbidden, NotFound, TransitionConflict, PayloadTooLarge,
        UnsupportedMediaType, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/courses/{id}/cancel")]
pub async fn cancel_course(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<CancelCourse>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    ApiError::check(
        check_text("reason", &body.0.reason, MAX_REASON)
            .into_iter()
            .collect(),
    )?;
    let (id, reason, by, now) = (
        id.into_inner().into_string(),
        body.0.reason.trim().to_owned(),
        caller.label(),
        state.now(),
    );
    let (course, protocol) = state
        .db(move |conn| {
            let course = store::cancel(conn, &id, &reason, &by, now)?;
            let protocol = protocols::find(conn, &course.row.protocol_code)?;
            Ok((course, protocol))
        })
        .await
        .map_err(|e| e.naming("course"))?;
    log::info!("course {} cancelled", course.row.id);
    Ok(HttpResponse::Ok().json(CourseResponse::new(&state, course, Some(&protocol))))
}
