//! Billing (`docs/API.md`, "Billing"): the clinic's billing profile
//! (`/v1/billing/profile`), the fee schedule (`/v1/billing/fees`), the
//! clinicians who render services (`/v1/clinicians`), a patient's charges,
//! payments and balance, and the superbill as JSON or PDF
//! (`/v1/patients/{id}/superbill`).

use actix_web::http::header;
use actix_web::web::Path;
use actix_web::{get, patch, post, put, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access::{self, Role};
use crate::domain::billing::{
    self, Balance, BillingCode, BillingProfile, Cents, Charge, Clinician, DrugUnit, Fee,
    ManualCharge, Modifier, NewPayment, Npi, PaidCents, Payment, PaymentMethod, Superbill,
};
use crate::domain::diagnosis::Diagnosis;
use crate::domain::values::{dates_in_order, CalendarDate, Id, Reason, Text};
use crate::domain::FieldError;
use crate::store::billing::{self as store, ClinicianFields, Span};
use crate::store::{appointments, patients, StoreError};

use super::audit::PatientId;
use super::auth::{AdminOnly, Clinical, Ctx, Reply, Staff, StaffAndPatient};
use super::error::ApiError;
use super::extract::{Json, Query};
use super::openapi::{
    BodyErrors, ChargeConflict, ClinicianConflict, CommonErrors, NotAcceptable, NotFound,
    SuperbillConflict, ValidationFailed, VoidConflict,
};
use super::pagination::{Page, PageQuery, PageRequest};
use super::{ok, superbill_pdf, Answer, AppState};

/// Get the clinic's billing profile: the billing provider a superbill
/// names. 404 until an admin sets it.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "billing",
    responses((status = 200, description = "The billing profile", body = BillingProfile),
        CommonErrors, NotFound))]
#[get("/billing/profile")]
pub async fn get_billing_profile(ctx: Ctx<Staff>) -> Answer {
    let profile = ctx.db(store::profile).await?;
    ok(profile.ok_or(ApiError::NotFound("billing profile"))?)
}

/// Set the clinic's billing profile: legal name, address, phone, tax id
/// (EIN), organization NPI (its check digit is checked) and place of
/// service (`11`, office, by default). Replaces what was there; past
/// charges keep the place of service they were made with.
///
/// **Roles:** admin.
#[utoipa::path(tag = "billing", request_body = BillingProfile,
    responses((status = 200, description = "The billing profile as set", body = BillingProfile),
        CommonErrors, BodyErrors, ValidationFailed))]
#[put("/billing/profile")]
pub async fn put_billing_profile(ctx: Ctx<AdminOnly>, body: Json<BillingProfile>) -> Answer {
    let Json(profile) = body;
    let now = ctx.now();
    ctx.write(
        move |tx| store::put_profile(tx, &profile, now).map(Settled),
        |_, Settled(p)| Reply::ok(&p),
    )
    .await
}

/// A write of the clinic's own settings: it touches no patient.
struct Settled<T>(T);

impl<T> super::audit::Touched for Settled<T> {
    fn touched(&self, _: &mut super::audit::Seen) {}
}

/// The fee schedule: each code's price per unit.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [
    {"code": "96365", "description": "IV infusion, therapeutic, initial, up to 1 hour", "price_cents": 45000, "drug": null},
    {"code": "96366", "description": "IV infusion, therapeutic, each additional hour", "price_cents": 15000, "drug": null},
    {"code": "J3490", "description": "Unclassified drug: ketamine HCl", "price_cents": 7500,
     "drug": {"ndc": "00409-2051-05", "unit": "ML", "quantity": "10"}}
]}))]
pub struct FeeSchedule {
    /// The priced codes, in the order 96365, 96366, J3490; a code not
    /// priced yet is not listed.
    pub items: Vec<Fee>,
}

/// List the fee schedule.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "billing",
    responses((status = 200, description = "The fee schedule", body = FeeSchedule), CommonErrors))]
#[get("/billing/fees")]
pub async fn list_fees(ctx: Ctx<Staff>) -> Answer {
    ok(FeeSchedule { items: ctx.db(store::fees).await? })
}

/// A code's price.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"price_cents": 7500,
    "drug": {"ndc": "00409-2051-05", "unit": "ML", "quantity": "10"}}))]
