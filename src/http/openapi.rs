//! The parts of the contract that are not routes: document info, the
//! server, the bearer scheme, tags, the documented error responses handlers
//! list, and [`complete`], which finishes the document the routes made.

use std::collections::BTreeMap;

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, Ref, RefOr, Required};
use utoipa::{IntoResponses, Modify};

use chrono::NaiveDate;
use serde_json::json;

use crate::domain::calendar::Calendar;

use actix_web::ResponseError as _;

use super::error::{ApiError, Problem, PROBLEM_JSON};
use super::idempotency::IN_FLIGHT_RETRY_AFTER;

/// The name of the bearer security scheme handlers refer to.
pub const BEARER: &str = "bearer";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "infusion-api",
        description = "Intake and scheduling for an outpatient ketamine infusion clinic: \
patients, referrals, contraindication screening, readiness, protocol courses and their \
appointments.\n\nEvery `/v1` operation needs `Authorization: Bearer <JWT>` (HS256, with \
`sub`, `role`, `iss`, `aud`, `exp` and `iat`; see the `bearer` scheme); `/healthz` and `/readyz` need none. In development, `make run` prints an admin token: \
paste it into **Authorize**.\n\nErrors are `application/problem+json` (RFC 9457) with a \
stable `code`."
    ),
    // Relative: the API is wherever this document is served from, so Swagger
    // UI and generated clients call the host they read it on.
    servers((url = "/", description = "The server this document is served from")),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(Problem)),
    tags(
        (name = "operations", description = "Liveness and readiness"),
        (name = "patients", description = "Patients and what they are treated for"),
        (name = "intake", description = "Referrals, attestations, screenings, prescriber consults and readiness"),
        (name = "rooms", description = "Private treatment rooms, one recliner each"),
        (name = "closures", description = "Dates the clinic is closed"),
        (name = "availability", description = "Free capacity per clinic day and session"),
        (name = "appointments", description = "Booking, rescheduling, check-in, completion"),
        (name = "courses", description = "Protocols, and whole series of infusions planned and booked at once"),
        (name = "billing", description = "The clinic's billing profile, clinicians, the fee schedule, charges, payments, balances and superbills"),
        (name = "audit", description = "Who read or changed what: the audit trail and each patient's access log"),
        (name = "webhooks", description = "Endpoints that receive the change feed's events, signed (Standard Webhooks), at least once"),
        (name = "events", description = "The change feed: what changed, in an order a reader follows without missing anything"),
        (name = "smart", description = "SMART Backend Services: the token endpoint, its discovery document and the keys that verify its tokens"),
        (name = "clients", description = "Backend clients (EHR systems) that get tokens from the token endpoint"),
        (name = "fhir", description = "FHIR R4 (4.0.1) at /fhir/R4, read and search, as application/fhir+json: Patient, Appointment, Schedule, Slot, Location, ServiceRequest, Observation; errors are OperationOutcomes"),
    )
)]
pub struct ApiDoc;

/// The document the routes describe, finished: the [links](super::links)
/// between operations added; the empty licence Cargo's metadata gives
/// removed (the code states none); and schemas no operation reaches
/// dropped, so that every component is one a client meets.
pub fn complete(mut api: OpenApi) -> OpenApi {
    super::links::add(&mut api);
    event_enums(&mut api);
    api.info.license = None;
    drop_unreached_schemas(&mut api);
    api.webhooks = Some(webhooks());
    if let Some(components) = api.components.as_mut() {
        use utoipa::PartialSchema;
        components
            .schemas
            .insert("WebhookPayload".into(), super::webhooks::WebhookPayload::schema());
        components.schemas.insert("WebhookData".into(), super::webhooks::WebhookData::schema());
        // What FHIR's errors are, referred to by `FhirErrors`.
        components
            .schemas
            .insert("OperationOutcome".into(), super::fhir::OperationOutcome::schema());
    }
    retries_and_versions(api)
}

