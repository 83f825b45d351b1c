//! A demo clinic for people exploring the API: in development mode, `serve`
//! seeds an empty database with patients in the intake states the
//! readiness checklist tells apart, a booked course, a single booking and a
//! closure, so that every screen of Swagger UI has something to show.
//!
//! Everything goes through the decisions and store writes the API uses
//! (`PatientDetails::admitted`, `referral::receive` and `decide`,
//! `screening::screen`, `appointment::book`, `course::plan`,
//! `calendar::close`, …), in one transaction, dated relative to today in the
//! clinic's zone: the seed can make no state the API could not. Requests
//! are written as the JSON a client would send and parsed by the same types.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::config::AppEnv;
use crate::domain::appointment::{self, Request, Route, SlotRequest};
use crate::domain::billing::{
    self, BillingCode, BillingProfile, Cents, DrugUnit, InfusionMinutes, NewPayment, PaidCents,
    PaymentMethod,
};
use crate::domain::calendar::{self, Closures, Session};
use crate::domain::course::{self, CourseRequest};
use crate::domain::identifier::Identifier;
use crate::domain::intake::{self, Attestation, Consult};
use crate::domain::patient::{Indication, PatientDetails};
use crate::domain::referral::{self, NewReferral, Verdict};
use crate::domain::screening::{self, ScreeningRequest, CRITERIA};
use crate::domain::{Clinic, Refusal};
use crate::http::AppState;
use crate::store::billing::{self as bills, ClinicianFields};
use crate::store::locks::{self, Guard, Mode};
use crate::store::{
    appointments, closures, courses, intake as records, patients, write_transaction, DbConnection,
    Rows, StoreError,
};

/// Who the seeded records say recorded them.
const BY: &str = "admin:demo-clinic";

/// What `serve` did about the demo clinic.
#[derive(Debug)]
pub enum Seeding {
    /// The database was empty: the demo clinic is in it now.
    Seeded(DemoClinic),
    /// The database holds patients or closures already: nothing was added.
    NotEmpty,
    /// `DEMO_CLINIC=false`.
    Skipped,
    /// Production mode never seeds.
    Production,
}

/// What was seeded, for `serve` to print.
#[derive(Clone, Debug)]
pub struct DemoClinic {
    pub patients: usize,
    /// A patient ready to book, with nothing booked.
    pub ready_patient_id: String,
    pub ready_patient_name: String,
    /// A session the ready patient can be booked into.
    pub bookable: (NaiveDate, Session),
    pub course_id: String,
    pub closed_on: Option<NaiveDate>,
}

/// What becomes of a referral letter on file.
#[derive(Clone, Copy)]
enum Letter {
    Verified,
    /// Received, not yet decided.
    Received,
    Rejected,
    /// Received longer ago than `REFERRAL_VALID_DAYS`.
    Expired,
}

/// One demo patient and the intake on file. The family name says the state.
struct Demo {
    given: &'static str,
    family: &'static str,
    born: &'static str,
    indications: Value,
    in_mental_health_treatment: bool,
    pain_referral_required: bool,
    referrals: &'static [(&'static str, Letter)],
    attested: bool,
    /// The criteria answered true and the medications, if screened.
    screening: Option<(&'static [&'static str], &'static [&'static str])>,
    consulted: bool,
    /// The postal address, as a client sends it.
    address: Option<Value>,
}

fn pain(subtype: &str) -> Value {
    json!([{"code": "chronic_pain", "subtype": subtype}])
}

/// A patient in mental health treatment, no pain referral required,
/// screened eligible, and nothing else on file.
fn demo(given: &'static str, family: &'static str, born: &'static str, indications: Value) -> Demo {
    Demo {
        given,
        family,
        born,
        indications,
        in_mental_health_treatment: true,
        pain_referral_required: false,
        referrals: &[],
        attested: false,
        screening: Some((&[], &[])),
        consulted: false,
        address: None,
    }
}

