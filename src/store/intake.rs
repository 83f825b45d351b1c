//! Intake records: referrals, treatment attestations, screenings and
//! prescriber consults, and the patient's intake as readiness reads it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::readiness::{IntakeRecord, ReferralSummary, ScreeningSummary};
use crate::domain::referral::{Provider, ReferralKind, ReferralStatus};
use crate::domain::screening::{Criteria, Outcome};
use crate::domain::Refusal;

use super::schema::{
    prescriber_consults, referrals, screening_medications, screenings, treatment_attestations,
};
use super::{new_id, patients, write_transaction, DbConnection, StoreError};

/// The provider's six columns of `$table`, set from `$provider`.
macro_rules! provider_values {
    ($table:ident, $provider:expr) => {
        (
            $table::provider_name.eq(&$provider.name),
            $table::provider_practice.eq(&$provider.practice),
            $table::provider_phone.eq(&$provider.phone),
            $table::provider_fax.eq(&$provider.fax),
            $table::provider_email.eq(&$provider.email),
            $table::provider_npi.eq(&$provider.npi),
        )
    };
}

fn invalid(what: &str, value: &str) -> StoreError {
    StoreError::Invalid(format!("{what} `{value}`"))
}

/// Fails with `NotFound` unless the patient exists.
fn require_patient(conn: &mut DbConnection, patient_id: &str) -> Result<(), StoreError> {
    if patients::exists(conn, patient_id)? {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

// ---- referrals --------------------------------------------------------------

/// A referral letter as stored (its status as stored: see
/// [`crate::domain::referral::effective_status`] for what it shows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referral {
    pub id: String,
    pub patient_id: String,
    pub kind: ReferralKind,
    pub provider: Provider,
    pub received_on: NaiveDate,
    pub document_reference: String,
    pub status: ReferralStatus,
    pub reject_reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = referrals)]
