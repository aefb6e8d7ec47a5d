//! The one representation of a study's data from linkage to release: columnar tables.
//!
//! Every study, of ten subjects or of a million clients, goes through the same stage functions
//! on these tables: linkage fills them ([`crate::linkage`]), the quality report reads them
//! ([`crate::quality`]), anonymisation turns them into the anonymised study
//! ([`crate::anonymise`]) and the release writes them ([`crate::release`]). The engine keeps
//! them between its steps as datasets (serde), sealed while they are pseudonymised.
//!
//! A text cell is a 4-byte code into its column's dictionary, a date is a day number, and a row
//! of a source table names its subject by position: a source row is a few 4-byte codes, not a
//! map of names to values. Identifiers never enter a table (p.17.3): linkage reads the personal
//! code into the blind index only and skips every other identifier column.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use studyflow_spec::catalogue::{self, FieldClass};

use crate::values::Values;

/// A missing text cell.
pub const MISSING: u32 = u32::MAX;
/// A missing date or number.
pub const NO_DAY: i32 = i32::MIN;
/// A date cell that was given but is not a date (`2027-02-30`): a value for completeness, an
/// impossible one for the quality report (p.18), never released (anonymisation makes it
/// missing).
pub const BAD_DAY: i32 = i32::MIN + 1;

type Lookup = HashMap<Box<str>, u32, rustc_hash::FxBuildHasher>;

/// One column of a table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Column {
    /// Dictionary-encoded text: a code per row into `dict` ([`MISSING`] for an empty cell).
    Text {
        dict: Vec<Box<str>>,
        codes: Vec<u32>,
        /// `dict` inverted, for appending; rebuilt when a stored column is appended to.
        #[serde(skip)]
        lookup: Lookup,
    },
    /// Days since 1970-01-01 ([`NO_DAY`] for an empty cell, [`BAD_DAY`] for one that is not
    /// a date).
    Date(Vec<i32>),
    /// Whole numbers (days relative to an anchor; [`NO_DAY`] when missing).
    Int(Vec<i32>),
}

impl Column {
    pub fn text() -> Column {
        Column::Text {
            dict: Vec::new(),
            codes: Vec::new(),
            lookup: Lookup::default(),
        }
    }

