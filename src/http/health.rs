//! Liveness and readiness probes. No authentication.

use actix_web::{get, web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::openapi::ServiceUnavailable;
use super::AppState;

#[derive(Serialize, ToSchema)]
#[schema(as = HealthStatus)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health)),
    security()
)]
#[get("/healthz")]
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answers a query.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        ServiceUnavailable,
    ),
    security()
)]
#[get("/readyz")]
pub async fn get_readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .db(|conn| conn.batch_execute("SELECT 1").map_err(Into::into))
        .await
        .map_err(|e| match e {
            ApiError::Internal(cause) => ApiError::Unavailable(cause),
            other => other,
        })?;
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}
