//! Merge and linkage (MK403 p.17.1–17.2) and the deletion of identifiers right after it
//! (p.17.3): the one linkage of every study, whatever its size.
//!
//! The Service IS supplies the subjects; the Information Centre answers per criminal
//! proceeding and the Prison Administration per ruling, each row naming its subject by personal
//! code. Rows are joined on a keyed blind index of the personal code — the current code or the
//! previous one (p.12.1) — never on the code itself, so the join works on values that say
//! nothing without the study's index key. The linked study ([`LinkedTables`]) carries no
//! identifier at all: the codes go only into the blind index, which is dropped as the linkage
//! finishes, and proceeding, ruling and case numbers are skipped as each row is read (p.17.3).
//! The report counts what was linked, what matched no subject and what matched more than one,
//! and never names an identifier.
//!
//! One core ([`Linking`]) does it, fed row by row by either of two readers of the same input:
//! the engine's datasets of imported and checked rows ([`link`]), and the sources' CSV files
//! streamed from disk for a study of a million clients ([`link_files`]). A source's rows are
//! read into its table apart from the subjects and meet them at the end
//! ([`Linking::finish`]), so the files of a large study are read side by side.

use crate::values::Values;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use studyflow_spec::catalogue::{self, FieldClass, Source};

use crate::table::Table;
use crate::vault::StudyKeys;

/// A subject from the Service IS: its key in the study, its codes, and its values by
/// catalogue key (identifiers among them are dropped by the linkage).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    pub key: String,
    pub personal_code: String,
    pub previous_personal_code: Option<String>,
    pub values: Values,
}

/// A row of an institution's answer: the personal code it names and its values by catalogue key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AnswerRow {
    pub source: Source,
    pub personal_code: String,
    pub values: Values,
}

/// What linkage did, per source. Counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceReport {
    pub rows: usize,
    pub linked: usize,
    /// Rows whose personal code matched no subject of the study.
    pub unlinked: usize,
    /// Rows whose code matched more than one subject (a code that was another's previous
    /// one): not linked, since linking them to either could be wrong.
    pub ambiguous: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkageReport {
    pub subjects: usize,
    /// Subjects found by their previous personal code (p.12.1).
    pub linked_by_previous_code: usize,
    pub sources: BTreeMap<String, SourceReport>,
    /// Blind indexes the linkage held and dropped as it finished (p.17.3).
    #[serde(default)]
    pub blind_indexes: usize,
    /// Table → field → date cells that were not dates (never released; the quality report
    /// counts them as impossible values, p.18).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unreadable_dates: BTreeMap<String, BTreeMap<String, usize>>,
}

/// The linked study: the subjects and each source's rows under their subject, none of them
/// holding an identifier. Sealed while it is kept (pseudonymised data, p.17.3, p.26).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LinkedTables {
    /// Each subject's key in the study (`S000001`: its row in the extraction), by position;
    /// never an identifier. The study IDs are derived from it (p.7).
    pub keys: Vec<String>,
    pub subjects: Table,
    /// One table per source, by name.
    pub sources: Vec<Table>,
    pub report: LinkageReport,
}

pub fn source_name(s: Source) -> &'static str {
    match s {
        Source::ServiceIs => "service_is",
        Source::InformationCentre => "information_centre",
        Source::PrisonRulings => "prison_rulings",
        Source::PrisonResocialisation => "prison_resocialisation",
    }
}

/// The catalogue's field `key` of what `source` answers: the Prison Administration answers its
/// rulings (p.15) and the resocialisation (p.16) in one row.
pub fn answered_field(source: Source, key: &str) -> Option<&'static catalogue::Field> {
    catalogue::lookup(source, key).or_else(|| {
        (source == Source::PrisonRulings)
            .then(|| catalogue::lookup(Source::PrisonResocialisation, key))
            .flatten()
    })
}

/// Hashes a blind index by its first eight bytes: an HMAC output is uniform already, and a
/// general-purpose hash over 32 bytes for each of millions of rows is wasted work.
#[derive(Debug, Clone, Copy, Default)]
struct IndexHash;

impl std::hash::BuildHasher for IndexHash {
    type Hasher = First8;
    fn build_hasher(&self) -> First8 {
        First8(0)
    }
}

#[derive(Debug, Clone, Copy)]
struct First8(u64);

impl std::hash::Hasher for First8 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut first = [0u8; 8];
        let n = bytes.len().min(8);
        first[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(first);
    }

    // The array's length, hashed before its bytes, says nothing.
    fn write_usize(&mut self, _: usize) {}
}

/// Where a blind index leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// One subject; `true` when only through its previous code.
    One(u32, bool),
    /// More than one subject: never linked (a code that was another's previous one).
    Many,
}

/// What a code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    None,
    /// The subject at this position; `by_previous` when it matched the previous code only.
    One {
        subject: u32,
        by_previous: bool,
    },
    Ambiguous,
}

