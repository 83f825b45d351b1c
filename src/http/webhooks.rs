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
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::web::Path;
use actix_web::{delete, get, patch, post, web};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::events;
use crate::domain::values::{Id, Text};
use crate::domain::webhooks::{
    self, Attempt, Delivery, DeliveryStatus, Endpoint, EndpointChange, Turn, Turns,
};
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

/// Deliveries one pass claims at most.
const PASS_SIZE: i64 = 256;

/// Deliveries a process sends at once.
const SENDERS: usize = 16;

/// How long a pass goes on taking deliveries to send: with [`SEND_TIMEOUT`]
/// after it, well within [`LEASE_SECONDS`].
const PASS_DEADLINE: Duration = Duration::from_secs(30);

/// How often the worker looks for work at least.
const EVERY: Duration = Duration::from_secs(1);

/// How long the worker, woken by a write, waits for more before its pass:
/// a burst of writes is sent in one pass, not one pass each.
const GATHER: Duration = Duration::from_millis(20);

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
    /// Why it is disabled: by an admin, or every attempt failing for
    /// `WEBHOOK_DISABLE_AFTER_HOURS`.
    pub disabled_reason: Option<String>,
    /// Since when every attempt to it has failed; `null` while it answers.
    pub failing_since: Option<String>,
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
            disabled_reason: endpoint.disabled_reason.clone(),
            failing_since: endpoint.failing_since.map(|at| state.local(at)),
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
    let secret = new_secret();
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

/// Changes to an endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_types": ["appointment.booked", "appointment.rescheduled", "appointment.cancelled"]}))]
pub struct UpdateEndpoint {
    #[schema(max_length = 2000)]
    pub url: Option<String>,
    /// Empty: every type.
    #[schema(max_items = 50)]
    pub event_types: Option<Vec<String>>,
    pub description: Option<Description>,
}

/// Change an endpoint's URL, event types or description.
///
/// **Roles:** admin.
#[utoipa::path(tag = "webhooks", params(("id" = String, Path, description = "The endpoint's id")),
    request_body = UpdateEndpoint,
    responses((status = 200, description = "The endpoint after the change", body = EndpointResponse),
        CommonErrors, BodyErrors, NotFound, ValidationFailed))]
#[patch("/webhook-endpoints/{id}")]
pub async fn update_webhook_endpoint(
    ctx: Ctx<AdminOnly>,
    id: Path<Id>,
    body: Json<UpdateEndpoint>,
) -> Answer {
    let Json(body) = body;
    let mut errors = Vec::new();
    if let Some(url) = &body.url {
        if let Err(e) = webhooks::endpoint_url(url, ctx.settings.webhook_allow_private) {
            errors.push(FieldError::new("url", e));
        }
    }
    let event_types = match &body.event_types {
        None => None,
        Some(types) => webhooks::event_types(types)
            .map_err(|e| errors.push(FieldError::new("event_types", e)))
            .ok(),
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let change = EndpointChange {
        url: body.url,
        event_types,
        description: body.description.map(Text::into_string),
        ..Default::default()
    };
    changed(ctx, id.into_inner().into_string(), change, false).await
}

/// Disable an endpoint: no deliveries to it until it is enabled again
/// (events meanwhile are not kept for it).
///
/// **Roles:** admin.
#[utoipa::path(tag = "webhooks", params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The endpoint, disabled", body = EndpointResponse),
        CommonErrors, NotFound))]
#[post("/webhook-endpoints/{id}/disable")]
pub async fn disable_webhook_endpoint(ctx: Ctx<AdminOnly>, id: Path<Id>) -> Answer {
    let change = EndpointChange { disabled: Some(true), ..Default::default() };
    changed(ctx, id.into_inner().into_string(), change, false).await
}

