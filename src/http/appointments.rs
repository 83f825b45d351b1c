//! `/v1/appointments`: book, read, list, and the actions of the state
//! machine (cancel, reschedule, check-in, complete, no-show).

use actix_web::http::header;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access::{Role, ANY_ROLE, STAFF, STAFF_AND_PATIENT};
use crate::domain::appointment::{
    self, Action, Appointment, AppointmentStatus, PainScore, Phq9Score, Route,
};
use crate::domain::calendar::Session;
use crate::domain::check_text;
use crate::store::appointments::{self as store, Change, Filter, NewBooking};
use crate::store::{DbConnection, StoreError};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{dates, Id, Json, Query};
use super::openapi::{
    BookingConflict, CheckInConflict, Forbidden, MalformedRequest, NotFound, PayloadTooLarge,
    RescheduleConflict, ServerErrors, SlotRules, TransitionConflict, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use super::pagination::{Page, PageRequest};
use super::AppState;

const MAX_CANCEL_REASON: usize = 500;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(book_appointment)
        .service(list_appointments)
        .service(get_appointment)
        .service(cancel_appointment)
        .service(reschedule_appointment)
        .service(check_in_appointment)
        .service(complete_appointment)
        .service(no_show_appointment);
}

/// An appointment as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac5c3-2a4b-7c00-9d11-0123456789ab",
    "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b",
    "room_id": "019ac5a0-0000-7000-8000-000000000001",
    "date": "2026-12-14", "session": "morning", "starts_at": "2026-12-14T08:00:00-05:00",
    "status": "scheduled", "route": "iv", "pain_before": null, "pain_after": null,
    "cancel_reason": null, "cancelled_by": null, "checked_in_at": null, "completed_at": null,
    "created_at": "2026-11-27T10:02:11-05:00", "updated_at": "2026-11-27T10:02:11-05:00",
    "course_id": null, "phq9": null
}))]
pub struct AppointmentResponse {
    pub id: String,
    pub patient_id: String,
    pub room_id: String,
    /// Clinic-local date.
    pub date: NaiveDate,
    pub session: Session,
    /// RFC 3339 in the clinic's offset.
    pub starts_at: String,
    pub status: AppointmentStatus,
    pub route: Route,
    pub pain_before: Option<PainScore>,
    pub pain_after: Option<PainScore>,
    pub cancel_reason: Option<String>,
    /// `role:subject` of whoever cancelled.
    pub cancelled_by: Option<String>,
    pub checked_in_at: Option<String>,
    pub completed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The course this infusion belongs to, if booked as part of one.
    pub course_id: Option<String>,
    /// PHQ-9 at check-in, if recorded.
    pub phq9: Option<i32>,
}

impl AppointmentResponse {
    fn new(state: &AppState, a: Appointment) -> Self {
        Self {
            id: a.id,
            patient_id: a.patient_id,
            room_id: a.room_id,
            date: a.date,
            session: a.session,
            starts_at: state.local(a.starts_at),
            status: a.status,
            route: a.route,
            pain_before: a.pain_before,
            pain_after: a.pain_after,
            cancel_reason: a.cancel_reason,
            cancelled_by: a.cancelled_by,
            checked_in_at: a.checked_in_at.map(|t| state.local(t)),
            completed_at: a.completed_at.map(|t| state.local(t)),
            created_at: state.local(a.created_at),
            updated_at: state.local(a.updated_at),
            course_id: a.course_id,
            phq9: a.phq9,
        }
    }
}

/// A booking: a free room is assigned.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", "date": "2026-12-14", "session": "morning"}))]
pub struct BookAppointment {
    pub patient_id: Id,
    /// A clinic day, clinic-local, within the booking horizon.
    #[serde(deserialize_with = "dates::required")]
    #[schema(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub date: NaiveDate,
    pub session: Session,
    /// Defaults to `iv`.
    #[serde(default)]
    pub route: Route,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Patient has a fever"}))]
pub struct CancelAppointment {
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"date": "2026-12-15", "session": "afternoon"}))]
pub struct RescheduleAppointment {
    #[serde(deserialize_with = "dates::required")]
    #[schema(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub date: NaiveDate,
    pub session: Session,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"pain_before": 8}))]
pub struct CheckInAppointment {
    /// Pain on arrival, 0 to 10.
    pub pain_before: PainScore,
    /// The route actually used, if not the booked one.
    pub route: Option<Route>,
    /// PHQ-9 score (0 to 27) for mental health courses' response check.
    pub phq9: Option<Phq9Score>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"pain_after": 3}))]
pub struct CompleteAppointment {
    /// Pain at discharge, 0 to 10.
    pub pain_after: PainScore,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAppointmentsQuery {
    /// Only this patient's (a patient token sees only its own anyway).
    pub patient_id: Option<Id>,
    /// Only on or after this date.
    #[serde(default, deserialize_with = "dates::optional")]
    #[param(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub from: Option<NaiveDate>,
    /// Only on or before this date.
    #[serde(default, deserialize_with = "dates::optional")]
    #[param(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub to: Option<NaiveDate>,
    pub status: Option<AppointmentStatus>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Id>,
}

fn created(state: &AppState, a: Appointment) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/appointments/{}", a.id)))
        .json(AppointmentResponse::new(state, a))
}