/// The blind index of a code under `indexer`; `None` for a code without a digit: the index
/// meets codes by their digits (with or without the hyphen), so a code without one would meet
/// every other code without one.
fn index_with(indexer: &crate::vault::BlindIndexer, code: &str) -> Option<[u8; 32]> {
    code.bytes()
        .any(|b| b.is_ascii_digit())
        .then(|| indexer.index(code))
}

/// The keyed blind index of the subjects' codes, current and previous (p.12.1): the linkage of
/// [`Linking`]. It holds indexes, never a code.
pub struct Linker {
    indexer: crate::vault::BlindIndexer,
    slots: HashMap<[u8; 32], Slot, IndexHash>,
}

impl Linker {
    pub fn new(keys: &StudyKeys, capacity: usize) -> Linker {
        Linker {
            indexer: keys.blind_indexer("personal_code"),
            slots: HashMap::with_capacity_and_hasher(capacity, IndexHash),
        }
    }

    /// The blind index of a code, `None` for a code without a digit (see [`Linker::find`]).
    pub fn index(&self, code: &str) -> Option<[u8; 32]> {
        index_with(&self.indexer, code)
    }

    /// The indexer, for a thread that computes the indexes of a file's rows while this one
    /// links them.
    pub fn indexer(&self) -> crate::vault::BlindIndexer {
        self.indexer.clone()
    }

    /// Adds subject `subject` with its code and previous code.
    pub fn add(&mut self, subject: u32, code: &str, previous: Option<&str>) {
        let (code, previous) = (self.index(code), previous.and_then(|p| self.index(p)));
        self.add_indexed(subject, code, previous);
    }

    /// Adds subject `subject` by the blind indexes of its code and previous code.
    pub fn add_indexed(
        &mut self,
        subject: u32,
        code: Option<[u8; 32]>,
        previous: Option<[u8; 32]>,
    ) {
        let mut put = |index: [u8; 32], by_previous: bool| {
            self.slots
                .entry(index)
                .and_modify(|slot| {
                    *slot = match *slot {
                        Slot::One(s, p) if s == subject => Slot::One(s, p && by_previous),
                        _ => Slot::Many,
                    }
                })
                .or_insert(Slot::One(subject, by_previous));
        };
        if let Some(code) = code {
            put(code, false);
        }
        if let Some(previous) = previous {
            put(previous, true);
        }
    }

    /// The subject a code leads to. A code without a digit (`-`, `n/a`, empty) leads nowhere:
    /// codes meet by their digits, and no subject is indexed under none.
    pub fn find(&self, code: &str) -> Found {
        self.find_indexed(self.index(code))
    }

    /// The subject a blind index leads to ([`Linker::index`]).
    pub fn find_indexed(&self, index: Option<[u8; 32]>) -> Found {
        let Some(index) = index else {
            return Found::None;
        };
        match self.slots.get(&index) {
            None => Found::None,
            Some(Slot::One(subject, by_previous)) => Found::One {
                subject: *subject,
                by_previous: *by_previous,
            },
            Some(Slot::Many) => Found::Ambiguous,
        }
    }

    /// How many indexes it holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// What an input column becomes in the linked table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Code,
    PreviousCode,
    /// An identifier other than the code, or — in the engine's rows — a name the catalogue
    /// does not know: skipped as the row is read (p.17.3, p.24).
    Skip,
    /// Kept: the index of its column in the table.
    Keep(usize),
}

/// Why an input cannot be linked: what and where, never a cell.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {problem}")]
    Bad {
        path: PathBuf,
        line: u64,
        problem: String,
    },
}

/// The cells of an input row, by position.
pub trait Cells {
    fn cell(&self, i: usize) -> &str;
}

impl Cells for csv::StringRecord {
    fn cell(&self, i: usize) -> &str {
        self.get(i).unwrap_or_default()
    }
}

impl Cells for [String] {
    fn cell(&self, i: usize) -> &str {
        self.get(i).map_or("", String::as_str)
    }
}

