//! `/v1/closures`: dates without slots.

use actix_web::web::Path;
use actix_web::{delete, get, post};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::calendar::{self, Closure};
use crate::domain::values::{dates_in_order, CalendarDate, Id, Text};
use crate::store::closures as store;

use super::auth::{AdminOnly, Ctx, Reply, Staff};
use super::extract::{Json, Query};
use super::openapi::{BodyErrors, CommonErrors, Conflict, NotFound, ValidationFailed};
use super::pagination::{Page, PageRequest};
use super::{ok, Answer, AppState};

/// A date the clinic is closed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac5b2-1111-7000-8000-0000000000aa", "date": "2026-12-24", "reason": "Christmas Eve",
    "created_at": "2026-11-27T09:12:00-05:00"
}))]
pub struct ClosureResponse {
    #[serde(flatten)]
    pub closure: Closure,
    /// RFC 3339 in the clinic's offset.
    pub created_at: String,
}

impl ClosureResponse {
    fn new(state: &AppState, closure: Closure) -> Self {
        Self { created_at: state.local(closure.created_at), closure }
    }
}

/// A new closure. Refused while appointments stand on the date.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"date": "2026-12-24", "reason": "Christmas Eve"}))]
pub struct CreateClosure {
    /// Today or later, clinic-local.
    pub date: CalendarDate,
    pub reason: Text<200>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListClosuresQuery {
    /// Only closures on or after this date.
    pub from: Option<CalendarDate>,
    /// Only closures on or before this date.
    pub to: Option<CalendarDate>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Id>,
}

/// List closures.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "closures", params(ListClosuresQuery),
    responses((status = 200, description = "A page of closures", body = Page<ClosureResponse>),
        CommonErrors, ValidationFailed))]
#[get("/closures")]
pub async fn list_closures(ctx: Ctx<Staff>, query: Query<ListClosuresQuery>) -> Answer {
    let Query(q) = query;
    dates_in_order(q.from, q.to)?;
    let page = PageRequest::parse(q.limit, q.cursor)?;
    let at = page.rows();
    let (from, to) = (q.from.map(CalendarDate::get), q.to.map(CalendarDate::get));
    let closures = ctx.db(move |conn| store::list(conn, from, to, &at)).await?;
    ok(page.shown(closures, &ctx, ClosureResponse::new))
}

/// Close the clinic on a date.
///
/// **Roles:** admin.
#[utoipa::path(tag = "closures", request_body = CreateClosure,
    responses(
        (status = 201, description = "Created", body = ClosureResponse,
            headers(("location" = String, description = "The new closure's URL"))),
        CommonErrors, BodyErrors, Conflict, ValidationFailed))]
#[post("/closures")]
pub async fn create_closure(ctx: Ctx<AdminOnly>, body: Json<CreateClosure>) -> Answer {
    let Json(body) = body;
    let (date, today, now) = (body.date.get(), ctx.today(), ctx.now());
    ctx.write(
        move |tx| {
            let booked = store::booked_on(tx, date)?;
            calendar::close(date, today, booked)?;
            store::insert(tx, date, body.reason.as_str(), now)
        },
        |state, closure| {
            let location = format!("/v1/closures/{}", closure.id);
            Reply::created(location, &ClosureResponse::new(state, closure))
        },
    )
    .await
}

/// Reopen a closed date.
///
/// **Roles:** admin.
#[utoipa::path(tag = "closures", params(("id" = String, Path, description = "The closure's id")),
    responses((status = 204, description = "Deleted: the date has slots again"), CommonErrors,
        NotFound))]
#[delete("/closures/{id}")]
pub async fn delete_closure(ctx: Ctx<AdminOnly>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    let (precondition, state) = (ctx.precondition(), ctx.state());
    ctx.write(
        move |tx| {
            let current = store::hold(tx, &id)?;
            precondition.check(|| ClosureResponse::new(&state, current))?;
            store::delete(tx, &id)
        },
        |_, ()| Reply::no_content(),
    )
    .await
}
