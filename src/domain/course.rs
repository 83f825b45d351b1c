//! Courses ("Protocols" and "Courses" in `docs/DOMAIN.md`): the decision on
//! planning and booking one, who may start which protocol, its status from
//! its appointments, cancelling what is left of it, and the response check
//! at the protocol's chosen infusion.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Role;
use super::appointment::{Appointment, AppointmentStatus};
use super::calendar::Session;
use super::patient::{IndicationCategory, PatientDetails};
use super::protocol::{self, Occupancy, PlanRequest, Protocol, Search, Shape, Slot};
use super::readiness::{gate, IntakeRecord, Purpose};
use super::values::{CalendarDate, Id};
use super::{Clinic, FieldError, Refusal};

/// A course to plan or book: the earliest series of the protocol that fits
/// from `earliest_start`. Its schema, written out below, states its shape
/// per kind of protocol; which kind a protocol is, is data
/// ([`protocol::shape`] decides).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseRequest {
    pub patient_id: Id,
    /// A protocol code, e.g. `pain-5-day`, `pain-8-10-day`, `mental-health`, `maintenance`.
    pub protocol: String,
    /// The session for every infusion (unless `allow_mixed_sessions`).
    pub session: Session,
    /// The first date the course may start on (clinic-local).
    pub earliest_start: CalendarDate,
    /// How many infusions, where the protocol offers a choice (8, 9 or 10 for `pain-8-10-day`).
    #[serde(default)]
    pub infusions: Option<u32>,
    /// Infusions a week (`mental-health`: 2 or 3).
    #[serde(default)]
    pub per_week: Option<u32>,
    /// Weeks (`mental-health`: 2 or 3).
    #[serde(default)]
    pub weeks: Option<u32>,
    /// Let a day take the other session when the requested one is full.
    #[serde(default)]
    pub allow_mixed_sessions: bool,
}

impl utoipa::PartialSchema for CourseRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use super::protocol::{MAX_INFUSIONS, MAX_PER_WEEK, MAX_WEEKS};
        use utoipa::openapi::schema::{
            AdditionalProperties, AllOfBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type,
        };
        use utoipa::openapi::Ref;
        let count = |max: u32, nullable: bool, description: &str| {
            let kind = if nullable {
                SchemaType::from_iter([Type::Integer, Type::Null])
            } else {
                SchemaType::from(Type::Integer)
            };
            ObjectBuilder::new()
                .schema_type(kind)
                .minimum(Some(1))
                .maximum(Some(max))
                .description(Some(description))
        };
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let fields = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("patient_id", Ref::from_schema_name("Id"))
            .property(
                "protocol",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[a-z0-9-]{1,64}$"))
                    .description(Some(
                        "A protocol code, e.g. `pain-5-day`, `pain-8-10-day`, `mental-health`, \
                         `maintenance`.",
                    )),
            )
            .property(
                "session",
                Ref::builder().ref_location_from_schema_name("Session").description(Some(
                    "The session for every infusion (unless `allow_mixed_sessions`).",
                )),
            )
            .property(
                "earliest_start",
                Ref::builder()
                    .ref_location_from_schema_name("CalendarDate")
                    .description(Some("The first date the course may start on (clinic-local).")),
            )
            .property(
                "infusions",
                count(
                    MAX_INFUSIONS,
                    true,
                    "Consecutive spacing only: how many infusions (8, 9 or 10 for \
                     `pain-8-10-day`); may be left out when the protocol's range is one number.",
                ),
            )
            .property(
                "per_week",
                count(
                    MAX_PER_WEEK,
                    true,
                    "Weekly spacing only: infusions a week (`mental-health`: 2 or 3).",
                ),
            )
            .property(
                "weeks",
                count(MAX_WEEKS, true, "Weekly spacing only: weeks (`mental-health`: 2 or 3)."),
            )
            .property(
                "allow_mixed_sessions",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .default(Some(false.into()))
                    .description(Some(
                        "Let a day take the other session when the requested one is full.",
                    )),
            )
            .required("patient_id")
            .required("protocol")
            .required("session")
            .required("earliest_start")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        // Which branch a request is in shows from `per_week`: a number in a
        // weekly request, absent or null in a consecutive one.
        let consecutive = ObjectBuilder::new()
            .title(Some("Consecutive clinic days"))
            .description(Some(
                "For a protocol whose spacing is `consecutive_clinic_days` (`pain-5-day`, \
                 `pain-8-10-day`, `maintenance`): `infusions` if any, no `per_week` or `weeks`.",
            ))
            .property("per_week", null())
            .property("weeks", null());
        let weekly = ObjectBuilder::new()
            .title(Some("Weekly"))
            .description(Some(
                "For a protocol whose spacing is `weekly` (`mental-health`): `per_week` \
                 infusions in each of `weeks` weeks, no `infusions`.",
            ))
            .property("infusions", null())
            .property("per_week", ObjectBuilder::new().schema_type(Type::Integer))
            .property("weeks", ObjectBuilder::new().schema_type(Type::Integer))
            .required("per_week")
            .required("weeks");
        AllOfBuilder::new()
            .examples([serde_json::json!({
                "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", "protocol": "pain-5-day",
                "session": "morning", "earliest_start": "2026-12-02"
            })])
            .item(fields)
            .item(OneOfBuilder::new().item(consecutive).item(weekly))
            .description(Some(
                "A course to plan or book: the earliest series of the protocol that fits from \
                 `earliest_start`. Its shape follows the protocol's spacing: `infusions` for \
                 consecutive clinic days, `per_week` and `weeks` for weekly spacing, never both \
                 kinds.",
            ))
            .into()
    }
}

