//! Appointments: their states, the transitions between them, the rules of
//! time each action obeys, and the decisions on booking, moving and acting
//! on one ("Appointments" in `docs/DOMAIN.md`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Role;
use super::calendar::{Closures, Session};
use super::readiness::{gate, IntakeRecord, Purpose};
use super::{Clinic, FieldError, Refusal};

/// An appointment as stored. Its instants are shown in the clinic's offset
/// by the API, so they are not serialized here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Appointment {
    pub id: String,
    pub patient_id: String,
    pub room_id: String,
    /// Clinic-local date.
    pub date: NaiveDate,
    pub session: Session,
    #[serde(skip)]
    pub starts_at: DateTime<Utc>,
    pub status: AppointmentStatus,
    pub route: Route,
    /// Pain on arrival, recorded at check-in.
    pub pain_before: Option<PainScore>,
    /// Pain at discharge, recorded at completion.
    pub pain_after: Option<PainScore>,
    pub cancel_reason: Option<String>,
    /// `role:subject` of whoever cancelled.
    pub cancelled_by: Option<String>,
    #[serde(skip)]
    pub checked_in_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub updated_at: DateTime<Utc>,
    /// The course this infusion belongs to, if booked as part of one.
    pub course_id: Option<String>,
    /// PHQ-9 at check-in, if recorded.
    pub phq9: Option<Phq9Score>,
}

/// Where an appointment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Scheduled,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

/// What can be done to an appointment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    CheckIn,
    Complete,
    Cancel,
    NoShow,
    Reschedule,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CheckIn => "check-in",
            Action::Complete => "complete",
            Action::Cancel => "cancel",
            Action::NoShow => "no-show",
            Action::Reschedule => "reschedule",
        }
    }
}

impl AppointmentStatus {
    pub const ALL: [AppointmentStatus; 5] = [
        AppointmentStatus::Scheduled,
        AppointmentStatus::CheckedIn,
        AppointmentStatus::Completed,
        AppointmentStatus::Cancelled,
        AppointmentStatus::NoShow,
    ];

    /// The statuses that hold their room and the patient's day.
    pub const ACTIVE: [AppointmentStatus; 3] = [
        AppointmentStatus::Scheduled,
        AppointmentStatus::CheckedIn,
        AppointmentStatus::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Scheduled => "scheduled",
            AppointmentStatus::CheckedIn => "checked_in",
            AppointmentStatus::Completed => "completed",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::NoShow => "no_show",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }

    /// The status after `action`: `scheduled` → `checked_in` → `completed`;
    /// `scheduled` → `cancelled` | `no_show`; a rescheduled appointment stays
    /// `scheduled`. Anything else is `invalid_transition`.
    pub fn after(self, action: Action) -> Result<AppointmentStatus, Refusal> {
        use AppointmentStatus::*;
        match (self, action) {
            (Scheduled, Action::CheckIn) => Ok(CheckedIn),
            (CheckedIn, Action::Complete) => Ok(Completed),
            (Scheduled, Action::Cancel) => Ok(Cancelled),
            (Scheduled, Action::NoShow) => Ok(NoShow),
            (Scheduled, Action::Reschedule) => Ok(Scheduled),
            (from, action) => Err(Refusal::InvalidTransition {
                from: from.as_str(),
                action: action.as_str(),
                why: None,
            }),
        }
    }
}

/// How ketamine is given; IV unless recorded otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    #[default]
    Iv,
    Oral,
    Topical,
    Intranasal,
    Intramuscular,
    Intraosseous,
}

impl Route {
    pub const ALL: [Route; 6] = [
        Route::Iv,
        Route::Oral,
        Route::Topical,
        Route::Intranasal,
        Route::Intramuscular,
        Route::Intraosseous,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Iv => "iv",
            Route::Oral => "oral",
            Route::Topical => "topical",
            Route::Intranasal => "intranasal",
            Route::Intramuscular => "intramuscular",
            Route::Intraosseous => "intraosseous",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A pain score on the 0–10 scale; no other value can be held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(into = "i32")]
#[schema(value_type = i32, minimum = 0, maximum = 10, example = 7)]
pub struct PainScore(u8);

impl PainScore {
    pub const MAX: i32 = 10;

