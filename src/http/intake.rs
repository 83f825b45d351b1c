//! Intake: referrals, ongoing-treatment attestations, contraindication
//! screenings, prescriber consults, and the readiness checklist.

use actix_web::http::header;
use actix_web::{get, post, web, HttpResponse};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::access::{CLINICAL, STAFF, STAFF_AND_INTEGRATION, STAFF_AND_PATIENT};
use crate::domain::readiness::{readiness, Readiness};
use crate::domain::referral::{effective_status, Provider, ReferralKind, ReferralStatus};
use crate::domain::screening::{self, Criteria, Outcome, CRITERIA};
use crate::domain::{check_text, FieldError, Refusal};
use crate::store::intake::{
    self as store, NewReferral, ProviderRecord, Referral, Screening, Verdict,
};
use crate::store::{DbConnection, StoreError};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{dates, Id, Json, Query};
use super::openapi::{
    Forbidden, MalformedRequest, NotFound, PayloadTooLarge, ServerErrors, TransitionConflict,
    Unauthorized, UnsupportedMediaType, ValidationFailed,
};
use super::pagination::{Page, PageQuery, PageRequest};
use super::AppState;

const MAX_REFERENCE: usize = 500;
const MAX_REASON: usize = 500;
const MAX_PLAN: usize = 2000;
const MAX_MEDICATIONS: usize = 100;
const MAX_MEDICATION_NAME: usize = 200;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_referral)
        .service(list_referrals)
        .service(get_referral)
        .service(verify_referral)
        .service(reject_referral)
        .service(create_treatment_attestation)
        .service(list_treatment_attestations)
        .service(create_screening)
        .service(list_screenings)
        .service(get_screening)
        .service(create_prescriber_consult)
        .service(list_prescriber_consults)
        .service(get_readiness);
}

fn not_after_today(field: &str, date: NaiveDate, today: NaiveDate) -> Option<FieldError> {
    (date > today).then(|| FieldError::new(field, "must not be in the future"))
}

/// A store function reading one page of a patient's records: (patient id,
/// after id, how many).
type LoadPage<R> = fn(&mut DbConnection, &str, Option<&str>, i64) -> Result<Vec<R>, StoreError>;

/// One page of a patient's records of some kind; 404 if there is no such patient.
async fn patient_page<R: Send + 'static, T: Serialize>(
    state: &web::Data<AppState>,
    patient_id: Id,
    query: PageQuery,
    load: LoadPage<R>,
    id_of: fn(&R) -> &str,
    show: impl Fn(R) -> T,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor)?;
    let (patient_id, after, fetch) = (patient_id.into_string(), page.after.clone(), page.fetch());
    let rows = state
        .db(move |conn| load(conn, &patient_id, after.as_deref(), fetch))
        .await
        .map_err(|e| e.naming("patient"))?;
    Ok(HttpResponse::Ok().json(page.page(rows, id_of, show)))
}

fn created<T: Serialize>(location: String, body: T) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(body)
}

