//! Intake records: referrals, treatment attestations, screenings and
//! prescriber consults, and the patient's intake as readiness reads it.
//! Writes run in the caller's transaction.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::intake::{Attestation, Consult, Kept};
use crate::domain::readiness::{IntakeRecord, ReferralSummary, ScreeningSummary};
use crate::domain::referral::{
    Decision, NewReferral, Provider, Referral, ReferralKind, ReferralStatus,
};
use crate::domain::screening::{Criteria, Medication, NewScreening, Outcome, Screening};
use crate::domain::values::{CalendarDate, Text};

use super::schema::{
    prescriber_consults, referrals, screening_medications, screenings, treatment_attestations,
};
use super::{new_id, patients, DbConnection, Found, Rows, StoreError};

/// The provider's six columns of `$table`, set from `$provider`.
macro_rules! provider_values {
    ($table:ident, $provider:expr) => {
        (
            $table::provider_name.eq($provider.name.as_str()),
            $table::provider_practice.eq($provider.practice.as_str()),
            $table::provider_phone.eq(&$provider.phone),
            $table::provider_fax.eq(&$provider.fax),
            $table::provider_email.eq(&$provider.email),
            $table::provider_npi.eq(&$provider.npi),
        )
    };
}

/// The provider's six columns of `$table`, to select.
macro_rules! provider_columns {
    ($table:ident) => {
        (
            $table::provider_name,
            $table::provider_practice,
            $table::provider_phone,
            $table::provider_fax,
            $table::provider_email,
            $table::provider_npi,
        )
    };
}

/// A provider's six columns as selected.
type ProviderColumns =
    (String, String, Option<String>, Option<String>, Option<String>, Option<String>);

fn provider((name, practice, phone, fax, email, npi): ProviderColumns) -> Provider {
    Provider { name: Text::stored(name), practice: Text::stored(practice), phone, fax, email, npi }
}

fn invalid(what: &str, value: &str) -> StoreError {
    StoreError::Invalid(format!("{what} `{value}`"))
}

/// Fails with `NotFound` unless the patient exists.
fn require_patient(conn: &mut DbConnection, patient_id: &str) -> Result<(), StoreError> {
    if patients::exists(conn, patient_id)? {
        Ok(())
    } else {
        Err(StoreError::NotFound("patient"))
    }
}

// ---- referrals --------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = referrals)]
struct ReferralRow {
    id: String,
    patient_id: String,
    kind: String,
    #[diesel(embed)]
    provider: ProviderRow,
    received_on: NaiveDate,
    document_reference: String,
    status: String,
    reject_reason: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = referrals)]
struct ProviderRow {
    provider_name: String,
    provider_practice: String,
    provider_phone: Option<String>,
    provider_fax: Option<String>,
    provider_email: Option<String>,
    provider_npi: Option<String>,
}

impl TryFrom<ReferralRow> for Referral {
    type Error = StoreError;

