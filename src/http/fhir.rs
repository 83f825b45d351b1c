//! FHIR R4 at `/fhir/R4`: the clinic's patients, appointments, sessions
//! (Schedule and Slot), rooms (Location), referrals (ServiceRequest) and
//! scores (Observation), read and searched as `application/fhir+json`.
//!
//! Each handler reads through the same store functions as `/v1`, with the
//! same tokens, roles, scopes and audit trail; `domain::fhir` turns the
//! records into resources. Errors are OperationOutcomes: [`outcomes`]
//! rewrites every problem answered under `/fhir/` (a 422 becomes FHIR's
//! 400).

use actix_web::body::{self, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Path;
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

use crate::domain::access::{self, Role};
use crate::domain::appointment::Appointment;
use crate::domain::calendar::{self, SessionAvailability};
use crate::domain::identifier::IdentifierSearch;
use crate::domain::patient::Patient;
use crate::domain::referral::{effective_status, expires_on};
use crate::domain::{fhir, scopes};
use crate::store::appointments::Filter;
use crate::store::{appointments, intake, patients, rooms, Rows};

use super::auth::{AnyRole, Caller, Clinical, Ctx, Staff, StaffAndIntegration};
use super::error::ApiError;
use super::pagination::{DEFAULT_LIMIT, MAX_LIMIT};
use super::{Answer, AppState};

/// Where the facade is mounted.
pub const BASE_PATH: &str = "/fhir/R4";

/// A resource or Bundle, as FHIR R4 defines it (`resourceType` names
/// which): the contract names the type; FHIR's own schema holds the rest.
pub struct FhirResource;

impl utoipa::PartialSchema for FhirResource {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "A resource or Bundle, as FHIR R4 defines it (`resourceType` names which)",
            ))
            .property(
                "resourceType",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("`Patient`, `Bundle`, `CapabilityStatement`, …")),
            )
            .required("resourceType")
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .examples([serde_json::json!({"resourceType": "Patient",
                "id": "019ad100-0000-7000-8000-000000000001",
                "name": [{"use": "official", "family": "Rivera", "given": ["Ana"]}],
                "birthDate": "1984-03-09"})])
            .into()
    }
}

impl ToSchema for FhirResource {}

/// FHIR's OperationOutcome: what went wrong.
#[derive(ToSchema)]
#[schema(example = json!({"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "not-found", "diagnostics": "not_found: patient not found"}]}))]
#[allow(dead_code)]
pub struct OperationOutcome {
    /// `OperationOutcome`.
    #[schema(rename = "resourceType")]
    resource_type: String,
    /// One issue: `severity`, `code` (FHIR's issue type), `diagnostics`.
    issue: Vec<serde_json::Map<String, Value>>,
}

/// The answers a FHIR operation may give besides its resource: each an
/// OperationOutcome.
pub struct FhirErrors;

impl IntoResponses for FhirErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            (400, "A search parameter this server does not support (without `Prefer: handling=lenient`), or a value it cannot read"),
            (401, "No token, or one that is not valid"),
            (403, "The token's role or scopes do not reach this resource"),
            (404, "No such resource (a patient token reaches only its own)"),
            (429, "Too many requests from this caller"),
            (500, "An unexpected error, logged under the response's x-request-id"),
            (503, "The database is not reachable"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "OperationOutcome",
                ))))
                .example(Some(fhir::outcome("error", fhir::issue_type(status), description)))
                .build();
            let mut response = ResponseBuilder::new()
                .description(description)
                .content(fhir::CONTENT_TYPE, content)
                .build();
            // The rate limits' fields, as on /v1.
            if status == 429 {
                if let Some(RefOr::T(limited)) =
                    super::openapi::TooManyRequests::responses().remove("429")
                {
                    response.headers = limited.headers;
                }
            }
            (status.to_string(), RefOr::T(response))
        })
        .collect()
    }
}

/// A resource, answered as `application/fhir+json`.
fn resource(value: &Value) -> Answer {
    Ok(HttpResponse::Ok().content_type(fhir::CONTENT_TYPE).body(value.to_string()))
}

