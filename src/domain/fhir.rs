//! FHIR R4 (4.0.1): how the clinic's records read as FHIR resources at
//! `/fhir/R4`, and what its searches take. One table per mapping (statuses,
//! codes, search parameters), which `docs/FHIR.md` shows and the
//! CapabilityStatement is made from: nothing is said twice.
//!
//! The builders here are pure: they turn a record the store read into the
//! resource's JSON; the handlers (`http::fhir`) choose the records, and
//! withhold what a role may not see with the rules of `domain::access`.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use super::appointment::{Appointment, AppointmentStatus};
use super::calendar::{Room, Session, SessionAvailability};
use super::patient::{Indication, Patient};
use super::referral::{Referral, ReferralKind, ReferralStatus};

/// The FHIR version served.
pub const FHIR_VERSION: &str = "4.0.1";

/// The media type of every answer under `/fhir/R4`.
pub const CONTENT_TYPE: &str = "application/fhir+json";

/// The code systems and identifier systems the resources use, with where
/// each is defined.
pub const LOINC: &str = "http://loinc.org";
pub const US_NPI: &str = "http://hl7.org/fhir/sid/us-npi";
pub const ICD_10_CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
pub const LOCATION_PHYSICAL_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/location-physical-type";
/// SMART Scheduling Links: how many appointments a Slot can still take.
pub const SLOT_CAPACITY: &str =
    "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity";
/// The clinic's own codes: a patient's indication, a referral's kind.
pub const INDICATION_SYSTEM: &str = "urn:infusion-api:fhir:indication";
pub const REFERRAL_KIND_SYSTEM: &str = "urn:infusion-api:fhir:referral-kind";

/// The one Schedule: the clinic's infusion rooms, in sessions.
pub const SCHEDULE_ID: &str = "infusion-rooms";

/// An appointment's status as FHIR's `AppointmentStatus` value set names
/// it. A search for `arrived` finds checked-in appointments too.
pub const APPOINTMENT_STATUSES: &[(AppointmentStatus, &str)] = &[
    (AppointmentStatus::Scheduled, "booked"),
    (AppointmentStatus::CheckedIn, "checked-in"),
    (AppointmentStatus::Completed, "fulfilled"),
    (AppointmentStatus::Cancelled, "cancelled"),
    (AppointmentStatus::NoShow, "noshow"),
];

/// A referral's status (as it shows today) as FHIR's `RequestStatus` names
/// it: a letter in force is `active`, verified or not (the note says
/// which); a rejected or expired one no longer authorizes anything.
pub const REFERRAL_STATUSES: &[(ReferralStatus, &str)] = &[
    (ReferralStatus::Received, "active"),
    (ReferralStatus::Verified, "active"),
    (ReferralStatus::Rejected, "revoked"),
    (ReferralStatus::Expired, "revoked"),
];

/// The observations an infusion yields: (id suffix, LOINC code, display).
pub const PAIN_BEFORE: (&str, &str, &str) =
    ("pain-before", "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported");
pub const PAIN_AFTER: (&str, &str, &str) =
    ("pain-after", "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported");
pub const PHQ9: (&str, &str, &str) =
    ("phq9", "44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]");

/// The FHIR status of `status`.
pub fn appointment_status(status: AppointmentStatus) -> &'static str {
    APPOINTMENT_STATUSES.iter().find(|(s, _)| *s == status).map_or("booked", |(_, code)| code)
}

/// The statuses a searched FHIR appointment status stands for; `None` for
/// a code that is not FHIR's.
pub fn appointment_statuses(code: &str) -> Option<Vec<AppointmentStatus>> {
    let code = if code == "arrived" { "checked-in" } else { code };
    let found: Vec<AppointmentStatus> =
        APPOINTMENT_STATUSES.iter().filter(|(_, c)| *c == code).map(|(s, _)| *s).collect();
    let fhir = [
        "proposed",
        "pending",
        "booked",
        "arrived",
        "fulfilled",
        "cancelled",
        "noshow",
        "entered-in-error",
        "checked-in",
        "waitlist",
    ];
    (fhir.contains(&code) || !found.is_empty()).then_some(found)
}

/// The FHIR status of a referral that shows `status`.
pub fn referral_status(status: ReferralStatus) -> &'static str {
    REFERRAL_STATUSES.iter().find(|(s, _)| *s == status).map_or("unknown", |(_, code)| code)
}