// ---- referrals --------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "mental_health_provider",
    "provider": {"name": "Dr. Jane Doe", "practice": "Riverside Psychiatry", "phone": "+1 555 010 3000", "npi": "1234567893"},
    "received_on": "2026-11-20",
    "document_reference": "ehr://documents/8841"
}))]
pub struct CreateReferral {
    pub kind: ReferralKind,
    pub provider: Provider,
    /// When the letter arrived; not in the future.
    #[serde(deserialize_with = "dates::required")]
    #[schema(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub received_on: NaiveDate,
    /// Where the letter is kept (a document id or URL).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub document_reference: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Letter is unsigned"}))]
pub struct RejectReferral {
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}

/// A referral letter. `status` is `expired` once the letter is older than
/// the referral window, whatever it was.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac600-1b2c-7d00-8e11-0123456789ab", "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b",
    "kind": "mental_health_provider",
    "provider": {"name": "Dr. Jane Doe", "practice": "Riverside Psychiatry", "phone": "+1 555 010 3000", "fax": null, "email": null, "npi": "1234567893"},
    "received_on": "2026-11-20", "expires_on": "2027-11-20", "document_reference": "ehr://documents/8841",
    "status": "verified", "reject_reason": null, "decided_by": "clinician:dr-lee",
    "decided_at": "2026-11-21T09:30:00-05:00", "created_at": "2026-11-20T16:02:00-05:00", "updated_at": "2026-11-21T09:30:00-05:00"
}))]
pub struct ReferralResponse {
    pub id: String,
    pub patient_id: String,
    pub kind: ReferralKind,
    pub provider: Provider,
    pub received_on: NaiveDate,
    /// The last day the referral counts.
    pub expires_on: NaiveDate,
    pub document_reference: String,
    pub status: ReferralStatus,
    pub reject_reason: Option<String>,
    /// `role:subject` of the clinician who verified or rejected it.
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ReferralResponse {
    fn new(state: &AppState, r: Referral) -> Self {
        let days = state.policy.referral_valid_days;
        Self {
            status: effective_status(r.status, r.received_on, state.today(), days),
            expires_on: r
                .received_on
                .checked_add_days(Days::new(u64::from(days)))
                .unwrap_or(NaiveDate::MAX),
            id: r.id,
            patient_id: r.patient_id,
            kind: r.kind,
            provider: r.provider,
            received_on: r.received_on,
            document_reference: r.document_reference,
            reject_reason: r.reject_reason,
            decided_by: r.decided_by,
            decided_at: r.decided_at.map(|t| state.local(t)),
            created_at: state.local(r.created_at),
            updated_at: state.local(r.updated_at),
        }
    }
}

/// Record a referral letter for a patient.
#[utoipa::path(
    tag = "intake",
    operation_id = "create_referral",
    params(("id" = String, Path, description = "The patient's id")),
    request_body = CreateReferral,
    responses(
        (status = 201, description = "Recorded as `received`", body = ReferralResponse,
            headers(("location" = String, description = "The referral's URL"))),
        MalformedRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
        ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/patients/{id}/referrals")]
pub async fn create_referral(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<CreateReferral>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF_AND_INTEGRATION)?;
    let Json(body) = body;
    let mut errors = body.provider.check("provider");
    errors.extend(not_after_today(
        "received_on",
        body.received_on,
        state.today(),
    ));
    errors.extend(check_text(
        "document_reference",
        &body.document_reference,
        MAX_REFERENCE,
    ));
    ApiError::check(errors)?;
    let referral = NewReferral {
        kind: body.kind,
        provider: body.provider.normalized(),
        received_on: body.received_on,
        document_reference: body.document_reference.trim().to_owned(),
    };
    let (patient_id, by, now) = (id.into_inner().into_string(), caller.label(), state.now());
    let stored = state
        .db(move |conn| store::insert_referral(conn, &patient_id, &referral, &by, now))
        .await
        .map_err(|e| e.naming("patient"))?;
    log::info!(
        "referral {} recorded for patient {}",
        stored.id,
        stored.patient_id
    );
    Ok(created(
        format!("/v1/referrals/{}", stored.id),
        ReferralResponse::new(&state, stored),
    ))
}

/// A patient's referrals (staff).
#[utoipa::path(
    tag = "intake",
    operation_id = "list_referrals",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses(
        (status = 200, description = "A page of referrals", body = Page<ReferralResponse>),
        Unauthorized, Forbidden, NotFound, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/patients/{id}/referrals")]
pub async fn list_referrals(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    patient_page(
        &state,
        id.into_inner(),
        query.0,
        store::list_referrals,
        |r| r.id.as_str(),
        |r| ReferralResponse::new(&state, r),
    )
    .await
}

/// One referral.
#[utoipa::path(
    tag = "intake",
    operation_id = "get_referral",
    params(("id" = String, Path, description = "The referral's id")),
    responses(
        (status = 200, description = "The referral", body = ReferralResponse),
        Unauthorized, Forbidden, NotFound, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/referrals/{id}")]
pub async fn get_referral(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    let id = id.into_inner().into_string();
    let referral = state
        .db(move |conn| store::find_referral(conn, &id))
        .await
        .map_err(|e| e.naming("referral"))?;
    Ok(HttpResponse::Ok().json(ReferralResponse::new(&state, referral)))
}

async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    id: Id,
    verdict: Verdict,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLINICAL)?;
    let (id, by, now, today, days) = (
        id.into_string(),
        caller.label(),
        state.now(),
        state.today(),
        state.policy.referral_valid_days,
    );
    let action = match verdict {
        Verdict::Verify => "verify",
        Verdict::Reject { .. } => "reject",
    };
    let decided = state
        .db(move |conn| {
            store::decide_referral(conn, &id, &verdict, &by, now, |current| {
                let status = effective_status(current.status, current.received_on, today, days);
                if status == ReferralStatus::Received {
                    Ok(())
                } else {
                    Err(Refusal::InvalidTransition {
                        from: status.as_str(),
                        action,
                        why: Some(format!(
                            "only a received referral can be decided; this one is {}",
                            status.as_str()
                        )),
                    })
                }
            })
        })
        .await
        .map_err(|e| e.naming("referral"))?;
    log::info!("referral {} {}", decided.id, decided.status.as_str());
    Ok(HttpResponse::Ok().json(ReferralResponse::new(&state, decided)))
}

/// Verify a received referral (clinicians).
#[utoipa::path(
    tag = "intake",
    operation_id = "verify_referral",
    params(("id" = String, Path, description = "The referral's id")),
    responses(
        (status = 200, description = "Verified", body = ReferralResponse),
        Unauthorized, Forbidden, NotFound, TransitionConflict, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/referrals/{id}/verify")]
pub async fn verify_referral(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, ApiError> {
    decide(state, caller, id.into_inner(), Verdict::Verify).await
}

/// Reject a received referral with a reason (clinicians).
#[utoipa::path(
    tag = "intake",
    operation_id = "reject_referral",
    params(("id" = String, Path, description = "The referral's id")),
    request_body = RejectReferral,
    responses(
        (status = 200, description = "Rejected", body = ReferralResponse),
        MalformedRequest, Unauthorized, Forbidden, NotFound, TransitionConflict, PayloadTooLarge,
        UnsupportedMediaType, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/referrals/{id}/reject")]
pub async fn reject_referral(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<RejectReferral>,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLINICAL)?;
    ApiError::check(
        check_text("reason", &body.0.reason, MAX_REASON)
            .into_iter()
            .collect(),
    )?;
    let reason = body.0.reason.trim().to_owned();
    decide(state, caller, id.into_inner(), Verdict::Reject { reason }).await
}

// ---- attestations and consults -------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "provider": {"name": "Dr. Jane Doe", "practice": "Riverside Psychiatry", "email": "jdoe@riverside.example"},
    "attested_on": "2026-11-20"
}))]
pub struct CreateAttestation {
    /// The treating mental health provider.
    pub provider: Provider,
    /// When the provider attested ongoing treatment; not in the future.
    #[serde(deserialize_with = "dates::required")]
    #[schema(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub attested_on: NaiveDate,
}

