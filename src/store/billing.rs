//! Billing: the clinic's billing profile, clinicians, the fee schedule,
//! charges and payments. Writes run in the caller's transaction and store
//! what the domain decided (`domain::billing`); a charge or payment is
//! never updated but to void it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::billing::{
    amount, BillFacts, BilledPatient, BillingCode, BillingProfile, Cents, Charge, Clinician,
    CompletionFacts, DrugUnit, Ein, Fee, Ndc, NdcQuantity, NdcUnit, NewCharge, NewPayment, Npi,
    PaidCents, Payment, PaymentMethod, Phone, PlaceOfService, PostalAddress, Void,
};
use crate::domain::values::Text;
use crate::domain::Refusal;

use super::schema::{billing_profile, charges, clinicians, fees, payments};
use super::{new_id, unique_or_conflict, DbConnection, Found, Rows, StoreError};

fn invalid(what: &str, value: &str) -> StoreError {
    StoreError::Invalid(format!("billing {what} `{value}`"))
}

/// A stored postal address (JSON). What cannot be read is not echoed: an
/// address is a patient's, and the error is logged.
pub fn address_of(text: &str) -> Result<PostalAddress, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Invalid(format!("a stored postal address: {:?}", e.classify())))
}

/// A postal address as stored (JSON).
pub fn address_text(address: &PostalAddress) -> Result<String, StoreError> {
    serde_json::to_string(address).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// The only row of `billing_profile`.
const PROFILE: &str = "clinic";

#[derive(Queryable, Selectable)]
#[diesel(table_name = billing_profile)]
struct ProfileRow {
    legal_name: String,
    address: String,
    phone: String,
    tax_id: String,
    npi: String,
    place_of_service: String,
}

/// The clinic's billing profile, if an admin has set it.
pub fn profile(conn: &mut DbConnection) -> Result<Option<BillingProfile>, StoreError> {
    let row: Option<ProfileRow> = billing_profile::table
        .find(PROFILE)
        .select(ProfileRow::as_select())
        .get_result(conn)
        .optional()?;
    row.map(|row| {
        Ok(BillingProfile {
            address: address_of(&row.address)?,
            legal_name: Text::stored(row.legal_name),
            phone: Phone::stored(row.phone),
            tax_id: Ein::stored(row.tax_id),
            npi: Npi::stored(row.npi),
            place_of_service: PlaceOfService::stored(row.place_of_service),
        })
    })
    .transpose()
}

/// Sets the billing profile, replacing what was there.
pub fn put_profile(
    conn: &mut DbConnection,
    p: &BillingProfile,
    now: DateTime<Utc>,
) -> Result<BillingProfile, StoreError> {
    let address = address_text(&p.address)?;
    let values = (
        billing_profile::legal_name.eq(p.legal_name.as_str()),
        billing_profile::address.eq(&address),
        billing_profile::phone.eq(p.phone.as_str()),
        billing_profile::tax_id.eq(p.tax_id.as_str()),
        billing_profile::npi.eq(p.npi.as_str()),
        billing_profile::place_of_service.eq(p.place_of_service.as_str()),
        billing_profile::updated_at.eq(now.naive_utc()),
    );
    // One statement, so that two first settings at once do not both insert
    // (`ON CONFLICT` per backend: diesel's MultiConnection has no upsert).
    let upsert = diesel::insert_into(billing_profile::table)
        .values((billing_profile::id.eq(PROFILE), values))
        .on_conflict(billing_profile::id)
        .do_update()
        .set(values);
    match conn {
        DbConnection::Pg(pg) => upsert.execute(pg)?,
        DbConnection::Sqlite(sqlite) => upsert.execute(sqlite)?,
    };
    profile(conn)?.ok_or(StoreError::NotFound("billing profile"))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = clinicians)]
struct ClinicianRow {
    id: String,
    name: String,
    credentials: String,
    npi: String,
    active: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl From<ClinicianRow> for Clinician {
    fn from(row: ClinicianRow) -> Self {
        Clinician {
            id: row.id,
            name: row.name,
            credentials: row.credentials,
            npi: row.npi,
            active: row.active,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        }
    }
}

/// The unique index on clinicians' NPIs.
const NPI_KEY: (&str, &str) = ("clinicians_npi_key", "clinicians.npi");

fn npi_taken(npi: &str) -> impl FnOnce() -> String + '_ {
    move || format!("a clinician with NPI {npi} is already on record")
}