/// The roles of `names` (an input's columns) for `source`, and the empty table they fill: the
/// kept columns in name order, whatever the input's order. `strict` (a file): a column the
/// source does not have, a column named twice and a missing `personal_code` refuse the input;
/// otherwise (the engine's checked rows) an unknown name is skipped.
fn layout(source: Source, names: &[&str], strict: bool) -> Result<(Vec<Role>, Table), String> {
    let mut table = Table::new(if source == Source::ServiceIs {
        "subjects"
    } else {
        source_name(source)
    });
    let mut roles = Vec::with_capacity(names.len());
    let mut kept: Vec<(&str, usize)> = Vec::new();
    for (i, h) in names.iter().enumerate() {
        let h = h.trim();
        if strict && names[..i].iter().any(|e| e.trim() == h) {
            return Err(format!("column {} repeats an earlier column's name", i + 1));
        }
        roles.push(match (h, answered_field(source, h)) {
            ("personal_code", _) => Role::Code,
            ("previous_personal_code", _) if source == Source::ServiceIs => Role::PreviousCode,
            (_, Some(f)) if f.class == FieldClass::Identifier => Role::Skip,
            (_, Some(_)) => {
                kept.push((h, i));
                Role::Skip
            }
            // Not named: without a header row the cell would be a client's data.
            (_, None) if strict => {
                return Err(format!(
                    "column {} is not a field of {} in the catalogue (is the header row missing?)",
                    i + 1,
                    source.title()
                ));
            }
            (_, None) => Role::Skip,
        });
    }
    if strict && !roles.contains(&Role::Code) {
        return Err("there is no `personal_code` column (MK403 p.12.1)".into());
    }
    kept.sort();
    for (field, i) in kept {
        roles[i] = Role::Keep(table.add_column(field, crate::table::Column::for_field(field)));
    }
    Ok((roles, table))
}

/// A source's rows as read, before they meet the subjects: its roles, its table, where its code
/// is, and the blind index of each run of rows with one code (a register answers a person's
/// proceedings one after another). Filled apart from the subjects — a file of answers on a
/// thread of its own while the subjects are indexed — and linked by [`Linking::finish`].
struct Linkee {
    roles: Vec<Role>,
    table: Table,
    code_at: usize,
    /// The index of each run's code and the run's first row.
    runs: Vec<(Option<[u8; 32]>, u32)>,
    /// The cells that are not what their column holds (a date that is not one), by row and
    /// column: counted for the rows that are linked.
    unreadable: Vec<(u32, u32)>,
}

impl Linkee {
    fn new(source: Source, names: &[&str], strict: bool) -> Result<Linkee, String> {
        let (roles, table) = layout(source, names, strict)?;
        let code_at = roles
            .iter()
            .position(|r| *r == Role::Code)
            .unwrap_or(usize::MAX);
        Ok(Linkee {
            roles,
            table,
            code_at,
            runs: Vec::new(),
            unreadable: Vec::new(),
        })
    }

    /// Adds a row whose code has the blind index `code`.
    fn push(&mut self, cells: &(impl Cells + ?Sized), code: Option<[u8; 32]>) {
        let row = self.table.rows as u32;
        if self.runs.last().is_none_or(|(last, _)| *last != code) {
            self.runs.push((code, row));
        }
        for (i, role) in self.roles.iter().enumerate() {
            if let Role::Keep(j) = role
                && !self.table.columns[*j].push(cells.cell(i).trim())
            {
                self.unreadable.push((row, *j as u32));
            }
        }
        self.table.end_row();
    }

    /// Meets the rows with the subjects of `linker`: each linked row gets its subject (and
    /// marks it in `by_previous` when its code was the subject's previous one), a row of no
    /// subject or of several is counted and left out.
    fn link(
        self,
        linker: &Linker,
        by_previous: &mut [bool],
        report: &mut LinkageReport,
    ) -> (Table, SourceReport) {
        let Linkee {
            mut table,
            runs,
            unreadable,
            ..
        } = self;
        const NONE: u32 = u32::MAX;
        let mut counts = SourceReport {
            rows: table.rows,
            ..SourceReport::default()
        };
        let mut subject: Vec<u32> = Vec::with_capacity(table.rows);
        let ends = runs.iter().skip(1).map(|r| r.1).chain([table.rows as u32]);
        for (&(code, start), end) in runs.iter().zip(ends) {
            let n = (end - start) as usize;
            let s = match linker.find_indexed(code) {
                Found::None => {
                    counts.unlinked += n;
                    NONE
                }
                Found::Ambiguous => {
                    counts.ambiguous += n;
                    NONE
                }
                Found::One {
                    subject,
                    by_previous: previous,
                } => {
                    by_previous[subject as usize] |= previous;
                    counts.linked += n;
                    subject
                }
            };
            subject.extend(std::iter::repeat_n(s, n));
        }
        for (row, j) in unreadable {
            if subject[row as usize] != NONE {
                Linking::unreadable(report, &table.name, &table.fields[j as usize]);
            }
        }
        table.subject = subject;
        if counts.linked < table.rows {
            // Nothing of a row left out stays: not its cells, not its values in a dictionary.
            let kept: Vec<u32> = (0..table.rows as u32)
                .filter(|&i| table.subject[i as usize] != NONE)
                .collect();
            table = table.take(&kept, Some(&|s| s as u32));
        }
        (table, counts)
    }
}

/// The linkage core: subjects first, then each source's rows, then [`Linking::finish`], which
/// drops the blind index (p.17.3).
pub struct Linking {
    linker: Linker,
    keys: Vec<String>,
    roles: Vec<Role>,
    subjects: Table,
    sources: Vec<Linkee>,
    report: LinkageReport,
    by_previous: Vec<bool>,
}

