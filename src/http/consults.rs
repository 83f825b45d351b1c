//! `/v1/patients/{id}/prescriber-consults`: consults with the Lamictal
//! prescriber, which close the `lamotrigine_prescriber_consult` item.

use actix_web::web::Path;
use actix_web::{get, post};

use crate::domain::access::CLINICAL;
use crate::domain::intake::{self, Consult};
use crate::domain::values::Id;
use crate::store::intake as store;

use super::auth::Ctx;
use super::extract::{Json, Query};
use super::kept::{self, Recorded};
use super::openapi::{BodyErrors, CommonErrors, NotFound, ValidationFailed};
use super::pagination::{Page, PageQuery};
use super::Answer;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_prescriber_consult)
        .service(list_prescriber_consults);
}

/// Record that the Lamictal prescriber was consulted and a plan agreed; closes
/// the `lamotrigine_prescriber_consult` item (clinicians).
#[utoipa::path(tag = "intake", params(("id" = String, Path, description = "The patient's id")),
    request_body = Consult,
    responses(
        (status = 201, description = "Recorded", body = Recorded<Consult>,
            headers(("location" = String, description = "The patient's consults"))),
        CommonErrors, BodyErrors, NotFound, ValidationFailed))]
#[post("/patients/{id}/prescriber-consults")]
pub async fn create_prescriber_consult(ctx: Ctx, id: Path<Id>, body: Json<Consult>) -> Answer {
    ctx.require(CLINICAL)?;
    let (id, body) = (id.into_inner(), body.0);
    kept::create(
        ctx,
        id,
        body,
        intake::consult,
        store::insert_consult,
        "prescriber-consults",
    )
    .await
}

/// A patient's prescriber consults (clinicians).
#[utoipa::path(tag = "intake",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses((status = 200, description = "A page of consults", body = Page<Recorded<Consult>>),
        CommonErrors, NotFound, ValidationFailed))]
#[get("/patients/{id}/prescriber-consults")]
pub async fn list_prescriber_consults(ctx: Ctx, id: Path<Id>, query: Query<PageQuery>) -> Answer {
    ctx.require(CLINICAL)?;
    kept::list(&ctx, id.into_inner(), query.0, store::list_consults).await
}