/// An attestation that the patient continues mental health treatment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttestationResponse {
    pub id: String,
    pub patient_id: String,
    pub provider: Provider,
    pub attested_on: NaiveDate,
    pub recorded_by: String,
    pub created_at: String,
}

impl AttestationResponse {
    fn new(state: &AppState, r: ProviderRecord) -> Self {
        Self {
            id: r.id,
            patient_id: r.patient_id,
            provider: r.provider,
            attested_on: r.on,
            recorded_by: r.recorded_by,
            created_at: state.local(r.created_at),
        }
    }
}

/// Record that a mental health patient continues ongoing treatment; the latest counts.
#[utoipa::path(
    tag = "intake",
    operation_id = "create_treatment_attestation",
    params(("id" = String, Path, description = "The patient's id")),
    request_body = CreateAttestation,
    responses(
        (status = 201, description = "Recorded", body = AttestationResponse,
            headers(("location" = String, description = "The patient's attestations"))),
        MalformedRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
        ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/patients/{id}/treatment-attestations")]
pub async fn create_treatment_attestation(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<CreateAttestation>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    let Json(body) = body;
    let mut errors = body.provider.check("provider");
    errors.extend(not_after_today(
        "attested_on",
        body.attested_on,
        state.today(),
    ));
    ApiError::check(errors)?;
    let provider = body.provider.normalized();
    let (patient_id, by, now) = (id.into_inner().into_string(), caller.label(), state.now());
    let stored = state
        .db(move |conn| {
            store::insert_attestation(conn, &patient_id, &provider, body.attested_on, &by, now)
        })
        .await
        .map_err(|e| e.naming("patient"))?;
    log::info!(
        "attestation {} recorded for patient {}",
        stored.id,
        stored.patient_id
    );
    let location = format!("/v1/patients/{}/treatment-attestations", stored.patient_id);
    Ok(created(location, AttestationResponse::new(&state, stored)))
}

/// A patient's attestations of ongoing treatment.
#[utoipa::path(
    tag = "intake",
    operation_id = "list_treatment_attestations",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses(
        (status = 200, description = "A page of attestations", body = Page<AttestationResponse>),
        Unauthorized, Forbidden, NotFound, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/patients/{id}/treatment-attestations")]
pub async fn list_treatment_attestations(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    patient_page(
        &state,
        id.into_inner(),
        query.0,
        store::list_attestations,
        |r| r.id.as_str(),
        |r| AttestationResponse::new(&state, r),
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "prescriber": {"name": "Dr. Sam Park", "practice": "Eastside Neurology", "phone": "+1 555 010 4400"},
    "consulted_on": "2026-11-25",
    "agreed_plan": "Hold the evening lamotrigine dose on infusion days"
}))]
pub struct CreateConsult {
    /// Who prescribes the patient's lamotrigine.
    pub prescriber: Provider,
    /// Not in the future.
    #[serde(deserialize_with = "dates::required")]
    #[schema(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub consulted_on: NaiveDate,
    /// The dosing adjustment agreed.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub agreed_plan: String,
}