impl Linking {
    /// Starts with the subjects' columns `names` (those of the Service IS extraction).
    pub fn new(keys: &StudyKeys, names: &[&str], strict: bool) -> Result<Linking, String> {
        let (roles, subjects) = layout(Source::ServiceIs, names, strict)?;
        Ok(Linking {
            linker: Linker::new(keys, 1 << 16),
            keys: Vec::new(),
            roles,
            subjects,
            sources: Vec::new(),
            report: LinkageReport::default(),
            by_previous: Vec::new(),
        })
    }

    /// Makes room for up to `n` more subjects at once: a million clients' index grown by
    /// doubling rehashes it twenty times over, each time into fresh memory. At most
    /// [`RESERVED`] ahead (a file of blank lines promises records it does not hold), and
    /// nothing when the memory is not there: then the index grows as it is filled.
    fn reserve(&mut self, n: usize) {
        let n = n.min(RESERVED);
        // A few per cent of clients bring a previous code, each an index of its own.
        if self.linker.slots.try_reserve(n + n / 16).is_ok() {
            let _ = self.keys.try_reserve(n);
            let _ = self.by_previous.try_reserve(n);
        }
    }

    fn unreadable(report: &mut LinkageReport, table: &str, field: &str) {
        *report
            .unreadable_dates
            .entry(table.to_owned())
            .or_default()
            .entry(field.to_owned())
            .or_default() += 1;
    }

    /// Where the subjects' code and previous code are among their cells.
    fn subject_codes(&self) -> [Option<usize>; 2] {
        [Role::Code, Role::PreviousCode].map(|r| self.roles.iter().position(|x| *x == r))
    }

    /// Adds a subject under its key in the study, with its cells in the order of `names`.
    pub fn subject(&mut self, key: String, cells: &(impl Cells + ?Sized)) {
        let [code, previous] = self
            .subject_codes()
            .map(|at| at.and_then(|i| self.linker.index(cells.cell(i))));
        self.subject_indexed(key, cells, code, previous);
    }

    /// [`Linking::subject`], with the blind indexes of its codes computed already.
    fn subject_indexed(
        &mut self,
        key: String,
        cells: &(impl Cells + ?Sized),
        code: Option<[u8; 32]>,
        previous: Option<[u8; 32]>,
    ) {
        let n = self.keys.len() as u32;
        for (i, role) in self.roles.iter().enumerate() {
            let cell = cells.cell(i).trim();
            match role {
                Role::Code | Role::PreviousCode | Role::Skip => {}
                Role::Keep(j) => {
                    if !self.subjects.columns[*j].push(cell) {
                        Self::unreadable(&mut self.report, "subjects", &self.subjects.fields[*j]);
                    }
                }
            }
        }
        self.subjects.end_row();
        self.linker.add_indexed(n, code, previous);
        self.keys.push(key);
        self.by_previous.push(false);
    }

    /// Starts a source whose rows have the columns `names`; its number for [`Linking::row`].
    pub fn source(
        &mut self,
        source: Source,
        names: &[&str],
        strict: bool,
    ) -> Result<usize, String> {
        self.add_source(source, Linkee::new(source, names, strict)?)
    }

    /// Adds a source's rows, read already or to come; its number for [`Linking::row`].
    fn add_source(&mut self, source: Source, linkee: Linkee) -> Result<usize, String> {
        if self
            .sources
            .iter()
            .any(|s| s.table.name == linkee.table.name)
        {
            return Err(format!("{} is given twice", source.title()));
        }
        self.sources.push(linkee);
        Ok(self.sources.len() - 1)
    }

    /// Adds a row of source `source`, to be linked to its subject by [`Linking::finish`], or
    /// counted as unlinked or ambiguous.
    pub fn row(&mut self, source: usize, cells: &(impl Cells + ?Sized)) {
        let s = &mut self.sources[source];
        let code = self.linker.index(cells.cell(s.code_at));
        s.push(cells, code);
    }

    /// The linked study: each source's rows meet their subjects; the blind index is dropped
    /// here (p.17.3).
    pub fn finish(self) -> LinkedTables {
        let Linking {
            linker,
            keys,
            subjects,
            sources: linkees,
            mut report,
            mut by_previous,
            ..
        } = self;
        let mut sources: Vec<Table> = Vec::with_capacity(linkees.len());
        for s in linkees {
            let (table, counts) = s.link(&linker, &mut by_previous, &mut report);
            report.sources.insert(table.name.clone(), counts);
            sources.push(table);
        }
        report.subjects = keys.len();
        report.linked_by_previous_code = by_previous.iter().filter(|b| **b).count();
        report.blind_indexes = linker.len();
        drop(linker);
        sources.sort_by(|a, b| a.name.cmp(&b.name));
        LinkedTables {
            keys,
            subjects,
            sources,
            report,
        }
    }
}

