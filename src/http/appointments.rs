//! `/v1/appointments`: book, read, list, and the actions of the state
//! machine (cancel, reschedule, check-in, complete, no-show).

use actix_web::web::Path;
use actix_web::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access::{self, Role};
use crate::domain::appointment::{
    self, Appointment, AppointmentStatus, PainScore, Phq9Score, Request, Route, SlotRequest,
};
use crate::domain::billing::{self, InfusionMinutes};
use crate::domain::calendar::Session;
use crate::domain::values::{dates_in_order, CalendarDate, Id, Reason};
use crate::store::appointments::{self as store, Filter};
use crate::store::billing as billing_store;
use crate::store::{intake, StoreError};

use super::auth::{Admits, AnyRole, Clinical, Ctx, Reply, Staff, StaffAndPatient};
use super::error::ApiError;
use super::extract::{Json, Query};
use super::openapi::{
    BodyErrors, BookingConflict, CheckInConflict, CommonErrors, CompletionConflict, NotFound,
    RescheduleConflict, SlotRules, TransitionConflict, ValidationFailed,
};
use super::pagination::{Page, PageRequest};
use super::{ok, Answer, AppState};

/// An appointment as the API shows it: its instants in the clinic's offset.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac5c3-2a4b-7c00-9d11-0123456789ab",
    "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b",
    "room_id": "019ac5a0-0000-7000-8000-000000000001",
    "date": "2026-12-14", "session": "morning", "status": "scheduled", "route": "iv",
    "pain_before": null, "pain_after": null, "cancel_reason": null, "cancelled_by": null,
    "course_id": null, "phq9": null, "starts_at": "2026-12-14T08:00:00-05:00",
    "ends_at": "2026-12-14T12:00:00-05:00", "checked_in_at": null, "completed_at": null,
    "created_at": "2026-11-27T10:02:11-05:00", "updated_at": "2026-11-27T10:02:11-05:00"
}))]
pub struct AppointmentResponse {
    #[serde(flatten)]
    pub appointment: Appointment,
    /// RFC 3339 in the clinic's offset.
    pub starts_at: String,
    /// When the session ends (`MORNING_END`, `AFTERNOON_END`): RFC 3339 in
    /// the clinic's offset.
    pub ends_at: String,
    pub checked_in_at: Option<String>,
    pub completed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl AppointmentResponse {
    /// The appointment as `viewer` sees who cancelled it
    /// ([`access::actor_seen_by`]).
    pub fn new(state: &AppState, viewer: Role, mut a: Appointment) -> Self {
        a.cancelled_by = a.cancelled_by.map(|by| access::actor_seen_by(&by, viewer));
        Self {
            starts_at: state.local(a.starts_at),
            ends_at: state.local(a.ends_at(&state.calendar)),
            checked_in_at: a.checked_in_at.map(|t| state.local(t)),
            completed_at: a.completed_at.map(|t| state.local(t)),
            created_at: state.local(a.created_at),
            updated_at: state.local(a.updated_at),
            appointment: a,
        }
    }
}

/// The appointment as `viewer` may see it: [`AppointmentResponse`] without
/// the fields withheld from its role
/// ([`access::withheld_appointment_fields`]).
pub fn shown(state: &AppState, viewer: Role, a: Appointment) -> Shown {
    let whole = AppointmentResponse::new(state, viewer, a);
    let withheld = access::withheld_appointment_fields(viewer);
    if withheld.is_empty() {
        return Shown::Whole(Box::new(whole));
    }
    let mut value = serde_json::to_value(whole).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        for field in withheld {
            object.remove(*field);
        }
    }
    Shown::Trimmed(value)
}

/// An appointment as its viewer sees it, the same JSON object either way:
/// whole, serialized as it is, or trimmed of withheld fields through a map.
/// The map for every viewer cost about 5% of `make bench`'s appointments
/// read (6,800 against 7,200 req/s).
#[derive(Serialize)]
#[serde(untagged)]
pub enum Shown {
    Whole(Box<AppointmentResponse>),
    Trimmed(serde_json::Value),
}