/// The facade's address as clients reach it: `PUBLIC_URL`, or the
/// request's own scheme and host.
fn base(req: &HttpRequest, state: &AppState) -> String {
    match &state.settings.public_url {
        Some(url) => format!("{}{BASE_PATH}", url.trim_end_matches('/')),
        None => {
            let info = req.connection_info();
            format!("{}://{}{BASE_PATH}", info.scheme(), info.host())
        }
    }
}

/// A search's query: its parameters in order, the page size and where the
/// page starts.
struct Search {
    params: Vec<(String, String)>,
    count: u32,
    page: Option<String>,
}

impl Search {
    /// The query of a search of `resource`: every parameter one it
    /// supports (unsupported ones are 400, or left out when the request
    /// prefers lenient handling), `_count` 1 to 200, `_format` JSON.
    fn parse(req: &HttpRequest, resource: &str) -> Result<Self, ApiError> {
        let mut params: Vec<(String, String)> =
            form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
        let prefer: Vec<&str> =
            req.headers().get_all("prefer").filter_map(|v| v.to_str().ok()).collect();
        let prefer = prefer.join(",");
        let unsupported: Vec<String> =
            fhir::unsupported(resource, params.iter().map(|(name, _)| name.as_str()))
                .into_iter()
                .map(str::to_owned)
                .collect();
        if let Some(name) = unsupported.first() {
            if !fhir::lenient(&prefer) {
                return Err(ApiError::field(
                    name,
                    format!("is not a search parameter of {resource} here (the CapabilityStatement lists those supported; `Prefer: handling=lenient` ignores others)"),
                ));
            }
            params.retain(|(name, _)| !unsupported.contains(name));
        }
        let mut search = Search { params, count: DEFAULT_LIMIT, page: None };
        if let Some(format) = search.one("_format")? {
            if !["json", "application/json", fhir::CONTENT_TYPE].contains(&format) {
                return Err(ApiError::field("_format", "must be `json`: only JSON is served"));
            }
        }
        if let Some(count) = search.one("_count")? {
            search.count =
                count.parse().ok().filter(|c| (1..=MAX_LIMIT).contains(c)).ok_or_else(|| {
                    ApiError::field("_count", format!("must be from 1 to {MAX_LIMIT}"))
                })?;
        }
        search.page = search.one("_page")?.map(str::to_owned);
        Ok(search)
    }

    /// The values of parameter `name`, each comma-separated list whole.
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.params.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value of `name`, which may be given once.
    fn one<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, ApiError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::field(name, "may be given once"));
        }
        Ok(first)
    }

    /// The id a reference parameter names (`Patient/{id}` or the id).
    fn reference(&self, name: &str, kind: &str) -> Result<Option<String>, ApiError> {
        self.one(name)?
            .map(|value| {
                fhir::referenced(value, kind)
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::field(name, format!("must reference a {kind}")))
            })
            .transpose()
    }

    /// The days the date parameter `name` admits, every value of it
    /// together.
    fn days(&self, name: &str) -> Result<fhir::Days, ApiError> {
        self.all(name).try_fold(fhir::Days::default(), |days, value| {
            days.narrow(value).map_err(|why| ApiError::field(name, why))
        })
    }

    /// The page's rows: the id after which it starts (`_page`), one more
    /// than the page to know if another follows.
    fn rows(&self) -> Result<Rows, ApiError> {
        if let Some(page) = &self.page {
            if uuid::Uuid::parse_str(page).is_err() {
                return Err(ApiError::field("_page", "is not a page this server gave"));
            }
        }
        Ok(Rows { after: self.page.clone(), limit: i64::from(self.count) + 1 })
    }

    /// The Bundle of `found` (one more than the page when another
    /// follows), with its `self` and `next` links; `key` gives the `_page`
    /// that follows an item.
    fn bundle<T>(
        &self,
        base: &str,
        resource: &str,
        mut found: Vec<T>,
        key: impl Fn(&T) -> String,
        to_resource: impl Fn(&T) -> Value,
    ) -> Value {
        let more = found.len() > self.count as usize;
        found.truncate(self.count as usize);
        let query = |page: Option<&str>| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (name, value) in self.params.iter().filter(|(name, _)| name != "_page") {
                query.append_pair(name, value);
            }
            if let Some(page) = page {
                query.append_pair("_page", page);
            }
            let query = query.finish();
            if query.is_empty() {
                format!("{base}/{resource}")
            } else {
                format!("{base}/{resource}?{query}")
            }
        };
        let next = if more { found.last().map(|last| query(Some(&key(last)))) } else { None };
        let entries = found.iter().map(to_resource).collect();
        fhir::searchset(base, &query(self.page.as_deref()), next.as_deref(), entries)
    }
}

