//! The clinic calendar ("Calendar and slots" in `docs/DOMAIN.md`): which
//! dates are clinic days, when their sessions start and end in the clinic's
//! time zone, whether a slot may be booked now, and the rooms and closures that
//! make a session's capacity.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::protocol::Occupancy;
use super::{FieldError, Refusal};

/// Half a clinic day; each holds one appointment per active room.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Session {
    Morning,
    Afternoon,
}

impl Session {
    pub const ALL: [Session; 2] = [Session::Morning, Session::Afternoon];

    pub fn as_str(self) -> &'static str {
        match self {
            Session::Morning => "morning",
            Session::Afternoon => "afternoon",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Dates on which the clinic is closed (holidays, training days).
pub type Closures = BTreeSet<NaiveDate>;

/// When a session starts and ends, clinic-local. The settings see to it
/// that it ends after it starts, and the morning before the afternoon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Hours {
    pub fn new(start: NaiveTime, end: NaiveTime) -> Self {
        Self { start, end }
    }
}

/// The clinic's days, session hours, zone and booking horizon, from settings.
#[derive(Clone, Debug)]
pub struct Calendar {
    zone: Tz,
    days: Vec<Weekday>,
    morning: Hours,
    afternoon: Hours,
    horizon_weeks: u32,
}

impl Calendar {
    pub fn new(
        zone: Tz,
        days: Vec<Weekday>,
        morning: Hours,
        afternoon: Hours,
        horizon_weeks: u32,
    ) -> Self {
        Self { zone, days, morning, afternoon, horizon_weeks }
    }

    fn hours(&self, session: Session) -> Hours {
        match session {
            Session::Morning => self.morning,
            Session::Afternoon => self.afternoon,
        }
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// Whether the clinic treats on this weekday (closures aside).
    pub fn is_clinic_day(&self, date: NaiveDate) -> bool {
        self.days.contains(&date.weekday())
    }

    /// Whether `date` has slots: a clinic day that is not closed.
    pub fn is_open(&self, date: NaiveDate, closures: &Closures) -> bool {
        self.is_clinic_day(date) && !closures.contains(&date)
    }

    /// The instant `session` starts on `date`, in the clinic's zone. On a DST
    /// change the zone database decides the offset: an ambiguous local time
    /// takes its first occurrence, and one that does not exist (skipped
    /// forward) is moved forward by whole hours until it does, as clocks
    /// are (02:30 on a spring-forward night becomes 03:30).
    pub fn starts_at(&self, date: NaiveDate, session: Session) -> DateTime<Tz> {
        self.instant(date, self.hours(session).start)
    }

    /// The instant `session` ends on `date`, in the clinic's zone, resolved
    /// across a DST change as [`Self::starts_at`] is; never before the
    /// session starts (an end inside a spring-forward gap that its start
    /// skipped past).
    pub fn ends_at(&self, date: NaiveDate, session: Session) -> DateTime<Tz> {
        self.instant(date, self.hours(session).end).max(self.starts_at(date, session))
    }

    /// `time` on `date` in the clinic's zone: an ambiguous local time takes
    /// its first occurrence; one that does not exist moves forward by whole
    /// hours until it does.
    fn instant(&self, date: NaiveDate, time: NaiveTime) -> DateTime<Tz> {
        let local = date.and_time(time);
        (0..=3)
            .find_map(|hours| {
                self.zone.from_local_datetime(&(local + chrono::Duration::hours(hours))).earliest()
            })
            .unwrap_or_else(|| self.zone.from_utc_datetime(&local))
    }

    /// The sessions of `date` with their starts; none on a day without slots.
    pub fn sessions(&self, date: NaiveDate, closures: &Closures) -> Vec<(Session, DateTime<Tz>)> {
        if !self.is_open(date, closures) {
            return Vec::new();
        }
        Session::ALL.into_iter().map(|s| (s, self.starts_at(date, s))).collect()
    }

    /// The first `n` open days on or after `from`. Stops after a year of
    /// dates without one, so a calendar with every day closed ends.
    pub fn next_clinic_days(
        &self,
        from: NaiveDate,
        n: usize,
        closures: &Closures,
    ) -> Vec<NaiveDate> {
        from.iter_days().take(366 + n * 7).filter(|d| self.is_open(*d, closures)).take(n).collect()
    }

    /// The clinic-local date of an instant.
    pub fn local_date(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.zone).date_naive()
    }

    /// The last date that may be booked when today is `today`.
    pub fn horizon_end(&self, today: NaiveDate) -> NaiveDate {
        today
            .checked_add_days(Days::new(u64::from(self.horizon_weeks) * 7))
            .unwrap_or(NaiveDate::MAX)
    }