/// A booking: a free room is assigned.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", "date": "2026-12-14", "session": "morning"}))]
pub struct BookAppointment {
    pub patient_id: Id,
    /// A clinic day, clinic-local, within the booking horizon.
    pub date: CalendarDate,
    pub session: Session,
    /// Defaults to `iv`.
    #[serde(default)]
    pub route: Route,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Patient has a fever"}))]
pub struct CancelAppointment {
    pub reason: Reason,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"date": "2026-12-15", "session": "afternoon"}))]
pub struct RescheduleAppointment {
    pub date: CalendarDate,
    pub session: Session,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"pain_before": 8}))]
pub struct CheckInAppointment {
    /// Pain on arrival, 0 to 10: clinicians and admins only. When a
    /// scheduler checks the patient in, a clinician records it at completion.
    pub pain_before: Option<PainScore>,
    /// The route actually used, if not the booked one.
    pub route: Option<Route>,
    /// PHQ-9 score (0 to 27) for mental health courses' response check:
    /// clinicians and admins only.
    pub phq9: Option<Phq9Score>,
}

impl CheckInAppointment {
    fn sent(&self) -> Vec<&'static str> {
        let fields = [("pain_before", self.pain_before.is_some()), ("phq9", self.phq9.is_some())];
        fields.into_iter().filter_map(|(f, sent)| sent.then_some(f)).collect()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"pain_after": 3,
    "clinician_id": "019ac5b0-0000-7000-8000-000000000001", "infusion_minutes": 100}))]
pub struct CompleteAppointment {
    /// Pain at discharge, 0 to 10.
    pub pain_after: PainScore,
    /// Pain on arrival, 0 to 10, when it was not recorded at check-in (and
    /// only then): an infusion is completed with both.
    pub pain_before: Option<PainScore>,
    /// PHQ-9 score, when it was not recorded at check-in (and only then).
    pub phq9: Option<Phq9Score>,
    /// The clinician who gave the infusion: an active one of
    /// `/v1/clinicians`, named on the superbill as the rendering provider.
    pub clinician_id: Id,
    /// How long the infusion ran: an IV infusion is billed by it (96365,
    /// and 96366 for each hour past 90 minutes, … ).
    pub infusion_minutes: InfusionMinutes,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAppointmentsQuery {
    /// Only this patient's (a patient token sees only its own anyway).
    pub patient_id: Option<Id>,
    /// Only on or after this date.
    pub from: Option<CalendarDate>,
    /// Only on or before this date.
    pub to: Option<CalendarDate>,
    pub status: Option<AppointmentStatus>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Id>,
}

/// Book a session for a patient; a free room is assigned.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "appointments", request_body = BookAppointment,
    responses(
        (status = 201, description = "Booked", body = AppointmentResponse,
            headers(("location" = String, description = "The appointment's URL"))),
        CommonErrors, BodyErrors, BookingConflict, SlotRules))]
#[post("/appointments")]
pub async fn book_appointment(ctx: Ctx<Staff>, body: Json<BookAppointment>) -> Answer {
    let Json(body) = body;
    let (clinic, role) = (ctx.clinic(), ctx.caller.role);
    let patient_id = body.patient_id.into_string();
    let slot = SlotRequest { date: body.date.get(), session: body.session };
    ctx.write_retrying(
        move |tx| {
            let facts = store::slot_facts(tx, &patient_id, slot, None)?.seen_by(role);
            let new = appointment::book(&patient_id, slot, body.route, &facts, &clinic)?;
            store::insert(tx, &new, clinic.now)
        },
        move |state, booked| {
            Reply::created(format!("/v1/appointments/{}", booked.id), &shown(state, role, booked))
        },
    )
    .await
}

/// List appointments in id (booking) order. A patient token lists its own.
/// Integration tokens read the schedule without `pain_before`, `pain_after`,
/// `phq9` and `cancel_reason`; patient tokens see `cancelled_by` as a role.
///
/// **Roles:** admin, clinician, scheduler, integration, patient (its own).
#[utoipa::path(tag = "appointments", params(ListAppointmentsQuery),
    responses(
        (status = 200, description = "A page of appointments", body = Page<AppointmentResponse>),
        CommonErrors, NotFound, ValidationFailed))]
