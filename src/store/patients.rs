//! The patients aggregate: a row in `patients` plus its indications and
//! identifiers. Writes run in the caller's transaction.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::diagnosis::Diagnosis;
use crate::domain::identifier::{
    self, Identifier, IdentifierSearch, IdentifierSystem, IdentifierValue,
};
use crate::domain::patient::{
    fold, Indication, IndicationCode, IndicationSubtype, NameKeys, Patient, PatientDetails,
};

use super::billing;
use super::connection::write_transaction;
use super::schema::{patient_identifiers, patient_indications, patients};
use super::{is_unique_violation, new_id, DbConnection, Rows, StoreError};

#[derive(Queryable, Selectable)]
#[diesel(table_name = patients)]
struct PatientRow {
    id: String,
    given_name: String,
    family_name: String,
    date_of_birth: NaiveDate,
    email: Option<String>,
    phone: Option<String>,
    in_mental_health_treatment: bool,
    pain_referral_required: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    address: Option<String>,
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = patients, treat_none_as_null = true)]
struct PatientValues<'a> {
    given_name: &'a str,
    family_name: &'a str,
    search_name: String,
    given_key: String,
    family_key: String,
    date_of_birth: NaiveDate,
    email: Option<&'a str>,
    phone: Option<&'a str>,
    in_mental_health_treatment: bool,
    pain_referral_required: bool,
    updated_at: NaiveDateTime,
    address: Option<String>,
}

