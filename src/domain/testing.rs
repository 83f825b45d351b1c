//! What the domain's table tests share: a clinic at a known moment and
//! patients' intake in the states that decisions turn on.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::calendar::Calendar;
use super::patient::{
    Indication, IndicationCategory, IndicationCode, IndicationSubtype, PatientDetails,
};
use super::protocol::{Day, Protocol, Range, Spacing};
use super::readiness::{IntakePolicy, IntakeRecord, ScreeningSummary};
use super::screening::Outcome;
use super::values::Text;
use super::Clinic;

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Wednesday 2 December 2026, 10:00 in New York.
pub fn wednesday_morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 15, 0, 0).unwrap()
}

/// The New York clinic of [`Calendar::new_york`] at `now`, with the default
/// policy windows.
pub fn clinic(now: DateTime<Utc>) -> Clinic {
    Clinic {
        calendar: Calendar::new_york(26),
        policy: IntakePolicy {
            screening_valid_days: 30,
            referral_valid_days: 365,
            attestation_valid_days: 365,
        },
        response_improvement: 0.3,
        now,
    }
}

/// How a patient's latest screening stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screened {
    /// Eligible, on `screened_on`.
    Eligible(NaiveDate),
    /// Ineligible (pregnant), on `screened_on`.
    Contraindicated(NaiveDate),
    /// Eligible, on lamotrigine, no consult since.
    OnLamotrigine(NaiveDate),
    Never,
}

/// A chronic-pain patient in mental health treatment, needing no referral:
/// ready to book once screened eligible within the window.
pub fn pain_intake(screened: Screened) -> IntakeRecord {
    let screening = |on: NaiveDate, outcome, lamotrigine| ScreeningSummary {
        screened_on: on,
        outcome,
        reasons: match outcome {
            Outcome::Ineligible => vec!["pregnant".into()],
            Outcome::Eligible => vec![],
        },
        lamotrigine,
        recorded_at: on.and_hms_opt(12, 0, 0).unwrap().and_utc(),
    };
    IntakeRecord {
        patient: PatientDetails {
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            date_of_birth: date(1985, 12, 10),
            email: None,
            phone: None,
            indications: vec![Indication {
                code: IndicationCode::ChronicPain,
                subtype: Some(IndicationSubtype::Crps),
            }],
            in_mental_health_treatment: true,
            pain_referral_required: false,
        },
        latest_screening: match screened {
            Screened::Eligible(on) => Some(screening(on, Outcome::Eligible, false)),
            Screened::Contraindicated(on) => Some(screening(on, Outcome::Ineligible, false)),
            Screened::OnLamotrigine(on) => Some(screening(on, Outcome::Eligible, true)),
            Screened::Never => None,
        },
        referrals: vec![],
        latest_attestation: None,
        latest_consult_at: None,
    }
}

/// The `pain-5-day` protocol as seeded.
pub fn pain_5_day() -> Protocol {
    Protocol {
        code: "pain-5-day".into(),
        name: Text::parse("Pain, 5 days").unwrap(),
        categories: vec![IndicationCategory::Pain],
        spacing: Spacing::ConsecutiveClinicDays,
        infusions: Range { min: 5, max: 5 },
        per_week: None,
        weeks: None,
        min_gap_days: 0,
        preferred_start_weekday: Some(Day::Monday),
        response_check_infusion: Some(4),
        requires_completed_course: false,
    }
}

/// The `mental-health` protocol as seeded.
pub fn mental_health() -> Protocol {
    Protocol {
        code: "mental-health".into(),
        name: Text::parse("Mental health").unwrap(),
        categories: vec![IndicationCategory::MentalHealth],
        spacing: Spacing::Weekly,
        infusions: Range { min: 4, max: 9 },
        per_week: Some(Range { min: 2, max: 3 }),
        weeks: Some(Range { min: 2, max: 3 }),
        min_gap_days: 1,
        preferred_start_weekday: None,
        response_check_infusion: Some(3),
        ..pain_5_day()
    }
}

/// The `maintenance` protocol as seeded: one or two infusions, after a
/// completed course.
pub fn maintenance() -> Protocol {
    Protocol {
        code: "maintenance".into(),
        name: Text::parse("Maintenance").unwrap(),
        categories: vec![IndicationCategory::Pain, IndicationCategory::MentalHealth],
        infusions: Range { min: 1, max: 2 },
        preferred_start_weekday: None,
        response_check_infusion: None,
        requires_completed_course: true,
        ..pain_5_day()
    }
}