/// Enable an endpoint again, its failures forgotten: it gets the events
/// that happen from now on, and its pending deliveries go out.
///
/// **Roles:** admin.
#[utoipa::path(tag = "webhooks", params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The endpoint, active", body = EndpointResponse),
        CommonErrors, NotFound))]
#[post("/webhook-endpoints/{id}/enable")]
pub async fn enable_webhook_endpoint(ctx: Ctx<AdminOnly>, id: Path<Id>) -> Answer {
    let change = EndpointChange { disabled: Some(false), ..Default::default() };
    changed(ctx, id.into_inner().into_string(), change, false).await
}

/// Rotate an endpoint's signing secret.
///
/// The answer holds the new secret, shown this once. For a day, each
/// delivery carries two signatures (Standard Webhooks lists them
/// space-separated): the new secret's and the old one's, so the receiver
/// can switch without missing any.
///
/// **Roles:** admin.
#[utoipa::path(tag = "webhooks", params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The endpoint with its new `secret`", body = EndpointResponse),
        CommonErrors, NotFound))]
#[post("/webhook-endpoints/{id}/rotate-secret")]
pub async fn rotate_webhook_secret(ctx: Ctx<AdminOnly>, id: Path<Id>) -> Answer {
    let change = EndpointChange { secret: Some(new_secret()), ..Default::default() };
    changed(ctx, id.into_inner().into_string(), change, true).await
}

/// Applies `change` to endpoint `id`, its row held; shows the secret when
/// `with_secret`.
async fn changed(
    ctx: Ctx<AdminOnly>,
    id: String,
    change: EndpointChange,
    with_secret: bool,
) -> Answer {
    let now = ctx.now();
    ctx.write(
        move |tx| {
            let endpoint = store::hold_endpoint(tx, &id)?;
            store::update_endpoint(tx, &webhooks::change(endpoint, change, now), now)
        },
        move |state, endpoint| {
            let secret = with_secret.then(|| endpoint.secret.clone());
            Reply::ok(&EndpointResponse { secret, ..EndpointResponse::new(state, endpoint) })
        },
    )
    .await
}

/// Send a delivery again: due now, with a new round of the schedule.
///
/// **Roles:** admin.
#[utoipa::path(tag = "webhooks", params(
        ("id" = String, Path, description = "The endpoint's id"),
        ("delivery_id" = String, Path, description = "The delivery's id")),
    responses((status = 200, description = "The delivery, pending", body = DeliveryResponse),
        CommonErrors, NotFound))]
#[post("/webhook-endpoints/{id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver_webhook(ctx: Ctx<AdminOnly>, ids: Path<(Id, Id)>) -> Answer {
    let (id, delivery) = ids.into_inner();
    let (id, delivery, now) = (id.into_string(), delivery.into_string(), ctx.now());
    ctx.write(
        move |tx| store::redeliver(tx, &id, &delivery, now),
        |state, delivery| Reply::ok(&DeliveryResponse::new(state, delivery)),
    )
    .await
}

