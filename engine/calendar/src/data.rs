//! The data file: one-off days off, Song and Dance Celebration final days and Cabinet
//! transfers (format in `data/lv.txt`). Parsing is strict and names the file and line.

use jiff::civil::{Date, Weekday};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    OneOff {
        date: Date,
        name: String,
    },
    Festival {
        date: Date,
        name: String,
    },
    Transfer {
        day_off: Date,
        worked_on: Date,
        source: String,
    },
    Cancel {
        date: Date,
    },
}

/// A fault in a calendar data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for DataError {}

/// An entry with the file and line it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub entry: Entry,
    pub file: String,
    pub line: usize,
}

impl Located {
    fn error(&self, message: String) -> DataError {
        DataError {
            file: self.file.clone(),
            line: self.line,
            message,
        }
    }
}

pub(crate) fn parse(text: &str, file: &str) -> Result<Vec<Located>, DataError> {
    // A byte-order mark (what some editors on Windows save) is no part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| DataError {
            file: file.to_owned(),
            line: i + 1,
            message,
        };
        let mut words = line.split_whitespace();
        let kind = words.next().unwrap_or_default();
        let mut next_date = |what: &str| -> Result<Date, DataError> {
            let w = words
                .next()
                .ok_or_else(|| err(format!("`{kind}` needs {what}")))?;
            w.parse::<Date>()
                .map_err(|_| err(format!("`{w}` is not a date (YYYY-MM-DD)")))
        };
        let entry = match kind {
            "one-off" | "festival" => {
                let date = next_date("a date")?;
                let name: String = words.collect::<Vec<_>>().join(" ");
                if name.is_empty() {
                    return Err(err(format!("`{kind}` needs a name after the date")));
                }
                // The Latvian pages name the day in Latvian: the name is English, then the
                // Latvian in parentheses, as the law's holidays are named.
                if crate::split_name(&name).1.is_none() {
                    return Err(err(format!(
                        "`{kind} {date}`: the name needs its Latvian name in parentheses after the English, as `Day of the law (Likuma diena)`"
                    )));
                }
                if kind == "one-off" {
                    Entry::OneOff { date, name }
                } else {
                    Entry::Festival { date, name }
                }
            }
            "transfer" => {
                let day_off = next_date("the day made a day off")?;
                let worked_on = next_date("the Saturday worked instead")?;
                if worked_on.weekday() != Weekday::Saturday {
                    return Err(err(format!(
                        "{worked_on} is a {:?}, not a Saturday",
                        worked_on.weekday()
                    )));
                }
                if matches!(day_off.weekday(), Weekday::Saturday | Weekday::Sunday) {
                    return Err(err(format!("{day_off} is already a weekend day")));
                }
                let source = words.collect::<Vec<_>>().join(" ");
                Entry::Transfer {
                    day_off,
                    worked_on,
                    source,
                }
            }
            "cancel" => Entry::Cancel {
                date: next_date("a date")?,
            },
            other => {
                return Err(err(format!(
                    "unknown entry `{other}`; expected one-off, festival, transfer or cancel"
                )));
            }
        };
        for d in entry.dates() {
            if !(crate::FIRST_YEAR..=crate::LAST_YEAR).contains(&d.year()) {
                return Err(err(crate::OutOfRange(d).to_string()));
            }
        }
        out.push(Located {
            entry,
            file: file.to_owned(),
            line: i + 1,
        });
    }
    Ok(out)
}

impl Entry {
    fn dates(&self) -> Vec<Date> {
        match self {
            Entry::OneOff { date, .. } | Entry::Festival { date, .. } | Entry::Cancel { date } => {
                vec![*date]
            }
            Entry::Transfer {
                day_off, worked_on, ..
            } => vec![*day_off, *worked_on],
        }
    }
}

/// The entries of the shipped data and the overrides, in the order they apply, make one
/// calendar: a day is moved to one Saturday only, a Saturday is worked for one day only, and a
/// `cancel` cancels an entry made before it. Each fault names the file and line of the entry
/// that makes it.
pub(crate) fn check(entries: &[Located]) -> Result<(), DataError> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut one_off: BTreeSet<Date> = BTreeSet::new();
    let mut festival: BTreeSet<Date> = BTreeSet::new();
    let mut moved: BTreeMap<Date, Date> = BTreeMap::new();
    let mut worked: BTreeMap<Date, Date> = BTreeMap::new();
    for l in entries {
        match &l.entry {
            Entry::OneOff { date, .. } => {
                one_off.insert(*date);
            }
            Entry::Festival { date, .. } => {
                // One festival day a year: a later entry replaces the year's.
                festival.retain(|d| d.year() != date.year());
                festival.insert(*date);
            }
            Entry::Transfer {
                day_off, worked_on, ..
            } => {
                if let Some(other) = moved.get(day_off).filter(|o| *o != worked_on) {
                    return Err(l.error(format!(
                        "{day_off} is already moved to {other}; a day is moved to one Saturday (cancel the earlier transfer first)"
                    )));
                }
                if let Some(other) = worked.get(worked_on).filter(|o| *o != day_off) {
                    return Err(l.error(format!(
                        "Saturday {worked_on} is already worked for {other}; a Saturday is worked for one day"
                    )));
                }
                moved.insert(*day_off, *worked_on);
                worked.insert(*worked_on, *day_off);
            }
            Entry::Cancel { date } => {
                let transfer = moved.remove(date);
                if let Some(w) = transfer {
                    worked.remove(&w);
                }
                let found = one_off.remove(date) | festival.remove(date) | transfer.is_some();
                if !found {
                    return Err(l.error(format!(
                        "`cancel {date}`: no one-off day, festival day or transfer on {date} to cancel"
                    )));
                }
            }
        }
    }
    Ok(())
}
