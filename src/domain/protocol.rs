//! Protocols and the series planner ("Protocols" in `docs/DOMAIN.md`): given a
//! protocol, a course's parameters, the calendar and how full each session
//! is, find the earliest series of infusions that satisfies every rule.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::{Calendar, Closures, Session};
use super::patient::IndicationCategory;
use super::values::Text;
use super::{valid, FieldError, Refusal};

/// How a protocol spaces its infusions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ProtocolSpacing)]
pub enum Spacing {
    /// One infusion each clinic day; weekends and closures are skipped and
    /// do not break the series.
    ConsecutiveClinicDays,
    /// `per_week` infusions in each of `weeks` consecutive calendar weeks
    /// (Monday to Sunday), at least `min_gap_days` free days between two.
    Weekly,
}

impl Spacing {
    pub fn as_str(self) -> &'static str {
        match self {
            Spacing::ConsecutiveClinicDays => "consecutive_clinic_days",
            Spacing::Weekly => "weekly",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Spacing::ConsecutiveClinicDays, Spacing::Weekly].into_iter().find(|s| s.as_str() == text)
    }
}

/// A day of the week, as protocols name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Weekday)]
pub enum Day {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Day {
    const ALL: [Day; 7] = [
        Day::Monday,
        Day::Tuesday,
        Day::Wednesday,
        Day::Thursday,
        Day::Friday,
        Day::Saturday,
        Day::Sunday,
    ];