/// A consult with the Lamictal prescriber.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsultResponse {
    pub id: String,
    pub patient_id: String,
    pub prescriber: Provider,
    pub consulted_on: NaiveDate,
    pub agreed_plan: String,
    pub recorded_by: String,
    pub created_at: String,
}

impl ConsultResponse {
    fn new(state: &AppState, r: ProviderRecord) -> Self {
        Self {
            id: r.id,
            patient_id: r.patient_id,
            prescriber: r.provider,
            consulted_on: r.on,
            agreed_plan: r.plan.unwrap_or_default(),
            recorded_by: r.recorded_by,
            created_at: state.local(r.created_at),
        }
    }
}

/// Record that the Lamictal prescriber was consulted and a plan agreed; closes
/// the `lamotrigine_prescriber_consult` item (clinicians).
#[utoipa::path(
    tag = "intake",
    operation_id = "create_prescriber_consult",
    params(("id" = String, Path, description = "The patient's id")),
    request_body = CreateConsult,
    responses(
        (status = 201, description = "Recorded", body = ConsultResponse,
            headers(("location" = String, description = "The patient's consults"))),
        MalformedRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
        ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/patients/{id}/prescriber-consults")]
pub async fn create_prescriber_consult(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<CreateConsult>,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLINICAL)?;
    let Json(body) = body;
    let mut errors = body.prescriber.check("prescriber");
    errors.extend(not_after_today(
        "consulted_on",
        body.consulted_on,
        state.today(),
    ));
    errors.extend(check_text("agreed_plan", &body.agreed_plan, MAX_PLAN));
    ApiError::check(errors)?;
    let prescriber = body.prescriber.normalized();
    let plan = body.agreed_plan.trim().to_owned();
    let (patient_id, by, now) = (id.into_inner().into_string(), caller.label(), state.now());
    let stored = state
        .db(move |conn| {
            store::insert_consult(
                conn,
                &patient_id,
                &prescriber,
                body.consulted_on,
                &plan,
                &by,
                now,
            )
        })
        .await
        .map_err(|e| e.naming("patient"))?;
    log::info!(
        "prescriber consult {} recorded for patient {}",
        stored.id,
        stored.patient_id
    );
    let location = format!("/v1/patients/{}/prescriber-consults", stored.patient_id);
    Ok(created(location, ConsultResponse::new(&state, stored)))
}

