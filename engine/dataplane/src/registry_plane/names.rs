//! The datasets of the data plane, by what they hold: the one place their names, types and
//! envelopes are declared.

use std::collections::{BTreeMap, HashMap};

use studyflow_plan::{Registry, WaveRef};

use super::datasets::{Dataset, Envelope};
use crate::anonymise::{AnonRecord, AnonymisedTables};
use crate::followup::{Anchor, Censoring, Member, Period, WaveAnswer};
use crate::linkage::{AnswerRow, LinkedTables, Subject};
use crate::table::Table;
use crate::values::Values;

/// Subject key → personal code and the previous one.
pub type Codes = BTreeMap<String, (String, Option<String>)>;
/// Study ID → (waves the subject will have, whether some cannot run: its end is not known).
pub type ExpectedWaves = BTreeMap<String, (usize, Option<Censoring>)>;

/// The Service IS sample, with the identifiers the requests name.
pub const SERVICE_IS: Dataset<Vec<Subject>> = Dataset::sealed("service_is");
/// The linked study: the subjects and the registries' rows, without identifiers.
pub const LINKED: Dataset<LinkedTables> = Dataset::sealed("linked/tables");
/// The linked subjects of a study linked before tables, under their subject keys.
pub const LINKED_SUBJECTS_BEFORE_TABLES: Dataset<Vec<LinkedRecord>> =
    Dataset::sealed("linked/subjects");
/// Source name → the linked rows of that source, in a study linked before tables.
pub const LINKED_ROWS_BEFORE_TABLES: Dataset<BTreeMap<String, Vec<LinkedRecord>>> =
    Dataset::sealed("linked/rows");
/// The personal codes the follow-ups ask by (p.19), kept for the engine alone.
pub const CODES: Dataset<Codes> = Dataset::sealed("vault/codes");
/// Subject key → study ID, in a study whose waves ran under the study IDs themselves.
pub const STUDY_IDS: Dataset<HashMap<String, String>> = Dataset::sealed("vault/study_ids");
/// Run pseudonym → what its waves need, in a study formed before one vault per run (see
/// [`run`]).
pub const RUNS: Dataset<BTreeMap<String, RunVault>> = Dataset::sealed("vault/runs");
/// What a follow-up run needs: its subjects' study IDs (the runs never carry a released ID),
/// anchor dates (the windows, p.19) and the codes the request names (p.12.1).
pub fn run(run: &str) -> Dataset<RunVault> {
    Dataset::named(format!("vault/runs/{run}").into(), Envelope::Sealed)
}
/// Study ID → anchor dates: the cohort of a study formed before run pseudonyms.
pub const COHORT: Dataset<BTreeMap<String, Anchor>> = Dataset::sealed("vault/cohort");
/// The consenting clients' contact details (p.31–32).
pub const CONSENTED: Dataset<crate::contact::Contacts> = Dataset::sealed("contact/consented");
/// Everything anonymised: kept after the keys are destroyed (p.27).
pub const ANONYMISED: &str = "anonymised/";
/// The anonymised study: the baseline tables under the released study IDs.
pub const BASELINE: Dataset<AnonymisedTables> = Dataset::anonymised("anonymised/baseline");
/// The anonymised baseline tables of a study anonymised before tables, as rows of values.
pub const TABLES_BEFORE_TABLES: Dataset<BTreeMap<String, Vec<AnonRecord>>> =
    Dataset::anonymised("anonymised/tables");
/// Counts only, for the censoring of the follow-up tables.
pub const EXPECTED_WAVES: Dataset<ExpectedWaves> = Dataset::anonymised("anonymised/expected_waves");
/// The joined follow-up answers, per wave and batch.
pub const FOLLOW_UPS: &str = "anonymised/followup/";

/// The period and day a secure electronic request asked about (no identifier).
pub fn asked(registry: Registry) -> Dataset<Period> {
    Dataset::named(
        format!("asked/{}", registry.as_str()).into(),
        Envelope::Anonymised,
    )
}