/// The names of a set of rows' values, after the code columns given first.
fn names_of<'v>(first: &[&'v str], rows: impl Iterator<Item = &'v Values>) -> Vec<&'v str> {
    let mut names: std::collections::BTreeSet<&str> = rows.flat_map(Values::keys).collect();
    for f in first {
        names.remove(f);
    }
    first.iter().copied().chain(names).collect()
}

/// The cells of a row of values in the order of `names` (the first `codes` given apart).
fn cells_of(codes: &[&str], names: &[&str], values: &Values, out: &mut Vec<String>) {
    out.clear();
    out.extend(codes.iter().map(|c| (*c).to_owned()));
    out.extend(
        names[codes.len()..]
            .iter()
            .map(|n| catalogue::value_text(values.get(n))),
    );
}

/// Links the engine's imported rows (the Service IS sample and the registries' checked
/// answers) through the blind index under `keys`.
pub fn link(keys: &StudyKeys, subjects: &[Subject], answers: &[AnswerRow]) -> LinkedTables {
    const CODES: [&str; 2] = ["personal_code", "previous_personal_code"];
    let names = names_of(&CODES, subjects.iter().map(|s| &s.values));
    // Known names only: a layout of the engine's rows cannot fail.
    let mut linking = Linking::new(keys, &names, false).expect("a lenient layout");
    linking.reserve(subjects.len());
    let mut cells = Vec::new();
    for s in subjects {
        let previous = s.previous_personal_code.as_deref().unwrap_or_default();
        cells_of(&[&s.personal_code, previous], &names, &s.values, &mut cells);
        linking.subject(s.key.clone(), cells.as_slice());
    }
    let mut order: Vec<Source> = Vec::new();
    for a in answers {
        if !order.contains(&a.source) {
            order.push(a.source);
        }
    }
    for source in order {
        let rows = || answers.iter().filter(move |a| a.source == source);
        let names = names_of(&CODES[..1], rows().map(|a| &a.values));
        let at = linking
            .source(source, &names, false)
            .expect("a lenient layout");
        for a in rows() {
            cells_of(&[&a.personal_code], &names, &a.values, &mut cells);
            linking.row(at, cells.as_slice());
        }
    }
    linking.finish()
}

/// A CSV file of a source, streamed record by record with the one CSV dialect
/// ([`crate::csvio`], its structure check included): its header, then records of the header's
/// width. A stray quote, a lone carriage return, a control character in a cell or a record of
/// another width refuses the file, naming the line (and column).
struct CsvFile {
    path: PathBuf,
    reader: csv::Reader<crate::csvio::Checked<std::io::BufReader<std::fs::File>>>,
    record: csv::StringRecord,
}

impl CsvFile {
    fn open(path: &Path) -> Result<(CsvFile, Vec<String>), LinkError> {
        let file = std::fs::File::open(path).map_err(|source| LinkError::Io {
            path: path.into(),
            source,
        })?;
        let mut f = CsvFile {
            path: path.into(),
            reader: crate::csvio::reader_builder().from_reader(crate::csvio::Checked::new(
                std::io::BufReader::with_capacity(1 << 20, file),
            )),
            record: csv::StringRecord::new(),
        };
        if !f.next(None)? {
            return Err(f.bad(1, "the file is empty"));
        }
        let mut header: Vec<String> = f.record.iter().map(str::to_owned).collect();
        if let Some(first) = header.first_mut() {
            *first = first.trim_start_matches('\u{feff}').to_owned();
        }
        Ok((f, header))
    }

    fn bad(&self, line: u64, problem: impl Into<String>) -> LinkError {
        LinkError::Bad {
            path: self.path.clone(),
            line,
            problem: problem.into(),
        }
    }

    /// Reads the next record (of `width` cells, when given) into `record`; `false` at the end.
    fn next(&mut self, width: Option<usize>) -> Result<bool, LinkError> {
        let mut record = std::mem::take(&mut self.record);
        let read = self.next_into(&mut record, width);
        self.record = record;
        read
    }

    fn next_into(
        &mut self,
        record: &mut csv::StringRecord,
        width: Option<usize>,
    ) -> Result<bool, LinkError> {
        let read = self.reader.read_record(record);
        let line = record.position().map_or(0, csv::Position::line);
        match read {
            Ok(false) => return Ok(false),
            Ok(true) => {}
            Err(e) => {
                return Err(match crate::csvio::malformed(&e) {
                    Some(m) => self.bad(m.line as u64, m.problem.clone()),
                    None => self.bad(
                        e.position().map_or(line, csv::Position::line),
                        "the file is not CSV",
                    ),
                });
            }
        }
        if let Some(w) = width
            && record.len() != w
        {
            return Err(self.bad(line, format!("{} fields, the header has {w}", record.len())));
        }
        // Printable ASCII throughout is clean; anything else is looked at cell by cell.
        if !printable_ascii(record.as_slice().as_bytes()) {
            for (i, cell) in record.iter().enumerate() {
                if let Some(what) = crate::csvio::forbidden_char(cell) {
                    return Err(self.bad(line, format!("column {}: the cell holds {what}", i + 1)));
                }
            }
        }
        Ok(true)
    }
}