impl ToSchema for CourseRequest {}

/// One of the patient's earlier courses, as eligibility reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PastCourse {
    pub id: String,
    pub cancelled: bool,
    /// Its infusions' statuses.
    pub infusions: Vec<AppointmentStatus>,
}

/// What planning or booking a course reads before it is decided.
#[derive(Clone, Debug, Default)]
pub struct CourseFacts {
    /// The protocol the request names; `None` when no protocol has that code.
    pub protocol: Option<Protocol>,
    /// The patient's intake record; `None` when there is no such patient.
    pub intake: Option<IntakeRecord>,
    pub history: Vec<PastCourse>,
    /// How full each session of [`window`] is, and the patient's own days.
    pub occupancy: Occupancy,
}

impl CourseFacts {
    /// The facts as `role` may see them: see [`IntakeRecord::seen_by`].
    pub fn seen_by(mut self, role: Role) -> Self {
        self.intake = self.intake.map(|i| i.seen_by(role));
        self
    }
}

/// How far from its first date a plan reads the clinic's occupancy first:
/// enough for any protocol's series (three weeks at most) starting in the
/// first week, with room for closures and full days. A plan that needs
/// later dates reads on to the horizon ([`full_window`]).
pub const FIRST_WINDOW_DAYS: u64 = 42;

/// The dates whose occupancy a plan reads first: from the earliest start
/// (or today) for [`FIRST_WINDOW_DAYS`], within the booking horizon;
/// `None` when the start is beyond the horizon. Most series fit there, and
/// reading the whole horizon cost a course booking more than its writes.
pub fn window(request: &CourseRequest, clinic: &Clinic) -> Option<(NaiveDate, NaiveDate)> {
    let (from, last) = full_window(request, clinic)?;
    Some((from, last.min(from + Days::new(FIRST_WINDOW_DAYS))))
}

/// From the earliest start (or today) to the end of the booking horizon;
/// `None` when the start is beyond the horizon.
pub fn full_window(request: &CourseRequest, clinic: &Clinic) -> Option<(NaiveDate, NaiveDate)> {
    let today = clinic.today();
    let last = clinic.calendar.horizon_end(today);
    let from = request.earliest_start.get().max(today);
    (from <= last).then_some((from, last))
}

/// A course decided: its protocol, its shape and the series to book.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub protocol: Protocol,
    pub shape: Shape,
    pub series: Vec<Slot>,
}

impl Plan {
    /// The date of the first infusion.
    pub fn start(&self) -> Option<NaiveDate> {
        self.series.first().map(|s| s.date)
    }
}