impl<'a> PatientValues<'a> {
    fn new(details: &'a PatientDetails, now: NaiveDateTime) -> Result<Self, StoreError> {
        let keys = NameKeys::of(&details.given_name, &details.family_name);
        Ok(Self {
            given_name: &details.given_name,
            family_name: &details.family_name,
            search_name: keys.search,
            given_key: keys.given,
            family_key: keys.family,
            date_of_birth: details.date_of_birth,
            email: details.email.as_deref(),
            phone: details.phone.as_deref(),
            in_mental_health_treatment: details.in_mental_health_treatment,
            pain_referral_required: details.pain_referral_required,
            updated_at: now,
            address: details.address.as_ref().map(billing::address_text).transpose()?,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = patient_indications)]
struct IndicationRow {
    patient_id: String,
    code: String,
    subtype: Option<String>,
    diagnosis: Option<String>,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = patient_identifiers)]
struct IdentifierRow {
    patient_id: String,
    system: String,
    value: String,
}

/// The key that gives an identifier one patient: its name in PostgreSQL,
/// and the column SQLite's message names.
const IDENTIFIER_KEY: (&str, &str) =
    ("patient_identifiers_system_value_key", "patient_identifiers.system");

/// Stores a new patient with its indications and identifiers.
pub fn insert(
    conn: &mut DbConnection,
    details: &PatientDetails,
    now: DateTime<Utc>,
) -> Result<Patient, StoreError> {
    let id = new_id();
    let now = now.naive_utc();
    diesel::insert_into(patients::table)
        .values((
            patients::id.eq(&id),
            PatientValues::new(details, now)?,
            patients::created_at.eq(now),
        ))
        .execute(conn)?;
    insert_indications(conn, &id, &details.indications)?;
    insert_identifiers(conn, &id, &details.identifiers)?;
    find(conn, &id)
}

/// Holds the patient's row until the transaction ends, if there is one:
/// what is decided per patient (one course at a time) is decided by one
/// transaction at a time.
pub fn lock(conn: &mut DbConnection, id: &str) -> Result<(), StoreError> {
    hold_row!(patients, id, conn)?;
    Ok(())
}

/// Reads a patient, holding its row until commit so that concurrent
/// changes apply one after the other.
pub fn hold(conn: &mut DbConnection, id: &str) -> Result<Patient, StoreError> {
    hold_row!(patients, id, conn)?;
    find(conn, id)
}

/// Replaces the details of `current` with `details`; nothing is written
/// when nothing changed.
pub fn replace(
    conn: &mut DbConnection,
    current: Patient,
    details: &PatientDetails,
    now: DateTime<Utc>,
) -> Result<Patient, StoreError> {
    if *details == current.details {
        return Ok(current);
    }
    let id = current.id.as_str();
    diesel::update(patients::table.find(id))
        .set(PatientValues::new(details, now.naive_utc())?)
        .execute(conn)?;
    if details.indications != current.details.indications {
        diesel::delete(patient_indications::table.filter(patient_indications::patient_id.eq(id)))
            .execute(conn)?;
        insert_indications(conn, id, &details.indications)?;
    }
    if details.identifiers != current.details.identifiers {
        diesel::delete(patient_identifiers::table.filter(patient_identifiers::patient_id.eq(id)))
            .execute(conn)?;
        insert_identifiers(conn, id, &details.identifiers)?;
    }
    find(conn, id)
}

fn insert_indications(
    conn: &mut DbConnection,
    patient_id: &str,
    indications: &[Indication],
) -> Result<(), StoreError> {
    // One statement per row: MultiConnection has no portable batch insert,
    // and a patient has at most four indications.
    for indication in indications {
        diesel::insert_into(patient_indications::table)
            .values(IndicationRow {
                patient_id: patient_id.to_owned(),
                code: indication.code.as_str().to_owned(),
                subtype: indication.subtype.map(|s| s.as_str().to_owned()),
                diagnosis: indication.diagnosis.map(|d| d.code().to_owned()),
            })
            .execute(conn)?;
    }
    Ok(())
}

/// Stores the patient's identifiers. Another patient's identifier is
/// refused by the key, whatever the timing, and the refusal names that
/// patient (`conflict`).
fn insert_identifiers(
    conn: &mut DbConnection,
    patient_id: &str,
    identifiers: &[Identifier],
) -> Result<(), StoreError> {
    if identifiers.is_empty() {
        return Ok(());
    }
    // In a savepoint: after a unique violation PostgreSQL answers nothing
    // more in the transaction until it is rolled back, and the holder is
    // read after it. Under READ COMMITTED that read sees the racing
    // registration that took the key, as it committed before the violation.
    let inserted = conn.transaction(|conn| {
        for identifier in identifiers {
            diesel::insert_into(patient_identifiers::table)
                .values(IdentifierRow {
                    patient_id: patient_id.to_owned(),
                    system: identifier.system.as_str().to_owned(),
                    value: identifier.value.as_str().to_owned(),
                })
                .execute(conn)?;
        }
        Ok::<_, diesel::result::Error>(())
    });
    match inserted.map_err(StoreError::from) {
        Err(e) if is_unique_violation(&e, IDENTIFIER_KEY.0, IDENTIFIER_KEY.1) => {
            for identifier in identifiers {
                if let Some(holder) = holder(conn, identifier)?.filter(|h| h != patient_id) {
                    return Err(identifier::taken(identifier, holder).into());
                }
            }
            // The holder let it go again since: this request may simply
            // be sent again.
            Err(StoreError::Unavailable("a concurrent change took an identifier; retry".into()))
        }
        other => other,
    }
}

/// The patient that holds `identifier`, if any.
fn holder(conn: &mut DbConnection, identifier: &Identifier) -> Result<Option<String>, StoreError> {
    Ok(patient_identifiers::table
        .find((identifier.system.as_str(), identifier.value.as_str()))
        .select(patient_identifiers::patient_id)
        .get_result(conn)
        .optional()?)
}

/// One patient by id.
pub fn find(conn: &mut DbConnection, id: &str) -> Result<Patient, StoreError> {
    // One statement: the patient's row once per pair of its indications and
    // identifiers (a few of each), a round trip fewer than reading the
    // identifiers apart.
    let joined: Vec<(PatientRow, Option<IndicationRow>, Option<IdentifierRow>)> =
        on_backend!(conn, |c| patients::table
            .left_join(patient_indications::table)
            .left_join(patient_identifiers::table)
            .filter(patients::id.eq(id))
            .select((
                PatientRow::as_select(),
                Option::<IndicationRow>::as_select(),
                Option::<IdentifierRow>::as_select(),
            ))
            .load(c))?;
    let mut rows = Vec::with_capacity(1);
    let mut indications: Vec<IndicationRow> = Vec::new();
    let mut identifiers: Vec<IdentifierRow> = Vec::new();
    for (row, indication, identifier) in joined {
        if rows.is_empty() {
            rows.push(row);
        }
        if let Some(new) = indication.filter(|new| indications.iter().all(|i| i.code != new.code)) {
            indications.push(new);
        }
        if let Some(new) = identifier.filter(|new| {
            identifiers.iter().all(|i| (&i.system, &i.value) != (&new.system, &new.value))
        }) {
            identifiers.push(new);
        }
    }
    assemble(rows, indications, identifiers)?.pop().ok_or(StoreError::NotFound("patient"))
}

/// The patients of `ids` that exist, in id order.
pub fn find_all(conn: &mut DbConnection, ids: &[String]) -> Result<Vec<Patient>, StoreError> {
    let rows = patients::table
        .filter(patients::id.eq_any(ids))
        .order(patients::id)
        .select(PatientRow::as_select())
        .load(conn)?;
    with_details(conn, rows)
}

/// Whether a patient with this id exists.
pub fn exists(conn: &mut DbConnection, id: &str) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(patients::table.find(id))).get_result(conn)?)
}

