//! A release: anonymised tables as CSV files, a codebook (each column → catalogue key, source
//! and MK403 point) and a sha256 manifest, written into a release folder whole or not at all
//! (MK403 p.7, p.27, p.30, p.35).
//!
//! The folder is written under a temporary name and renamed when complete, so a crash leaves
//! no half release; an existing folder is never overwritten. A column that the catalogue marks
//! as an identifier, or does not know, refuses the whole release: only anonymised data leaves.
//!
//! Every file is written by the one CSV writer ([`crate::csvio`]), and every cell goes through
//! [`crate::csvio::for_spreadsheet`]: the external researcher opens these files in a
//! spreadsheet, and a text that arrived from a supplied file or a registry (`=HYPERLINK(…)`)
//! must not run there as a formula; numbers (relative day counts such as `-3`) stay numbers.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use studyflow_spec::catalogue::{self, FieldClass};

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("the release folder {0} exists already; a release is never overwritten")]
    Exists(String),
    #[error(
        "column `{column}` of table `{table}` is {why}; nothing was released (MK403 p.7, p.30)"
    )]
    NotAnonymised {
        table: String,
        column: String,
        why: &'static str,
    },
    #[error("cannot write the release {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub folder: PathBuf,
    /// (file, sha256) in the manifest's order.
    pub files: Vec<(String, String)>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReleaseError + '_ {
    move |source| ReleaseError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Refuses a column that is not anonymised data: an identifier, or unknown to the catalogue.