/// Book a session for a patient; a free room is assigned.
#[utoipa::path(
    tag = "appointments",
    operation_id = "book_appointment",
    request_body = BookAppointment,
    responses(
        (status = 201, description = "Booked", body = AppointmentResponse,
            headers(("location" = String, description = "The appointment's URL"))),
        MalformedRequest, Unauthorized, Forbidden, BookingConflict, PayloadTooLarge,
        UnsupportedMediaType, SlotRules, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/appointments")]
pub async fn book_appointment(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<BookAppointment>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    let Json(body) = body;
    let booking = NewBooking {
        patient_id: body.patient_id.into_string(),
        date: body.date,
        session: body.session,
        route: body.route,
    };
    let (now, policy) = (state.now(), state.policy);
    let calendar = state.calendar.clone();
    let booked = state
        .db(move |conn| store::book(conn, &calendar, policy, &booking, now))
        .await?;
    log::info!(
        "appointment {} booked for patient {}",
        booked.id,
        booked.patient_id
    );
    Ok(created(&state, booked))
}

/// List appointments in id (booking) order. A patient token lists its own.
#[utoipa::path(
    tag = "appointments",
    operation_id = "list_appointments",
    params(ListAppointmentsQuery),
    responses(
        (status = 200, description = "A page of appointments", body = Page<AppointmentResponse>),
        Unauthorized, Forbidden, NotFound, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/appointments")]
pub async fn list_appointments(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<ListAppointmentsQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(ANY_ROLE)?;
    let Query(q) = query;
    let page = PageRequest::parse(q.limit, q.cursor)?;
    let patient_id = match (caller.role, q.patient_id.map(Id::into_string)) {
        (Role::Patient, Some(other)) if other != caller.subject => {
            return Err(ApiError::NotFound("patient".into()))
        }
        (Role::Patient, _) => Some(caller.subject.clone()),
        (_, requested) => requested,
    };
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if to < from {
            return Err(ApiError::field("to", "must not be before `from`"));
        }
    }
    let filter = Filter {
        patient_id,
        from: q.from,
        to: q.to,
        status: q.status,
    };
    let (after, fetch) = (page.after.clone(), page.fetch());
    let rows = state
        .db(move |conn| store::list(conn, &filter, after.as_deref(), fetch))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(
        rows,
        |a| a.id.as_str(),
        |a| AppointmentResponse::new(&state, a),
    )))
}