/// The decision on a course: the protocol and the shape asked of it, the
/// horizon, the patient and whether the protocol may be started
/// ([`eligibility`]), the booking gate, then the earliest series that fits.
/// `keep_start` is the start an earlier attempt planned, when that attempt
/// lost a room to a concurrent booking: a series that now starts elsewhere
/// is refused, naming the new start, rather than booked unasked. `None`:
/// the occupancy read stops short of a date the search needs; read it to
/// the horizon ([`full_window`]) and decide again.
pub fn plan(
    request: &CourseRequest,
    facts: &CourseFacts,
    clinic: &Clinic,
    keep_start: Option<NaiveDate>,
) -> Result<Option<Plan>, Refusal> {
    let protocol = facts
        .protocol
        .clone()
        .ok_or_else(|| FieldError::refusal("protocol", "no protocol has this code"))?;
    let shape = protocol::shape(&protocol, request.infusions, request.per_week, request.weeks)
        .map_err(Refusal::Invalid)?;
    let last = clinic.calendar.horizon_end(clinic.today());
    if request.earliest_start.get() > last {
        return Err(Refusal::OutsideHorizon { last });
    }
    let intake = facts
        .intake
        .as_ref()
        .ok_or_else(|| FieldError::refusal("patient_id", "no patient has this id"))?;
    eligibility(&protocol, &intake.patient, &facts.history)?;
    one_at_a_time(&facts.history)?;
    gate(intake, Purpose::Booking, clinic.today(), clinic.policy)?;
    let wanted = PlanRequest {
        session: request.session,
        allow_mixed_sessions: request.allow_mixed_sessions,
        earliest_start: request.earliest_start.get(),
        now: clinic.now,
    };
    let series = match protocol::search(shape, wanted, &clinic.calendar, &facts.occupancy) {
        Search::Found(series) => series,
        Search::NoneFits => return Err(Refusal::NoCapacityForSeries { next_start: None }),
        Search::NeedsLaterDates => return Ok(None),
    };
    let plan = Plan { protocol, shape, series };
    match keep_start {
        Some(kept) if plan.start() != Some(kept) => {
            Err(Refusal::NoCapacityForSeries { next_start: plan.start() })
        }
        _ => Ok(Some(plan)),
    }
}

/// [`plan`] on `facts`, whose occupancy covers [`window`]; when the search
/// needs later dates, the occupancy to the horizon ([`full_window`]) from
/// `read_on`, and [`plan`] again. The earliest series either way; most
/// bookings never read past the first weeks.
pub fn plan_reading<E: From<Refusal>>(
    request: &CourseRequest,
    mut facts: CourseFacts,
    clinic: &Clinic,
    keep_start: Option<NaiveDate>,
    read_on: impl FnOnce(NaiveDate, NaiveDate) -> Result<Occupancy, E>,
) -> Result<Plan, E> {
    if let Some(plan) = plan(request, &facts, clinic, keep_start)? {
        return Ok(plan);
    }
    if let Some((from, to)) = full_window(request, clinic) {
        facts.occupancy = read_on(from, to)?;
    }
    let replanned = plan(request, &facts, clinic, keep_start)?;
    // The whole horizon read, the search cannot need more.
    Ok(replanned.ok_or(Refusal::NoCapacityForSeries { next_start: None })?)
}

/// Whether the patient may start `protocol`: it treats one of the patient's
/// indications, and a protocol that follows a completed course (maintenance)
/// needs one whose [`status`] is `completed`.
pub fn eligibility(
    protocol: &Protocol,
    patient: &PatientDetails,
    history: &[PastCourse],
) -> Result<(), Refusal> {
    if !protocol.categories.iter().any(|c| patient.has_category(*c)) {
        return Err(FieldError::refusal(
            "protocol",
            format!("{} does not treat any of the patient's indications", protocol.code),
        ));
    }
    let completed =
        history.iter().any(|c| status(c.cancelled, &c.infusions) == CourseStatus::Completed);
    if protocol.requires_completed_course && !completed {
        return Err(FieldError::refusal(
            "protocol",
            format!("{} follows a completed course; the patient has none", protocol.code),
        ));
    }
    Ok(())
}

/// A patient holds one course at a time: none may be booked while another
/// is scheduled or in progress.
pub fn one_at_a_time(history: &[PastCourse]) -> Result<(), Refusal> {
    match history.iter().find(|c| {
        matches!(
            status(c.cancelled, &c.infusions),
            CourseStatus::Scheduled | CourseStatus::InProgress
        )
    }) {
        Some(active) => Err(Refusal::CourseAlreadyActive { course_id: active.id.clone() }),
        None => Ok(()),
    }
}

/// A course as stored, with its infusions in date order. Its instants are
/// shown in the clinic's offset by the API, so they are not serialized here.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Course {
    pub id: String,
    pub patient_id: String,
    /// The protocol's code.
    pub protocol: String,
    pub session: Session,
    pub allow_mixed_sessions: bool,
    pub infusions: u32,
    pub per_week: Option<u32>,
    pub weeks: Option<u32>,
    pub earliest_start: NaiveDate,
    pub cancel_reason: Option<String>,
    /// `role:subject` of whoever cancelled.
    pub cancelled_by: Option<String>,
    /// `role:subject` of whoever booked it.
    pub created_by: String,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub appointments: Vec<Appointment>,
}