/// States the event types and resource types the `Event` schema's fields
/// take, from `domain::events`' one table.
fn event_enums(api: &mut OpenApi) {
    let Some(components) = api.components.as_mut() else { return };
    let enumerate = |values: Vec<&str>| Some(values.into_iter().map(|v| json!(v)).collect());
    if let Some(RefOr::T(Schema::Object(event))) = components.schemas.get_mut("Event") {
        let values = [
            ("type", crate::domain::events::types()),
            ("resource_type", crate::domain::events::resource_types()),
        ];
        for (field, values) in values {
            if let Some(RefOr::T(Schema::Object(property))) = event.properties.get_mut(field) {
                property.enum_values = enumerate(values);
            }
        }
    }
    // The event types an endpoint takes.
    for name in ["CreateEndpoint", "UpdateEndpoint"] {
        let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(name) else {
            continue;
        };
        let Some(RefOr::T(Schema::Array(list))) = body.properties.get_mut("event_types") else {
            continue;
        };
        if let utoipa::openapi::schema::ArrayItems::RefOrSchema(items) = &mut list.items {
            if let RefOr::T(Schema::Object(item)) = items.as_mut() {
                item.enum_values = enumerate(crate::domain::events::types());
            }
        }
    }
}

/// OpenAPI 3.1 `webhooks`: what an endpoint receives, one entry per event
/// type, each with the Standard Webhooks headers and the payload's schema.
fn webhooks() -> utoipa::openapi::Paths {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    use utoipa::openapi::request_body::RequestBodyBuilder;
    let header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(description))
            .build()
    };
    let mut paths = utoipa::openapi::Paths::new();
    let table = crate::domain::events::EVENT_TYPES;
    for (_, _, event_type, resource) in table {
        if paths.paths.contains_key(*event_type) {
            continue;
        }
        let written_by: Vec<String> = table
            .iter()
            .filter(|(_, _, t, _)| t == event_type)
            .map(|(operation, _, _, _)| format!("`{operation}`"))
            .collect();
        let body = RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("WebhookPayload"))).build(),
            )
            .build();
        let received = ResponseBuilder::new()
            .description("Received: any 2xx ends the delivery; anything else, or no answer within 5 s, is tried again")
            .build();
        let described = format!(
            "Sent to the endpoints that take `{event_type}`, written by {}: `data` names the {resource} (`resource_type` `{resource}`) and its patient. Verify `webhook-signature` with the endpoint's secret (Standard Webhooks), and deduplicate by `webhook-id`.",
            written_by.join(", ")
        );
        let delivery = OperationBuilder::new()
            .summary(Some(format!("`{event_type}`")))
            .description(Some(described))
            .operation_id(Some(format!("webhook_{}", event_type.replace('.', "_"))))
            .tag("webhooks")
            .parameter(header("webhook-id", "The event's id: the same on every attempt"))
            .parameter(header("webhook-timestamp", "The attempt's time, Unix seconds"))
            .parameter(header("webhook-signature", "`v1,` and the base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the secret's part after `whsec_`, base64-decoded"))
            .request_body(Some(body))
            .securities(Some(Vec::<utoipa::openapi::security::SecurityRequirement>::new()))
            .response("2XX", received)
            .build();
        paths.add_path_operation(*event_type, vec![HttpMethod::Post], delivery);
    }
    paths
}

/// The operations that honour `If-Match`: the partial updates, the protocol
/// replacement and the actions on a record.
pub const IF_MATCH_OPERATIONS: &[&str] = &[
    "update_patient",
    "update_protocol",
    "update_room",
    "update_clinician",
    "cancel_appointment",
    "reschedule_appointment",
    "check_in_appointment",
    "complete_appointment",
    "no_show_appointment",
    "verify_referral",
    "reject_referral",
    "cancel_course",
    "delete_closure",
];

