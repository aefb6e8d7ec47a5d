//! What a person supplies for a task, and what the engine prepared for one, in the work folder:
//! the one place that knows the inbox and outbox of a task, for the step bodies that import
//! (`registry_plane`) and for the server that takes an upload and hands out prepared files.
//!
//! A supplied file is checked whole by the same function the import will use, before it is put
//! in the inbox: a refused file is not written (its row report says which row and column, never
//! a value); an accepted one is written owner-only, synced and renamed into place, so the
//! worker sees it whole or not at all. An institution's answer to a secure electronic request
//! (MK403 p.12.3, p.14.2) is checked against the request as it was sent — the server holds no
//! study keys — and the import checks it again against the sealed sample.

use std::path::{Path, PathBuf};

use studyflow_plan::{Registry, Step, StepKind};
use studyflow_spec::Spec;

use crate::answers::Rejected;
use crate::registry_plane::{CONSENTED_CONTACTS_FILE, MANUAL_EXTRACTION_FILE, NOTICE_FILE};

/// A file a person supplies for a task, imported whole when they complete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supply {
    /// The sample extracted from the Service IS by hand (MK403 p.22.1).
    ManualExtraction,
    /// The contact details of the clients who consented to be contacted (MK403 p.31, p.32).
    ConsentedContacts,
    /// An institution's answer to the study's secure electronic request of `version` (MK403
    /// p.12.3, p.13; p.14.2, p.15, p.16): `answer.json`, put with its manifest where the answer
    /// step looks.
    InstitutionAnswer { registry: Registry, version: i64 },
}

/// A supplied file checked and written beside its place ([`Supply::stage`]): placed where the
/// import looks, or discarded; dropped unplaced, it is discarded. An institution's answer is a
/// folder (the answer and its manifest), placed whole.
#[derive(Debug)]
pub struct Staged {
    temporary: PathBuf,
    path: PathBuf,
    accepted: Accepted,
}

/// Where a file or folder is on its device (device and inode), to tell one placed file from
/// another; `None` where the platform does not say, or nothing is there.
fn identity(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
        #[cfg(unix)]
        Ok(m) => {
            use std::os::unix::fs::MetadataExt as _;
            Ok(Some((m.dev(), m.ino())))
        }
        #[cfg(not(unix))]
        Ok(_) => Ok(None),
    }
}

/// Placings and their undoing, one after the other.
static PLACING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `path` with `suffix` added to its name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl Staged {
    /// This file renamed into place, the one supplied before moved aside until the placing is
    /// recorded ([`Placed::keep`]) or undone ([`Placed::undo`]).
    pub fn place(mut self) -> std::io::Result<Placed> {
        // What was there is moved aside whole before the new one is renamed in, so the worker
        // reads the one or the other, never one being overwritten; two placings at once are
        // taken one after the other.
        let _one = PLACING.lock().unwrap_or_else(|e| e.into_inner());
        let aside = beside(&self.temporary, ".old");
        let placed = identity(&self.temporary)?;
        let moved = match std::fs::rename(&self.path, &aside) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        if let Err(e) = std::fs::rename(&self.temporary, &self.path) {
            // The one before goes back where it was: a failed placing loses nothing.
            if moved && let Err(back) = std::fs::rename(&aside, &self.path) {
                tracing::error!(error = %back, "a supplied file moved aside could not be put back");
            }
            return Err(e);
        }
        let temporary = std::mem::take(&mut self.temporary);
        Ok(Placed {
            path: self.path.clone(),
            placed,
            undone: beside(&temporary, ".new"),
            aside: moved.then_some(aside),
            accepted: self.accepted,
        })
    }
}

/// A supplied file in its place. The one it replaced is kept aside until the placing is
/// recorded: a placing whose audit fails is undone whole, and the file supplied before is
/// back, not lost. Dropped unsettled (a panic, a runtime shutting down while the audit was
/// written: recorded or not, nobody knows), nothing is removed: the new file stays placed and
/// the one before aside, destroyed with the study's files (MK403 p.26).
#[must_use = "a placing is kept once recorded, or undone"]
#[derive(Debug)]
pub struct Placed {
    path: PathBuf,
    /// The placed file's identity on disk, to tell it from one placed after it.
    placed: Option<(u64, u64)>,
    /// Where the new file goes while it is undone.
    undone: PathBuf,
    /// The file supplied before, moved aside.
    aside: Option<PathBuf>,
    pub accepted: Accepted,
}