    pub fn weekday(self) -> Weekday {
        match self {
            Day::Monday => Weekday::Mon,
            Day::Tuesday => Weekday::Tue,
            Day::Wednesday => Weekday::Wed,
            Day::Thursday => Weekday::Thu,
            Day::Friday => Weekday::Fri,
            Day::Saturday => Weekday::Sat,
            Day::Sunday => Weekday::Sun,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Day::Monday => "monday",
            Day::Tuesday => "tuesday",
            Day::Wednesday => "wednesday",
            Day::Thursday => "thursday",
            Day::Friday => "friday",
            Day::Saturday => "saturday",
            Day::Sunday => "sunday",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// An inclusive range of whole numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CountRange)]
pub struct Range {
    pub min: u32,
    pub max: u32,
}

impl Range {
    pub fn contains(self, n: u32) -> bool {
        (self.min..=self.max).contains(&n)
    }
}

/// A protocol's name: at most 200 characters.
pub type ProtocolName = Text<200>;

/// A protocol: the rules a course of infusions follows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// e.g. `pain-5-day`.
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    pub code: String,
    pub name: ProtocolName,
    /// The indication categories it treats.
    pub categories: Vec<IndicationCategory>,
    pub spacing: Spacing,
    /// How many infusions a course has (for weekly spacing: per week × weeks).
    pub infusions: Range,
    /// Weekly spacing only.
    pub per_week: Option<Range>,
    /// Weekly spacing only.
    pub weeks: Option<Range>,
    /// Free calendar days required between two infusions (weekly spacing).
    pub min_gap_days: u32,
    /// The weekday a course must start on, if any (consecutive spacing).
    pub preferred_start_weekday: Option<Day>,
    /// The infusion at which the response is checked, if any.
    pub response_check_infusion: Option<u32>,
    /// Only for a patient who has completed a course.
    pub requires_completed_course: bool,
}

impl Protocol {
    /// Every reason this protocol could never be planned, by field, as far
    /// as the protocol alone tells; [`plannable_on`] checks it against a
    /// clinic's calendar.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut err = |field: &str, message: &str| errors.push(FieldError::new(field, message));
        if self.categories.is_empty() {
            err("categories", "at least one indication category is required");
        }
        let mut seen = Vec::new();
        if self.categories.iter().any(|c| {
            let dup = seen.contains(c);
            seen.push(*c);
            dup
        }) {
            err("categories", "each category once");
        }
        let Range { min, max } = self.infusions;
        if min == 0 || min > max || max > MAX_INFUSIONS {
            err("infusions", "needs 1 <= min <= max <= 60");
        }
        match self.spacing {
            Spacing::ConsecutiveClinicDays => {
                if self.per_week.is_some() || self.weeks.is_some() {
                    err("per_week", "applies only to weekly spacing");
                }
                if self.min_gap_days != 0 {
                    err("min_gap_days", "applies only to weekly spacing");
                }
            }
            Spacing::Weekly => match (self.per_week, self.weeks) {
                (Some(per_week), Some(weeks)) => {
                    let bounded = per_week.min >= 1
                        && per_week.min <= per_week.max
                        && per_week.max <= MAX_PER_WEEK
                        && weeks.min >= 1
                        && weeks.min <= weeks.max
                        && weeks.max <= MAX_WEEKS
                        && self.min_gap_days <= MAX_GAP_DAYS;
                    if !bounded {
                        err("per_week", "needs 1 <= min <= max <= 7, weeks 1 <= min <= max <= 12, and min_gap_days <= 6");
                    } else {
                        // per_week infusions with the gap between them must fit in 7 days.
                        if (per_week.max - 1) * (self.min_gap_days + 1) >= 7 {
                            err("per_week.max", "cannot fit in one week with the minimum gap");
                        }
                        if per_week.min * weeks.min < min || per_week.max * weeks.max > max {
                            err("infusions", "must cover per_week × weeks");
                        }
                    }
                }
                _ => err("per_week", "weekly spacing needs per_week and weeks"),
            },
        }
        if self.preferred_start_weekday.is_some() && self.spacing == Spacing::Weekly {
            err("preferred_start_weekday", "applies only to consecutive spacing");
        }
        if let Some(n) = self.response_check_infusion {
            if n == 0 || n > max {
                err("response_check_infusion", "must be one of the course's infusions");
            }
        }
        errors
    }
}

/// A protocol's parameters as an admin sends them for the code the path
/// names (`PUT /v1/protocols/{code}`): a [`Protocol`] without its code. Its
/// schema, written out below, states which fields go with which spacing.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolParameters {
    pub name: ProtocolName,
    pub categories: Vec<IndicationCategory>,
    pub spacing: Spacing,
    pub infusions: Range,
    pub per_week: Option<Range>,
    pub weeks: Option<Range>,
    pub min_gap_days: u32,
    pub preferred_start_weekday: Option<Day>,
    pub response_check_infusion: Option<u32>,
    pub requires_completed_course: bool,
}

impl ProtocolParameters {
    /// The protocol these parameters make under `code`.
    pub fn named(self, code: &str) -> Protocol {
        Protocol {
            code: code.to_owned(),
            name: self.name,
            categories: self.categories,
            spacing: self.spacing,
            infusions: self.infusions,
            per_week: self.per_week,
            weeks: self.weeks,
            min_gap_days: self.min_gap_days,
            preferred_start_weekday: self.preferred_start_weekday,
            response_check_infusion: self.response_check_infusion,
            requires_completed_course: self.requires_completed_course,
        }
    }
}

/// The most infusions a course may have, per week, and weeks, whatever the
/// protocol ([`Protocol::check`]).
pub const MAX_INFUSIONS: u32 = 60;
pub const MAX_PER_WEEK: u32 = 7;
pub const MAX_WEEKS: u32 = 12;
pub const MAX_GAP_DAYS: u32 = 6;

impl utoipa::PartialSchema for ProtocolParameters {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type,
        };
        use utoipa::openapi::Ref;
        let integer = |min: u32, max: u32| {
            ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(min)).maximum(Some(max))
        };
        let closed = || Some(AdditionalProperties::FreeForm(false));
        // Ranges within the bounds every protocol keeps; `min <= max` relates
        // two numbers, which JSON Schema cannot state.
        let range = |max: u32, description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("min", integer(1, max))
                .property("max", integer(1, max))
                .required("min")
                .required("max")
                .additional_properties(closed())
                .description(Some(format!("{description}: 1 <= min <= max <= {max}.")))
        };
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let spacing = |value: &str| {
            ObjectBuilder::new().schema_type(Type::String).enum_values(Some([value.to_owned()]))
        };
        let branch = |spacing_value: Spacing, title: &str| {
            ObjectBuilder::new()
                .title(Some(title))
                .schema_type(Type::Object)
                .property("name", Ref::from_schema_name("Text200"))
                .property(
                    "categories",
                    ArrayBuilder::new()
                        .items(Ref::from_schema_name("IndicationCategory"))
                        .min_items(Some(1))
                        .unique_items(true)
                        .description(Some("The indication categories it treats, each once.")),
                )
                .property("spacing", spacing(spacing_value.as_str()))
                .property("infusions", range(MAX_INFUSIONS, "How many infusions a course has"))
                .property(
                    "response_check_infusion",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
                        .minimum(Some(1))
                        .maximum(Some(MAX_INFUSIONS))
                        .description(Some(
                            "The infusion at which the response is checked, if any: one of the \
                             course's (at most `infusions.max`).",
                        )),
                )
                .property(
                    "requires_completed_course",
                    ObjectBuilder::new()
                        .schema_type(Type::Boolean)
                        .description(Some("Only for a patient who has completed a course.")),
                )
                .required("name")
                .required("categories")
                .required("spacing")
                .required("infusions")
                .required("min_gap_days")
                .required("requires_completed_course")
                .additional_properties(closed())
        };
        let consecutive = branch(Spacing::ConsecutiveClinicDays, "Consecutive clinic days")
            .property("per_week", null())
            .property("weeks", null())
            .property(
                "min_gap_days",
                integer(0, 0).description(Some("No gap: one infusion each clinic day.")),
            )
            .property(
                "preferred_start_weekday",
                OneOfBuilder::new()
                    .item(Ref::from_schema_name("Weekday"))
                    .item(null())
                    .description(Some("The weekday a course must start on, if any.")),
            );
        let weekly = branch(Spacing::Weekly, "Weekly")
            .property("per_week", range(MAX_PER_WEEK, "Infusions a week"))
            .property("weeks", range(MAX_WEEKS, "Weeks"))
            .property(
                "min_gap_days",
                integer(0, MAX_GAP_DAYS)
                    .description(Some("Free calendar days required between two infusions.")),
            )
            .property("preferred_start_weekday", null())
            .required("per_week")
            .required("weeks");
        OneOfBuilder::new()
            .item(consecutive)
            .item(weekly)
            .description(Some(
                "A protocol's parameters, for the code the path names. `spacing` decides which \
                 fields apply: consecutive clinic days take `preferred_start_weekday` and no \
                 `per_week`, `weeks` or gap; weekly spacing takes `per_week`, `weeks` and \
                 `min_gap_days`. Every range has `min <= max`, `per_week × weeks` stays within \
                 `infusions`, and the protocol must be plannable on the clinic's calendar.",
            ))
            .into()
    }
}