/// A search parameter's comparison of a date (FHIR's prefixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// The days a date search admits: from, to (inclusive), either open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Days {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Days {
    /// Narrows to what `value` (`[prefix]YYYY-MM-DD`, FHIR's `eq`, `ge`,
    /// `gt`, `le` or `lt`; `eq` when none) admits too; why not, when it is
    /// not such a value.
    pub fn narrow(self, value: &str) -> Result<Days, String> {
        let prefixes = [
            ("eq", Prefix::Eq),
            ("ge", Prefix::Ge),
            ("gt", Prefix::Gt),
            ("le", Prefix::Le),
            ("lt", Prefix::Lt),
        ];
        let (prefix, date) = prefixes
            .iter()
            .find_map(|(p, prefix)| value.strip_prefix(p).map(|rest| (*prefix, rest)))
            .unwrap_or((Prefix::Eq, value));
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .ok()
            .filter(|_| date.len() == 10)
            .ok_or_else(|| {
                format!("`{value}` is not a date (YYYY-MM-DD, after eq, ge, gt, le or lt)")
            })?;
        // Past the last day or before the first there is no day: an empty
        // range, never a year of five digits (SQLite compares dates as text).
        let (first, last) =
            (NaiveDate::from_ymd_opt(1, 1, 1), NaiveDate::from_ymd_opt(9999, 12, 31));
        let none = (last, first);
        let (from, to) = match prefix {
            Prefix::Eq => (Some(date), Some(date)),
            Prefix::Ge => (Some(date), None),
            Prefix::Gt if Some(date) == last => none,
            Prefix::Gt => (date.succ_opt(), None),
            Prefix::Le => (None, Some(date)),
            Prefix::Lt if Some(date) == first => none,
            Prefix::Lt => (None, date.pred_opt()),
        };
        Ok(Days {
            from: later(self.from, from),
            to: match (self.to, to) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        })
    }

    /// Whether no day is admitted.
    pub fn is_empty(&self) -> bool {
        matches!((self.from, self.to), (Some(from), Some(to)) if from > to)
    }

    pub fn admits(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|from| day >= from) && self.to.is_none_or(|to| day <= to)
    }
}

fn later(a: Option<NaiveDate>, b: Option<NaiveDate>) -> Option<NaiveDate> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A resource type the facade serves: its interactions and the search
/// parameters it supports (beyond `_count`, which all do), with their FHIR
/// types. The CapabilityStatement is this table.
pub struct Served {
    pub resource: &'static str,
    pub search: &'static [(&'static str, &'static str, &'static str)],
}

/// Every resource type served, read and searched.
pub const SERVED: &[Served] = &[
    Served {
        resource: "Patient",
        search: &[
            ("_id", "token", "The patient's id"),
            ("identifier", "token", "`system|value`: a record number in another system"),
            ("family", "string", "Starts the family name (case- and accent-insensitive)"),
            ("given", "string", "Starts the given name (case- and accent-insensitive)"),
            ("birthdate", "date", "The date of birth, with eq, ge, gt, le, lt"),
        ],
    },
    Served {
        resource: "Appointment",
        search: &[
            ("patient", "reference", "The patient: `Patient/{id}` or the id"),
            ("date", "date", "The appointment's day, with eq, ge, gt, le, lt (repeat for a range)"),
            ("status", "token", "FHIR's appointment status; several comma-separated"),
        ],
    },
    Served { resource: "Schedule", search: &[("_id", "token", "The schedule's id")] },
    Served {
        resource: "Slot",
        search: &[
            ("schedule", "reference", "`Schedule/infusion-rooms`"),
            (
                "start",
                "date",
                "The session's day, with eq, ge, gt, le, lt; from today, 4 weeks, by default",
            ),
            ("status", "token", "`free` or `busy`"),
        ],
    },
    Served { resource: "Location", search: &[] },
    Served {
        resource: "ServiceRequest",
        search: &[("patient", "reference", "The patient: `Patient/{id}` or the id")],
    },
    Served {
        resource: "Observation",
        search: &[
            ("patient", "reference", "The patient: `Patient/{id}` or the id"),
            (
                "code",
                "token",
                "`http://loinc.org|72514-3` (pain) or `|44261-6` (PHQ-9); the code alone too",
            ),
        ],
    },
];

