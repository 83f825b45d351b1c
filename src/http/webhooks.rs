//! `/v1/webhook-endpoints` (admin), and the worker that delivers the change
//! feed's events to them, signed as Standard Webhooks says, at least once.
//!
//! The worker runs in every API process ([`run`]): it dispatches (follows
//! the feed, writing a delivery per event and endpoint that takes it, with
//! the feed position, in one transaction) and then sends what is due, each
//! delivery leased to one process at a time (`store::webhooks`). A process
//! killed mid-send leaves its leases to end; the deliveries go out again.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use actix_web::web::Path;
use actix_web::{delete, get, post, web};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::values::{Id, Text};
use crate::domain::webhooks::{self, Attempt, Delivery, DeliveryStatus, Endpoint};
use crate::domain::FieldError;
use crate::store::webhooks::{self as store, Claimed};
use crate::store::write_transaction;

use super::audit::{Seen, Touched};
use super::auth::{AdminOnly, Ctx, Reply};
use super::error::ApiError;
use super::extract::{Json, Query};
use super::openapi::{BodyErrors, CommonErrors, NotFound, ValidationFailed};
use super::pagination::{Page, PageQuery, PageRequest};
use super::{ok, Answer, AppState, State};

/// How long a delivery's attempt may take (Standard Webhooks' receivers
/// answer fast and work later).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a claimed delivery is another process's to leave alone.
const LEASE_SECONDS: i64 = 60;

/// Deliveries one pass sends at most.
const PASS_SIZE: i64 = 50;

/// How often the worker looks for work.
const EVERY: Duration = Duration::from_secs(1);

/// An endpoint's description: at most 500 characters.
pub type Description = Text<500>;

/// A webhook endpoint. Its secret is shown once, when it is created.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ad100-0000-7000-8000-0000000000e1", "url": "https://ehr.riverside.example/hooks/infusion",
    "description": "Riverside EHR scheduling sync", "event_types": ["appointment.booked", "appointment.cancelled"],
    "status": "active", "created_at": "2026-11-30T09:00:00-05:00", "updated_at": "2026-11-30T09:00:00-05:00"
}))]
pub struct EndpointResponse {
    pub id: String,
    pub url: String,
    pub description: String,
    /// The event types it takes; empty: every type.
    pub event_types: Vec<String>,
    /// `active`, or `disabled`.
    pub status: &'static str,
    pub created_at: String,
    pub updated_at: String,
    /// The signing secret (`whsec_…`): only in the answer that creates the
    /// endpoint. Keep it; it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl EndpointResponse {
    fn new(state: &AppState, endpoint: Endpoint) -> Self {
        Self {
            status: if endpoint.disabled_at.is_some() { "disabled" } else { "active" },
            created_at: state.local(endpoint.created_at),
            updated_at: state.local(endpoint.updated_at),
            id: endpoint.id,
            url: endpoint.url,
            description: endpoint.description,
            event_types: endpoint.event_types,
            secret: None,
        }
    }
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "url": "https://ehr.riverside.example/hooks/infusion",
    "event_types": ["appointment.booked", "appointment.cancelled"],
    "description": "Riverside EHR scheduling sync"
}))]
pub struct CreateEndpoint {
    /// `https`, to a public address (`WEBHOOK_ALLOW_PRIVATE=true`, for
    /// development, also takes `http` and private addresses).
    #[schema(max_length = 2000)]
    pub url: String,
    /// The event types to deliver; absent or empty: every type.
    #[schema(max_items = 50)]
    pub event_types: Option<Vec<String>>,
    pub description: Option<Description>,
}

/// What a delivery's body holds (`domain::webhooks::payload`): Standard
/// Webhooks' `type`, `timestamp` and `data`, ids only.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "appointment.booked", "timestamp": "2026-11-30T14:12:44.120391Z",
    "data": {"id": "019ad0c1-4e6b-7d2a-9c3e-5f1a2b3c4d5e", "resource_type": "appointment",
             "resource_id": "019ad0c1-4e6a-7a10-8f00-112233445566",
             "patient_id": "019ad0b0-0000-7000-8000-000000000001"}
}))]
pub struct WebhookPayload {
    /// The event's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change was made, RFC 3339 in UTC.
    pub timestamp: String,
    pub data: WebhookData,
}

/// The event a delivery carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookData {
    /// The event's id, also the delivery's `webhook-id`.
    pub id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub patient_id: Option<String>,
}