/// Documents what `http::idempotency` and `http::conditional` add to every
/// `/v1` operation: `Idempotency-Key` on writes with the answers it may
/// give, `ETag` on successful answers, `If-None-Match` and 304 on reads,
/// `If-Match` and 412 on [`IF_MATCH_OPERATIONS`].
fn retries_and_versions(mut api: OpenApi) -> OpenApi {
    let text = || ObjectBuilder::new().schema_type(Type::String);
    let etag = || {
        RefOr::T(
            HeaderBuilder::new()
                .schema(Some(text()))
                .description(Some("The version of this answer's content as this caller sees it (strong, RFC 9110 section 8.8.3): send it back in `If-None-Match` to read only a change; the tag of one record (its read, or a write's answer about it) in `If-Match` to change only that version"))
                .build(),
        )
    };
    let replayed = || {
        RefOr::T(
            HeaderBuilder::new()
                .schema(Some(text().enum_values(Some(["true"]))))
                .description(Some("`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`"))
                .build(),
        )
    };
    let parameter = |name: &str, schema: ObjectBuilder, description: &str| {
        RefOr::T(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .schema(Some(schema))
                .description(Some(description))
                .build(),
        )
    };
    let key = || {
        parameter(
            "Idempotency-Key",
            text()
                .min_length(Some(1))
                .max_length(Some(super::idempotency::MAX_KEY_LENGTH + 2))
                .pattern(Some(super::idempotency::KEY_PATTERN)),
            "A key of the client's choosing (a UUID, say) that makes a retry safe (draft-ietf-httpapi-idempotency-key-header): the first answer is kept for `IDEMPOTENCY_KEY_TTL_HOURS` (24) per caller, and a repeat is answered with it, `Idempotent-Replayed: true`, changing nothing. 1 to 255 printable ASCII characters, bare or as a quoted string. An error is not kept: a retry after one runs again.",
        )
    };
    // Any text: a field that lists no entity tag matches no version (RFC
    // 9110 asks a server to evaluate the condition, not to refuse it).
    let tags = text;
    let if_none_match = || {
        parameter(
            "If-None-Match",
            tags(),
            "The `ETag` of the version the client holds: 304 without a body while it is current",
        )
    };
    let if_match = || {
        parameter(
            "If-Match",
            tags(),
            "The `ETag` of the version the change is meant for (or `*`), from the record's read or the last write's answer about it: 412 `precondition_failed`, changing nothing, when the record has changed since",
        )
    };
    for (path, item) in api.paths.paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        let operations = [
            (true, &mut item.get),
            (false, &mut item.post),
            (false, &mut item.put),
            (false, &mut item.patch),
            (false, &mut item.delete),
        ];
        for (reads, operation) in operations {
            let Some(operation) = operation else { continue };
            let id = operation.operation_id.clone().unwrap_or_default();
            let keyed = !reads && !super::idempotency::DRY_RUNS.contains(&id.as_str());
            let conditional = IF_MATCH_OPERATIONS.contains(&id.as_str());
            let parameters = operation.parameters.get_or_insert_with(Vec::new);
            if reads {
                parameters.push(if_none_match());
            }
            if keyed {
                parameters.push(key());
            }
            if conditional {
                parameters.push(if_match());
            }
            let responses = &mut operation.responses.responses;
            for (status, response) in responses.iter_mut() {
                let RefOr::T(response) = response else { continue };
                if !status.starts_with('2') {
                    continue;
                }
                if status != "204" {
                    response.headers.insert("ETag".into(), etag());
                }
                if keyed {
                    response.headers.insert("Idempotent-Replayed".into(), replayed());
                }
            }
            if reads {
                let mut not_modified = ResponseBuilder::new()
                    .description("Not Modified: the `If-None-Match` version is current")
                    .build();
                not_modified.headers.insert("ETag".into(), etag());
                responses.insert("304".into(), RefOr::T(not_modified));
            }
            let mut errors = Vec::new();
            if keyed {
                errors.extend([
                    (ApiError::InvalidIdempotencyKey, "The `Idempotency-Key` is not a key"),
                    (
                        ApiError::IdempotencyKeyInFlight { retry_after: IN_FLIGHT_RETRY_AFTER },
                        "A request with this `Idempotency-Key` is still being answered (`Retry-After`)",
                    ),
                    (
                        ApiError::IdempotencyKeyReused,
                        "The `Idempotency-Key` was sent with another request",
                    ),
                ]);
            }
            if conditional {
                errors.push((
                    ApiError::PreconditionFailed,
                    "The resource has changed since the version `If-Match` names",
                ));
            }
            for (error, description) in errors {
                add_problem(responses, &error, description);
            }
        }
    }
    api
}