impl Placed {
    /// Recorded: the file supplied before is overwritten and removed. If that fails, the new
    /// one stays placed (what was recorded), and what is left is destroyed with the study's
    /// files (MK403 p.26).
    pub fn keep(mut self) -> Accepted {
        self.remove_aside();
        self.accepted
    }

    fn remove_aside(&mut self) {
        if let Some(aside) = self.aside.take()
            && let Err(e) = remove(&aside)
        {
            tracing::warn!(error = %e, "a replaced supplied file could not be removed");
        }
    }

    /// Not recorded (the audit refused it): the new file overwritten and removed, the one
    /// supplied before put back where it was. If another file was placed after this one
    /// meanwhile (another upload, whose own audit decides), that one stays: this file is its
    /// file supplied before, and the one this replaced is older still, overwritten and
    /// removed.
    pub fn undo(mut self) -> std::io::Result<()> {
        let _one = PLACING.lock().unwrap_or_else(|e| e.into_inner());
        // Whatever fails below leaves the one before on disk, never shredded.
        let aside = self.aside.take();
        if self.placed.is_some() && identity(&self.path)? != self.placed {
            return match aside {
                Some(aside) => remove(&aside),
                None => Ok(()),
            };
        }
        match std::fs::rename(&self.path, &self.undone) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(aside) = aside
            && let Err(e) = std::fs::rename(&aside, &self.path)
        {
            // The one before cannot go back: the new one does, rather than nothing there; the
            // one before stays aside, destroyed with the study's files (MK403 p.26).
            let _ = std::fs::rename(&self.undone, &self.path);
            return Err(e);
        }
        remove(&self.undone)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.temporary.as_os_str().is_empty() {
            let _ = remove(&self.temporary);
        }
    }
}

/// A supplied file, or the folder of an answer with its manifest, overwritten and removed;
/// nothing there is no error.
fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(path),
        Ok(m) if m.is_dir() => {
            for entry in std::fs::read_dir(path)? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    crate::files::shred(&entry.path())?;
                }
            }
            std::fs::remove_dir_all(path)
        }
        Ok(_) => crate::files::shred(path),
    }
}

/// The problems a refusal reports at most (the count of rows refused is complete): a file of a
/// million bad rows is answered in a page, not in gigabytes.
pub const REPORTED: usize = 100;

/// A supplied file checked and accepted: how many data rows it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub rows: usize,
}

impl Supply {
    /// What the task of `step` (a run of study version `version`) takes from its person, if
    /// anything (`human`: the run is a person's task — an automated Service IS extraction or
    /// exchange takes no file).
    pub fn of(step: &Step, human: bool, version: i64) -> Option<Supply> {
        match step.kind {
            StepKind::AcquireServiceIs if human => Some(Supply::ManualExtraction),
            StepKind::ConsentCollection => Some(Supply::ConsentedContacts),
            // The request's task while it is open; the answer step once the request's task is
            // done and the answer has not come.
            StepKind::Request | StepKind::Answer if human || step.kind == StepKind::Answer => step
                .about
                .registry()
                .map(|registry| Supply::InstitutionAnswer { registry, version }),
            _ => None,
        }
    }