    /// Whether `session` of `date` may be booked at `now`; its start if so.
    pub fn check_bookable(
        &self,
        date: NaiveDate,
        session: Session,
        now: DateTime<Utc>,
        closures: &Closures,
    ) -> Result<DateTime<Tz>, Refusal> {
        if !self.is_clinic_day(date) {
            return Err(Refusal::NotAClinicDay(date));
        }
        if closures.contains(&date) {
            return Err(Refusal::ClinicClosed(date));
        }
        let starts_at = self.starts_at(date, session);
        if starts_at.with_timezone(&Utc) <= now {
            return Err(Refusal::InThePast);
        }
        let last = self.horizon_end(self.local_date(now));
        if date > last {
            return Err(Refusal::OutsideHorizon { last });
        }
        Ok(starts_at)
    }
}

/// The longest range one availability request may ask for, in days.
pub const MAX_AVAILABILITY_DAYS: u64 = 93;

/// The range when only its first date is given, in days after it.
const DEFAULT_AVAILABILITY_DAYS: u64 = 27;

/// The dates an availability request covers: from `from` (default today) to
/// `to` (default four weeks on), `to` not before `from` and at most
/// [`MAX_AVAILABILITY_DAYS`] after it.
pub fn availability_range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), Refusal> {
    let from = from.unwrap_or(today);
    let to = to.unwrap_or_else(|| {
        from.checked_add_days(Days::new(DEFAULT_AVAILABILITY_DAYS)).unwrap_or(NaiveDate::MAX)
    });
    if to < from {
        return Err(FieldError::refusal("to", "must not be before `from`"));
    }
    if (to - from).num_days() > MAX_AVAILABILITY_DAYS as i64 {
        return Err(FieldError::refusal(
            "to",
            format!("must be at most {MAX_AVAILABILITY_DAYS} days after `from`"),
        ));
    }
    Ok((from, to))
}

/// One session of one clinic day: its capacity and what is booked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({
    "date": "2026-12-14", "session": "morning", "starts_at": "2026-12-14T08:00:00-05:00",
    "ends_at": "2026-12-14T12:00:00-05:00", "capacity": 4, "booked": 1, "free": 3
}))]
pub struct SessionAvailability {
    pub date: NaiveDate,
    pub session: Session,
    /// RFC 3339 in the clinic's offset.
    #[serde(serialize_with = "in_its_offset")]
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: DateTime<Tz>,
    /// RFC 3339 in the clinic's offset.
    #[serde(serialize_with = "in_its_offset")]
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: DateTime<Tz>,
    /// Active rooms.
    pub capacity: i64,
    /// Active appointments.
    pub booked: i64,
    pub free: i64,
}

fn in_its_offset<S: serde::Serializer>(t: &DateTime<Tz>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
}

/// The sessions from `from` to `to` (of `only` that session, if given) that
/// can still be booked at `now`, with `occupancy`'s capacity and bookings:
/// weekends, non-clinic days, closures, sessions that have begun and dates
/// beyond the horizon have none.
pub fn availability(
    calendar: &Calendar,
    occupancy: &Occupancy,
    (from, to): (NaiveDate, NaiveDate),
    only: Option<Session>,
    now: DateTime<Utc>,
) -> Vec<SessionAvailability> {
    let last = calendar.horizon_end(calendar.local_date(now));
    from.iter_days()
        .take_while(|d| *d <= to.min(last))
        .flat_map(|date| {
            calendar
                .sessions(date, &occupancy.closures)
                .into_iter()
                .filter(|(session, starts_at)| {
                    only.is_none_or(|s| s == *session) && starts_at.to_utc() > now
                })
                .map(move |(session, starts_at)| {
                    let booked = occupancy.booked.get(&(date, session)).copied().unwrap_or(0);
                    SessionAvailability {
                        date,
                        session,
                        starts_at,
                        ends_at: calendar.ends_at(date, session),
                        capacity: occupancy.capacity,
                        booked,
                        free: (occupancy.capacity - booked).max(0),
                    }
                })
        })
        .collect()
}

/// A private room with one reclining chair; only active rooms take
/// bookings. Its instants are shown in the clinic's offset by the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Room {
    pub id: String,
    pub name: String,
    pub active: bool,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub updated_at: DateTime<Utc>,
}