/// What a search of patients asks for; every part optional, all must hold.
#[derive(Clone, Debug, Default)]
pub struct Search {
    pub id: Option<String>,
    /// Part of the full name, case- and accent-insensitive (`fold`).
    pub name: Option<String>,
    pub identifier: Option<IdentifierSearch>,
    /// How the family name starts, case- and accent-insensitive.
    pub family: Option<String>,
    /// How the given name starts, case- and accent-insensitive.
    pub given: Option<String>,
    pub born_from: Option<NaiveDate>,
    pub born_to: Option<NaiveDate>,
}

/// One page of patients in id order after `after`, optionally only those
/// whose full name contains `name` (case- and accent-insensitive) and only the one
/// that holds `identifier`.
pub fn list(
    conn: &mut DbConnection,
    name: Option<&str>,
    identifier: Option<&IdentifierSearch>,
    rows: &Rows,
) -> Result<Vec<Patient>, StoreError> {
    let search = Search {
        name: name.map(str::to_owned),
        identifier: identifier.cloned(),
        ..Search::default()
    };
    search_page(conn, &search, rows)
}

/// One page of the patients `search` finds, in id order after `after`.
pub fn search_page(
    conn: &mut DbConnection,
    search: &Search,
    rows: &Rows,
) -> Result<Vec<Patient>, StoreError> {
    let mut query = page!(patients, PatientRow::as_select(), rows);
    if let Some(id) = &search.id {
        query = query.filter(patients::id.eq(id.clone()));
    }
    if let Some(identifier) = &search.identifier {
        query = query.filter(
            patients::id.eq_any(
                patient_identifiers::table
                    .filter(patient_identifiers::system.eq(identifier.system.clone()))
                    .filter(patient_identifiers::value.eq(identifier.value.clone()))
                    .select(patient_identifiers::patient_id),
            ),
        );
    }
    if let Some(name) = &search.name {
        query = query.filter(
            patients::search_name.like(format!("%{}%", escape_like(&fold(name)))).escape('\\'),
        );
    }
    if let Some(family) = &search.family {
        let starts = format!("{}%", escape_like(&fold(family)));
        query = query.filter(patients::family_key.like(starts).escape('\\'));
    }
    if let Some(given) = &search.given {
        let starts = format!("{}%", escape_like(&fold(given)));
        query = query.filter(patients::given_key.like(starts).escape('\\'));
    }
    if let Some(from) = search.born_from {
        query = query.filter(patients::date_of_birth.ge(from));
    }
    if let Some(to) = search.born_to {
        query = query.filter(patients::date_of_birth.le(to));
    }
    let rows = query.load(conn)?;
    with_details(conn, rows)
}

