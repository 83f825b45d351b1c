//! What the domain's table tests share: a clinic at a known moment and
//! patients' intake in the states that decisions turn on.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::appointment::{Appointment, AppointmentStatus, PainScore, Phq9Score, Request, Route};
use super::billing::InfusionMinutes;
use super::calendar::{Calendar, Session};
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
            address: None,
            indications: vec![Indication::of(
                IndicationCode::ChronicPain,
                Some(IndicationSubtype::Crps),
            )],
            in_mental_health_treatment: true,
            pain_referral_required: false,
            identifiers: Vec::new(),
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

/// The `mental-health` protocol as seeded: 2 or 3 a week for 2 or 3 weeks,
/// a free day between two.
pub fn mental_health() -> Protocol {
    let two_or_three = Some(Range { min: 2, max: 3 });
    let mut mental_health = pain_5_day();
    (mental_health.code, mental_health.name) =
        ("mental-health".into(), Text::parse("Mental health").unwrap());
    mental_health.categories = vec![IndicationCategory::MentalHealth];
    (mental_health.spacing, mental_health.min_gap_days) = (Spacing::Weekly, 1);
    mental_health.infusions = Range { min: 4, max: 9 };
    (mental_health.per_week, mental_health.weeks) = (two_or_three, two_or_three);
    (mental_health.preferred_start_weekday, mental_health.response_check_infusion) =
        (None, Some(3));
    mental_health
}

/// The `maintenance` protocol as seeded: one or two infusions, after a
/// completed course.
pub fn maintenance() -> Protocol {
    let mut maintenance = pain_5_day();
    maintenance.code = "maintenance".into();
    maintenance.categories.push(IndicationCategory::MentalHealth);
    maintenance.infusions = Range { min: 1, max: 2 };
    (maintenance.preferred_start_weekday, maintenance.response_check_infusion) = (None, None);
    maintenance.requires_completed_course = true;
    maintenance
}

/// A scheduled IV infusion of patient `p-1` in room `r-1`, on `date`'s
/// morning starting at `starts_at`, booked at `starts_at` two days before.
pub fn appointment(id: &str, date: NaiveDate, starts_at: DateTime<Utc>) -> Appointment {
    let booked = starts_at - chrono::Duration::days(2);
    Appointment {
        id: id.into(),
        patient_id: "p-1".into(),
        room_id: "r-1".into(),
        date,
        session: Session::Morning,
        starts_at,
        status: AppointmentStatus::Scheduled,
        route: Route::Iv,
        pain_before: None,
        pain_after: None,
        cancel_reason: None,
        cancelled_by: None,
        checked_in_at: None,
        completed_at: None,
        created_at: booked,
        updated_at: booked,
        course_id: None,
        phq9: None,
        clinician_id: None,
        infusion_minutes: None,
    }
}

/// A completion by clinician `c-1` after a 100-minute infusion.
pub fn completion(
    pain_after: PainScore,
    pain_before: Option<PainScore>,
    phq9: Option<Phq9Score>,
) -> Request {
    Request::Complete {
        pain_after,
        pain_before,
        phq9,
        clinician_id: "c-1".into(),
        minutes: InfusionMinutes::new(100).unwrap(),
    }
}