/// Adds `error`'s problem document to the answers of its status: a new
/// answer described by `description`, or one more example of an answer
/// documented already.
fn add_problem(
    responses: &mut BTreeMap<String, RefOr<Response>>,
    error: &ApiError,
    description: &str,
) {
    let status = error.status_code().as_u16().to_string();
    let code = error.code();
    let value = serde_json::to_value(error.problem()).unwrap_or_default();
    let Some(RefOr::T(response)) = responses.get_mut(&status) else {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .example(Some(value))
            .build();
        let response =
            ResponseBuilder::new().description(description).content(PROBLEM_JSON, content).build();
        responses.insert(status, RefOr::T(response));
        return;
    };
    let also = lowercase_first(description);
    if !response.description.contains(&also) {
        response.description = format!("{}; or {also}", response.description);
    }
    let Some(RefOr::T(content)) = response.content.get_mut(PROBLEM_JSON) else {
        return;
    };
    if let Some(single) = content.example.take() {
        let first = single["code"].as_str().unwrap_or("example").to_owned();
        let example = ExampleBuilder::new().summary(first.clone()).value(Some(single)).build();
        content.examples.insert(first, RefOr::T(example));
    }
    let example = ExampleBuilder::new().summary(code).value(Some(value)).build();
    content.examples.insert(code.to_owned(), RefOr::T(example));
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

/// The day a request example's date should name, counted from today.
#[derive(Clone, Copy)]
enum ExampleDay {
    /// Today: a letter, attestation or consult dated today counts for the
    /// longest and is not in the future.
    Today,
    /// The next clinic day after today: no session of it has begun, and it
    /// is within the booking horizon.
    NextClinicDay,
    /// The first clinic day four weeks ahead: a closure that is not today.
    FourWeeksAhead,
}

/// The request examples whose date only makes sense relative to today:
/// operationId, the body's field, and the day it should name.
const DATED_EXAMPLES: &[(&str, &str, ExampleDay)] = &[
    ("book_appointment", "date", ExampleDay::NextClinicDay),
    ("reschedule_appointment", "date", ExampleDay::NextClinicDay),
    ("plan_course", "earliest_start", ExampleDay::NextClinicDay),
    ("book_course", "earliest_start", ExampleDay::NextClinicDay),
    ("create_closure", "date", ExampleDay::FourWeeksAhead),
    ("create_referral", "received_on", ExampleDay::Today),
    ("create_treatment_attestation", "attested_on", ExampleDay::Today),
    ("create_prescriber_consult", "consulted_on", ExampleDay::Today),
];

/// The document as served on `today`: the request examples of
/// [`DATED_EXAMPLES`] name dates counted from today on `calendar`, so that
/// Swagger UI's "Try it out" sends a date the server takes, not one that
/// has passed since the code was written. The committed document keeps the
/// examples as written.
pub fn dated(mut api: OpenApi, today: NaiveDate, calendar: &Calendar) -> OpenApi {
    let next_clinic_day = |from: NaiveDate| {
        from.iter_days().skip(1).take(14).find(|d| calendar.is_clinic_day(*d)).unwrap_or(from)
    };
    let day = |which: ExampleDay| match which {
        ExampleDay::Today => today,
        ExampleDay::NextClinicDay => next_clinic_day(today),
        ExampleDay::FourWeeksAhead => next_clinic_day(today + chrono::Days::new(27)),
    };
    let written = |schema: &RefOr<Schema>| -> Option<serde_json::Value> {
        let schema = match schema {
            RefOr::Ref(target) => api
                .components
                .as_ref()?
                .schemas
                .get(target.ref_location.trim_start_matches("#/components/schemas/"))?,
            inline => inline,
        };
        match schema {
            RefOr::T(Schema::Object(object)) => {
                object.example.clone().or_else(|| object.examples.first().cloned())
            }
            RefOr::T(Schema::AllOf(all)) => {
                all.example.clone().or_else(|| all.examples.first().cloned())
            }
            _ => None,
        }
    };
    let mut examples = BTreeMap::new();
    for (path, item) in &api.paths.paths {
        for operation in [&item.post, &item.put, &item.patch].into_iter().flatten() {
            let id = operation.operation_id.as_deref().unwrap_or_default();
            let Some(RefOr::T(body)) = &operation.request_body else { continue };
            let Some(RefOr::T(content)) = body.content.get("application/json") else { continue };
            let example =
                content.example.clone().or_else(|| content.schema.as_ref().and_then(written));
            for (_, field, which) in DATED_EXAMPLES.iter().filter(|(op, _, _)| *op == id) {
                if let Some(serde_json::Value::Object(mut fields)) = example.clone() {
                    fields.insert((*field).to_owned(), day(*which).to_string().into());
                    examples
                        .insert(path.clone(), (id.to_owned(), serde_json::Value::Object(fields)));
                }
            }
        }
    }
    for (path, (id, example)) in examples {
        let Some(item) = api.paths.paths.get_mut(&path) else { continue };
        for operation in [&mut item.post, &mut item.put, &mut item.patch].into_iter().flatten() {
            if operation.operation_id.as_deref() != Some(id.as_str()) {
                continue;
            }
            if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
                let Some(RefOr::T(content)) = body.content.get_mut("application/json") else {
                    continue;
                };
                content.example = Some(example.clone());
            }
        }
    }
    api
}

