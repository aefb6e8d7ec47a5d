//! The bulk path: linkage (p.17.1–17.2), deletion of identifiers (p.17.3, p.22.3–22.4),
//! anonymisation (p.7, p.24) and release (p.30) of a study too large for records held one map
//! per row — a million clients with millions of proceedings — over columnar tables streamed
//! from the sources' CSV files.
//!
//! It shares its rules with the step bodies, not copies of them: the keyed blind index and
//! its ambiguity rule ([`crate::linkage::Linker`]), the catalogue's verdict on what is an
//! identifier, the study IDs ([`crate::anonymise::StudyIds`]), months and bands, the k-anonymity
//! report with missing values as a class of their own ([`crate::anonymise::k_report`]), and the
//! release writer with its refusal of identifier columns, codebook and manifest
//! ([`crate::release::Builder`]).
//!
//! Identifiers never enter a table: a personal code goes only into the blind index, the other
//! identifier columns (proceeding, ruling and case numbers) are skipped as each row is read.
//! Text cells are dictionary-encoded per column, dates are days; a row of a source table is
//! its subject's position and a few 4-byte codes.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use studyflow_spec::catalogue::{FieldClass, Source};
use studyflow_spec::model::DatePolicy;

use crate::anonymise::{self, KReport, Policy, StudyIds};
use crate::linkage::{Found, LinkageReport, Linker, SourceReport, source_name};
use crate::release::{Builder, ReleaseError, Written};
use crate::vault::StudyKeys;

/// A missing text cell.
pub const MISSING: u32 = u32::MAX;
/// A missing date or number.
pub const NO_DAY: i32 = i32::MIN;

/// One column of a table.
#[derive(Debug, Clone)]
pub enum Column {
    /// Dictionary-encoded text: a code per row into `dict` ([`MISSING`] for an empty cell).
    Text {
        dict: Vec<Box<str>>,
        lookup: HashMap<Box<str>, u32, rustc_hash::FxBuildHasher>,
        codes: Vec<u32>,
    },
    /// Days since 1970-01-01 ([`NO_DAY`] for an empty cell).
    Date(Vec<i32>),
    /// Whole numbers (days relative to an anchor; [`NO_DAY`] when missing).
    Int(Vec<i32>),
}

impl Column {
    fn text() -> Column {
        Column::Text {
            dict: Vec::new(),
            lookup: HashMap::default(),
            codes: Vec::new(),
        }
    }

    /// Appends a cell; `false` when a date cell is not a date (stored as missing).
    fn push(&mut self, cell: &str) -> bool {
        match self {
            Column::Text {
                dict,
                lookup,
                codes,
            } => {
                if cell.is_empty() {
                    codes.push(MISSING);
                } else if let Some(c) = lookup.get(cell) {
                    codes.push(*c);
                } else {
                    let c = dict.len() as u32;
                    dict.push(cell.into());
                    lookup.insert(cell.into(), c);
                    codes.push(c);
                }
                true
            }
            Column::Date(v) | Column::Int(v) => {
                if cell.is_empty() {
                    v.push(NO_DAY);
                    return true;
                }
                let d = parse_day(cell);
                v.push(d.unwrap_or(NO_DAY));
                d.is_some()
            }
        }
    }

    /// Keeps the rows whose `keep` is true.
    fn retain(&mut self, keep: &[bool]) {
        fn filter<T: Copy>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        match self {
            Column::Text { codes, .. } => filter(codes, keep),
            Column::Date(v) | Column::Int(v) => filter(v, keep),
        }
    }

    /// Row `i`'s cell as 32 raw bits: the dictionary code, or the day or number.
    fn raw(&self, i: usize) -> u32 {
        match self {
            Column::Text { codes, .. } => codes[i],
            Column::Date(v) | Column::Int(v) => v[i] as u32,
        }
    }