/// A patient's prescriber consults (clinicians).
#[utoipa::path(
    tag = "intake",
    operation_id = "list_prescriber_consults",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses(
        (status = 200, description = "A page of consults", body = Page<ConsultResponse>),
        Unauthorized, Forbidden, NotFound, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/patients/{id}/prescriber-consults")]
pub async fn list_prescriber_consults(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLINICAL)?;
    patient_page(
        &state,
        id.into_inner(),
        query.0,
        store::list_consults,
        |r| r.id.as_str(),
        |r| ConsultResponse::new(&state, r),
    )
    .await
}

// ---- screenings -------------------------------------------------------------------

/// One medication the patient takes.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Medication {
    /// As written on the prescription.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
}

/// A screening: all nine criteria answered true or false, and the current
/// medications. Immutable once recorded; a correction is a new screening.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "criteria": {
        "active_substance_abuse": false, "history_of_psychosis": false,
        "undiagnosed_mental_health_condition": false, "increased_intracranial_pressure": false,
        "uncontrolled_hypertension": false, "unstable_cardiovascular_disease": false,
        "previous_negative_ketamine_response": false, "ketamine_abuse_disorder": false, "pregnant": false
    },
    "medications": [{"name": "Sertraline 50 mg"}, {"name": "Lamictal XR 100 mg"}]
}))]
pub struct CreateScreening {
    /// Every criterion, each `true` or `false`: a missing one is an error, never a default.
    #[schema(value_type = Criteria)]
    pub criteria: serde_json::Value,
    /// May be empty; at most 100.
    #[schema(max_items = 100)]
    pub medications: Vec<Medication>,
}

/// A recorded screening and what it decided.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScreeningResponse {
    pub id: String,
    pub patient_id: String,
    pub criteria: Criteria,
    pub medications: Vec<Medication>,
    pub outcome: Outcome,
    /// The criteria answered true.
    pub reasons: Vec<String>,
    /// `lamotrigine_prescriber_consult` when lamotrigine is among the medications.
    pub flags: Vec<String>,
    /// Clinic-local date of the screening; it counts for `SCREENING_VALID_DAYS`.
    pub screened_on: NaiveDate,
    pub screened_by: String,
    pub created_at: String,
}

impl ScreeningResponse {
    fn new(state: &AppState, s: Screening) -> Self {
        Self {
            reasons: s
                .criteria
                .reasons()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            flags: if s.lamotrigine {
                vec![screening::LAMOTRIGINE_FLAG.to_owned()]
            } else {
                Vec::new()
            },
            id: s.id,
            patient_id: s.patient_id,
            criteria: s.criteria,
            medications: s
                .medications
                .into_iter()
                .map(|name| Medication { name })
                .collect(),
            outcome: s.outcome,
            screened_on: s.screened_on,
            screened_by: s.screened_by,
            created_at: state.local(s.created_at),
        }
    }
}

fn screening_example(
    outcome: &str,
    reasons: &[&str],
    flags: &[&str],
    medications: &[&str],
) -> serde_json::Value {
    let criteria: serde_json::Map<String, serde_json::Value> = CRITERIA
        .iter()
        .map(|c| (c.to_string(), serde_json::Value::Bool(reasons.contains(c))))
        .collect();
    serde_json::json!({
        "id": "019ac610-5e6f-7a00-8b22-0123456789ab", "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b",
        "criteria": criteria,
        "medications": medications.iter().map(|m| serde_json::json!({"name": m})).collect::<Vec<_>>(),
        "outcome": outcome, "reasons": reasons, "flags": flags,
        "screened_on": "2026-11-27", "screened_by": "clinician:dr-lee", "created_at": "2026-11-27T10:15:00-05:00"
    })
}