/// Removes the component schemas no `$ref` from the paths reaches, directly
/// or through other components (utoipa registers a generic's argument, such
/// as the `T` of `Page<T>`, even where it inlines it).
fn drop_unreached_schemas(api: &mut OpenApi) {
    let Some(components) = api.components.as_mut() else { return };
    let refs_in = |value: serde_json::Value| {
        let mut found = Vec::new();
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, child) in map {
                        match (key.as_str(), child) {
                            ("$ref", serde_json::Value::String(target)) => found.push(target),
                            (_, child) => stack.push(child),
                        }
                    }
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        found
    };
    let mut pending = refs_in(serde_json::to_value(&api.paths).unwrap_or_default());
    let mut reached = std::collections::BTreeSet::new();
    while let Some(target) = pending.pop() {
        let Some(name) = target.strip_prefix("#/components/schemas/") else { continue };
        if reached.insert(name.to_owned()) {
            if let Some(schema) = components.schemas.get(name) {
                pending.extend(refs_in(serde_json::to_value(schema).unwrap_or_default()));
            }
        }
    }
    components.schemas.retain(|name, _| reached.contains(name));
}

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
                        "A JWT (RFC 7519) signed with HS256, any other algorithm refused. \
Required claims: `sub` (a staff member or system; a patient token's is the patient's id), \
`role` (`admin`, `clinician`, `scheduler`, `integration` or `patient`), `iss` (a string, \
the server's `JWT_ISSUER`), `aud` (a string or an array of strings naming the server's \
`JWT_AUDIENCE`), `exp` and `iat` (whole seconds since the epoch). `nbf` is honoured when \
present; `exp`, `nbf` and `iat` allow 30 seconds of clock skew. `iat` may not be in the \
future, and `exp` - `iat` may not exceed `JWT_MAX_LIFETIME_MINUTES` (12 hours by \
default). The header's `typ`, if sent, is `JWT` or `at+jwt`; a `crit` header is refused. \
`infusion-api token --role ROLE` prints a token.",
                    ))
                    .build(),
            ),
        );
    }
}

fn problem_response(
    status: u16,
    description: &str,
    examples: &[(&str, &str, serde_json::Value)],
) -> BTreeMap<String, RefOr<Response>> {
    let example = |code: &str, detail: &str, extra: &serde_json::Value| {
        let mut body = serde_json::json!({
            "type": format!("urn:problem:infusion-api:{code}"),
            "title": description,
            "status": status,
            "detail": detail,
            "code": code,
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    };
    let mut content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem")));
    content = match examples {
        [(code, detail, extra)] => content.example(Some(example(code, detail, extra))),
        many => content.examples_from_iter(many.iter().map(|(code, detail, extra)| {
            (
                code.to_string(),
                ExampleBuilder::new()
                    .summary(code.to_string())
                    .value(Some(example(code, detail, extra)))
                    .build(),
            )
        })),
    };
    let response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, content.build())
        .build();
    BTreeMap::from([(status.to_string(), RefOr::T(response))])
}

/// Declares a documented error response: a unit struct usable in
/// `#[utoipa::path(responses(...))]`, with one example per code, and the
/// problem's extra members where it has some.
macro_rules! problem_responses {
    ($($name:ident => $status:literal, $description:literal, [$(($code:literal, $detail:literal $(, $($extra:tt)+)?)),+ $(,)?];)*) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    let examples = [$(($code, $detail, serde_json::json!({$($($extra)+)?}))),+];
                    problem_response($status, $description, &examples)
                }
            }
        )*
    };
}