pub struct PutFee {
    /// Per unit.
    pub price_cents: Cents,
    /// For J3490 (and only for it): the drug's NDC, and the quantity one
    /// billed unit is.
    pub drug: Option<DrugUnit>,
}

/// Price a code: `96365`, `96366` or `J3490` (with its NDC). New charges
/// are made at this price; charges already made keep theirs.
///
/// **Roles:** admin.
#[utoipa::path(tag = "billing", request_body = PutFee,
    params(("code" = BillingCode, Path, description = "The code")),
    responses((status = 200, description = "The code's fee as set", body = Fee), CommonErrors,
        BodyErrors, NotFound, ValidationFailed))]
#[put("/billing/fees/{code}")]
pub async fn put_fee(ctx: Ctx<AdminOnly>, code: Path<String>, body: Json<PutFee>) -> Answer {
    let code = BillingCode::parse(&code.into_inner()).ok_or(ApiError::NotFound("billing code"))?;
    let Json(body) = body;
    let (price, drug) = billing::price(code, body.price_cents, body.drug)?;
    let now = ctx.now();
    ctx.write(
        move |tx| store::put_fee(tx, code, price, drug.as_ref(), now).map(Settled),
        |_, Settled(fee)| Reply::ok(&fee),
    )
    .await
}

/// A clinician as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac5b0-0000-7000-8000-000000000001", "name": "Grace Hopper",
    "credentials": "MD", "npi": "1003000126", "active": true,
    "created_at": "2026-11-26T19:00:00-05:00", "updated_at": "2026-11-26T19:00:00-05:00"}))]
pub struct ClinicianResponse {
    #[serde(flatten)]
    pub clinician: Clinician,
    /// RFC 3339 in the clinic's offset.
    pub created_at: String,
    pub updated_at: String,
}

impl ClinicianResponse {
    fn new(state: &AppState, c: Clinician) -> Self {
        Self {
            created_at: state.local(c.created_at),
            updated_at: state.local(c.updated_at),
            clinician: c,
        }
    }
}

/// A new clinician.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Grace Hopper", "credentials": "MD", "npi": "1003000126"}))]
pub struct CreateClinician {
    /// As the superbill prints it.
    pub name: Text<100>,
    /// `MD`, `DO`, `CRNA`, `NP`…
    pub credentials: Text<40>,
    /// The individual NPI: one clinician each.
    pub npi: Npi,
    /// Defaults to `true`.
    #[serde(default = "super::rooms::yes")]
    pub active: bool,
}

/// Changes to a clinician: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"active": false}))]
pub struct UpdateClinician {
    pub name: Option<Text<100>>,
    pub credentials: Option<Text<40>>,
    pub npi: Option<Npi>,
    /// An inactive clinician cannot be named on a new infusion or charge;
    /// what they rendered keeps their name.
    pub active: Option<bool>,
}

/// List the clinicians.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "billing", params(PageQuery),
    responses((status = 200, description = "A page of clinicians", body = Page<ClinicianResponse>),
        CommonErrors, ValidationFailed))]
#[get("/clinicians")]
pub async fn list_clinicians(ctx: Ctx<Staff>, query: Query<PageQuery>) -> Answer {
    let Query(query) = query;
    let page = PageRequest::parse(query.limit, query.cursor)?;
    let at = page.rows();
    let rows = ctx.db(move |conn| store::list_clinicians(conn, &at)).await?;
    ok(page.shown(rows, &ctx, ClinicianResponse::new))
}

/// One clinician.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The clinician's id")),
    responses((status = 200, description = "The clinician", body = ClinicianResponse),
        CommonErrors, NotFound))]
#[get("/clinicians/{id}")]
pub async fn get_clinician(ctx: Ctx<Staff>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    let found = ctx.db(move |conn| store::find_clinician(conn, &id)).await?;
    ok(ClinicianResponse::new(&ctx, found))
}

/// Add a clinician who renders infusions, with their individual NPI.
///
/// **Roles:** admin.
#[utoipa::path(tag = "billing", request_body = CreateClinician,
    responses(
        (status = 201, description = "Created", body = ClinicianResponse,
            headers(("location" = String, description = "The clinician's URL"))),
        CommonErrors, BodyErrors, ClinicianConflict, ValidationFailed))]
