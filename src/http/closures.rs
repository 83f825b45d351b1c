//! `/v1/closures`: dates without slots.

use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access::{ADMIN, STAFF};
use crate::domain::{check_text, FieldError};
use crate::store::closures::{self as store, Closure};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{dates, Id, Json, Query};
use super::openapi::{
    Conflict, Forbidden, MalformedRequest, NotFound, PayloadTooLarge, ServerErrors, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use super::pagination::{Page, PageRequest};
use super::AppState;

const MAX_REASON: usize = 200;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_closures)
        .service(create_closure)
        .service(delete_closure);
}

/// A date the clinic is closed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac5b2-1111-7000-8000-0000000000aa", "date": "2026-12-24", "reason": "Christmas Eve",
    "created_at": "2026-11-27T09:12:00-05:00"
}))]
pub struct ClosureResponse {
    pub id: String,
    pub date: NaiveDate,
    pub reason: String,
    pub created_at: String,
}

impl ClosureResponse {
    fn new(state: &AppState, closure: Closure) -> Self {
        Self {
            id: closure.id,
            date: closure.date,
            reason: closure.reason,
            created_at: state.local(closure.created_at.and_utc()),
        }
    }
}

/// A new closure. Refused while appointments stand on the date.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"date": "2026-12-24", "reason": "Christmas Eve"}))]
pub struct CreateClosure {
    /// Today or later, clinic-local.
    #[serde(deserialize_with = "dates::required")]
    #[schema(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub date: NaiveDate,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListClosuresQuery {
    /// Only closures on or after this date.
    #[serde(default, deserialize_with = "dates::optional")]
    #[param(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub from: Option<NaiveDate>,
    /// Only closures on or before this date.
    #[serde(default, deserialize_with = "dates::optional")]
    #[param(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub to: Option<NaiveDate>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Id>,
}

/// List closures.
#[utoipa::path(
    tag = "closures",
    operation_id = "list_closures",
    params(ListClosuresQuery),
    responses(
        (status = 200, description = "A page of closures", body = Page<ClosureResponse>),
        Unauthorized, Forbidden, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/closures")]
pub async fn list_closures(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<ListClosuresQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    let Query(q) = query;
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if to < from {
            return Err(ApiError::field("to", "must not be before `from`"));
        }
    }
    let page = PageRequest::parse(q.limit, q.cursor)?;
    let (after, fetch) = (page.after.clone(), page.fetch());
    let closures = state
        .db(move |conn| store::list(conn, q.from, q.to, after.as_deref(), fetch))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(
        closures,
        |c| c.id.as_str(),
        |c| ClosureResponse::new(&state, c),
    )))
}

/// Close the clinic on a date.
#[utoipa::path(
    tag = "closures",
    operation_id = "create_closure",
    request_body = CreateClosure,
    responses(
        (status = 201, description = "Created", body = ClosureResponse,
            headers(("location" = String, description = "The new closure's URL"))),
        MalformedRequest, Unauthorized, Forbidden, Conflict, PayloadTooLarge,
        UnsupportedMediaType, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/closures")]
pub async fn create_closure(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateClosure>,
) -> Result<HttpResponse, ApiError> {
    caller.require(ADMIN)?;
    let Json(body) = body;
    let mut errors: Vec<FieldError> = check_text("reason", &body.reason, MAX_REASON)
        .into_iter()
        .collect();
    if body.date < state.today() {
        errors.insert(0, FieldError::new("date", "must be today or later"));
    }
    ApiError::check(errors)?;
    let reason = body.reason.trim().to_owned();
    let now = state.now();
    let closure = state
        .db(move |conn| store::insert(conn, body.date, &reason, now))
        .await?;
    log::info!("closure {} on {}", closure.id, closure.date);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/closures/{}", closure.id)))
        .json(ClosureResponse::new(&state, closure)))
}

/// Reopen a closed date.
#[utoipa::path(
    tag = "closures",
    operation_id = "delete_closure",
    params(("id" = String, Path, description = "The closure's id")),
    responses(
        (status = 204, description = "Deleted: the date has slots again"),
        Unauthorized, Forbidden, NotFound, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[delete("/closures/{id}")]
pub async fn delete_closure(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, ApiError> {
    caller.require(ADMIN)?;
    let id = id.into_inner().into_string();
    state
        .db(move |conn| store::delete(conn, &id))
        .await
        .map_err(|e| e.naming("closure"))?;
    Ok(HttpResponse::NoContent().finish())
}