/// Parameters every search takes: the page size, the page (our `next`
/// links), and the format (JSON only).
pub const COMMON_SEARCH: &[&str] = &["_count", "_page", "_format"];

/// The search parameters of `resource` a query names that it does not
/// support.
pub fn unsupported<'a>(resource: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let supported = SERVED.iter().find(|s| s.resource == resource).map_or(&[][..], |s| s.search);
    names
        .into_iter()
        .filter(|name| {
            !COMMON_SEARCH.contains(name) && !supported.iter().any(|(known, _, _)| known == name)
        })
        .collect()
}

/// Whether a `Prefer` header asks for lenient handling of search
/// parameters (unknown ones ignored rather than refused).
pub fn lenient(prefer: &str) -> bool {
    prefer.split([',', ';']).any(|p| {
        p.split_once('=').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("handling")
                && value.trim().trim_matches('"').eq_ignore_ascii_case("lenient")
        })
    })
}

/// A reference search value (`Patient/{id}`, or the id alone) as the id,
/// when it names a resource of `kind`.
pub fn referenced<'a>(value: &'a str, kind: &str) -> Option<&'a str> {
    match value.split_once('/') {
        Some((k, id)) if k == kind && !id.contains('/') => Some(id),
        Some(_) => None,
        None => Some(value),
    }
}

/// An instant as FHIR's `instant` and `dateTime` write it.
pub fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An instant in the clinic's zone, as FHIR writes it.
pub fn local(at: DateTime<Tz>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn meta(updated_at: DateTime<Utc>) -> Value {
    json!({ "lastUpdated": instant(updated_at) })
}

/// A Patient: name, birth date, contacts, postal address, and the
/// identifiers of other systems.
pub fn patient(p: &Patient) -> Value {
    let d = &p.details;
    let mut telecom = Vec::new();
    if let Some(phone) = &d.phone {
        telecom.push(json!({"system": "phone", "value": phone}));
    }
    if let Some(email) = &d.email {
        telecom.push(json!({"system": "email", "value": email}));
    }
    let mut resource = json!({
        "resourceType": "Patient",
        "id": p.id,
        "meta": meta(p.updated_at),
        "active": true,
        "name": [{"use": "official", "family": d.family_name, "given": [d.given_name]}],
        "birthDate": d.date_of_birth.to_string(),
    });
    let identifiers: Vec<Value> = d
        .identifiers
        .iter()
        .map(|i| json!({"system": i.system.as_str(), "value": i.value.as_str()}))
        .collect();
    put(&mut resource, "identifier", identifiers);
    put(&mut resource, "telecom", telecom);
    let address = d.address.iter().map(|a| {
        let lines: Vec<&str> =
            std::iter::once(a.line1.as_str()).chain(a.line2.as_ref().map(|l| l.as_str())).collect();
        json!({"use": "home", "type": "postal", "line": lines, "city": a.city.as_str(),
            "state": a.state.as_str(), "postalCode": a.postal_code.as_str(), "country": "US"})
    });
    put(&mut resource, "address", address.collect());
    resource
}

/// Sets `key` to `items` when there are any (FHIR has no empty arrays).
fn put(resource: &mut Value, key: &str, items: Vec<Value>) {
    if let (false, Some(object)) = (items.is_empty(), resource.as_object_mut()) {
        object.insert(key.to_owned(), Value::Array(items));
    }
}

/// An indication as a CodeableConcept: the clinic's code and, once a
/// clinician coded it, its ICD-10-CM code.
pub fn indication(i: &Indication) -> Value {
    let display = match i.key() {
        "chronic_pain.crps" => "Chronic pain: complex regional pain syndrome",
        "chronic_pain.neuropathic" => "Chronic pain: neuropathic",
        "chronic_pain" => "Chronic pain",
        "migraine" => "Migraine",
        "depression" => "Treatment-resistant depression",
        _ => "Anxiety",
    };
    let mut coding =
        vec![json!({"system": INDICATION_SYSTEM, "code": i.key(), "display": display})];
    if let Some(diagnosis) = i.diagnosis {
        coding.push(json!({
            "system": ICD_10_CM,
            "code": diagnosis.code(),
            "display": diagnosis.description(),
        }));
    }
    json!({"coding": coding, "text": display})
}

/// What an Appointment shows: the appointment, its end, the patient's
/// indications (its reason), and whether the cancellation's reason may be
/// shown to the reader.
pub struct AppointmentView<'a> {
    pub appointment: &'a Appointment,
    pub start: DateTime<Tz>,
    pub end: DateTime<Tz>,
    pub indications: &'a [Indication],
    pub shows_cancel_reason: bool,
    /// Whether the viewer sees the reason (the patient's indications):
    /// [`scopes::sees_patient_details`](super::scopes::sees_patient_details).
    pub shows_reason: bool,
}