/// A path id: a resource no id of ours could name is simply not found.
fn uuid_id(id: &str, what: &'static str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(id).map(|_| id.to_owned()).map_err(|_| ApiError::NotFound(what))
}

/// The patient a search is about: a patient token's own, whatever it
/// asked (another patient's finds nothing, as on `/v1`: 404).
fn compartment(
    ctx_role: Role,
    subject: &str,
    asked: Option<String>,
) -> Result<Option<String>, ApiError> {
    match (ctx_role, asked) {
        (Role::Patient, Some(other)) if other != subject => Err(ApiError::NotFound("patient")),
        (Role::Patient, _) => Ok(Some(subject.to_owned())),
        (_, asked) => Ok(asked),
    }
}

/// What this server can do: read and search of each resource type, the
/// search parameters each supports, and how to get a token. No token.
///
/// **Roles:** public (no token).
#[utoipa::path(tag = "fhir", security(),
    responses((status = 200, description = "The CapabilityStatement", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/metadata")]
pub async fn fhir_capabilities(state: web::Data<AppState>) -> Answer {
    let token = super::smart::token_endpoint(&state);
    resource(&fhir::capability_statement(state.now(), token.as_deref()))
}

/// A Patient.
///
/// **Roles:** admin, clinician, scheduler, integration, patient (its own).
#[utoipa::path(tag = "fhir", params(("id" = String, Path, description = "The patient's id")),
    responses((status = 200, description = "The Patient", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Patient/{id}")]
pub async fn fhir_read_patient(ctx: Ctx<AnyRole>, id: Path<String>) -> Answer {
    let id = uuid_id(&id, "patient")?;
    ctx.caller.require_own_patient(&id)?;
    let patient = ctx.read(move |conn| patients::find(conn, &id)).await?;
    resource(&fhir::patient(&patient))
}

/// Search patients: by `_id`, `identifier` (`system|value`), `family`,
/// `given` (how the name starts) and `birthdate`. A patient token finds
/// only itself.
///
/// **Roles:** admin, clinician, scheduler, integration, patient (itself).
#[utoipa::path(tag = "fhir", params(
        ("_id" = Option<String>, Query, description = "The patient's id"),
        ("identifier" = Option<String>, Query, description = "`system|value`"),
        ("family" = Option<String>, Query, description = "How the family name starts, case- and accent-insensitive in every alphabet (`mul` finds Müller; a letter Unicode does not decompose, such as Ł, is a letter of its own)"),
        ("given" = Option<String>, Query, description = "How the given name starts, case- and accent-insensitive in every alphabet (`emi` finds Émile)"),
        ("birthdate" = Option<Vec<String>>, Query, explode, description = "`[eq|ge|gt|le|lt]YYYY-MM-DD`"),
        ("_count" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)"),
        ("_page" = Option<String>, Query, description = "From a `next` link")),
    responses((status = 200, description = "A searchset Bundle of Patients", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Patient")]
pub async fn fhir_search_patient(ctx: Ctx<AnyRole>, req: HttpRequest) -> Answer {
    let search = Search::parse(&req, "Patient")?;
    let asked = search.one("_id")?.map(str::to_owned);
    let id = compartment(ctx.caller.role, &ctx.caller.subject, asked)?;
    let identifier = search
        .one("identifier")?
        .map(|i| IdentifierSearch::parse(i).map_err(|why| ApiError::field("identifier", why)))
        .transpose()?;
    let born = search.days("birthdate")?;
    let query = patients::Search {
        id,
        identifier,
        family: search.one("family")?.map(str::to_owned),
        given: search.one("given")?.map(str::to_owned),
        born_from: born.from,
        born_to: born.to,
        ..patients::Search::default()
    };
    let rows = search.rows()?;
    let found = if born.is_empty() {
        Vec::new()
    } else {
        ctx.read(move |conn| patients::search_page(conn, &query, &rows)).await?
    };
    let base = base(&req, &ctx);
    let bundle = search.bundle(&base, "Patient", found, |p: &Patient| p.id.clone(), fhir::patient);
    resource(&bundle)
}

/// An appointment's Appointment: its patient's indications are its reason,
/// shown to a caller that may read the patient
/// ([`scopes::sees_patient_details`]).
fn appointment_resource(
    state: &AppState,
    viewer: &Caller,
    a: &Appointment,
    p: Option<&Patient>,
) -> Value {
    let indications = p.map_or(&[][..], |p| p.details.indications.as_slice());
    let view = fhir::AppointmentView {
        appointment: a,
        start: a.starts_at.with_timezone(&state.calendar.zone()),
        end: a.ends_at(&state.calendar).with_timezone(&state.calendar.zone()),
        indications,
        shows_cancel_reason: !access::withheld_appointment_fields(viewer.role)
            .contains(&"cancel_reason"),
        shows_reason: scopes::sees_patient_details(viewer.scopes.as_ref()),
    };
    fhir::appointment(&view)
}

/// An Appointment: status, start and end, the patient and the room, the
/// reason (the patient's indications, to a token that may read the Patient:
/// `system/Patient.r` when it carries scopes), the course.
///
/// **Roles:** admin, clinician, scheduler, integration, patient (its own).
#[utoipa::path(tag = "fhir", params(("id" = String, Path, description = "The appointment's id")),
    responses((status = 200, description = "The Appointment", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Appointment/{id}")]
pub async fn fhir_read_appointment(ctx: Ctx<AnyRole>, id: Path<String>) -> Answer {
    let id = uuid_id(&id, "appointment")?;
    let (role, subject) = (ctx.caller.role, ctx.caller.subject.clone());
    // The patient is read for the reason only, when the caller sees it.
    let reason = scopes::sees_patient_details(ctx.caller.scopes.as_ref());
    let (appointment, patient) = ctx
        .read(move |conn| {
            let appointment = appointments::find(conn, &id)?;
            if role == Role::Patient && appointment.patient_id != subject {
                return Err(crate::store::StoreError::NotFound("appointment"));
            }
            let patient =
                if reason { Some(patients::find(conn, &appointment.patient_id)?) } else { None };
            Ok((appointment, patient))
        })
        .await?;
    resource(&appointment_resource(&ctx, &ctx.caller, &appointment, patient.as_ref()))
}

/// Search appointments: by `patient`, `date` (the day, with prefixes;
/// repeat for a range) and `status` (FHIR's codes, comma-separated). A
/// patient token finds only its own.
///
/// **Roles:** admin, clinician, scheduler, integration, patient (its own).
#[utoipa::path(tag = "fhir", params(
        ("patient" = Option<String>, Query, description = "`Patient/{id}` or the id"),
        ("date" = Option<Vec<String>>, Query, explode, description = "`[eq|ge|gt|le|lt]YYYY-MM-DD`"),
        ("status" = Option<String>, Query, description = "booked, checked-in (or arrived), fulfilled, cancelled, noshow; comma-separated"),
        ("_count" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)"),
        ("_page" = Option<String>, Query, description = "From a `next` link")),
    responses((status = 200, description = "A searchset Bundle of Appointments", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Appointment")]
pub async fn fhir_search_appointment(ctx: Ctx<AnyRole>, req: HttpRequest) -> Answer {
    let search = Search::parse(&req, "Appointment")?;
    let asked = search.reference("patient", "Patient")?;
    let patient_id = compartment(ctx.caller.role, &ctx.caller.subject, asked)?;
    let days = search.days("date")?;
    let mut statuses = Vec::new();
    let mut none = days.is_empty();
    if let Some(codes) = search.one("status")? {
        for code in codes.split(',') {
            let found = fhir::appointment_statuses(code).ok_or_else(|| {
                ApiError::field(
                    "status",
                    format!("`{code}` is not an appointment status of FHIR R4"),
                )
            })?;
            statuses.extend(found);
        }
        // Only codes no appointment of ours has: nothing matches.
        none |= statuses.is_empty();
    }
    let filter = Filter { patient_id, from: days.from, to: days.to, statuses, ..Filter::default() };
    let rows = search.rows()?;
    let found = if none {
        Vec::new()
    } else {
        // The owners are read for the reasons only, when the caller sees them.
        let reasons = scopes::sees_patient_details(ctx.caller.scopes.as_ref());
        ctx.read(move |conn| {
            let found = appointments::list(conn, &filter, &rows)?;
            let mut ids: Vec<String> = found.iter().map(|a| a.patient_id.clone()).collect();
            ids.sort();
            ids.dedup();
            let owners = if reasons { patients::find_all(conn, &ids)? } else { Vec::new() };
            Ok(found
                .into_iter()
                .map(|a| {
                    let owner = owners.iter().find(|p| p.id == a.patient_id).cloned();
                    (a, owner)
                })
                .collect())
        })
        .await?
    };
    let base = base(&req, &ctx);
    let bundle = search.bundle(
        &base,
        "Appointment",
        found,
        |(a, _): &(Appointment, Option<Patient>)| a.id.clone(),
        |(a, p)| appointment_resource(&ctx, &ctx.caller, a, p.as_ref()),
    );
    resource(&bundle)
}

/// The Schedule of the clinic's infusion rooms, to which every Slot
/// belongs.
///
/// **Roles:** admin, clinician, scheduler, integration.
#[utoipa::path(tag = "fhir", params(("id" = String, Path, description = "`infusion-rooms`")),
    responses((status = 200, description = "The Schedule", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Schedule/{id}")]
pub async fn fhir_read_schedule(ctx: Ctx<StaffAndIntegration>, id: Path<String>) -> Answer {
    if id.as_str() != fhir::SCHEDULE_ID {
        return Err(ApiError::NotFound("schedule"));
    }
    resource(&the_schedule(&ctx))
}

fn the_schedule(state: &AppState) -> Value {
    let today = state.today();
    fhir::schedule(today, state.calendar.horizon_end(today))
}

/// Search schedules: there is one, `infusion-rooms`.
///
/// **Roles:** admin, clinician, scheduler, integration.
#[utoipa::path(tag = "fhir", params(
        ("_id" = Option<String>, Query, description = "`infusion-rooms`"),
        ("_count" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)")),
    responses((status = 200, description = "A searchset Bundle of the Schedule", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Schedule")]
pub async fn fhir_search_schedule(ctx: Ctx<StaffAndIntegration>, req: HttpRequest) -> Answer {
    let search = Search::parse(&req, "Schedule")?;
    let found: Vec<Value> = match search.one("_id")? {
        Some(id) if id != fhir::SCHEDULE_ID => Vec::new(),
        _ if search.page.is_some() => Vec::new(),
        _ => vec![the_schedule(&ctx)],
    };
    let base = base(&req, &ctx);
    resource(&search.bundle(&base, "Schedule", found, |_| String::new(), |s| s.clone()))
}

/// The sessions of `days` (from today, four weeks by default), as
/// `/v1/availability` gives them.
async fn sessions(
    ctx: &Ctx<StaffAndIntegration>,
    days: fhir::Days,
) -> Result<Vec<SessionAvailability>, ApiError> {
    let range = calendar::availability_range(days.from, days.to, ctx.today()).map_err(|_| {
        let most = calendar::MAX_AVAILABILITY_DAYS;
        ApiError::field("start", format!("must span at most {most} days, the last after the first"))
    })?;
    let (from, to) = range;
    let occupancy = ctx.db(move |conn| appointments::occupancy(conn, from, to, None)).await?;
    Ok(calendar::availability(&ctx.calendar, &occupancy, range, None, ctx.clock.now()))
}

/// A Slot: a session of the clinic on a day (`YYYY-MM-DD-morning`), free
/// while a room is.
///
/// **Roles:** admin, clinician, scheduler, integration.
#[utoipa::path(tag = "fhir", params(("id" = String, Path, description = "`YYYY-MM-DD-morning` or `-afternoon`")),
    responses((status = 200, description = "The Slot", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Slot/{id}")]
pub async fn fhir_read_slot(ctx: Ctx<StaffAndIntegration>, id: Path<String>) -> Answer {
    let (date, session) = fhir::parse_slot_id(&id).ok_or(ApiError::NotFound("slot"))?;
    let day = fhir::Days { from: Some(date), to: Some(date) };
    let found = match sessions(&ctx, day).await {
        Ok(found) => found,
        // A day the calendar refuses (out of range) has no slot; a
        // database that is down stays a 503.
        Err(ApiError::Validation(_) | ApiError::Refused(_)) => {
            return Err(ApiError::NotFound("slot"))
        }
        Err(other) => return Err(other),
    };
    let slot = found.iter().find(|s| s.session == session).ok_or(ApiError::NotFound("slot"))?;
    resource(&fhir::slot(slot))
}

/// Search slots: by `schedule`, `start` (the day, with prefixes; from
/// today, four weeks, by default; the last at most 93 days after the first) and `status` (`free`,
/// `busy`). They agree with `/v1/availability`.
///
/// **Roles:** admin, clinician, scheduler, integration.
#[utoipa::path(tag = "fhir", params(
        ("schedule" = Option<String>, Query, description = "`Schedule/infusion-rooms`"),
        ("start" = Option<Vec<String>>, Query, explode, description = "`[eq|ge|gt|le|lt]YYYY-MM-DD`"),
        ("status" = Option<String>, Query, description = "`free` or `busy`"),
        ("_count" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)"),
        ("_page" = Option<String>, Query, description = "From a `next` link")),
    responses((status = 200, description = "A searchset Bundle of Slots", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Slot")]
pub async fn fhir_search_slot(ctx: Ctx<StaffAndIntegration>, req: HttpRequest) -> Answer {
    let search = Search::parse(&req, "Slot")?;
    let other_schedule =
        search.reference("schedule", "Schedule")?.is_some_and(|id| id != fhir::SCHEDULE_ID);
    let status = search.one("status")?.map(str::to_owned);
    if let Some(status) = &status {
        if !["free", "busy", "busy-unavailable", "busy-tentative", "entered-in-error"]
            .contains(&status.as_str())
        {
            return Err(ApiError::field("status", "must be a Slot status of FHIR R4"));
        }
    }
    let after = match &search.page {
        Some(page) => Some(
            fhir::parse_slot_id(page)
                .ok_or_else(|| ApiError::field("_page", "is not a page this server gave"))?,
        ),
        None => None,
    };
    let days = search.days("start")?;
    let found =
        if other_schedule || days.is_empty() { Vec::new() } else { sessions(&ctx, days).await? };
    let order = |s: &calendar::Session| matches!(s, calendar::Session::Afternoon);
    let found: Vec<SessionAvailability> = found
        .into_iter()
        .filter(|s| {
            after.is_none_or(|(d, session)| (s.date, order(&s.session)) > (d, order(&session)))
        })
        .filter(|s| status.as_deref().is_none_or(|status| fhir::slot_status(s) == status))
        .take(search.count as usize + 1)
        .collect();
    let base = base(&req, &ctx);
    let bundle =
        search.bundle(&base, "Slot", found, |s| fhir::slot_id(s.date, s.session), fhir::slot);
    resource(&bundle)
}

/// A Location: an infusion room.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "fhir", params(("id" = String, Path, description = "The room's id")),
    responses((status = 200, description = "The Location", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Location/{id}")]
pub async fn fhir_read_location(ctx: Ctx<Staff>, id: Path<String>) -> Answer {
    let id = uuid_id(&id, "room")?;
    let room = ctx.read(move |conn| rooms::find(conn, &id)).await?;
    resource(&fhir::location(&room))
}

/// Search locations: the clinic's rooms.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "fhir", params(
        ("_count" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)"),
        ("_page" = Option<String>, Query, description = "From a `next` link")),
    responses((status = 200, description = "A searchset Bundle of Locations", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Location")]
pub async fn fhir_search_location(ctx: Ctx<Staff>, req: HttpRequest) -> Answer {
    let search = Search::parse(&req, "Location")?;
    let rows = search.rows()?;
    let found = ctx.read(move |conn| rooms::list(conn, &rows)).await?;
    let base = base(&req, &ctx);
    let bundle = search.bundle(&base, "Location", found, |r| r.id.clone(), fhir::location);
    resource(&bundle)
}

/// A referral's ServiceRequest, with the status it shows today.
fn referral_resource(state: &AppState, r: &crate::domain::referral::Referral) -> Value {
    let days = state.policy.referral_valid_days;
    let shown = effective_status(r.status, r.received_on, state.today(), days);
    fhir::service_request(r, shown, expires_on(r.received_on, days))
}

/// A ServiceRequest: a referral letter, its referring provider a contained
/// Practitioner with the NPI.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "fhir", params(("id" = String, Path, description = "The referral's id")),
    responses((status = 200, description = "The ServiceRequest", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/ServiceRequest/{id}")]
pub async fn fhir_read_service_request(ctx: Ctx<Staff>, id: Path<String>) -> Answer {
    let id = uuid_id(&id, "referral")?;
    let referral = ctx.read(move |conn| intake::find_referral(conn, &id)).await?;
    resource(&referral_resource(&ctx, &referral))
}

/// Search service requests (referrals): by `patient`.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "fhir", params(
        ("patient" = Option<String>, Query, description = "`Patient/{id}` or the id"),
        ("_count" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)"),
        ("_page" = Option<String>, Query, description = "From a `next` link")),
    responses((status = 200, description = "A searchset Bundle of ServiceRequests", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/ServiceRequest")]
pub async fn fhir_search_service_request(ctx: Ctx<Staff>, req: HttpRequest) -> Answer {
    let search = Search::parse(&req, "ServiceRequest")?;
    let patient = search.reference("patient", "Patient")?;
    let rows = search.rows()?;
    let found =
        ctx.read(move |conn| intake::search_referrals(conn, patient.as_deref(), &rows)).await?;
    let base = base(&req, &ctx);
    let bundle = search.bundle(
        &base,
        "ServiceRequest",
        found,
        |r| r.id.clone(),
        |r| referral_resource(&ctx, r),
    );
    resource(&bundle)
}

/// An Observation: the pain before or after an infusion (LOINC 72514-3) or
/// the PHQ-9 total at its check-in (44261-6); its id is the appointment's
/// with `-pain-before`, `-pain-after` or `-phq9`.
///
/// **Roles:** admin, clinician.
#[utoipa::path(tag = "fhir", params(("id" = String, Path, description = "`{appointment id}-pain-before`, `-pain-after` or `-phq9`")),
    responses((status = 200, description = "The Observation", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Observation/{id}")]
pub async fn fhir_read_observation(ctx: Ctx<Clinical>, id: Path<String>) -> Answer {
    let id = id.into_inner();
    let (appointment_id, _) =
        fhir::parse_observation_id(&id).ok_or(ApiError::NotFound("observation"))?;
    let appointment_id = uuid_id(appointment_id, "observation")?;
    let appointment = ctx.read(move |conn| appointments::find(conn, &appointment_id)).await?;
    let observation = fhir::observations(&appointment)
        .into_iter()
        .find(|o| o["id"] == id.as_str())
        .ok_or(ApiError::NotFound("observation"))?;
    resource(&observation)
}

/// Search observations: by `patient` and `code` (LOINC 72514-3, pain;
/// 44261-6, PHQ-9).
///
/// **Roles:** admin, clinician.
#[utoipa::path(tag = "fhir", params(
        ("patient" = Option<String>, Query, description = "`Patient/{id}` or the id"),
        ("code" = Option<String>, Query, description = "`http://loinc.org|72514-3`, `|44261-6`, or the code alone; comma-separated"),
        ("_count" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)"),
        ("_page" = Option<String>, Query, description = "From a `next` link")),
    responses((status = 200, description = "A searchset Bundle of Observations", body = FhirResource,
        content_type = "application/fhir+json"), FhirErrors))]
#[get("/Observation")]
pub async fn fhir_search_observation(ctx: Ctx<Clinical>, req: HttpRequest) -> Answer {
    let search = Search::parse(&req, "Observation")?;
    let patient_id = search.reference("patient", "Patient")?;
    let code = search.one("code")?.map(str::to_owned);
    // A page starts after an observation: at its appointment, past it.
    let after = match &search.page {
        Some(page) => {
            let (appointment, _) = fhir::parse_observation_id(page)
                .filter(|(a, _)| uuid::Uuid::parse_str(a).is_ok())
                .ok_or_else(|| ApiError::field("_page", "is not a page this server gave"))?;
            Some((appointment.to_owned(), page.clone()))
        }
        None => None,
    };
    // The kinds of score the `code` asks for, found in the query (so that a
    // page holds as many as it can).
    let asked = |loinc: &str| code.as_deref().is_none_or(|c| fhir::code_matches(c, loinc));
    let scored =
        appointments::Scored { pain: asked(fhir::PAIN_BEFORE.1), phq9: asked(fhir::PHQ9.1) };
    let filter = Filter {
        patient_id,
        scored: Some(scored),
        id_from: after.as_ref().map(|(appointment, _)| appointment.clone()),
        ..Filter::default()
    };
    // Each appointment holds one observation at least: two more than the
    // page are enough to know whether another follows.
    let rows = Rows { after: None, limit: i64::from(search.count) + 2 };
    let found = ctx.read(move |conn| appointments::list(conn, &filter, &rows)).await?;
    let observations: Vec<Value> = found
        .iter()
        .flat_map(fhir::observations)
        .filter(|o| {
            after
                .as_ref()
                .is_none_or(|(_, page)| o["id"].as_str().is_some_and(|id| id > page.as_str()))
        })
        .filter(|o| {
            code.as_deref().is_none_or(|code| {
                o["code"]["coding"][0]["code"].as_str().is_some_and(|c| fhir::code_matches(code, c))
            })
        })
        .take(search.count as usize + 1)
        .collect();
    let base = base(&req, &ctx);
    let bundle = search.bundle(
        &base,
        "Observation",
        observations,
        |o| o["id"].as_str().unwrap_or_default().to_owned(),
        |o| o.clone(),
    );
    resource(&bundle)
}

/// Rewrites each problem answered under `/fhir/` as an OperationOutcome,
/// keeping its status (FHIR answers a search it cannot process with 400,
/// not 422) and headers (`WWW-Authenticate`, `Retry-After`, …).
pub async fn outcomes(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let under_fhir = req.path().starts_with("/fhir/");
    let response = next.call(req).await?;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/problem+json"));
    if !under_fhir || !is_problem {
        return Ok(response.map_body(|_, body| EitherBody::left(body.boxed())));
    }
    let (req, response) = response.into_parts();
    let status = response.status();
    let (mut head, body) = response.into_parts();
    let problem: Value = match body::to_bytes(body).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let status_code = if status.as_u16() == 422 { 400 } else { status.as_u16() };
    // The problem's code, then each field's error, or its detail.
    let errors: Vec<String> = problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let field = e["field"].as_str().unwrap_or("");
                    format!("`{field}` {}", e["message"].as_str().unwrap_or(""))
                })
                .collect()
        })
        .unwrap_or_default();
    let detail = match errors.is_empty() {
        true => problem["detail"].as_str().or(problem["title"].as_str()).unwrap_or("").to_owned(),
        false => errors.join("; "),
    };
    let diagnostics = format!("{}: {detail}", problem["code"].as_str().unwrap_or("error"));
    let outcome = fhir::outcome("error", fhir::issue_type(status_code), &diagnostics);
    let status = actix_web::http::StatusCode::from_u16(status_code).unwrap_or(status);
    *head.status_mut() = status;
    head.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(fhir::CONTENT_TYPE));
    head.headers_mut().remove(header::CONTENT_LENGTH);
    let response = head.set_body(BoxBody::new(outcome.to_string()));
    Ok(ServiceResponse::new(req, response).map_body(|_, body| EitherBody::right(body)))
}