    fn try_from(r: ReferralRow) -> Result<Self, StoreError> {
        let p = r.provider;
        Ok(Referral {
            kind: ReferralKind::parse(&r.kind).ok_or_else(|| invalid("referral kind", &r.kind))?,
            status: ReferralStatus::parse(&r.status)
                .ok_or_else(|| invalid("referral status", &r.status))?,
            provider: provider((
                p.provider_name,
                p.provider_practice,
                p.provider_phone,
                p.provider_fax,
                p.provider_email,
                p.provider_npi,
            )),
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

/// Records a letter, decided as received, for the patient.
pub fn insert_referral(
    conn: &mut DbConnection,
    patient_id: &str,
    letter: &NewReferral,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Referral, StoreError> {
    require_patient(conn, patient_id)?;
    let id = new_id();
    let now = now.naive_utc();
    diesel::insert_into(referrals::table)
        .values((
            referrals::id.eq(&id),
            referrals::patient_id.eq(patient_id),
            referrals::kind.eq(letter.kind.as_str()),
            provider_values!(referrals, letter.provider),
            referrals::received_on.eq(letter.received_on.get()),
            referrals::document_reference.eq(letter.document_reference.as_str()),
            referrals::status.eq(ReferralStatus::Received.as_str()),
            referrals::created_by.eq(by),
            referrals::created_at.eq(now),
            referrals::updated_at.eq(now),
        ))
        .execute(conn)?;
    find_referral(conn, &id)
}

pub fn find_referral(conn: &mut DbConnection, id: &str) -> Result<Referral, StoreError> {
    referrals::table
        .find(id)
        .select(ReferralRow::as_select())
        .get_result(conn)
        .found("referral")?
        .try_into()
}

/// Reads a referral, holding its row until commit so that a concurrent
/// verify and reject cannot both win.
pub fn hold_referral(conn: &mut DbConnection, id: &str) -> Result<Referral, StoreError> {
    hold_row!(referrals, id, conn)?;
    find_referral(conn, id)
}

pub fn list_referrals(
    conn: &mut DbConnection,
    patient_id: &str,
    rows: &Rows,
) -> Result<Vec<Referral>, StoreError> {
    require_patient(conn, patient_id)?;
    search_referrals(conn, Some(patient_id), rows)
}

/// A page of referrals in id order: one patient's, or everyone's.
pub fn search_referrals(
    conn: &mut DbConnection,
    patient_id: Option<&str>,
    rows: &Rows,
) -> Result<Vec<Referral>, StoreError> {
    let mut query = page!(referrals, ReferralRow::as_select(), rows);
    if let Some(patient_id) = patient_id {
        query = query.filter(referrals::patient_id.eq(patient_id.to_owned()));
    }
    query.load(conn)?.into_iter().map(Referral::try_from).collect()
}

/// Writes a clinician's decided verdict.
pub fn record_verdict(
    conn: &mut DbConnection,
    id: &str,
    decision: &Decision,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Referral, StoreError> {
    let now = now.naive_utc();
    diesel::update(referrals::table.find(id))
        .set((
            referrals::status.eq(decision.status.as_str()),
            referrals::reject_reason.eq(&decision.reject_reason),
            referrals::decided_by.eq(by),
            referrals::decided_at.eq(now),
            referrals::updated_at.eq(now),
        ))
        .execute(conn)?;
    find_referral(conn, id)
}

// ---- attestations and consults ------------------------------------------------

/// A text column's Rust type, one per name.
macro_rules! text_of {
    ($column:ident) => {
        String
    };
}

/// Storing and listing one kind of record that names a provider: `$insert`
/// and `$list` over `$table`, whose date column is `$on`, and (consults)
/// text columns besides. `$make` builds the record from its provider, date
/// and those texts.
macro_rules! kept_records {
    (
        $record:ty, $insert:ident, $list:ident, $table:ident,
        $provider:ident, $on:ident $(, $text:ident)*;
        $make:expr
    ) => {
        /// Records it for the patient, as decided.
        pub fn $insert(
            conn: &mut DbConnection,
            patient_id: &str,
            record: &$record,
            by: &str,
            now: DateTime<Utc>,
        ) -> Result<Kept<$record>, StoreError> {
            require_patient(conn, patient_id)?;
            let id = new_id();
            diesel::insert_into($table::table)
                .values((
                    $table::id.eq(&id),
                    $table::patient_id.eq(patient_id),
                    provider_values!($table, record.$provider),
                    $table::$on.eq(record.$on.get()),
                    $($table::$text.eq(record.$text.as_str()),)*
                    $table::recorded_by.eq(by),
                    $table::created_at.eq(now.naive_utc()),
                ))
                .execute(conn)?;
            Ok(Kept {
                id,
                patient_id: patient_id.to_owned(),
                record: record.clone(),
                recorded_by: by.to_owned(),
                created_at: now,
            })
        }

        /// One page of the patient's, oldest first.
        pub fn $list(
            conn: &mut DbConnection,
            patient_id: &str,
            rows: &Rows,
        ) -> Result<Vec<Kept<$record>>, StoreError> {
            require_patient(conn, patient_id)?;
            let columns = (
                $table::id,
                provider_columns!($table),
                $table::$on,
                $($table::$text,)*
                $table::recorded_by,
                $table::created_at,
            );
            let make = $make;
            type Row = (String, ProviderColumns, NaiveDate, $(text_of!($text),)* String, NaiveDateTime);
            Ok(page!($table, columns, rows)
                .filter($table::patient_id.eq(patient_id))
                .load::<Row>(conn)?
                .into_iter()
                .map(|(id, columns, on, $($text,)* recorded_by, created_at)| Kept {
                    id,
                    patient_id: patient_id.to_owned(),
                    record: make(provider(columns), CalendarDate::stored(on), ($($text,)*)),
                    recorded_by,
                    created_at: created_at.and_utc(),
                })
                .collect())
        }
    };
}

kept_records!(
    Attestation, insert_attestation, list_attestations, treatment_attestations,
    provider, attested_on;
    |provider, attested_on, ()| Attestation { provider, attested_on }
);

kept_records!(
    Consult, insert_consult, list_consults, prescriber_consults,
    prescriber, consulted_on, agreed_plan;
    |prescriber, consulted_on, (plan,): (String,)| Consult {
        prescriber,
        consulted_on,
        agreed_plan: Text::stored(plan),
    }
);

// ---- screenings ---------------------------------------------------------------

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
    fn into_screening(self, medications: Vec<Medication>) -> Result<Screening, StoreError> {
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
    {
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
        for (position, medication) in medications.iter().enumerate() {
            diesel::insert_into(screening_medications::table)
                .values((
                    screening_medications::screening_id.eq(&id),
                    screening_medications::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
                    screening_medications::name.eq(medication.name.as_str()),
                ))
                .execute(conn)?;
        }
        find_screening(conn, &id)
    }
}

fn with_medications(
    conn: &mut DbConnection,
    rows: Vec<ScreeningRow>,
) -> Result<Vec<Screening>, StoreError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let meds: Vec<(String, String)> = screening_medications::table
        .filter(screening_medications::screening_id.eq_any(&ids))
        .order((screening_medications::screening_id, screening_medications::position))
        .select((screening_medications::screening_id, screening_medications::name))
        .load(conn)?;
    rows.into_iter()
        .map(|row| {
            let medications = meds
                .iter()
                .filter(|(s, _)| *s == row.id)
                .map(|(_, name)| Medication { name: Text::stored(name.clone()) })
                .collect();
            row.into_screening(medications)
        })
        .collect()
}

pub fn find_screening(conn: &mut DbConnection, id: &str) -> Result<Screening, StoreError> {
    let row = screenings::table
        .find(id)
        .select(ScreeningRow::as_select())
        .get_result(conn)
        .found("screening")?;
    with_medications(conn, vec![row])?.pop().ok_or(StoreError::NotFound("screening"))
}

pub fn list_screenings(
    conn: &mut DbConnection,
    patient_id: &str,
    rows: &Rows,
) -> Result<Vec<Screening>, StoreError> {
    require_patient(conn, patient_id)?;
    let rows = page!(screenings, ScreeningRow::as_select(), rows)
        .filter(screenings::patient_id.eq(patient_id))
        .load(conn)?;
    with_medications(conn, rows)
}

// ---- readiness ----------------------------------------------------------------

/// Everything readiness reads about a patient, in four small statements
/// (one of them the patient's own, as `patients::find` reads it);
/// `None` when there is no such patient.
pub fn intake_record(
    conn: &mut DbConnection,
    patient_id: &str,
) -> Result<Option<IntakeRecord>, StoreError> {
    let patient = match patients::find(conn, patient_id) {
        Ok(patient) => patient.details,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(other) => return Err(other),
    };
    // The latest by id (ids are time-ordered), as a subquery: see the
    // module documentation of `store` on LIMIT.
    let later = diesel::alias!(screenings as later);
    let latest_id = later
        .filter(later.field(screenings::patient_id).eq(patient_id))
        .select(diesel::dsl::max(later.field(screenings::id)))
        .single_value();
    let latest_screening = on_backend!(conn, |c| screenings::table
        .filter(screenings::id.nullable().eq(latest_id))
        .select(ScreeningRow::as_select())
        .get_result(c))
    .optional()?
    .map(|row| {
        let s = row.into_screening(Vec::new())?;
        Ok::<_, StoreError>(ScreeningSummary {
            screened_on: s.screened_on,
            outcome: s.outcome,
            reasons: s.reasons(),
            lamotrigine: s.lamotrigine,
            recorded_at: s.created_at,
        })
    })
    .transpose()?;
    let referrals = on_backend!(conn, |c| referrals::table
        .filter(referrals::patient_id.eq(patient_id))
        .select((referrals::kind, referrals::status, referrals::received_on))
        .load::<(String, String, NaiveDate)>(c))?
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
    // Both latest dates in one round trip.
    let attested = treatment_attestations::table
        .filter(treatment_attestations::patient_id.eq(patient_id))
        .select(diesel::dsl::max(treatment_attestations::attested_on))
        .single_value();
    let consulted = prescriber_consults::table
        .filter(prescriber_consults::patient_id.eq(patient_id))
        .select(diesel::dsl::max(prescriber_consults::created_at))
        .single_value();
    let (latest_attestation, latest_consult_at) =
        on_backend!(conn, |c| diesel::select((attested, consulted))
            .get_result::<(Option<NaiveDate>, Option<NaiveDateTime>)>(c))?;
    let latest_consult_at = latest_consult_at.map(|t| t.and_utc());
    Ok(Some(IntakeRecord {
        patient,
        latest_screening,
        referrals,
        latest_attestation,
        latest_consult_at,
    }))
}