/// An Appointment: its status, start and end, the patient and the room (a
/// Location), the reason (the patient's indications, to a viewer that sees
/// them), and its course.
pub fn appointment(view: &AppointmentView) -> Value {
    let a = view.appointment;
    let session = match a.session {
        Session::Morning => "morning",
        Session::Afternoon => "afternoon",
    };
    let mut resource = json!({
        "resourceType": "Appointment",
        "id": a.id,
        "meta": meta(a.updated_at),
        "status": appointment_status(a.status),
        "serviceType": [{"text": "Ketamine infusion"}],
        "description": format!("Ketamine infusion, {session} session"),
        "start": local(view.start),
        "end": local(view.end),
        "created": instant(a.created_at),
        "slot": [{"reference": format!("Slot/{}", slot_id(a.date, a.session))}],
        "participant": [
            {"actor": {"reference": format!("Patient/{}", a.patient_id)}, "required": "required", "status": "accepted"},
            {"actor": {"reference": format!("Location/{}", a.room_id)}, "required": "required", "status": "accepted"},
        ],
    });
    if view.shows_reason {
        put(&mut resource, "reasonCode", view.indications.iter().map(indication).collect());
    }
    if let Some(course) = &a.course_id {
        put(
            &mut resource,
            "basedOn",
            vec![json!({
                "type": "CarePlan",
                "identifier": {"system": "urn:infusion-api:fhir:course", "value": course},
                "display": format!("Course {course} (/v1/courses/{course})"),
            })],
        );
    }
    if a.status == AppointmentStatus::Cancelled {
        let reason = match (&a.cancel_reason, view.shows_cancel_reason) {
            (Some(reason), true) => reason.as_str(),
            _ => "Cancelled",
        };
        if let Some(object) = resource.as_object_mut() {
            object.insert("cancelationReason".into(), json!({ "text": reason }));
        }
    }
    resource
}

/// A Location: an infusion room.
pub fn location(room: &Room) -> Value {
    json!({
        "resourceType": "Location",
        "id": room.id,
        "meta": meta(room.updated_at),
        "status": if room.active { "active" } else { "inactive" },
        "name": room.name,
        "mode": "instance",
        "physicalType": {"coding": [{"system": LOCATION_PHYSICAL_TYPE, "code": "ro", "display": "Room"}]},
    })
}

/// The Schedule all Slots belong to, planning from `from` to `to`.
pub fn schedule(from: NaiveDate, to: NaiveDate) -> Value {
    json!({
        "resourceType": "Schedule",
        "id": SCHEDULE_ID,
        "active": true,
        "serviceType": [{"text": "Ketamine infusion"}],
        "actor": [{"display": "The clinic's infusion rooms"}],
        "planningHorizon": {"start": from.to_string(), "end": to.to_string()},
        "comment": "Monday to Friday, a morning and an afternoon session, one private room per infusion",
    })
}

/// A session's Slot id: `YYYY-MM-DD-morning`.
pub fn slot_id(date: NaiveDate, session: Session) -> String {
    format!("{date}-{}", session.as_str())
}

/// The day and session a Slot id names.
pub fn parse_slot_id(id: &str) -> Option<(NaiveDate, Session)> {
    let (date, session) = id.split_at_checked(10)?;
    let session = Session::parse(session.strip_prefix('-')?)?;
    Some((NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?, session))
}

/// A session's Slot status: `free` while a room is, else `busy`.
pub fn slot_status(session: &SessionAvailability) -> &'static str {
    if session.free > 0 {
        "free"
    } else {
        "busy"
    }
}

