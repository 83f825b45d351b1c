//! Appointments: their states, the transitions between them, the rules of
//! time each action obeys, and the decisions on booking, moving and acting
//! on one ("Appointments" in `docs/DOMAIN.md`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Role;
use super::billing::InfusionMinutes;
use super::calendar::{Calendar, Closures, Session};
use super::readiness::{gate, IntakeRecord, Purpose};
use super::{valid, Clinic, FieldError, Refusal};

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
    /// The clinician who gave the infusion, recorded at completion.
    pub clinician_id: Option<String>,
    /// How long the infusion ran, recorded at completion.
    pub infusion_minutes: Option<InfusionMinutes>,
}

impl Appointment {
    /// When the appointment ends: the end of its session on its date, as the
    /// calendar has it now, and never before the start it was booked with.
    pub fn ends_at(&self, calendar: &Calendar) -> DateTime<Utc> {
        calendar.ends_at(self.date, self.session).with_timezone(&Utc).max(self.starts_at)
    }
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
    pub const ACTIVE: [AppointmentStatus; 3] =
        [AppointmentStatus::Scheduled, AppointmentStatus::CheckedIn, AppointmentStatus::Completed];

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

/// A score on a bounded scale: a newtype that holds only 0 to `$max`,
/// parses from a whole number and refuses anything else, naming the scale.
macro_rules! score {
    ($description:literal, $name:ident, $max:literal, example = $example:literal) => {
        #[doc = $description]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
        #[serde(into = "i32")]
        pub struct $name(u8);

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                #[expect(deprecated, reason = "`example` is what the contract has always said")]
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                    .description(Some($description))
                    .example(Some($example.into()))
                    .maximum(Some($max))
                    .minimum(Some(0))
                    .into()
            }
        }

        impl ToSchema for $name {}

        impl $name {
            pub const MAX: i32 = $max;

            pub fn new(value: i32) -> Option<Self> {
                u8::try_from(value).ok().filter(|v| i32::from(*v) <= Self::MAX).map(Self)
            }

            pub fn value(self) -> i32 {
                i32::from(self.0)
            }
        }

        impl From<$name> for i32 {
            fn from(score: $name) -> i32 {
                score.value()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = i64::deserialize(d)?;
                i32::try_from(value).ok().and_then($name::new).ok_or_else(|| {
                    serde::de::Error::custom(concat!("must be a whole number from 0 to ", $max))
                })
            }
        }
    };
}

score!("A pain score on the 0–10 scale; no other value can be held.", PainScore, 10, example = 7);

score!(
    "A PHQ-9 depression score, 0 to 27; no other value can be held.",
    Phq9Score,
    27,
    example = 14
);

/// A scheduled appointment's `action` refused at this time, and why.
fn not_now(action: Action, why: &str) -> Refusal {
    Refusal::InvalidTransition {
        from: AppointmentStatus::Scheduled.as_str(),
        action: action.as_str(),
        why: Some(why.to_owned()),
    }
}

/// Check-in happens on the appointment's own (clinic-local) date.
pub fn check_in_day(date: NaiveDate, today: NaiveDate) -> Result<(), Refusal> {
    let why = format!("check-in is only possible on the appointment's date, {date}");
    (date == today).then_some(()).ok_or_else(|| not_now(Action::CheckIn, &why))
}

