//! # studyflow-calendar
//!
//! The Latvian working-day calendar for deadlines such as MK403 p.8 ("no later than 10 working
//! days before publication"). Pure: no IO; data comes in as text.
//!
//! Public holidays come from the law's rules in code ([`rules`]); one-off days off, the Song
//! and Dance Celebration final days and the Cabinet's transfers of working days come from a data
//! file shipped in the crate (`data/lv.txt`) plus optional override files, since new Cabinet
//! orders arrive every year. Every day from 2000 to 2100 is precomputed, so a question is a
//! table lookup and the N-th working day a binary search.
//!
//! ```
//! use jiff::civil::date;
//! use studyflow_calendar::{Calendar, Reading};
//!
//! let cal = Calendar::latvia();
//! // Publication on Monday 30 June 2026: 22–24 June are days off.
//! let d = cal.deadline_before(date(2026, 6, 30), 10, Reading::NthWorkingDayBefore).unwrap();
//! assert_eq!(d.date, date(2026, 6, 12));
//! assert!(cal.version().starts_with("sha256:"));
//! ```

mod data;
pub mod rules;

use std::collections::BTreeMap;

use jiff::civil::{Date, date};
use sha2::{Digest, Sha256};

pub use data::DataError;

/// First and last year the calendar answers for.
pub const FIRST_YEAR: i16 = 2000;
pub const LAST_YEAR: i16 = 2100;

/// The shipped data file.
pub const BUILTIN_DATA: &str = include_str!("../data/lv.txt");

/// What a day is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Day {
    /// An ordinary working day.
    Working,
    /// A Saturday worked in place of a transferred day (Labour Law s.133(4)).
    WorkingSaturday { instead_of: Date },
    /// Saturday or Sunday.
    Weekend,
    /// A public holiday, or a one-off day off set by law.
    Holiday { name: String },
    /// The working day after a holiday that fell on a weekend (moving rule, since 2007).
    MovedHoliday { name: String, from: Date },
    /// A working day made a day off by a Cabinet order, worked on a Saturday.
    TransferredDayOff { worked_on: Date },
}

impl Day {
    pub fn is_working(&self) -> bool {
        matches!(self, Day::Working | Day::WorkingSaturday { .. })
    }

    /// Why the day is (or is not) a working day, for people.
    pub fn describe(&self) -> String {
        match self {
            Day::Working => "working day".into(),
            Day::WorkingSaturday { instead_of } => {
                format!("working Saturday, in place of {instead_of}")
            }
            Day::Weekend => "weekend".into(),
            Day::Holiday { name } => name.clone(),
            Day::MovedHoliday { name, from } => format!("{name}, moved from {from} (a weekend)"),
            Day::TransferredDayOff { worked_on } => {
                format!("day off by Cabinet order, worked on {worked_on}")
            }
        }
    }

    /// [`Day::describe`] in Latvian (a holiday's name stays as the calendar data gives it).
    pub fn describe_lv(&self) -> String {
        match self {
            Day::Working => "darbdiena".into(),
            Day::WorkingSaturday { instead_of } => {
                format!("darba sestdiena, {instead_of} vietā")
            }
            Day::Weekend => "nedēļas nogale".into(),
            Day::Holiday { name } => format!("svētku diena: {}", latvian(name)),
            Day::MovedHoliday { name, from } => {
                format!(
                    "brīvdiena, jo {} ({from}) iekrita nedēļas nogalē",
                    latvian(name)
                )
            }
            Day::TransferredDayOff { worked_on } => {
                format!("brīvdiena ar Ministru kabineta rīkojumu, atstrādā {worked_on}")
            }
        }
    }
}

/// A holiday's name, "English (Latvian)", split: (English, Latvian); a name without the
/// Latvian in parentheses (an override file's, written otherwise) is English only.
pub(crate) fn split_name(name: &str) -> (&str, Option<&str>) {
    // The parenthesis that opens the last one, counted back from the end: the Latvian may
    // hold parentheses of its own.
    let Some(inner) = name.strip_suffix(')') else {
        return (name, None);
    };
    let mut depth = 0;
    for (i, c) in inner.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' if depth > 0 => depth -= 1,
            '(' => {
                let (en, lv) = (&inner[..i], &inner[i + 1..]);
                return match en.strip_suffix(' ') {
                    Some(en) if !en.trim().is_empty() && !lv.trim().is_empty() => (en, Some(lv)),
                    _ => (name, None),
                };
            }
            _ => {}
        }
    }
    (name, None)
}

/// A holiday's name in Latvian (the whole name when it has no Latvian).
fn latvian(name: &str) -> &str {
    split_name(name).1.unwrap_or(name)
}

