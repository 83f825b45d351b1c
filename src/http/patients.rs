//! `/v1/patients`: create, read, list with name search, partial update.

use actix_web::http::header;
use actix_web::{get, patch, post, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access::{ANY_ROLE, CLINICAL, STAFF, STAFF_AND_INTEGRATION};
use crate::domain::patient::{
    email_schema, phone_schema, Indication, Patient, PatientDetails, MAX_NAME_CHARS,
};
use crate::store::{patients as store, StoreError};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{dates, Id, Json, Query};
use super::openapi::{
    Forbidden, MalformedRequest, NotFound, PayloadTooLarge, ServerErrors, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use super::pagination::{Page, PageRequest};
use super::AppState;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_patient)
        .service(list_patients)
        .service(get_patient)
        .service(update_patient);
}

/// A new patient.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "given_name": "Ada",
    "family_name": "Lovelace",
    "date_of_birth": "1985-12-10",
    "email": "ada@example.org",
    "phone": "+1 555 010 2030",
    "indications": [{"code": "chronic_pain", "subtype": "crps"}, {"code": "depression"}],
    "in_mental_health_treatment": true,
    "pain_referral_required": false
}))]
pub struct CreatePatient {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub given_name: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub family_name: String,
    /// In the past, at most 120 years ago.
    #[serde(deserialize_with = "dates::required")]
    #[schema(pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub date_of_birth: NaiveDate,
    #[serde(default)]
    #[schema(schema_with = email_schema)]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(schema_with = phone_schema)]
    pub phone: Option<String>,
    /// At least one; each code once.
    #[schema(min_items = 1, max_items = 4)]
    pub indications: Vec<Indication>,
    /// Whether the patient is currently in mental health treatment
    /// (default `false`). Clinicians and admins only: it decides whether a
    /// mental health evaluation is required.
    #[serde(default)]
    pub in_mental_health_treatment: Option<bool>,
    /// Whether a pain-management referral is required (default `false`).
    /// Clinicians and admins only.
    #[serde(default)]
    pub pain_referral_required: Option<bool>,
}

/// Changes to a patient: only the fields present change. `email` and
/// `phone` may be `null` to clear them; `indications` replaces the list.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"phone": "+1 555 010 9999", "in_mental_health_treatment": false}))]
pub struct UpdatePatient {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$")]
    pub given_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$")]
    pub family_name: Option<String>,
    #[serde(default, deserialize_with = "dates::present")]
    #[schema(value_type = NaiveDate, pattern = "^(?:19|[2-9][0-9])[0-9]{2}-")]
    pub date_of_birth: Option<NaiveDate>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = email_schema)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = phone_schema)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    /// At least one; each code once. Replaces the list.
    #[schema(value_type = Vec<Indication>, min_items = 1, max_items = 4)]
    pub indications: Option<Vec<Indication>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub in_mental_health_treatment: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub pain_referral_required: Option<bool>,
}

/// A field that may be absent but, when present, must not be `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A field that may be absent (unchanged), `null` (cleared) or a value.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl UpdatePatient {
    fn apply(self, mut details: PatientDetails) -> PatientDetails {
        if let Some(v) = self.given_name {
            details.given_name = v;
        }
        if let Some(v) = self.family_name {
            details.family_name = v;
        }
        if let Some(v) = self.date_of_birth {
            details.date_of_birth = v;
        }
        if let Some(v) = self.email {
            details.email = v;
        }
        if let Some(v) = self.phone {
            details.phone = v;
        }
        if let Some(v) = self.indications {
            details.indications = v;
        }
        if let Some(v) = self.in_mental_health_treatment {
            details.in_mental_health_treatment = v;
        }
        if let Some(v) = self.pain_referral_required {
            details.pain_referral_required = v;
        }
        details
    }
}

/// A patient as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "date_of_birth": "1985-12-10",
    "email": "ada@example.org",
    "phone": "+1 555 010 2030",
    "indications": [{"code": "chronic_pain", "subtype": "crps"}, {"code": "depression", "subtype": null}],
    "in_mental_health_treatment": true,
    "pain_referral_required": false,
    "created_at": "2026-11-27T12:04:05-05:00",
    "updated_at": "2026-11-27T12:04:05-05:00"
}))]
pub struct PatientResponse {
    /// UUIDv7.
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: NaiveDate,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub indications: Vec<Indication>,
    pub in_mental_health_treatment: bool,
    pub pain_referral_required: bool,
    /// RFC 3339 in the clinic's offset.
    pub created_at: String,
    /// RFC 3339 in the clinic's offset.
    pub updated_at: String,
}

impl PatientResponse {
    fn new(state: &AppState, patient: Patient) -> Self {
        let d = patient.details;
        Self {
            id: patient.id,
            given_name: d.given_name,
            family_name: d.family_name,
            date_of_birth: d.date_of_birth,
            email: d.email,
            phone: d.phone,
            indications: d.indications,
            in_mental_health_treatment: d.in_mental_health_treatment,
            pain_referral_required: d.pain_referral_required,
            created_at: state.local(patient.created_at),
            updated_at: state.local(patient.updated_at),
        }
    }
}

/// Longest name search: a given and a family name.
const MAX_QUERY_CHARS: usize = 2 * MAX_NAME_CHARS;