/// Record a contraindication screening (clinicians).
#[utoipa::path(
    tag = "intake",
    operation_id = "create_screening",
    params(("id" = String, Path, description = "The patient's id")),
    request_body = CreateScreening,
    responses(
        (status = 201, description = "Recorded, with its outcome", body = ScreeningResponse,
            headers(("location" = String, description = "The screening's URL")),
            examples(
                ("eligible" = (summary = "Eligible, on lamotrigine: a prescriber consult is flagged",
                    value = json!(screening_example("eligible", &[], &["lamotrigine_prescriber_consult"], &["Sertraline 50 mg", "Lamictal XR 100 mg"])))),
                ("ineligible" = (summary = "Ineligible: every true criterion is named",
                    value = json!(screening_example("ineligible", &["uncontrolled_hypertension", "pregnant"], &[], &["Lisinopril 10 mg"])))),
            )),
        MalformedRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
        ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/patients/{id}/screenings")]
pub async fn create_screening(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<CreateScreening>,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLINICAL)?;
    let Json(body) = body;
    let mut errors = Vec::new();
    let criteria = Criteria::parse("criteria", &body.criteria).unwrap_or_else(|e| {
        errors.extend(e);
        Criteria::default()
    });
    if body.medications.len() > MAX_MEDICATIONS {
        errors.push(FieldError::new(
            "medications",
            format!("at most {MAX_MEDICATIONS} medications"),
        ));
    }
    for (i, m) in body.medications.iter().enumerate() {
        errors.extend(check_text(
            &format!("medications[{i}].name"),
            &m.name,
            MAX_MEDICATION_NAME,
        ));
    }
    ApiError::check(errors)?;
    let medications: Vec<String> = body
        .medications
        .into_iter()
        .map(|m| m.name.trim().to_owned())
        .collect();
    let lamotrigine = !screening::flags(&medications).is_empty();
    let (patient_id, by, today, now) = (
        id.into_inner().into_string(),
        caller.label(),
        state.today(),
        state.now(),
    );
    let stored = state
        .db(move |conn| {
            store::insert_screening(
                conn,
                &patient_id,
                &store::NewScreening {
                    criteria,
                    medications,
                    lamotrigine,
                    screened_on: today,
                },
                &by,
                now,
            )
        })
        .await
        .map_err(|e| e.naming("patient"))?;
    log::info!(
        "screening {} recorded for patient {}: {}",
        stored.id,
        stored.patient_id,
        stored.outcome.as_str()
    );
    Ok(created(
        format!("/v1/screenings/{}", stored.id),
        ScreeningResponse::new(&state, stored),
    ))
}

/// A patient's screenings, oldest first (clinicians).
#[utoipa::path(
    tag = "intake",
    operation_id = "list_screenings",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses(
        (status = 200, description = "A page of screenings", body = Page<ScreeningResponse>),
        Unauthorized, Forbidden, NotFound, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/patients/{id}/screenings")]
pub async fn list_screenings(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLINICAL)?;
    patient_page(
        &state,
        id.into_inner(),
        query.0,
        store::list_screenings,
        |s| s.id.as_str(),
        |s| ScreeningResponse::new(&state, s),
    )
    .await
}

/// One screening (clinicians).
#[utoipa::path(
    tag = "intake",
    operation_id = "get_screening",
    params(("id" = String, Path, description = "The screening's id")),
    responses(
        (status = 200, description = "The screening", body = ScreeningResponse),
        Unauthorized, Forbidden, NotFound, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/screenings/{id}")]
pub async fn get_screening(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLINICAL)?;
    let id = id.into_inner().into_string();
    let found = state
        .db(move |conn| store::find_screening(conn, &id))
        .await
        .map_err(|e| e.naming("screening"))?;
    Ok(HttpResponse::Ok().json(ScreeningResponse::new(&state, found)))
}

// ---- readiness ----------------------------------------------------------------------

/// The readiness checklist: what is done and what still stops booking. A
/// patient token reads its own.
#[utoipa::path(
    tag = "intake",
    operation_id = "get_readiness",
    params(("id" = String, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The checklist", body = Readiness),
        Unauthorized, Forbidden, NotFound, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/patients/{id}/readiness")]
pub async fn get_readiness(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner().into_string();
    caller
        .require(STAFF_AND_PATIENT)?
        .require_own_patient(&id)?;
    let mut record = state
        .db(move |conn| store::intake_record(conn, &id))
        .await
        .map_err(|e| e.naming("patient"))?;
    // Why a screening was ineligible is for clinicians.
    if !CLINICAL.contains(&caller.role) {
        record = record.without_reasons();
    }
    Ok(HttpResponse::Ok().json(readiness(&record, state.today(), state.policy)))
}
