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
///
/// `{"status": "ok"}` while the process runs, whatever the database does:
/// a supervisor restarts the process when this stops answering. Public: no
/// token, no rate limit.
#[utoipa::path(tag = "operations", security(),
    responses((status = 200, description = "The process is alive", body = Health)))]
#[get("/healthz")]
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answers a query.
///
/// `{"status": "ready"}` when the database answers `SELECT 1`, else 503
/// `unavailable`: a load balancer sends traffic only while this is 200.
/// Public: no token, no rate limit.
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