/// Writes the name keys ([`NameKeys`]) of the patients stored without them:
/// those stored before the keys were (migration `name_keys`), or loaded by
/// SQL, as `make bench` seeds them. Their search names are written again
/// with them, folded alike. One transaction; run with the migrations
/// ([`super::migrations::run_pending`]). Returns how many it wrote.
pub fn fill_name_keys(conn: &mut DbConnection) -> Result<usize, StoreError> {
    write_transaction(conn, |conn| {
        let names: Vec<(String, String, String)> = patients::table
            .filter(patients::family_key.is_null().or(patients::given_key.is_null()))
            .select((patients::id, patients::given_name, patients::family_name))
            .load(conn)?;
        for (id, given_name, family_name) in &names {
            let keys = NameKeys::of(given_name, family_name);
            diesel::update(patients::table.find(id))
                .set((
                    patients::search_name.eq(keys.search),
                    patients::given_key.eq(keys.given),
                    patients::family_key.eq(keys.family),
                ))
                .execute(conn)?;
        }
        Ok(names.len())
    })
}

/// Escapes LIKE's wildcards so a search for `50%` finds the text `50%`.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Loads the indications and identifiers of all `rows`, one query each.
fn with_details(
    conn: &mut DbConnection,
    rows: Vec<PatientRow>,
) -> Result<Vec<Patient>, StoreError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let indication_rows: Vec<IndicationRow> = patient_indications::table
        .filter(patient_indications::patient_id.eq_any(&ids))
        .select(IndicationRow::as_select())
        .load(conn)?;
    let identifier_rows: Vec<IdentifierRow> = patient_identifiers::table
        .filter(patient_identifiers::patient_id.eq_any(&ids))
        .select(IdentifierRow::as_select())
        .load(conn)?;
    assemble(rows, indication_rows, identifier_rows)
}

/// Patients from their rows and all their indication and identifier rows.
fn assemble(
    rows: Vec<PatientRow>,
    indication_rows: Vec<IndicationRow>,
    identifier_rows: Vec<IdentifierRow>,
) -> Result<Vec<Patient>, StoreError> {
    let mut identifiers: HashMap<String, Vec<Identifier>> = HashMap::new();
    for row in identifier_rows {
        identifiers.entry(row.patient_id).or_default().push(Identifier {
            system: IdentifierSystem::stored(row.system),
            value: IdentifierValue::stored(row.value),
        });
    }
    let mut by_patient: HashMap<String, Vec<Indication>> = HashMap::new();
    for row in indication_rows {
        let code = IndicationCode::parse(&row.code)
            .ok_or_else(|| StoreError::Invalid(format!("indication code `{}`", row.code)))?;
        let subtype = match row.subtype.as_deref() {
            None => None,
            Some(text) => Some(
                IndicationSubtype::parse(text)
                    .ok_or_else(|| StoreError::Invalid(format!("indication subtype `{text}`")))?,
            ),
        };
        let diagnosis = row.diagnosis.as_deref().and_then(|text| {
            let diagnosis = Diagnosis::stored(text);
            if diagnosis.is_none() {
                // The id only: a code next to it would be health data.
                log::warn!(
                    "patient {}: a stored diagnosis code is no longer in the ICD-10-CM table; \
                     read as uncoded",
                    row.patient_id
                );
            }
            diagnosis
        });
        by_patient.entry(row.patient_id).or_default().push(Indication { code, subtype, diagnosis });
    }
    rows.into_iter()
        .map(|row| {
            let mut indications = by_patient.remove(&row.id).unwrap_or_default();
            indications.sort_by_key(|i| IndicationCode::ALL.iter().position(|c| *c == i.code));
            let mut identifiers = identifiers.remove(&row.id).unwrap_or_default();
            identifiers.sort();
            Ok(Patient {
                details: PatientDetails {
                    address: row.address.as_deref().map(billing::address_of).transpose()?,
                    given_name: row.given_name,
                    family_name: row.family_name,
                    date_of_birth: row.date_of_birth,
                    email: row.email,
                    phone: row.phone,
                    indications,
                    in_mental_health_treatment: row.in_mental_health_treatment,
                    pain_referral_required: row.pain_referral_required,
                    identifiers,
                },
                id: row.id,
                created_at: row.created_at.and_utc(),
                updated_at: row.updated_at.and_utc(),
            })
        })
        .collect()
}
