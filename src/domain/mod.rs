//! The clinic's rules as plain Rust: no actix, no diesel. Inputs parse into
//! types that cannot hold invalid values, so the layers around them need not
//! re-check. A rule that combines others (may this appointment be checked in
//! now?) is a decision function here too: it takes what was read and
//! returns the change to store or the refusal. `docs/DOMAIN.md` states the
//! rules; `docs/ARCHITECTURE.md` says where a new one goes.

pub mod access;
pub mod appointment;
pub mod audit;
pub mod billing;
pub mod calendar;
pub mod client;
pub mod clock;
pub mod course;
pub mod diagnosis;
pub mod events;
pub mod fhir;
pub mod identifier;
pub mod intake;
pub mod patient;
pub mod protocol;
pub mod readiness;
pub mod referral;
pub mod scopes;
pub mod screening;
pub mod values;
pub mod webhooks;

#[cfg(test)]
mod testing;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use self::calendar::Calendar;
use self::readiness::IntakePolicy;

/// A clinic rule refused the request. Each has a stable code in the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Fields of the request break rules: each is named.
    Invalid(Vec<FieldError>),
    NotAClinicDay(NaiveDate),
    ClinicClosed(NaiveDate),
    InThePast,
    OutsideHorizon {
        last: NaiveDate,
    },
    SlotFull,
    PatientAlreadyBookedThatDay(NaiveDate),
    InvalidTransition {
        from: &'static str,
        action: &'static str,
        why: Option<String>,
    },
    /// The patient is not ready for this: the open checklist items.
    NotReady {
        items: Vec<readiness::ReadinessItem>,
        /// What was refused, e.g. "booking" or "the first infusion's check-in".
        refused: &'static str,
    },
    /// No whole series fits (or it stopped fitting while booking); the next
    /// start that would fit within the horizon, if any.
    NoCapacityForSeries {
        next_start: Option<NaiveDate>,
    },
    /// The patient already holds a course that is scheduled or in
    /// progress: the one named.
    CourseAlreadyActive {
        course_id: String,
    },
    /// The change would strand other records: the appointments named.
    Conflict {
        detail: String,
        appointment_ids: Vec<String>,
    },
    /// Another patient holds this identifier (`system|value`): the one named.
    IdentifierTaken {
        identifier: String,
        patient_id: String,
    },
    /// The fee schedule does not price these codes (comma-separated).
    FeeScheduleIncomplete {
        codes: String,
    },
    /// The clinic's billing profile is not set up yet.
    BillingProfileMissing,
    /// The charge or payment was voided already, by whom.
    AlreadyVoided {
        what: &'static str,
        by: String,
    },
}

