//! The population as the files a bulk study starts from: the Service IS extraction
//! (`clients.csv`), the Punishment Register's answer (`information_centre.csv`, a row per
//! proceeding) and the Prison Administration's (`prison_administration.csv`, a row per ruling
//! with the client's resocialisation), each row naming its client by personal code. Cells are
//! written as a release writes them (a list as `a; b`), by the `csv` crate (RFC 4180, LF, quoted
//! when they must be), so the files feed both the engine's bulk path and other tools (the
//! DuckDB comparison) alike. They stand for files a registry or the Service IS produces, so
//! cells are written as they are: no spreadsheet defusing, which is for files handed out.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::population::Client;

/// The CSV writer of the exported files: the dialect of `studyflow_dataplane::csvio::writer`.
fn writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out)
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    pub clients: usize,
    pub proceedings: usize,
    pub rulings: usize,
    pub bytes: u64,
}

/// A value as the text of a CSV cell: as a release writes it (the writer quotes it).
pub fn cell(v: Option<&Value>) -> String {
    studyflow_spec::catalogue::value_text(v)
}

/// Appends the files for `clients` in `dir` (created, and the header written, when `first`);
/// `service`, `ic` and `pa` are the fields asked of each source.
pub fn write_csv(
    clients: &[Client],
    dir: &Path,
    first: bool,
    service: &[&str],
    ic: &[&str],
    pa: &[&str],
) -> std::io::Result<Exported> {
    std::fs::create_dir_all(dir)?;
    let open = |name: &str| -> std::io::Result<csv::Writer<std::io::BufWriter<std::fs::File>>> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(!first)
            .write(true)
            .truncate(first)
            .open(dir.join(name))?;
        Ok(writer(std::io::BufWriter::with_capacity(1 << 20, f)))
    };
    let header = |fields: &[&str], lead: &[&str]| -> Vec<String> {
        let mut h: Vec<&str> = lead.to_vec();
        h.extend(fields.iter().filter(|f| !lead.contains(f)));
        h.into_iter().map(str::to_owned).collect()
    };
    let mut out = Exported::default();
    let mut c_file = open("clients.csv")?;
    let mut i_file = open("information_centre.csv")?;
    let mut p_file = open("prison_administration.csv")?;
    let service: Vec<&str> = service
        .iter()
        .copied()
        .filter(|f| !matches!(*f, "personal_code" | "previous_personal_code"))
        .collect();
    let ic: Vec<&str> = ic
        .iter()
        .copied()
        .filter(|f| *f != "personal_code")
        .collect();
    let pa: Vec<&str> = pa
        .iter()
        .copied()
        .filter(|f| *f != "personal_code")
        .collect();
    if first {
        let lead = ["personal_code", "previous_personal_code"];
        c_file.write_record(header(&service, &lead))?;
        i_file.write_record(header(&ic, &["personal_code"]))?;
        p_file.write_record(header(&pa, &["personal_code"]))?;
    }
    for c in clients {
        let code = c.personal_code.expose();
        c_file.write_field(&code)?;
        c_file.write_field(cell(c.value("previous_personal_code").as_ref()))?;
        for f in &service {
            c_file.write_field(cell(c.value(f).as_ref()))?;
        }
        c_file.write_record(None::<&[u8]>)?;
        out.clients += 1;
        let previous = c.previous_personal_code.as_ref().map(|p| p.expose());
        for (n, p) in c.proceedings.iter().enumerate() {
            // The register knows some of a renamed client's proceedings by the old code
            // (p.12.1).
            match &previous {
                Some(old) if n % 2 == 1 => i_file.write_field(old)?,
                _ => i_file.write_field(&code)?,
            }
            for f in &ic {
                i_file.write_field(cell(p.value(f).as_ref()))?;
            }
            i_file.write_record(None::<&[u8]>)?;
            out.proceedings += 1;
        }
        for r in &c.rulings {
            p_file.write_field(&code)?;
            for f in &pa {
                let v = r
                    .value(f)
                    .or_else(|| c.resocialisation.as_ref().and_then(|x| x.value(f)));
                p_file.write_field(cell(v.as_ref()))?;
            }
            p_file.write_record(None::<&[u8]>)?;
            out.rulings += 1;
        }
    }
    for f in [&mut c_file, &mut i_file, &mut p_file] {
        f.flush()?;
    }
    for name in [
        "clients.csv",
        "information_centre.csv",
        "prison_administration.csv",
    ] {
        out.bytes += std::fs::metadata(dir.join(name))?.len();
    }
    Ok(out)
}
