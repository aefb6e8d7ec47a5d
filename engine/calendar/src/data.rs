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

pub(crate) fn parse(text: &str, file: &str) -> Result<Vec<Entry>, DataError> {
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
        out.push(entry);
    }
    Ok(out)
}