#[post("/clinicians")]
pub async fn create_clinician(ctx: Ctx<AdminOnly>, body: Json<CreateClinician>) -> Answer {
    let Json(body) = body;
    let now = ctx.now();
    ctx.write(
        move |tx| {
            let fields = ClinicianFields {
                name: body.name.as_str(),
                credentials: body.credentials.as_str(),
                npi: body.npi.as_str(),
                active: body.active,
            };
            store::insert_clinician(tx, &fields, now)
        },
        |state, c| {
            Reply::created(format!("/v1/clinicians/{}", c.id), &ClinicianResponse::new(state, c))
        },
    )
    .await
}

/// Change a clinician's name, credentials or NPI, or (de)activate them.
///
/// **Roles:** admin.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The clinician's id")),
    request_body = UpdateClinician,
    responses((status = 200, description = "The clinician after the change", body = ClinicianResponse),
        CommonErrors, BodyErrors, NotFound, ClinicianConflict, ValidationFailed))]
#[patch("/clinicians/{id}")]
pub async fn update_clinician(
    ctx: Ctx<AdminOnly>,
    id: Path<Id>,
    body: Json<UpdateClinician>,
) -> Answer {
    let Json(body) = body;
    let (id, now) = (id.into_inner().into_string(), ctx.now());
    let (precondition, state) = (ctx.precondition(), ctx.state());
    ctx.write(
        move |tx| {
            let current = store::hold_clinician(tx, &id)?;
            precondition.check(|| ClinicianResponse::new(&state, current.clone()))?;
            store::update_clinician(
                tx,
                &id,
                body.name.as_ref().map(Text::as_str),
                body.credentials.as_ref().map(Text::as_str),
                body.npi.as_ref().map(Npi::as_str),
                body.active,
                now,
            )
        },
        |state, c| Reply::ok(&ClinicianResponse::new(state, c)),
    )
    .await
}

/// A charge or payment's who and when, as `viewer` may see them: a patient
/// sees staff by role ([`access::actor_seen_by`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct VoidResponse {
    pub reason: String,
    /// `role:subject` (a role alone for a patient).
    pub by: String,
    /// RFC 3339 in the clinic's offset.
    pub at: String,
}

fn void_shown(state: &AppState, viewer: Role, void: Option<billing::Void>) -> Option<VoidResponse> {
    void.map(|v| VoidResponse {
        reason: v.reason,
        by: access::actor_seen_by(&v.by, viewer),
        at: state.local(v.at),
    })
}

/// A charge as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac5c9-0000-7000-8000-000000000001", "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b",
    "appointment_id": "019ac5c3-2a4b-7c00-9d11-0123456789ab",
    "clinician_id": "019ac5b0-0000-7000-8000-000000000001", "date_of_service": "2026-12-14",
    "code": "96365", "modifiers": [], "units": 1, "unit_price_cents": 45000, "amount_cents": 45000,
    "drug": null, "diagnoses": ["G90.50"], "place_of_service": "11",
    "created_by": "clinician:dr-grey", "created_at": "2026-12-14T11:30:00-05:00", "void": null
}))]
pub struct ChargeResponse {
    #[serde(flatten)]
    pub charge: Charge,
    /// RFC 3339 in the clinic's offset.
    pub created_at: String,
    /// Set when voided: why, by whom, when.
    #[serde(rename = "void")]
    pub voided: Option<VoidResponse>,
}

fn charge_shown(state: &AppState, viewer: Role, mut c: Charge) -> ChargeResponse {
    c.created_by = access::actor_seen_by(&c.created_by, viewer);
    let voided = void_shown(state, viewer, c.void.take());
    ChargeResponse { created_at: state.local(c.created_at), voided, charge: c }
}

/// A payment as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac5ca-0000-7000-8000-000000000001", "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b",
    "amount_cents": 45000, "received_on": "2026-12-14", "method": "card",
    "reference": "card ending 4242", "created_by": "scheduler:front-desk",
    "created_at": "2026-12-14T11:40:00-05:00", "void": null
}))]
pub struct PaymentResponse {
    #[serde(flatten)]
    pub payment: Payment,
    /// RFC 3339 in the clinic's offset.
    pub created_at: String,
    #[serde(rename = "void")]
    pub voided: Option<VoidResponse>,
}

fn payment_shown(state: &AppState, viewer: Role, mut p: Payment) -> PaymentResponse {
    p.created_by = access::actor_seen_by(&p.created_by, viewer);
    let voided = void_shown(state, viewer, p.void.take());
    PaymentResponse { created_at: state.local(p.created_at), voided, payment: p }
}