/// How "no later than N working days before X" is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The N-th working day before X, X itself not counted (Regulation 1182/71 Art. 3(1)).
    NthWorkingDayBefore,
    /// N clear working days between the deadline and X: one working day earlier.
    ClearWorkingDays,
}

/// A date outside 2000–2100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange(pub Date);

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is outside the calendar's years {FIRST_YEAR}–{LAST_YEAR}",
            self.0
        )
    }
}

impl std::error::Error for OutOfRange {}

/// A computed deadline and how it was counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub date: Date,
    pub reading: Reading,
    /// The working days counted, nearest to the event first.
    pub counted: Vec<Date>,
    /// Days passed over between the deadline and the event, with why.
    pub skipped: Vec<(Date, Day)>,
}

/// The calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    first: Date,
    days: Vec<Day>,
    /// Working days before each day: `cumulative[i]` counts days `0..i`.
    cumulative: Vec<u32>,
    version: String,
}

impl Calendar {
    /// The calendar from the shipped data.
    pub fn latvia() -> Calendar {
        // The shipped data is parsed by every test run; failing here is a build defect.
        Calendar::with_overrides(&[]).unwrap_or_else(|e| panic!("shipped calendar data: {e}"))
    }

    /// The calendar from the shipped data plus override files, as (name, text), applied in order.
    pub fn with_overrides(overrides: &[(&str, &str)]) -> Result<Calendar, DataError> {
        let mut entries = data::parse(BUILTIN_DATA, "engine/calendar/data/lv.txt")?;
        let mut hash = Sha256::new();
        hash.update(BUILTIN_DATA.as_bytes());
        for (name, text) in overrides {
            entries.extend(data::parse(text, name)?);
            hash.update(b"\n--override--\n");
            hash.update(text.as_bytes());
        }
        data::check(&entries)?;
        let digest = hash.finalize();
        let version = format!("sha256:{}", hex::encode(digest));
        let entries: Vec<data::Entry> = entries.into_iter().map(|l| l.entry).collect();
        Ok(Calendar::build(&entries, version))
    }

    fn build(entries: &[data::Entry], version: String) -> Calendar {
        use data::Entry;
        let mut one_off: BTreeMap<Date, String> = BTreeMap::new();
        let mut festival: BTreeMap<i16, (Date, String)> = BTreeMap::new();
        let mut transfers: BTreeMap<Date, Date> = BTreeMap::new();
        for e in entries {
            match e {
                Entry::OneOff { date, name } => {
                    one_off.insert(*date, name.clone());
                }
                Entry::Festival { date, name } => {
                    festival.insert(date.year(), (*date, name.clone()));
                }
                Entry::Transfer {
                    day_off, worked_on, ..
                } => {
                    transfers.insert(*day_off, *worked_on);
                }
                Entry::Cancel { date } => {
                    one_off.remove(date);
                    transfers.remove(date);
                    if festival.get(&date.year()).is_some_and(|(d, _)| d == date) {
                        festival.remove(&date.year());
                    }
                }
            }
        }
        let first = date(FIRST_YEAR, 1, 1);
        let last = date(LAST_YEAR, 12, 31);
        let n = usize::try_from((last - first).get_days()).unwrap_or(0) + 1;
        let mut days = Vec::with_capacity(n);
        let mut d = first;
        for _ in 0..n {
            days.push(if rules::is_weekend(d) {
                Day::Weekend
            } else {
                Day::Working
            });
            d = d.tomorrow().unwrap_or(d);
        }
        let index = |d: Date| {
            usize::try_from((d - first).get_days())
                .ok()
                .filter(|&i| i < n)
        };
        for year in FIRST_YEAR..=LAST_YEAR {
            let fest = festival.get(&year).map(|(d, name)| (*d, name.as_str()));
            for h in rules::holidays(year, fest) {
                let Some(i) = index(h.date) else { continue };
                let on_weekend = rules::is_weekend(h.date);
                days[i] = Day::Holiday {
                    name: h.name.clone(),
                };
                if h.moves && on_weekend {
                    // The next working day is a day off in its place.
                    let mut j = i + 1;
                    while j < n && !matches!(days[j], Day::Working) {
                        j += 1;
                    }
                    if j < n {
                        days[j] = Day::MovedHoliday {
                            name: h.name,
                            from: h.date,
                        };
                    }
                }
            }
        }
        for (d, name) in &one_off {
            if let Some(i) = index(*d) {
                days[i] = Day::Holiday { name: name.clone() };
            }
        }
        for (day_off, worked_on) in &transfers {
            if let (Some(i), Some(j)) = (index(*day_off), index(*worked_on)) {
                days[i] = Day::TransferredDayOff {
                    worked_on: *worked_on,
                };
                days[j] = Day::WorkingSaturday {
                    instead_of: *day_off,
                };
            }
        }
        let mut cumulative = Vec::with_capacity(n + 1);
        let mut c = 0u32;
        cumulative.push(0);
        for day in &days {
            c += u32::from(day.is_working());
            cumulative.push(c);
        }
        Calendar {
            first,
            days,
            cumulative,
            version,
        }
    }