    pub fn new(value: i32) -> Option<Self> {
        u8::try_from(value)
            .ok()
            .filter(|v| i32::from(*v) <= Self::MAX)
            .map(Self)
    }

    pub fn value(self) -> i32 {
        i32::from(self.0)
    }
}

impl From<PainScore> for i32 {
    fn from(score: PainScore) -> i32 {
        score.value()
    }
}

impl<'de> Deserialize<'de> for PainScore {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(d)?;
        i32::try_from(value)
            .ok()
            .and_then(PainScore::new)
            .ok_or_else(|| serde::de::Error::custom("must be a whole number from 0 to 10"))
    }
}

/// A PHQ-9 depression score, 0 to 27; no other value can be held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(into = "i32")]
#[schema(value_type = i32, minimum = 0, maximum = 27, example = 14)]
pub struct Phq9Score(u8);

impl Phq9Score {
    pub fn new(value: i32) -> Option<Self> {
        u8::try_from(value).ok().filter(|v| *v <= 27).map(Self)
    }

    pub fn value(self) -> i32 {
        i32::from(self.0)
    }
}

impl From<Phq9Score> for i32 {
    fn from(score: Phq9Score) -> i32 {
        score.value()
    }
}

impl<'de> Deserialize<'de> for Phq9Score {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(d)?;
        i32::try_from(value)
            .ok()
            .and_then(Phq9Score::new)
            .ok_or_else(|| serde::de::Error::custom("must be a whole number from 0 to 27"))
    }
}

/// Check-in happens on the appointment's own (clinic-local) date.
pub fn check_in_day(date: NaiveDate, today: NaiveDate) -> Result<(), Refusal> {
    if date == today {
        Ok(())
    } else {
        Err(Refusal::InvalidTransition {
            from: AppointmentStatus::Scheduled.as_str(),
            action: Action::CheckIn.as_str(),
            why: Some(format!(
                "check-in is only possible on the appointment's date, {date}"
            )),
        })
    }
}

/// A no-show is recorded only once the session has begun.
pub fn no_show_time(starts_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Refusal> {
    if now >= starts_at {
        Ok(())
    } else {
        Err(Refusal::InvalidTransition {
            from: AppointmentStatus::Scheduled.as_str(),
            action: Action::NoShow.as_str(),
            why: Some("a no-show can be recorded only after the session has begun".into()),
        })
    }
}

/// An appointment is cancelled only before its session begins; after that
/// the patient came (check-in) or did not (no-show).
pub fn cancel_time(starts_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Refusal> {
    if now < starts_at {
        Ok(())
    } else {
        Err(Refusal::InvalidTransition {
            from: AppointmentStatus::Scheduled.as_str(),
            action: Action::Cancel.as_str(),
            why: Some("the session has begun: check the patient in or record a no-show".into()),
        })
    }
}

/// What a caller asks of a booked appointment; moving one is [`reschedule`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Cancel {
        reason: String,
        /// `role:subject` of whoever cancels.
        by: String,
    },
    CheckIn {
        pain_before: PainScore,
        /// The route actually used, if not the booked one.
        route: Option<Route>,
        phq9: Option<Phq9Score>,
    },
    Complete {
        pain_after: PainScore,
    },
    NoShow,
}

impl Request {
    pub fn action(&self) -> Action {
        match self {
            Request::Cancel { .. } => Action::Cancel,
            Request::CheckIn { .. } => Action::CheckIn,
            Request::Complete { .. } => Action::Complete,
            Request::NoShow => Action::NoShow,
        }
    }

    /// Whether [`decide`] needs the patient's intake record: check-in's gate does.
    pub fn needs_intake(&self) -> bool {
        matches!(self, Request::CheckIn { .. })
    }
}