/// Whether every byte is printable ASCII (0x20 to 0x7e). Without an early exit inside a chunk,
/// so the compiler can compare a chunk's bytes side by side: the reading thread checks every
/// byte of a million clients' files with it.
fn printable_ascii(bytes: &[u8]) -> bool {
    bytes.chunks(64).all(|chunk| {
        chunk
            .iter()
            .fold(0u8, |bad, &b| bad | u8::from(b.wrapping_sub(0x20) >= 0x5f))
            == 0
    })
}

/// Records read and indexed by the reading thread, handed to the linking one.
#[derive(Default)]
struct Batch {
    records: Vec<csv::StringRecord>,
    /// The blind indexes of each record's code and previous code.
    index: Vec<[Option<[u8; 32]>; 2]>,
    len: usize,
}

/// Records per batch.
const BATCH: usize = 4096;

/// Streams `file`'s records (of `width` cells) to `each` with the blind indexes of the cells at
/// `codes`: a second thread reads, checks and indexes (the CSV, its structure, the HMAC of each
/// code) while this one links, so a million clients take both cores. Batches go back to the
/// reader to be filled again; a few are in flight at most.
fn stream(
    file: CsvFile,
    width: usize,
    codes: [Option<usize>; 2],
    indexer: &crate::vault::BlindIndexer,
    mut each: impl FnMut(&csv::StringRecord, [Option<[u8; 32]>; 2]),
) -> Result<(), LinkError> {
    std::thread::scope(|scope| {
        let (full, filled) = std::sync::mpsc::sync_channel::<Result<Batch, LinkError>>(4);
        let (empty, emptied) = std::sync::mpsc::channel::<Batch>();
        scope.spawn(move || {
            let mut file = file;
            // Per code column: the last code seen and its index.
            let mut last: [(String, Option<[u8; 32]>); 2] = Default::default();
            loop {
                let mut batch = emptied.try_recv().unwrap_or_default();
                batch.len = 0;
                while batch.len < BATCH {
                    if batch.records.len() == batch.len {
                        batch.records.push(csv::StringRecord::new());
                        batch.index.push([None, None]);
                    }
                    match file.next_into(&mut batch.records[batch.len], Some(width)) {
                        Ok(true) => {
                            let record = &batch.records[batch.len];
                            for (k, at) in codes.iter().enumerate() {
                                let code = at.map_or("", |i| record.cell(i));
                                // A register answers a person's proceedings one after another:
                                // the same code as the row before has the same index.
                                if code != last[k].0 {
                                    last[k].0.clear();
                                    last[k].0.push_str(code);
                                    last[k].1 = at.and_then(|_| index_with(indexer, code));
                                }
                                batch.index[batch.len][k] = last[k].1;
                            }
                            batch.len += 1;
                        }
                        Ok(false) => break,
                        Err(e) => {
                            let _ = full.send(Err(e));
                            return;
                        }
                    }
                }
                let last = batch.len < BATCH;
                if full.send(Ok(batch)).is_err() || last {
                    return;
                }
            }
        });
        for batch in filled {
            let batch = batch?;
            for (record, index) in batch.records.iter().zip(&batch.index).take(batch.len) {
                each(record, *index);
            }
            let _ = empty.send(batch);
        }
        Ok(())
    })
}

/// The most subjects [`Linking::reserve`] makes room for ahead: a million (about 100 MiB of
/// index, keys and flags); a larger study's index grows past it as it is filled.
const RESERVED: usize = 1 << 20;

/// How many lines `path` has (at least as many as its records: a quoted cell may hold a line
/// break), counted in one pass over its bytes.
fn lines_in(path: &Path) -> std::io::Result<usize> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count();
    }
}

