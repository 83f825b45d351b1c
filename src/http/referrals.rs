//! `/v1/patients/{id}/referrals` and `/v1/referrals`: referral letters,
//! recorded as they arrive and verified or rejected by clinicians.

use actix_web::web::Path;
use actix_web::{get, post};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::referral::{
    self, effective_status, expires_on, NewReferral, Referral, ReferralStatus, Verdict,
};
use crate::domain::values::{Id, Reason};
use crate::store::intake as store;

use super::auth::{Clinical, Ctx, Reply, Staff, StaffAndIntegration};
use super::extract::{Json, Query};
use super::openapi::{BodyErrors, CommonErrors, NotFound, TransitionConflict, ValidationFailed};
use super::pagination::{patient_page, Page, PageQuery};
use super::records;
use super::{ok, Answer, AppState};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Letter is unsigned"}))]
pub struct RejectReferral {
    pub reason: Reason,
}

/// A referral letter. `status` is `expired` once the letter is older than
/// the referral window, whatever it was.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac600-1b2c-7d00-8e11-0123456789ab", "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b",
    "kind": "mental_health_provider",
    "provider": {"name": "Dr. Jane Doe", "practice": "Riverside Psychiatry", "phone": "+1 555 010 3000", "fax": null, "email": null, "npi": "1234567893"},
    "received_on": "2026-11-20", "document_reference": "ehr://documents/8841",
    "reject_reason": null, "decided_by": "clinician:dr-lee", "status": "verified", "expires_on": "2027-11-20",
    "decided_at": "2026-11-21T09:30:00-05:00", "created_at": "2026-11-20T16:02:00-05:00", "updated_at": "2026-11-21T09:30:00-05:00"
}))]
pub struct ReferralResponse {
    #[serde(flatten)]
    pub referral: Referral,
    pub status: ReferralStatus,
    /// The last day the referral counts.
    pub expires_on: NaiveDate,
    pub decided_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ReferralResponse {
    fn new(state: &AppState, r: Referral) -> Self {
        let days = state.policy.referral_valid_days;
        Self {
            status: effective_status(r.status, r.received_on, state.today(), days),
            expires_on: expires_on(r.received_on, days),
            decided_at: r.decided_at.map(|t| state.local(t)),
            created_at: state.local(r.created_at),
            updated_at: state.local(r.updated_at),
            referral: r,
        }
    }
}

/// Record a referral letter for a patient.
///
/// **Roles:** admin, clinician, scheduler, integration.
#[utoipa::path(tag = "intake", params(("id" = String, Path, description = "The patient's id")),
    request_body = NewReferral,
    responses(
        (status = 201, description = "Recorded as `received`", body = ReferralResponse,
            headers(("location" = String, description = "The referral's URL"))),
        CommonErrors, BodyErrors, NotFound, ValidationFailed))]
#[post("/patients/{id}/referrals")]
pub async fn create_referral(
    ctx: Ctx<StaffAndIntegration>,
    id: Path<Id>,
    body: Json<NewReferral>,
) -> Answer {
    let letter = referral::receive(body.0, ctx.today())?;
    let at = |r: &Referral| format!("/v1/referrals/{}", r.id);
    records::create(&ctx, id, letter, store::insert_referral, ReferralResponse::new, at).await
}

/// A patient's referrals (staff).
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "intake",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses((status = 200, description = "A page of referrals", body = Page<ReferralResponse>),
        CommonErrors, NotFound, ValidationFailed))]
#[get("/patients/{id}/referrals")]
pub async fn list_referrals(ctx: Ctx<Staff>, id: Path<Id>, query: Query<PageQuery>) -> Answer {
    patient_page(&ctx, (id, query), store::list_referrals, ReferralResponse::new).await
}

/// One referral.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "intake", params(("id" = String, Path, description = "The referral's id")),
    responses((status = 200, description = "The referral", body = ReferralResponse), CommonErrors,
        NotFound))]
#[get("/referrals/{id}")]
pub async fn get_referral(ctx: Ctx<Staff>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    let referral = ctx.read(move |conn| store::find_referral(conn, &id)).await?;
    ok(ReferralResponse::new(&ctx, referral))
}

/// Asks the domain to decide `verdict` on the referral, held until commit,
/// and writes the decision.
async fn decide(ctx: Ctx<Clinical>, id: Id, verdict: Verdict) -> Answer {
    let (id, by, now, today, days) = (
        id.into_string(),
        ctx.caller.label(),
        ctx.now(),
        ctx.today(),
        ctx.policy.referral_valid_days,
    );
    let (precondition, state) = (ctx.precondition(), ctx.state());
    ctx.write(
        move |tx| {
            let current = store::hold_referral(tx, &id)?;
            precondition.check(|| ReferralResponse::new(&state, current.clone()))?;
            let decision = referral::decide(&current, verdict, today, days)?;
            store::record_verdict(tx, &id, &decision, &by, now)
        },
        |state, decided| Reply::ok(&ReferralResponse::new(state, decided)),
    )
    .await
}

/// Verify a received referral (clinicians).
///
/// **Roles:** admin, clinician.
#[utoipa::path(tag = "intake", params(("id" = String, Path, description = "The referral's id")),
    responses((status = 200, description = "Verified", body = ReferralResponse), CommonErrors,
        NotFound, TransitionConflict))]
#[post("/referrals/{id}/verify")]
pub async fn verify_referral(ctx: Ctx<Clinical>, id: Path<Id>) -> Answer {
    decide(ctx, id.into_inner(), Verdict::Verify).await
}

/// Reject a received referral with a reason (clinicians).
///
/// **Roles:** admin, clinician.
#[utoipa::path(tag = "intake", params(("id" = String, Path, description = "The referral's id")),
    request_body = RejectReferral,
    responses((status = 200, description = "Rejected", body = ReferralResponse), CommonErrors,
        BodyErrors, NotFound, TransitionConflict, ValidationFailed))]
#[post("/referrals/{id}/reject")]
pub async fn reject_referral(
    ctx: Ctx<Clinical>,
    id: Path<Id>,
    body: Json<RejectReferral>,
) -> Answer {
    let reason = body.0.reason.into_string();
    decide(ctx, id.into_inner(), Verdict::Reject { reason }).await
}