/// A new signing secret from the system's random source.
fn new_secret() -> String {
    let mut random = [0u8; 24];
    rand_core::OsRng.fill_bytes(&mut random);
    webhooks::new_secret(random)
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

/// Runs the worker until the process ends. After a pass it waits for this
/// process's next write (gathering [`GATHER`] of them), or a second at
/// most, for other processes' writes and retries; with no endpoint active,
/// a second; after a pass that found a full batch (a backlog), not at all.
pub async fn run(state: State) {
    let agent = agent(state.settings.webhook_allow_private);
    loop {
        let (full, active) = match pass(&state, &agent).await {
            Ok(done) => (
                done.dispatched.events as i64 >= store::DISPATCH_BATCH
                    || done.claimed as i64 >= PASS_SIZE,
                done.dispatched.active_endpoints > 0,
            ),
            Err(e) => {
                log::warn!("webhooks: {e}");
                (false, false)
            }
        };
        if full {
            continue;
        }
        if active {
            // A write during the pass left its wake-up: this returns at once.
            let _ = tokio::time::timeout(EVERY, state.written.notified()).await;
            tokio::time::sleep(GATHER).await;
        } else {
            tokio::time::sleep(EVERY).await;
        }
    }
}

/// One pass: dispatch what the feed holds, then send what is due. How
/// many events were dispatched and deliveries attempted.
pub async fn run_once(state: &State) -> Result<(usize, usize), ApiError> {
    let done = pass(state, &agent(state.settings.webhook_allow_private)).await?;
    Ok((done.dispatched.events, done.attempted))
}

/// What a pass did.
struct Pass {
    dispatched: store::Dispatched,
    claimed: usize,
    attempted: usize,
}

/// What became of one claimed delivery in a pass.
enum Sendout {
    Sent(Attempt),
    /// Not sent: its endpoint did not answer another of the pass's.
    HeldBack,
    /// Not sent: the pass ran out of time.
    Late,
}

async fn pass(state: &State, agent: &ureq::Agent) -> Result<Pass, ApiError> {
    let now = state.now();
    let lease = now + chrono::Duration::seconds(LEASE_SECONDS);
    let (dispatched, claimed) = state
        .db(move |conn| {
            write_transaction(conn, |tx| {
                let dispatched = store::dispatch(tx, now)?;
                let due = store::due_by_endpoint(tx, now, PASS_SIZE)?;
                let taken = webhooks::in_turns(due, PASS_SIZE as usize);
                Ok((dispatched, store::lease(tx, &taken, lease)?))
            })
        })
        .await?;
    if claimed.is_empty() {
        return Ok(Pass { dispatched, claimed: 0, attempted: 0 });
    }
    let sendouts = {
        let (claimed, agent) = (claimed.clone(), agent.clone());
        web::block(move || send_all(&claimed, &agent, now)).await.map_err(ApiError::from)?
    };
    let done = state.now();
    let (outcomes, held, noted) =
        outcomes(&claimed, &sendouts, &state.settings.webhook_retry_schedule, done);
    let attempted = outcomes.len();
    let disable_after = state.settings.webhook_disable_after_hours;
    let disabled = state
        .db(move |conn| {
            write_transaction(conn, |tx| {
                store::record_attempts(tx, &outcomes, lease, done)?;
                let mut dues: Vec<Option<chrono::DateTime<chrono::Utc>>> =
                    held.iter().map(|(_, due)| *due).collect();
                dues.sort();
                dues.dedup();
                for due in dues {
                    let ids: Vec<String> =
                        held.iter().filter(|(_, d)| *d == due).map(|(id, _)| id.clone()).collect();
                    store::release(tx, &ids, lease, due)?;
                }
                let mut disabled = Vec::new();
                for (endpoint_id, answering) in &noted {
                    // An endpoint deleted during the pass has nothing to note.
                    let Some(endpoint) = store::note_outcome(tx, endpoint_id, *answering, done)?
                    else {
                        continue;
                    };
                    if disable_if_failing_too_long(tx, endpoint, disable_after, done)? {
                        disabled.push(endpoint_id.clone());
                    }
                }
                Ok(disabled)
            })
        })
        .await?;
    for endpoint_id in disabled {
        log::warn!("webhooks: endpoint {endpoint_id} disabled: failing too long");
    }
    Ok(Pass { dispatched, claimed: claimed.len(), attempted })
}

/// An endpoint's attempts in a pass, and when one that got no answer is
/// due again.
struct Tried<'a> {
    endpoint_id: &'a str,
    attempts: Vec<&'a Attempt>,
    held_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// The deliveries held back until a time (or, late, due as they were).
type Held = Vec<(String, Option<chrono::DateTime<chrono::Utc>>)>;

/// What a pass's sendouts make of its deliveries, decided at `done`: the
/// attempts' outcomes; the deliveries not sent, each with when it is due
/// again (held back: with its endpoint's retry; late: as it was); and
/// whether each endpoint tried is answering.
fn outcomes(
    claimed: &[Claimed],
    sendouts: &[Sendout],
    schedule: &[u32],
    done: chrono::DateTime<chrono::Utc>,
) -> (Vec<store::Outcome>, Held, Vec<(String, bool)>) {
    let mut outcomes = Vec::new();
    let mut tried: Vec<Tried> = Vec::new();
    for (claim, sendout) in claimed.iter().zip(sendouts) {
        let Sendout::Sent(attempt) = sendout else { continue };
        let mut jitter = [0u8; 1];
        rand_core::OsRng.fill_bytes(&mut jitter);
        let jitter = f64::from(jitter[0]) / 255.0 * 0.25;
        let (status, next) =
            webhooks::after_attempt(claim.delivery.attempts + 1, attempt, schedule, done, jitter);
        if status == DeliveryStatus::Failed {
            log::warn!("webhooks: delivery {} failed after its last attempt", claim.delivery.id);
        }
        let (last_status, last_error) = match attempt {
            Attempt::Answered(code) => (Some(*code), None),
            Attempt::NoAnswer(why) => (None, Some(why.clone())),
        };
        outcomes.push(store::Outcome {
            id: claim.delivery.id.clone(),
            status,
            next_attempt_at: next,
            last_status,
            last_error,
        });
        let at = match tried.iter().position(|t| t.endpoint_id == claim.endpoint.id) {
            Some(at) => at,
            None => {
                let endpoint_id = claim.endpoint.id.as_str();
                tried.push(Tried { endpoint_id, attempts: Vec::new(), held_until: None });
                tried.len() - 1
            }
        };
        let endpoint = &mut tried[at];
        endpoint.attempts.push(attempt);
        // Held back for the schedule's first wait, whatever this delivery's
        // own retry: the others have not been tried yet.
        if attempt.holds_back() && endpoint.held_until.is_none() {
            endpoint.held_until = webhooks::next_attempt(1, schedule, done, jitter);
        }
    }
    let held = claimed
        .iter()
        .zip(sendouts)
        .filter_map(|(claim, sendout)| match sendout {
            Sendout::HeldBack => {
                let endpoint = tried.iter().find(|t| t.endpoint_id == claim.endpoint.id);
                Some((claim.delivery.id.clone(), endpoint.and_then(|t| t.held_until)))
            }
            Sendout::Late => Some((claim.delivery.id.clone(), None)),
            Sendout::Sent(_) => None,
        })
        .collect();
    let noted = tried
        .iter()
        .map(|t| (t.endpoint_id.to_owned(), webhooks::answering(t.attempts.iter().copied())))
        .collect();
    (outcomes, held, noted)
}

/// Sends `claimed`, [`SENDERS`] at a time and at most
/// [`webhooks::SENDS_PER_ENDPOINT`] to one endpoint, each delivery once:
/// what became of each, in order. An endpoint that gives no answer gets
/// none of the rest of the pass; after [`PASS_DEADLINE`] nothing more is
/// sent, so that the pass records its outcomes well within its leases.
fn send_all(
    claimed: &[Claimed],
    agent: &ureq::Agent,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Sendout> {
    let deadline = Instant::now() + PASS_DEADLINE;
    let turns = Mutex::new(Turns::new(claimed.iter().map(|c| c.endpoint.id.as_str())));
    let ended = Condvar::new();
    // The next turn, waiting while every endpoint with claims left has its
    // share of sends out; `None` once there is none, or time is up.
    let next_turn = || {
        let mut turns = turns.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match turns.take() {
                Turn::Wait => {
                    turns =
                        ended.wait_timeout(turns, left).unwrap_or_else(PoisonError::into_inner).0;
                }
                Turn::Done => return None,
                turn => return Some(turn),
            }
        }
    };
    let mut sendouts: Vec<(usize, Sendout)> = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..SENDERS.min(claimed.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    while let Some(turn) = next_turn() {
                        match turn {
                            Turn::Send(i) => {
                                let Some(claim) = claimed.get(i) else { continue };
                                let attempt = send(claim, agent, now);
                                turns
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .sent(i, &attempt);
                                ended.notify_all();
                                mine.push((i, Sendout::Sent(attempt)));
                            }
                            Turn::HoldBack(i) => mine.push((i, Sendout::HeldBack)),
                            Turn::Wait | Turn::Done => break,
                        }
                    }
                    mine
                })
            })
            .collect();
        // What a sender that panicked took is `Late` below: released, sent
        // again by the next pass (at least once, maybe twice).
        senders.into_iter().flat_map(|s| s.join().unwrap_or_default()).collect()
    });
    sendouts.sort_by_key(|(i, _)| *i);
    let mut sendouts = sendouts.into_iter().peekable();
    (0..claimed.len())
        .map(|i| match sendouts.next_if(|(at, _)| *at == i) {
            Some((_, sendout)) => sendout,
            None => Sendout::Late,
        })
        .collect()
}