impl Course {
    pub fn status(&self) -> CourseStatus {
        let infusions: Vec<AppointmentStatus> =
            self.appointments.iter().map(|a| a.status).collect();
        status(self.cancel_reason.is_some(), &infusions)
    }
}

/// Where a course stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CourseStatus {
    /// No infusion has happened yet.
    Scheduled,
    /// Some infusions happened; some are still ahead.
    InProgress,
    /// Nothing is left to happen, and at least one infusion was given. Only
    /// a completed course lets a patient start `maintenance`.
    Completed,
    /// Nothing is left to happen, and no infusion was given: every one was
    /// a no-show (or cancelled on its own).
    Missed,
    /// Cancelled: what was left of it was cancelled.
    Cancelled,
}

/// The status of a course from its infusions' statuses (and whether it was
/// cancelled as a whole).
pub fn status(cancelled: bool, infusions: &[AppointmentStatus]) -> CourseStatus {
    use AppointmentStatus::*;
    let live: Vec<AppointmentStatus> =
        infusions.iter().copied().filter(|s| *s != Cancelled).collect();
    if cancelled || live.is_empty() {
        CourseStatus::Cancelled
    } else if live.iter().all(|s| matches!(s, Completed | NoShow)) {
        if live.contains(&Completed) {
            CourseStatus::Completed
        } else {
            CourseStatus::Missed
        }
    } else if live.iter().any(|s| matches!(s, CheckedIn | Completed | NoShow)) {
        CourseStatus::InProgress
    } else {
        CourseStatus::Scheduled
    }
}

/// What cancelling what is left of a course cancels: every scheduled
/// infusion whose session has not begun. `invalid_transition` when the
/// course was cancelled already or nothing is left.
pub fn cancellation(course: &Course, now: DateTime<Utc>) -> Result<Vec<String>, Refusal> {
    let left: Vec<String> = course
        .appointments
        .iter()
        .filter(|a| a.status == AppointmentStatus::Scheduled && a.starts_at > now)
        .map(|a| a.id.clone())
        .collect();
    if course.cancel_reason.is_some() || left.is_empty() {
        return Err(Refusal::InvalidTransition {
            from: "course",
            action: "cancel",
            why: Some("nothing is left of this course to cancel".into()),
        });
    }
    Ok(left)
}

/// What the response check measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMeasure {
    /// Pain on arrival, 0 to 10.
    PainBefore,
    /// PHQ-9 at check-in, 0 to 27.
    Phq9,
}