/// One appointment. A patient token reads only its own.
#[utoipa::path(
    tag = "appointments",
    operation_id = "get_appointment",
    params(("id" = String, Path, description = "The appointment's id")),
    responses(
        (status = 200, description = "The appointment", body = AppointmentResponse),
        Unauthorized, Forbidden, NotFound, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/appointments/{id}")]
pub async fn get_appointment(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, ApiError> {
    caller.require(ANY_ROLE)?;
    let id = id.into_inner().into_string();
    let found = state
        .db(move |conn| store::find(conn, &id))
        .await
        .map_err(|e| e.naming("appointment"))?;
    caller
        .require_own_patient(&found.patient_id)
        .map_err(|e| e.naming("appointment"))?;
    Ok(HttpResponse::Ok().json(AppointmentResponse::new(&state, found)))
}

/// Applies an action in one transaction: the state machine first, then the
/// action's own rule (`decide`). A patient caller may act only on its own
/// appointments; another's is 404.
async fn act(
    state: &web::Data<AppState>,
    caller: &Caller,
    id: String,
    action: Action,
    decide: impl FnOnce(&mut DbConnection, &Appointment) -> Result<Change, StoreError> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let now = state.now();
    let patient = (caller.role == Role::Patient).then(|| caller.subject.clone());
    let changed = state
        .db(move |conn| {
            store::change(conn, &id, now, |conn, current| {
                if patient.as_ref().is_some_and(|p| *p != current.patient_id) {
                    return Err(StoreError::NotFound);
                }
                let status = current.status.after(action).map_err(StoreError::Refused)?;
                let mut change = decide(conn, current)?;
                change.status = Some(status.as_str());
                Ok(change)
            })
        })
        .await
        .map_err(|e| e.naming("appointment"))?;
    log::info!("appointment {} {}", changed.id, changed.status.as_str());
    Ok(HttpResponse::Ok().json(AppointmentResponse::new(state, changed)))
}

/// Cancel a scheduled appointment, with a reason. A patient may cancel its own.
#[utoipa::path(
    tag = "appointments",
    operation_id = "cancel_appointment",
    params(("id" = String, Path, description = "The appointment's id")),
    request_body = CancelAppointment,
    responses(
        (status = 200, description = "Cancelled", body = AppointmentResponse),
        MalformedRequest, Unauthorized, Forbidden, NotFound, TransitionConflict,
        PayloadTooLarge, UnsupportedMediaType, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/appointments/{id}/cancel")]
pub async fn cancel_appointment(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<CancelAppointment>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF_AND_PATIENT)?;
    let Json(body) = body;
    ApiError::check(
        check_text("reason", &body.reason, MAX_CANCEL_REASON)
            .into_iter()
            .collect(),
    )?;
    let reason = body.reason.trim().to_owned();
    let by = caller.label();
    let now = state.now();
    act(
        &state,
        &caller,
        id.into_inner().into_string(),
        Action::Cancel,
        move |_, current| {
            appointment::cancel_time(current.starts_at, now).map_err(StoreError::Refused)?;
            Ok(Change {
                cancel_reason: Some(reason),
                cancelled_by: Some(by),
                ..Change::default()
            })
        },
    )
    .await
}

/// Move a scheduled appointment to another slot, atomically: the old slot is
/// freed only if the new one is taken.
#[utoipa::path(
    tag = "appointments",
    operation_id = "reschedule_appointment",
    params(("id" = String, Path, description = "The appointment's id")),
    request_body = RescheduleAppointment,
    responses(
        (status = 200, description = "Moved", body = AppointmentResponse),
        MalformedRequest, Unauthorized, Forbidden, NotFound, RescheduleConflict,
        PayloadTooLarge, UnsupportedMediaType, SlotRules, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/appointments/{id}/reschedule")]
pub async fn reschedule_appointment(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<RescheduleAppointment>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    let Json(body) = body;
    let (id, now, calendar) = (
        id.into_inner().into_string(),
        state.now(),
        state.calendar.clone(),
    );
    let moved = state
        .db(move |conn| store::reschedule(conn, &calendar, &id, body.date, body.session, now))
        .await
        .map_err(|e| e.naming("appointment"))?;
    log::info!("appointment {} rescheduled", moved.id);
    Ok(HttpResponse::Ok().json(AppointmentResponse::new(&state, moved)))
}

/// Check the patient in, on the appointment's date, with the pain score on arrival.
#[utoipa::path(
    tag = "appointments",
    operation_id = "check_in_appointment",
    params(("id" = String, Path, description = "The appointment's id")),
    request_body = CheckInAppointment,
    responses(
        (status = 200, description = "Checked in", body = AppointmentResponse),
        MalformedRequest, Unauthorized, Forbidden, NotFound, CheckInConflict,
        PayloadTooLarge, UnsupportedMediaType, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/appointments/{id}/check-in")]
pub async fn check_in_appointment(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<CheckInAppointment>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    let Json(body) = body;
    let (today, now, policy) = (state.today(), state.now(), state.policy);
    act(
        &state,
        &caller,
        id.into_inner().into_string(),
        Action::CheckIn,
        move |conn, current| {
            appointment::check_in_day(current.date, today).map_err(StoreError::Refused)?;
            store::require_check_in_cleared(conn, &current.patient_id, today, policy)?;
            Ok(Change {
                pain_before: Some(body.pain_before.value()),
                phq9: body.phq9.map(Phq9Score::value),
                route: body.route.map(Route::as_str),
                checked_in_at: Some(now.naive_utc()),
                ..Change::default()
            })
        },
    )
    .await
}

/// Complete a checked-in appointment with the pain score at discharge.
#[utoipa::path(
    tag = "appointments",
    operation_id = "complete_appointment",
    params(("id" = String, Path, description = "The appointment's id")),
    request_body = CompleteAppointment,
    responses(
        (status = 200, description = "Completed", body = AppointmentResponse),
        MalformedRequest, Unauthorized, Forbidden, NotFound, TransitionConflict,
        PayloadTooLarge, UnsupportedMediaType, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/appointments/{id}/complete")]
pub async fn complete_appointment(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<CompleteAppointment>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    let Json(body) = body;
    let now = state.now();
    act(
        &state,
        &caller,
        id.into_inner().into_string(),
        Action::Complete,
        move |_, _| {
            Ok(Change {
                pain_after: Some(body.pain_after.value()),
                completed_at: Some(now.naive_utc()),
                ..Change::default()
            })
        },
    )
    .await
}

/// Record that the patient did not come; only after the session has begun.
#[utoipa::path(
    tag = "appointments",
    operation_id = "no_show_appointment",
    params(("id" = String, Path, description = "The appointment's id")),
    responses(
        (status = 200, description = "Recorded as a no-show", body = AppointmentResponse),
        Unauthorized, Forbidden, NotFound, TransitionConflict, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/appointments/{id}/no-show")]
pub async fn no_show_appointment(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    let now = state.now();
    act(
        &state,
        &caller,
        id.into_inner().into_string(),
        Action::NoShow,
        move |_, current| {
            appointment::no_show_time(current.starts_at, now).map_err(StoreError::Refused)?;
            Ok(Change::default())
        },
    )
    .await
}
