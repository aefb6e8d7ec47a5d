//! The population as the files a bulk study starts from: the Service IS extraction
//! (`clients.csv`), the Punishment Register's answer (`information_centre.csv`, a row per
//! proceeding) and the Prison Administration's (`prison_administration.csv`, a row per ruling
//! with the client's resocialisation), each row naming its client by personal code. Cells are
//! written as a release writes them (a list as `a; b`), so the files feed both the engine's
//! bulk path and other tools (the DuckDB comparison) alike.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::population::Client;

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    pub clients: usize,
    pub proceedings: usize,
    pub rulings: usize,
    pub bytes: u64,
}

/// A value as a CSV cell: written as a release writes it, quoted when it must be.
pub fn cell(v: Option<&Value>) -> String {
    let text = studyflow_spec::catalogue::value_text(v);
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
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
    let open = |name: &str| -> std::io::Result<std::io::BufWriter<std::fs::File>> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(!first)
            .write(true)
            .truncate(first)
            .open(dir.join(name))?;
        Ok(std::io::BufWriter::with_capacity(1 << 20, f))
    };
    let header = |fields: &[&str], lead: &[&str]| -> String {
        let mut h: Vec<&str> = lead.to_vec();
        h.extend(fields.iter().filter(|f| !lead.contains(f)));
        h.join(",") + "\n"
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
        c_file.write_all(header(&service, &lead).as_bytes())?;
        i_file.write_all(header(&ic, &["personal_code"]).as_bytes())?;
        p_file.write_all(header(&pa, &["personal_code"]).as_bytes())?;
    }
    let mut line = String::with_capacity(512);
    for c in clients {
        let code = c.personal_code.expose();
        line.clear();
        line.push_str(&code);
        line.push(',');
        line.push_str(&cell(c.value("previous_personal_code").as_ref()));
        for f in &service {
            line.push(',');
            line.push_str(&cell(c.value(f).as_ref()));
        }
        line.push('\n');
        c_file.write_all(line.as_bytes())?;
        out.clients += 1;
        let previous = c.previous_personal_code.as_ref().map(|p| p.expose());
        for (n, p) in c.proceedings.iter().enumerate() {
            line.clear();
            // The register knows some of a renamed client's proceedings by the old code
            // (p.12.1).
            match &previous {
                Some(old) if n % 2 == 1 => line.push_str(old),
                _ => line.push_str(&code),
            }
            for f in &ic {
                line.push(',');
                line.push_str(&cell(p.value(f).as_ref()));
            }
            line.push('\n');
            i_file.write_all(line.as_bytes())?;
            out.proceedings += 1;
        }
        for r in &c.rulings {
            line.clear();
            line.push_str(&code);
            for f in &pa {
                line.push(',');
                let v = r
                    .value(f)
                    .or_else(|| c.resocialisation.as_ref().and_then(|x| x.value(f)));
                line.push_str(&cell(v.as_ref()));
            }
            line.push('\n');
            p_file.write_all(line.as_bytes())?;
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