/// Disables `endpoint` when every attempt to it has failed for longer than
/// `after_hours`, and writes that change's event; whether it did.
fn disable_if_failing_too_long(
    tx: &mut crate::store::DbConnection,
    endpoint: Endpoint,
    after_hours: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, crate::store::StoreError> {
    if endpoint.disabled_at.is_some()
        || !webhooks::failed_too_long(endpoint.failing_since, now, after_hours)
    {
        return Ok(false);
    }
    let mut disabled = webhooks::change(
        endpoint,
        webhooks::EndpointChange { disabled: Some(true), ..Default::default() },
        now,
    );
    disabled.disabled_reason = Some(format!("every attempt failed for {after_hours} hours"));
    let disabled = store::update_endpoint(tx, &disabled, now)?;
    let change =
        events::Change { kind: "webhook_endpoint".into(), id: disabled.id, patient_id: None };
    let written = events::of_write(events::DELIVERIES, &[change], now, crate::store::new_id);
    crate::store::events::insert(tx, &written)?;
    Ok(true)
}

/// One attempt: the payload POSTed to the endpoint, signed, within
/// [`SEND_TIMEOUT`], no redirect followed, only to public addresses unless
/// private ones are allowed (checked on the addresses the name resolves to
/// now, which are the ones connected to).
fn send(claim: &Claimed, agent: &ureq::Agent, now: chrono::DateTime<chrono::Utc>) -> Attempt {
    let delivery = &claim.delivery;
    // The receiver holds the timestamp to its own clock: the wall clock's.
    let timestamp = chrono::Utc::now().timestamp();
    // Each secret signing `now`, by the clinic's clock that dated the
    // rotation (two during its grace), as Standard Webhooks lists several:
    // space-separated.
    let signatures: Option<Vec<String>> = webhooks::signing_secrets(&claim.endpoint, now)
        .into_iter()
        .map(|secret| webhooks::signature(secret, &delivery.event_id, timestamp, &delivery.payload))
        .collect();
    let Some(signature) = signatures.map(|s| s.join(" ")) else {
        return Attempt::NoAnswer("the endpoint's secret is not a signing secret".into());
    };
    let sent = agent
        .post(&claim.endpoint.url)
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

/// The HTTP client of a process's worker: its connections are kept and
/// reused, [`SENDERS`] to a host, so that a busy endpoint is not sent each
/// delivery on a new connection (and a new TLS handshake).
fn agent(allow_private: bool) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(SEND_TIMEOUT)
        .redirects(0)
        .resolver(Resolver { allow_private })
        .max_idle_connections_per_host(SENDERS)
        .max_idle_connections(4 * SENDERS)
        .user_agent("infusion-api-webhooks")
        .build()
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