impl ToSchema for ProtocolParameters {
    fn name() -> std::borrow::Cow<'static, str> {
        "ProtocolChange".into()
    }

    fn schemas(
        schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
    ) {
        use utoipa::PartialSchema;
        for (name, schema) in [
            (ProtocolName::name(), ProtocolName::schema()),
            (IndicationCategory::name(), IndicationCategory::schema()),
            (Day::name(), Day::schema()),
        ] {
            schemas.push((name.into(), schema));
        }
    }
}

/// The decision on the parameters an admin sends for the protocol `code`:
/// [`Protocol::check`] finds nothing impossible, and every shape can be
/// planned on the clinic's calendar ([`plannable_on`]).
pub fn revise(
    code: &str,
    parameters: ProtocolParameters,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Result<Protocol, Refusal> {
    let protocol = parameters.named(code);
    valid(protocol.check())?;
    valid(plannable_on(&protocol, calendar, now))?;
    Ok(protocol)
}

/// Whether every course shape the protocol allows can be planned on
/// `calendar` in an empty clinic, starting from `today`: a protocol whose
/// preferred weekday is not a clinic day, or whose weekly rhythm does not
/// fit the clinic's days, could never be booked. Call after [`Protocol::check`].
pub fn plannable_on(
    protocol: &Protocol,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Vec<FieldError> {
    let shapes: Vec<Shape> = match protocol.spacing {
        Spacing::ConsecutiveClinicDays => [protocol.infusions.min, protocol.infusions.max]
            .into_iter()
            .map(|count| Shape::Consecutive {
                count,
                start_on: protocol.preferred_start_weekday.map(Day::weekday),
            })
            .collect(),
        Spacing::Weekly => match (protocol.per_week, protocol.weeks) {
            (Some(p), Some(w)) => [(p.max, w.max), (p.min, w.min)]
                .into_iter()
                .map(|(per_week, weeks)| Shape::Weekly {
                    per_week,
                    weeks,
                    min_gap_days: protocol.min_gap_days,
                })
                .collect(),
            _ => Vec::new(),
        },
    };
    let empty = Occupancy { capacity: 1, ..Occupancy::default() };
    let request = PlanRequest {
        session: Session::Afternoon,
        allow_mixed_sessions: true,
        earliest_start: calendar.local_date(now),
        now,
    };
    match shapes.into_iter().find(|s| plan(*s, request, calendar, &empty).is_none()) {
        None => Vec::new(),
        Some(shape) => vec![FieldError::new(
            "protocol",
            format!(
                "a course of {} infusions could never be planned on this clinic's days within the booking horizon",
                shape.infusions()
            ),
        )],
    }
}

/// A course's own parameters, checked against its protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Consecutive { count: u32, start_on: Option<Weekday> },
    Weekly { per_week: u32, weeks: u32, min_gap_days: u32 },
}

impl Shape {
    pub fn infusions(self) -> u32 {
        match self {
            Shape::Consecutive { count, .. } => count,
            Shape::Weekly { per_week, weeks, .. } => per_week * weeks,
        }
    }
}

/// Resolves `infusions`, `per_week` and `weeks` for `protocol`; each bad or
/// missing value is named.
pub fn shape(
    protocol: &Protocol,
    infusions: Option<u32>,
    per_week: Option<u32>,
    weeks: Option<u32>,
) -> Result<Shape, Vec<FieldError>> {
    let mut errors = Vec::new();
    let shape = match protocol.spacing {
        Spacing::ConsecutiveClinicDays => {
            for (field, given) in [("per_week", per_week), ("weeks", weeks)] {
                if given.is_some() {
                    errors.push(FieldError::new(
                        field,
                        format!("does not apply to {}", protocol.code),
                    ));
                }
            }
            let range = protocol.infusions;
            let count = match infusions {
                Some(n) if range.contains(n) => n,
                None if range.min == range.max => range.min,
                Some(_) | None => {
                    errors.push(FieldError::new(
                        "infusions",
                        format!("{} takes {} to {} infusions", protocol.code, range.min, range.max),
                    ));
                    range.min
                }
            };
            Shape::Consecutive {
                count,
                start_on: protocol.preferred_start_weekday.map(Day::weekday),
            }
        }
        Spacing::Weekly => {
            let (pw_range, weeks_range) = match (protocol.per_week, protocol.weeks) {
                (Some(p), Some(w)) => (p, w),
                _ => return Err(vec![FieldError::new("protocol", "is not plannable")]),
            };
            let mut pick = |field: &str, given: Option<u32>, range: Range| match given {
                Some(n) if range.contains(n) => n,
                _ => {
                    errors.push(FieldError::new(
                        field,
                        format!("{} takes {} to {}", protocol.code, range.min, range.max),
                    ));
                    range.min
                }
            };
            let per_week = pick("per_week", per_week, pw_range);
            let weeks = pick("weeks", weeks, weeks_range);
            if infusions.is_some() {
                errors.push(FieldError::new(
                    "infusions",
                    format!("does not apply to {}: it has per_week × weeks", protocol.code),
                ));
            }
            Shape::Weekly { per_week, weeks, min_gap_days: protocol.min_gap_days }
        }
    };
    if errors.is_empty() {
        Ok(shape)
    } else {
        Err(errors)
    }
}

/// How full each session is, for the horizon, plus the patient's own days.
#[derive(Clone, Debug, Default)]
pub struct Occupancy {
    /// Active rooms: every session's capacity.
    pub capacity: i64,
    /// Active appointments per (date, session).
    pub booked: BTreeMap<(NaiveDate, Session), i64>,
    pub closures: Closures,
    /// Days on which the patient already has an active appointment.
    pub patient_days: BTreeSet<NaiveDate>,
    /// The last date read, when it may stop short of the horizon (`None`:
    /// the whole horizon): a search that needs a later date says so
    /// ([`Search::NeedsLaterDates`]) instead of taking it for full.
    pub known_until: Option<NaiveDate>,
}

impl Occupancy {
    fn free(&self, date: NaiveDate, session: Session) -> bool {
        self.booked.get(&(date, session)).copied().unwrap_or(0) < self.capacity
    }
}

/// One infusion of a planned series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub date: NaiveDate,
    pub session: Session,
    pub starts_at: DateTime<Utc>,
}

