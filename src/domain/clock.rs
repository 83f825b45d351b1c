//! The one source of "now", so rules about the past and the future can be
//! tested at any instant.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// Tells the current instant.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until it is set, for tests.
#[derive(Debug)]
pub struct FixedClock(std::sync::RwLock<DateTime<Utc>>);

impl FixedClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(std::sync::RwLock::new(now))
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        match self.0.write() {
            Ok(mut guard) => *guard = now,
            Err(poisoned) => *poisoned.into_inner() = now,
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        match self.0.read() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}

/// The calendar date at `now` in the clinic's time zone.
pub fn local_today(now: DateTime<Utc>, zone: Tz) -> NaiveDate {
    zone.from_utc_datetime(&now.naive_utc()).date_naive()
}

/// `now` truncated to whole microseconds: PostgreSQL keeps microseconds and
/// SQLite nanoseconds, so both backends return the same stored value.
pub fn to_micros(now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clinic_date_follows_its_zone() {
        // 03:30 UTC on 15 January is still the 14th in New York (UTC-5).
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 3, 30, 0).unwrap();
        assert_eq!(
            local_today(now, chrono_tz::America::New_York),
            NaiveDate::from_ymd_opt(2026, 1, 14).unwrap()
        );
        assert_eq!(
            local_today(now, chrono_tz::Europe::Berlin),
            NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()
        );
    }

    #[test]
    fn micros_truncation_drops_nanoseconds() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(to_micros(t).timestamp_subsec_nanos(), 123_456_000);
    }
}