problem_responses! {
    MalformedRequest => 400, "The body is not valid JSON", [("malformed_request", "the body is not valid JSON: EOF while parsing an object")];
    Unauthorized => 401, "Missing, malformed, expired or invalid bearer token", [("unauthorized", "the token has expired")];
    Forbidden => 403, "The caller's role may not do this, or its token's scopes do not allow it (`WWW-Authenticate` names the scope needed)", [
        ("forbidden", "your role may not do this"),
        ("insufficient_scope", "this needs the scope `system/Patient.r`, which the token does not carry"),
    ];
    NotFound => 404, "No such resource (or not yours to see)", [("not_found", "patient not found")];
    Conflict => 409, "Conflicts with existing records, which `appointment_ids` names", [("conflict", "the room holds 2 scheduled appointment(s); reschedule or cancel them first")];
    IdentifierConflict => 409, "Another patient holds one of the identifiers: `existing_patient_id` names it", [
        ("conflict", "the identifier `urn:oid:2.16.840.1.113883.3.4.5|MRN-004211` belongs to patient 019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b",
            "existing_patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b"),
    ];
    BookingConflict => 409, "The slot or the patient's day is taken, or the patient is not ready (`items` lists what is open)", [
        ("slot_full", "every room is taken in that session"),
        ("patient_already_booked_that_day", "the patient already has an appointment on 2026-12-14"),
        ("not_ready", "the patient is not ready for booking: screening", "items": [
            {"code": "screening", "status": "open", "blocking": true, "detail": "no screening recorded"}]),
    ];
    CourseConflict => 409, "The patient is not ready (`items`), already has a course scheduled or in progress (`course_id`), or no whole series fits (`next_start` gives the next start that would)", [
        ("not_ready", "the patient is not ready for booking: screening", "items": [
            {"code": "screening", "status": "open", "blocking": true, "detail": "no screening recorded"}]),
        ("no_capacity_for_series", "the series does not fit as asked; the next start that fits is 2026-12-14",
            "next_start": "2026-12-14"),
        ("course_already_active", "the patient's course 019ac700-0a1b-7c00-8d22-0123456789ab is scheduled or in progress: one course at a time; cancel it or let it finish first",
            "course_id": "019ac700-0a1b-7c00-8d22-0123456789ab"),
    ];
    CheckInConflict => 409, "Not possible in the appointment's state or on this date, or the latest screening is ineligible or the lamotrigine consult is open (`items`)", [
        ("invalid_transition", "check-in is only possible on the appointment's date, 2026-12-14"),
        ("not_ready", "the patient is not ready for check-in: lamotrigine_prescriber_consult", "items": [
            {"code": "lamotrigine_prescriber_consult", "status": "open", "blocking": false,
             "detail": "lamotrigine listed in the screening of 2026-11-27: consult the prescriber before the first infusion"}]),
    ];
    TransitionConflict => 409, "Not possible in the appointment's state or at this time", [
        ("invalid_transition", "complete is not possible for a scheduled appointment"),
    ];
    CompletionConflict => 409, "Not possible in the appointment's state, or the fee schedule does not price a code the infusion bills", [
        ("invalid_transition", "complete is not possible for a scheduled appointment"),
        ("fee_schedule_incomplete", "the fee schedule has no price for 96366: an admin sets it with PUT /v1/billing/fees/{code}"),
    ];
    ChargeConflict => 409, "The fee schedule does not price the code", [
        ("fee_schedule_incomplete", "the fee schedule has no price for 96365: an admin sets it with PUT /v1/billing/fees/{code}"),
    ];
    VoidConflict => 409, "Voided already", [("already_voided", "the charge was voided already, by clinician:dr-grey")];
    ClinicianConflict => 409, "Another clinician has this NPI", [("conflict", "a clinician with NPI 1234567893 is already on record")];
    SuperbillConflict => 409, "The clinic's billing profile is not set up", [
        ("billing_profile_missing", "the clinic's billing profile is not set up: an admin sets it with PUT /v1/billing/profile"),
    ];
    NotAcceptable => 406, "None of the media types `Accept` names is offered", [
        ("not_acceptable", "this resource is offered as application/json or application/pdf"),
    ];
    RescheduleConflict => 409, "The new slot is taken, the appointment cannot move, or the latest screening found a contraindication (`items`)", [
        ("slot_full", "every room is taken in that session"),
        ("patient_already_booked_that_day", "the patient already has an appointment on 2026-12-14"),
        ("invalid_transition", "reschedule is not possible for a cancelled appointment"),
        ("not_ready", "the patient is not ready for rescheduling: screening", "items": [
            {"code": "screening", "status": "open", "blocking": true,
             "detail": "the latest screening (2026-12-01) is ineligible; a clinician can see why"}]),
    ];
    RequestTimeout => 408, "The body did not arrive whole in time; the connection is closed", [("request_timeout", "the whole body must arrive within 10000 ms")];
    PayloadTooLarge => 413, "The body is larger than the limit", [("payload_too_large", "the body must be at most 65536 bytes")];
    UnsupportedMediaType => 415, "The body is not sent as JSON", [("unsupported_media_type", "send the body as JSON with `Content-Type: application/json`")];
    ValidationFailed => 422, "A field or parameter breaks a rule; `errors` lists each", [("validation_failed", "`date_of_birth` must be in the past")];
    SlotRules => 422, "A field breaks a rule, or the calendar has no such slot", [
        ("validation_failed", "`session` unknown variant `evening`, expected `morning` or `afternoon`"),
        ("not_a_clinic_day", "2026-12-19 (Saturday) is not a clinic day"),
        ("clinic_closed", "the clinic is closed on 2026-12-24"),
        ("in_the_past", "that session has already begun or is in the past"),
        ("outside_horizon", "bookings are taken up to 2027-05-31, the end of the booking horizon"),
    ];
    ServiceUnavailable => 503, "The database is not reachable", [("unavailable", "the database is not reachable")];
    InternalError => 500, "An unexpected error, logged under the response's x-request-id", [("internal_error", "something went wrong on our side; the x-request-id header identifies it")];
}