/// One delivery of an event to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub id: String,
    /// The event's id: every attempt's `webhook-id`.
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// When it is tried next, while `pending`.
    pub next_attempt_at: Option<String>,
    /// The HTTP status the last attempt got, if it got an answer.
    pub last_status: Option<u16>,
    /// Why the last attempt got no answer (a timeout, a refused address…).
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl DeliveryResponse {
    fn new(state: &AppState, delivery: Delivery) -> Self {
        Self {
            id: delivery.id,
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            status: delivery.status,
            attempts: delivery.attempts,
            next_attempt_at: delivery.next_attempt_at.map(|at| state.local(at)),
            last_status: delivery.last_status,
            last_error: delivery.last_error,
            created_at: state.local(delivery.created_at),
            updated_at: state.local(delivery.updated_at),
        }
    }
}

impl Touched for Endpoint {
    fn touched(&self, seen: &mut Seen) {
        seen.record("webhook_endpoint", &self.id, None);
    }
}

impl Touched for Delivery {
    fn touched(&self, _: &mut Seen) {}
}

/// Add a webhook endpoint.
///
/// Events of the types it names (every type by default) that happen from
/// now on are delivered to it, signed with the secret this answer holds
/// (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
/// `webhook-signature`), at least once.
///
/// **Roles:** admin.
#[utoipa::path(tag = "webhooks", request_body = CreateEndpoint,
    responses(
        (status = 201, description = "Created; `secret` is shown this once", body = EndpointResponse,
            headers(("location" = String, description = "The new endpoint's URL"))),
        CommonErrors, BodyErrors, ValidationFailed))]
#[post("/webhook-endpoints")]
pub async fn create_webhook_endpoint(ctx: Ctx<AdminOnly>, body: Json<CreateEndpoint>) -> Answer {
    let Json(body) = body;
    let mut errors = Vec::new();
    if let Err(e) = webhooks::endpoint_url(&body.url, ctx.settings.webhook_allow_private) {
        errors.push(FieldError::new("url", e));
    }
    let types = body.event_types.unwrap_or_default();
    let types = webhooks::event_types(&types)
        .map_err(|e| errors.push(FieldError::new("event_types", e)))
        .unwrap_or_default();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut random = [0u8; 24];
    rand_core::OsRng.fill_bytes(&mut random);
    let secret = webhooks::new_secret(random);
    let description = body.description.map(Text::into_string).unwrap_or_default();
    let now = ctx.now();
    ctx.write(
        move |tx| store::insert_endpoint(tx, &body.url, &description, &types, &secret, now),
        |state, endpoint| {
            let location = format!("/v1/webhook-endpoints/{}", endpoint.id);
            let secret = Some(endpoint.secret.clone());
            Reply::created(
                location,
                &EndpointResponse { secret, ..EndpointResponse::new(state, endpoint) },
            )
        },
    )
    .await
}

/// List the webhook endpoints.
///
/// **Roles:** admin.
#[utoipa::path(tag = "webhooks", params(PageQuery),
    responses((status = 200, description = "A page of endpoints", body = Page<EndpointResponse>),
        CommonErrors, ValidationFailed))]
#[get("/webhook-endpoints")]
pub async fn list_webhook_endpoints(ctx: Ctx<AdminOnly>, query: Query<PageQuery>) -> Answer {
    let Query(query) = query;
    let page = PageRequest::parse(query.limit, query.cursor)?;
    let at = page.rows();
    let found = ctx.read(move |conn| store::list_endpoints(conn, &at)).await?;
    ok(page.shown(found, &ctx, EndpointResponse::new))
}

/// Get a webhook endpoint (without its secret).
///
/// **Roles:** admin.
#[utoipa::path(tag = "webhooks", params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The endpoint", body = EndpointResponse),
        CommonErrors, NotFound))]
#[get("/webhook-endpoints/{id}")]
pub async fn get_webhook_endpoint(ctx: Ctx<AdminOnly>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    let endpoint = ctx.read(move |conn| store::find_endpoint(conn, &id)).await?;
    ok(EndpointResponse::new(&ctx, endpoint))
}

/// Delete a webhook endpoint and its deliveries.
///
/// **Roles:** admin.
#[utoipa::path(tag = "webhooks", params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Deleted"), CommonErrors, NotFound))]
#[delete("/webhook-endpoints/{id}")]
pub async fn delete_webhook_endpoint(ctx: Ctx<AdminOnly>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    ctx.write(move |tx| store::delete_endpoint(tx, &id), |_, _| Reply::no_content()).await
}

/// List an endpoint's deliveries, oldest first.
///
/// Each with its status (`pending`, `delivered`, `failed`), its attempts
/// and the last answer's status.
///
/// **Roles:** admin.
#[utoipa::path(tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), PageQuery),
    responses((status = 200, description = "A page of deliveries", body = Page<DeliveryResponse>),
        CommonErrors, NotFound, ValidationFailed))]