/// The response at the protocol's check infusion, against the first.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"measure": "pain_before", "infusion": 4, "baseline": 8, "latest": 7, "change": -1, "improvement": 0.125}))]
pub struct ResponseCheck {
    pub measure: ResponseMeasure,
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
) -> (Option<ResponseCheck>, bool) {
    let Some(n) = protocol.response_check_infusion else {
        return (None, false);
    };
    let measure = match protocol.categories.as_slice() {
        [IndicationCategory::Pain] => ResponseMeasure::PainBefore,
        [IndicationCategory::MentalHealth] => ResponseMeasure::Phq9,
        _ => return (None, false),
    };
    let mut given: Vec<&Appointment> = appointments
        .iter()
        .filter(|a| matches!(a.status, AppointmentStatus::CheckedIn | AppointmentStatus::Completed))
        .collect();
    given.sort_by_key(|a| (a.date, a.starts_at));
    let score = |a: &Appointment| match measure {
        ResponseMeasure::PainBefore => a.pain_before.map(|p| p.value()),
        ResponseMeasure::Phq9 => a.phq9.map(|p| p.value()),
    };
    let (Some(first), Some(check)) = (given.first(), given.get(n as usize - 1)) else {
        return (None, false);
    };
    let (Some(baseline), Some(latest)) = (score(first), score(check)) else {
        return (None, false);
    };
    let improvement =
        if baseline > 0 { f64::from(baseline - latest) / f64::from(baseline) } else { 0.0 };
    let needs_review = baseline > 0 && improvement < required_improvement;
    (
        Some(ResponseCheck {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{
        appointment, clinic, date, maintenance, mental_health, pain_5_day, pain_intake,
        wednesday_morning, Screened,
    };
    use AppointmentStatus::*;

    /// A course's status from its infusions: "completed" needs an infusion
    /// given; one that only missed its infusions is `missed`.
    #[test]
    fn the_status_of_a_course() {
        use CourseStatus as S;
        #[rustfmt::skip]
        let table: [(bool, &[AppointmentStatus], CourseStatus); 12] = [
            (false, &[Scheduled, Scheduled], S::Scheduled),
            (false, &[CheckedIn, Scheduled], S::InProgress),
            (false, &[Completed, Scheduled], S::InProgress),
            (false, &[NoShow, Scheduled], S::InProgress),
            (false, &[Completed, Completed], S::Completed),
            (false, &[Completed, NoShow], S::Completed),
            (false, &[NoShow, Completed, Cancelled], S::Completed),
            (false, &[NoShow, NoShow], S::Missed),
            (false, &[NoShow, Cancelled], S::Missed),
            (false, &[Cancelled, Cancelled], S::Cancelled),
            (true, &[Completed, Cancelled], S::Cancelled),
            (false, &[], S::Cancelled),
        ];
        for (cancelled, infusions, expected) in table {
            assert_eq!(status(cancelled, infusions), expected, "{infusions:?}");
        }
    }

    /// Who may start which protocol: it treats one of the patient's
    /// indications, and maintenance follows a completed course only.
    #[test]
    fn who_may_start_which_protocol() {
        let patient = pain_intake(Screened::Never).patient;
        let past = |cancelled: bool, infusions: &[AppointmentStatus]| PastCourse {
            id: "past".into(),
            cancelled,
            infusions: infusions.to_vec(),
        };
        #[rustfmt::skip]
        let table: [(Protocol, Vec<PastCourse>, bool); 7] = [
            (pain_5_day(), vec![], true),
            (mental_health(), vec![], false),
            (maintenance(), vec![], false),
            (maintenance(), vec![past(false, &[Completed, NoShow])], true),
            (maintenance(), vec![past(false, &[NoShow, NoShow])], false),
            (maintenance(), vec![past(true, &[Completed, Cancelled])], false),
            (maintenance(), vec![past(false, &[Completed, Scheduled])], false),
        ];
        for (protocol, history, allowed) in table {
            let decided = eligibility(&protocol, &patient, &history);
            assert_eq!(decided.is_ok(), allowed, "{} {history:?}", protocol.code);
            if let Err(refusal) = decided {
                assert_eq!(refusal.code(), "validation_failed");
            }
        }
    }

    /// One course at a time: a scheduled or in-progress one stops another,
    /// and is named; any that is over does not.
    #[test]
    fn one_course_at_a_time() {
        let past = |id: &str, cancelled: bool, infusions: &[AppointmentStatus]| PastCourse {
            id: id.into(),
            cancelled,
            infusions: infusions.to_vec(),
        };
        #[rustfmt::skip]
        let table: [(Vec<PastCourse>, Option<&str>); 7] = [
            (vec![], None),
            (vec![past("a", false, &[Scheduled, Scheduled])], Some("a")),
            (vec![past("a", false, &[Completed, Scheduled])], Some("a")),
            (vec![past("a", false, &[CheckedIn, Scheduled])], Some("a")),
            (vec![past("a", false, &[Completed, NoShow]), past("b", false, &[NoShow])], None),
            (vec![past("a", true, &[Completed, Cancelled]), past("b", false, &[Cancelled])], None),
            (vec![past("a", false, &[Completed]), past("b", false, &[Scheduled])], Some("b")),
        ];
        for (history, active) in table {
            let decided = one_at_a_time(&history);
            match (decided, active) {
                (Ok(()), None) => {}
                (Err(Refusal::CourseAlreadyActive { course_id }), Some(id)) => {
                    assert_eq!(course_id, id)
                }
                (other, _) => panic!("{history:?}: {other:?}"),
            }
        }
    }

    fn request(protocol: &str, earliest_start: NaiveDate) -> CourseRequest {
        serde_json::from_value(serde_json::json!({
            "patient_id": "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", "protocol": protocol,
            "session": "morning", "earliest_start": earliest_start,
        }))
        .unwrap()
    }

    fn facts(protocol: Option<Protocol>, screened: Option<Screened>) -> CourseFacts {
        CourseFacts {
            protocol,
            intake: screened.map(pain_intake),
            history: vec![],
            occupancy: Occupancy { capacity: 4, ..Occupancy::default() },
        }
    }

    /// Planning a course at 10:00 on Wednesday 2 December: each rule in the
    /// order it is asked, and the start an earlier attempt kept.
    #[test]
    fn a_course_is_decided_rule_by_rule() {
        let fresh = Some(Screened::Eligible(date(2026, 12, 1)));
        let stale = Some(Screened::Eligible(date(2026, 10, 1)));
        let wed = date(2026, 12, 2);
        let mut full = facts(Some(pain_5_day()), fresh);
        full.occupancy.capacity = 0;
        #[rustfmt::skip]
        let table = [
            (request("pain-5-day", wed), facts(Some(pain_5_day()), fresh), None, None),
            (request("pain-99", wed), facts(None, fresh), None, Some("validation_failed")),
            (request("pain-5-day", date(2027, 9, 1)), facts(Some(pain_5_day()), fresh), None, Some("outside_horizon")),
            (request("pain-5-day", wed), facts(Some(pain_5_day()), None), None, Some("validation_failed")),
            (request("mental-health", wed), facts(Some(mental_health()), fresh), None, Some("validation_failed")),
            (request("maintenance", wed), facts(Some(maintenance()), fresh), None, Some("validation_failed")),
            (request("pain-5-day", wed), facts(Some(pain_5_day()), stale), None, Some("not_ready")),
            (request("pain-5-day", wed), full, None, Some("no_capacity_for_series")),
            (request("pain-5-day", wed), facts(Some(pain_5_day()), fresh), Some(date(2026, 12, 7)), None),
            (request("pain-5-day", wed), facts(Some(pain_5_day()), fresh), Some(wed), Some("no_capacity_for_series")),
        ];
        let clinic = clinic(wednesday_morning());
        for (asked, facts, kept, refused) in table {
            let decided =
                plan(&asked, &facts, &clinic, kept).map(|p| p.expect("the whole horizon was read"));
            assert_eq!(decided.as_ref().err().map(Refusal::code), refused, "{asked:?} {kept:?}");
            if let Err(Refusal::NoCapacityForSeries { next_start }) = decided {
                // A start that moved is named; no series at all names none.
                assert_eq!(next_start, kept.map(|_| date(2026, 12, 7)));
            } else if let Ok(plan) = decided {
                assert_eq!(plan.start(), Some(date(2026, 12, 7)));
                assert_eq!(plan.series.len(), 5);
            }
        }
        // The first read: six weeks from today (or the start), within the
        // horizon; the whole of it when a search needs more.
        let asked = request("pain-5-day", date(2026, 11, 1));
        assert_eq!(window(&asked, &clinic), Some((wed, date(2027, 1, 13))));
        assert_eq!(full_window(&asked, &clinic), Some((wed, date(2027, 6, 2))));
        let late = request("pain-5-day", date(2027, 5, 31));
        assert_eq!(window(&late, &clinic), Some((date(2027, 5, 31), date(2027, 6, 2))));
        assert_eq!(window(&request("pain-5-day", date(2027, 6, 3)), &clinic), None);
    }

    /// Cancelling what is left of a course cancels its scheduled infusions
    /// that have not begun; with nothing left it is refused.
    #[test]
    fn what_cancelling_a_course_cancels() {
        let now = wednesday_morning();
        let infusion = |id: &str, status: AppointmentStatus, hours: i64| Appointment {
            status,
            course_id: Some("c".into()),
            ..appointment(id, date(2026, 12, 2), now + chrono::Duration::hours(hours))
        };
        let course = |cancel_reason: Option<&str>, appointments| Course {
            id: "c".into(),
            patient_id: "p".into(),
            protocol: "pain-5-day".into(),
            session: Session::Morning,
            allow_mixed_sessions: false,
            infusions: 3,
            per_week: None,
            weeks: None,
            earliest_start: date(2026, 12, 2),
            cancel_reason: cancel_reason.map(str::to_owned),
            cancelled_by: None,
            created_by: "s".into(),
            created_at: now,
            appointments,
        };
        let mixed = vec![
            infusion("done", Completed, -48),
            infusion("begun", Scheduled, -1),
            infusion("ahead", Scheduled, 24),
            infusion("later", Scheduled, 48),
        ];
        assert_eq!(
            cancellation(&course(None, mixed.clone()), now),
            Ok(vec!["ahead".to_owned(), "later".to_owned()])
        );
        let over = vec![infusion("done", Completed, -48), infusion("begun", Scheduled, -1)];
        for refused in [course(None, over), course(Some("moved away"), mixed)] {
            assert_eq!(
                cancellation(&refused, now).map_err(|r| r.code()),
                Err("invalid_transition")
            );
        }
    }
}
