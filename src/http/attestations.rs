//! `/v1/patients/{id}/treatment-attestations`: that a mental health patient
//! continues ongoing treatment; the latest counts.

use actix_web::web::Path;
use actix_web::{get, post};

use crate::domain::intake::{self, Attestation, Kept};
use crate::domain::values::Id;
use crate::store::intake as store;

use super::auth::{Ctx, Staff};
use super::extract::{Json, Query};
use super::openapi::{BodyErrors, CommonErrors, NotFound, ValidationFailed};
use super::pagination::{Page, PageQuery};
use super::records::{self, Recorded};
use super::Answer;

/// Record that a mental health patient continues ongoing treatment.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "intake", params(("id" = String, Path, description = "The patient's id")),
    request_body = Attestation,
    responses(
        (status = 201, description = "Recorded", body = Recorded<Attestation>,
            headers(("location" = String, description = "The patient's attestations"))),
        CommonErrors, BodyErrors, NotFound, ValidationFailed))]
#[post("/patients/{id}/treatment-attestations")]
pub async fn create_treatment_attestation(
    ctx: Ctx<Staff>,
    id: Path<Id>,
    body: Json<Attestation>,
) -> Answer {
    let record = intake::attest(body.0, ctx.today())?;
    let at =
        |k: &Kept<Attestation>| format!("/v1/patients/{}/treatment-attestations", k.patient_id);
    records::create(&ctx, id, record, store::insert_attestation, Recorded::new, at).await
}

/// A patient's attestations of ongoing treatment (staff).
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "intake",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses(
        (status = 200, description = "A page of attestations", body = Page<Recorded<Attestation>>),
        CommonErrors, NotFound, ValidationFailed))]
#[get("/patients/{id}/treatment-attestations")]
pub async fn list_treatment_attestations(
    ctx: Ctx<Staff>,
    id: Path<Id>,
    query: Query<PageQuery>,
) -> Answer {
    records::list(&ctx, (id, query), store::list_attestations).await
}