/// Links the sources' CSV files to the subjects of `clients` (the Service IS extraction)
/// through the blind index under `keys`, streaming them: a study of a million clients is never
/// held as text. A subject's key is its row in the extraction (`S000001`), as the engine's
/// import numbers it.
pub fn link_files(
    keys: &StudyKeys,
    clients: &Path,
    sources: &[(Source, &Path)],
) -> Result<LinkedTables, LinkError> {
    let (f, header) = CsvFile::open(clients)?;
    let names: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut linking = Linking::new(keys, &names, true).map_err(|p| f.bad(1, p))?;
    linking.reserve(lines_in(clients).map_err(|source| LinkError::Io {
        path: clients.into(),
        source,
    })?);
    // Every header first: a source that cannot be read is refused before anything is.
    let mut files = Vec::with_capacity(sources.len());
    for (source, path) in sources {
        let (f, header) = CsvFile::open(path)?;
        let names: Vec<&str> = header.iter().map(String::as_str).collect();
        let linkee = Linkee::new(*source, &names, true).map_err(|p| f.bad(1, p))?;
        if files
            .iter()
            .any(|(_, l): &(CsvFile, Linkee)| l.table.name == linkee.table.name)
        {
            return Err(f.bad(1, format!("{} is given twice", source.title())));
        }
        files.push((f, linkee));
    }
    let indexer = linking.linker.indexer();
    // Each source's file is read into its table on threads of its own while this one indexes
    // the subjects: the rows meet their subjects at the end, so no core waits for the other.
    let (subjects, read) = std::thread::scope(|scope| {
        let readers: Vec<_> = files
            .into_iter()
            .map(|(f, mut linkee)| {
                let indexer = &indexer;
                scope.spawn(move || {
                    let codes = [Some(linkee.code_at), None];
                    let width = linkee.roles.len();
                    stream(f, width, codes, indexer, |record, [code, _]| {
                        linkee.push(record, code)
                    })
                    .map(|()| linkee)
                })
            })
            .collect();
        let mut n = 0usize;
        let subjects = stream(
            f,
            names.len(),
            linking.subject_codes(),
            &indexer,
            |record, [code, previous]| {
                n += 1;
                linking.subject_indexed(format!("S{n:06}"), record, code, previous);
            },
        );
        let read: Vec<Result<Linkee, LinkError>> = readers
            .into_iter()
            .map(|r| r.join().expect("a source's reader does not panic"))
            .collect();
        (subjects, read)
    });
    subjects?;
    for ((source, _), linkee) in sources.iter().zip(read) {
        linking
            .add_source(*source, linkee?)
            .expect("each source once, as checked above");
    }
    Ok(linking.finish())
}

/// What the deletion of identifiers removed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deleted {
    /// Extraction and answer files deleted (overwritten first).
    pub files: usize,
    pub bytes: u64,
}

