//! `studyflow validate`: check files and directories, report every finding of every file.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::Context;
use crate::render::{self, FileReport};
use crate::{EXIT_FAILURE, EXIT_FINDINGS, EXIT_OK};
use crate::{Format, ValidateArgs};

pub fn run(args: &ValidateArgs, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let mut io_failed = false;
    let mut files = Vec::new();
    for path in &args.paths {
        match collect(path, &mut files) {
            Ok(()) => {}
            Err(e) => {
                writeln!(ctx.err, "studyflow: error: {e:#}")?;
                io_failed = true;
            }
        }
    }
    let files = unique(files);
    let (calendar, today) = crate::dates(&args.dates)?;
    let mut reports = Vec::with_capacity(files.len());
    for path in files {
        match std::fs::read(&path) {
            Ok(bytes) => {
                let checked = studyflow_plan::check(&bytes, &calendar, Some(today)).checked;
                reports.push(FileReport {
                    path: display_path(&path),
                    source: display_source(&bytes),
                    checked,
                });
            }
            Err(e) => {
                writeln!(
                    ctx.err,
                    "studyflow: error: cannot read {}: {e}",
                    path.display()
                )?;
                io_failed = true;
            }
        }
    }
    let text = match args.format {
        Format::Human => render::human::render(&reports, ctx.color),
        Format::Json => render::json::render(&reports),
        Format::Sarif => render::sarif::render(&reports, &args.docs_url),
        Format::Github => render::github::render(&reports),
    };
    ctx.out.write_all(text.as_bytes())?;
    ctx.out.flush()?;
    if io_failed {
        return Ok(EXIT_FAILURE);
    }
    let errors: usize = reports.iter().map(|r| r.checked.errors()).sum();
    let warnings: usize = reports.iter().map(|r| r.checked.warnings()).sum();
    Ok(if errors > 0 || (args.deny_warnings && warnings > 0) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

/// A file as given, or every `*.yaml`/`*.yml` below a directory (symbolic links followed,
/// each directory once), in sorted order. A directory without any is an error: a CI job
/// pointed at the wrong folder must not pass.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        out.push(path.to_owned());
        return Ok(());
    }
    let mut stack = vec![path.to_owned()];
    let mut seen_dirs = std::collections::HashSet::new();
    let mut found = Vec::new();
    while let Some(dir) = stack.pop() {
        if let Ok(canonical) = std::fs::canonicalize(&dir)
            && !seen_dirs.insert(canonical)
        {
            continue;
        }
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let p = entry.path();
            // `metadata` follows symbolic links, unlike `DirEntry::file_type`.
            let meta =
                std::fs::metadata(&p).with_context(|| format!("cannot read {}", p.display()))?;
            if meta.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(p);
            }
        }
    }
    if found.is_empty() {
        anyhow::bail!("no *.yaml or *.yml files under {}", path.display());
    }
    found.sort();
    out.extend(found);
    Ok(())
}

/// The files in the order given, each once (the same file named twice is checked once).
fn unique(files: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    files
        .into_iter()
        .filter(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())))
        .collect()
}

/// The text diagnostics' spans point into: after any byte-order mark.
pub(crate) fn display_source(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// Paths in reports use forward slashes, as SARIF and GitHub expect.
pub(crate) fn display_path(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_owned).unwrap_or(s)
}