/// A no-show is recorded only once the session has begun.
pub fn no_show_time(starts_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Refusal> {
    let why = "a no-show can be recorded only after the session has begun";
    (now >= starts_at).then_some(()).ok_or_else(|| not_now(Action::NoShow, why))
}

/// An appointment is cancelled only before its session begins; after that
/// the patient came (check-in) or did not (no-show).
pub fn cancel_time(starts_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Refusal> {
    let why = "the session has begun: check the patient in or record a no-show";
    (now < starts_at).then_some(()).ok_or_else(|| not_now(Action::Cancel, why))
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
        /// Pain on arrival: a clinician checking in records it then, or
        /// at completion.
        pain_before: Option<PainScore>,
        /// The route actually used, if not the booked one.
        route: Option<Route>,
        phq9: Option<Phq9Score>,
    },
    Complete {
        pain_after: PainScore,
        /// Pain on arrival, when it was not recorded at check-in.
        pain_before: Option<PainScore>,
        /// PHQ-9, when it was not recorded at check-in.
        phq9: Option<Phq9Score>,
        /// The clinician who gave the infusion.
        clinician_id: String,
        minutes: InfusionMinutes,
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

    /// The clinician a completion names: for it, the decision needs what
    /// billing reads ([`billing::decide`](super::billing::decide)).
    pub fn clinician(&self) -> Option<&str> {
        match self {
            Request::Complete { clinician_id, .. } => Some(clinician_id),
            _ => None,
        }
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
    pub clinician_id: Option<String>,
    pub infusion_minutes: Option<InfusionMinutes>,
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
            clinician_id: None,
            infusion_minutes: None,
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
            Change { cancel_reason: Some(reason), cancelled_by: Some(by), ..change }
        }
        Request::CheckIn { pain_before, route, phq9 } => {
            check_in_day(current.date, clinic.today())?;
            cleared(intake, Purpose::CheckIn, clinic)?;
            Change { pain_before, route, phq9, checked_in_at: Some(now), ..change }
        }
        Request::Complete { pain_after, pain_before, phq9, clinician_id, minutes } => {
            let pain_before = scores_at_completion(current, pain_before, phq9)?;
            Change {
                pain_after: Some(pain_after),
                pain_before,
                phq9,
                completed_at: Some(now),
                clinician_id: Some(clinician_id),
                infusion_minutes: Some(minutes),
                ..change
            }
        }
        Request::NoShow => {
            no_show_time(current.starts_at, now)?;
            change
        }
    })
}