/// A Slot: one session of the clinic, `free` while a room is, with how
/// many appointments it can still take (SMART Scheduling Links' capacity).
pub fn slot(session: &SessionAvailability) -> Value {
    let status = slot_status(session);
    json!({
        "resourceType": "Slot",
        "id": slot_id(session.date, session.session),
        "extension": [{"url": SLOT_CAPACITY, "valueInteger": session.free}],
        "schedule": {"reference": format!("Schedule/{SCHEDULE_ID}")},
        "status": status,
        "start": local(session.starts_at),
        "end": local(session.ends_at),
        "comment": format!("{} of {} rooms free", session.free, session.capacity),
    })
}

/// What a ServiceRequest shows of a referral: the status it shows today.
pub fn service_request(r: &Referral, shown: ReferralStatus, expires_on: NaiveDate) -> Value {
    let (kind, display) = match r.kind {
        ReferralKind::MentalHealthProvider => {
            ("mental_health_provider", "Referral from the treating mental health provider")
        }
        ReferralKind::PainManagement => ("pain_management", "Referral from pain management"),
        ReferralKind::MentalHealthEvaluation => {
            ("mental_health_evaluation", "Mental health evaluation")
        }
    };
    let note = match shown {
        ReferralStatus::Received => "Received; awaiting the clinic's verification".to_owned(),
        ReferralStatus::Verified => "Verified by the clinic".to_owned(),
        ReferralStatus::Rejected => match &r.reject_reason {
            Some(reason) => format!("Rejected: {reason}"),
            None => "Rejected".to_owned(),
        },
        ReferralStatus::Expired => format!("Expired after {expires_on}"),
    };
    let mut practitioner = json!({
        "resourceType": "Practitioner",
        "id": "referrer",
        "name": [{"text": r.provider.name.as_str()}],
    });
    if let Some(npi) = &r.provider.npi {
        put(&mut practitioner, "identifier", vec![json!({"system": US_NPI, "value": npi})]);
    }
    let mut telecom = Vec::new();
    for (system, value) in
        [("phone", &r.provider.phone), ("fax", &r.provider.fax), ("email", &r.provider.email)]
    {
        if let Some(value) = value {
            telecom.push(json!({"system": system, "value": value}));
        }
    }
    put(&mut practitioner, "telecom", telecom);
    json!({
        "resourceType": "ServiceRequest",
        "id": r.id,
        "meta": meta(r.updated_at),
        "contained": [practitioner],
        "status": referral_status(shown),
        "intent": "order",
        "code": {"coding": [{"system": REFERRAL_KIND_SYSTEM, "code": kind, "display": display}], "text": display},
        "subject": {"reference": format!("Patient/{}", r.patient_id)},
        "authoredOn": r.received_on.to_string(),
        "occurrencePeriod": {"end": expires_on.to_string()},
        "requester": {"reference": "#referrer", "display": format!("{} ({})", r.provider.name.as_str(), r.provider.practice.as_str())},
        "supportingInfo": [{"display": r.document_reference}],
        "note": [{"text": note}],
    })
}

/// The observations an appointment holds, in the order of their ids:
/// pain before and after (LOINC 72514-3) and PHQ-9 (44261-6).
pub fn observations(a: &Appointment) -> Vec<Value> {
    let recorded = [
        (PHQ9, a.phq9.map(|s| s.value()), a.checked_in_at),
        (PAIN_AFTER, a.pain_after.map(|s| s.value()), a.completed_at),
        (PAIN_BEFORE, a.pain_before.map(|s| s.value()), a.checked_in_at),
    ];
    let mut found: Vec<Value> = recorded
        .into_iter()
        .filter_map(|((suffix, code, display), value, at)| {
            let value = value?;
            let at = at.unwrap_or(a.updated_at);
            Some(json!({
                "resourceType": "Observation",
                "id": format!("{}-{suffix}", a.id),
                "meta": meta(a.updated_at),
                "status": "final",
                "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                "subject": {"reference": format!("Patient/{}", a.patient_id)},
                "effectiveDateTime": instant(at),
                "valueInteger": value,
            }))
        })
        .collect();
    found.sort_by(|x, y| x["id"].as_str().cmp(&y["id"].as_str()));
    found
}

