//! Reading the audit trail back: `/v1/audit-events` for admins, and a
//! patient's access log, the accounting of who reached its record.

use actix_web::get;
use actix_web::web::Path;
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access::Role;
use crate::domain::audit::AuditEvent;
use crate::domain::values::{Id, Text};
use crate::store::audit::{self as store, Filter};

use super::audit::PatientId;
use super::auth::{AdminOnly, Admits, ClinicalAndPatient, Ctx};
use super::error::ApiError;
use super::extract::Query;
use super::openapi::{CommonErrors, NotFound, ValidationFailed};
use super::pagination::{Keyed, Page, PageQuery, PageRequest};
use super::{ok, Answer, AppState};

impl Keyed for AuditEvent {
    fn key(&self) -> &str {
        &self.id
    }
}

/// One audited request: who, when, which operation, with what answer, and
/// the patients and records it reached. Record and field names only, never
/// their values.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ad0a1-5c2e-7b00-8e44-0123456789ab",
    "occurred_at": "2026-12-02T10:04:11-05:00",
    "actor": "front-desk", "actor_role": "scheduler", "client_id": null,
    "operation": "book_appointment", "method": "POST", "path": "/v1/appointments", "status": 201,
    "patient_ids": ["019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b"],
    "records": ["appointment/019ac5c3-2a4b-7c00-9d11-0123456789ab"],
    "changed": [], "request_id": "019ad0a1-5c2e-7b00-8e44-0123456789aa", "source": "10.0.4.17"
}))]
pub struct AuditEventResponse {
    #[serde(flatten)]
    pub event: AuditEvent,
    /// RFC 3339 in the clinic's offset.
    pub occurred_at: String,
}

impl AuditEventResponse {
    /// The event as `viewer` may see it: a patient reading its own access
    /// log sees roles, not people, nor where they called from.
    fn new(state: &AppState, viewer: Role, mut event: AuditEvent) -> Self {
        if viewer == Role::Patient {
            event.actor = None;
            event.client_id = None;
            event.source = None;
        }
        Self { occurred_at: state.local(event.occurred_at), event }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAuditEventsQuery {
    /// Only requests that reached this patient's data.
    pub patient_id: Option<Id>,
    /// Only requests by this token subject (`sub`).
    pub actor: Option<Text<200>>,
    /// Only this operation, by its OpenAPI operation id (`get_patient`).
    pub operation: Option<Text<100>>,
    /// Only requests at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<FixedOffset>>,
    /// Only requests at or before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<FixedOffset>>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Id>,
}

/// The audit trail, oldest first: every request that read or changed a
/// patient's data, every change, and every refused one (401, 403, 404...).
/// Requests answered before this one are all in it.
///
/// **Roles:** admin.
#[utoipa::path(tag = "audit", params(ListAuditEventsQuery),
    responses(
        (status = 200, description = "A page of audit events", body = Page<AuditEventResponse>),
        CommonErrors, ValidationFailed))]
#[get("/audit-events")]
pub async fn list_audit_events(ctx: Ctx<AdminOnly>, query: Query<ListAuditEventsQuery>) -> Answer {
    let Query(q) = query;
    let page = PageRequest::parse(q.limit, q.cursor)?;
    let (from, to) = (q.from.map(|t| t.to_utc()), q.to.map(|t| t.to_utc()));
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(ApiError::field("to", "must not be before `from`"));
        }
    }
    let filter = Filter {
        patient_id: q.patient_id.map(Id::into_string),
        actor: q.actor.map(Text::into_string),
        operation: q.operation.map(Text::into_string),
        from,
        to,
    };
    answer(&ctx, filter, &page).await
}

/// Who reached this patient's record, when, and how: HIPAA's accounting of
/// access. A patient token reads its own, with roles in place of people.
///
/// **Roles:** admin, clinician, patient (its own).
#[utoipa::path(tag = "audit",
    params(("id" = String, Path, description = "The patient's id"), PageQuery),
    responses(
        (status = 200, description = "A page of the patient's access log", body = Page<AuditEventResponse>),
        CommonErrors, NotFound, ValidationFailed))]
#[get("/patients/{id}/access-log")]
pub async fn get_access_log(
    ctx: Ctx<ClinicalAndPatient>,
    id: Path<Id>,
    query: Query<PageQuery>,
) -> Answer {
    let patient_id = id.into_inner().into_string();
    ctx.caller.require_own_patient(&patient_id)?;
    let page = PageRequest::parse(query.0.limit, query.0.cursor)?;
    ctx.saw(&PatientId(&patient_id));
    let filter = Filter { patient_id: Some(patient_id), ..Filter::default() };
    answer(&ctx, filter, &page).await
}

/// A page of the events `filter` asks for, with every queued record stored
/// first.
async fn answer<A: Admits>(ctx: &Ctx<A>, filter: Filter, page: &PageRequest) -> Answer {
    let (queue, at, viewer) = (ctx.audit.queue(), page.rows(), ctx.caller.role);
    let events = ctx
        .db(move |conn| {
            queue.flush_on(conn)?;
            store::list(conn, &filter, &at)
        })
        .await?;
    ok(page.shown(events, ctx, |state, e| AuditEventResponse::new(state, viewer, e)))
}
