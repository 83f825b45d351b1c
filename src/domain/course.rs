//! Courses: their status, derived from their appointments, and the response
//! check at the protocol's chosen infusion.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::appointment::{Appointment, AppointmentStatus};
use super::patient::IndicationCategory;
use super::protocol::Protocol;

/// Where a course stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CourseStatus {
    /// No infusion has happened yet.
    Scheduled,
    /// Some infusions happened; some are still ahead.
    InProgress,
    /// Nothing is left to happen.
    Completed,
    /// Cancelled: what was left of it was cancelled.
    Cancelled,
}

/// The status of a course from its appointments (and whether it was cancelled).
pub fn status(cancelled: bool, appointments: &[Appointment]) -> CourseStatus {
    use AppointmentStatus::*;
    if cancelled || appointments.iter().all(|a| a.status == Cancelled) {
        return CourseStatus::Cancelled;
    }
    let live: Vec<_> = appointments
        .iter()
        .filter(|a| a.status != Cancelled)
        .collect();
    if live.iter().all(|a| matches!(a.status, Completed | NoShow)) {
        CourseStatus::Completed
    } else if live
        .iter()
        .any(|a| matches!(a.status, CheckedIn | Completed | NoShow))
    {
        CourseStatus::InProgress
    } else {
        CourseStatus::Scheduled
    }
}

/// What the response check measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Pain on arrival, 0 to 10.
    PainBefore,
    /// PHQ-9 at check-in, 0 to 27.
    Phq9,
}

/// The response at the protocol's check infusion, against the first.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"measure": "pain_before", "infusion": 4, "baseline": 8, "latest": 7, "change": -1, "improvement": 0.125}))]
pub struct Response {
    pub measure: Measure,
    /// Which infusion the check is at.
    pub infusion: u32,
    /// The score at the first infusion.
    pub baseline: i32,
    /// The score at the check infusion.
    pub latest: i32,
    /// `latest - baseline`: negative is better.
    pub change: i32,
    /// The fraction the score fell by (0.3 is 30% better).
    pub improvement: f64,
}

/// The response check, once the check infusion's score is recorded; and
/// whether it calls for a clinician's review (improved by less than
/// `required_improvement`).
pub fn response(
    protocol: &Protocol,
    appointments: &[Appointment],
    required_improvement: f64,
) -> (Option<Response>, bool) {
    let Some(n) = protocol.response_check_infusion else {
        return (None, false);
    };
    let measure = match protocol.categories.as_slice() {
        [IndicationCategory::Pain] => Measure::PainBefore,
        [IndicationCategory::MentalHealth] => Measure::Phq9,
        _ => return (None, false),
    };
    let mut given: Vec<&Appointment> = appointments
        .iter()
        .filter(|a| {
            matches!(
                a.status,
                AppointmentStatus::CheckedIn | AppointmentStatus::Completed
            )
        })
        .collect();
    given.sort_by_key(|a| (a.date, a.starts_at));
    let score = |a: &Appointment| match measure {
        Measure::PainBefore => a.pain_before.map(|p| p.value()),
        Measure::Phq9 => a.phq9,
    };
    let (Some(first), Some(check)) = (given.first(), given.get(n as usize - 1)) else {
        return (None, false);
    };
    let (Some(baseline), Some(latest)) = (score(first), score(check)) else {
        return (None, false);
    };
    let improvement = if baseline > 0 {
        f64::from(baseline - latest) / f64::from(baseline)
    } else {
        0.0
    };
    let needs_review = baseline > 0 && improvement < required_improvement;
    (
        Some(Response {
            measure,
            infusion: n,
            baseline,
            latest,
            change: latest - baseline,
            improvement,
        }),
        needs_review,
    )
}