/// A registry's answer to the baseline request, with its identifiers.
pub fn answer(registry: Registry) -> Dataset<Vec<AnswerRow>> {
    Dataset::sealed(match registry {
        Registry::InformationCentre => "answer/information_centre",
        Registry::PrisonAdministration => "answer/prison_administration",
    })
}

/// A follow-up run's raw answer, with its identifiers, until it is anonymised (p.20).
pub fn follow_up_raw(wave: &WaveRef, run: &str) -> Dataset<Vec<AnswerRow>> {
    Dataset::named(
        format!("followup/{}/{run}/raw", wave.name).into(),
        Envelope::Sealed,
    )
}

/// Anonymised on arrival, not joined yet: under the run pseudonym (the join knows no other
/// name), deleted by the join and, if it never runs, by the destruction.
pub const ARRIVED: &str = "anonymised/arrived/";
pub fn follow_up_arrived(wave: &WaveRef, run: &str) -> Dataset<Arrived> {
    Dataset::named(
        format!("{ARRIVED}{}/{run}", wave.name).into(),
        Envelope::AnonymisedUntimed,
    )
}

/// Joined: under a digest of what it holds, never the run pseudonym (which the runs and their
/// audit date) — the same name when a join is retried.
pub fn follow_up_joined(wave: &WaveRef, content: &[u8]) -> Dataset<Arrived> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(content);
    Dataset::named(
        format!("{FOLLOW_UPS}{}/{}", wave.name, hex::encode(&digest[..12])).into(),
        Envelope::AnonymisedUntimed,
    )
}

/// A follow-up run's subjects, sealed under its run pseudonym: the subjects whose wave falls
/// due the same day (they share the anchor date of the wave's edge, and so the period their
/// request asks about), asked in one request (p.19); or, in a study whose cohort was formed
/// before batches, one subject.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub(super) enum RunVault {
    Batch { members: Vec<Member> },
    One(Member),
}

impl RunVault {
    pub(super) fn members(self) -> Vec<Member> {
        match self {
            RunVault::Batch { members } => members,
            RunVault::One(m) => vec![m],
        }
    }
}

/// A wave's anonymised answers as stored: a batch's, or one subject's (a study whose waves ran
/// per subject).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub(super) enum Arrived {
    Batch(Vec<WaveAnswer>),
    One(Box<WaveAnswer>),
}

impl Arrived {
    pub(super) fn answers(self) -> Vec<WaveAnswer> {
        match self {
            Arrived::Batch(v) => v,
            Arrived::One(a) => vec![*a],
        }
    }
}

/// A linked row of a study linked before tables: its subject's key and its values.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct LinkedRecord {
    pub subject: String,
    pub values: Values,
}

/// The linked study of a study linked before tables, as tables; `None` when a subject's key is
/// there twice (two subjects would share a study ID) or a row's subject is not there.
pub(super) fn linked_from_records(
    subjects: Vec<LinkedRecord>,
    rows: BTreeMap<String, Vec<LinkedRecord>>,
) -> Option<LinkedTables> {
    let at: HashMap<&str, u32> = subjects
        .iter()
        .enumerate()
        .map(|(i, s)| (s.subject.as_str(), i as u32))
        .collect();
    let orphan = rows
        .values()
        .flatten()
        .any(|r| !at.contains_key(r.subject.as_str()));
    if at.len() != subjects.len() || orphan {
        return None;
    }
    let table = Table::from_rows("subjects", subjects.iter().map(|s| (None, &s.values)), true);
    let report = crate::linkage::LinkageReport {
        subjects: subjects.len(),
        ..Default::default()
    };
    let mut sources = Vec::new();
    for (name, records) in &rows {
        let t = Table::from_rows(
            name,
            records.iter().filter_map(|r| {
                let s = at.get(r.subject.as_str())?;
                Some((Some(*s), &r.values))
            }),
            true,
        );
        sources.push(t);
    }
    Some(LinkedTables {
        keys: subjects.into_iter().map(|s| s.subject).collect(),
        subjects: table,
        sources,
        report,
    })
}
