//! `/v1/patients/{id}/readiness`: the checklist of what stops a patient's
//! infusions from being booked.

use actix_web::get;
use actix_web::web::Path;

use crate::domain::readiness::{readiness, Readiness};
use crate::domain::values::Id;
use crate::store::{intake as store, StoreError};

use super::audit::PatientId;
use super::auth::{Ctx, StaffAndPatient};
use super::openapi::{CommonErrors, NotFound};
use super::{ok, Answer};

/// The readiness checklist: what is done and what still stops booking. A
/// patient token reads its own. Why a screening found the patient
/// ineligible is shown to clinicians and admins only.
///
/// **Roles:** admin, clinician, scheduler, patient (its own).
#[utoipa::path(tag = "intake", params(("id" = String, Path, description = "The patient's id")),
    responses((status = 200, description = "The checklist", body = Readiness), CommonErrors,
        NotFound))]
#[get("/patients/{id}/readiness")]
pub async fn get_readiness(ctx: Ctx<StaffAndPatient>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    ctx.caller.require_own_patient(&id)?;
    ctx.saw(&PatientId(&id));
    let record = ctx
        .db(move |conn| store::intake_record(conn, &id)?.ok_or(StoreError::NotFound("patient")))
        .await?
        .seen_by(ctx.caller.role);
    ok(readiness(&record, ctx.today(), ctx.policy))
}