    /// The file's name in the study's inbox.
    pub fn file_name(self) -> &'static str {
        match self {
            Supply::ManualExtraction => MANUAL_EXTRACTION_FILE,
            Supply::ConsentedContacts => CONSENTED_CONTACTS_FILE,
            Supply::InstitutionAnswer { .. } => crate::exchange::ANSWER_FILE,
        }
    }

    /// The file's media type: CSV with a header row, or an institution's JSON answer.
    pub fn media(self) -> &'static str {
        match self {
            Supply::ManualExtraction | Supply::ConsentedContacts => "text/csv",
            Supply::InstitutionAnswer { .. } => "application/json",
        }
    }

    /// The MK403 point the file is supplied under.
    pub fn point(self) -> &'static str {
        match self {
            Supply::ManualExtraction => "p.22.1",
            Supply::ConsentedContacts => "p.31",
            Supply::InstitutionAnswer {
                registry: Registry::InformationCentre,
                ..
            } => "p.12.3",
            Supply::InstitutionAnswer {
                registry: Registry::PrisonAdministration,
                ..
            } => "p.14.2",
        }
    }

    /// The columns the file may have (its header names them), or the fields an answer's rows
    /// may name beside the subject's personal code.
    pub fn columns<'s>(self, spec: &'s Spec, step: &'s Step) -> Vec<&'s str> {
        match self {
            Supply::ManualExtraction => step.fields.iter().map(String::as_str).collect(),
            Supply::ConsentedContacts => contact_fields(spec),
            Supply::InstitutionAnswer { .. } => std::iter::once("personal_code")
                .chain(step.fields.iter().map(String::as_str))
                .collect(),
        }
    }

    /// Where the file goes: `inbox/<study>/<name>`; an answer to `inbox/<study>/<request>/`.
    pub fn path(self, inbox: &Path, study: &str) -> PathBuf {
        match self.exchange(study) {
            Some(id) => inbox.join(study).join(id).join(self.file_name()),
            None => inbox.join(study).join(self.file_name()),
        }
    }

    /// The secure electronic exchange an answer belongs to.
    fn exchange(self, study: &str) -> Option<String> {
        match self {
            Supply::InstitutionAnswer { registry, version } => {
                Some(crate::registry_plane::exchange_id(study, version, registry))
            }
            _ => None,
        }
    }

    /// What is placed: the file, or an answer's folder.
    fn placed(self, inbox: &Path, study: &str) -> PathBuf {
        match self.exchange(study) {
            Some(id) => inbox.join(study).join(id),
            None => self.path(inbox, study),
        }
    }

    /// Checks `bytes` whole, as the import will: an answer against the request sent, in
    /// `work`'s outbox (an `Err` when it is not there: answered already, or never sent).
    pub fn check(
        self,
        spec: &Spec,
        step: &Step,
        work: &Path,
        study: &str,
        bytes: &[u8],
    ) -> std::io::Result<Result<Accepted, Rejected>> {
        Ok(match self {
            Supply::ManualExtraction => {
                manual_extraction(spec, step, bytes).map(|s| Accepted { rows: s.len() })
            }
            Supply::ConsentedContacts => {
                consented_contacts(spec, bytes).map(|c| Accepted { rows: c.rows.len() })
            }
            Supply::InstitutionAnswer { registry, .. } => crate::exchange::check_against_sent(
                &work.join("outbox").join(study),
                &self.exchange(study).unwrap_or_default(),
                crate::registry_plane::sources_of(registry),
                bytes,
            )?
            .map(|rows| Accepted { rows }),
        })
    }

    /// Checks `bytes` whole and, when accepted, writes them beside their place in `work`'s
    /// inbox under a name of this call's own, synced, not yet where the import looks (an
    /// answer with its manifest, in a folder). Nothing is written when they are refused; at
    /// most [`REPORTED`] problems are kept in the refusal.
    pub fn stage(
        self,
        spec: &Spec,
        step: &Step,
        work: &Path,
        study: &str,
        bytes: &[u8],
    ) -> Result<Result<Staged, Rejected>, std::io::Error> {
        let accepted = match self.check(spec, step, work, study, bytes)? {
            Ok(a) => a,
            Err(mut rejected) => {
                rejected.problems.truncate(REPORTED);
                return Ok(Err(rejected));
            }
        };
        let inbox = work.join("inbox");
        let path = self.placed(&inbox, study);
        let folder = inbox.join(study);
        crate::files::private_dirs(&folder)?;
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let temporary = folder.join(format!(".{name}.{}.part", hex::encode(nonce)));
        let written = match self {
            Supply::InstitutionAnswer { .. } => crate::files::private_dir(&temporary)
                .and_then(|()| crate::exchange::write_answer(&temporary, bytes)),
            _ => crate::files::write_synced(&temporary, bytes),
        };
        if let Err(e) = written {
            let _ = remove(&temporary);
            return Err(e);
        }
        Ok(Ok(Staged {
            temporary,
            path,
            accepted,
        }))
    }
}

/// The Service IS sample from a manual extraction, as the import reads it (MK403 p.22.1): only
/// the columns the step asks for, and the personal code when the study links or follows up.
pub fn manual_extraction(
    spec: &Spec,
    step: &Step,
    bytes: &[u8],
) -> Result<Vec<crate::linkage::Subject>, Rejected> {
    let fields: Vec<&str> = step.fields.iter().map(String::as_str).collect();
    crate::csv_import::import(bytes, &fields, links_or_follows_up(spec))
}

