//! `/v1/availability`: free capacity per clinic day and session.

use actix_web::{get, web, HttpResponse};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access::STAFF_AND_INTEGRATION;
use crate::domain::calendar::Session;
use crate::store::appointments as store;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{dates, Query};
use super::openapi::{Forbidden, ServerErrors, Unauthorized, ValidationFailed};
use super::AppState;

/// The longest range one request may ask for, in days.
pub const MAX_RANGE_DAYS: u64 = 93;
/// The range when `to` is not given, in days from `from`.
const DEFAULT_RANGE_DAYS: u64 = 27;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_availability);
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AvailabilityQuery {
    /// First date (default: today, clinic-local).
    #[serde(default, deserialize_with = "dates::optional")]
    #[param(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub from: Option<NaiveDate>,
    /// Last date, at most 93 days after `from` (default: `from` + 27 days).
    #[serde(default, deserialize_with = "dates::optional")]
    #[param(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub to: Option<NaiveDate>,
    /// Only this session.
    pub session: Option<Session>,
}

/// One session of one clinic day.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "date": "2026-12-14", "session": "morning", "starts_at": "2026-12-14T08:00:00-05:00",
    "capacity": 4, "booked": 1, "free": 3
}))]
pub struct Slot {
    pub date: NaiveDate,
    pub session: Session,
    /// RFC 3339 in the clinic's offset.
    pub starts_at: String,
    /// Active rooms.
    pub capacity: i64,
    /// Active appointments.
    pub booked: i64,
    pub free: i64,
}

/// Capacity, bookings and free rooms for each session of each clinic day in
/// a range that can still be booked: weekends, non-clinic days, closures,
/// sessions that have begun and dates beyond the horizon have no slots.
#[utoipa::path(
    tag = "availability",
    operation_id = "get_availability",
    params(AvailabilityQuery),
    responses(
        (status = 200, description = "The sessions in the range, in date order", body = Vec<Slot>),
        Unauthorized, Forbidden, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/availability")]
pub async fn get_availability(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<AvailabilityQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF_AND_INTEGRATION)?;
    let Query(q) = query;
    let from = q.from.unwrap_or_else(|| state.today());
    let to = match q.to {
        Some(to) => to,
        None => from
            .checked_add_days(Days::new(DEFAULT_RANGE_DAYS))
            .unwrap_or(NaiveDate::MAX),
    };
    if to < from {
        return Err(ApiError::field("to", "must not be before `from`"));
    }
    if (to - from).num_days() > MAX_RANGE_DAYS as i64 {
        return Err(ApiError::field(
            "to",
            format!("must be at most {MAX_RANGE_DAYS} days after `from`"),
        ));
    }
    let occupancy = state
        .db(move |conn| store::occupancy(conn, from, to, None))
        .await?;
    let calendar = &state.calendar;
    let now = state.clock.now();
    let last = calendar.horizon_end(state.today());
    let slots: Vec<Slot> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .flat_map(|date| {
            calendar
                .sessions(date, &occupancy.closures)
                .into_iter()
                .filter(|(session, _)| q.session.is_none_or(|s| s == *session))
                .map(move |(session, starts_at)| (date, session, starts_at))
        })
        // Only what can still be booked: not begun, within the horizon.
        .filter(|(date, _, starts_at)| starts_at.to_utc() > now && *date <= last)
        .map(|(date, session, starts_at)| {
            let booked = occupancy.booked.get(&(date, session)).copied().unwrap_or(0);
            Slot {
                date,
                session,
                starts_at: state.local(starts_at.to_utc()),
                capacity: occupancy.capacity,
                booked,
                free: (occupancy.capacity - booked).max(0),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(slots))
}
