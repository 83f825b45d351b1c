//! `/v1/protocols`: the catalog of infusion protocols, as data.

use actix_web::{get, put, web, HttpResponse};

use crate::domain::access::{ADMIN, ANY_ROLE};
use crate::domain::protocol::{self, Protocol};
use crate::store::protocols as store;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{Code, Json};
use super::openapi::{
    Forbidden, MalformedRequest, NotFound, PayloadTooLarge, ServerErrors, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use super::AppState;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_protocols)
        .service(get_protocol)
        .service(update_protocol);
}

const EXAMPLE: &str = r#"{"code": "pain-5-day", "name": "Chronic pain, 5 days", "categories": ["pain"],
 "spacing": "consecutive_clinic_days", "infusions": {"min": 5, "max": 5}, "per_week": null, "weeks": null,
 "min_gap_days": 0, "preferred_start_weekday": "monday", "response_check_infusion": 4,
 "requires_completed_course": false}"#;

fn example() -> serde_json::Value {
    serde_json::from_str(EXAMPLE).unwrap_or_default()
}

/// The protocols, by code.
#[utoipa::path(
    tag = "courses",
    responses(
        (status = 200, description = "Every protocol", body = Vec<Protocol>,
            example = json!([example()])),
        Unauthorized, Forbidden, ServerErrors,
    )
)]
#[get("/protocols")]
pub async fn list_protocols(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(ANY_ROLE)?;
    let all = state.db(store::list).await?;
    Ok(HttpResponse::Ok().json(all))
}

/// One protocol.
#[utoipa::path(
    tag = "courses",
    params(("code" = String, Path, description = "e.g. `pain-5-day`")),
    responses(
        (status = 200, description = "The protocol", body = Protocol, example = json!(example())),
        Unauthorized, Forbidden, NotFound, ServerErrors,
    )
)]
#[get("/protocols/{code}")]
pub async fn get_protocol(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<Code>,
) -> Result<HttpResponse, ApiError> {
    caller.require(ANY_ROLE)?;
    let code = code.into_inner().into_string();
    let found = state.db(move |conn| store::find(conn, &code)).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// Change a protocol's parameters (admins). A protocol that could never be
/// planned is refused, each impossible field named.
#[utoipa::path(
    tag = "courses",
    params(("code" = String, Path, description = "e.g. `pain-5-day`")),
    request_body(content = Protocol, example = json!(example())),
    responses(
        (status = 200, description = "The protocol after the change", body = Protocol),
        MalformedRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
        ValidationFailed, ServerErrors,
    )
)]
#[put("/protocols/{code}")]
pub async fn update_protocol(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<Code>,
    body: Json<Protocol>,
) -> Result<HttpResponse, ApiError> {
    caller.require(ADMIN)?;
    let protocol = protocol::revise(code.as_str(), body.0, &state.calendar, state.clock.now())?;
    let now = state.now();
    let saved = state
        .write(move |tx| store::replace(tx, &protocol, now))
        .await?;
    log::info!("protocol {} updated", saved.code);
    Ok(HttpResponse::Ok().json(saved))
}