/// What a decided action writes: the new status and what it records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub status: AppointmentStatus,
    pub route: Option<Route>,
    pub pain_before: Option<PainScore>,
    pub pain_after: Option<PainScore>,
    pub phq9: Option<Phq9Score>,
    pub cancel_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub checked_in_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Change {
    fn to(status: AppointmentStatus) -> Self {
        Self {
            status,
            route: None,
            pain_before: None,
            pain_after: None,
            phq9: None,
            cancel_reason: None,
            cancelled_by: None,
            checked_in_at: None,
            completed_at: None,
        }
    }
}

/// The decision on `request` for the appointment as it stands: the state
/// machine first, then the action's own rule of time, then (check-in) the
/// patient's readiness gate on `intake` (read when
/// [`Request::needs_intake`]). Without it a check-in is refused: the gate is
/// never skipped.
pub fn decide(
    current: &Appointment,
    request: Request,
    intake: Option<&IntakeRecord>,
    clinic: &Clinic,
) -> Result<Change, Refusal> {
    let change = Change::to(current.status.after(request.action())?);
    let now = clinic.now;
    Ok(match request {
        Request::Cancel { reason, by } => {
            cancel_time(current.starts_at, now)?;
            Change {
                cancel_reason: Some(reason),
                cancelled_by: Some(by),
                ..change
            }
        }
        Request::CheckIn {
            pain_before,
            route,
            phq9,
        } => {
            check_in_day(current.date, clinic.today())?;
            cleared(intake, Purpose::CheckIn, clinic)?;
            Change {
                pain_before: Some(pain_before),
                route,
                phq9,
                checked_in_at: Some(now),
                ..change
            }
        }
        Request::Complete { pain_after } => Change {
            pain_after: Some(pain_after),
            completed_at: Some(now),
            ..change
        },
        Request::NoShow => {
            no_show_time(current.starts_at, now)?;
            change
        }
    })
}

/// A slot asked for: a session of a date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRequest {
    pub date: NaiveDate,
    pub session: Session,
}

/// What a booking or a move reads before it is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotFacts {
    /// The patient's intake record; `None` when there is no such patient.
    pub intake: Option<IntakeRecord>,
    /// The closures on the date asked for.
    pub closures: Closures,
    /// Whether the patient already holds another active appointment that day.
    pub patient_busy: bool,
}

impl SlotFacts {
    /// The facts as `role` may see them: see [`IntakeRecord::seen_by`].
    pub fn seen_by(mut self, role: Role) -> Self {
        self.intake = self.intake.map(|i| i.seen_by(role));
        self
    }
}

/// A new appointment, decided: the store finds it a free room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAppointment {
    pub patient_id: String,
    pub date: NaiveDate,
    pub session: Session,
    pub starts_at: DateTime<Utc>,
    pub route: Route,
    pub course_id: Option<String>,
}

/// The decision on a single booking: the patient exists, the calendar has
/// the slot now, the patient is ready to book, and has no other appointment
/// that day. Whether a room is free is the database's to say, race-free.
pub fn book(
    patient_id: &str,
    slot: SlotRequest,
    route: Route,
    facts: &SlotFacts,
    clinic: &Clinic,
) -> Result<NewAppointment, Refusal> {
    let intake = facts
        .intake
        .as_ref()
        .ok_or_else(|| FieldError::refusal("patient_id", "no patient has this id"))?;
    let starts_at = bookable(slot, facts, clinic)?;
    gate(intake, Purpose::Booking, clinic.today(), clinic.policy)?;
    free_day(slot, facts)?;
    Ok(NewAppointment {
        patient_id: patient_id.to_owned(),
        date: slot.date,
        session: slot.session,
        starts_at,
        route,
        course_id: None,
    })
}

/// Where a decided move takes an appointment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub date: NaiveDate,
    pub session: Session,
    pub starts_at: DateTime<Utc>,
    /// The same session again: the appointment keeps its room.
    pub keeps_room: bool,
}

/// The decision on moving a scheduled appointment: the state machine, the
/// calendar's verdict on the new slot, the rescheduling gate (a
/// contraindication found since booking stops it; the booking checklist's
/// windows are not asked again, a move being no new course), and the
/// patient's other appointments that day.
pub fn reschedule(
    current: &Appointment,
    slot: SlotRequest,
    facts: &SlotFacts,
    clinic: &Clinic,
) -> Result<Move, Refusal> {
    current.status.after(Action::Reschedule)?;
    let starts_at = bookable(slot, facts, clinic)?;
    cleared(facts.intake.as_ref(), Purpose::Reschedule, clinic)?;
    free_day(slot, facts)?;
    Ok(Move {
        date: slot.date,
        session: slot.session,
        starts_at,
        keeps_room: current.date == slot.date && current.session == slot.session,
    })
}