/// The demo patients. The first is the one `serve` prints, ready to book;
/// the second gets the course, the third a single booking.
fn roster() -> Vec<Demo> {
    let depression = || json!([{"code": "depression"}]);
    let anxiety = || json!([{"code": "anxiety"}]);
    let mental_health = &[("mental_health_provider", Letter::Verified)];
    vec![
        demo("Ada", "Ready", "1984-03-12", pain("crps")),
        Demo {
            pain_referral_required: true,
            referrals: &[("pain_management", Letter::Verified)],
            ..demo("Ben", "Course", "1979-07-30", pain("neuropathic"))
        },
        Demo {
            referrals: mental_health,
            attested: true,
            screening: Some((&[], &["Sertraline 50 mg"])),
            ..demo("Cara", "Booked", "1991-11-02", depression())
        },
        Demo {
            referrals: mental_health,
            attested: true,
            ..demo(
                "Noor",
                "Pain-And-Depression",
                "1988-01-19",
                json!([{"code": "chronic_pain", "subtype": "crps"}, {"code": "depression"}]),
            )
        },
        Demo { attested: true, ..demo("Dan", "Missing-Referral", "1975-05-08", depression()) },
        Demo {
            referrals: &[("mental_health_provider", Letter::Received)],
            attested: true,
            ..demo("Eve", "Unverified-Referral", "1993-09-21", anxiety())
        },
        Demo {
            referrals: &[("mental_health_provider", Letter::Rejected)],
            attested: true,
            ..demo("Finn", "Rejected-Referral", "1969-12-03", depression())
        },
        Demo {
            referrals: &[("mental_health_provider", Letter::Expired)],
            attested: true,
            ..demo("Gus", "Expired-Referral", "1982-04-27", anxiety())
        },
        Demo {
            referrals: mental_health,
            ..demo("Mia", "No-Attestation", "1990-06-14", depression())
        },
        Demo {
            screening: Some((&[], &["Lamictal XR 100 mg", "Ibuprofen 400 mg"])),
            ..demo("Hana", "Lamotrigine-Consult-Open", "1986-10-09", json!([{"code": "migraine"}]))
        },
        Demo {
            screening: Some((&[], &["lamotrigine 200 mg"])),
            consulted: true,
            ..demo("Ivan", "Lamotrigine-Consult-Done", "1977-02-15", pain("other"))
        },
        Demo {
            screening: Some((&["uncontrolled_hypertension"], &["Lisinopril 10 mg"])),
            ..demo("Jo", "Ineligible", "1965-08-22", pain("crps"))
        },
        Demo {
            screening: None,
            ..demo("Kai", "Unscreened", "1995-03-30", json!([{"code": "migraine"}]))
        },
        Demo {
            in_mental_health_treatment: false,
            ..demo("Lee", "Needs-Evaluation", "1981-12-24", pain("crps"))
        },
    ]
}

/// Seeds the demo clinic if `state`'s settings ask for it (development mode,
/// `DEMO_CLINIC` not `false`) and the database holds no patient and no
/// closure; one transaction, so a failure leaves the database as it was.
pub fn seed(state: &AppState) -> Result<Seeding, StoreError> {
    if state.settings.app_env != AppEnv::Development {
        return Ok(Seeding::Production);
    }
    if !state.settings.demo_clinic {
        return Ok(Seeding::Skipped);
    }
    let clinic = state.clinic();
    let mut conn = state.pool.get()?;
    conn.run(|conn| write_transaction(conn, |tx| seed_empty(tx, &clinic)))
}