/// Which of a patient's charges or payments.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DatedPageQuery {
    /// Only dated on or after this date (a charge's date of service, a
    /// payment's date received).
    pub from: Option<CalendarDate>,
    /// Only dated on or before this date.
    pub to: Option<CalendarDate>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Id>,
}

impl DatedPageQuery {
    /// The page and dates asked for, checked.
    fn span(self) -> Result<(PageRequest, Span), ApiError> {
        let page = PageRequest::parse(self.limit, self.cursor)?;
        dates_in_order(self.from, self.to)?;
        let span = Span {
            from: self.from.map(CalendarDate::get),
            to: self.to.map(CalendarDate::get),
            rows: Some(page.rows()),
        };
        Ok((page, span))
    }
}

/// Reads a patient's records with `work` for a caller that may see them
/// (a patient token its own; another's is 404), noting the patient on the
/// trail. 404 when there is no such patient.
async fn patients_own<A, T, F>(ctx: &Ctx<A>, patient_id: String, work: F) -> Result<T, ApiError>
where
    A: super::auth::Admits,
    F: FnOnce(&mut crate::store::DbConnection, &str) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    ctx.caller.require_own_patient(&patient_id)?;
    ctx.saw(&PatientId(&patient_id));
    ctx.db(move |conn| {
        if !patients::exists(conn, &patient_id)? {
            return Err(StoreError::NotFound("patient"));
        }
        work(conn, &patient_id)
    })
    .await
}

/// List a patient's charges by id (the order they were made), voided ones
/// too. A patient token lists its own.
///
/// **Roles:** admin, clinician, scheduler, patient (its own).
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The patient's id"),
        DatedPageQuery),
    responses((status = 200, description = "A page of charges", body = Page<ChargeResponse>),
        CommonErrors, NotFound, ValidationFailed))]
#[get("/patients/{id}/charges")]
pub async fn list_charges(
    ctx: Ctx<StaffAndPatient>,
    id: Path<Id>,
    query: Query<DatedPageQuery>,
) -> Answer {
    let (page, span) = query.0.span()?;
    let rows = patients_own(&ctx, id.into_inner().into_string(), move |conn, patient| {
        store::charges_of(conn, patient, &span)
    })
    .await?;
    let viewer = ctx.caller.role;
    ok(page.shown(rows, &ctx, |state, c| charge_shown(state, viewer, c)))
}

/// A charge staff enter by hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "96366", "units": 1, "date_of_service": "2026-12-14",
    "clinician_id": "019ac5b0-0000-7000-8000-000000000001",
    "appointment_id": "019ac5c3-2a4b-7c00-9d11-0123456789ab"}))]
pub struct CreateCharge {
    pub code: BillingCode,
    /// 1 to 99.
    #[schema(minimum = 1, maximum = 99)]
    pub units: u16,
    /// Not in the future; the appointment's date if one is named.
    pub date_of_service: CalendarDate,
    /// The rendering clinician: an active one.
    pub clinician_id: Id,
    /// The completed infusion it bills, if any: the patient's own.
    pub appointment_id: Option<Id>,
    /// At most four, each once.
    #[serde(default)]
    #[schema(max_items = 4)]
    pub modifiers: Vec<Modifier>,
    /// ICD-10-CM codes the line points to, billable, at most four, each
    /// once; the patient's coded indications when absent.
    #[schema(max_items = 4)]
    pub diagnoses: Option<Vec<Diagnosis>>,
}

/// Add a charge by hand: a correction of a voided one, or a service the
/// completion did not bill. It is made at the fee schedule's price.
///
/// **Roles:** admin, clinician.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The patient's id")),
    request_body = CreateCharge,
    responses(
        (status = 201, description = "Charged", body = ChargeResponse,
            headers(("location" = String, description = "The charge's URL"))),
        CommonErrors, BodyErrors, NotFound, ChargeConflict, ValidationFailed))]