/// Filters and page of `GET /v1/patients`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPatientsQuery {
    /// Part of the full name ("given family"), case-insensitive; at most
    /// 200 characters. Blank is no filter.
    #[param(example = "lovelace", max_length = 200)]
    pub q: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Id>,
}

/// The flags that decide which referrals a patient needs are clinical
/// records: only clinicians and admins set them.
fn require_clinical_for_flags(
    caller: &Caller,
    in_mental_health_treatment: Option<bool>,
    pain_referral_required: Option<bool>,
) -> Result<(), ApiError> {
    if CLINICAL.contains(&caller.role) {
        return Ok(());
    }
    if in_mental_health_treatment.is_some() {
        return Err(ApiError::ForbiddenField("in_mental_health_treatment"));
    }
    if pain_referral_required.is_some() {
        return Err(ApiError::ForbiddenField("pain_referral_required"));
    }
    Ok(())
}

/// Register a patient.
#[utoipa::path(
    tag = "patients",
    operation_id = "create_patient",
    request_body = CreatePatient,
    responses(
        (status = 201, description = "Created", body = PatientResponse,
            headers(("location" = String, description = "The new patient's URL"))),
        MalformedRequest, Unauthorized, Forbidden, PayloadTooLarge, UnsupportedMediaType,
        ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[post("/patients")]
pub async fn create_patient(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreatePatient>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF_AND_INTEGRATION)?;
    let Json(body) = body;
    require_clinical_for_flags(
        &caller,
        body.in_mental_health_treatment,
        body.pain_referral_required,
    )?;
    let details = PatientDetails {
        given_name: body.given_name,
        family_name: body.family_name,
        date_of_birth: body.date_of_birth,
        email: body.email,
        phone: body.phone,
        indications: body.indications,
        in_mental_health_treatment: body.in_mental_health_treatment.unwrap_or(false),
        pain_referral_required: body.pain_referral_required.unwrap_or(false),
    };
    ApiError::check(details.check(state.today()))?;
    let details = details.normalized();
    let now = state.now();
    let patient = state
        .db(move |conn| store::insert(conn, &details, now))
        .await?;
    log::info!("patient {} created by {}", patient.id, caller.role.as_str());
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/patients/{}", patient.id)))
        .json(PatientResponse::new(&state, patient)))
}

/// List patients in id (creation) order, optionally by name.
#[utoipa::path(
    tag = "patients",
    operation_id = "list_patients",
    params(ListPatientsQuery),
    responses(
        (status = 200, description = "A page of patients", body = Page<PatientResponse>),
        Unauthorized, Forbidden, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/patients")]
pub async fn list_patients(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<ListPatientsQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF_AND_INTEGRATION)?;
    let Query(query) = query;
    let page = PageRequest::parse(query.limit, query.cursor)?;
    if query
        .q
        .as_ref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(ApiError::field(
            "q",
            format!("must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let name = query
        .q
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty());
    let (after, fetch) = (page.after.clone(), page.fetch());
    let rows = state
        .db(move |conn| store::list(conn, name.as_deref(), after.as_deref(), fetch))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(
        rows,
        |p| p.id.as_str(),
        |p| PatientResponse::new(&state, p),
    )))
}

/// One patient. A patient token reads only its own record.
#[utoipa::path(
    tag = "patients",
    operation_id = "get_patient",
    params(("id" = String, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The patient", body = PatientResponse),
        Unauthorized, Forbidden, NotFound, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[get("/patients/{id}")]
pub async fn get_patient(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner().into_string();
    caller.require(ANY_ROLE)?.require_own_patient(&id)?;
    let patient = state
        .db(move |conn| store::find(conn, &id))
        .await
        .map_err(|e| e.naming("patient"))?;
    Ok(HttpResponse::Ok().json(PatientResponse::new(&state, patient)))
}

/// Change some of a patient's details.
#[utoipa::path(
    tag = "patients",
    operation_id = "update_patient",
    params(("id" = String, Path, description = "The patient's id")),
    request_body = UpdatePatient,
    responses(
        (status = 200, description = "The patient after the change", body = PatientResponse),
        MalformedRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge,
        UnsupportedMediaType, ValidationFailed, ServerErrors,
    ),
    security(("bearer" = []))
)]
#[patch("/patients/{id}")]
pub async fn update_patient(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<UpdatePatient>,
) -> Result<HttpResponse, ApiError> {
    caller.require(STAFF)?;
    let id = id.into_inner().into_string();
    let Json(change) = body;
    require_clinical_for_flags(
        &caller,
        change.in_mental_health_treatment,
        change.pain_referral_required,
    )?;
    let today = state.today();
    let now = state.now();
    let result = state
        .db(move |conn| {
            store::update(
                conn,
                &id,
                |details| {
                    let details = change.apply(details);
                    let errors = details.check(today);
                    if errors.is_empty() {
                        Ok(details.normalized())
                    } else {
                        Err(StoreError::Rejected(errors))
                    }
                },
                now,
            )
        })
        .await;
    let patient = result.map_err(|e| e.naming("patient"))?;
    log::info!("patient {} updated by {}", patient.id, caller.role.as_str());
    Ok(HttpResponse::Ok().json(PatientResponse::new(&state, patient)))
}