/// The decision on changing a room: deactivating a room that holds
/// scheduled appointments (`held`, from today on) is refused, naming them,
/// so that none is stranded; they are rescheduled or cancelled first.
pub fn change_room(room: &Room, active: Option<bool>, held: Vec<String>) -> Result<(), Refusal> {
    if active == Some(false) && room.active && !held.is_empty() {
        return Err(Refusal::Conflict {
            detail: format!(
                "the room holds {} scheduled appointment(s); reschedule or cancel them first",
                held.len()
            ),
            appointment_ids: held,
        });
    }
    Ok(())
}

/// A date the clinic is closed. Its instant is shown in the clinic's offset
/// by the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Closure {
    pub id: String,
    pub date: NaiveDate,
    pub reason: String,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

/// The decision on closing `date`: today or later, and no active
/// appointment on it (`booked`, named in the refusal: nothing is cancelled
/// silently).
pub fn close(date: NaiveDate, today: NaiveDate, booked: Vec<String>) -> Result<(), Refusal> {
    if date < today {
        return Err(FieldError::refusal("date", "must be today or later"));
    }
    if !booked.is_empty() {
        return Err(Refusal::Conflict {
            detail: format!(
                "{date} has {} appointment(s); reschedule or cancel them before closing it",
                booked.len()
            ),
            appointment_ids: booked,
        });
    }
    Ok(())
}