fn seed_empty(tx: &mut DbConnection, clinic: &Clinic) -> Result<Seeding, StoreError> {
    // Two processes starting on one empty database: the second waits here,
    // then finds the first one's patients.
    locks::lock(tx, Guard::Rooms, Mode::Exclusive)?;
    let one = Rows { after: None, limit: 1 };
    if !patients::list(tx, None, None, &one)?.is_empty()
        || !closures::list(tx, None, None, &one)?.is_empty()
    {
        return Ok(Seeding::NotEmpty);
    }
    let (today, now) = (clinic.today(), clinic.now);
    let horizon = clinic.calendar.horizon_end(today);
    let tomorrow = after(today, 1);

    // Closed about three weeks ahead (the fifteenth clinic day), within
    // the horizon: before the bookings, which then go around it.
    let open_days = clinic.calendar.next_clinic_days(tomorrow, 15, &Closures::new());
    let closed_on = open_days.into_iter().rfind(|d| *d <= horizon);
    if let Some(date) = closed_on {
        let booked = closures::booked_on(tx, date)?;
        calendar::close(date, today, booked)?;
        closures::insert(tx, date, "Staff training (demo)", now)?;
    }

    let mut ids = Vec::new();
    for demo in roster() {
        ids.push((record(tx, &demo, clinic)?, format!("{} {}", demo.given, demo.family)));
    }
    let [(ready_id, ready_name), (course_patient, _), (booked_patient, _), ..] = ids.as_slice()
    else {
        return Err(StoreError::Invalid("the demo roster is too short".into()));
    };

    let course_id = book_course(tx, course_patient, clinic)?;
    let closures = closed_on.into_iter().collect::<Closures>();
    let next = clinic.calendar.next_clinic_days(tomorrow, 1, &closures);
    let first = next.first().copied().filter(|d| *d <= horizon).ok_or_else(|| {
        StoreError::Invalid("no open clinic day within the booking horizon".into())
    })?;
    book(tx, booked_patient, (first, Session::Afternoon), clinic)?;
    let clinician = billing(tx, clinic)?;
    treated(tx, clinic, &clinician)?;

    Ok(Seeding::Seeded(DemoClinic {
        patients: ids.len() + 1,
        ready_patient_id: ready_id.clone(),
        ready_patient_name: ready_name.clone(),
        bookable: (first, Session::Morning),
        course_id,
        closed_on,
    }))
}

/// The clinic's billing: its profile, the fee schedule and one clinician,
/// as an admin sends them. The clinician's id.
fn billing(tx: &mut DbConnection, clinic: &Clinic) -> Result<String, StoreError> {
    let profile: BillingProfile = request(json!({
        "legal_name": "Infusion Therapeutix Demo LLC",
        "address": {"line1": "100 Church St", "line2": "Suite 200", "city": "New Haven",
            "state": "CT", "postal_code": "06510"},
        "phone": "+1 203 555 0100", "tax_id": "12-3456789", "npi": "1245319599"
    }))?;
    bills::put_profile(tx, &profile, clinic.now)?;
    let drug: DrugUnit = request(json!({"ndc": "00409-2051-05", "unit": "ML", "quantity": "10"}))?;
    for (code, cents, drug) in [
        (BillingCode::InfusionFirstHour, 45_000, None),
        (BillingCode::InfusionAdditionalHour, 15_000, None),
        (BillingCode::UnclassifiedDrug, 7_500, Some(drug)),
    ] {
        let price = Cents::new(cents).ok_or_else(|| StoreError::Invalid("demo price".into()))?;
        let (price, drug) = billing::price(code, price, drug)?;
        bills::put_fee(tx, code, price, drug.as_ref(), clinic.now)?;
    }
    let npi = "1003000126";
    let fields = ClinicianFields { name: "Grace Hopper", credentials: "MD", npi, active: true };
    Ok(bills::insert_clinician(tx, &fields, clinic.now)?.id)
}