fn refuse(table: &str, column: &str) -> Result<(), ReleaseError> {
    if crate::followup::derived(column).is_some() {
        return Ok(());
    }
    let fields: Vec<_> = catalogue::sources_of(column).collect();
    let why = if fields.is_empty() {
        Some("not in the catalogue (possibly another system's identifier, p.24)")
    } else if fields.iter().any(|f| f.class == FieldClass::Identifier) {
        Some("an identifier")
    } else {
        None
    };
    match why {
        Some(why) => Err(ReleaseError::NotAnonymised {
            table: table.to_owned(),
            column: column.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// A release being written: tables streamed one after another into a staging folder, each
/// file hashed as it is written; [`Builder::finish`] adds the codebook and the manifest and
/// renames the folder into place. Dropped unfinished, it leaves no release (the staging
/// folder is removed).
pub struct Builder {
    folder: PathBuf,
    staging: PathBuf,
    schema: Vec<(String, Vec<String>)>,
    written: Vec<(String, String)>,
    codebook: csv::Writer<Vec<u8>>,
    /// The data package (`datapackage.json`, `codebook.md`) when the release is described.
    package: Option<serde_json::Value>,
    done: bool,
}

/// A writer that hashes what passes through it, so a table's sha256 is known when it is
/// written (a million clients' release is hundreds of megabytes; reading them again would cost).
struct Hashed<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One table of a [`Builder`], its header written; its rows are appended as formatted blocks.
pub struct TableWriter<'b> {
    builder: &'b mut Builder,
    name: String,
    path: PathBuf,
    out: Hashed<std::io::BufWriter<std::fs::File>>,
}

impl Builder {
    /// Starts the release `folder` with its tables' columns (besides `study_id`): every
    /// column is checked before anything is written.
    pub fn begin(folder: &Path, schema: &[(&str, Vec<&str>)]) -> Result<Builder, ReleaseError> {
        if folder.exists() {
            return Err(ReleaseError::Exists(folder.display().to_string()));
        }
        for (table, columns) in schema {
            for c in columns {
                refuse(table, c)?;
            }
        }
        let parent = folder.parent().unwrap_or(Path::new("."));
        crate::files::private_dirs(parent).map_err(io(parent))?;
        // One staging folder per attempt (process and attempt number): an abandoned attempt
        // still writing cannot mix its files into another's.
        static ATTEMPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let staging = parent.join(format!(
            ".{}.partial-{}-{}",
            folder
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("release"),
            std::process::id(),
            ATTEMPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging).map_err(io(&staging))?;
        // Only the owner's (0700): the folder keeps it when it is renamed into place.
        #[cfg(unix)]
        std::fs::set_permissions(
            &staging,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(io(&staging))?;
        let mut codebook = crate::csvio::writer(Vec::new());
        codebook
            .write_record([
                "table",
                "column",
                "catalogue_key",
                "source",
                "mk403",
                "meaning",
            ])
            .map_err(|e| io(&staging)(e.into()))?;
        Ok(Builder {
            folder: folder.to_owned(),
            staging,
            schema: schema
                .iter()
                .map(|(t, cs)| {
                    (
                        (*t).to_owned(),
                        cs.iter().map(|c| (*c).to_owned()).collect(),
                    )
                })
                .collect(),
            written: Vec::new(),
            codebook,
            package: None,
            done: false,
        })
    }

    /// Starts table `name` (as declared in `begin`), writing its header.
    pub fn table(&mut self, name: &str) -> Result<TableWriter<'_>, ReleaseError> {
        let columns = self
            .schema
            .iter()
            .find(|(t, _)| t == name)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let codebook_path = self.staging.join("codebook.csv");
        let mut entry = |cells: [&str; 6]| {
            self.codebook
                .write_record(cells.map(|c| crate::csvio::for_spreadsheet(c).into_owned()))
                .map_err(|e| io(&codebook_path)(e.into()))
        };
        entry([
            name,
            "study_id",
            "",
            "",
            "p.7",
            "random study ID of the subject",
        ])?;
        for c in &columns {
            if let Some(f) = catalogue::sources_of(c).next() {
                entry([
                    name,
                    c,
                    c,
                    f.source.title(),
                    f.point.unwrap_or(f.source.point()),
                    f.meaning,
                ])?;
            } else if let Some(d) = crate::followup::derived(c) {
                entry([name, c, "", "derived by studyflow", "p.19–20", d.meaning])?;
            }
        }
        let file = format!("{name}.csv");
        let path = self.staging.join(&file);
        let out = Hashed {
            inner: std::io::BufWriter::with_capacity(
                1 << 20,
                crate::files::private_file(&path).map_err(io(&path))?,
            ),
            hash: Sha256::new(),
        };
        let mut header = crate::csvio::writer(Vec::new());
        header
            .write_record(std::iter::once("study_id").chain(columns.iter().map(String::as_str)))
            .map_err(|e| io(&path)(e.into()))?;
        let header = header
            .into_inner()
            .map_err(|e| io(&path)(std::io::Error::other(e.error().to_string())))?;
        let mut w = TableWriter {
            builder: self,
            name: file,
            path,
            out,
        };
        w.formatted(&header)?;
        Ok(w)
    }

    /// Describes the release: [`finish`](Builder::finish) adds its Frictionless data package
    /// (`datapackage.json`) and the codebook for people (`codebook.md`), both in the manifest.
    pub fn describe(&mut self, d: &crate::datapackage::Description) {
        self.package = Some(crate::datapackage::package(d, &self.schema));
    }

    /// Writes the codebook and the manifest and moves the release into place.
    pub fn finish(mut self) -> Result<Written, ReleaseError> {
        if let Some(package) = self.package.take() {
            let text = serde_json::to_string_pretty(&package).unwrap_or_default() + "\n";
            let md = crate::datapackage::codebook_markdown(&package);
            for (name, bytes) in [
                ("datapackage.json", text.as_bytes()),
                ("codebook.md", md.as_bytes()),
            ] {
                write_synced(&self.staging.join(name), bytes)?;
                self.written
                    .push((name.to_owned(), hex::encode(Sha256::digest(bytes))));
            }
        }
        let path = self.staging.join("codebook.csv");
        let codebook = std::mem::replace(&mut self.codebook, crate::csvio::writer(Vec::new()))
            .into_inner()
            .map_err(|e| io(&path)(std::io::Error::other(e.error().to_string())))?;
        write_synced(&path, &codebook)?;
        self.written.push((
            "codebook.csv".to_owned(),
            hex::encode(Sha256::digest(&codebook)),
        ));
        let manifest: String = self
            .written
            .iter()
            .map(|(name, hash)| format!("{hash}  {name}\n"))
            .collect();
        write_synced(&self.staging.join("MANIFEST.sha256"), manifest.as_bytes())?;
        std::fs::rename(&self.staging, &self.folder).map_err(io(&self.folder))?;
        self.done = true;
        Ok(Written {
            folder: self.folder.clone(),
            files: std::mem::take(&mut self.written),
        })
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

impl TableWriter<'_> {
    /// Rows formatted elsewhere by [`write_row`] into a writer of the same dialect
    /// ([`crate::csvio::writer`]), appended as they are and hashed with the rest.
    fn formatted(&mut self, bytes: &[u8]) -> Result<(), ReleaseError> {
        self.out.write_all(bytes).map_err(io(&self.path))
    }

    /// Flushes and syncs the file and records its hash.
    pub fn finish(self) -> Result<(), ReleaseError> {
        let path = self.path;
        let Hashed { inner, hash } = self.out;
        let file = inner.into_inner().map_err(|e| io(&path)(e.into_error()))?;
        file.sync_all().map_err(io(&path))?;
        self.builder
            .written
            .push((self.name, hex::encode(hash.finalize())));
        Ok(())
    }
}

/// One cell as it goes into the file: defused for a spreadsheet
/// ([`crate::csvio::for_spreadsheet`]) and quoted as the dialect's writer quotes it.
fn encode(cell: &str) -> Vec<u8> {
    let mut w = crate::csvio::writer(Vec::new());
    // A record of one non-empty field: the field and the terminator.
    let _ = w.write_record([crate::csvio::for_spreadsheet(cell).as_bytes()]);
    let mut bytes = w.into_inner().unwrap_or_default();
    bytes.pop();
    bytes
}

/// A column's cells as they go into the file: a text column's values encoded once each (a
/// dictionary has a few values for millions of rows), days and numbers written as they are
/// (a number is never a formula, and neither needs quoting).
enum Encoded<'t> {
    Text(&'t [u32], Vec<Vec<u8>>),
    Date(&'t [i32]),
    Int(&'t [i32]),
}

impl<'t> Encoded<'t> {
    fn of(c: &'t crate::table::Column) -> Encoded<'t> {
        use crate::table::Column;
        match c {
            Column::Text { dict, codes, .. } => {
                Encoded::Text(codes, dict.iter().map(|v| encode(v)).collect())
            }
            Column::Date(v) => Encoded::Date(v),
            Column::Int(v) => Encoded::Int(v),
        }
    }

    fn put(&self, i: usize, out: &mut Vec<u8>) {
        use crate::table::{BAD_DAY, NO_DAY};
        match self {
            Encoded::Text(codes, dict) => {
                if let Some(v) = dict.get(codes[i] as usize) {
                    out.extend_from_slice(v);
                }
            }
            Encoded::Date(days) => {
                let d = days[i];
                if d != NO_DAY && d != BAD_DAY {
                    let (y, m, d) = crate::table::civil(d);
                    if (0..10_000).contains(&y) {
                        digits(y as u32, 4, out);
                        out.push(b'-');
                        digits(m as u32, 2, out);
                        out.push(b'-');
                        digits(d as u32, 2, out);
                    } else {
                        let _ = write!(out, "{y:04}-{m:02}-{d:02}");
                    }
                }
            }
            Encoded::Int(v) => {
                if v[i] != NO_DAY {
                    let _ = write!(out, "{}", v[i]);
                }
            }
        }
    }
}

/// `n` in `width` decimal digits, zero-padded.
fn digits(n: u32, width: u32, out: &mut Vec<u8>) {
    for k in (0..width).rev() {
        out.push(b'0' + (n / 10u32.pow(k) % 10) as u8);
    }
}

/// A study ID as it goes into the file (`P-` and hex needs no care; anything else is encoded).
fn put_id(id: &str, out: &mut Vec<u8>) {
    let plain = id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !matches!(id.as_bytes().first(), None | Some(b'-'));
    if plain {
        out.extend_from_slice(id.as_bytes());
    } else {
        out.extend(encode(id));
    }
}

/// Rows per block of a large table formatted in parallel.
const BLOCK: usize = 1 << 15;

/// Formats the rows of `range` of a table (its columns `encoded`, its subjects `subject_of`)
/// under `study_ids` into CSV bytes.
fn format_rows(
    encoded: &[Encoded<'_>],
    subject_of: &(dyn Fn(usize) -> usize + Sync),
    study_ids: &[String],
    range: std::ops::Range<usize>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(range.len() * 64);
    for i in range {
        put_id(&study_ids[subject_of(i)], &mut out);
        for c in encoded {
            out.push(b',');
            c.put(i, &mut out);
        }
        out.push(b'\n');
    }
    out
}

/// Writes table `t`'s rows: a large table in blocks formatted by two threads and written in
/// their order by this one, which hashes them (a million clients' release uses both cores).
fn write_rows(
    w: &mut TableWriter<'_>,
    t: &crate::table::Table,
    study_ids: &[String],
) -> Result<(), ReleaseError> {
    let encoded: Vec<Encoded<'_>> = t.columns.iter().map(Encoded::of).collect();
    let subject_of = |i: usize| t.subject_of(i);
    let blocks = t.rows.div_ceil(BLOCK);
    let block = |b: usize| b * BLOCK..((b + 1) * BLOCK).min(t.rows);
    if blocks <= 1 {
        return w.formatted(&format_rows(&encoded, &subject_of, study_ids, 0..t.rows));
    }
    let path = w.path.clone();
    std::thread::scope(|scope| {
        const FORMATTERS: usize = 2;
        let mut queues = Vec::new();
        for k in 0..FORMATTERS {
            // Two blocks ahead at most: memory stays a few blocks whatever the table's size.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
            queues.push(rx);
            let (encoded, subject_of) = (&encoded, &subject_of);
            scope.spawn(move || {
                for b in (k..blocks).step_by(FORMATTERS) {
                    let bytes = format_rows(encoded, subject_of, study_ids, block(b));
                    if tx.send(bytes).is_err() {
                        return;
                    }
                }
            });
        }
        for b in 0..blocks {
            let bytes = queues[b % FORMATTERS]
                .recv()
                .map_err(|_| io(&path)(std::io::Error::other("a formatting thread stopped")))?;
            w.formatted(&bytes)?;
        }
        Ok(())
    })
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ReleaseError> {
    crate::files::write_synced(path, bytes).map_err(io(path))
}

/// The (file, sha256) pairs of a written release, from its manifest.
pub fn manifest(folder: &Path) -> Result<Vec<(String, String)>, ReleaseError> {
    let path = folder.join("MANIFEST.sha256");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(hash, name)| (name.to_owned(), hash.to_owned()))
        .collect())
}

/// Writes the release folder `folder` from the anonymised tables, each row under the study ID
/// of its subject among `study_ids`, in the tables' order (which is the study IDs': nothing of
/// the sources' order shows through); described by `d` when given, with its data package and
/// the codebook for people.
pub fn write(
    folder: &Path,
    study_ids: &[String],
    tables: &[&crate::table::Table],
    d: Option<&crate::datapackage::Description>,
) -> Result<Written, ReleaseError> {
    let schema: Vec<(&str, Vec<&str>)> = tables
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.fields.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let mut b = Builder::begin(folder, &schema)?;
    if let Some(d) = d {
        b.describe(d);
    }
    for t in tables {
        let mut w = b.table(&t.name)?;
        write_rows(&mut w, t, study_ids)?;
        w.finish()?;
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::table::Table;
    use crate::values::Values;
    use serde_json::json;

    /// A table of one row per subject, under the study IDs `P-1`, `P-2`, …
    fn table(name: &str, rows: &[serde_json::Value]) -> (Vec<String>, Table) {
        let values: Vec<Values> = rows
            .iter()
            .map(|v| serde_json::from_value(v.clone()).unwrap())
            .collect();
        let ids = (1..=rows.len()).map(|i| format!("P-{i}")).collect();
        (
            ids,
            Table::from_rows(name, values.iter().map(|v| (None, v)), false),
        )
    }

    fn write(folder: &Path, (ids, t): &(Vec<String>, Table)) -> Result<Written, ReleaseError> {
        super::write(folder, ids, &[t], None)
    }

    /// A table of several blocks, formatted by two threads, is written in its order, byte for
    /// byte what one thread writes.
    #[test]
    fn a_large_table_is_written_in_order() {
        let dir = std::env::temp_dir().join(format!("studyflow-blocks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rows = 3 * BLOCK + 5;
        let ids: Vec<String> = (0..rows.div_ceil(3)).map(|i| format!("P-{i:08}")).collect();
        let mut t = Table::new("information_centre");
        t.add_column("offence_date", crate::table::Column::Date(Vec::new()));
        for i in 0..rows {
            t.columns[0].push(&format!("2020-01-{:02}", i % 28 + 1));
            t.subject.push((i / 3) as u32);
            t.rows += 1;
        }
        super::write(&dir.join("r"), &ids, &[&t], None).unwrap();
        let text = std::fs::read(dir.join("r/information_centre.csv")).unwrap();
        let mut expected = b"study_id,offence_date\n".to_vec();
        let encoded = [Encoded::of(&t.columns[0])];
        expected.extend(format_rows(&encoded, &|i| t.subject_of(i), &ids, 0..rows));
        assert!(text == expected, "the blocks are written in their order");
        assert!(
            text.ends_with(
                format!(
                    "P-{:08},2020-01-{:02}\n",
                    (rows - 1) / 3,
                    (rows - 1) % 28 + 1
                )
                .as_bytes()
            )
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Cells encoded once per value are written exactly as the dialect's writer writes them,
    /// each defused for a spreadsheet.
    #[test]
    fn encoded_cells_are_what_the_writer_writes() {
        let values = [
            "=HYPERLINK(\"x\")",
            "a,b",
            "say \"hi\"",
            "-3",
            "-1+1",
            "plain",
            "@SUM(1)",
            "Rīga, centrs",
            "",
            "+371",
        ];
        let mut t = Table::new("t");
        t.add_column("sentence", crate::table::Column::text());
        t.add_column("due", crate::table::Column::Int(Vec::new()));
        t.add_column("offence_date", crate::table::Column::Date(Vec::new()));
        for (i, v) in values.iter().enumerate() {
            t.columns[0].push(v);
            t.columns[1].push(if i % 3 == 0 { "" } else { "-3" });
            t.columns[2].push(if i % 4 == 0 { "" } else { "2027-02-01" });
            t.rows += 1;
        }
        let ids: Vec<String> = (0..values.len()).map(|i| format!("P-{i:02}")).collect();
        let encoded: Vec<Encoded<'_>> = t.columns.iter().map(Encoded::of).collect();
        let ours = format_rows(&encoded, &|i| i, &ids, 0..t.rows);
        let mut theirs = crate::csvio::writer(Vec::new());
        let mut cell = String::new();
        for (i, id) in ids.iter().enumerate() {
            let mut row = vec![crate::csvio::for_spreadsheet(id).into_owned()];
            for c in &t.columns {
                c.cell_raw(c.raw(i), &mut cell);
                row.push(crate::csvio::for_spreadsheet(&cell).into_owned());
            }
            theirs.write_record(&row).unwrap();
        }
        let theirs = theirs.into_inner().unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs).unwrap()
        );
    }

    #[test]
    fn a_release_is_whole_checksummed_and_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("studyflow-release-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let subjects = table(
            "subjects",
            &[
                json!({"sex": "male", "region": "Rīga, centrs", "probation_programmes": ["ETS", "Anger management"]}),
                json!({"sex": "female"}),
            ],
        );
        let w = write(&dir.join("r1"), &subjects).unwrap();
        let csv = std::fs::read_to_string(dir.join("r1/subjects.csv")).unwrap();
        assert_eq!(
            csv,
            "study_id,probation_programmes,region,sex\nP-1,ETS; Anger management,\"Rīga, centrs\",male\nP-2,,,female\n"
        );
        let manifest = std::fs::read_to_string(dir.join("r1/MANIFEST.sha256")).unwrap();
        for (name, hash) in &w.files {
            let bytes = std::fs::read(dir.join("r1").join(name)).unwrap();
            let actual = hex::encode(Sha256::digest(&bytes));
            assert_eq!(&actual, hash);
            assert!(manifest.contains(&format!("{hash}  {name}")));
        }
        let codebook = std::fs::read_to_string(dir.join("r1/codebook.csv")).unwrap();
        assert!(
            codebook.contains("subjects,region,region,the Service IS,p.17.1,"),
            "{codebook}"
        );
        assert!(matches!(
            write(&dir.join("r1"), &subjects),
            Err(ReleaseError::Exists(_))
        ));
        // An identifier column refuses the release, and nothing is written.
        let bad = table("subjects", &[json!({"personal_code": "x"})]);
        let e = write(&dir.join("r2"), &bad).unwrap_err();
        assert!(e.to_string().contains("identifier"), "{e}");
        assert!(!dir.join("r2").exists());
        let unknown = table("t", &[json!({"population_register_id": "77"})]);
        assert!(matches!(
            write(&dir.join("r3"), &unknown),
            Err(ReleaseError::NotAnonymised { .. })
        ));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no partial folders left"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
