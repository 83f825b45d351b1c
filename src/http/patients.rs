//! `/v1/patients`: create, read, list with name search, partial update.

use actix_web::web::Path;
use actix_web::{get, patch, post};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access::{self};
use crate::domain::billing::PostalAddress;
use crate::domain::identifier::{self, Identifier, IdentifierSearch};
use crate::domain::patient::{
    email_schema, indications_schema, phone_schema, Indication, Name, NameSearch, Patient,
    PatientDetails,
};
use crate::domain::values::{CalendarDate, Id};
use crate::store::patients as store;

use super::auth::{AnyRole, Ctx, Reply, Staff, StaffAndIntegration};
use super::error::ApiError;
use super::extract::{Json, Query};
use super::openapi::{BodyErrors, CommonErrors, IdentifierConflict, NotFound, ValidationFailed};
use super::pagination::{Page, PageRequest};
use super::{ok, Answer, AppState};

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
    "pain_referral_required": false,
    "identifiers": [{"system": "urn:oid:2.16.840.1.113883.3.4.5", "value": "MRN-004211"}]
}))]
pub struct CreatePatient {
    pub given_name: Name,
    pub family_name: Name,
    /// In the past, at most 120 years ago.
    pub date_of_birth: CalendarDate,
    #[serde(default)]
    #[schema(schema_with = email_schema)]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(schema_with = phone_schema)]
    pub phone: Option<String>,
    /// The postal address the superbill shows; none by default.
    #[serde(default)]
    pub address: Option<PostalAddress>,
    /// At least one; each code once.
    #[schema(schema_with = indications_schema)]
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
    /// None by default.
    #[serde(default)]
    #[schema(schema_with = identifier::list_schema)]
    pub identifiers: Vec<Identifier>,
}

/// Changes to a patient: only the fields present change. `email`,
/// `phone` and `address` may be `null` to clear them; `indications` and `identifiers`
/// replace the list (`[]` removes every identifier).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"phone": "+1 555 010 9999", "in_mental_health_treatment": false}))]
pub struct UpdatePatient {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Name)]
    pub given_name: Option<Name>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Name)]
    pub family_name: Option<Name>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = CalendarDate)]
    pub date_of_birth: Option<CalendarDate>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = email_schema)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = phone_schema)]
    pub phone: Option<Option<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    pub address: Option<Option<PostalAddress>>,
    #[serde(default, deserialize_with = "present")]
    /// At least one; each code once. Replaces the list.
    #[schema(schema_with = indications_schema)]
    pub indications: Option<Vec<Indication>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub in_mental_health_treatment: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub pain_referral_required: Option<bool>,
    /// Replaces the list.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = identifier::list_schema)]
    pub identifiers: Option<Vec<Identifier>>,
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
    /// The names of the fields present: what the change sets.
    fn sent(&self) -> Vec<&'static str> {
        [
            ("given_name", self.given_name.is_some()),
            ("family_name", self.family_name.is_some()),
            ("date_of_birth", self.date_of_birth.is_some()),
            ("email", self.email.is_some()),
            ("phone", self.phone.is_some()),
            ("address", self.address.is_some()),
            ("indications", self.indications.is_some()),
            ("in_mental_health_treatment", self.in_mental_health_treatment.is_some()),
            ("pain_referral_required", self.pain_referral_required.is_some()),
            ("identifiers", self.identifiers.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }

    fn apply(self, mut details: PatientDetails) -> PatientDetails {
        if let Some(v) = self.given_name {
            details.given_name = v.into_string();
        }
        if let Some(v) = self.family_name {
            details.family_name = v.into_string();
        }
        if let Some(v) = self.date_of_birth {
            details.date_of_birth = v.get();
        }
        if let Some(v) = self.email {
            details.email = v;
        }
        if let Some(v) = self.phone {
            details.phone = v;
        }
        if let Some(v) = self.address {
            details.address = v;
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
        if let Some(v) = self.identifiers {
            details.identifiers = v;
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
    "identifiers": [{"system": "urn:oid:2.16.840.1.113883.3.4.5", "value": "MRN-004211"}],
    "created_at": "2026-11-27T12:04:05-05:00",
    "updated_at": "2026-11-27T12:04:05-05:00"
}))]
pub struct PatientResponse {
    /// UUIDv7.
    pub id: String,
    #[serde(flatten)]
    pub details: PatientDetails,
    /// RFC 3339 in the clinic's offset.
    pub created_at: String,
    /// RFC 3339 in the clinic's offset.
    pub updated_at: String,
}

impl PatientResponse {
    fn new(state: &AppState, patient: Patient) -> Self {
        Self {
            id: patient.id,
            details: patient.details,
            created_at: state.local(patient.created_at),
            updated_at: state.local(patient.updated_at),
        }
    }
}

/// Filters and page of `GET /v1/patients`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPatientsQuery {
    /// Part of the full name ("given family"), case- and accent-insensitive
    /// (`jose` finds José); at most 200 characters. Blank is no filter.
    #[param(value_type = Option<String>, max_length = 200)]
    pub q: Option<NameSearch>,
    /// The patient holding this identifier, as `system|value` (split at the
    /// first `|`), e.g. `urn:oid:2.16.840.1.113883.3.4.5|MRN-004211`: a page
    /// of that one patient, or none. With `q`, both must match.
    #[param(value_type = Option<IdentifierSearch>, inline)]
    pub identifier: Option<IdentifierSearch>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Id>,
}

