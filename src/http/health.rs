//! Liveness and readiness probes. No authentication.

use actix_web::{get, HttpResponse};
use diesel::connection::SimpleConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::openapi::ServiceUnavailable;
use super::{ok, Answer, State};

#[derive(Serialize, ToSchema)]
#[schema(as = HealthStatus)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(tag = "operations", security(),
    responses((status = 200, description = "The process is alive", body = Health)))]
#[get("/healthz")]
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answers a query.
#[utoipa::path(tag = "operations", security(),
    responses((status = 200, description = "Ready to serve", body = Health), ServiceUnavailable))]
#[get("/readyz")]
pub async fn get_readyz(state: State) -> Answer {
    state.db(|conn| conn.batch_execute("SELECT 1").map_err(Into::into)).await.map_err(
        |e| match e {
            ApiError::Internal(cause) => ApiError::Unavailable(cause),
            other => other,
        },
    )?;
    ok(Health { status: "ready" })
}