    /// The data version: a content hash of the shipped data and the overrides.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn index(&self, d: Date) -> Result<usize, OutOfRange> {
        usize::try_from((d - self.first).get_days())
            .ok()
            .filter(|&i| i < self.days.len())
            .ok_or(OutOfRange(d))
    }

    fn date_at(&self, i: usize) -> Date {
        self.first
            .checked_add(jiff::Span::new().days(i64::try_from(i).unwrap_or(0)))
            .unwrap_or(self.first)
    }

    /// What `d` is.
    pub fn day(&self, d: Date) -> Result<&Day, OutOfRange> {
        Ok(&self.days[self.index(d)?])
    }

    pub fn is_working_day(&self, d: Date) -> Result<bool, OutOfRange> {
        Ok(self.day(d)?.is_working())
    }

    /// Working days in `[from, to)`.
    pub fn working_days_between(&self, from: Date, to: Date) -> Result<i64, OutOfRange> {
        let (a, b) = (self.index(from)?, self.index(to)?);
        Ok(i64::from(self.cumulative[b]) - i64::from(self.cumulative[a]))
    }

    /// The `n`-th working day before `d`, `d` itself not counted (`n` ≥ 1).
    pub fn nth_working_day_before(&self, d: Date, n: u32) -> Result<Date, OutOfRange> {
        let x = self.index(d)?;
        let before = self.cumulative[x];
        if n == 0 || n > before {
            // The count runs back past the first day: the date it needs is before it.
            return Err(OutOfRange(self.first.yesterday().unwrap_or(self.first)));
        }
        // The day i with cumulative[i + 1] == before - n + 1 that is working: the first index
        // whose count exceeds `before - n`, minus one.
        let target = before - n;
        let i = self.cumulative.partition_point(|&c| c <= target) - 1;
        Ok(self.date_at(i))
    }

    /// The `n`-th working day after `d`, `d` itself not counted (`n` ≥ 1).
    pub fn nth_working_day_after(&self, d: Date, n: u32) -> Result<Date, OutOfRange> {
        let x = self.index(d)?;
        let target = self.cumulative[x + 1] + n;
        let end = self.cumulative[self.days.len()];
        if n == 0 || target > end {
            // The count runs on past the last day: the date it needs is after it.
            let last = self.date_at(self.days.len() - 1);
            return Err(OutOfRange(last.tomorrow().unwrap_or(last)));
        }
        let i = self.cumulative.partition_point(|&c| c < target) - 1;
        Ok(self.date_at(i))
    }

    /// The latest allowed date for something due "no later than `n` working days before
    /// `event`", with how it was counted.
    pub fn deadline_before(
        &self,
        event: Date,
        n: u32,
        reading: Reading,
    ) -> Result<Deadline, OutOfRange> {
        let count = match reading {
            Reading::NthWorkingDayBefore => n,
            Reading::ClearWorkingDays => n + 1,
        };
        let date = self.nth_working_day_before(event, count)?;
        let mut counted = Vec::new();
        let mut skipped = Vec::new();
        let (from, to) = (self.index(date)?, self.index(event)?);
        for i in (from..to).rev() {
            let day = &self.days[i];
            if day.is_working() {
                counted.push(self.date_at(i));
            } else {
                skipped.push((self.date_at(i), day.clone()));
            }
        }
        Ok(Deadline {
            date,
            reading,
            counted,
            skipped,
        })
    }

    /// The year's days off that are not plain weekends (holidays, moved holidays, transferred
    /// days off; holidays on a weekend included) and its working Saturdays.
    pub fn year(&self, year: i16) -> Result<Vec<(Date, &Day)>, OutOfRange> {
        let (a, b) = (
            self.index(date(year, 1, 1))?,
            self.index(date(year, 12, 31))?,
        );
        Ok((a..=b)
            .filter(|&i| !matches!(self.days[i], Day::Working | Day::Weekend))
            .map(|i| (self.date_at(i), &self.days[i]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_holiday_name_is_split_at_the_parenthesis_that_opens_the_last() {
        use super::split_name;
        assert_eq!(
            split_name("Midsummer Eve (Līgo diena)"),
            ("Midsummer Eve", Some("Līgo diena"))
        );
        assert_eq!(
            split_name("A day (law of 2030) (Diena (likums))"),
            ("A day (law of 2030)", Some("Diena (likums)"))
        );
        for english_only in ["A day off", "A day off)", "(Diena)", "A day ()", "A (day"] {
            assert_eq!(
                split_name(english_only),
                (english_only, None),
                "{english_only}"
            );
        }
    }
}