#[post("/patients/{id}/charges")]
pub async fn create_charge(ctx: Ctx<Clinical>, id: Path<Id>, body: Json<CreateCharge>) -> Answer {
    let Json(body) = body;
    let (patient_id, today, now) = (id.into_inner().into_string(), ctx.today(), ctx.now());
    let (by, viewer) = (ctx.caller.label(), ctx.caller.role);
    ctx.write(
        move |tx| {
            let patient = patients::find(tx, &patient_id)?;
            let appointment = match &body.appointment_id {
                Some(a) => Some(match appointments::find(tx, a.as_str()) {
                    Err(StoreError::NotFound(_)) => {
                        return Err(unknown("appointment_id", "is not an appointment"))
                    }
                    found => found?,
                }),
                None => None,
            };
            let clinician = store::clinician(tx, body.clinician_id.as_str())?
                .ok_or_else(|| unknown("clinician_id", "is not a clinician on record"))?;
            let place = store::profile(tx)?.map(|p| p.place_of_service).unwrap_or_default();
            let fees = store::fees(tx)?;
            let new = billing::manual_charge(ManualCharge {
                patient_id: &patient.id,
                appointment: appointment.as_ref(),
                clinician: &clinician,
                date_of_service: body.date_of_service.get(),
                code: body.code,
                units: body.units,
                modifiers: body.modifiers,
                diagnoses: body.diagnoses,
                indications: &patient.details.indications,
                fees: &fees,
                place_of_service: place.as_str(),
                today,
            })?;
            let mut made = store::insert_charges(tx, &[new], &by, now)?;
            made.pop().ok_or(StoreError::NotFound("charge"))
        },
        move |state, c| {
            Reply::created(format!("/v1/charges/{}", c.id), &charge_shown(state, viewer, c))
        },
    )
    .await
}

/// A field naming a record that is not there: 422 naming it.
fn unknown(field: &str, message: &str) -> StoreError {
    StoreError::Refused(FieldError::refusal(field, message))
}

/// One charge. A patient token reads its own.
///
/// **Roles:** admin, clinician, scheduler, patient (its own).
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The charge's id")),
    responses((status = 200, description = "The charge", body = ChargeResponse), CommonErrors,
        NotFound))]
#[get("/charges/{id}")]
pub async fn get_charge(ctx: Ctx<StaffAndPatient>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    let found = ctx.db(move |conn| store::find_charge(conn, &id)).await?;
    ctx.caller.require_own(&found.patient_id, "charge")?;
    ctx.saw(&found);
    ok(charge_shown(&ctx, ctx.caller.role, found))
}

/// One payment. A patient token reads its own.
///
/// **Roles:** admin, clinician, scheduler, patient (its own).
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The payment's id")),
    responses((status = 200, description = "The payment", body = PaymentResponse), CommonErrors,
        NotFound))]
#[get("/payments/{id}")]
pub async fn get_payment(ctx: Ctx<StaffAndPatient>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    let found = ctx.db(move |conn| store::find_payment(conn, &id)).await?;
    ctx.caller.require_own(&found.patient_id, "payment")?;
    ctx.saw(&found);
    ok(payment_shown(&ctx, ctx.caller.role, found))
}

/// Why a charge or payment is voided.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Entered twice"}))]
pub struct VoidRequest {
    pub reason: Reason,
}

/// Void a charge, with a reason: it stays on record, off the balance and
/// the superbill. A charge is never edited; a correction is a new one.
///
/// **Roles:** admin, clinician.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The charge's id")),
    request_body = VoidRequest,
    responses((status = 200, description = "Voided", body = ChargeResponse), CommonErrors,
        BodyErrors, NotFound, VoidConflict, ValidationFailed))]
#[post("/charges/{id}/void")]
pub async fn void_charge(ctx: Ctx<Clinical>, id: Path<Id>, body: Json<VoidRequest>) -> Answer {
    let reason = body.0.reason.into_string();
    let (id, now, by, viewer) =
        (id.into_inner().into_string(), ctx.now(), ctx.caller.label(), ctx.caller.role);
    ctx.write(
        move |tx| {
            let current = store::hold_charge(tx, &id)?;
            billing::void(current.void.as_ref(), "charge")?;
            store::void_charge(tx, &id, &reason, &by, now)
        },
        move |state, c| Reply::ok(&charge_shown(state, viewer, c)),
    )
    .await
}

/// List a patient's payments by id (the order they were recorded), voided
/// ones too. A patient token lists its own.
///
/// **Roles:** admin, clinician, scheduler, patient (its own).
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The patient's id"),
        DatedPageQuery),
    responses((status = 200, description = "A page of payments", body = Page<PaymentResponse>),
        CommonErrors, NotFound, ValidationFailed))]
