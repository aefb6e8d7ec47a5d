//! The injected clock and the instants the engine stores (microseconds since the Unix epoch,
//! UTC); dates of the regulation are Latvian civil dates, turned into instants at midnight in
//! Riga.

use std::sync::Mutex;

use jiff::Timestamp;
use jiff::civil::Date;

/// Where the engine gets the time. Tests and the demo use [`ManualClock`] to run years of a
/// study in seconds.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    /// A clock at midnight (Riga) of a date.
    pub fn at_date(d: Date) -> ManualClock {
        ManualClock::new(riga_midnight(d))
    }

    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: jiff::SignedDuration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t = t.checked_add(by).unwrap_or(*t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Riga's time zone from the IANA database bundled into the binary (jiff's `tzdb-bundle-always`):
/// the same answer on every machine, whatever its own zone files say.
fn riga() -> &'static jiff::tz::TimeZone {
    static RIGA: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();
    RIGA.get_or_init(|| {
        jiff::tz::TimeZone::get("Europe/Riga").unwrap_or_else(|_| {
            // Not reachable with the bundled database; EET without summer time is the least
            // wrong answer rather than a panic.
            jiff::tz::TimeZone::fixed(jiff::tz::offset(2))
        })
    })
}

/// Midnight at the start of `d` in Riga, as an instant.
pub fn riga_midnight(d: Date) -> Timestamp {
    d.to_zoned(riga().clone())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The end of `d` in Riga (midnight starting the next day): "due by `d`".
pub fn riga_end_of_day(d: Date) -> Timestamp {
    riga_midnight(d.tomorrow().unwrap_or(d))
}

/// The time in Riga at an instant, to the minute, as people read it (`2026-12-01 08:15`).
pub fn riga_time(t: Timestamp) -> String {
    t.to_zoned(riga().clone())
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

/// The civil date in Riga at an instant.
pub fn riga_date(t: Timestamp) -> Date {
    t.to_zoned(riga().clone()).date()
}

/// Whether this build reads `STUDYFLOW_NOW` (the `test-clock` feature).
pub fn test_clock() -> bool {
    cfg!(feature = "test-clock")
}

/// A fixed clock from `STUDYFLOW_NOW` (an RFC 3339 instant, or a date taken as midnight in
/// Riga), for the tests that run the binary through years — only in builds with the
/// `test-clock` feature. A production build never reads it: its clock is the system's, which
/// the p.8 publication gate and the audit's timestamps rely on.
#[cfg(feature = "test-clock")]
pub fn from_env() -> Result<Option<std::sync::Arc<dyn Clock>>, String> {
    let Ok(text) = std::env::var("STUDYFLOW_NOW") else {
        return Ok(None);
    };
    let at = match text.parse::<Timestamp>() {
        Ok(t) => t,
        Err(_) => riga_midnight(
            text.parse::<Date>()
                .map_err(|_| format!("STUDYFLOW_NOW=`{text}` is neither an instant nor a date"))?,
        ),
    };
    Ok(Some(std::sync::Arc::new(ManualClock::new(at))))
}

/// Without the `test-clock` feature there is no clock but the system's.
#[cfg(not(feature = "test-clock"))]
pub fn from_env() -> Result<Option<std::sync::Arc<dyn Clock>>, String> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn riga_follows_the_eu_summer_time_rule() {
        // The switches: 28 March 2027 at 03:00 EET, 31 October 2027 at 04:00 EEST.
        for (day, midnight) in [
            (date(2027, 3, 28), "2027-03-27T22:00:00Z"),
            (date(2027, 3, 29), "2027-03-28T21:00:00Z"),
            (date(2027, 10, 31), "2027-10-30T21:00:00Z"),
            (date(2027, 11, 1), "2027-10-31T22:00:00Z"),
        ] {
            assert_eq!(riga_midnight(day).to_string(), midnight, "{day}");
        }
        assert_eq!(
            riga_date("2027-03-28T00:59:59Z".parse().unwrap()),
            date(2027, 3, 28)
        );
        assert_eq!(
            riga_midnight(date(2027, 1, 15)).to_string(),
            "2027-01-14T22:00:00Z"
        );
        assert_eq!(
            riga_midnight(date(2027, 7, 15)).to_string(),
            "2027-07-14T21:00:00Z"
        );
        assert_eq!(
            riga_date(riga_midnight(date(2027, 7, 15))),
            date(2027, 7, 15)
        );
        assert_eq!(
            riga_date(riga_end_of_day(date(2027, 12, 31))),
            date(2028, 1, 1)
        );
    }

    #[test]
    fn the_manual_clock_moves_when_told() {
        let c = ManualClock::at_date(date(2027, 1, 1));
        let t = c.now();
        c.advance(jiff::SignedDuration::from_hours(24 * 365));
        assert_eq!(c.now().duration_since(t).as_hours(), 24 * 365);
    }
}
