//! A release: anonymised tables as CSV files, a codebook (each column → catalogue key, source
//! and MK403 point) and a sha256 manifest, written into a release folder whole or not at all
//! (MK403 p.7, p.27, p.30, p.35).
//!
//! The folder is written under a temporary name and renamed when complete, so a crash leaves
//! no half release; an existing folder is never overwritten. A column that the catalogue marks
//! as an identifier, or does not know, refuses the whole release: only anonymised data leaves.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use studyflow_spec::catalogue::{self, FieldClass};

use crate::anonymise::AnonRecord;

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

/// One table of a release.
pub struct Table<'a> {
    /// File name without extension, e.g. `subjects`.
    pub name: &'a str,
    pub records: &'a [AnonRecord],
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

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("; "),
        Some(other) => other.to_string(),
    }
}

/// Writes the release folder `folder`.
pub fn write(folder: &Path, tables: &[Table<'_>]) -> Result<Written, ReleaseError> {
    if folder.exists() {
        return Err(ReleaseError::Exists(folder.display().to_string()));
    }
    // Refuse before writing anything.
    let mut columns_of = Vec::with_capacity(tables.len());
    for t in tables {
        let columns: BTreeSet<&str> = t
            .records
            .iter()
            .flat_map(|r| r.values.keys().map(String::as_str))
            .collect();
        for c in &columns {
            let fields: Vec<_> = catalogue::sources_of(c).collect();
            let why = if fields.is_empty() {
                Some("not in the catalogue (possibly another system's identifier, p.24)")
            } else if fields.iter().any(|f| f.class == FieldClass::Identifier) {
                Some("an identifier")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(ReleaseError::NotAnonymised {
                    table: t.name.to_owned(),
                    column: (*c).to_owned(),
                    why,
                });
            }
        }
        columns_of.push(columns);
    }
    let parent = folder.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let staging = parent.join(format!(
        ".{}.partial-{}",
        folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("release"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).map_err(io(&staging))?;
    let mut files = Vec::new();
    let mut codebook = String::from("table,column,catalogue_key,source,mk403,meaning\n");
    for (t, columns) in tables.iter().zip(&columns_of) {
        let name = format!("{}.csv", t.name);
        let mut text = String::from("study_id");
        for c in columns {
            text.push(',');
            text.push_str(c);
        }
        text.push('\n');
        for r in t.records {
            text.push_str(&csv_field(&r.study_id));
            for c in columns {
                text.push(',');
                text.push_str(&csv_field(&cell(r.values.get(*c))));
            }
            text.push('\n');
        }
        codebook.push_str(&format!(
            "{},study_id,,,p.7,random study ID of the subject\n",
            t.name
        ));
        for c in columns {
            if let Some(f) = catalogue::sources_of(c).next() {
                codebook.push_str(&format!(
                    "{},{c},{c},{},{},{}\n",
                    t.name,
                    csv_field(f.source.title()),
                    f.point.unwrap_or(f.source.point()),
                    csv_field(f.meaning)
                ));
            }
        }
        files.push((name, text));
    }
    files.push(("codebook.csv".to_owned(), codebook));
    let mut manifest = String::new();
    let mut written = Vec::new();
    for (name, text) in &files {
        let path = staging.join(name);
        let mut f = std::fs::File::create(&path).map_err(io(&path))?;
        f.write_all(text.as_bytes()).map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
        let hash: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        manifest.push_str(&format!("{hash}  {name}\n"));
        written.push((name.clone(), hash));
    }
    let path = staging.join("MANIFEST.sha256");
    std::fs::write(&path, manifest).map_err(io(&path))?;
    std::fs::rename(&staging, folder).map_err(io(folder))?;
    Ok(Written {
        folder: folder.to_owned(),
        files: written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn rec(id: &str, v: serde_json::Value) -> AnonRecord {
        AnonRecord {
            study_id: id.into(),
            values: v
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn a_release_is_whole_checksummed_and_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("studyflow-release-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let subjects = [
            rec(
                "P-1",
                json!({"sex": "male", "region": "Rīga, centrs", "probation_programmes": ["ETS", "Anger management"]}),
            ),
            rec("P-2", json!({"sex": "female"})),
        ];
        let w = write(
            &dir.join("r1"),
            &[Table {
                name: "subjects",
                records: &subjects,
            }],
        )
        .unwrap();
        let csv = std::fs::read_to_string(dir.join("r1/subjects.csv")).unwrap();
        assert_eq!(
            csv,
            "study_id,probation_programmes,region,sex\nP-1,ETS; Anger management,\"Rīga, centrs\",male\nP-2,,,female\n"
        );
        let manifest = std::fs::read_to_string(dir.join("r1/MANIFEST.sha256")).unwrap();
        for (name, hash) in &w.files {
            let bytes = std::fs::read(dir.join("r1").join(name)).unwrap();
            let actual: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(&actual, hash);
            assert!(manifest.contains(&format!("{hash}  {name}")));
        }
        let codebook = std::fs::read_to_string(dir.join("r1/codebook.csv")).unwrap();
        assert!(
            codebook.contains("subjects,region,region,the Service IS,p.17.1,"),
            "{codebook}"
        );
        assert!(matches!(
            write(&dir.join("r1"), &[]),
            Err(ReleaseError::Exists(_))
        ));
        // An identifier column refuses the release, and nothing is written.
        let bad = [rec("P-3", json!({"personal_code": "x"}))];
        let e = write(
            &dir.join("r2"),
            &[Table {
                name: "subjects",
                records: &bad,
            }],
        )
        .unwrap_err();
        assert!(e.to_string().contains("identifier"), "{e}");
        assert!(!dir.join("r2").exists());
        let unknown = [rec("P-4", json!({"population_register_id": "77"}))];
        assert!(matches!(
            write(
                &dir.join("r3"),
                &[Table {
                    name: "t",
                    records: &unknown
                }]
            ),
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
