//! The parts of the contract that are not routes: document info, the bearer
//! scheme, tags, and the documented error responses handlers list.

use std::collections::BTreeMap;

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, Ref, RefOr};
use utoipa::{IntoResponses, Modify};

use super::error::{Problem, PROBLEM_JSON};

/// The name of the bearer security scheme handlers refer to.
pub const BEARER: &str = "bearer";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "infusion-api",
        description = "Intake and scheduling for an outpatient ketamine infusion clinic: \
patients, referrals, contraindication screening, readiness, protocol courses and their \
appointments.\n\nEvery `/v1` operation needs `Authorization: Bearer <JWT>` (HS256, with \
`sub`, `role`, `iss`, `aud`, `exp`). In development, `make run` prints an admin token: \
paste it into **Authorize**.\n\nErrors are `application/problem+json` (RFC 9457) with a \
stable `code`.",
        license(name = "Proprietary")
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem)),
    tags(
        (name = "operations", description = "Liveness and readiness"),
        (name = "patients", description = "Patients and what they are treated for"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT signed with HS256; `infusion-api token --role ROLE` prints one.",
                    ))
                    .build(),
            ),
        );
    }
}

fn problem_response(
    status: u16,
    code: &str,
    description: &str,
    detail: &str,
) -> BTreeMap<String, RefOr<Response>> {
    let example = serde_json::json!({
        "type": format!("urn:problem:infusion-api:{code}"),
        "title": description,
        "status": status,
        "detail": detail,
        "code": code,
    });
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .example(Some(example))
        .build();
    let response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, content)
        .build();
    BTreeMap::from([(status.to_string(), RefOr::T(response))])
}

/// Declares a documented error response: a unit struct usable in
/// `#[utoipa::path(responses(...))]`.
macro_rules! problem_responses {
    ($($name:ident => $status:literal, $code:literal, $description:literal, $detail:literal;)*) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    problem_response($status, $code, $description, $detail)
                }
            }
        )*
    };
}

problem_responses! {
    MalformedRequest => 400, "malformed_request", "The body is not valid JSON", "the body is not valid JSON: EOF while parsing an object";
    Unauthorized => 401, "unauthorized", "Missing, malformed, expired or invalid bearer token", "the token has expired";
    Forbidden => 403, "forbidden", "The caller's role may not do this", "your role may not do this";
    NotFound => 404, "not_found", "No such resource (or not yours to see)", "patient not found";
    PayloadTooLarge => 413, "payload_too_large", "The body is larger than the limit", "the body must be at most 65536 bytes";
    UnsupportedMediaType => 415, "unsupported_media_type", "The body is not sent as JSON", "send the body as JSON with `Content-Type: application/json`";
    ValidationFailed => 422, "validation_failed", "A field or parameter breaks a rule; `errors` lists each", "`date_of_birth` must be in the past";
    ServiceUnavailable => 503, "unavailable", "The database is not reachable", "the database is not reachable";
    InternalError => 500, "internal_error", "An unexpected error, logged under the response's x-request-id", "something went wrong on our side; the x-request-id header identifies it";
}

/// The answers any operation that reaches the database may give: 500 and 503.
pub struct ServerErrors;

impl IntoResponses for ServerErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = InternalError::responses();
        responses.extend(ServiceUnavailable::responses());
        responses
    }
}