/// The consented contact list, as the import reads it: only the contact fields the spec names
/// (MK403 p.32).
pub fn consented_contacts(spec: &Spec, bytes: &[u8]) -> Result<crate::contact::Contacts, Rejected> {
    crate::contact::import(bytes, &contact_fields(spec))
}

/// The contact fields the spec names for direct contact (MK403 p.32).
fn contact_fields(spec: &Spec) -> Vec<&str> {
    spec.direct_contact
        .as_ref()
        .map(|d| d.fields.iter().map(|f| f.0.as_str()).collect())
        .unwrap_or_default()
}

/// Whether the study's sample is linked to the registries or followed up, so its extraction
/// must carry the personal code (MK403 p.12.1, p.17).
pub fn links_or_follows_up(spec: &Spec) -> bool {
    spec.follow_up.is_some()
        || spec
            .data_scope
            .as_ref()
            .is_some_and(|d| d.information_centre.is_some() || d.prison_administration.is_some())
}

/// A file the engine prepared for a task, in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub name: String,
    pub path: PathBuf,
}

/// The files the engine prepared for the task of `step` in `outbox/<study>/`, given what the
/// preparing body recorded (`prepared`): a secure electronic request's cover letter, request
/// file and manifest (MK403 p.12.3, p.14.2); the Prison Administration's notice (p.8). Only
/// files that are there, in a stable order.
pub fn prepared(
    outbox: &Path,
    study: &str,
    step: &Step,
    prepared: Option<&serde_json::Value>,
) -> Vec<Prepared> {
    let folder = outbox.join(study);
    let candidates: Vec<PathBuf> = match step.kind {
        StepKind::Request => {
            let Some(id) = prepared
                .and_then(|p| p.get("sent"))
                .and_then(serde_json::Value::as_str)
                .filter(|id| plain(id))
            else {
                return Vec::new();
            };
            ["cover-letter.txt", "request.json", "MANIFEST.sha256"]
                .iter()
                .map(|n| folder.join(id).join(n))
                .collect()
        }
        StepKind::PrisonAdministrationNotice => vec![folder.join(NOTICE_FILE)],
        _ => Vec::new(),
    };
    candidates
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file()))
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            Some(Prepared { name, path })
        })
        .collect()
}