/// Deletes the files that hold the codes in plaintext right after linkage (p.17.3),
/// overwritten before they are removed (the blind index went with [`Linking::finish`]).
pub fn delete_files(files: &[&Path]) -> Result<Deleted, LinkError> {
    let mut bytes = 0;
    for f in files {
        bytes += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        crate::files::shred(f).map_err(|source| LinkError::Io {
            path: f.to_path_buf(),
            source,
        })?;
    }
    Ok(Deleted {
        files: files.len(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(v: serde_json::Value) -> Values {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn rows_meet_their_subject_by_current_or_previous_code_and_lose_their_identifiers() {
        let keys = StudyKeys::generate("link-test");
        let subjects = vec![
            Subject {
                key: "s1".into(),
                personal_code: "290758-10403".into(),
                previous_personal_code: None,
                values: values(
                    json!({"personal_code": "290758-10403", "case_number": "R-1", "sex": "male"}),
                ),
            },
            Subject {
                key: "s2".into(),
                personal_code: "325035-11782".into(),
                previous_personal_code: Some("010180-10006".into()),
                values: values(json!({"personal_code": "325035-11782", "sex": "female"})),
            },
        ];
        let row = |code: &str, source: Source, v: serde_json::Value| AnswerRow {
            source,
            personal_code: code.into(),
            values: values(v),
        };
        let answers = vec![
            row(
                "29075810403",
                Source::InformationCentre,
                json!({"proceeding_number": "11826001234", "offence_date": "2024-02-01"}),
            ),
            row(
                "010180-10006",
                Source::InformationCentre,
                json!({"proceeding_number": "11826009999", "offence_date": "2019-05-05"}),
            ),
            row(
                "111111-11111",
                Source::InformationCentre,
                json!({"proceeding_number": "11826000001"}),
            ),
            row(
                "325035-11782",
                Source::PrisonRulings,
                json!({"prison_admission_date": "2020-01-01"}),
            ),
        ];
        let linked = link(&keys, &subjects, &answers);
        let ic = &linked.report.sources["information_centre"];
        assert_eq!(
            (ic.rows, ic.linked, ic.unlinked, ic.ambiguous),
            (3, 2, 1, 0)
        );
        assert_eq!(linked.report.sources["prison_rulings"].linked, 1);
        assert_eq!(linked.report.linked_by_previous_code, 1);
        let ic_rows = &linked.sources[0];
        assert_eq!(ic_rows.name, "information_centre");
        assert_eq!(ic_rows.subject, [0, 1]);
        assert_eq!(linked.keys, ["s1", "s2"]);
        assert_eq!(linked.report.blind_indexes, 3);
        let everything = serde_json::to_string(&linked).unwrap();
        for id in ["290758", "325035", "010180", "11826", "R-1"] {
            assert!(!everything.contains(id), "{id} left in the linked dataset");
        }
        assert_eq!(
            linked.subjects.column("sex").unwrap().text_at(0),
            Some("male")
        );
        assert_eq!(
            linked.subjects.fields,
            ["sex"],
            "the case number is an identifier"
        );
    }

    /// The reading thread's check: printable ASCII, 0x20 to 0x7e, wherever a bad byte is.
    #[test]
    fn printable_ascii_is_space_to_tilde_in_every_chunk() {
        assert!(printable_ascii(b""));
        let clean: Vec<u8> = (0x20..0x7f).cycle().take(1000).collect();
        assert!(printable_ascii(&clean));
        // A bad byte at every position of a chunk and past it, at both edges of the range.
        for bad in [0x00, 0x09, 0x1f, 0x7f, 0x80, 0xc4, 0xff] {
            for at in [0, 1, 63, 64, 65, 999] {
                let mut bytes = clean.clone();
                bytes[at] = bad;
                assert!(!printable_ascii(&bytes), "{bad:#x} at {at}");
            }
        }
    }

    /// A code without a digit (`-`, `n/a`, empty) meets nobody: the blind index compares
    /// digits, and such a code would otherwise meet every other one without digits.
    #[test]
    fn a_code_without_digits_links_nobody() {
        let keys = StudyKeys::generate("link-test-3");
        let subjects = vec![Subject {
            key: "a".into(),
            personal_code: "290758-10403".into(),
            previous_personal_code: Some("-".into()),
            values: Values::new(),
        }];
        let answers: Vec<AnswerRow> = ["", "n/a", "-"]
            .into_iter()
            .map(|code| AnswerRow {
                source: Source::InformationCentre,
                personal_code: code.into(),
                values: Values::new(),
            })
            .collect();
        let r = link(&keys, &subjects, &answers).report;
        assert_eq!(r.sources["information_centre"].unlinked, 3);
        assert_eq!(r.blind_indexes, 1);
    }

    /// A row of nobody in the study leaves nothing behind: not its cells, not its value in a
    /// column's dictionary, not its unreadable date in the report; the rows of one code that
    /// come together, and again later, each meet their subject.
    #[test]
    fn a_row_left_out_leaves_nothing_and_runs_of_one_code_meet_their_subject() {
        let keys = StudyKeys::generate("link-test-4");
        let subjects = vec![Subject {
            key: "a".into(),
            personal_code: "290758-10403".into(),
            previous_personal_code: None,
            values: Values::new(),
        }];
        let row = |code: &str, authority: &str, date: &str| AnswerRow {
            source: Source::InformationCentre,
            personal_code: code.into(),
            values: values(json!({"initiating_authority": authority, "offence_date": date})),
        };
        let answers = vec![
            row("290758-10403", "Valsts policija", "2024-02-30"),
            row("290758-10403", "Valsts policija", "2024-02-01"),
            row("111111-11111", "Nobody's authority", "2024-02-31"),
            row("290758-10403", "Prokuratūra", "2024-03-01"),
        ];
        let linked = link(&keys, &subjects, &answers);
        let ic = &linked.report.sources["information_centre"];
        assert_eq!(
            (ic.rows, ic.linked, ic.unlinked, ic.ambiguous),
            (4, 3, 1, 0)
        );
        assert_eq!(
            linked.report.unreadable_dates["information_centre"]["offence_date"], 1,
            "the unlinked row's date is nobody's"
        );
        let t = &linked.sources[0];
        assert_eq!((t.rows, t.subject.as_slice()), (3, &[0, 0, 0][..]));
        let authority = t.column("initiating_authority").unwrap();
        assert_eq!(
            (0..3).map(|i| authority.text_at(i)).collect::<Vec<_>>(),
            [
                Some("Valsts policija"),
                Some("Valsts policija"),
                Some("Prokuratūra")
            ]
        );
        let everything = serde_json::to_string(&linked).unwrap();
        assert!(!everything.contains("Nobody"), "{everything}");
    }

    #[test]
    fn a_code_shared_through_a_previous_code_is_ambiguous_not_guessed() {
        let keys = StudyKeys::generate("link-test-2");
        let s = |key: &str, code: &str, prev: Option<&str>| Subject {
            key: key.into(),
            personal_code: code.into(),
            previous_personal_code: prev.map(str::to_owned),
            values: Values::new(),
        };
        let subjects = vec![
            s("a", "290758-10403", None),
            s("b", "325035-11782", Some("290758-10403")),
        ];
        let answers = vec![AnswerRow {
            source: Source::InformationCentre,
            personal_code: "290758-10403".into(),
            values: Values::new(),
        }];
        let r = link(&keys, &subjects, &answers).report;
        assert_eq!(r.sources["information_centre"].ambiguous, 1);
    }
}