/// The appointment id and the kind of observation an Observation id names.
pub fn parse_observation_id(id: &str) -> Option<(&str, &'static str)> {
    [PAIN_BEFORE, PAIN_AFTER, PHQ9].into_iter().find_map(|(suffix, _, _)| {
        id.strip_suffix(suffix)?.strip_suffix('-').map(|appointment| (appointment, suffix))
    })
}

/// Whether an Observation `code` search value names `code` (`system|code`,
/// `|code` or the code alone).
pub fn code_matches(value: &str, code: &str) -> bool {
    value.split(',').any(|v| match v.split_once('|') {
        Some((system, c)) => (system.is_empty() || system == LOINC) && c == code,
        None => v == code,
    })
}

/// An OperationOutcome with one issue.
pub fn outcome(severity: &str, code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    })
}

/// The FHIR issue type of an HTTP error status.
pub fn issue_type(status: u16) -> &'static str {
    match status {
        401 => "login",
        403 => "forbidden",
        404 | 410 => "not-found",
        405 | 406 | 415 => "not-supported",
        409 | 412 => "conflict",
        429 => "throttled",
        400 | 422 => "invalid",
        500..=599 => "exception",
        _ => "processing",
    }
}

/// A searchset Bundle of `entries` (resources), with its links: `self`,
/// and `next` when another page follows.
pub fn searchset(
    base: &str,
    self_link: &str,
    next_link: Option<&str>,
    entries: Vec<Value>,
) -> Value {
    let mut links = vec![json!({"relation": "self", "url": self_link})];
    if let Some(next) = next_link {
        links.push(json!({"relation": "next", "url": next}));
    }
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|resource| {
            let url = format!(
                "{base}/{}/{}",
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            json!({"fullUrl": url, "resource": resource, "search": {"mode": "match"}})
        })
        .collect();
    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), json!("Bundle"));
    bundle.insert("type".into(), json!("searchset"));
    bundle.insert("link".into(), Value::Array(links));
    if !entries.is_empty() {
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Value::Object(bundle)
}

