//! The clinic's rules as plain Rust: no actix, no diesel. Inputs parse into
//! types that cannot hold invalid values, so the layers around them need not
//! re-check.

pub mod access;
pub mod appointment;
pub mod calendar;
pub mod clock;
pub mod course;
pub mod patient;
pub mod protocol;
pub mod readiness;
pub mod referral;
pub mod screening;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

/// A clinic rule refused the request. Each has a stable code in the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
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
        items: Vec<readiness::Item>,
        /// What was refused, e.g. "booking" or "the first infusion's check-in".
        refused: &'static str,
    },
    /// No whole series fits (or it stopped fitting while booking); the next
    /// start that would fit within the horizon, if any.
    NoCapacityForSeries {
        next_start: Option<NaiveDate>,
    },
    /// The change would strand other records: the appointments named.
    Conflict {
        detail: String,
        appointment_ids: Vec<String>,
    },
}

impl Refusal {
    /// The stable code of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotAClinicDay(_) => "not_a_clinic_day",
            Refusal::ClinicClosed(_) => "clinic_closed",
            Refusal::InThePast => "in_the_past",
            Refusal::OutsideHorizon { .. } => "outside_horizon",
            Refusal::SlotFull => "slot_full",
            Refusal::PatientAlreadyBookedThatDay(_) => "patient_already_booked_that_day",
            Refusal::InvalidTransition { .. } => "invalid_transition",
            Refusal::NotReady { .. } => "not_ready",
            Refusal::NoCapacityForSeries { .. } => "no_capacity_for_series",
            Refusal::Conflict { .. } => "conflict",
        }
    }

    /// What was refused, in words.
    pub fn detail(&self) -> String {
        match self {
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
            Refusal::Conflict { detail, .. } => detail.clone(),
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
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Free text that must be present: not blank, at most `max_chars`
/// characters, no control characters.
pub fn check_text(field: &str, text: &str, max_chars: usize) -> Option<FieldError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        Some(FieldError::new(field, "must not be empty"))
    } else if trimmed.chars().count() > max_chars {
        Some(FieldError::new(
            field,
            format!("must be at most {max_chars} characters"),
        ))
    } else if trimmed.chars().any(char::is_control) {
        Some(FieldError::new(
            field,
            "must not contain control characters",
        ))
    } else {
        None
    }
}