#[get("/appointments")]
pub async fn list_appointments(ctx: Ctx<AnyRole>, query: Query<ListAppointmentsQuery>) -> Answer {
    let Query(q) = query;
    let page = PageRequest::parse(q.limit, q.cursor)?;
    let patient_id = match (ctx.caller.role, q.patient_id.map(Id::into_string)) {
        (Role::Patient, Some(other)) => {
            ctx.caller.require_own_patient(&other)?;
            Some(other)
        }
        (Role::Patient, None) => Some(ctx.caller.subject.clone()),
        (_, requested) => requested,
    };
    dates_in_order(q.from, q.to)?;
    let filter = Filter {
        patient_id,
        from: q.from.map(CalendarDate::get),
        to: q.to.map(CalendarDate::get),
        statuses: q.status.into_iter().collect(),
        ..Filter::default()
    };
    let at = page.rows();
    let rows = ctx.read(move |conn| store::list(conn, &filter, &at)).await?;
    let viewer = ctx.caller.role;
    ok(page.shown(rows, &ctx, |state, a| shown(state, viewer, a)))
}

/// One appointment. A patient token reads only its own. Integration tokens
/// read it without `pain_before`, `pain_after`, `phq9` and `cancel_reason`;
/// patient tokens see `cancelled_by` as a role.
///
/// **Roles:** admin, clinician, scheduler, integration, patient (its own).
#[utoipa::path(tag = "appointments",
    params(("id" = String, Path, description = "The appointment's id")),
    responses((status = 200, description = "The appointment", body = AppointmentResponse),
        CommonErrors, NotFound))]
#[get("/appointments/{id}")]
pub async fn get_appointment(ctx: Ctx<AnyRole>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    let found = ctx.db(move |conn| store::find(conn, &id)).await?;
    ctx.caller.require_own(&found.patient_id, "appointment")?;
    ctx.saw(&found);
    ok(shown(&ctx, ctx.caller.role, found))
}

/// Asks the domain to decide `request` on the appointment, held until
/// commit, with the patient's intake when the decision needs it, and writes
/// the change. A patient caller may act only on its own appointments;
/// another's is 404.
async fn act<A: Admits>(ctx: &Ctx<A>, id: Path<Id>, request: Request) -> Answer {
    let (id, clinic, caller) = (id.into_inner().into_string(), ctx.clinic(), ctx.caller.clone());
    let (precondition, state, role) = (ctx.precondition(), ctx.state(), ctx.caller.role);
    ctx.write(
        move |tx| {
            let current = store::hold(tx, &id)?;
            if caller.require_own(&current.patient_id, "appointment").is_err() {
                return Err(StoreError::NotFound("appointment"));
            }
            precondition.check(|| shown(&state, caller.role, current.clone()))?;
            let intake = if request.needs_intake() {
                intake::intake_record(tx, &current.patient_id)?.map(|i| i.seen_by(caller.role))
            } else {
                None
            };
            let billed = request
                .clinician()
                .map(|c| billing_store::completion_facts(tx, &current.patient_id, c))
                .transpose()?;
            let (change, charges) =
                billing::decide(&current, request, intake.as_ref(), billed.as_ref(), &clinic)?;
            let changed = store::apply(tx, &id, &change, clinic.now)?;
            let charges = billing_store::insert_charges(tx, &charges, &caller.label(), clinic.now)?;
            Ok((changed, charges))
        },
        move |state, (changed, _charges)| Reply::ok(&shown(state, role, changed)),
    )
    .await
}

/// Cancel a scheduled appointment, with a reason. A patient may cancel its own.
///
/// **Roles:** admin, clinician, scheduler, patient (its own).
#[utoipa::path(tag = "appointments",
    params(("id" = String, Path, description = "The appointment's id")),
    request_body = CancelAppointment,
    responses((status = 200, description = "Cancelled", body = AppointmentResponse), CommonErrors,
        BodyErrors, NotFound, TransitionConflict, ValidationFailed))]
#[post("/appointments/{id}/cancel")]
pub async fn cancel_appointment(
    ctx: Ctx<StaffAndPatient>,
    id: Path<Id>,
    body: Json<CancelAppointment>,
) -> Answer {
    let request = Request::Cancel { reason: body.0.reason.into_string(), by: ctx.caller.label() };
    act(&ctx, id, request).await
}

/// Move a scheduled appointment to another slot, atomically: the old slot is
/// freed only if the new one is taken. A move is not a new course: the
/// booking checklist is not asked again, but a contraindication found since
/// booking (the latest screening is ineligible) stops it.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "appointments",
    params(("id" = String, Path, description = "The appointment's id")),
    request_body = RescheduleAppointment,
    responses((status = 200, description = "Moved", body = AppointmentResponse), CommonErrors,
        BodyErrors, NotFound, RescheduleConflict, SlotRules))]