/// A plain file or folder name: nothing that climbs out of a folder.
pub fn plain(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str) -> (Spec, studyflow_plan::Plan) {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../specs/{name}.yaml")),
        )
        .unwrap();
        let spec = studyflow_spec::check(&bytes).spec.unwrap();
        let plan =
            studyflow_plan::compile(&spec, &bytes, &studyflow_calendar::Calendar::latvia(), None).0;
        (spec, plan)
    }

    /// One consenting subject's contacts, checked and placed in `work`'s inbox for study `s`.
    fn contacts_placed(spec: &Spec, consent: &Step, work: &Path) -> Placed {
        Supply::ConsentedContacts
            .stage(
                spec,
                consent,
                work,
                "s",
                b"first_name,last_name,email,phone\nAnna,Liepa,anna@example.lv,\n",
            )
            .unwrap()
            .unwrap()
            .place()
            .unwrap()
    }

    #[test]
    fn a_secure_electronic_request_hands_out_its_three_files_and_nothing_beside() {
        let (_, plan) = plan("resocialisation-programmes-university");
        let (_, step) = plan.steps_of(StepKind::Request).next().unwrap();
        let outbox = std::env::temp_dir().join(format!("sf-supply-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&outbox);
        let folder = outbox.join("s").join("s-v1-request");
        std::fs::create_dir_all(&folder).unwrap();
        for f in [
            "request.json",
            "MANIFEST.sha256",
            "cover-letter.txt",
            "other.txt",
        ] {
            std::fs::write(folder.join(f), f).unwrap();
        }
        let sent = serde_json::json!({"sent": "s-v1-request", "subjects": 3});
        let names: Vec<String> = prepared(&outbox, "s", step, Some(&sent))
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(
            names,
            ["cover-letter.txt", "request.json", "MANIFEST.sha256"]
        );
        // A recorded name that climbs out of the outbox, or none: nothing.
        for bad in ["../s", "..", "", ".hidden"] {
            let sent = serde_json::json!({ "sent": bad });
            assert!(
                prepared(&outbox, "s", step, Some(&sent)).is_empty(),
                "{bad}"
            );
        }
        assert!(prepared(&outbox, "s", step, None).is_empty());
        // A link planted in the outbox is not followed.
        #[cfg(unix)]
        {
            std::fs::remove_file(folder.join("request.json")).unwrap();
            std::os::unix::fs::symlink("/etc/passwd", folder.join("request.json")).unwrap();
            let names: Vec<String> = prepared(&outbox, "s", step, Some(&sent))
                .into_iter()
                .map(|p| p.name)
                .collect();
            assert_eq!(names, ["cover-letter.txt", "MANIFEST.sha256"]);
        }
        let _ = std::fs::remove_dir_all(&outbox);
    }

    #[test]
    fn the_survey_takes_its_extraction_and_its_contacts_and_a_refused_file_is_not_written() {
        let (spec, plan) = plan("probation-client-survey");
        let (_, acquire) = plan.steps_of(StepKind::AcquireServiceIs).next().unwrap();
        let (_, consent) = plan.steps_of(StepKind::ConsentCollection).next().unwrap();
        assert_eq!(Supply::of(acquire, true, 1), Some(Supply::ManualExtraction));
        assert_eq!(
            Supply::of(acquire, false, 1),
            None,
            "an automated extraction takes no file"
        );
        assert_eq!(
            Supply::of(consent, true, 1),
            Some(Supply::ConsentedContacts)
        );
        let columns = Supply::ConsentedContacts.columns(&spec, consent);
        assert_eq!(columns, ["first_name", "last_name", "email", "phone"]);
        let work = std::env::temp_dir().join(format!("sf-supply-in-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let inbox = work.join("inbox");
        let refused = Supply::ConsentedContacts
            .stage(
                &spec,
                consent,
                &work,
                "s",
                b"first_name,personal_code\nA,010101-10001\n",
            )
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.problems[0].row, 1);
        assert!(!Supply::ConsentedContacts.path(&inbox, "s").exists());
        // A first placing that could not be recorded, undone, leaves nothing.
        let placed = || contacts_placed(&spec, consent, &work);
        placed().undo().unwrap();
        assert!(!Supply::ConsentedContacts.path(&inbox, "s").exists());
        assert_eq!(
            std::fs::read_dir(inbox.join("s")).unwrap().count(),
            0,
            "nothing left beside it"
        );
        let accepted = placed().keep();
        assert_eq!(accepted.rows, 1);
        let path = Supply::ConsentedContacts.path(&inbox, "s");
        assert!(path.exists());
        // No temporary file left beside it.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        let _ = std::fs::remove_dir_all(&work);
    }

    /// The Prison Administration's answer to the university study's secure electronic request
    /// (MK403 p.14.2) is checked against the request as sent, with no study key: a row about a
    /// subject not asked about is refused and nothing written; the accepted answer is placed
    /// with its manifest where the answer step looks, and that step's own check (under the
    /// study's keys) takes it.
    #[test]
    fn an_institutions_answer_is_checked_against_the_request_sent_and_placed_for_the_import() {
        let (spec, plan) = plan("resocialisation-programmes-university");
        let (_, request) = plan.steps_of(StepKind::Request).next().unwrap();
        let kind = Supply::of(request, true, 2).unwrap();
        assert_eq!(
            kind,
            Supply::InstitutionAnswer {
                registry: Registry::PrisonAdministration,
                version: 2
            }
        );
        assert_eq!(
            (kind.file_name(), kind.media(), kind.point()),
            ("answer.json", "application/json", "p.14.2")
        );
        assert_eq!(kind.columns(&spec, request)[0], "personal_code");
        assert_eq!(
            Supply::of(request, false, 2),
            None,
            "the automated exchange takes no file"
        );
        let work = std::env::temp_dir().join(format!("sf-supply-answer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let id = crate::registry_plane::exchange_id("s", 2, Registry::PrisonAdministration);
        let codes = ["290758-10403", "325035-11782"];
        let fields: Vec<&str> = request.fields.iter().map(String::as_str).collect();
        // Not sent yet: nothing to check against.
        assert!(kind.stage(&spec, request, &work, "s", b"[]").is_err());
        crate::exchange::send(
            &work.join("outbox").join("s"),
            &id,
            "letter",
            &fields,
            &codes.map(crate::answers::Asked::code),
            None,
        )
        .unwrap();
        let placed = work.join("inbox").join("s").join(&id);
        let refused = kind
            .stage(
                &spec,
                request,
                &work,
                "s",
                br#"[{"personal_code":"290758-10403"},{"personal_code":"010101-10001"}]"#,
            )
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.problems.len(), 1, "{refused:?}");
        assert_eq!(refused.problems[0].row, 2);
        assert!(
            refused.problems[0].problem.contains("not asked about"),
            "{refused:?}"
        );
        assert!(!refused.to_string().contains("010101"), "{refused}");
        assert!(!placed.exists(), "nothing of a refused answer is written");
        let good = br#"[{"personal_code":"290758-10403"},{"personal_code":"325035-11782"}]"#;
        for _ in 0..2 {
            // Sent twice: the second replaces the first whole.
            let accepted = kind
                .stage(&spec, request, &work, "s", good)
                .unwrap()
                .unwrap()
                .place()
                .unwrap()
                .keep();
            assert_eq!(accepted.rows, 2);
        }
        assert_eq!(std::fs::read(placed.join("answer.json")).unwrap(), good);
        assert_eq!(
            kind.path(&work.join("inbox"), "s"),
            placed.join("answer.json")
        );
        // Nothing left beside it in the study's inbox.
        assert_eq!(std::fs::read_dir(work.join("inbox/s")).unwrap().count(), 1);
        // A third placing that could not be recorded is undone: the answer before is back
        // whole, nothing of the new one or of the undoing left.
        let other = br#"[{"personal_code":"325035-11782"},{"personal_code":"290758-10403"}]"#;
        let undone = kind
            .stage(&spec, request, &work, "s", other)
            .unwrap()
            .unwrap()
            .place()
            .unwrap();
        assert_eq!(std::fs::read(placed.join("answer.json")).unwrap(), other);
        undone.undo().unwrap();
        assert_eq!(std::fs::read(placed.join("answer.json")).unwrap(), good);
        assert_eq!(std::fs::read_dir(work.join("inbox/s")).unwrap().count(), 1);
        // Two placings overlapping (two uploads at once): the first, refused by its audit
        // after the second was placed, leaves the second where it is; the second, recorded,
        // removes the first. Nothing else is left.
        let stage = |bytes: &[u8]| {
            kind.stage(&spec, request, &work, "s", bytes)
                .unwrap()
                .unwrap()
                .place()
                .unwrap()
        };
        let first = stage(other);
        let second = stage(good);
        first.undo().unwrap();
        assert_eq!(std::fs::read(placed.join("answer.json")).unwrap(), good);
        second.keep();
        assert_eq!(std::fs::read(placed.join("answer.json")).unwrap(), good);
        assert_eq!(std::fs::read_dir(work.join("inbox/s")).unwrap().count(), 1);
        let keys = crate::vault::StudyKeys::generate("s");
        let sources = crate::registry_plane::sources_of(Registry::PrisonAdministration);
        let asked = crate::answers::Request::new(&keys, sources, &fields, codes);
        let rows = crate::exchange::receive(
            &work.join("inbox/s"),
            &work.join("outbox/s"),
            &id,
            &keys,
            sources,
            &asked,
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(!placed.exists(), "imported, and deleted");
        let _ = std::fs::remove_dir_all(&work);
    }

    /// A link planted where a supplied file goes is removed, never written through: the file
    /// it points at stays as it was.
    #[cfg(unix)]
    #[test]
    fn a_link_in_the_inbox_is_not_followed() {
        let (spec, plan) = plan("probation-client-survey");
        let (_, consent) = plan.steps_of(StepKind::ConsentCollection).next().unwrap();
        let work = std::env::temp_dir().join(format!("sf-supply-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("inbox/s")).unwrap();
        let precious = work.join("master.key");
        std::fs::write(&precious, "secret").unwrap();
        let path = Supply::ConsentedContacts.path(&work.join("inbox"), "s");
        std::os::unix::fs::symlink(&precious, &path).unwrap();
        contacts_placed(&spec, consent, &work).keep();
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "secret");
        assert!(
            !std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        std::os::unix::fs::symlink(&precious, work.join("inbox/s/other")).unwrap();
        crate::files::shred(&work.join("inbox/s/other")).unwrap();
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "secret");
        let _ = std::fs::remove_dir_all(&work);
    }
}
