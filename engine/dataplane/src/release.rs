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

/// One table of a [`Builder`], written row by row.
pub struct TableWriter<'b> {
    builder: &'b mut Builder,
    name: String,
    path: PathBuf,
    out: csv::Writer<Hashed<std::io::BufWriter<std::fs::File>>>,
    columns: usize,
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
        private_dirs(parent).map_err(io(parent))?;
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
        let out = crate::csvio::writer(Hashed {
            inner: std::io::BufWriter::with_capacity(
                1 << 20,
                private_file(&path).map_err(io(&path))?,
            ),
            hash: Sha256::new(),
        });
        let mut w = TableWriter {
            builder: self,
            name: file,
            path,
            out,
            columns: columns.len(),
        };
        w.out
            .write_record(std::iter::once("study_id").chain(columns.iter().map(String::as_str)))
            .map_err(|e| io(&w.path)(e.into()))?;
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
    /// One row: the study ID and a cell per declared column, in their order; a text that
    /// would start a spreadsheet formula is defused ([`crate::csvio::for_spreadsheet`]).
    pub fn row<'c>(
        &mut self,
        study_id: &str,
        cells: impl IntoIterator<Item = &'c str>,
    ) -> Result<(), ReleaseError> {
        let path = &self.path;
        let bad = |e: csv::Error| io(path)(e.into());
        self.out
            .write_field(crate::csvio::for_spreadsheet(study_id).as_bytes())
            .map_err(bad)?;
        let mut n = 0;
        for c in cells {
            self.out
                .write_field(crate::csvio::for_spreadsheet(c).as_bytes())
                .map_err(bad)?;
            n += 1;
        }
        debug_assert_eq!(n, self.columns, "a cell per column");
        // The writer refuses a row of another length than the header's.
        self.out.write_record(None::<&[u8]>).map_err(bad)
    }

    /// Flushes and syncs the file and records its hash.
    pub fn finish(self) -> Result<(), ReleaseError> {
        let path = self.path;
        let hashed = self
            .out
            .into_inner()
            .map_err(|e| io(&path)(std::io::Error::other(e.error().to_string())))?;
        let Hashed { inner, hash } = hashed;
        let file = inner.into_inner().map_err(|e| io(&path)(e.into_error()))?;
        file.sync_all().map_err(io(&path))?;
        self.builder
            .written
            .push((self.name, hex::encode(hash.finalize())));
        Ok(())
    }
}

/// Folders (and the folders above them) made only for their owner (0700) whatever the umask:
/// the work folder holds requests naming subjects, answers, letters and releases (MK403 p.25.3).
/// Folders that exist already keep their mode.
pub(crate) fn private_dirs(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(path)
}

/// One new folder only for its owner (0700); an error if it exists.
pub(crate) fn private_dir(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(path)
}

/// A new file only its owner may read (0600): a release is for its recipients, not for every
/// account on the machine (MK403 p.25.1, p.33).
/// A file left from before keeps nothing of its mode (it is made 0600 through the open
/// handle), and a link is not written through.
pub(crate) fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other(format!(
            "{} is a link; studyflow writes only files of its own",
            path.display()
        )));
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path)?;
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(f)
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ReleaseError> {
    let mut f = private_file(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
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
    let mut cells: Vec<String> = Vec::new();
    for t in tables {
        let mut w = b.table(&t.name)?;
        cells.resize(t.columns.len(), String::new());
        for i in 0..t.rows {
            for (c, cell) in t.columns.iter().zip(cells.iter_mut()) {
                c.cell_raw(c.raw(i), cell);
            }
            w.row(
                &study_ids[t.subject_of(i)],
                cells.iter().map(String::as_str),
            )?;
        }
        w.finish()?;
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file left open by an earlier version is made private when written again; a link is
    /// not written through.
    #[cfg(unix)]
    #[test]
    fn private_files_are_private_and_links_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sf-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("contacts.partial");
        std::fs::write(&old, "left from before").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_synced(&old, b"new").unwrap();
        let mode = std::fs::metadata(&old).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let target = dir.join("elsewhere.txt");
        std::fs::write(&target, "not ours").unwrap();
        let link = dir.join("link.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(write_synced(&link, b"x").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "not ours");
        std::fs::remove_dir_all(&dir).unwrap();
    }
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
