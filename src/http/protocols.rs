//! `/v1/protocols`: the catalog of infusion protocols, as data.

use actix_web::web::Path;
use actix_web::{get, put};

use crate::domain::protocol::{self, Protocol, ProtocolParameters};
use crate::store::protocols as store;

use super::auth::{AdminOnly, AnyRole, Ctx, Reply};
use super::extract::{Code, Json};
use super::openapi::{BodyErrors, CommonErrors, NotFound, ValidationFailed};
use super::{ok, Answer};

const EXAMPLE: &str = r#"{"code": "pain-5-day", "name": "Chronic pain, 5 days", "categories": ["pain"],
 "spacing": "consecutive_clinic_days", "infusions": {"min": 5, "max": 5}, "per_week": null, "weeks": null,
 "min_gap_days": 0, "preferred_start_weekday": "monday", "response_check_infusion": 4,
 "requires_completed_course": false}"#;

fn example() -> serde_json::Value {
    serde_json::from_str(EXAMPLE).unwrap_or_default()
}

/// The example of a change: the protocol without its code, which the path
/// names.
fn change_example() -> serde_json::Value {
    let mut change = example();
    if let Some(fields) = change.as_object_mut() {
        fields.remove("code");
    }
    change
}

/// The protocols, by code.
///
/// **Roles:** admin, clinician, scheduler, integration, patient.
#[utoipa::path(
    tag = "courses",
    responses(
        (status = 200, description = "Every protocol", body = Vec<Protocol>,
            example = json!([example()])),
        CommonErrors,
    )
)]
#[get("/protocols")]
pub async fn list_protocols(ctx: Ctx<AnyRole>) -> Answer {
    let all = ctx.db(store::list).await?;
    ok(all)
}

/// One protocol.
///
/// **Roles:** admin, clinician, scheduler, integration, patient.
#[utoipa::path(
    tag = "courses",
    params(("code" = String, Path, description = "e.g. `pain-5-day`")),
    responses(
        (status = 200, description = "The protocol", body = Protocol, example = json!(example())),
        CommonErrors, NotFound,
    )
)]
#[get("/protocols/{code}")]
pub async fn get_protocol(ctx: Ctx<AnyRole>, code: Path<Code>) -> Answer {
    let code = code.into_inner().into_string();
    let found = ctx.db(move |conn| store::find(conn, &code)).await?;
    ok(found)
}

/// Change a protocol's parameters (admins). The path names the protocol;
/// the body is everything else of it (a `code` in the body is an unknown
/// field, 422). A protocol that could never be planned is refused, each
/// impossible field named.
///
/// **Roles:** admin.
#[utoipa::path(
    tag = "courses",
    params(("code" = String, Path, description = "e.g. `pain-5-day`")),
    request_body(content = ProtocolParameters, example = json!(change_example())),
    responses(
        (status = 200, description = "The protocol after the change", body = Protocol),
        CommonErrors, BodyErrors, NotFound, ValidationFailed,
    )
)]
#[put("/protocols/{code}")]
pub async fn update_protocol(
    ctx: Ctx<AdminOnly>,
    code: Path<Code>,
    body: Json<ProtocolParameters>,
) -> Answer {
    let protocol = protocol::revise(code.as_str(), body.0, &ctx.calendar, ctx.clock.now())?;
    let (now, precondition) = (ctx.now(), ctx.precondition());
    ctx.write(
        move |tx| {
            let current = store::hold(tx, &protocol.code)?;
            precondition.check(|| current)?;
            store::replace(tx, &protocol, now)
        },
        |_, saved| Reply::ok(&saved),
    )
    .await
}