#[post("/appointments/{id}/reschedule")]
pub async fn reschedule_appointment(
    ctx: Ctx<Staff>,
    id: Path<Id>,
    body: Json<RescheduleAppointment>,
) -> Answer {
    let slot = SlotRequest { date: body.0.date.get(), session: body.0.session };
    let (id, clinic, role) = (id.into_inner().into_string(), ctx.clinic(), ctx.caller.role);
    let (precondition, state) = (ctx.precondition(), ctx.state());
    ctx.write_retrying(
        move |tx| {
            let current = store::hold(tx, &id)?;
            precondition.check(|| shown(&state, role, current.clone()))?;
            let facts = store::slot_facts(tx, &current.patient_id, slot, Some(&id))?.seen_by(role);
            let to = appointment::reschedule(&current, slot, &facts, &clinic)?;
            store::move_to(tx, &current, &to, clinic.now)
        },
        move |state, moved| Reply::ok(&shown(state, role, moved)),
    )
    .await
}

/// Check the patient in, on the appointment's date, with the pain score on
/// arrival; refused unless the patient was screened and the latest screening
/// is not ineligible, every referral the patient's indications require was
/// verified, and the lamotrigine prescriber consult is done.
///
/// **Roles:** admin, clinician, scheduler; `pain_before` and `phq9` are
/// recorded by admins and clinicians only (a scheduler sending them gets 403).
#[utoipa::path(tag = "appointments",
    params(("id" = String, Path, description = "The appointment's id")),
    request_body = CheckInAppointment,
    responses((status = 200, description = "Checked in", body = AppointmentResponse), CommonErrors,
        BodyErrors, NotFound, CheckInConflict, ValidationFailed))]
#[post("/appointments/{id}/check-in")]
pub async fn check_in_appointment(
    ctx: Ctx<Staff>,
    id: Path<Id>,
    body: Json<CheckInAppointment>,
) -> Answer {
    let Json(body) = body;
    access::may_set(ctx.caller.role, &body.sent(), false).map_err(ApiError::ForbiddenField)?;
    let request =
        Request::CheckIn { pain_before: body.pain_before, route: body.route, phq9: body.phq9 };
    act(&ctx, id, request).await
}

/// Complete a checked-in appointment with the pain score at discharge, and
/// the scores check-in did not record (a scheduler's check-in records none):
/// an infusion is completed with pain on arrival and at discharge. It names
/// the clinician who gave it and how long it ran; an IV infusion's charges
/// are created with it, at the fee schedule's prices (409
/// `fee_schedule_incomplete` if a code it bills has none): 96365 for an
/// infusion of more than 15 minutes, 96366 for each further hour that runs
/// more than 30 minutes into it, and one unit of J3490, the drug, each
/// pointing to the patient's diagnoses.
///
/// **Roles:** admin, clinician.
#[utoipa::path(tag = "appointments",
    params(("id" = String, Path, description = "The appointment's id")),
    request_body = CompleteAppointment,
    responses((status = 200, description = "Completed", body = AppointmentResponse), CommonErrors,
        BodyErrors, NotFound, CompletionConflict, ValidationFailed))]
#[post("/appointments/{id}/complete")]
pub async fn complete_appointment(
    ctx: Ctx<Clinical>,
    id: Path<Id>,
    body: Json<CompleteAppointment>,
) -> Answer {
    let Json(body) = body;
    let request = Request::Complete {
        pain_after: body.pain_after,
        pain_before: body.pain_before,
        phq9: body.phq9,
        clinician_id: body.clinician_id.into_string(),
        minutes: body.infusion_minutes,
    };
    act(&ctx, id, request).await
}

/// Record that the patient did not come; only after the session has begun.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "appointments",
    params(("id" = String, Path, description = "The appointment's id")),
    responses((status = 200, description = "Recorded as a no-show", body = AppointmentResponse),
        CommonErrors, NotFound, TransitionConflict))]
#[post("/appointments/{id}/no-show")]
pub async fn no_show_appointment(ctx: Ctx<Staff>, id: Path<Id>) -> Answer {
    act(&ctx, id, Request::NoShow).await
}