/// Declares a documented set of error responses, made of others.
macro_rules! response_sets {
    ($($(#[$doc:meta])* $name:ident = [$($part:ident),+];)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    let mut responses = BTreeMap::new();
                    $(responses.extend($part::responses());)+
                    responses
                }
            }
        )*
    };
}

/// 429: the caller's requests per minute are used up, or its address
/// failed authentication too often; with `Retry-After` and the IETF
/// `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers-11).
pub struct TooManyRequests;

impl IntoResponses for TooManyRequests {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = problem_response(
            429,
            "Too many requests from this caller, or too many failed authentications from this address",
            &[
                ("too_many_requests", "this caller's requests per minute are used up; retry in 12 s", json!({})),
                (
                    "too_many_failed_authentications",
                    "too many failed authentications from this address; retry in 41 s",
                    json!({}),
                ),
            ],
        );
        let header = |schema: ObjectBuilder, description: &str| {
            RefOr::T(
                HeaderBuilder::new().schema(Some(schema)).description(Some(description)).build(),
            )
        };
        let text =
            |example: &str| ObjectBuilder::new().schema_type(Type::String).examples([example]);
        if let Some(RefOr::T(response)) = responses.get_mut("429") {
            response.headers.extend([
                (
                    "Retry-After".to_owned(),
                    header(
                        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).examples([12]),
                        "Seconds to wait before the next request (RFC 9110, section 10.2.3)",
                    ),
                ),
                (
                    "RateLimit-Policy".to_owned(),
                    header(
                        text("\"caller\";q=1200;w=60"),
                        "With `too_many_requests`: the caller's quota `q` per window `w` in seconds (draft-ietf-httpapi-ratelimit-headers-11). Counted answers carry it too.",
                    ),
                ),
                (
                    "RateLimit".to_owned(),
                    header(
                        text("\"caller\";r=0;t=12"),
                        "With `too_many_requests`: what is left of the quota, `r`, and the seconds until the window ends, `t` (draft-ietf-httpapi-ratelimit-headers-11). Counted answers carry it too.",
                    ),
                ),
            ]);
        }
        responses
    }
}

response_sets! {
    /// The answers every `/v1` operation may give: 401 and 403 (its token
    /// and role), 429 (the rate limits), 500 and 503 (the database).
    CommonErrors = [Unauthorized, Forbidden, TooManyRequests, InternalError, ServiceUnavailable];
    /// The answers every operation that takes a body may give about the
    /// body itself: 400, 408, 413 and 415.
    BodyErrors = [MalformedRequest, RequestTimeout, PayloadTooLarge, UnsupportedMediaType];
}
