//! `/v1/availability`: free capacity per clinic day and session.

use actix_web::get;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::domain::calendar::{self, Session, SessionAvailability};
use crate::domain::values::CalendarDate;
use crate::store::appointments as store;

use super::auth::{Ctx, StaffAndIntegration};
use super::extract::Query;
use super::openapi::{CommonErrors, ValidationFailed};
use super::{ok, Answer};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AvailabilityQuery {
    /// First date (default: today, clinic-local).
    pub from: Option<CalendarDate>,
    /// Last date, at most 93 days after `from` (default: `from` + 27 days).
    pub to: Option<CalendarDate>,
    /// Only this session.
    pub session: Option<Session>,
}

/// Capacity, bookings and free rooms for each session of each clinic day in
/// a range that can still be booked: weekends, non-clinic days, closures,
/// sessions that have begun and dates beyond the horizon have no slots.
///
/// **Roles:** admin, clinician, scheduler, integration.
#[utoipa::path(tag = "availability", params(AvailabilityQuery),
    responses(
        (status = 200, description = "The sessions in the range, in date order", body = Vec<SessionAvailability>),
        CommonErrors, ValidationFailed))]
#[get("/availability")]
pub async fn get_availability(
    ctx: Ctx<StaffAndIntegration>,
    query: Query<AvailabilityQuery>,
) -> Answer {
    let Query(q) = query;
    let range = calendar::availability_range(
        q.from.map(CalendarDate::get),
        q.to.map(CalendarDate::get),
        ctx.today(),
    )?;
    let (from, to) = range;
    let occupancy = ctx.db(move |conn| store::occupancy(conn, from, to, None)).await?;
    let now = ctx.clock.now();
    ok(calendar::availability(&ctx.calendar, &occupancy, range, q.session, now))
}