/// The readiness gate before `purpose`, failing closed: without the
/// patient's intake record nothing is cleared.
fn cleared(
    intake: Option<&IntakeRecord>,
    purpose: Purpose,
    clinic: &Clinic,
) -> Result<(), Refusal> {
    match intake {
        Some(record) => gate(record, purpose, clinic.today(), clinic.policy),
        None => Err(Refusal::NotReady {
            items: Vec::new(),
            refused: "this: the patient's intake record is missing",
        }),
    }
}

/// The calendar's verdict on a slot now: its start, or why it has none.
fn bookable(
    slot: SlotRequest,
    facts: &SlotFacts,
    clinic: &Clinic,
) -> Result<DateTime<Utc>, Refusal> {
    clinic
        .calendar
        .check_bookable(slot.date, slot.session, clinic.now, &facts.closures)
        .map(|t| t.with_timezone(&Utc))
}

fn free_day(slot: SlotRequest, facts: &SlotFacts) -> Result<(), Refusal> {
    if facts.patient_busy {
        Err(Refusal::PatientAlreadyBookedThatDay(slot.date))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AppointmentStatus::*;

    #[test]
    fn the_allowed_transitions() {
        assert_eq!(Scheduled.after(Action::CheckIn), Ok(CheckedIn));
        assert_eq!(CheckedIn.after(Action::Complete), Ok(Completed));
        assert_eq!(Scheduled.after(Action::Cancel), Ok(Cancelled));
        assert_eq!(Scheduled.after(Action::NoShow), Ok(NoShow));
        assert_eq!(Scheduled.after(Action::Reschedule), Ok(Scheduled));
    }

    #[test]
    fn every_other_transition_is_refused() {
        let allowed = [
            (Scheduled, Action::CheckIn),
            (CheckedIn, Action::Complete),
            (Scheduled, Action::Cancel),
            (Scheduled, Action::NoShow),
            (Scheduled, Action::Reschedule),
        ];
        let actions = [
            Action::CheckIn,
            Action::Complete,
            Action::Cancel,
            Action::NoShow,
            Action::Reschedule,
        ];
        for from in AppointmentStatus::ALL {
            for action in actions {
                if !allowed.contains(&(from, action)) {
                    assert!(
                        matches!(from.after(action), Err(Refusal::InvalidTransition { .. })),
                        "{from:?} {action:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn active_statuses_hold_the_slot() {
        assert!(Scheduled.is_active() && CheckedIn.is_active() && Completed.is_active());
        assert!(!Cancelled.is_active() && !NoShow.is_active());
    }

    #[test]
    fn pain_scores_are_0_to_10() {
        assert_eq!(PainScore::new(0).map(PainScore::value), Some(0));
        assert_eq!(PainScore::new(10).map(PainScore::value), Some(10));
        assert_eq!(PainScore::new(11), None);
        assert_eq!(PainScore::new(-1), None);
        assert!(serde_json::from_str::<PainScore>("7").is_ok());
        assert!(serde_json::from_str::<PainScore>("11").is_err());
        assert!(serde_json::from_str::<PainScore>("7.5").is_err());
    }

    #[test]
    fn check_in_only_on_the_day_and_no_show_only_after_the_start() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        assert!(check_in_day(day, day).is_ok());
        assert!(check_in_day(day, day.succ_opt().unwrap()).is_err());
        assert!(check_in_day(day, day.pred_opt().unwrap()).is_err());
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(no_show_time(start, start).is_ok());
        assert!(no_show_time(start, start - chrono::Duration::seconds(1)).is_err());
        assert!(cancel_time(start, start - chrono::Duration::seconds(1)).is_ok());
        assert!(cancel_time(start, start).is_err());
    }
}