#[get("/webhook-endpoints/{id}/deliveries")]
pub async fn list_webhook_deliveries(
    ctx: Ctx<AdminOnly>,
    id: Path<Id>,
    query: Query<PageQuery>,
) -> Answer {
    let Query(query) = query;
    let page = PageRequest::parse(query.limit, query.cursor)?;
    let (id, at) = (id.into_inner().into_string(), page.rows());
    let found = ctx
        .read(move |conn| {
            store::find_endpoint(conn, &id)?;
            store::list_deliveries(conn, &id, &at)
        })
        .await?;
    ok(page.shown(found, &ctx, DeliveryResponse::new))
}

/// Runs the worker until the process ends: a pass every second.
pub async fn run(state: State) {
    let mut every = tokio::time::interval(EVERY);
    loop {
        every.tick().await;
        if let Err(e) = run_once(&state).await {
            log::warn!("webhooks: {e}");
        }
    }
}

/// One pass: dispatch what the feed holds, then send what is due. How
/// many events were dispatched and deliveries attempted.
pub async fn run_once(state: &State) -> Result<(usize, usize), ApiError> {
    let now = state.now();
    let dispatched = state.write(move |tx| store::dispatch(tx, now)).await?;
    let lease = now + chrono::Duration::seconds(LEASE_SECONDS);
    let claimed = state.write(move |tx| store::claim_due(tx, now, lease, PASS_SIZE)).await?;
    let attempted = claimed.len();
    for claim in claimed {
        let allow_private = state.settings.webhook_allow_private;
        let sent = {
            let claim = claim.clone();
            web::block(move || send(&claim, allow_private)).await.map_err(ApiError::from)?
        };
        let mut jitter = [0u8; 1];
        rand_core::OsRng.fill_bytes(&mut jitter);
        let jitter = f64::from(jitter[0]) / 255.0 * 0.25;
        let done = state.now();
        let (status, next) = webhooks::after_attempt(
            claim.delivery.attempts + 1,
            &sent,
            &state.settings.webhook_retry_schedule,
            done,
            jitter,
        );
        let (code, error) = match sent {
            Attempt::Answered(code) => (Some(code), None),
            Attempt::NoAnswer(why) => (None, Some(why)),
        };
        let id = claim.delivery.id.clone();
        state
            .db(move |conn| {
                write_transaction(conn, |tx| {
                    store::record_attempt(tx, &id, status, next, code, error.as_deref(), done)
                })
            })
            .await?;
        if status == DeliveryStatus::Failed {
            log::warn!("webhooks: delivery {} failed after its last attempt", claim.delivery.id);
        }
    }
    Ok((dispatched, attempted))
}

/// One attempt: the payload POSTed to the endpoint, signed, within
/// [`SEND_TIMEOUT`], no redirect followed, only to public addresses unless
/// private ones are allowed (checked on the addresses the name resolves to
/// now, which are the ones connected to).
fn send(claim: &Claimed, allow_private: bool) -> Attempt {
    let delivery = &claim.delivery;
    let timestamp = chrono::Utc::now().timestamp();
    let Some(signature) =
        webhooks::signature(&claim.secret, &delivery.event_id, timestamp, &delivery.payload)
    else {
        return Attempt::NoAnswer("the endpoint's secret is not a signing secret".into());
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(SEND_TIMEOUT)
        .redirects(0)
        .resolver(Resolver { allow_private })
        .user_agent("infusion-api-webhooks")
        .build();
    let sent = agent
        .post(&claim.url)
        .set("content-type", "application/json")
        .set("webhook-id", &delivery.event_id)
        .set("webhook-timestamp", &timestamp.to_string())
        .set("webhook-signature", &signature)
        .send_string(&delivery.payload);
    match sent {
        Ok(response) => Attempt::Answered(response.status()),
        Err(ureq::Error::Status(code, _)) => Attempt::Answered(code),
        Err(ureq::Error::Transport(transport)) => Attempt::NoAnswer(transport.kind().to_string()),
    }
}

/// Resolves an endpoint's host to the addresses it may be sent to.
struct Resolver {
    allow_private: bool,
}

impl ureq::Resolver for Resolver {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let addresses: Vec<SocketAddr> = netloc
            .to_socket_addrs()?
            .filter(|a| self.allow_private || webhooks::is_public(a.ip()))
            .collect();
        if addresses.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the endpoint resolves to no public address",
            ));
        }
        Ok(addresses)
    }
}