struct ReferralRow {
    id: String,
    patient_id: String,
    kind: String,
    provider_name: String,
    provider_practice: String,
    provider_phone: Option<String>,
    provider_fax: Option<String>,
    provider_email: Option<String>,
    provider_npi: Option<String>,
    received_on: NaiveDate,
    document_reference: String,
    status: String,
    reject_reason: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl TryFrom<ReferralRow> for Referral {
    type Error = StoreError;

    fn try_from(r: ReferralRow) -> Result<Self, StoreError> {
        Ok(Referral {
            kind: ReferralKind::parse(&r.kind).ok_or_else(|| invalid("referral kind", &r.kind))?,
            status: ReferralStatus::parse(&r.status)
                .ok_or_else(|| invalid("referral status", &r.status))?,
            provider: Provider {
                name: r.provider_name,
                practice: r.provider_practice,
                phone: r.provider_phone,
                fax: r.provider_fax,
                email: r.provider_email,
                npi: r.provider_npi,
            },
            id: r.id,
            patient_id: r.patient_id,
            received_on: r.received_on,
            document_reference: r.document_reference,
            reject_reason: r.reject_reason,
            decided_by: r.decided_by,
            decided_at: r.decided_at.map(|t| t.and_utc()),
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        })
    }
}

/// A referral to store.
#[derive(Clone, Debug)]
pub struct NewReferral {
    pub kind: ReferralKind,
    pub provider: Provider,
    pub received_on: NaiveDate,
    pub document_reference: String,
}

pub fn insert_referral(
    conn: &mut DbConnection,
    patient_id: &str,
    referral: &NewReferral,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Referral, StoreError> {
    let id = new_id();
    let now = now.naive_utc();
    let p = &referral.provider;
    write_transaction(conn, |conn| {
        require_patient(conn, patient_id)?;
        diesel::insert_into(referrals::table)
            .values((
                referrals::id.eq(&id),
                referrals::patient_id.eq(patient_id),
                referrals::kind.eq(referral.kind.as_str()),
                provider_values!(referrals, p),
                referrals::received_on.eq(referral.received_on),
                referrals::document_reference.eq(&referral.document_reference),
                referrals::status.eq(ReferralStatus::Received.as_str()),
                referrals::created_by.eq(by),
                referrals::created_at.eq(now),
                referrals::updated_at.eq(now),
            ))
            .execute(conn)?;
        find_referral(conn, &id)
    })
}

pub fn find_referral(conn: &mut DbConnection, id: &str) -> Result<Referral, StoreError> {
    referrals::table
        .find(id)
        .select(ReferralRow::as_select())
        .get_result(conn)?
        .try_into()
}

pub fn list_referrals(
    conn: &mut DbConnection,
    patient_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Referral>, StoreError> {
    require_patient(conn, patient_id)?;
    let mut query = referrals::table
        .filter(referrals::patient_id.eq(patient_id))
        .select(ReferralRow::as_select())
        .order(referrals::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(referrals::id.gt(after.to_owned()));
    }
    query
        .load(conn)?
        .into_iter()
        .map(Referral::try_from)
        .collect()
}

/// A clinician's verdict on a referral.
#[derive(Clone, Debug)]
pub enum Verdict {
    Verify,
    Reject { reason: String },
}

/// Verifies or rejects a received referral. `check` sees the referral as
/// stored and refuses what may not be decided (already decided, expired).
pub fn decide_referral(
    conn: &mut DbConnection,
    id: &str,
    verdict: &Verdict,
    by: &str,
    now: DateTime<Utc>,
    check: impl FnOnce(&Referral) -> Result<(), Refusal>,
) -> Result<Referral, StoreError> {
    write_transaction(conn, |conn| {
        // Holds the row so a concurrent verify and reject cannot both win.
        diesel::update(referrals::table.find(id))
            .set(referrals::id.eq(referrals::id))
            .execute(conn)?;
        let current = find_referral(conn, id)?;
        check(&current).map_err(StoreError::Refused)?;
        let (status, reason) = match verdict {
            Verdict::Verify => (ReferralStatus::Verified, None),
            Verdict::Reject { reason } => (ReferralStatus::Rejected, Some(reason.as_str())),
        };
        let now = now.naive_utc();
        diesel::update(referrals::table.find(id))
            .set((
                referrals::status.eq(status.as_str()),
                referrals::reject_reason.eq(reason),
                referrals::decided_by.eq(by),
                referrals::decided_at.eq(now),
                referrals::updated_at.eq(now),
            ))
            .execute(conn)?;
        find_referral(conn, id)
    })
}

// ---- attestations and consults ------------------------------------------------

/// A dated record naming a provider: an ongoing-treatment attestation or a
/// prescriber consult.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderRecord {
    pub id: String,
    pub patient_id: String,
    pub provider: Provider,
    /// `attested_on` or `consulted_on`.
    pub on: NaiveDate,
    /// The agreed plan, for a consult.
    pub plan: Option<String>,
    pub recorded_by: String,
    pub created_at: DateTime<Utc>,
}

type ProviderColumns = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    NaiveDate,
    String,
    NaiveDateTime,
);

fn provider_record(
    (id, patient_id, name, practice, phone, fax, email, npi, on, recorded_by, created_at): ProviderColumns,
    plan: Option<String>,
) -> ProviderRecord {
    ProviderRecord {
        id,
        patient_id,
        provider: Provider {
            name,
            practice,
            phone,
            fax,
            email,
            npi,
        },
        on,
        plan,
        recorded_by,
        created_at: created_at.and_utc(),
    }
}

macro_rules! provider_columns {
    ($table:ident, $on:ident) => {
        (
            $table::id,
            $table::patient_id,
            $table::provider_name,
            $table::provider_practice,
            $table::provider_phone,
            $table::provider_fax,
            $table::provider_email,
            $table::provider_npi,
            $table::$on,
            $table::recorded_by,
            $table::created_at,
        )
    };
}

pub fn insert_attestation(
    conn: &mut DbConnection,
    patient_id: &str,
    provider: &Provider,
    attested_on: NaiveDate,
    by: &str,
    now: DateTime<Utc>,
) -> Result<ProviderRecord, StoreError> {
    let id = new_id();
    write_transaction(conn, |conn| {
        require_patient(conn, patient_id)?;
        diesel::insert_into(treatment_attestations::table)
            .values((
                treatment_attestations::id.eq(&id),
                treatment_attestations::patient_id.eq(patient_id),
                provider_values!(treatment_attestations, provider),
                treatment_attestations::attested_on.eq(attested_on),
                treatment_attestations::recorded_by.eq(by),
                treatment_attestations::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        let row = treatment_attestations::table
            .find(&id)
            .select(provider_columns!(treatment_attestations, attested_on))
            .get_result(conn)?;
        Ok(provider_record(row, None))
    })
}

pub fn list_attestations(
    conn: &mut DbConnection,
    patient_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ProviderRecord>, StoreError> {
    require_patient(conn, patient_id)?;
    let mut query = treatment_attestations::table
        .filter(treatment_attestations::patient_id.eq(patient_id))
        .select(provider_columns!(treatment_attestations, attested_on))
        .order(treatment_attestations::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(treatment_attestations::id.gt(after.to_owned()));
    }
    Ok(query
        .load(conn)?
        .into_iter()
        .map(|row| provider_record(row, None))
        .collect())
}

pub fn insert_consult(
    conn: &mut DbConnection,
    patient_id: &str,
    provider: &Provider,
    consulted_on: NaiveDate,
    plan: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<ProviderRecord, StoreError> {
    let id = new_id();
    write_transaction(conn, |conn| {
        require_patient(conn, patient_id)?;
        diesel::insert_into(prescriber_consults::table)
            .values((
                prescriber_consults::id.eq(&id),
                prescriber_consults::patient_id.eq(patient_id),
                provider_values!(prescriber_consults, provider),
                prescriber_consults::consulted_on.eq(consulted_on),
                prescriber_consults::agreed_plan.eq(plan),
                prescriber_consults::recorded_by.eq(by),
                prescriber_consults::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        let row = prescriber_consults::table
            .find(&id)
            .select(provider_columns!(prescriber_consults, consulted_on))
            .get_result(conn)?;
        Ok(provider_record(row, Some(plan.to_owned())))
    })
}

pub fn list_consults(
    conn: &mut DbConnection,
    patient_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ProviderRecord>, StoreError> {
    require_patient(conn, patient_id)?;
    let mut query = prescriber_consults::table
        .filter(prescriber_consults::patient_id.eq(patient_id))
        .select((
            provider_columns!(prescriber_consults, consulted_on),
            prescriber_consults::agreed_plan,
        ))
        .order(prescriber_consults::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(prescriber_consults::id.gt(after.to_owned()));
    }
    Ok(query
        .load::<(ProviderColumns, String)>(conn)?
        .into_iter()
        .map(|(row, plan)| provider_record(row, Some(plan)))
        .collect())
}

// ---- screenings ---------------------------------------------------------------

/// A screening as recorded; never changed afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Screening {
    pub id: String,
    pub patient_id: String,
    pub criteria: Criteria,
    pub medications: Vec<String>,
    pub outcome: Outcome,
    pub lamotrigine: bool,
    pub screened_on: NaiveDate,
    pub screened_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = screenings)]
struct ScreeningRow {
    id: String,
    patient_id: String,
    active_substance_abuse: bool,
    history_of_psychosis: bool,
    undiagnosed_mental_health_condition: bool,
    increased_intracranial_pressure: bool,
    uncontrolled_hypertension: bool,
    unstable_cardiovascular_disease: bool,
    previous_negative_ketamine_response: bool,
    ketamine_abuse_disorder: bool,
    pregnant: bool,
    outcome: String,
    lamotrigine: bool,
    screened_on: NaiveDate,
    screened_by: String,
    created_at: NaiveDateTime,
}

impl ScreeningRow {
    fn into_screening(self, medications: Vec<String>) -> Result<Screening, StoreError> {
        Ok(Screening {
            outcome: Outcome::parse(&self.outcome)
                .ok_or_else(|| invalid("screening outcome", &self.outcome))?,
            criteria: Criteria {
                active_substance_abuse: self.active_substance_abuse,
                history_of_psychosis: self.history_of_psychosis,
                undiagnosed_mental_health_condition: self.undiagnosed_mental_health_condition,
                increased_intracranial_pressure: self.increased_intracranial_pressure,
                uncontrolled_hypertension: self.uncontrolled_hypertension,
                unstable_cardiovascular_disease: self.unstable_cardiovascular_disease,
                previous_negative_ketamine_response: self.previous_negative_ketamine_response,
                ketamine_abuse_disorder: self.ketamine_abuse_disorder,
                pregnant: self.pregnant,
            },
            medications,
            id: self.id,
            patient_id: self.patient_id,
            lamotrigine: self.lamotrigine,
            screened_on: self.screened_on,
            screened_by: self.screened_by,
            created_at: self.created_at.and_utc(),
        })
    }
}

/// A screening to record, with the flag decided from its medications.
#[derive(Clone, Debug)]
pub struct NewScreening {
    pub criteria: Criteria,
    pub medications: Vec<String>,
    pub lamotrigine: bool,
    pub screened_on: NaiveDate,
}

/// Records a screening with its outcome and flags as decided now.
pub fn insert_screening(
    conn: &mut DbConnection,
    patient_id: &str,
    new: &NewScreening,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Screening, StoreError> {
    let id = new_id();
    let c = &new.criteria;
    let (medications, lamotrigine, screened_on) =
        (&new.medications, new.lamotrigine, new.screened_on);
    write_transaction(conn, |conn| {
        require_patient(conn, patient_id)?;
        diesel::insert_into(screenings::table)
            .values((
                screenings::id.eq(&id),
                screenings::patient_id.eq(patient_id),
                (
                    screenings::active_substance_abuse.eq(c.active_substance_abuse),
                    screenings::history_of_psychosis.eq(c.history_of_psychosis),
                    screenings::undiagnosed_mental_health_condition
                        .eq(c.undiagnosed_mental_health_condition),
                    screenings::increased_intracranial_pressure
                        .eq(c.increased_intracranial_pressure),
                    screenings::uncontrolled_hypertension.eq(c.uncontrolled_hypertension),
                    screenings::unstable_cardiovascular_disease
                        .eq(c.unstable_cardiovascular_disease),
                    screenings::previous_negative_ketamine_response
                        .eq(c.previous_negative_ketamine_response),
                    screenings::ketamine_abuse_disorder.eq(c.ketamine_abuse_disorder),
                    screenings::pregnant.eq(c.pregnant),
                ),
                screenings::outcome.eq(c.outcome().as_str()),
                screenings::lamotrigine.eq(lamotrigine),
                screenings::screened_on.eq(screened_on),
                screenings::screened_by.eq(by),
                screenings::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        for (position, name) in medications.iter().enumerate() {
            diesel::insert_into(screening_medications::table)
                .values((
                    screening_medications::screening_id.eq(&id),
                    screening_medications::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
                    screening_medications::name.eq(name),
                ))
                .execute(conn)?;
        }
        find_screening(conn, &id)
    })
}

fn with_medications(
    conn: &mut DbConnection,
    rows: Vec<ScreeningRow>,
) -> Result<Vec<Screening>, StoreError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let meds: Vec<(String, String)> = screening_medications::table
        .filter(screening_medications::screening_id.eq_any(&ids))
        .order((
            screening_medications::screening_id,
            screening_medications::position,
        ))
        .select((
            screening_medications::screening_id,
            screening_medications::name,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|row| {
            let names = meds
                .iter()
                .filter(|(s, _)| *s == row.id)
                .map(|(_, n)| n.clone())
                .collect();
            row.into_screening(names)
        })
        .collect()
}

pub fn find_screening(conn: &mut DbConnection, id: &str) -> Result<Screening, StoreError> {
    let row = screenings::table
        .find(id)
        .select(ScreeningRow::as_select())
        .get_result(conn)?;
    with_medications(conn, vec![row])?
        .pop()
        .ok_or(StoreError::NotFound)
}

pub fn list_screenings(
    conn: &mut DbConnection,
    patient_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Screening>, StoreError> {
    require_patient(conn, patient_id)?;
    let mut query = screenings::table
        .filter(screenings::patient_id.eq(patient_id))
        .select(ScreeningRow::as_select())
        .order(screenings::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(screenings::id.gt(after.to_owned()));
    }
    let rows = query.load(conn)?;
    with_medications(conn, rows)
}

// ---- readiness ----------------------------------------------------------------

/// Everything readiness reads about a patient, in five small queries.
pub fn intake_record(
    conn: &mut DbConnection,
    patient_id: &str,
) -> Result<IntakeRecord, StoreError> {
    let patient = patients::find(conn, patient_id)?.details;
    // The latest by id (ids are time-ordered), as a subquery: see the
    // module documentation of `store` on LIMIT.
    let later = diesel::alias!(screenings as later);
    let latest_id = later
        .filter(later.field(screenings::patient_id).eq(patient_id))
        .select(diesel::dsl::max(later.field(screenings::id)))
        .single_value();
    let latest_screening = screenings::table
        .filter(screenings::id.nullable().eq(latest_id))
        .select(ScreeningRow::as_select())
        .get_result(conn)
        .optional()?
        .map(|row| {
            let s = row.into_screening(Vec::new())?;
            Ok::<_, StoreError>(ScreeningSummary {
                screened_on: s.screened_on,
                outcome: s.outcome,
                reasons: s
                    .criteria
                    .reasons()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                lamotrigine: s.lamotrigine,
                recorded_at: s.created_at,
            })
        })
        .transpose()?;
    let referrals = referrals::table
        .filter(referrals::patient_id.eq(patient_id))
        .select((referrals::kind, referrals::status, referrals::received_on))
        .load::<(String, String, NaiveDate)>(conn)?
        .into_iter()
        .map(|(kind, status, received_on)| {
            Ok(ReferralSummary {
                kind: ReferralKind::parse(&kind).ok_or_else(|| invalid("referral kind", &kind))?,
                status: ReferralStatus::parse(&status)
                    .ok_or_else(|| invalid("referral status", &status))?,
                received_on,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let latest_attestation = treatment_attestations::table
        .filter(treatment_attestations::patient_id.eq(patient_id))
        .select(diesel::dsl::max(treatment_attestations::attested_on))
        .get_result::<Option<NaiveDate>>(conn)?;
    let latest_consult_at = prescriber_consults::table
        .filter(prescriber_consults::patient_id.eq(patient_id))
        .select(diesel::dsl::max(prescriber_consults::created_at))
        .get_result::<Option<NaiveDateTime>>(conn)?
        .map(|t| t.and_utc());
    Ok(IntakeRecord {
        patient,
        latest_screening,
        referrals,
        latest_attestation,
        latest_consult_at,
    })
}
