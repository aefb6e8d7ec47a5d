//! The exchange by secure electronic means, where automation is not possible (MK403 p.10,
//! p.12.3, p.14.2): the Service writes the request to an outbox folder — the cover letter
//! (no identifier), the request file with the subjects' personal codes (p.12.1), and a sha256
//! manifest — for the secure channel to carry; the step then waits until the answer lands in
//! the inbox, checks it against its manifest and against the request, and imports it whole or
//! not at all. Files holding identifiers are deleted as soon as the exchange is complete, so
//! they do not rest (the folders belong on an encrypted volume meanwhile).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use studyflow_spec::catalogue::Source;

use crate::answers::{self, Rejected, Request};
use crate::linkage::AnswerRow;
use crate::vault::StudyKeys;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("cannot use {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("request {0} is in the outbox already; it is sent once")]
    Exists(String),
    #[error("the answer to {request} does not match its manifest ({file}); nothing was imported")]
    Manifest { request: String, file: String },
    #[error("the answer to {request} (answer.json): {rejected}")]
    Rejected {
        request: String,
        #[source]
        rejected: Rejected,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExchangeError + '_ {
    move |source| ExchangeError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The answer's file in its folder of the inbox, beside its `MANIFEST.sha256`.
pub const ANSWER_FILE: &str = "answer.json";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ExchangeError> {
    let mut f = crate::files::private_file(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Writes request `id` into `outbox/<id>/`: `cover-letter.txt`, `request.json` and
/// `MANIFEST.sha256`, staged and renamed whole. Returns the folder.
pub fn send(
    outbox: &Path,
    id: &str,
    letter: &str,
    fields: &[&str],
    subjects: &[crate::answers::Asked<'_>],
    period: Option<&crate::followup::Period>,
) -> Result<PathBuf, ExchangeError> {
    let folder = outbox.join(id);
    if folder.exists() {
        return Err(ExchangeError::Exists(id.to_owned()));
    }
    crate::files::private_dirs(outbox).map_err(io(outbox))?;
    let staging = outbox.join(format!(".{id}.partial"));
    let _ = std::fs::remove_dir_all(&staging);
    // Not recursive: a staging folder that exists (another attempt's) is an error, not shared.
    crate::files::private_dir(&staging).map_err(io(&staging))?;
    let request = serde_json::json!({
        "request": id,
        "fields": fields,
        "subjects": subjects.iter().map(crate::answers::Asked::json).collect::<Vec<_>>(),
    });
    // The period asked about and the day of the request, as in the automated exchange
    // (MK403 p.3.3, p.12): the answer is checked against them on import.
    let mut request = request;
    if let Some(p) = period {
        request["period"] = serde_json::json!({"from": p.from, "to": p.to});
        request["as_of"] = serde_json::json!(p.as_of);
    }
    let request = serde_json::to_vec_pretty(&request).unwrap_or_default();
    let files: [(&str, &[u8]); 2] = [
        ("cover-letter.txt", letter.as_bytes()),
        ("request.json", &request),
    ];
    let mut manifest = String::new();
    for (name, bytes) in files {
        write_synced(&staging.join(name), bytes)?;
        manifest.push_str(&format!("{}  {name}\n", sha256(bytes)));
    }
    write_synced(&staging.join("MANIFEST.sha256"), manifest.as_bytes())?;
    std::fs::rename(&staging, &folder).map_err(io(&folder))?;
    Ok(folder)
}

/// Checks an institution's `answer` to request `id` whole against what was sent — the
/// outbox's `request.json`: its fields, its subjects (by personal code, current or previous)
/// and, for the Punishment Register, its period and day (MK403 p.3.3, p.12, p.13, p.15, p.16)
/// — for whoever puts an answer in the inbox without the study's keys (the server taking an
/// upload). The import checks it again against the sealed sample when it comes
/// ([`receive`]); this check refuses earlier what that one would, row by row, never naming a
/// value. `Ok(Ok(rows))`: accepted; an `Err` when the request is not in the outbox (answered
/// already, or never sent).
pub fn check_against_sent(
    outbox: &Path,
    id: &str,
    sources: &[Source],
    answer: &[u8],
) -> std::io::Result<Result<usize, Rejected>> {
    #[derive(serde::Deserialize)]
    struct Subject {
        personal_code: String,
        #[serde(default)]
        previous_personal_code: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Sent {
        fields: Vec<String>,
        subjects: Vec<Subject>,
        #[serde(default)]
        period: Option<Span>,
        #[serde(default)]
        as_of: Option<jiff::civil::Date>,
    }
    #[derive(serde::Deserialize)]
    struct Span {
        from: jiff::civil::Date,
        to: jiff::civil::Date,
    }
    let path = outbox.join(id).join("request.json");
    let sent: Sent = serde_json::from_slice(&std::fs::read(&path)?).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    let Some(first) = sources.first() else {
        return Err(std::io::Error::other("an answer from no source"));
    };
    // A key of this check's own: the request's codes and the answer's are compared by their
    // blind indexes under it, as the import compares them under the study's.
    let keys = StudyKeys::generate(id);
    let fields: Vec<&str> = sent.fields.iter().map(String::as_str).collect();
    let codes = sent.subjects.iter().flat_map(|s| {
        std::iter::once(s.personal_code.as_str()).chain(s.previous_personal_code.as_deref())
    });
    let request = Request::new(&keys, sources, &fields, codes);
    let rows = match answers::parse(*first, answer) {
        Ok(rows) => rows,
        Err(rejected) => return Ok(Err(rejected)),
    };
    if let Err(rejected) = answers::validate(&keys, &request, &rows) {
        return Ok(Err(rejected));
    }
    if let (Some(span), Some(as_of)) = (sent.period, sent.as_of) {
        let period = crate::followup::Period {
            from: span.from,
            to: span.to,
            as_of,
        };
        if let Err(rejected) = within(&rows, Some(&period)) {
            return Ok(Err(rejected));
        }
    }
    Ok(Ok(rows.len()))
}

/// Whether every row keeps to the period asked about, if one was (the first row that does not
/// refuses the answer, named by its position).
fn within(
    rows: &[AnswerRow],
    period: Option<&crate::followup::Period>,
) -> Result<(), answers::Rejected> {
    let Some(period) = period else {
        return Ok(());
    };
    crate::followup::check_period(rows.iter().map(|r| &r.values), period).map_err(|e| {
        answers::Rejected::of(vec![answers::RowProblem {
            row: e.row(),
            problem: e.to_string(),
        }])
    })
}

/// Writes an answer and its manifest into `folder` (owner-only, synced): what an institution
/// sends through the secure channel, for an answer taken whole by the server.
pub fn write_answer(folder: &Path, answer: &[u8]) -> std::io::Result<()> {
    crate::files::write_synced(&folder.join(ANSWER_FILE), answer)?;
    crate::files::write_synced(
        &folder.join("MANIFEST.sha256"),
        format!("{}  {ANSWER_FILE}\n", sha256(answer)).as_bytes(),
    )
}

/// Looks for the answer to request `id` in `inbox/<id>/` (`answer.json` and its
/// `MANIFEST.sha256`): `Ok(None)` while it has not arrived; the rows when it is whole, as asked
/// and within `period` (MK403 p.3.3, p.12), after which the answer and the outbox's request
/// file (both holding identifiers) are deleted; an error, importing nothing and deleting
/// nothing, otherwise — so a refused answer can be replaced and checked again.
pub fn receive(
    inbox: &Path,
    outbox: &Path,
    id: &str,
    keys: &StudyKeys,
    sources: &[Source],
    request: &Request,
    period: Option<&crate::followup::Period>,
) -> Result<Option<Vec<AnswerRow>>, ExchangeError> {
    let folder = inbox.join(id);
    let manifest_path = folder.join("MANIFEST.sha256");
    let answer_path = folder.join(ANSWER_FILE);
    if !manifest_path.exists() || !answer_path.exists() {
        return Ok(None);
    }
    let manifest = std::fs::read_to_string(&manifest_path).map_err(io(&manifest_path))?;
    let answer = std::fs::read(&answer_path).map_err(io(&answer_path))?;
    let listed = manifest
        .lines()
        .find_map(|l| {
            l.strip_suffix("  answer.json")
                .or_else(|| l.strip_suffix(" *answer.json"))
        })
        .map(str::trim);
    if listed != Some(sha256(&answer).as_str()) {
        return Err(ExchangeError::Manifest {
            request: id.to_owned(),
            file: ANSWER_FILE.into(),
        });
    }
    let rejected = |rejected| ExchangeError::Rejected {
        request: id.to_owned(),
        rejected,
    };
    let rows = answers::parse(sources[0], &answer).map_err(rejected)?;
    answers::validate(keys, request, &rows).map_err(rejected)?;
    within(&rows, period).map_err(rejected)?;
    // Complete: what holds identifiers goes.
    std::fs::remove_dir_all(&folder).map_err(io(&folder))?;
    let sent = outbox.join(id).join("request.json");
    if sent.exists() {
        std::fs::remove_file(&sent).map_err(io(&sent))?;
    }
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(label: &str) -> (PathBuf, PathBuf, PathBuf) {
        let base =
            std::env::temp_dir().join(format!("studyflow-exchange-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        (base.join("outbox"), base.join("inbox"), base)
    }

    fn arrive(inbox: &Path, id: &str, body: &str, listed: Option<&str>) {
        let f = inbox.join(id);
        std::fs::create_dir_all(&f).unwrap();
        std::fs::write(f.join("answer.json"), body).unwrap();
        let hash = listed.map_or_else(|| sha256(body.as_bytes()), str::to_owned);
        std::fs::write(f.join("MANIFEST.sha256"), format!("{hash}  answer.json\n")).unwrap();
    }

    #[test]
    fn a_request_goes_out_whole_and_an_answer_comes_in_whole() {
        let (outbox, inbox, base) = dirs("a");
        let keys = StudyKeys::generate("x");
        let codes = ["290758-10403", "325035-11782"];
        let folder = send(
            &outbox,
            "pa-1",
            "cover letter: 2 subjects",
            &["education"],
            &codes.map(crate::answers::Asked::code),
            None,
        )
        .unwrap();
        let manifest = std::fs::read_to_string(folder.join("MANIFEST.sha256")).unwrap();
        for name in ["cover-letter.txt", "request.json"] {
            let bytes = std::fs::read(folder.join(name)).unwrap();
            assert!(manifest.contains(&format!("{}  {name}", sha256(&bytes))));
        }
        assert!(
            !std::fs::read_to_string(folder.join("cover-letter.txt"))
                .unwrap()
                .contains("290758")
        );
        assert!(matches!(
            send(&outbox, "pa-1", "", &[], &[], None),
            Err(ExchangeError::Exists(_))
        ));
        let sources = [Source::PrisonRulings, Source::PrisonResocialisation];
        let request = Request::new(&keys, &sources, &["education"], codes);
        assert!(
            receive(&inbox, &outbox, "pa-1", &keys, &sources, &request, None)
                .unwrap()
                .is_none(),
            "not arrived yet"
        );
        // A file that does not match its manifest, then an answer with a row not asked for:
        // nothing imported, nothing deleted.
        arrive(&inbox, "pa-1", "[]", Some("00"));
        assert!(matches!(
            receive(&inbox, &outbox, "pa-1", &keys, &sources, &request, None),
            Err(ExchangeError::Manifest { .. })
        ));
        arrive(
            &inbox,
            "pa-1",
            r#"[{"personal_code":"290758-10403","release_regime":"low"}]"#,
            None,
        );
        let e = receive(&inbox, &outbox, "pa-1", &keys, &sources, &request, None).unwrap_err();
        assert!(e.to_string().contains("was not asked for"), "{e}");
        assert!(inbox.join("pa-1/answer.json").exists() && folder.join("request.json").exists());
        // A field named twice, or a value outside its domain: refused whole, named by row.
        arrive(
            &inbox,
            "pa-1",
            r#"[{"personal_code":"290758-10403","education":"secondary","education":"none"},
                {"personal_code":"290758-10403","education":"death_penalty"}]"#,
            None,
        );
        let e = receive(&inbox, &outbox, "pa-1", &keys, &sources, &request, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("(answer.json)") && e.contains("row 1: field `education` is named twice"),
            "{e}"
        );
        assert!(!e.contains("death_penalty"), "{e}");
        assert!(inbox.join("pa-1/answer.json").exists() && folder.join("request.json").exists());
        // The right answer: imported, and the files with identifiers are gone.
        arrive(
            &inbox,
            "pa-1",
            r#"[{"personal_code":"290758-10403","education":"secondary"}]"#,
            None,
        );
        let rows = receive(&inbox, &outbox, "pa-1", &keys, &sources, &request, None)
            .unwrap()
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!inbox.join("pa-1").exists());
        assert!(!folder.join("request.json").exists());
        assert!(
            folder.join("cover-letter.txt").exists(),
            "the letter stays as the record of what was sent"
        );
        let _ = std::fs::remove_dir_all(base);
    }

    /// An answer with an offence outside the period asked about is refused before anything is
    /// deleted, so the institution's corrected answer can replace it (MK403 p.3.3, p.12).
    #[test]
    fn an_answer_outside_its_period_is_refused_and_nothing_deleted() {
        let (outbox, inbox, base) = dirs("period");
        let keys = StudyKeys::generate("x");
        let codes = ["290758-10403"];
        send(
            &outbox,
            "ic-1",
            "letter",
            &["offence_date"],
            &codes.map(crate::answers::Asked::code),
            None,
        )
        .unwrap();
        let sources = [Source::InformationCentre];
        let request = Request::new(&keys, &sources, &["offence_date"], codes);
        let period = crate::followup::Period {
            from: jiff::civil::date(2020, 1, 1),
            to: jiff::civil::date(2020, 12, 31),
            as_of: jiff::civil::date(2021, 1, 1),
        };
        let answer =
            |day: &str| format!(r#"[{{"personal_code":"290758-10403","offence_date":"{day}"}}]"#);
        arrive(&inbox, "ic-1", &answer("2019-05-01"), None);
        let e = receive(
            &inbox,
            &outbox,
            "ic-1",
            &keys,
            &sources,
            &request,
            Some(&period),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("outside the requested period"), "{e}");
        assert!(inbox.join("ic-1/answer.json").exists());
        assert!(outbox.join("ic-1/request.json").exists());
        arrive(&inbox, "ic-1", &answer("2020-05-01"), None);
        let rows = receive(
            &inbox,
            &outbox,
            "ic-1",
            &keys,
            &sources,
            &request,
            Some(&period),
        )
        .unwrap()
        .unwrap();
        assert_eq!(rows.len(), 1);
        let _ = std::fs::remove_dir_all(base);
    }
}