    /// The column a catalogue field's cells go into: dates as days, the rest as text.
    pub fn for_field(field: &str) -> Column {
        if is_date_field(field) {
            Column::Date(Vec::new())
        } else {
            Column::text()
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Text { codes, .. } => codes.len(),
            Column::Date(v) | Column::Int(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a cell; `false` when a date cell is not a date (stored as [`BAD_DAY`]).
    pub fn push(&mut self, cell: &str) -> bool {
        match self {
            Column::Text {
                dict,
                lookup,
                codes,
            } => {
                if cell.is_empty() {
                    codes.push(MISSING);
                    return true;
                }
                if lookup.len() != dict.len() {
                    *lookup = dict
                        .iter()
                        .enumerate()
                        .map(|(i, d)| (d.clone(), i as u32))
                        .collect();
                }
                if let Some(c) = lookup.get(cell) {
                    codes.push(*c);
                } else {
                    let c = dict.len() as u32;
                    dict.push(cell.into());
                    lookup.insert(cell.into(), c);
                    codes.push(c);
                }
                true
            }
            Column::Date(v) => {
                if cell.is_empty() {
                    v.push(NO_DAY);
                    return true;
                }
                let d = parse_day(cell);
                v.push(d.unwrap_or(BAD_DAY));
                d.is_some()
            }
            Column::Int(v) => {
                let n = cell.parse().ok();
                v.push(n.unwrap_or(NO_DAY));
                cell.is_empty() || n.is_some()
            }
        }
    }

    fn push_missing(&mut self) {
        match self {
            Column::Text { codes, .. } => codes.push(MISSING),
            Column::Date(v) | Column::Int(v) => v.push(NO_DAY),
        }
    }

    /// Whether row `i` has a value.
    pub fn has(&self, i: usize) -> bool {
        match self {
            Column::Text { codes, .. } => codes[i] != MISSING,
            Column::Date(v) | Column::Int(v) => v[i] != NO_DAY,
        }
    }

    /// Row `i`'s cell as 32 raw bits: the dictionary code, or the day or number.
    pub fn raw(&self, i: usize) -> u32 {
        match self {
            Column::Text { codes, .. } => codes[i],
            Column::Date(v) | Column::Int(v) => v[i] as u32,
        }
    }

    /// Row `i`'s text, when it is a text cell with a value.
    pub fn text_at(&self, i: usize) -> Option<&str> {
        match self {
            Column::Text { dict, codes, .. } => dict.get(codes[i] as usize).map(|s| &**s),
            Column::Date(_) | Column::Int(_) => None,
        }
    }

    /// Row `i`'s day, when it is a date cell with a date.
    pub fn day_at(&self, i: usize) -> Option<i32> {
        match self {
            Column::Date(v) => Some(v[i]).filter(|d| *d != NO_DAY && *d != BAD_DAY),
            Column::Text { .. } | Column::Int(_) => None,
        }
    }

    /// Writes the cell whose raw bits are `raw` into `out` (cleared first); empty when missing.
    pub fn cell_raw(&self, raw: u32, out: &mut String) {
        use std::fmt::Write;
        out.clear();
        match self {
            Column::Text { dict, .. } => {
                if let Some(s) = dict.get(raw as usize) {
                    out.push_str(s);
                }
            }
            Column::Date(_) if raw as i32 != NO_DAY && raw as i32 != BAD_DAY => {
                format_day(raw as i32, out)
            }
            Column::Int(_) if raw as i32 != NO_DAY => {
                let _ = write!(out, "{}", raw as i32);
            }
            Column::Date(_) | Column::Int(_) => {}
        }
    }

    /// A raw value as the k-anonymity report shows it (`missing` for a missing one).
    pub fn shown(&self, raw: u32) -> String {
        let mut s = String::new();
        self.cell_raw(raw, &mut s);
        if s.is_empty() { "missing".into() } else { s }
    }

    /// The rows at `rows`, in that order. A text column's dictionary holds only the values
    /// those rows use, in their order of first use: nothing of a row left out (a subject
    /// suppressed for k-anonymity) or of the rows' former order stays in it.
    pub fn take(&self, rows: &[u32]) -> Column {
        match self {
            Column::Text { dict, codes, .. } => {
                let mut map = vec![MISSING; dict.len()];
                let mut new_dict: Vec<Box<str>> = Vec::new();
                let new_codes = rows
                    .iter()
                    .map(|&r| {
                        let c = codes[r as usize];
                        if c == MISSING {
                            return MISSING;
                        }
                        if map[c as usize] == MISSING {
                            map[c as usize] = new_dict.len() as u32;
                            new_dict.push(dict[c as usize].clone());
                        }
                        map[c as usize]
                    })
                    .collect();
                Column::Text {
                    dict: new_dict,
                    codes: new_codes,
                    lookup: Lookup::default(),
                }
            }
            Column::Date(v) => Column::Date(rows.iter().map(|&r| v[r as usize]).collect()),
            Column::Int(v) => Column::Int(rows.iter().map(|&r| v[r as usize]).collect()),
        }
    }
}

/// Whether the catalogue knows `key` as a date (of any source).
pub fn is_date_field(key: &str) -> bool {
    catalogue::sources_of(key).any(|f| f.class == FieldClass::Date)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date that exists.
pub fn parse_day(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i32> {
        let mut n = 0i32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i32::from(c - b'0');
        }
        Some(n)
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in[(m - 1) as usize] {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), counting years from March.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The civil date of a day number: (year, month, day).
pub fn civil(days: i32) -> (i32, i32, i32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i32::from(m <= 2), m, d)
}

/// The date of a day number.
pub fn date(days: i32) -> Option<jiff::civil::Date> {
    let (y, m, d) = civil(days);
    jiff::civil::Date::new(i16::try_from(y).ok()?, m as i8, d as i8).ok()
}

/// The day number of a date.
pub fn day(d: jiff::civil::Date) -> i32 {
    (d - jiff::civil::date(1970, 1, 1)).get_days()
}

fn format_day(days: i32, out: &mut String) {
    use std::fmt::Write;
    let (y, m, d) = civil(days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// A table: named columns, and for a source table the subject of each row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub fields: Vec<String>,
    pub columns: Vec<Column>,
    /// The subject of each row: its position in the subjects' table (linked) or among the
    /// study IDs (anonymised). Empty for the subjects' table itself, whose row `i` is subject
    /// `i`.
    pub subject: Vec<u32>,
    pub rows: usize,
}

impl Table {
    pub fn new(name: impl Into<String>) -> Table {
        Table {
            name: name.into(),
            fields: Vec::new(),
            columns: Vec::new(),
            subject: Vec::new(),
            rows: 0,
        }
    }

    /// Adds an empty column (before the first row).
    pub fn add_column(&mut self, field: impl Into<String>, column: Column) -> usize {
        self.fields.push(field.into());
        self.columns.push(column);
        self.columns.len() - 1
    }

    pub fn column(&self, field: &str) -> Option<&Column> {
        self.fields
            .iter()
            .position(|f| f == field)
            .map(|i| &self.columns[i])
    }

    /// The subject of row `i`.
    pub fn subject_of(&self, i: usize) -> usize {
        if self.subject.is_empty() {
            i
        } else {
            self.subject[i] as usize
        }
    }

    /// Ends a row whose cells were pushed: a column given no cell gets a missing one.
    pub fn end_row(&mut self) {
        self.rows += 1;
        for c in &mut self.columns {
            if c.len() < self.rows {
                c.push_missing();
            }
        }
    }

    /// The rows at `rows`, in that order ([`Column::take`]); their subjects as `subject` maps
    /// them (`None`: the subjects' table, positional).
    pub fn take(&self, rows: &[u32], subject: Option<&dyn Fn(usize) -> u32>) -> Table {
        Table {
            name: self.name.clone(),
            fields: self.fields.clone(),
            columns: self.columns.iter().map(|c| c.take(rows)).collect(),
            subject: match subject {
                Some(f) => rows
                    .iter()
                    .map(|&r| f(self.subject_of(r as usize)))
                    .collect(),
                None => Vec::new(),
            },
            rows: rows.len(),
        }
    }

    /// A table of rows held as values (a follow-up table, a dataset stored before tables): a
    /// column per name any row has, in name order; `subject` per row (`None`: positional).
    /// `dates`: catalogue dates become date columns (linked data); otherwise every cell is
    /// text as the release writes it (anonymised data, whose dates are days or months already).
    pub fn from_rows<'v>(
        name: &str,
        rows: impl IntoIterator<Item = (Option<u32>, &'v Values)>,
        dates: bool,
    ) -> Table {
        let rows: Vec<(Option<u32>, &Values)> = rows.into_iter().collect();
        let fields: BTreeSet<&str> = rows.iter().flat_map(|(_, v)| v.keys()).collect();
        let mut t = Table::new(name);
        for f in &fields {
            let c = if dates {
                Column::for_field(f)
            } else {
                Column::text()
            };
            t.add_column(*f, c);
        }
        for (subject, values) in &rows {
            for (f, c) in fields.iter().zip(&mut t.columns) {
                c.push(&catalogue::value_text(values.get(f)));
            }
            if let Some(s) = subject {
                t.subject.push(*s);
            }
            t.rows += 1;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_match_the_calendar() {
        for s in [
            "1970-01-01",
            "2000-02-29",
            "2026-11-28",
            "1899-12-31",
            "2033-06-30",
        ] {
            let d = parse_day(s).unwrap();
            let j: jiff::civil::Date = s.parse().unwrap();
            assert_eq!(d, day(j), "{s}");
            assert_eq!(date(d), Some(j));
            let mut out = String::new();
            format_day(d, &mut out);
            assert_eq!(out, s);
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01x",
            "2026-04-31",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    /// A column taken for some rows keeps in its dictionary only what those rows use, in
    /// their order; a stored column read back can be appended to.
    #[test]
    fn a_taken_column_forgets_the_rows_left_out() {
        let mut c = Column::text();
        for v in ["Mars", "Rīga", "", "Kurzeme", "Rīga"] {
            c.push(v);
        }
        let t = c.take(&[4, 2, 3]);
        let Column::Text { dict, codes, .. } = &t else {
            panic!()
        };
        assert_eq!(
            dict.iter().map(|d| &**d).collect::<Vec<_>>(),
            ["Rīga", "Kurzeme"]
        );
        assert_eq!(codes, &[0, MISSING, 1]);
        let mut back: Column = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        back.push("Kurzeme");
        back.push("Latgale");
        assert_eq!(back.text_at(3), Some("Kurzeme"));
        assert_eq!(back.text_at(4), Some("Latgale"));
        assert_eq!(back.len(), 5);
    }
}
