//! `/v1/patients/{id}/screenings` and `/v1/screenings`: contraindication
//! screenings, immutable once recorded (a correction is a new screening),
//! for clinicians only.

use actix_web::web::Path;
use actix_web::{get, post};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::screening::{self, Screening, ScreeningRequest, CRITERIA};
use crate::domain::values::Id;
use crate::store::intake as store;

use super::auth::{Clinical, Ctx};
use super::extract::{Json, Query};
use super::openapi::{BodyErrors, CommonErrors, NotFound, ValidationFailed};
use super::pagination::{patient_page, Page, PageQuery};
use super::records;
use super::{ok, Answer, AppState};

/// A recorded screening and what it decided.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScreeningResponse {
    #[serde(flatten)]
    pub screening: Screening,
    /// The criteria answered true.
    pub reasons: Vec<String>,
    /// `lamotrigine_prescriber_consult` when lamotrigine is among the medications.
    pub flags: Vec<String>,
    /// RFC 3339 in the clinic's offset.
    pub created_at: String,
}

impl ScreeningResponse {
    fn new(state: &AppState, s: Screening) -> Self {
        Self {
            reasons: s.reasons(),
            flags: s.flags(),
            created_at: state.local(s.created_at),
            screening: s,
        }
    }
}

fn example(
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
        "outcome": outcome, "screened_on": "2026-11-27", "screened_by": "clinician:dr-lee",
        "reasons": reasons, "flags": flags, "created_at": "2026-11-27T10:15:00-05:00"
    })
}

/// Record a contraindication screening (clinicians).
///
/// **Roles:** admin, clinician.
#[utoipa::path(
    tag = "intake",
    params(("id" = String, Path, description = "The patient's id")),
    request_body = ScreeningRequest,
    responses(
        (status = 201, description = "Recorded, with its outcome", body = ScreeningResponse,
            headers(("location" = String, description = "The screening's URL")),
            examples(
                ("eligible" = (summary = "Eligible, on lamotrigine: a prescriber consult is flagged",
                    value = json!(example("eligible", &[], &["lamotrigine_prescriber_consult"], &["Sertraline 50 mg", "Lamictal XR 100 mg"])))),
                ("ineligible" = (summary = "Ineligible: every true criterion is named",
                    value = json!(example("ineligible", &["uncontrolled_hypertension", "pregnant"], &[], &["Lisinopril 10 mg"])))),
            )),
        CommonErrors, BodyErrors, NotFound, ValidationFailed,
    )
)]
#[post("/patients/{id}/screenings")]
pub async fn create_screening(
    ctx: Ctx<Clinical>,
    id: Path<Id>,
    body: Json<ScreeningRequest>,
) -> Answer {
    let screened = screening::screen(body.0, ctx.today())?;
    let at = |s: &Screening| format!("/v1/screenings/{}", s.id);
    records::create(&ctx, id, screened, store::insert_screening, ScreeningResponse::new, at).await
}

/// A patient's screenings, oldest first (clinicians).
///
/// **Roles:** admin, clinician.
#[utoipa::path(tag = "intake",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses((status = 200, description = "A page of screenings", body = Page<ScreeningResponse>),
        CommonErrors, NotFound, ValidationFailed))]
#[get("/patients/{id}/screenings")]
pub async fn list_screenings(ctx: Ctx<Clinical>, id: Path<Id>, query: Query<PageQuery>) -> Answer {
    patient_page(&ctx, (id, query), store::list_screenings, ScreeningResponse::new).await
}

/// One screening (clinicians).
///
/// **Roles:** admin, clinician.
#[utoipa::path(tag = "intake", params(("id" = String, Path, description = "The screening's id")),
    responses((status = 200, description = "The screening", body = ScreeningResponse),
        CommonErrors, NotFound))]
#[get("/screenings/{id}")]
pub async fn get_screening(ctx: Ctx<Clinical>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    let found = ctx.read(move |conn| store::find_screening(conn, &id)).await?;
    ok(ScreeningResponse::new(&ctx, found))
}