/// The CapabilityStatement: what the facade serves, dated `date`, with its
/// token endpoint when it issues tokens.
pub fn capability_statement(date: DateTime<Utc>, token_url: Option<&str>) -> Value {
    let resources: Vec<Value> = SERVED
        .iter()
        .map(|s| {
            let mut params: Vec<Value> = s
                .search
                .iter()
                .map(|(name, kind, doc)| json!({"name": name, "type": kind, "documentation": doc}))
                .collect();
            params.push(json!({"name": "_count", "type": "number", "documentation": "Page size, 1 to 200 (default 50)"}));
            json!({
                "type": s.resource,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": params,
            })
        })
        .collect();
    let mut security = json!({
        "cors": true,
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}]}],
        "description": "Bearer tokens: the clinic's own, an identity provider's, or a SMART Backend Services access token (client_credentials with a private_key_jwt assertion). Scopes are SMART v2 system scopes.",
    });
    if let (Some(token_url), Some(object)) = (token_url, security.as_object_mut()) {
        object.insert(
            "extension".into(),
            json!([{
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": token_url}],
            }]),
        );
    }
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(date),
        "publisher": "infusion-api",
        "kind": "instance",
        "software": {"name": "infusion-api", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "The clinic's intake and scheduling, read as FHIR R4"},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", CONTENT_TYPE],
        "rest": [{"mode": "server", "security": security, "resource": resources}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_status_maps_to_fhirs_value_set_and_back() {
        for status in [
            AppointmentStatus::Scheduled,
            AppointmentStatus::CheckedIn,
            AppointmentStatus::Completed,
            AppointmentStatus::Cancelled,
            AppointmentStatus::NoShow,
        ] {
            let code = appointment_status(status);
            assert_eq!(appointment_statuses(code), Some(vec![status]), "{code}");
        }
        // (searched code, the statuses it finds)
        let cases: [(&str, Option<Vec<AppointmentStatus>>); 5] = [
            ("arrived", Some(vec![AppointmentStatus::CheckedIn])),
            ("proposed", Some(vec![])),
            ("waitlist", Some(vec![])),
            ("scheduled", None),
            ("BOOKED", None),
        ];
        for (code, found) in cases {
            assert_eq!(appointment_statuses(code), found, "{code}");
        }
        for (status, code) in REFERRAL_STATUSES {
            assert_eq!(referral_status(*status), *code);
            assert!(["active", "revoked"].contains(code));
        }
    }

    #[test]
    fn a_date_search_narrows_to_the_days_its_prefixes_admit() {
        // (values, from, to)
        let cases: [(&[&str], Option<&str>, Option<&str>); 7] = [
            (&["2026-12-03"], Some("2026-12-03"), Some("2026-12-03")),
            (&["eq2026-12-03"], Some("2026-12-03"), Some("2026-12-03")),
            (&["ge2026-12-01", "le2026-12-31"], Some("2026-12-01"), Some("2026-12-31")),
            (&["gt2026-12-01", "lt2026-12-31"], Some("2026-12-02"), Some("2026-12-30")),
            (&["ge2026-12-01", "ge2026-12-10"], Some("2026-12-10"), None),
            (&["le2026-12-01", "lt2026-11-20"], None, Some("2026-11-19")),
            (&[], None, None),
        ];
        for (values, from, to) in cases {
            let days = values.iter().try_fold(Days::default(), |d, v| d.narrow(v)).unwrap();
            assert_eq!((days.from, days.to), (from.map(day), to.map(day)), "{values:?}");
        }
        let empty = Days::default().narrow("ge2026-12-10").unwrap().narrow("le2026-12-01").unwrap();
        assert!(empty.is_empty());
        assert!(Days::default().narrow("gt9999-12-31").unwrap().is_empty());
        assert!(Days::default().narrow("lt0001-01-01").unwrap().is_empty());
        for bad in
            ["2026-12", "ne2026-12-01", "2026-13-01", "ge", "2026-12-01T10:00:00Z", "sa2026-12-01"]
        {
            assert!(Days::default().narrow(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_search_parameters_are_named_and_lenient_handling_is_read_from_prefer() {
        assert_eq!(
            unsupported("Patient", ["family", "_count", "_page", "given"]),
            Vec::<&str>::new()
        );
        assert_eq!(unsupported("Patient", ["family", "name", "_sort"]), vec!["name", "_sort"]);
        assert_eq!(unsupported("Location", ["_id"]), vec!["_id"]);
        assert_eq!(unsupported("Slot", ["schedule", "start", "status"]), Vec::<&str>::new());
        // (Prefer header, lenient)
        for (prefer, expected) in [
            ("handling=lenient", true),
            ("return=minimal, handling=lenient", true),
            ("HANDLING=LENIENT", true),
            ("handling=strict", false),
            ("handling = lenient", true),
            ("respond-async; handling=\"lenient\"", true),
            ("", false),
        ] {
            assert_eq!(lenient(prefer), expected, "{prefer}");
        }
    }

    #[test]
    fn ids_of_slots_observations_and_references_read_back() {
        let id = slot_id(day("2026-12-03"), Session::Afternoon);
        assert_eq!(id, "2026-12-03-afternoon");
        assert_eq!(parse_slot_id(&id), Some((day("2026-12-03"), Session::Afternoon)));
        for bad in
            ["2026-12-03", "2026-12-03-evening", "2026-12-03morning", "x", "2026-02-30-morning"]
        {
            assert_eq!(parse_slot_id(bad), None, "{bad}");
        }
        let appointment = "019ad100-0000-7000-8000-000000000001";
        assert_eq!(
            parse_observation_id(&format!("{appointment}-pain-before")),
            Some((appointment, "pain-before"))
        );
        assert_eq!(
            parse_observation_id(&format!("{appointment}-phq9")),
            Some((appointment, "phq9"))
        );
        assert_eq!(parse_observation_id(appointment), None);
        // (reference value, kind, id)
        for (value, kind, id) in [
            ("Patient/abc", "Patient", Some("abc")),
            ("abc", "Patient", Some("abc")),
            ("Location/abc", "Patient", None),
            ("Patient/abc/_history/1", "Patient", None),
        ] {
            assert_eq!(referenced(value, kind), id, "{value}");
        }
        // (code search value, matches 72514-3)
        for (value, matches) in [
            ("72514-3", true),
            ("http://loinc.org|72514-3", true),
            ("|72514-3", true),
            ("44261-6,72514-3", true),
            ("http://snomed.info/sct|72514-3", false),
            ("44261-6", false),
        ] {
            assert_eq!(code_matches(value, "72514-3"), matches, "{value}");
        }
    }
}