#[get("/patients/{id}/payments")]
pub async fn list_payments(
    ctx: Ctx<StaffAndPatient>,
    id: Path<Id>,
    query: Query<DatedPageQuery>,
) -> Answer {
    let (page, span) = query.0.span()?;
    let rows = patients_own(&ctx, id.into_inner().into_string(), move |conn, patient| {
        store::payments_of(conn, patient, &span)
    })
    .await?;
    let viewer = ctx.caller.role;
    ok(page.shown(rows, &ctx, |state, p| payment_shown(state, viewer, p)))
}

/// A payment received.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount_cents": 45000, "received_on": "2026-12-14", "method": "card",
    "reference": "card ending 4242"}))]
pub struct CreatePayment {
    pub amount_cents: PaidCents,
    /// Not in the future.
    pub received_on: CalendarDate,
    pub method: PaymentMethod,
    /// A check number, a card's last four digits, a transfer's id.
    pub reference: Option<Text<100>>,
}

/// Record a payment from the patient.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The patient's id")),
    request_body = CreatePayment,
    responses(
        (status = 201, description = "Recorded", body = PaymentResponse,
            headers(("location" = String, description = "The payment's URL"))),
        CommonErrors, BodyErrors, NotFound, ValidationFailed))]
#[post("/patients/{id}/payments")]
pub async fn create_payment(ctx: Ctx<Staff>, id: Path<Id>, body: Json<CreatePayment>) -> Answer {
    let Json(body) = body;
    let (patient_id, today, now) = (id.into_inner().into_string(), ctx.today(), ctx.now());
    let (by, viewer) = (ctx.caller.label(), ctx.caller.role);
    let new = billing::payment(
        NewPayment {
            patient_id,
            amount_cents: body.amount_cents,
            received_on: body.received_on.get(),
            method: body.method,
            reference: body.reference.map(Text::into_string),
        },
        today,
    )?;
    ctx.write(
        move |tx| {
            if !patients::exists(tx, &new.patient_id)? {
                return Err(StoreError::NotFound("patient"));
            }
            store::insert_payment(tx, &new, &by, now)
        },
        move |state, p| {
            Reply::created(format!("/v1/payments/{}", p.id), &payment_shown(state, viewer, p))
        },
    )
    .await
}

/// Void a payment, with a reason (recorded in error, or refunded): it
/// stays on record, off the balance and the superbill.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The payment's id")),
    request_body = VoidRequest,
    responses((status = 200, description = "Voided", body = PaymentResponse), CommonErrors,
        BodyErrors, NotFound, VoidConflict, ValidationFailed))]
#[post("/payments/{id}/void")]
pub async fn void_payment(ctx: Ctx<Staff>, id: Path<Id>, body: Json<VoidRequest>) -> Answer {
    let reason = body.0.reason.into_string();
    let (id, now, by, viewer) =
        (id.into_inner().into_string(), ctx.now(), ctx.caller.label(), ctx.caller.role);
    ctx.write(
        move |tx| {
            let current = store::hold_payment(tx, &id)?;
            billing::void(current.void.as_ref(), "payment")?;
            store::void_payment(tx, &id, &reason, &by, now)
        },
        move |state, p| Reply::ok(&payment_shown(state, viewer, p)),
    )
    .await
}

/// A patient's balance: what was charged and paid, voided lines left out,
/// and the difference, derived from them on each read.
///
/// **Roles:** admin, clinician, scheduler, patient (its own).
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The patient's id")),
    responses((status = 200, description = "The balance", body = Balance), CommonErrors, NotFound))]
#[get("/patients/{id}/balance")]
pub async fn get_balance(ctx: Ctx<StaffAndPatient>, id: Path<Id>) -> Answer {
    let (charges, payments) = patients_own(&ctx, id.into_inner().into_string(), |conn, patient| {
        store::account(conn, patient)
    })
    .await?;
    ok(Balance::of(&charges, &payments))
}

/// The dates of service a superbill covers.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuperbillQuery {
    /// The first date of service (and of payments); by default the
    /// patient's first date of service or payment, whichever is earlier.
    pub from: Option<CalendarDate>,
    /// The last date of service (and of payments); today by default.
    pub to: Option<CalendarDate>,
}

/// A PDF document, as bytes.
pub struct PdfDocument;