#[cfg(test)]
impl Calendar {
    /// The clinic the tests run: New York, Monday to Friday, sessions
    /// 08:00–12:00 and 13:00–17:00, bookings `horizon_weeks` ahead.
    pub(crate) fn new_york(horizon_weeks: u32) -> Self {
        let at = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN);
        let days = vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];
        let (morning, afternoon) = (Hours::new(at(8), at(12)), Hours::new(at(13), at(17)));
        Calendar::new(chrono_tz::America::New_York, days, morning, afternoon, horizon_weeks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn calendar() -> Calendar {
        Calendar::new_york(26)
    }

    /// The default morning, 08:00–12:00.
    fn day() -> Hours {
        Hours::new(hm(8, 0), hm(12, 0))
    }

    /// The default afternoon, 13:00–17:00.
    fn day_after() -> Hours {
        Hours::new(hm(13, 0), hm(17, 0))
    }

    fn rfc(t: DateTime<Tz>) -> String {
        t.to_rfc3339()
    }

    #[test]
    fn the_clinic_date_follows_its_zone() {
        // 03:30 UTC on 15 January is still the 14th in New York (UTC-5).
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 3, 30, 0).unwrap();
        assert_eq!(calendar().local_date(now), date(2026, 1, 14));
        let berlin =
            Calendar::new(chrono_tz::Europe::Berlin, vec![Weekday::Mon], day(), day_after(), 26);
        assert_eq!(berlin.local_date(now), date(2026, 1, 15));
    }

    #[test]
    fn weekdays_are_clinic_days_and_weekends_are_not() {
        let c = calendar();
        assert!(c.is_clinic_day(date(2026, 12, 14))); // Monday
        assert!(c.is_clinic_day(date(2026, 12, 18))); // Friday
        assert!(!c.is_clinic_day(date(2026, 12, 19))); // Saturday
        assert!(!c.is_clinic_day(date(2026, 12, 20))); // Sunday
    }

    #[test]
    fn sessions_start_at_local_times_with_the_right_offset_across_dst() {
        let c = calendar();
        use Session::*;
        for (day, session, start) in [
            // Standard time (UTC-5).
            (date(2026, 12, 14), Morning, "2026-12-14T08:00:00-05:00"),
            (date(2026, 12, 14), Afternoon, "2026-12-14T13:00:00-05:00"),
            // DST starts Sunday 8 March 2026: Friday before is -05:00, Monday after -04:00.
            (date(2026, 3, 6), Morning, "2026-03-06T08:00:00-05:00"),
            (date(2026, 3, 9), Morning, "2026-03-09T08:00:00-04:00"),
            // DST ends Sunday 1 November 2026.
            (date(2026, 10, 30), Afternoon, "2026-10-30T13:00:00-04:00"),
            (date(2026, 11, 2), Afternoon, "2026-11-02T13:00:00-05:00"),
        ] {
            assert_eq!(rfc(c.starts_at(day, session)), start);
        }
    }

    /// Every day of the week a clinic day.
    fn every_day() -> Vec<Weekday> {
        use Weekday::*;
        vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun]
    }

    #[test]
    fn a_start_inside_a_dst_gap_moves_past_it_and_an_ambiguous_one_takes_the_first() {
        let (night, later) = (Hours::new(hm(1, 30), hm(2, 15)), Hours::new(hm(2, 30), hm(3, 0)));
        let c = Calendar::new(chrono_tz::America::New_York, every_day(), night, later, 26);
        // 02:30 does not exist on 8 March 2026 in New York.
        assert_eq!(
            rfc(c.starts_at(date(2026, 3, 8), Session::Afternoon)),
            "2026-03-08T03:30:00-04:00"
        );
        // 01:30 happens twice on 1 November 2026: the first is still DST.
        assert_eq!(
            rfc(c.starts_at(date(2026, 11, 1), Session::Morning)),
            "2026-11-01T01:30:00-04:00"
        );
    }

    #[test]
    fn sessions_end_at_local_times_with_the_right_offset_on_dst_days() {
        let new_york = calendar();
        let berlin = Calendar::new(chrono_tz::Europe::Berlin, every_day(), day(), day_after(), 26);
        // Sessions across the night New York's clocks change (2:00 local).
        let night = |morning: Hours, afternoon: Hours| {
            Calendar::new(chrono_tz::America::New_York, every_day(), morning, afternoon, 26)
        };
        let across = night(Hours::new(hm(1, 0), hm(3, 0)), Hours::new(hm(3, 30), hm(4, 0)));
        let into_gap = night(Hours::new(hm(1, 30), hm(2, 30)), Hours::new(hm(2, 30), hm(3, 0)));
        let back = night(Hours::new(hm(0, 30), hm(1, 30)), Hours::new(hm(1, 30), hm(1, 45)));
        use Session::*;
        #[rustfmt::skip]
        let table = [
            // The defaults, standard time and summer time (DST starts Sunday
            // 8 March 2026 and ends Sunday 1 November 2026 in New York).
            (&new_york, date(2026, 12, 14), Morning, "2026-12-14T08:00:00-05:00", "2026-12-14T12:00:00-05:00"),
            (&new_york, date(2026, 12, 14), Afternoon, "2026-12-14T13:00:00-05:00", "2026-12-14T17:00:00-05:00"),
            (&new_york, date(2026, 3, 6), Afternoon, "2026-03-06T13:00:00-05:00", "2026-03-06T17:00:00-05:00"),
            (&new_york, date(2026, 3, 9), Morning, "2026-03-09T08:00:00-04:00", "2026-03-09T12:00:00-04:00"),
            (&new_york, date(2026, 10, 30), Afternoon, "2026-10-30T13:00:00-04:00", "2026-10-30T17:00:00-04:00"),
            (&new_york, date(2026, 11, 2), Morning, "2026-11-02T08:00:00-05:00", "2026-11-02T12:00:00-05:00"),
            // Europe changes on other dates: Sunday 29 March 2026.
            (&berlin, date(2026, 3, 29), Morning, "2026-03-29T08:00:00+02:00", "2026-03-29T12:00:00+02:00"),
            (&berlin, date(2026, 3, 28), Afternoon, "2026-03-28T13:00:00+01:00", "2026-03-28T17:00:00+01:00"),
            // A session across the spring-forward gap: two hours on the
            // clock, one in fact.
            (&across, date(2026, 3, 8), Morning, "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"),
            // An end inside the gap moves past it, as a start does.
            (&into_gap, date(2026, 3, 8), Morning, "2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00"),
            // A start moved past the gap, beyond its end: the session ends as it starts.
            (&into_gap, date(2026, 3, 8), Afternoon, "2026-03-08T03:30:00-04:00", "2026-03-08T03:30:00-04:00"),
            // Clocks going back: an ambiguous end takes its first occurrence.
            (&back, date(2026, 11, 1), Morning, "2026-11-01T00:30:00-04:00", "2026-11-01T01:30:00-04:00"),
            (&back, date(2026, 11, 1), Afternoon, "2026-11-01T01:30:00-04:00", "2026-11-01T01:45:00-04:00"),
            // The same hours on an ordinary night.
            (&back, date(2026, 11, 2), Morning, "2026-11-02T00:30:00-05:00", "2026-11-02T01:30:00-05:00"),
        ];
        for (c, day, session, start, end) in table {
            assert_eq!(rfc(c.starts_at(day, session)), start, "{day} {session:?}");
            assert_eq!(rfc(c.ends_at(day, session)), end, "{day} {session:?}");
        }
    }

    #[test]
    fn next_clinic_days_skip_weekends_and_closures() {
        let c = calendar();
        let closures = Closures::from([date(2026, 12, 16)]); // a Wednesday
        assert_eq!(
            c.next_clinic_days(date(2026, 12, 12), 5, &closures), // from a Saturday
            vec![
                date(2026, 12, 14),
                date(2026, 12, 15),
                date(2026, 12, 17),
                date(2026, 12, 18),
                date(2026, 12, 21)
            ]
        );
        assert!(c.sessions(date(2026, 12, 16), &closures).is_empty());
        assert!(c.sessions(date(2026, 12, 19), &closures).is_empty());
        assert_eq!(c.sessions(date(2026, 12, 17), &closures).len(), 2);
        let every_day_closed =
            Calendar::new(chrono_tz::UTC, vec![Weekday::Mon], day(), day_after(), 26);
        let all: Closures = date(2026, 1, 1).iter_days().take(800).collect();
        assert!(every_day_closed.next_clinic_days(date(2026, 1, 1), 3, &all).is_empty());
    }

    #[test]
    fn booking_rules_in_order() {
        let c = calendar();
        // Wednesday 2 December 2026, 10:00 in New York.
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 15, 0, 0).unwrap();
        let none = Closures::new();
        let closed = Closures::from([date(2026, 12, 4)]);
        assert_eq!(
            c.check_bookable(date(2026, 12, 5), Session::Morning, now, &none),
            Err(Refusal::NotAClinicDay(date(2026, 12, 5)))
        );
        assert_eq!(
            c.check_bookable(date(2026, 12, 4), Session::Morning, now, &closed),
            Err(Refusal::ClinicClosed(date(2026, 12, 4)))
        );
        // This morning has begun; this afternoon has not.
        assert_eq!(
            c.check_bookable(date(2026, 12, 2), Session::Morning, now, &none),
            Err(Refusal::InThePast)
        );
        assert!(c.check_bookable(date(2026, 12, 2), Session::Afternoon, now, &none).is_ok());
        assert_eq!(
            c.check_bookable(date(2026, 11, 30), Session::Afternoon, now, &none),
            Err(Refusal::InThePast)
        );
        // The horizon: 26 weeks from today is the last bookable date.
        let last = date(2026, 12, 2) + Days::new(26 * 7);
        assert_eq!(last, date(2027, 6, 2));
        assert!(c.check_bookable(last, Session::Afternoon, now, &none).is_ok());
        assert_eq!(
            c.check_bookable(date(2027, 6, 3), Session::Morning, now, &none),
            Err(Refusal::OutsideHorizon { last })
        );
    }

    #[test]
    fn the_session_starting_now_is_already_past() {
        let c = calendar();
        let start = c.starts_at(date(2026, 12, 3), Session::Morning).with_timezone(&Utc);
        let none = Closures::new();
        assert_eq!(
            c.check_bookable(date(2026, 12, 3), Session::Morning, start, &none),
            Err(Refusal::InThePast)
        );
        let just_before = start - chrono::Duration::seconds(1);
        assert!(c.check_bookable(date(2026, 12, 3), Session::Morning, just_before, &none).is_ok());
    }

    #[test]
    fn a_date_closes_only_from_today_and_only_when_nothing_stands_on_it() {
        let today = date(2026, 12, 2);
        let ids = || vec!["a-1".to_owned(), "a-2".to_owned()];
        #[rustfmt::skip]
        let table = [
            (date(2026, 12, 24), vec![], None),
            (today, vec![], None),
            (date(2026, 12, 1), vec![], Some("validation_failed")),
            (date(2026, 12, 1), ids(), Some("validation_failed")),
            (date(2026, 12, 24), ids(), Some("conflict")),
        ];
        for (day, booked, refused) in table {
            let decided = close(day, today, booked.clone());
            assert_eq!(decided.as_ref().err().map(Refusal::code), refused, "{day}");
            if let Err(Refusal::Conflict { appointment_ids, .. }) = decided {
                assert_eq!(appointment_ids, booked);
            }
        }
    }

    #[test]
    fn only_deactivating_an_active_room_that_holds_appointments_is_refused() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let room = |active: bool| Room {
            id: "r-1".into(),
            name: "Room 1".into(),
            active,
            created_at: at,
            updated_at: at,
        };
        let held = || vec!["a-1".to_owned()];
        #[rustfmt::skip]
        let table = [
            (true, Some(false), held(), true),
            (true, Some(false), vec![], false),
            (true, None, held(), false),
            (true, Some(true), held(), false),
            (false, Some(false), held(), false),
            (false, Some(true), vec![], false),
        ];
        for (active, asked, held, refused) in table {
            let decided = change_room(&room(active), asked, held);
            assert_eq!(decided.is_err(), refused, "{active} {asked:?}");
        }
    }
}