/// Register a patient. Whether the patient is in mental health treatment,
/// and whether a pain referral is required, are set by clinicians and
/// admins only. An identifier (an EHR's record number) another patient
/// holds is 409 `conflict`, whose `existing_patient_id` names that patient.
///
/// **Roles:** admin, clinician, scheduler, integration.
#[utoipa::path(tag = "patients", request_body = CreatePatient,
    responses(
        (status = 201, description = "Created", body = PatientResponse,
            headers(("location" = String, description = "The new patient's URL"))),
        CommonErrors, BodyErrors, ValidationFailed, IdentifierConflict))]
#[post("/patients")]
pub async fn create_patient(ctx: Ctx<StaffAndIntegration>, body: Json<CreatePatient>) -> Answer {
    let Json(body) = body;
    let flags = [
        ("in_mental_health_treatment", body.in_mental_health_treatment.is_some()),
        ("pain_referral_required", body.pain_referral_required.is_some()),
        ("diagnosis", body.indications.iter().any(|i| i.diagnosis.is_some())),
    ];
    let sent: Vec<&str> = flags.into_iter().filter_map(|(f, sent)| sent.then_some(f)).collect();
    access::may_set(ctx.caller.role, &sent, true).map_err(ApiError::ForbiddenField)?;
    let details = PatientDetails {
        given_name: body.given_name.into_string(),
        family_name: body.family_name.into_string(),
        date_of_birth: body.date_of_birth.get(),
        email: body.email,
        phone: body.phone,
        address: body.address,
        indications: body.indications,
        in_mental_health_treatment: body.in_mental_health_treatment.unwrap_or(false),
        pain_referral_required: body.pain_referral_required.unwrap_or(false),
        identifiers: body.identifiers,
    }
    .admitted(ctx.today())?;
    let now = ctx.now();
    ctx.write(
        move |tx| store::insert(tx, &details, now),
        |state, patient| {
            Reply::created(
                format!("/v1/patients/{}", patient.id),
                &PatientResponse::new(state, patient),
            )
        },
    )
    .await
}

/// List patients in id (creation) order, optionally by name, or find the
/// one an identifier names (`?identifier=system|value`).
///
/// **Roles:** admin, clinician, scheduler, integration.
#[utoipa::path(tag = "patients", params(ListPatientsQuery),
    responses((status = 200, description = "A page of patients", body = Page<PatientResponse>),
        CommonErrors, ValidationFailed))]
#[get("/patients")]
pub async fn list_patients(
    ctx: Ctx<StaffAndIntegration>,
    query: Query<ListPatientsQuery>,
) -> Answer {
    let Query(query) = query;
    let page = PageRequest::parse(query.limit, query.cursor)?;
    let name = query.q.and_then(NameSearch::term);
    let identifier = query.identifier;
    let at = page.rows();
    let rows =
        ctx.read(move |conn| store::list(conn, name.as_deref(), identifier.as_ref(), &at)).await?;
    ok(page.shown(rows, &ctx, PatientResponse::new))
}

/// One patient. A patient token reads only its own record.
///
/// **Roles:** admin, clinician, scheduler, integration, patient (its own).
#[utoipa::path(tag = "patients", params(("id" = String, Path, description = "The patient's id")),
    responses((status = 200, description = "The patient", body = PatientResponse), CommonErrors,
        NotFound))]
#[get("/patients/{id}")]
pub async fn get_patient(ctx: Ctx<AnyRole>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    ctx.caller.require_own_patient(&id)?;
    let patient = ctx.read(move |conn| store::find(conn, &id)).await?;
    ok(PatientResponse::new(&ctx, patient))
}

/// Change some of a patient's details; the record after the change meets
/// every rule a new one does. The indications and the two referral flags
/// decide which referrals the patient needs: only admins and clinicians
/// change them (403 naming the field). `identifiers` replaces the list; an
/// identifier another patient holds is 409 `conflict` naming that patient
/// (`existing_patient_id`). The audit trail records which fields each
/// change set.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "patients", params(("id" = String, Path, description = "The patient's id")),
    request_body = UpdatePatient,
    responses((status = 200, description = "The patient after the change", body = PatientResponse),
        CommonErrors, BodyErrors, NotFound, ValidationFailed, IdentifierConflict))]
#[patch("/patients/{id}")]
pub async fn update_patient(ctx: Ctx<Staff>, id: Path<Id>, body: Json<UpdatePatient>) -> Answer {
    let id = id.into_inner().into_string();
    let Json(change) = body;
    let sent = change.sent();
    access::may_set(ctx.caller.role, &sent, false).map_err(ApiError::ForbiddenField)?;
    ctx.changed(sent.iter().map(|f| (*f).to_owned()).collect());
    let (today, now, precondition, state) =
        (ctx.today(), ctx.now(), ctx.precondition(), ctx.state());
    ctx.write(
        move |tx| {
            let current = store::hold(tx, &id)?;
            precondition.check(|| PatientResponse::new(&state, current.clone()))?;
            let details = change.apply(current.details.clone()).admitted(today)?;
            store::replace(tx, current, &details, now)
        },
        |state, patient| Reply::ok(&PatientResponse::new(state, patient)),
    )
    .await
}
