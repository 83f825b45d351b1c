//! `GET /v1/events`: the change feed. Events in feed order, from a
//! position on; a reader that follows `next_after` sees every event once
//! (`store::events` says how on PostgreSQL).

use actix_web::get;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::events::{self, Event};
use crate::domain::values::Id;
use crate::domain::FieldError;
use crate::store::events::{self as store, FedEvent, Filter, Position};

use super::audit::{Seen, Touched};
use super::auth::{AdminAndIntegration, Ctx};
use super::error::ApiError;
use super::extract::Query;
use super::openapi::{CommonErrors, ValidationFailed};
use super::{ok, Answer};

/// The most events a page holds.
pub const MAX_LIMIT: u32 = 1000;

/// Which events, from where.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The `next_after` of the previous page (or an event's `position`),
    /// such as `731-42`; the feed's start when absent.
    #[param(pattern = r"^[0-9]{1,19}-[0-9]{1,10}$")]
    pub after: Option<String>,
    /// Comma-separated event types (`appointment.booked,appointment.cancelled`);
    /// every type when absent.
    pub types: Option<String>,
    /// Only the events of this patient.
    pub patient_id: Option<Id>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One event as the feed gives it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "position": "731-42", "id": "019ad0c1-4e6b-7d2a-9c3e-5f1a2b3c4d5e", "type": "appointment.booked",
    "occurred_at": "2026-11-30T09:12:44-05:00", "resource_type": "appointment",
    "resource_id": "019ad0c1-4e6a-7a10-8f00-112233445566",
    "patient_id": "019ad0b0-0000-7000-8000-000000000001"
}))]
pub struct EventResponse {
    /// Where this event is in the feed: `?after=` it to read what follows.
    pub position: String,
    #[serde(flatten)]
    pub event: Event,
    /// When the change was made, RFC 3339 in the clinic's offset.
    pub occurred_at: String,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventResponse>,
    /// Where to go on from: `?after=` it for the next page. The last
    /// event's position, or the `after` given when the page is empty (poll
    /// again with it).
    #[schema(example = "731-42")]
    pub next_after: String,
}

/// A position as the feed writes it: `tx-seq`.
fn written(position: Position) -> String {
    format!("{}-{}", position.tx, position.seq)
}

/// A position as a client sends it back.
fn position(text: &str) -> Option<Position> {
    let (tx, seq) = text.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(tx) || !digits(seq) {
        return None;
    }
    Some(Position { tx: tx.parse().ok()?, seq: seq.parse().ok()? })
}

/// A page of the feed reads which patients had what change: their ids go
/// on the trail.
impl Touched for FedEvent {
    fn touched(&self, seen: &mut Seen) {
        if let Some(patient) = &self.event.patient_id {
            seen.patient(patient);
        }
    }
}

/// Read the change feed.
///
/// Every change to patients, referrals, intake records, appointments,
/// courses, charges, payments, rooms, closures, clients and webhook
/// endpoints, as events in feed order: an event names its resource and
/// patient, not what the resource holds (read that with the same token).
/// Follow `next_after` and no event is missed or seen twice, whatever
/// commits in what order. An admin sees every event; an integration those
/// of the records a SMART scope reaches (not billing's, clients' or
/// webhook endpoints'), and with scopes only those its scopes may read.
///
/// **Roles:** admin, integration.
#[utoipa::path(tag = "events", params(EventsQuery),
    responses((status = 200, description = "A page of events", body = EventPage),
        CommonErrors, ValidationFailed))]
#[get("/events")]
pub async fn list_events(ctx: Ctx<AdminAndIntegration>, query: Query<EventsQuery>) -> Answer {
    let Query(query) = query;
    let mut errors = Vec::new();
    let after = match query.after.as_deref() {
        None => Position::default(),
        Some(text) => position(text).unwrap_or_else(|| {
            errors.push(FieldError::new("after", "must be a position the feed gave (`tx-seq`)"));
            Position::default()
        }),
    };
    let known = events::types();
    let types: Vec<String> = query
        .types
        .as_deref()
        .map(|list| {
            list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
        })
        .unwrap_or_default();
    for unknown in types.iter().filter(|t| !known.contains(&t.as_str())) {
        errors.push(FieldError::new("types", format!("`{unknown}` is not an event type")));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(FieldError::new("limit", format!("must be 1 to {MAX_LIMIT}")));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // Each reader sees the events of what it may read: `None`, every type.
    let (role, scopes) = (ctx.caller.role, ctx.caller.scopes.as_ref());
    let every = events::resource_types();
    let followed: Vec<&'static str> =
        every.iter().copied().filter(|t| events::followed_by(role, scopes, t)).collect();
    let resource_types = (followed.len() < every.len()).then_some(followed);
    let filter = Filter {
        after,
        types,
        resource_types,
        patient_id: query.patient_id.map(Id::into_string),
        limit: i64::from(limit),
    };
    let fed = ctx.read(move |conn| store::after(conn, &filter)).await?;
    let next_after = written(fed.last().map_or(after, |f| f.position));
    let events = fed
        .into_iter()
        .map(|f| EventResponse {
            position: written(f.position),
            occurred_at: ctx.local(f.event.occurred_at),
            event: f.event,
        })
        .collect();
    ok(EventPage { events, next_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_two_whole_numbers_and_reads_back_as_written() {
        for good in [Position::default(), Position { tx: 9_223_372_036_854_775_807, seq: 7 }] {
            assert_eq!(position(&written(good)), Some(good));
        }
        for bad in
            ["", "7", "-7", "7-", "a-1", "1-b", "1-2-3", " 1-2", "+1-2", "99999999999999999999-1"]
        {
            assert_eq!(position(bad), None, "{bad}");
        }
    }
}
