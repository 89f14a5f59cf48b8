//! Time as Warden records it: UTC instants with microsecond precision, and the clock that
//! produces them. The clock is injectable so that expiry and rotation grace can be tested by
//! moving time instead of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A UTC instant, stored as microseconds since the Unix epoch and shown as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `micros` microseconds after the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// This instant plus `d`, saturating at the end of representable time.
    pub fn saturating_add(self, d: Duration) -> Self {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(micros))
    }

    /// This instant minus `d`, saturating at the start of representable time.
    pub fn saturating_sub(self, d: Duration) -> Self {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(micros))
    }

    /// Parses RFC 3339 (`2027-01-31T12:00:00Z`) or a bare date (`2027-01-31`, midnight UTC).
    pub fn parse(s: &str) -> Result<Self, crate::ValidationError> {
        let bad = || {
            crate::ValidationError::new(
                "time",
                format!(
                    "`{s}` is not a date (2027-01-31) or an RFC 3339 time (2027-01-31T12:00:00Z)"
                ),
            )
        };
        let dt = match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(dt) => dt,
            Err(_) => {
                let date =
                    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                        .map_err(|_| bad())?;
                date.midnight().assume_utc()
            }
        };
        let micros = dt.unix_timestamp_nanos() / 1_000;
        i64::try_from(micros).map(Self).map_err(|_| bad())
    }
}

/// Microseconds elapsed since `start`, for the `duration_us` of outcomes (saturating).
pub fn elapsed_micros(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = i128::from(self.0) * 1_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(dt) => {
                let format = time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
                );
                match dt.format(&format) {
                    Ok(s) => f.write_str(&s),
                    Err(_) => write!(f, "@{}us", self.0),
                }
            }
            Err(_) => write!(f, "@{}us", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where "now" comes from.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let micros = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
        Timestamp(i64::try_from(micros).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to: the system time at creation plus an offset that tests
/// advance.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A manual clock starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: AtomicI64::new(start.as_micros()),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        self.now.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_micros() {
        let t = Timestamp::parse("2026-11-27T08:00:00.123456Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-27T08:00:00.123456Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn bare_date_is_midnight_utc() {
        let t = Timestamp::parse("2027-01-31").unwrap();
        assert_eq!(t.to_string(), "2027-01-31T00:00:00.000000Z");
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(Timestamp::parse("tomorrow").is_err());
        assert!(Timestamp::parse("2027-13-01").is_err());
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::new(Timestamp::from_micros(10));
        assert_eq!(c.now().as_micros(), 10);
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now().as_micros(), 1_000_010);
    }
}