/// A patient treated four weeks ago, registered, screened, booked, checked
/// in and completed on that day by the decisions the API takes, each at its
/// hour: one infusion of 100 minutes by `clinician` with its scores (pain 7
/// on arrival, 3 at discharge; PHQ-9 14), for the FHIR Observations and the
/// outcomes to show, its charges ($675.00) and a payment of $450.00, for the
/// superbill. Its id.
fn treated(tx: &mut DbConnection, clinic: &Clinic, clinician: &str) -> Result<String, StoreError> {
    let month_ago = before(clinic.today(), 28);
    let day = clinic
        .calendar
        .next_clinic_days(month_ago, 1, &Closures::new())
        .first()
        .copied()
        .ok_or_else(|| StoreError::Invalid("no clinic day a month ago".into()))?;
    let starts = clinic.calendar.starts_at(day, Session::Morning).with_timezone(&Utc);
    let ends = clinic.calendar.ends_at(day, Session::Morning).with_timezone(&Utc);
    let at = |now: DateTime<Utc>| Clinic { now, ..clinic.clone() };
    // Coded by a clinician (ICD-10-CM, reference/icd10cm.csv).
    let coded = json!([{"code": "chronic_pain", "subtype": "crps", "diagnosis": "G90.50"}]);
    let mut demo = demo("Olga", "Treated", "1972-05-17", coded);
    demo.address = Some(json!({"line1": "12 Elm St", "city": "Hamden", "state": "CT",
        "postal_code": "06514"}));
    let morning = at(starts - chrono::Duration::hours(2));
    let id = record(tx, &demo, &morning)?;
    let slot = SlotRequest { date: day, session: Session::Morning };
    let facts = appointments::slot_facts(tx, &id, slot, None)?;
    let new = appointment::book(&id, slot, Route::Iv, &facts, &morning)?;
    let mut booked = appointments::insert(tx, &new, morning.now)?;
    let scores = |pain: i32, phq9: Option<i32>| {
        (appointment::PainScore::new(pain), phq9.and_then(appointment::Phq9Score::new))
    };
    let (pain_before, phq9) = scores(7, Some(14));
    let (pain_after, _) = scores(3, None);
    let steps = [
        (
            starts + chrono::Duration::minutes(10),
            Request::CheckIn { pain_before, route: None, phq9 },
        ),
        (
            ends - chrono::Duration::minutes(30),
            Request::Complete {
                pain_after: pain_after
                    .ok_or_else(|| StoreError::Invalid("demo pain score".into()))?,
                pain_before: None,
                phq9: None,
                clinician_id: clinician.to_owned(),
                minutes: InfusionMinutes::new(100)
                    .ok_or_else(|| StoreError::Invalid("demo minutes".into()))?,
            },
        ),
    ];
    for (now, request) in steps {
        let clinic = at(now);
        let intake = records::intake_record(tx, &id)?;
        let facts = request.clinician().map(|c| bills::completion_facts(tx, &id, c)).transpose()?;
        let (change, charges) =
            billing::decide(&booked, request, intake.as_ref(), facts.as_ref(), &clinic)?;
        booked = appointments::apply(tx, &booked.id, &change, now)?;
        bills::insert_charges(tx, &charges, BY, now)?;
    }
    let paid = NewPayment {
        patient_id: id.clone(),
        amount_cents: PaidCents::new(45_000)
            .ok_or_else(|| StoreError::Invalid("demo paid".into()))?,
        received_on: day,
        method: PaymentMethod::Card,
        reference: Some("card ending 4242".into()),
    };
    let paid = billing::payment(paid, clinic.today())?;
    bills::insert_payment(tx, &paid, BY, ends)?;
    Ok(id)
}

/// `days` after `date`.
fn after(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(Days::new(days)).unwrap_or(date)
}

/// `days` before `date`.
fn before(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_sub_days(Days::new(days)).unwrap_or(date)
}

/// Parses `value` as the API parses a request body.
fn request<T: DeserializeOwned>(value: Value) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Invalid(format!("demo request: {e}")))
}

fn provider(name: &str, practice: &str) -> Value {
    json!({"name": name, "practice": practice, "phone": "+1 555 010 3000", "npi": "1234567893"})
}

