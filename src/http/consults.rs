//! `/v1/patients/{id}/prescriber-consults`: consults with the Lamictal
//! prescriber, which close the `lamotrigine_prescriber_consult` item.

use actix_web::web::Path;
use actix_web::{get, post};

use crate::domain::intake::{self, Consult, Kept};
use crate::domain::values::Id;
use crate::store::intake as store;

use super::auth::{Clinical, Ctx};
use super::extract::{Json, Query};
use super::openapi::{BodyErrors, CommonErrors, NotFound, ValidationFailed};
use super::pagination::{Page, PageQuery};
use super::records::{self, Recorded};
use super::Answer;

/// Record that the Lamictal prescriber was consulted and a plan agreed; closes
/// the `lamotrigine_prescriber_consult` item (clinicians).
///
/// **Roles:** admin, clinician.
#[utoipa::path(tag = "intake", params(("id" = String, Path, description = "The patient's id")),
    request_body = Consult,
    responses(
        (status = 201, description = "Recorded", body = Recorded<Consult>,
            headers(("location" = String, description = "The patient's consults"))),
        CommonErrors, BodyErrors, NotFound, ValidationFailed))]
#[post("/patients/{id}/prescriber-consults")]
pub async fn create_prescriber_consult(
    ctx: Ctx<Clinical>,
    id: Path<Id>,
    body: Json<Consult>,
) -> Answer {
    let record = intake::consult(body.0, ctx.today())?;
    let at = |k: &Kept<Consult>| format!("/v1/patients/{}/prescriber-consults", k.patient_id);
    records::create(&ctx, id, record, store::insert_consult, Recorded::new, at).await
}

/// A patient's prescriber consults (clinicians).
///
/// **Roles:** admin, clinician.
#[utoipa::path(tag = "intake",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses((status = 200, description = "A page of consults", body = Page<Recorded<Consult>>),
        CommonErrors, NotFound, ValidationFailed))]
#[get("/patients/{id}/prescriber-consults")]
pub async fn list_prescriber_consults(
    ctx: Ctx<Clinical>,
    id: Path<Id>,
    query: Query<PageQuery>,
) -> Answer {
    records::list(&ctx, (id, query), store::list_consults).await
}
