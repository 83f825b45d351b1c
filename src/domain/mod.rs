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

/// Free text that must be present: at most `max_chars` characters, no
/// control characters, and not blank: what [`text_schema`] and
/// [`text_pattern`] tell clients, so the contract and this check agree.
pub fn check_text(field: &str, text: &str, max_chars: usize) -> Option<FieldError> {
    if text.chars().any(char::is_control) {
        Some(FieldError::new(
            field,
            "must not contain control characters",
        ))
    } else if text.trim().is_empty() {
        Some(FieldError::new(field, "must not be empty"))
    } else if text.chars().count() > max_chars {
        Some(FieldError::new(
            field,
            format!("must be at most {max_chars} characters"),
        ))
    } else {
        None
    }
}

/// The control characters (Unicode category Cc, `char::is_control`).
const CONTROL: [(char, char); 2] = [('\u{0}', '\u{1f}'), ('\u{7f}', '\u{9f}')];

/// The white space (`char::is_whitespace`) that is not a control character.
const BLANK: [(char, char); 8] = [
    (' ', ' '),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// A regular expression character class of `ranges`, with `\uXXXX` escapes
/// that ECMA-262, Python and Rust regular expressions all read alike.
fn class(negated: bool, ranges: &[(char, char)]) -> String {
    let escape = |c: char| format!("\\u{:04X}", u32::from(c));
    let body: String = ranges
        .iter()
        .map(|&(from, to)| {
            if from == to {
                escape(from)
            } else {
                format!("{}-{}", escape(from), escape(to))
            }
        })
        .collect();
    format!("[{}{body}]", if negated { "^" } else { "" })
}

/// The JSON Schema `pattern` of [`check_text`]: no control character
/// anywhere, and at least one character that is not white space.
pub fn text_pattern() -> String {
    let any = class(true, &CONTROL);
    let visible = class(true, &[&CONTROL[..], &BLANK[..]].concat());
    format!("^{any}*{visible}{any}*$")
}

/// The schema of free text that [`check_text`] accepts with `MAX` characters
/// at most. Derived schemas say the same with
/// `#[schema(min_length = 1, max_length = MAX, pattern = r"...")]` and the
/// pattern spelled out (utoipa takes only literals); a test holds every such
/// literal in the contract to [`text_pattern`].
pub fn text_schema<const MAX: usize>() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX))
        .pattern(Some(text_pattern()))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(ranges: &[(char, char)], c: char) -> bool {
        ranges.iter().any(|&(from, to)| (from..=to).contains(&c))
    }

    #[test]
    fn the_pattern_classes_are_the_ones_check_text_uses() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(c.is_control(), within(&CONTROL, c), "{c:?}");
            assert_eq!(
                c.is_whitespace() && !c.is_control(),
                within(&BLANK, c),
                "{c:?}"
            );
        }
        assert_eq!(
            text_pattern(),
            "^[^\\u0000-\\u001F\\u007F-\\u009F]*\
             [^\\u0000-\\u001F\\u007F-\\u009F\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u2028-\\u2029\\u202F\\u205F\\u3000]\
             [^\\u0000-\\u001F\\u007F-\\u009F]*$"
        );
    }

    #[test]
    fn text_is_bounded_visible_and_free_of_control_characters() {
        assert_eq!(check_text("t", "  Ada  ", 7), None);
        assert_eq!(check_text("t", "\u{3000}x", 2), None);
        for (text, message) in [
            ("", "must not be empty"),
            (" \u{a0}\u{2003}", "must not be empty"),
            ("Ada\n", "must not contain control characters"),
            ("\tAda", "must not contain control characters"),
            ("A\u{85}da", "must not contain control characters"),
            ("  Ada   ", "must be at most 7 characters"),
        ] {
            let error = check_text("t", text, 7).map(|e| e.message);
            assert_eq!(error.as_deref(), Some(message), "{text:?}");
        }
    }
}