impl Refusal {
    /// The stable code of this refusal.
    pub fn code(&self) -> &'static str {
        self.kind().0
    }

    /// The kind of refusal in a few words, the same for every one of its code.
    pub fn title(&self) -> &'static str {
        self.kind().1
    }

    /// (code, title), one line a kind.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Refusal::Invalid(_) => ("validation_failed", "The request is not valid"),
            Refusal::NotAClinicDay(_) => ("not_a_clinic_day", "Not a clinic day"),
            Refusal::ClinicClosed(_) => ("clinic_closed", "The clinic is closed that day"),
            Refusal::InThePast => ("in_the_past", "That session is in the past"),
            Refusal::OutsideHorizon { .. } => ("outside_horizon", "Beyond the booking horizon"),
            Refusal::SlotFull => ("slot_full", "No free room in that session"),
            Refusal::PatientAlreadyBookedThatDay(_) => {
                ("patient_already_booked_that_day", "The patient is already booked that day")
            }
            Refusal::InvalidTransition { .. } => {
                ("invalid_transition", "Not possible in the appointment's state")
            }
            Refusal::NotReady { .. } => ("not_ready", "The patient is not ready"),
            Refusal::NoCapacityForSeries { .. } => {
                ("no_capacity_for_series", "No capacity for the whole series")
            }
            Refusal::CourseAlreadyActive { .. } => {
                ("course_already_active", "The patient already has an active course")
            }
            Refusal::Conflict { .. } | Refusal::IdentifierTaken { .. } => {
                ("conflict", "Conflicts with existing records")
            }
            Refusal::FeeScheduleIncomplete { .. } => {
                ("fee_schedule_incomplete", "The fee schedule does not price a code")
            }
            Refusal::BillingProfileMissing => {
                ("billing_profile_missing", "The clinic's billing profile is not set up")
            }
            Refusal::AlreadyVoided { .. } => ("already_voided", "Voided already"),
        }
    }

    /// What was refused, in words.
    pub fn detail(&self) -> String {
        match self {
            Refusal::Invalid(errors) => match errors.as_slice() {
                [one] => format!("`{}` {}", one.field, one.message),
                many => format!("{} fields are not valid", many.len()),
            },
            Refusal::NotAClinicDay(date) => {
                format!("{date} ({}) is not a clinic day", date.format("%A"))
            }
            Refusal::ClinicClosed(date) => format!("the clinic is closed on {date}"),
            Refusal::InThePast => "that session has already begun or is in the past".into(),
            Refusal::OutsideHorizon { last } => {
                format!("bookings are taken up to {last}, the end of the booking horizon")
            }
            Refusal::SlotFull => "every room is taken in that session".into(),
            Refusal::PatientAlreadyBookedThatDay(date) => {
                format!("the patient already has an appointment on {date}")
            }
            Refusal::InvalidTransition { from, action, why } => match why {
                Some(why) => why.clone(),
                None => format!("{action} is not possible for a {from} appointment"),
            },
            Refusal::NotReady { items, refused } if items.is_empty() => {
                format!("the patient is not ready for {refused}: no intake record was found")
            }
            Refusal::NotReady { items, refused } => format!(
                "the patient is not ready for {refused}: {}",
                items.iter().map(|i| i.code).collect::<Vec<_>>().join(", ")
            ),
            Refusal::NoCapacityForSeries { next_start } => match next_start {
                Some(date) => {
                    format!("the series does not fit as asked; the next start that fits is {date}")
                }
                None => "no whole series fits within the booking horizon".into(),
            },
            Refusal::CourseAlreadyActive { course_id } => format!(
                "the patient's course {course_id} is scheduled or in progress: one course at a time; cancel it or let it finish first"
            ),
            Refusal::Conflict { detail, .. } => detail.clone(),
            Refusal::IdentifierTaken { identifier, patient_id } => {
                format!("the identifier `{identifier}` belongs to patient {patient_id}")
            }
            Refusal::FeeScheduleIncomplete { codes } => format!(
                "the fee schedule has no price for {codes}: an admin sets it with PUT /v1/billing/fees/{{code}}"
            ),
            Refusal::BillingProfileMissing => {
                "the clinic's billing profile is not set up: an admin sets it with PUT /v1/billing/profile".into()
            }
            Refusal::AlreadyVoided { what, by } => format!("the {what} was voided already, by {by}"),
        }
    }
}

/// One rule a request broke, named by the field's JSON path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field, e.g. `indications[0].subtype`.
    #[schema(example = "date_of_birth")]
    pub field: String,
    /// What is wrong, in words a person can act on.
    #[schema(example = "must be in the past")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// The refusal naming this one field.
    pub fn refusal(field: impl Into<String>, message: impl Into<String>) -> Refusal {
        Refusal::Invalid(vec![Self::new(field, message)])
    }
}

/// `Ok(())` when `errors` is empty, else the refusal naming each.
pub fn valid(errors: Vec<FieldError>) -> Result<(), Refusal> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Refusal::Invalid(errors))
    }
}

/// A date a record may carry only if it is not in the future (a letter
/// received, a treatment attested, a consult held).
pub fn not_after_today(field: &str, date: NaiveDate, today: NaiveDate) -> Option<FieldError> {
    (date > today).then(|| FieldError::new(field, "must not be in the future"))
}

/// The clinic as a decision sees it: its calendar and intake policy (from
/// settings), and the instant the decision is taken at.
#[derive(Clone, Debug)]
pub struct Clinic {
    pub calendar: Calendar,
    pub policy: IntakePolicy,
    /// Improvement a course's response check needs before no review is flagged.
    pub response_improvement: f64,
    /// Now, to the microsecond both backends store.
    pub now: DateTime<Utc>,
}

impl Clinic {
    /// Today's date in the clinic's time zone.
    pub fn today(&self) -> NaiveDate {
        self.calendar.local_date(self.now)
    }
}