    /// Writes the cell whose raw bits are `raw` into `out` (cleared first).
    fn cell_raw(&self, raw: u32, out: &mut String) {
        out.clear();
        match self {
            Column::Text { dict, .. } => {
                if raw != MISSING {
                    out.push_str(&dict[raw as usize]);
                }
            }
            Column::Date(_) | Column::Int(_) => {
                let v = raw as i32;
                if v == NO_DAY {
                } else if matches!(self, Column::Date(_)) {
                    format_day(v, out);
                } else {
                    use std::fmt::Write;
                    let _ = write!(out, "{v}");
                }
            }
        }
    }

    /// A class key part for the k-anonymity check: the code of the released value.
    fn class_code(&self, i: usize) -> u64 {
        match self {
            Column::Text { codes, .. } => u64::from(codes[i]),
            Column::Date(v) | Column::Int(v) => v[i] as u32 as u64,
        }
    }

    fn shown(&self, code: u64) -> String {
        match self {
            Column::Text { dict, .. } => dict
                .get(code as usize)
                .map_or_else(|| "missing".to_owned(), |s| s.to_string()),
            Column::Date(_) | Column::Int(_) => {
                let mut s = String::new();
                self.cell_raw(code as u32, &mut s);
                if s.is_empty() { "missing".into() } else { s }
            }
        }
    }
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

fn format_day(days: i32, out: &mut String) {
    use std::fmt::Write;
    let (y, m, d) = civil(days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// A table: named columns, and for a source table the subject of each row.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub fields: Vec<String>,
    pub columns: Vec<Column>,
    /// The subject (its position in the subjects' table) of each row; empty for the subjects.
    pub subject: Vec<u32>,
    /// Rows in the table.
    pub rows: usize,
}

impl Table {
    fn column(&self, field: &str) -> Option<&Column> {
        self.fields
            .iter()
            .position(|f| f == field)
            .map(|i| &self.columns[i])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {problem}")]
    Bad {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error(transparent)]
    Blocked(#[from] anonymise::Blocked),
    #[error(transparent)]
    Release(#[from] ReleaseError),
}

/// Reads a CSV file record by record, reusing its buffers (RFC 4180; a quoted field may hold
/// commas, doubled quotes and line breaks).
struct CsvReader {
    path: PathBuf,
    input: std::io::BufReader<std::fs::File>,
    line: String,
    cells: Vec<String>,
    used: usize,
    line_no: usize,
}

impl CsvReader {
    fn open(path: &Path) -> Result<CsvReader, BulkError> {
        let file = std::fs::File::open(path).map_err(|source| BulkError::Io {
            path: path.into(),
            source,
        })?;
        Ok(CsvReader {
            path: path.into(),
            input: std::io::BufReader::with_capacity(1 << 20, file),
            line: String::with_capacity(512),
            cells: Vec::new(),
            used: 0,
            line_no: 0,
        })
    }

    fn bad(&self, problem: impl Into<String>) -> BulkError {
        BulkError::Bad {
            path: self.path.clone(),
            line: self.line_no,
            problem: problem.into(),
        }
    }

    /// The header's cells (a byte-order mark before the first one skipped).
    fn header(&mut self) -> Result<Vec<String>, BulkError> {
        match self.next()? {
            Some((_, cells)) => {
                let mut cells = cells.to_vec();
                if let Some(first) = cells.first_mut() {
                    *first = first.trim_start_matches('\u{feff}').to_owned();
                }
                Ok(cells)
            }
            None => Err(self.bad("the file is empty")),
        }
    }

    /// The next record of `width` cells, blank lines skipped; a record of another width is an
    /// error naming its line.
    fn row(&mut self, width: usize) -> Result<Option<&[String]>, BulkError> {
        loop {
            let (line, got, blank) = match self.next()? {
                None => return Ok(None),
                Some((line, cells)) => (
                    line,
                    cells.len(),
                    cells.len() == 1 && cells[0].trim().is_empty(),
                ),
            };
            if blank {
                continue;
            }
            if got != width {
                return Err(BulkError::Bad {
                    path: self.path.clone(),
                    line,
                    problem: format!("{got} fields, the header has {width}"),
                });
            }
            return Ok(Some(&self.cells[..self.used]));
        }
    }

    /// The next record's line number and cells, or `None` at the end.
    fn next(&mut self) -> Result<Option<(usize, &[String])>, BulkError> {
        self.line.clear();
        let read = |r: &mut Self| {
            r.input
                .read_line(&mut r.line)
                .map_err(|source| BulkError::Io {
                    path: r.path.clone(),
                    source,
                })
        };
        if read(self)? == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        // A quoted field may run over line breaks: read on while the quotes are open, but not
        // for ever (a stray quote must not swallow the rest of the file).
        let quotes = |s: &str| s.bytes().filter(|b| *b == b'"').count();
        let mut open = quotes(&self.line) % 2 == 1;
        let mut extra = 0;
        while open {
            let before = self.line.len();
            if extra == 100 || read(self)? == 0 {
                return Err(self.bad("a quoted field is never closed"));
            }
            extra += 1;
            self.line_no += 1;
            open ^= quotes(&self.line[before..]) % 2 == 1;
        }
        let text = self.line.trim_end_matches(['\n', '\r']);
        self.used = 0;
        let put = |cells: &mut Vec<String>, used: &mut usize, s: &str| {
            if *used == cells.len() {
                cells.push(String::new());
            }
            cells[*used].clear();
            cells[*used].push_str(s);
            *used += 1;
        };
        if !text.contains('"') {
            for cell in text.split(',') {
                put(&mut self.cells, &mut self.used, cell);
            }
        } else {
            let records = crate::csv_import::parse_csv(text).map_err(|_| BulkError::Bad {
                path: self.path.clone(),
                line: self.line_no,
                problem: "a quoted field is never closed".into(),
            })?;
            for cell in records.into_iter().flatten() {
                put(&mut self.cells, &mut self.used, &cell);
            }
        }
        Ok(Some((self.line_no, &self.cells[..self.used])))
    }
}

/// What a column of an input file becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Code,
    PreviousCode,
    /// An identifier other than the code: skipped as the row is read (p.17.3).
    Skip,
    /// Kept: the index of its column in the table.
    Keep(usize),
}

/// The roles of a file's header columns, and the table it fills.
fn plan_header(
    reader: &CsvReader,
    header: &[String],
    source: Source,
) -> Result<(Vec<Role>, Table), BulkError> {
    let mut roles = Vec::with_capacity(header.len());
    let mut table = Table {
        name: if source == Source::ServiceIs {
            "subjects".into()
        } else {
            source_name(source).into()
        },
        fields: Vec::new(),
        columns: Vec::new(),
        subject: Vec::new(),
        rows: 0,
    };
    for h in header {
        let h = h.trim();
        let field = crate::linkage::answered_field(source, h)
            .filter(|_| h != "personal_code" && h != "previous_personal_code");
        roles.push(match (h, field) {
            ("personal_code", _) => Role::Code,
            ("previous_personal_code", _) if source == Source::ServiceIs => Role::PreviousCode,
            (_, Some(f)) if f.class == FieldClass::Identifier => Role::Skip,
            (_, Some(f)) => {
                table.fields.push(h.to_owned());
                table.columns.push(if f.class == FieldClass::Date {
                    Column::Date(Vec::new())
                } else {
                    Column::text()
                });
                Role::Keep(table.columns.len() - 1)
            }
            (_, None) => {
                // Not named: without a header row the cell would be a client's data.
                return Err(reader.bad(format!(
                    "column {} is not a field of {} in the catalogue (is the header row missing?)",
                    roles.len() + 1,
                    source.title()
                )));
            }
        });
    }
    if !roles.contains(&Role::Code) {
        return Err(reader.bad("there is no `personal_code` column (MK403 p.12.1)"));
    }
    Ok((roles, table))
}

/// The linked study: the subjects and each source's rows under their subject, none of them
/// holding an identifier; the blind index that linked them.
pub struct Linked {
    pub subjects: Table,
    pub sources: Vec<Table>,
    pub linker: Option<Linker>,
    pub report: LinkageReport,
    /// Date cells that were not dates (kept as missing), per table.
    pub bad_dates: HashMap<String, usize>,
}

/// Links the sources' rows to the subjects of `clients` (the Service IS extraction) through
/// the blind index under `keys`.
pub fn link(
    keys: &StudyKeys,
    clients: &Path,
    sources: &[(Source, &Path)],
) -> Result<Linked, BulkError> {
    let mut r = CsvReader::open(clients)?;
    let header = r.header()?;
    let (roles, mut subjects) = plan_header(&r, &header, Source::ServiceIs)?;
    let mut linker = Linker::new(keys, 1 << 16);
    let mut bad_dates: HashMap<String, usize> = HashMap::new();
    let mut n: u32 = 0;
    let mut code = String::new();
    let mut previous = String::new();
    while let Some(cells) = r.row(roles.len())? {
        code.clear();
        previous.clear();
        for (role, cell) in roles.iter().zip(cells) {
            match role {
                Role::Code => code.push_str(cell.trim()),
                Role::PreviousCode => previous.push_str(cell.trim()),
                Role::Skip => {}
                Role::Keep(i) => {
                    if !subjects.columns[*i].push(cell.trim()) {
                        *bad_dates.entry("subjects".into()).or_default() += 1;
                    }
                }
            }
        }
        linker.add(
            n,
            &code,
            (!previous.is_empty()).then_some(previous.as_str()),
        );
        n += 1;
    }
    subjects.rows = n as usize;
    let mut report = LinkageReport {
        subjects: n as usize,
        ..LinkageReport::default()
    };
    let mut by_previous = vec![false; n as usize];
    let mut tables = Vec::new();
    for (source, path) in sources {
        let mut r = CsvReader::open(path)?;
        let header = r.header()?;
        let (roles, mut table) = plan_header(&r, &header, *source)?;
        let code_at = roles.iter().position(|x| *x == Role::Code).unwrap_or(0);
        let mut counts = SourceReport::default();
        while let Some(cells) = r.row(roles.len())? {
            counts.rows += 1;
            let subject = match linker.find(cells[code_at].trim()) {
                Found::None => {
                    counts.unlinked += 1;
                    continue;
                }
                Found::Ambiguous => {
                    counts.ambiguous += 1;
                    continue;
                }
                Found::One {
                    subject,
                    by_previous: p,
                } => {
                    by_previous[subject as usize] |= p;
                    subject
                }
            };
            counts.linked += 1;
            table.subject.push(subject);
            for (role, cell) in roles.iter().zip(cells) {
                if let Role::Keep(i) = role
                    && !table.columns[*i].push(cell.trim())
                {
                    *bad_dates.entry(table.name.clone()).or_default() += 1;
                }
            }
        }
        table.rows = table.subject.len();
        report.sources.insert(table.name.clone(), counts);
        tables.push(table);
    }
    report.linked_by_previous_code = by_previous.iter().filter(|b| **b).count();
    Ok(Linked {
        subjects,
        sources: tables,
        linker: Some(linker),
        report,
        bad_dates,
    })
}

/// What the deletion of identifiers removed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deleted {
    /// Blind indexes dropped (the only trace of the codes the linkage kept).
    pub blind_indexes: usize,
    /// Extraction and answer files deleted (overwritten first).
    pub files: usize,
    pub bytes: u64,
}

/// Deletes the identifiers right after linkage (p.17.3): the blind index, and the extraction
/// and answer files that hold the codes in plaintext, overwritten before they are removed.
pub fn delete_identifiers(linked: &mut Linked, files: &[&Path]) -> Result<Deleted, BulkError> {
    let blind_indexes = linked.linker.take().map_or(0, |l| l.len());
    let mut bytes = 0;
    for f in files {
        bytes += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        crate::contact::shred(f).map_err(|source| BulkError::Io {
            path: f.to_path_buf(),
            source,
        })?;
    }
    Ok(Deleted {
        blind_indexes,
        files: files.len(),
        bytes,
    })
}

/// The anonymised study, ready for release.
pub struct Anonymised {
    /// The study ID of each subject that is released (suppressed subjects are gone).
    pub study_ids: Vec<String>,
    pub tables: Vec<Table>,
    pub report: KReport,
}

/// A date column treated by the policy; `anchor` is each row's anchor day.
fn treat_dates(column: Column, policy: DatePolicy, anchor: impl Fn(usize) -> i32) -> Column {
    let Column::Date(days) = &column else {
        return column;
    };
    match policy {
        DatePolicy::Keep => column,
        DatePolicy::Month => {
            let mut out = Column::text();
            let mut month = String::new();
            for &d in days {
                month.clear();
                if d != NO_DAY {
                    let (y, m, _) = civil(d);
                    month = anonymise::month(jiff::civil::Date::constant(y as i16, m as i8, 1));
                }
                out.push(&month);
            }
            out
        }
        DatePolicy::RelativeToAnchor => Column::Int(
            days.iter()
                .enumerate()
                .map(|(i, &d)| {
                    let a = anchor(i);
                    // No anchor: the date cannot be made relative and is not released.
                    if d == NO_DAY || a == NO_DAY {
                        NO_DAY
                    } else {
                        d - a
                    }
                })
                .collect(),
        ),
    }
}

/// A text column released in bands of `width` (values that are not whole numbers stay).
fn treat_bands(column: Column, width: i64) -> Column {
    let Column::Text { dict, codes, .. } = &column else {
        return column;
    };
    let banded: Vec<String> = dict
        .iter()
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_or_else(|_| v.to_string(), |n| anonymise::band(n, width))
        })
        .collect();
    let mut out = Column::text();
    for &c in codes {
        out.push(if c == MISSING {
            ""
        } else {
            &banded[c as usize]
        });
    }
    drop(column);
    out
}

/// Anonymises the linked study by `policy` (p.7): study IDs under `secret`, dates and bands
/// as the policy says, then k-anonymity over the quasi-identifiers of the subjects — blocked,
/// or with suppression the small classes removed together with all their rows.
pub fn anonymise(
    linked: Linked,
    policy: &Policy,
    secret: &[u8; 32],
) -> Result<Anonymised, BulkError> {
    let Linked {
        subjects, sources, ..
    } = linked;
    let anchor: Vec<i32> = match policy
        .anchor_field
        .as_deref()
        .and_then(|a| subjects.column(a))
    {
        Some(Column::Date(d)) => d.clone(),
        _ => vec![NO_DAY; subjects.rows],
    };
    let treat = |mut t: Table, subject_of: &dyn Fn(usize) -> usize| -> Table {
        let columns = std::mem::take(&mut t.columns)
            .into_iter()
            .zip(&t.fields)
            .map(|(c, f)| {
                let c = treat_dates(c, policy.date_policy, |i| anchor[subject_of(i)]);
                match policy.bands.get(f) {
                    Some(w) => treat_bands(c, *w),
                    None => c,
                }
            })
            .collect();
        Table { columns, ..t }
    };
    let mut subjects = treat(subjects, &|i| i);
    // k-anonymity over the released values of the quasi-identifiers.
    // In the policy's order; a quasi-identifier the data lacks is missing for everyone.
    let qi: Vec<Option<&Column>> = policy
        .quasi_identifiers
        .iter()
        .map(|q| subjects.column(q))
        .collect();
    let key = |i: usize| -> Vec<u64> {
        qi.iter()
            .map(|c| c.map_or(u64::MAX, |c| c.class_code(i)))
            .collect()
    };
    let mut sizes: HashMap<Vec<u64>, usize> = HashMap::with_capacity(1024);
    for i in 0..subjects.rows {
        *sizes.entry(key(i)).or_default() += 1;
    }
    let mut report = anonymise::k_report(&sizes, subjects.rows, policy, |k| {
        k.iter()
            .enumerate()
            .map(|(j, code)| {
                qi.get(j)
                    .copied()
                    .flatten()
                    .map_or_else(|| "missing".to_owned(), |c| c.shown(*code))
            })
            .collect()
    })?;
    let keep: Vec<bool> = (0..subjects.rows)
        .map(|i| sizes.get(&key(i)).is_some_and(|n| *n >= report.k))
        .collect();
    drop(qi);
    report.suppressed = keep.iter().filter(|k| !**k).count();
    // New positions of the kept subjects, and their study IDs.
    use std::fmt::Write;
    let ids = StudyIds::new(secret);
    let mut position = vec![u32::MAX; subjects.rows];
    let mut study_ids = Vec::with_capacity(subjects.rows - report.suppressed);
    let mut subject_key = String::new();
    for (i, k) in keep.iter().enumerate() {
        if *k {
            position[i] = study_ids.len() as u32;
            // The subject's key as the extraction numbers it (as `csv_import` does).
            subject_key.clear();
            let _ = write!(subject_key, "S{:06}", i + 1);
            study_ids.push(ids.of(&subject_key));
        }
    }
    for c in &mut subjects.columns {
        c.retain(&keep);
    }
    subjects.rows = study_ids.len();
    let mut tables = vec![subjects];
    for t in sources {
        let subject = t.subject.clone();
        let mut t = treat(t, &|i| subject[i] as usize);
        let keep_rows: Vec<bool> = t.subject.iter().map(|s| keep[*s as usize]).collect();
        for c in &mut t.columns {
            c.retain(&keep_rows);
        }
        t.subject = t
            .subject
            .iter()
            .filter(|s| keep[**s as usize])
            .map(|s| position[*s as usize])
            .collect();
        t.rows = t.subject.len();
        tables.push(t);
    }
    Ok(Anonymised {
        study_ids,
        tables,
        report,
    })
}

/// Writes the release (p.30): a CSV per table under the study IDs, the codebook and the
/// manifest, whole or not at all.
pub fn release(anonymised: &Anonymised, folder: &Path) -> Result<Written, BulkError> {
    let schema: Vec<(&str, Vec<&str>)> = anonymised
        .tables
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.fields.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let mut b = Builder::begin(folder, &schema)?;
    // Rows in the order of their study IDs, as the step bodies write them: nothing of the
    // sources' order (which follows the Service IS) shows through. A subject's rows keep their
    // order among themselves.
    let ids = &anonymised.study_ids;
    // Sorted on the IDs' leading 64 bits (fixed-length hex, so the same order as the text),
    // the text itself only on a tie: no chasing a million strings through the heap.
    let lead = |id: &str| {
        id.get(2..18)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    let mut keyed: Vec<(u64, u32)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (lead(id), i as u32))
        .collect();
    keyed.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| ids[a.1 as usize].cmp(&ids[b.1 as usize]))
    });
    let by_id: Vec<u32> = keyed.into_iter().map(|(_, i)| i).collect();
    let mut rank = vec![0u32; ids.len()];
    for (r, s) in by_id.iter().enumerate() {
        rank[*s as usize] = r as u32;
    }
    let mut cells: Vec<String> = Vec::new();
    for t in &anonymised.tables {
        let mut w = b.table(&t.name)?;
        let width = t.columns.len();
        cells.resize(width, String::new());
        // (rank of the row's subject, row), sorted: the write order. Pairs sort in cache.
        let mut order: Vec<(u32, u32)> = (0..t.rows)
            .map(|i| {
                let subject = if t.subject.is_empty() {
                    i
                } else {
                    t.subject[i] as usize
                };
                (rank[subject], i as u32)
            })
            .collect();
        order.sort_unstable();
        // The rows packed one after another, read column by column in source order, so the
        // write in study-ID order fetches one row at a time instead of a cell per column.
        let mut packed = vec![0u32; t.rows * width];
        for i in 0..t.rows {
            for (j, c) in t.columns.iter().enumerate() {
                packed[i * width + j] = c.raw(i);
            }
        }
        for (r, i) in order {
            let row = &packed[i as usize * width..(i as usize + 1) * width];
            for ((c, cell), raw) in t.columns.iter().zip(cells.iter_mut()).zip(row) {
                c.cell_raw(*raw, cell);
            }
            w.row(
                &ids[by_id[r as usize] as usize],
                cells.iter().map(String::as_str),
            )?;
        }
        w.finish()?;
    }
    Ok(b.finish()?)
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
            let epoch = jiff::civil::date(1970, 1, 1);
            assert_eq!(i64::from(d), (j - epoch).get_days() as i64, "{s}");
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
}