/// Registers one demo patient and records its intake; its id.
fn record(tx: &mut DbConnection, demo: &Demo, clinic: &Clinic) -> Result<String, StoreError> {
    let (today, now) = (clinic.today(), clinic.now);
    let born = NaiveDate::parse_from_str(demo.born, "%Y-%m-%d")
        .map_err(|e| StoreError::Invalid(format!("demo date of birth: {e}")))?;
    let details = PatientDetails {
        given_name: demo.given.into(),
        family_name: demo.family.into(),
        date_of_birth: born,
        email: Some(format!("{}.{}@example.org", demo.given, demo.family).to_ascii_lowercase()),
        phone: Some("+1 555 010 2030".into()),
        address: demo.address.clone().map(request).transpose()?,
        indications: request::<Vec<Indication>>(demo.indications.clone())?,
        in_mental_health_treatment: demo.in_mental_health_treatment,
        pain_referral_required: demo.pain_referral_required,
        // The record number an EHR would map it by: try
        // `GET /v1/patients?identifier=https://ehr.example.org/mrn|…`.
        identifiers: request::<Vec<Identifier>>(json!([{
            "system": "https://ehr.example.org/mrn",
            "value": format!("DEMO-{}-{}", demo.given, demo.family).to_ascii_uppercase(),
        }]))?,
    }
    .admitted(today)?;
    let id = patients::insert(tx, &details, now)?.id;

    for (kind, letter) in demo.referrals {
        let received = match letter {
            Letter::Expired => before(today, u64::from(clinic.policy.referral_valid_days) + 30),
            _ => before(today, 12),
        };
        let new: NewReferral = request(json!({
            "kind": kind,
            "provider": provider("Dr. Jane Doe", "Riverside Psychiatry"),
            "received_on": received.to_string(),
            "document_reference": "ehr://documents/demo"
        }))?;
        let stored = records::insert_referral(tx, &id, &referral::receive(new, today)?, BY, now)?;
        let verdict = match letter {
            Letter::Verified => Verdict::Verify,
            Letter::Rejected => Verdict::Reject { reason: "Letter is unsigned".into() },
            Letter::Received | Letter::Expired => continue,
        };
        let current = records::hold_referral(tx, &stored.id)?;
        let days = clinic.policy.referral_valid_days;
        let decision = referral::decide(&current, verdict, today, days)?;
        records::record_verdict(tx, &stored.id, &decision, BY, now)?;
    }
    if demo.attested {
        let attestation: Attestation = request(json!({
            "provider": provider("Dr. Jane Doe", "Riverside Psychiatry"),
            "attested_on": before(today, 5).to_string()
        }))?;
        records::insert_attestation(tx, &id, &intake::attest(attestation, today)?, BY, now)?;
    }
    if let Some((found, medications)) = demo.screening {
        let criteria: serde_json::Map<String, Value> =
            CRITERIA.iter().map(|c| (c.to_string(), Value::Bool(found.contains(c)))).collect();
        let medications: Vec<Value> = medications.iter().map(|m| json!({"name": m})).collect();
        let sent: ScreeningRequest =
            request(json!({"criteria": criteria, "medications": medications}))?;
        records::insert_screening(tx, &id, &screening::screen(sent, today)?, BY, now)?;
    }
    if demo.consulted {
        let consult: Consult = request(json!({
            "prescriber": provider("Dr. Sam Park", "Eastside Neurology"),
            "consulted_on": today.to_string(),
            "agreed_plan": "Hold the evening dose before each infusion"
        }))?;
        records::insert_consult(tx, &id, &intake::consult(consult, today)?, BY, now)?;
    }
    Ok(id)
}

/// Books the earliest pain course that fits, as `POST /v1/courses` does:
/// five days from a Monday, or eight consecutive clinic days where the
/// clinic's days hold no Monday.
fn book_course(
    tx: &mut DbConnection,
    patient_id: &str,
    clinic: &Clinic,
) -> Result<String, StoreError> {
    let mut refused = None;
    for (protocol, infusions) in [("pain-5-day", None), ("pain-8-10-day", Some(8))] {
        let request: CourseRequest = request(json!({
            "patient_id": patient_id, "protocol": protocol, "session": "morning",
            "earliest_start": clinic.today().to_string(), "infusions": infusions
        }))?;
        patients::lock(tx, patient_id)?;
        let facts = courses::facts(tx, &request, course::window(&request, clinic))?;
        let planned = course::plan_reading(&request, facts, clinic, None, |from, to| {
            appointments::occupancy(tx, from, to, Some(patient_id))
        });
        match planned {
            Ok(plan) => return Ok(courses::insert(tx, &request, &plan, BY, clinic.now)?.id),
            Err(StoreError::Refused(refusal)) => refused = Some(refusal),
            Err(other) => return Err(other),
        }
    }
    Err(refused.unwrap_or(Refusal::NoCapacityForSeries { next_start: None }).into())
}

/// Books one session for the patient, as `POST /v1/appointments` does.
fn book(
    tx: &mut DbConnection,
    patient_id: &str,
    (date, session): (NaiveDate, Session),
    clinic: &Clinic,
) -> Result<DateTime<Utc>, StoreError> {
    let slot = SlotRequest { date, session };
    let facts = appointments::slot_facts(tx, patient_id, slot, None)?;
    let new = appointment::book(patient_id, slot, Route::Iv, &facts, clinic)?;
    Ok(appointments::insert(tx, &new, clinic.now)?.starts_at)
}