/// What the planner needs besides the shape.
#[derive(Clone, Copy, Debug)]
pub struct PlanRequest {
    pub session: Session,
    pub allow_mixed_sessions: bool,
    pub earliest_start: NaiveDate,
    pub now: DateTime<Utc>,
}

/// What [`search`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Search {
    /// The earliest series that fits.
    Found(Vec<Slot>),
    /// None starts within the horizon.
    NoneFits,
    /// The occupancy stops ([`Occupancy::known_until`]) before a date the
    /// search needs: read on to the horizon and search again.
    NeedsLaterDates,
}

/// The earliest series that fits, or `None` if none starts within the
/// horizon, on an occupancy read to the horizon.
pub fn plan(
    shape: Shape,
    request: PlanRequest,
    calendar: &Calendar,
    occupancy: &Occupancy,
) -> Option<Vec<Slot>> {
    match search(shape, request, calendar, occupancy) {
        Search::Found(series) => Some(series),
        Search::NoneFits | Search::NeedsLaterDates => None,
    }
}

/// The earliest series that fits. Work grows with the days searched, not
/// with bookings: the occupancy is a map the store reads once. On an
/// occupancy read short of the horizon, the answer is the one the whole
/// horizon gives, or [`Search::NeedsLaterDates`]: the starts are tried in
/// order, and the first whose series needs a date beyond what was read
/// stops the search, as a later start's success would not make it the
/// earliest.
pub fn search(
    shape: Shape,
    request: PlanRequest,
    calendar: &Calendar,
    occupancy: &Occupancy,
) -> Search {
    let today = calendar.local_date(request.now);
    let first = request.earliest_start.max(today);
    let horizon = calendar.horizon_end(today);
    let last = occupancy.known_until.map_or(horizon, |known| known.min(horizon));
    // Whether the search needed a date after `last` but within the horizon.
    let short = last < horizon;
    let beyond = std::cell::Cell::new(false);
    let sessions = match (request.allow_mixed_sessions, request.session) {
        (false, s) => [Some(s), None],
        (true, Session::Morning) => [Some(Session::Morning), Some(Session::Afternoon)],
        (true, Session::Afternoon) => [Some(Session::Afternoon), Some(Session::Morning)],
    };
    // A usable day: open, within the horizon, the patient free, and a
    // session (the requested one, or either when mixing) with a free room
    // that has not begun.
    let pick = |date: NaiveDate| -> Option<Slot> {
        if date > last {
            beyond.set(short);
            return None;
        }
        if date < first
            || !calendar.is_open(date, &occupancy.closures)
            || occupancy.patient_days.contains(&date)
        {
            return None;
        }
        sessions.iter().flatten().find_map(|&session| {
            let starts_at = calendar.starts_at(date, session).with_timezone(&Utc);
            (starts_at > request.now && occupancy.free(date, session)).then_some(Slot {
                date,
                session,
                starts_at,
            })
        })
    };
    let next = |d: NaiveDate| d.checked_add_days(Days::new(1));
    // After a start is tried: its series when whole; a stop when it needed
    // a date not read; else on to the next start.
    let verdict = |series: Vec<Slot>, whole: bool| match (whole, beyond.get()) {
        (true, _) => Some(Search::Found(series)),
        (false, true) => Some(Search::NeedsLaterDates),
        (false, false) => None,
    };
    // Every start up to `last` tried.
    let exhausted = if short { Search::NeedsLaterDates } else { Search::NoneFits };
    match shape {
        Shape::Consecutive { count, start_on } => {
            let mut start = Some(first);
            while let Some(s) = start.filter(|s| *s <= last) {
                start = next(s);
                if start_on.is_some_and(|w| s.weekday() != w) || pick(s).is_none() {
                    continue;
                }
                let mut series = Vec::new();
                let mut day = Some(s);
                while let Some(d) = day.filter(|_| series.len() < count as usize) {
                    day = next(d);
                    if d > last {
                        beyond.set(short);
                        break;
                    }
                    if !calendar.is_open(d, &occupancy.closures) {
                        continue; // weekends and closures do not break the series
                    }
                    match pick(d) {
                        Some(slot) => series.push(slot),
                        None => break,
                    }
                }
                let whole = series.len() == count as usize;
                if let Some(done) = verdict(series, whole) {
                    return done;
                }
            }
            exhausted
        }
        Shape::Weekly { per_week, weeks, min_gap_days } => {
            let monday =
                |d: NaiveDate| d - Days::new(u64::from(d.weekday().num_days_from_monday()));
            let mut week = Some(monday(first));
            while let Some(w0) = week.filter(|w| *w <= last) {
                week = w0.checked_add_days(Days::new(7));
                let mut series: Vec<Slot> = Vec::new();
                let fits = (0..weeks).all(|w| {
                    let start = w0 + Days::new(u64::from(w) * 7);
                    let mut picked = 0;
                    for d in start.iter_days().take(7) {
                        if picked == per_week {
                            break;
                        }
                        let gap_ok = series.last().is_none_or(|prev| {
                            (d - prev.date).num_days() > i64::from(min_gap_days)
                        });
                        if let Some(slot) = gap_ok.then(|| pick(d)).flatten() {
                            series.push(slot);
                            picked += 1;
                        }
                    }
                    picked == per_week
                });
                if let Some(done) = verdict(series, fits) {
                    return done;
                }
            }
            exhausted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{mental_health, pain_5_day};
    use chrono::TimeZone;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn calendar(horizon_weeks: u32) -> Calendar {
        Calendar::new_york(horizon_weeks)
    }

    /// Wednesday 2 December 2026, 10:00 in New York.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 15, 0, 0).unwrap()
    }

    fn request(session: Session, earliest_start: NaiveDate) -> PlanRequest {
        PlanRequest { session, allow_mixed_sessions: false, earliest_start, now: now() }
    }

    fn empty() -> Occupancy {
        Occupancy { capacity: 4, ..Occupancy::default() }
    }

    fn dates(series: &[Slot]) -> Vec<NaiveDate> {
        series.iter().map(|s| s.date).collect()
    }

    /// These days of December 2026.
    fn december(days: &[u32]) -> Vec<NaiveDate> {
        days.iter().map(|d| date(2026, 12, *d)).collect()
    }

    /// The series `shape` gets, asked from `from` in `session`, on a
    /// 26-week horizon.
    fn series_of(
        shape: Shape,
        session: Session,
        from: NaiveDate,
        occupancy: &Occupancy,
    ) -> Vec<Slot> {
        plan(shape, request(session, from), &calendar(26), occupancy).unwrap()
    }

    const FIVE_DAY: Shape = Shape::Consecutive { count: 5, start_on: Some(Weekday::Mon) };

    /// On an occupancy read only up to some date, a search finds what the
    /// whole horizon gives, or asks for later dates; never another series.
    /// Once the read reaches the full answer's last date, it finds it.
    #[test]
    fn a_search_on_a_short_read_finds_the_earliest_series_or_asks_for_more() {
        let mut busy = empty();
        busy.closures.insert(date(2026, 12, 9)); // Wednesday
        busy.booked.insert((date(2026, 12, 7), Session::Morning), 4); // Monday full
        busy.booked.insert((date(2026, 12, 15), Session::Morning), 4);
        busy.booked.insert((date(2026, 12, 22), Session::Morning), 4);
        busy.patient_days.insert(date(2026, 12, 17));
        let shapes = [
            FIVE_DAY,
            Shape::Consecutive { count: 8, start_on: None },
            Shape::Weekly { per_week: 2, weeks: 3, min_gap_days: 1 },
            Shape::Weekly { per_week: 3, weeks: 2, min_gap_days: 0 },
        ];
        let full_booked = Occupancy { capacity: 0, ..Occupancy::default() };
        for occupancy in [empty(), busy, full_booked] {
            for shape in shapes {
                let asked = request(Session::Morning, date(2026, 12, 3));
                let whole = search(shape, asked, &calendar(26), &occupancy);
                assert_ne!(whole, Search::NeedsLaterDates, "{shape:?}");
                let needed = match &whole {
                    Search::Found(series) => series.last().map(|s| s.date),
                    _ => None,
                };
                for known in date(2026, 12, 2).iter_days().take(120) {
                    let short = Occupancy { known_until: Some(known), ..occupancy.clone() };
                    let found = search(shape, asked, &calendar(26), &short);
                    if needed.is_some_and(|last| known >= last) {
                        assert_eq!(found, whole, "{shape:?} known to {known}");
                    } else {
                        assert_eq!(found, Search::NeedsLaterDates, "{shape:?} known to {known}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_five_day_course_asked_on_a_wednesday_fills_next_week() {
        let series = series_of(FIVE_DAY, Session::Morning, date(2026, 12, 2), &empty());
        assert_eq!(dates(&series), date(2026, 12, 7).iter_days().take(5).collect::<Vec<_>>());
        assert!(series.iter().all(|s| s.session == Session::Morning));
    }

    #[test]
    fn consecutive_courses_skip_weekends_and_closures_without_breaking() {
        let mut occupancy = empty();
        occupancy.closures.insert(date(2026, 12, 9)); // Wednesday
        let eight = Shape::Consecutive { count: 8, start_on: None };
        let series = series_of(eight, Session::Afternoon, date(2026, 12, 7), &occupancy);
        assert_eq!(dates(&series), december(&[7, 8, 10, 11, 14, 15, 16, 17]));
    }

    #[test]
    fn a_full_session_in_the_week_moves_the_start_to_the_next_week() {
        let mut occupancy = empty();
        occupancy.booked.insert((date(2026, 12, 10), Session::Morning), 4);
        let series = series_of(FIVE_DAY, Session::Morning, date(2026, 12, 2), &occupancy);
        assert_eq!(series[0].date, date(2026, 12, 14));
        // Mixing sessions keeps the first week, taking the afternoon that day.
        let mixed = PlanRequest {
            allow_mixed_sessions: true,
            ..request(Session::Morning, date(2026, 12, 2))
        };
        let series = plan(FIVE_DAY, mixed, &calendar(26), &occupancy).unwrap();
        assert_eq!(series[0].date, date(2026, 12, 7));
        assert_eq!(series[3].session, Session::Afternoon);
        assert!(series.iter().filter(|s| s.session == Session::Morning).count() == 4);
    }

    #[test]
    fn the_patients_own_days_are_avoided() {
        let mut occupancy = empty();
        occupancy.patient_days.insert(date(2026, 12, 8));
        let series = series_of(FIVE_DAY, Session::Morning, date(2026, 12, 2), &occupancy);
        assert_eq!(series[0].date, date(2026, 12, 14));
    }

    #[test]
    fn nothing_fits_past_the_horizon() {
        // A two-week horizon from 2 December ends on 16 December: the course
        // starting Monday 14 December would run to the 18th.
        let mut occupancy = empty();
        occupancy.booked.insert((date(2026, 12, 7), Session::Morning), 4);
        assert!(plan(
            FIVE_DAY,
            request(Session::Morning, date(2026, 12, 2)),
            &calendar(2),
            &occupancy
        )
        .is_none());
        // Three weeks: the 14th-18th fits, ending within the horizon.
        let series =
            plan(FIVE_DAY, request(Session::Morning, date(2026, 12, 2)), &calendar(3), &occupancy)
                .unwrap();
        assert_eq!(series.last().unwrap().date, date(2026, 12, 18));
    }

    #[test]
    fn sessions_that_have_begun_are_not_offered() {
        let one = Shape::Consecutive { count: 1, start_on: None };
        let series = series_of(one, Session::Morning, date(2026, 12, 2), &empty());
        assert_eq!(series[0].date, date(2026, 12, 3));
        let series = series_of(one, Session::Afternoon, date(2026, 12, 2), &empty());
        assert_eq!(series[0].date, date(2026, 12, 2));
    }

    #[test]
    fn mental_health_three_a_week_for_two_weeks_with_a_day_between() {
        let shape = shape(&mental_health(), None, Some(3), Some(2)).unwrap();
        let series = series_of(shape, Session::Morning, date(2026, 12, 7), &empty());
        assert_eq!(dates(&series), december(&[7, 9, 11, 14, 16, 18]));
        for pair in series.windows(2) {
            assert!((pair[1].date - pair[0].date).num_days() >= 2);
        }
    }

    #[test]
    fn a_weekly_course_moves_to_the_next_week_when_a_week_cannot_hold_it() {
        let shape = shape(&mental_health(), None, Some(3), Some(2)).unwrap();
        // From Wednesday 2 December, this week has Thu (tomorrow), Fri: only two days with a gap.
        let series = series_of(shape, Session::Morning, date(2026, 12, 2), &empty());
        assert_eq!(series[0].date, date(2026, 12, 7));
        // A closure on Wednesday 9th leaves Mon, Fri: the week fails, so the course starts the week after.
        let mut occupancy = empty();
        occupancy.closures.insert(date(2026, 12, 9));
        let series = series_of(shape, Session::Morning, date(2026, 12, 7), &occupancy);
        assert_eq!(series[0].date, date(2026, 12, 14));
        // Two a week fits around the closure.
        let two = Shape::Weekly { per_week: 2, weeks: 2, min_gap_days: 1 };
        let series = series_of(two, Session::Morning, date(2026, 12, 7), &occupancy);
        assert_eq!(dates(&series), december(&[7, 10, 14, 16]));
    }

    #[test]
    fn shapes_follow_the_protocol() {
        assert_eq!(
            shape(&pain_5_day(), None, None, None),
            Ok(Shape::Consecutive { count: 5, start_on: Some(Weekday::Mon) })
        );
        assert!(shape(&pain_5_day(), Some(6), None, None).is_err());
        assert!(shape(&pain_5_day(), None, Some(2), None).is_err());
        let fields = |r: Result<Shape, Vec<FieldError>>| {
            r.unwrap_err().into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert_eq!(fields(shape(&mental_health(), None, None, None)), ["per_week", "weeks"]);
        // A weekly course is counted by per_week × weeks: `infusions` is the
        // other kind's field, even when it says the same.
        assert_eq!(fields(shape(&mental_health(), Some(5), Some(3), Some(2))), ["infusions"]);
        assert_eq!(fields(shape(&mental_health(), Some(6), Some(3), Some(2))), ["infusions"]);
        assert_eq!(shape(&mental_health(), None, Some(3), Some(2)).unwrap().infusions(), 6);
    }

    #[test]
    fn protocols_must_be_plannable_on_the_clinics_days() {
        let cal = calendar(26);
        assert!(plannable_on(&pain_5_day(), &cal, now()).is_empty());
        assert!(plannable_on(&mental_health(), &cal, now()).is_empty());
        let saturday = Protocol { preferred_start_weekday: Some(Day::Saturday), ..pain_5_day() };
        assert_eq!(plannable_on(&saturday, &cal, now())[0].field, "protocol");
        // Three a week with two free days between needs seven days; the clinic has five.
        let sparse = Protocol { min_gap_days: 2, ..mental_health() };
        assert!(sparse.check().is_empty());
        assert_eq!(plannable_on(&sparse, &cal, now())[0].field, "protocol");
        // Huge values are refused by the bounds, without overflow.
        let huge = Protocol {
            min_gap_days: u32::MAX,
            per_week: Some(Range { min: 1, max: u32::MAX }),
            ..mental_health()
        };
        assert!(!huge.check().is_empty());
    }

    #[test]
    fn impossible_protocols_are_named() {
        assert!(pain_5_day().check().is_empty());
        assert!(mental_health().check().is_empty());
        let fields = |p: Protocol| p.check().into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(
            fields(Protocol { infusions: Range { min: 6, max: 5 }, ..pain_5_day() })[0],
            "infusions"
        );
        assert!(fields(Protocol { per_week: Some(Range { min: 5, max: 5 }), ..mental_health() })
            .contains(&"per_week.max".to_owned()));
        assert!(
            fields(Protocol { per_week: None, ..mental_health() }).contains(&"per_week".to_owned())
        );
        assert_eq!(
            fields(Protocol { response_check_infusion: Some(9), ..pain_5_day() }),
            ["response_check_infusion"]
        );
        assert_eq!(fields(Protocol { categories: vec![], ..pain_5_day() }), ["categories"]);
    }
}