pub fn list_clinicians(conn: &mut DbConnection, rows: &Rows) -> Result<Vec<Clinician>, StoreError> {
    let rows: Vec<ClinicianRow> = page!(clinicians, ClinicianRow::as_select(), rows).load(conn)?;
    Ok(rows.into_iter().map(Clinician::from).collect())
}

pub fn find_clinician(conn: &mut DbConnection, id: &str) -> Result<Clinician, StoreError> {
    clinician(conn, id)?.ok_or(StoreError::NotFound("clinician"))
}

/// Reads a clinician, holding the row until commit: two changes queue,
/// and each checks `If-Match` against the other's result.
pub fn hold_clinician(conn: &mut DbConnection, id: &str) -> Result<Clinician, StoreError> {
    hold_row!(clinicians, id, conn)?;
    find_clinician(conn, id)
}

/// The clinician `id`, if there is one.
pub fn clinician(conn: &mut DbConnection, id: &str) -> Result<Option<Clinician>, StoreError> {
    let row: Option<ClinicianRow> =
        clinicians::table.find(id).select(ClinicianRow::as_select()).get_result(conn).optional()?;
    Ok(row.map(Clinician::from))
}

/// The clinicians of `ids`.
pub fn clinicians_of(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<Vec<Clinician>, StoreError> {
    let rows: Vec<ClinicianRow> = clinicians::table
        .filter(clinicians::id.eq_any(ids))
        .order(clinicians::id)
        .select(ClinicianRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(Clinician::from).collect())
}

/// A clinician's name, credentials, NPI and whether active.
pub struct ClinicianFields<'a> {
    pub name: &'a str,
    pub credentials: &'a str,
    pub npi: &'a str,
    pub active: bool,
}

pub fn insert_clinician(
    conn: &mut DbConnection,
    c: &ClinicianFields,
    now: DateTime<Utc>,
) -> Result<Clinician, StoreError> {
    let id = new_id();
    let now = now.naive_utc();
    let inserted = diesel::insert_into(clinicians::table)
        .values((
            clinicians::id.eq(&id),
            clinicians::name.eq(c.name),
            clinicians::credentials.eq(c.credentials),
            clinicians::npi.eq(c.npi),
            clinicians::active.eq(c.active),
            clinicians::created_at.eq(now),
            clinicians::updated_at.eq(now),
        ))
        .execute(conn);
    unique_or_conflict(inserted, NPI_KEY, npi_taken(c.npi))?;
    find_clinician(conn, &id)
}