/// The scores a completion adds to what check-in recorded: each once, and
/// pain on arrival by the end of the infusion, whoever checked the patient
/// in (a scheduler records no scores). `Ok` with the pain on arrival to
/// write, if it is new.
fn scores_at_completion(
    current: &Appointment,
    pain_before: Option<PainScore>,
    phq9: Option<Phq9Score>,
) -> Result<Option<PainScore>, Refusal> {
    let mut errors = Vec::new();
    match (current.pain_before, pain_before) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new("pain_before", "was recorded at check-in"));
        }
        (None, None) => errors.push(FieldError::new(
            "pain_before",
            "was not recorded at check-in: send the pain score on arrival",
        )),
        _ => {}
    }
    if current.phq9.is_some() && phq9.is_some() {
        errors.push(FieldError::new("phq9", "was recorded at check-in"));
    }
    valid(errors).map(|()| pain_before)
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
        None => Err(Refusal::NotReady { items: Vec::new(), refused: purpose.refused() }),
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
        let actions =
            [Action::CheckIn, Action::Complete, Action::Cancel, Action::NoShow, Action::Reschedule];
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

    mod decisions {
        use super::super::*;
        use crate::domain::testing::{
            appointment, clinic, completion, date, pain_intake, wednesday_morning, Screened,
        };
        use chrono::TimeZone;

        /// Thursday 3 December 2026, 08:00 in New York.
        fn thursday_morning() -> DateTime<Utc> {
            Utc.with_ymd_and_hms(2026, 12, 3, 13, 0, 0).unwrap()
        }

        #[test]
        fn an_appointment_ends_when_its_session_does_and_never_before_it_starts() {
            let calendar = clinic(wednesday_morning()).calendar;
            let at = |h, m| Utc.with_ymd_and_hms(2026, 12, 3, h, m, 0).unwrap();
            #[rustfmt::skip]
            let table = [
                // Booked at 08:00, or at 07:00 under earlier settings: the
                // morning ends at 12:00 (17:00 UTC).
                (Session::Morning, at(13, 0), at(17, 0)),
                (Session::Morning, at(12, 0), at(17, 0)),
                (Session::Afternoon, at(18, 0), at(22, 0)),
                // A start stored after today's end of its session (the
                // settings changed since): it ends as it starts.
                (Session::Morning, at(17, 30), at(17, 30)),
            ];
            for (session, starts_at, ends_at) in table {
                let a = Appointment { session, ..appointment("a-1", date(2026, 12, 3), starts_at) };
                assert_eq!(a.ends_at(&calendar), ends_at, "{session:?} {starts_at}");
            }
        }

        /// Booked, and in `status`: checked in (or on from there) with the
        /// pain on arrival recorded.
        fn booked(status: AppointmentStatus) -> Appointment {
            let arrived =
                matches!(status, AppointmentStatus::CheckedIn | AppointmentStatus::Completed);
            Appointment {
                status,
                pain_before: arrived.then(|| pain(7)),
                ..appointment("a-1", date(2026, 12, 3), thursday_morning())
            }
        }

        fn pain(n: i32) -> PainScore {
            PainScore::new(n).unwrap()
        }

        fn cancel() -> Request {
            Request::Cancel { reason: "Feeling unwell".into(), by: "scheduler:front-desk".into() }
        }

        fn check_in() -> Request {
            Request::CheckIn {
                pain_before: Some(pain(7)),
                route: Some(Route::Intranasal),
                phq9: None,
            }
        }

        /// Every action on every status, each at a moment its own rule of
        /// time allows (the day before for a cancel, the session's start for
        /// the rest), for a patient cleared to be checked in: what becomes of
        /// the appointment, or the code of the refusal.
        #[test]
        fn each_action_on_each_status() {
            use AppointmentStatus::*;
            let day_before = wednesday_morning();
            let at_start = thursday_morning() + chrono::Duration::minutes(5);
            let cleared = pain_intake(Screened::Eligible(date(2026, 12, 1)));
            let requests = [
                (cancel(), day_before),
                (check_in(), at_start),
                (completion(pain(3), None, None), at_start),
                (Request::NoShow, at_start),
            ];
            let allowed = [
                (Scheduled, Action::Cancel, Cancelled),
                (Scheduled, Action::CheckIn, CheckedIn),
                (CheckedIn, Action::Complete, Completed),
                (Scheduled, Action::NoShow, NoShow),
            ];
            for from in AppointmentStatus::ALL {
                for (request, now) in &requests {
                    let action = request.action();
                    let decided =
                        decide(&booked(from), request.clone(), Some(&cleared), &clinic(*now));
                    match allowed.iter().find(|(f, a, _)| *f == from && *a == action) {
                        Some((_, _, to)) => assert_eq!(decided.map(|c| c.status), Ok(*to)),
                        None => assert_eq!(
                            decided.map_err(|r| r.code()),
                            Err("invalid_transition"),
                            "{from:?} {action:?}"
                        ),
                    }
                }
            }
        }

        /// What each allowed action records besides the status.
        #[test]
        fn each_action_records_what_it_is_about() {
            let at_start = thursday_morning() + chrono::Duration::minutes(5);
            let cleared = pain_intake(Screened::Eligible(date(2026, 12, 1)));
            let scheduled = booked(AppointmentStatus::Scheduled);
            let cancelled =
                decide(&scheduled, cancel(), None, &clinic(wednesday_morning())).unwrap();
            assert_eq!(cancelled.cancel_reason.as_deref(), Some("Feeling unwell"));
            assert_eq!(cancelled.cancelled_by.as_deref(), Some("scheduler:front-desk"));
            let arrived =
                decide(&scheduled, check_in(), Some(&cleared), &clinic(at_start)).unwrap();
            assert_eq!(
                (arrived.pain_before, arrived.route, arrived.checked_in_at),
                (Some(pain(7)), Some(Route::Intranasal), Some(at_start))
            );
            let checked_in = booked(AppointmentStatus::CheckedIn);
            let request = completion(pain(3), None, None);
            let done = decide(&checked_in, request, None, &clinic(at_start)).unwrap();
            assert_eq!((done.pain_after, done.completed_at), (Some(pain(3)), Some(at_start)));
            assert_eq!(done.pain_before, None, "recorded at check-in already");
        }

        /// Scores are recorded once each: what a check-in did not record, the
        /// completion does, and pain on arrival is known by the end.
        #[test]
        fn a_completion_adds_the_scores_check_in_did_not_record() {
            let at_start = thursday_morning() + chrono::Duration::minutes(5);
            let phq9 = Phq9Score::new;
            let complete = |pain_before: Option<i32>, phq: Option<i32>| {
                completion(pain(3), pain_before.map(pain), phq.and_then(phq9))
            };
            let by_scheduler =
                Appointment { pain_before: None, ..booked(AppointmentStatus::CheckedIn) };
            let by_clinician =
                Appointment { phq9: phq9(12), ..booked(AppointmentStatus::CheckedIn) };
            // (checked in as, completion request, the pain on arrival written or the refused fields)
            type Row<'a> = (&'a Appointment, Request, Result<Option<PainScore>, Vec<&'a str>>);
            #[rustfmt::skip]
            let table: [Row; 6] = [
                (&by_scheduler, complete(Some(6), None), Ok(Some(pain(6)))),
                (&by_scheduler, complete(Some(6), Some(14)), Ok(Some(pain(6)))),
                (&by_scheduler, complete(None, None), Err(vec!["pain_before"])),
                (&by_clinician, complete(None, None), Ok(None)),
                (&by_clinician, complete(Some(6), None), Err(vec!["pain_before"])),
                (&by_clinician, complete(Some(6), Some(14)), Err(vec!["pain_before", "phq9"])),
            ];
            for (current, request, expected) in table {
                let decided = decide(current, request.clone(), None, &clinic(at_start));
                match (decided, expected) {
                    (Ok(change), Ok(written)) => assert_eq!(change.pain_before, written),
                    (Err(Refusal::Invalid(errors)), Err(fields)) => assert_eq!(
                        errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
                        fields
                    ),
                    (other, _) => panic!("{request:?}: {other:?}"),
                }
            }
        }

        /// A scheduled appointment's actions at each moment, and the
        /// check-in's gate on each state of the patient's intake.
        #[test]
        fn the_rules_of_time_and_the_check_in_gate() {
            let scheduled = booked(AppointmentStatus::Scheduled);
            let start = thursday_morning();
            let second = chrono::Duration::seconds(1);
            let friday = start + chrono::Duration::days(1);
            let screened = |s| Some(pain_intake(s));
            let on = date(2026, 12, 1);
            // (request, now, intake, the refusal's code if refused)
            type Row = (Request, DateTime<Utc>, Option<IntakeRecord>, Option<&'static str>);
            #[rustfmt::skip]
            let table: [Row; 12] = [
                (cancel(), start - second, None, None),
                (cancel(), start, None, Some("invalid_transition")),
                (Request::NoShow, start - second, None, Some("invalid_transition")),
                (Request::NoShow, start, None, None),
                (check_in(), start - chrono::Duration::hours(2), screened(Screened::Eligible(on)), None),
                (check_in(), friday, screened(Screened::Eligible(on)), Some("invalid_transition")),
                (check_in(), wednesday_morning(), screened(Screened::Eligible(on)), Some("invalid_transition")),
                (check_in(), start, screened(Screened::Contraindicated(on)), Some("not_ready")),
                (check_in(), start, screened(Screened::OnLamotrigine(on)), Some("not_ready")),
                // Check-in asks no screening window: the course was admitted.
                (check_in(), start, screened(Screened::Eligible(date(2026, 10, 1))), None),
                // Never screened: no path leads to an infusion around intake.
                (check_in(), start, screened(Screened::Never), Some("not_ready")),
                (check_in(), start, None, Some("not_ready")),
            ];
            for (request, now, intake, refused) in table {
                let decided = decide(&scheduled, request.clone(), intake.as_ref(), &clinic(now));
                assert_eq!(decided.err().map(|r| r.code()), refused, "{request:?} at {now}");
            }
        }

        fn facts(screened: Option<Screened>, busy: bool) -> SlotFacts {
            SlotFacts {
                intake: screened.map(pain_intake),
                closures: [date(2026, 12, 24)].into(),
                patient_busy: busy,
            }
        }

        fn slot(y: i32, m: u32, d: u32, session: Session) -> SlotRequest {
            SlotRequest { date: date(y, m, d), session }
        }

        /// A single booking at 10:00 on Wednesday 2 December: each rule it
        /// passes through, in order.
        #[test]
        fn a_booking_is_decided_rule_by_rule() {
            use Session::*;
            let fresh = Some(Screened::Eligible(date(2026, 12, 1)));
            let stale = Some(Screened::Eligible(date(2026, 10, 1)));
            #[rustfmt::skip]
            let table = [
                (slot(2026, 12, 3, Morning), facts(fresh, false), None),
                (slot(2026, 12, 3, Morning), facts(None, false), Some("validation_failed")),
                (slot(2026, 12, 5, Morning), facts(fresh, false), Some("not_a_clinic_day")),
                (slot(2026, 12, 24, Morning), facts(fresh, false), Some("clinic_closed")),
                (slot(2026, 12, 2, Morning), facts(fresh, false), Some("in_the_past")),
                (slot(2027, 6, 30, Morning), facts(fresh, false), Some("outside_horizon")),
                (slot(2026, 12, 3, Morning), facts(stale, false), Some("not_ready")),
                (slot(2026, 12, 3, Morning), facts(fresh, true), Some("patient_already_booked_that_day")),
                (slot(2026, 12, 2, Afternoon), facts(fresh, false), None),
            ];
            let clinic = clinic(wednesday_morning());
            for (asked, facts, refused) in table {
                let decided = book("p-1", asked, Route::Iv, &facts, &clinic);
                assert_eq!(decided.as_ref().err().map(Refusal::code), refused, "{asked:?}");
                if let Ok(new) = decided {
                    let expected = clinic.calendar.starts_at(asked.date, asked.session);
                    assert_eq!(new.starts_at, expected.with_timezone(&Utc));
                    assert_eq!(
                        (new.date, new.session, new.course_id),
                        (asked.date, asked.session, None)
                    );
                }
            }
        }

        /// A move at 10:00 on Wednesday 2 December: the calendar's rules as
        /// for a booking, a stale screening no obstacle, a contraindication one.
        #[test]
        fn a_move_is_decided_as_a_booking_that_is_no_new_course() {
            use Session::*;
            let fresh = Some(Screened::Eligible(date(2026, 12, 1)));
            let stale = Some(Screened::Eligible(date(2026, 10, 1)));
            let found = Some(Screened::Contraindicated(date(2026, 12, 2)));
            let scheduled = booked(AppointmentStatus::Scheduled);
            #[rustfmt::skip]
            let table = [
                (&scheduled, slot(2026, 12, 4, Afternoon), facts(fresh, false), None),
                (&scheduled, slot(2026, 12, 4, Afternoon), facts(stale, false), None),
                (&scheduled, slot(2026, 12, 4, Afternoon), facts(found, false), Some("not_ready")),
                (&scheduled, slot(2026, 12, 4, Afternoon), facts(None, false), Some("not_ready")),
                (&scheduled, slot(2026, 12, 24, Morning), facts(fresh, false), Some("clinic_closed")),
                (&scheduled, slot(2026, 12, 4, Morning), facts(fresh, true), Some("patient_already_booked_that_day")),
            ];
            let clinic = clinic(wednesday_morning());
            for (current, asked, facts, refused) in table {
                let decided = reschedule(current, asked, &facts, &clinic);
                assert_eq!(decided.err().map(|r| r.code()), refused, "{asked:?}");
            }
            for status in [AppointmentStatus::Cancelled, AppointmentStatus::CheckedIn] {
                let moved = reschedule(
                    &booked(status),
                    slot(2026, 12, 4, Morning),
                    &facts(fresh, false),
                    &clinic,
                );
                assert_eq!(moved.err().map(|r| r.code()), Some("invalid_transition"));
            }
            let same =
                reschedule(&scheduled, slot(2026, 12, 3, Morning), &facts(fresh, false), &clinic);
            assert!(same.unwrap().keeps_room);
            let other =
                reschedule(&scheduled, slot(2026, 12, 3, Afternoon), &facts(fresh, false), &clinic);
            assert!(!other.unwrap().keeps_room);
        }
    }
}