impl utoipa::PartialSchema for PdfDocument {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("A PDF (US Letter) to print, sign and send to an insurer."))
            .into()
    }
}

impl ToSchema for PdfDocument {}

/// What a superbill answer is sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Pdf,
}

/// The format `Accept` prefers of JSON and PDF, by weight (RFC 9110
/// §12.5.1; JSON on a tie, or without `Accept`); 406 when it admits
/// neither.
fn negotiate(req: &HttpRequest) -> Result<Format, ApiError> {
    let Some(accept) = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Format::Json);
    };
    // Each type's weight from its most specific range: its own, else
    // `application/*`, else `*/*`; a range's weight is 0 to 1 (1 if absent).
    let mut weights: [[Option<f32>; 3]; 2] = [[None; 3]; 2];
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
            .find(|q| (0.0..=1.0).contains(q))
            .unwrap_or(1.0);
        let (types, specificity): (&[usize], usize) = match media.as_str() {
            "application/json" => (&[0], 0),
            "application/pdf" => (&[1], 0),
            "application/*" => (&[0, 1], 1),
            "*/*" => (&[0, 1], 2),
            _ => (&[], 0),
        };
        for &t in types {
            if let Some(slot) = weights.get_mut(t).and_then(|w| w.get_mut(specificity)) {
                *slot = Some(slot.map_or(q, |held: f32| held.max(q)));
            }
        }
    }
    let weight = |t: [Option<f32>; 3]| t.into_iter().flatten().next().unwrap_or(0.0);
    let [json, pdf] = weights.map(weight);
    match (json > 0.0, pdf > 0.0) {
        (false, false) => Err(ApiError::NotAcceptable("application/json or application/pdf")),
        _ if pdf > json => Ok(Format::Pdf),
        _ => Ok(Format::Json),
    }
}

/// A patient's superbill for the dates of service `from` to `to`: the
/// clinic (name, address, phone, tax id, NPI, place of service), the
/// patient (name, date of birth, address), the rendering clinicians, each
/// date of service with its codes, units, modifiers, charges and
/// diagnosis pointers, the diagnoses (ICD-10-CM), the payments received in
/// the period, the totals and the balance, and the provider's attestation.
/// As JSON, or as a PDF to print and sign with `Accept: application/pdf`.
/// Voided charges and payments are left off. A patient token fetches its
/// own.
///
/// **Roles:** admin, clinician, scheduler, patient (its own).
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "The patient's id"),
        SuperbillQuery),
    responses(
        (status = 200, description = "The superbill", content(
            (Superbill = "application/json"),
            (PdfDocument = "application/pdf"),
        )),
        CommonErrors, NotFound, NotAcceptable, SuperbillConflict, ValidationFailed))]
#[get("/patients/{id}/superbill")]
pub async fn get_superbill(
    ctx: Ctx<StaffAndPatient>,
    req: HttpRequest,
    id: Path<Id>,
    query: Query<SuperbillQuery>,
) -> Answer {
    let Query(q) = query;
    dates_in_order(q.from, q.to)?;
    let wanted = negotiate(&req)?;
    let today = ctx.today();
    let (from, to) = (q.from.map(CalendarDate::get), q.to.map(CalendarDate::get));
    // `to` is today when not given: a `from` after it is as out of order.
    if to.is_none() && from.is_some_and(|from| from > today) {
        return Err(FieldError::refusal("from", "must not be after `to`, today by default").into());
    }
    let facts = patients_own(&ctx, id.into_inner().into_string(), move |conn, patient_id| {
        store::bill_facts(conn, patient_id, from, to, today)
    })
    .await?;
    let bill = billing::superbill(facts);
    match wanted {
        Format::Json => Ok(HttpResponse::Ok().insert_header((header::VARY, "Accept")).json(bill)),
        Format::Pdf => {
            // No name in the file name: it travels in headers and logs.
            let name = format!("attachment; filename=\"superbill-{}-{}.pdf\"", bill.from, bill.to);
            // Drawing is CPU work: off the async worker, like the database's.
            let pdf = actix_web::web::block(move || superbill_pdf::render(&bill))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .map_err(ApiError::Internal)?;
            Ok(HttpResponse::Ok()
                .content_type("application/pdf")
                .insert_header((header::VARY, "Accept"))
                .insert_header((header::CONTENT_DISPOSITION, name))
                .body(pdf))
        }
    }
}