/// Changes a clinician's fields; `None` leaves one as it is.
pub fn update_clinician(
    conn: &mut DbConnection,
    id: &str,
    name: Option<&str>,
    credentials: Option<&str>,
    npi: Option<&str>,
    active: Option<bool>,
    now: DateTime<Utc>,
) -> Result<Clinician, StoreError> {
    let updated = diesel::update(clinicians::table.find(id))
        .set((
            name.map(|v| clinicians::name.eq(v)),
            credentials.map(|v| clinicians::credentials.eq(v)),
            npi.map(|v| clinicians::npi.eq(v)),
            active.map(|v| clinicians::active.eq(v)),
            clinicians::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn);
    unique_or_conflict(updated, NPI_KEY, npi_taken(npi.unwrap_or_default()))?;
    find_clinician(conn, id)
}

/// A drug's NDC columns, read back.
fn drug_of(
    ndc: Option<String>,
    unit: Option<String>,
    quantity: Option<String>,
) -> Result<Option<DrugUnit>, StoreError> {
    match (ndc, unit, quantity) {
        (Some(ndc), Some(unit), Some(quantity)) => Ok(Some(DrugUnit {
            ndc: Ndc::stored(ndc),
            unit: NdcUnit::parse(&unit).ok_or_else(|| invalid("NDC unit", &unit))?,
            quantity: NdcQuantity::stored(quantity),
        })),
        _ => Ok(None),
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = fees)]
struct FeeRow {
    code: String,
    price_cents: i64,
    ndc: Option<String>,
    ndc_unit: Option<String>,
    ndc_quantity: Option<String>,
    updated_at: NaiveDateTime,
}

impl TryFrom<FeeRow> for Fee {
    type Error = StoreError;

    fn try_from(row: FeeRow) -> Result<Self, StoreError> {
        let code = BillingCode::parse(&row.code).ok_or_else(|| invalid("code", &row.code))?;
        Ok(Fee {
            code,
            description: code.description(),
            price_cents: Cents::stored(row.price_cents),
            drug: drug_of(row.ndc, row.ndc_unit, row.ndc_quantity)?,
            updated_at: row.updated_at.and_utc(),
        })
    }
}

/// The fee schedule: each priced code, in the codes' order.
pub fn fees(conn: &mut DbConnection) -> Result<Vec<Fee>, StoreError> {
    let rows: Vec<FeeRow> = fees::table.select(FeeRow::as_select()).load(conn)?;
    let mut fees: Vec<Fee> = rows.into_iter().map(Fee::try_from).collect::<Result<_, _>>()?;
    fees.sort_by_key(|f| BillingCode::ALL.iter().position(|c| *c == f.code));
    Ok(fees)
}

/// Prices `code`, replacing its price.
pub fn put_fee(
    conn: &mut DbConnection,
    code: BillingCode,
    price: Cents,
    drug: Option<&DrugUnit>,
    now: DateTime<Utc>,
) -> Result<Fee, StoreError> {
    let values = (
        fees::price_cents.eq(price.value()),
        fees::ndc.eq(drug.map(|d| d.ndc.as_str())),
        fees::ndc_unit.eq(drug.map(|d| d.unit.as_str())),
        fees::ndc_quantity.eq(drug.map(|d| d.quantity.as_str())),
        fees::updated_at.eq(now.naive_utc()),
    );
    // One statement, as for the profile: a code's first two prices at once
    // do not both insert.
    let upsert = diesel::insert_into(fees::table)
        .values((fees::code.eq(code.as_str()), values))
        .on_conflict(fees::code)
        .do_update()
        .set(values);
    match conn {
        DbConnection::Pg(pg) => upsert.execute(pg)?,
        DbConnection::Sqlite(sqlite) => upsert.execute(sqlite)?,
    };
    let row: FeeRow =
        fees::table.find(code.as_str()).select(FeeRow::as_select()).get_result(conn)?;
    row.try_into()
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn void_of(at: Option<NaiveDateTime>, by: Option<String>, reason: Option<String>) -> Option<Void> {
    Some(Void { at: at?.and_utc(), by: by.unwrap_or_default(), reason: reason.unwrap_or_default() })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = charges)]
struct ChargeRow {
    id: String,
    patient_id: String,
    appointment_id: Option<String>,
    clinician_id: String,
    date_of_service: NaiveDate,
    code: String,
    modifiers: String,
    units: i32,
    unit_price_cents: i64,
    ndc: Option<String>,
    ndc_unit: Option<String>,
    ndc_quantity: Option<String>,
    diagnoses: String,
    place_of_service: String,
    created_by: String,
    created_at: NaiveDateTime,
    voided_at: Option<NaiveDateTime>,
    voided_by: Option<String>,
    void_reason: Option<String>,
}

impl TryFrom<ChargeRow> for Charge {
    type Error = StoreError;

    fn try_from(row: ChargeRow) -> Result<Self, StoreError> {
        let units =
            u16::try_from(row.units).map_err(|_| invalid("units", &row.units.to_string()))?;
        let unit_price_cents = Cents::stored(row.unit_price_cents);
        Ok(Charge {
            code: BillingCode::parse(&row.code).ok_or_else(|| invalid("code", &row.code))?,
            drug: drug_of(row.ndc, row.ndc_unit, row.ndc_quantity)?,
            amount_cents: amount(units, unit_price_cents),
            modifiers: words(&row.modifiers),
            diagnoses: words(&row.diagnoses),
            void: void_of(row.voided_at, row.voided_by, row.void_reason),
            id: row.id,
            patient_id: row.patient_id,
            appointment_id: row.appointment_id,
            clinician_id: row.clinician_id,
            date_of_service: row.date_of_service,
            units,
            unit_price_cents,
            place_of_service: row.place_of_service,
            created_by: row.created_by,
            created_at: row.created_at.and_utc(),
        })
    }
}

/// Writes decided charges, made by `by`, and reads them back.
pub fn insert_charges(
    conn: &mut DbConnection,
    new: &[NewCharge],
    by: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Charge>, StoreError> {
    // Most actions on an appointment bill nothing: no statement for them.
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = Vec::new();
    for c in new {
        let id = new_id();
        diesel::insert_into(charges::table)
            .values((
                charges::id.eq(&id),
                charges::patient_id.eq(&c.patient_id),
                charges::appointment_id.eq(c.appointment_id.as_deref()),
                charges::clinician_id.eq(&c.clinician_id),
                charges::date_of_service.eq(c.date_of_service),
                charges::code.eq(c.code.as_str()),
                charges::modifiers.eq(c.modifiers.join(" ")),
                charges::units.eq(i32::from(c.units)),
                charges::unit_price_cents.eq(c.unit_price_cents.value()),
                charges::ndc.eq(c.drug.as_ref().map(|d| d.ndc.as_str())),
                charges::ndc_unit.eq(c.drug.as_ref().map(|d| d.unit.as_str())),
                charges::ndc_quantity.eq(c.drug.as_ref().map(|d| d.quantity.as_str())),
                charges::diagnoses.eq(c.diagnoses.join(" ")),
                charges::place_of_service.eq(&c.place_of_service),
                charges::created_by.eq(by),
                charges::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        ids.push(id);
    }
    let rows: Vec<ChargeRow> = charges::table
        .filter(charges::id.eq_any(&ids))
        .order(charges::id)
        .select(ChargeRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Charge::try_from).collect()
}

pub fn find_charge(conn: &mut DbConnection, id: &str) -> Result<Charge, StoreError> {
    charges::table
        .find(id)
        .select(ChargeRow::as_select())
        .get_result(conn)
        .found("charge")?
        .try_into()
}

/// Reads a charge, holding its row until commit: two voids of it queue.
pub fn hold_charge(conn: &mut DbConnection, id: &str) -> Result<Charge, StoreError> {
    hold_row!(charges, id, conn)?;
    find_charge(conn, id)
}

/// Which of a patient's charges or payments: dated from `from` to `to`
/// (each if given), a page of them in id order, or all.
#[derive(Clone, Debug, Default)]
pub struct Span {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub rows: Option<Rows>,
}

/// `$table`'s rows of `$patient` dated (`$date`) within the [`Span`]
/// `$span`, in id order, as a boxed query: charges and payments alike.
macro_rules! in_span {
    ($table:ident, $date:ident, $select:expr, $patient:expr, $span:expr) => {{
        let span: &Span = $span;
        let mut query = $table::table
            .filter($table::patient_id.eq($patient))
            .select($select)
            .order($table::id)
            .into_boxed();
        if let Some(from) = span.from {
            query = query.filter($table::$date.ge(from));
        }
        if let Some(to) = span.to {
            query = query.filter($table::$date.le(to));
        }
        if let Some(rows) = &span.rows {
            query = query.limit(rows.limit);
            if let Some(after) = &rows.after {
                query = query.filter($table::id.gt(after.clone()));
            }
        }
        query
    }};
}

/// The update that voids the row `$id` of `$table` (charges, payments).
macro_rules! void_row {
    ($table:ident, $id:expr, $reason:expr, $by:expr, $now:expr) => {
        diesel::update($table::table.find($id)).set((
            $table::voided_at.eq($now.naive_utc()),
            $table::voided_by.eq($by),
            $table::void_reason.eq($reason),
        ))
    };
}

/// A patient's charges by date of service in `span`, voided ones too.
pub fn charges_of(
    conn: &mut DbConnection,
    patient_id: &str,
    span: &Span,
) -> Result<Vec<Charge>, StoreError> {
    let rows: Vec<ChargeRow> =
        in_span!(charges, date_of_service, ChargeRow::as_select(), patient_id, span).load(conn)?;
    rows.into_iter().map(Charge::try_from).collect()
}

/// Voids a charge, as decided.
pub fn void_charge(
    conn: &mut DbConnection,
    id: &str,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Charge, StoreError> {
    void_row!(charges, id, reason, by, now).execute(conn)?;
    find_charge(conn, id)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = payments)]
struct PaymentRow {
    id: String,
    patient_id: String,
    amount_cents: i64,
    received_on: NaiveDate,
    method: String,
    reference: Option<String>,
    created_by: String,
    created_at: NaiveDateTime,
    voided_at: Option<NaiveDateTime>,
    voided_by: Option<String>,
    void_reason: Option<String>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = StoreError;

    fn try_from(row: PaymentRow) -> Result<Self, StoreError> {
        Ok(Payment {
            method: PaymentMethod::parse(&row.method)
                .ok_or_else(|| invalid("payment method", &row.method))?,
            void: void_of(row.voided_at, row.voided_by, row.void_reason),
            id: row.id,
            patient_id: row.patient_id,
            amount_cents: PaidCents::stored(row.amount_cents),
            received_on: row.received_on,
            reference: row.reference,
            created_by: row.created_by,
            created_at: row.created_at.and_utc(),
        })
    }
}

pub fn insert_payment(
    conn: &mut DbConnection,
    p: &NewPayment,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Payment, StoreError> {
    let id = new_id();
    diesel::insert_into(payments::table)
        .values((
            payments::id.eq(&id),
            payments::patient_id.eq(&p.patient_id),
            payments::amount_cents.eq(p.amount_cents.value()),
            payments::received_on.eq(p.received_on),
            payments::method.eq(p.method.as_str()),
            payments::reference.eq(p.reference.as_deref()),
            payments::created_by.eq(by),
            payments::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    find_payment(conn, &id)
}

pub fn find_payment(conn: &mut DbConnection, id: &str) -> Result<Payment, StoreError> {
    payments::table
        .find(id)
        .select(PaymentRow::as_select())
        .get_result(conn)
        .found("payment")?
        .try_into()
}

/// Reads a payment, holding its row until commit.
pub fn hold_payment(conn: &mut DbConnection, id: &str) -> Result<Payment, StoreError> {
    hold_row!(payments, id, conn)?;
    find_payment(conn, id)
}

/// A patient's payments received in `span`, voided ones too.
pub fn payments_of(
    conn: &mut DbConnection,
    patient_id: &str,
    span: &Span,
) -> Result<Vec<Payment>, StoreError> {
    let rows: Vec<PaymentRow> =
        in_span!(payments, received_on, PaymentRow::as_select(), patient_id, span).load(conn)?;
    rows.into_iter().map(Payment::try_from).collect()
}

pub fn void_payment(
    conn: &mut DbConnection,
    id: &str,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Payment, StoreError> {
    void_row!(payments, id, reason, by, now).execute(conn)?;
    find_payment(conn, id)
}

/// A patient's charges and payments, voided ones too: what a balance is
/// derived from (`Balance::of`).
pub fn account(
    conn: &mut DbConnection,
    patient_id: &str,
) -> Result<(Vec<Charge>, Vec<Payment>), StoreError> {
    let all = Span::default();
    Ok((charges_of(conn, patient_id, &all)?, payments_of(conn, patient_id, &all)?))
}

/// What completing an infusion of `patient_id` by `clinician_id` reads
/// for its charges.
pub fn completion_facts(
    conn: &mut DbConnection,
    patient_id: &str,
    clinician_id: &str,
) -> Result<CompletionFacts, StoreError> {
    Ok(CompletionFacts {
        clinician: clinician(conn, clinician_id)?,
        indications: super::patients::find(conn, patient_id)?.details.indications,
        fees: fees(conn)?,
        place_of_service: profile(conn)?.map(|p| p.place_of_service).unwrap_or_default(),
    })
}

/// What the superbill of `patient_id` for dates of service `from`–`to`
/// is made of (`to` is `today` when not given). No billing profile is
/// `billing_profile_missing`.
pub fn bill_facts(
    conn: &mut DbConnection,
    patient_id: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<BillFacts, StoreError> {
    let clinic = profile(conn)?.ok_or(Refusal::BillingProfileMissing)?;
    let patient = super::patients::find(conn, patient_id)?;
    let to = to.unwrap_or(today);
    let span = Span { from, to: Some(to), rows: None };
    let charges = charges_of(conn, patient_id, &span)?;
    let payments = payments_of(conn, patient_id, &span)?;
    let mut ids: Vec<String> = charges.iter().map(|c| c.clinician_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let clinicians = clinicians_of(conn, &ids)?;
    let details = patient.details;
    Ok(BillFacts {
        clinic,
        patient: BilledPatient {
            id: patient.id,
            given_name: details.given_name,
            family_name: details.family_name,
            date_of_birth: details.date_of_birth,
            address: details.address,
        },
        from,
        to,
        issued_on: today,
        charges,
        payments,
        clinicians,
    })
}
