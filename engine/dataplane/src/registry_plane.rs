//! The data plane that moves real data: the Service IS sample, the registries' answers, linkage,
//! deletion of identifiers, anonymisation, the follow-up waves and releases, each step reading
//! and writing datasets that the store keeps sealed under the study's keys between steps.
//!
//! Datasets holding identifying or pseudonymised data are marked so; the destruction step
//! (MK403 p.26) deletes them with the study's keys. Nothing identifying is ever written in
//! plaintext: not to the database, not to a log, not to a step's recorded output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use studyflow_plan::{Registry, StepKind};
use studyflow_spec::catalogue::Source;
use studyflow_spec::model::Exchange;
use studyflow_store::{Store, TaskMode};

use crate::anonymise::{self, AnonRecord, Policy, Record};
use crate::answers::Asked;
use crate::connector::Connector;
use crate::followup::{self, Anchor, Member, Period, WaveAnswer};
use crate::linkage::{self, AnswerRow, Subject};
use crate::vault::{MasterKey, StudyKeys};
use studyflow_runtime::clock::{Clock, micros, riga_date};
use studyflow_runtime::dataplane::{
    BoxFuture, DataPlane, StepContext, StepError, StepOutput, Subject as Cohort,
};

/// Where the Service IS sample comes from.
pub enum ServiceIs {
    /// The Service's database (p.10).
    Sql(studyflow_store::service_is::ServiceIsSource),
    /// A researcher's CSV export (p.22.1).
    Csv(PathBuf),
    /// Given in memory (tests, the demo).
    Subjects(Arc<Vec<Subject>>),
    /// None configured: an automated extraction fails with a clear message.
    None,
}

pub struct RegistryDataPlane {
    pub store: Store,
    pub master: MasterKey,
    pub service_is: ServiceIs,
    pub connector: Connector,
    /// Release folders are written below this folder.
    pub releases: PathBuf,
    /// The secure electronic exchange's folders (MK403 p.12.3, p.14.2), one subfolder per study.
    pub outbox: PathBuf,
    pub inbox: PathBuf,
    /// The external researchers' age public keys, one file per study (`<study>.txt`), to which
    /// the consented contact details are encrypted (MK403 p.32).
    pub recipients: PathBuf,
    pub clock: Arc<dyn Clock>,
}

impl RegistryDataPlane {
    /// The data plane with its folders in the work folder `work`: `releases/`, `outbox/`,
    /// `inbox/` and `recipients/`.
    pub fn new(
        store: Store,
        master: MasterKey,
        service_is: ServiceIs,
        connector: Connector,
        work: &std::path::Path,
        clock: Arc<dyn Clock>,
    ) -> RegistryDataPlane {
        RegistryDataPlane {
            store,
            master,
            service_is,
            connector,
            releases: work.join("releases"),
            outbox: work.join("outbox"),
            inbox: work.join("inbox"),
            recipients: work.join("recipients"),
            clock,
        }
    }
}

/// The file a service researcher puts in the study's inbox for a manual extraction from the
/// Service IS (MK403 p.22.1) before completing the task.
pub const MANUAL_EXTRACTION_FILE: &str = "service-is.csv";
/// The file with the consenting clients' contact details (MK403 p.31–32).
pub const CONSENTED_CONTACTS_FILE: &str = "consented-contacts.csv";

/// The p.8 notice letter the engine prepares in the study's outbox before its task opens.
pub const NOTICE_FILE: &str = "prison-administration-notice.txt";
/// Where the prepared notice asks the researcher for the results summary.
const NOTICE_SUMMARY: &str = "[the results summary: write it here before sending]";

/// How long a step waiting for a file or an answer sleeps before it looks again.
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_secs(86_400);

/// The name of a study's exchange with a registry, as the outbox and the inbox know it.
pub fn exchange_id(study: &str, version: i64, registry: Registry) -> String {
    let name = match registry {
        Registry::InformationCentre => "information-centre-request",
        Registry::PrisonAdministration => "prison-administration-request",
    };
    format!("{study}-v{version}-{name}")
}

/// The datasets of the data plane, by what they hold: the one place their names are made.
mod names {
    use studyflow_plan::{Registry, WaveRef};

    pub const SERVICE_IS: &str = "service_is";
    pub const LINKED_SUBJECTS: &str = "linked/subjects";
    pub const LINKED_ROWS: &str = "linked/rows";
    pub const CODES: &str = "vault/codes";
    pub const STUDY_IDS: &str = "vault/study_ids";
    /// Run pseudonym → what its waves need (sealed), in a study formed before one vault per
    /// run (see [`run`]).
    pub const RUNS: &str = "vault/runs";
    /// What a follow-up run needs (sealed): its subjects' study IDs (the runs never carry a
    /// released ID), anchor dates (the windows, p.19) and the codes the request names
    /// (p.12.1).
    pub fn run(run: &str) -> String {
        format!("{RUNS}/{run}")
    }
    /// Study ID → anchor dates: the cohort of a study formed before run pseudonyms (sealed).
    pub const COHORT: &str = "vault/cohort";
    pub const CONSENTED: &str = "contact/consented";
    /// Everything anonymised: kept after the keys are destroyed (p.27).
    pub const ANONYMISED: &str = "anonymised/";
    pub const TABLES: &str = "anonymised/tables";
    /// The study IDs the subjects' table released after the k-anonymity check.
    pub const RELEASED_IDS: &str = "anonymised/released_ids";
    /// Study ID → (waves the subject will have, whether some cannot run: its end is not
    /// known) — counts only, for the censoring of the follow-up tables.
    pub const EXPECTED_WAVES: &str = "anonymised/expected_waves";
    /// The joined follow-up answers, one per wave and subject.
    pub const FOLLOW_UPS: &str = "anonymised/followup/";

    /// The period and day a secure electronic request asked about (no identifier).
    pub fn asked(registry: Registry) -> String {
        format!("asked/{}", registry.as_str())
    }
    pub fn answer(registry: Registry) -> &'static str {
        match registry {
            Registry::InformationCentre => "answer/information_centre",
            Registry::PrisonAdministration => "answer/prison_administration",
        }
    }
    pub fn follow_up_raw(wave: &WaveRef, subject: &str) -> String {
        format!("followup/{}/{subject}/raw", wave.name)
    }
    /// Anonymised on arrival, not joined yet: under the run pseudonym (the join knows no
    /// other name), deleted by the join and, if it never runs, by the destruction.
    pub const ARRIVED: &str = "anonymised/arrived/";
    pub fn follow_up_arrived(wave: &WaveRef, run: &str) -> String {
        format!("{ARRIVED}{}/{run}", wave.name)
    }
    /// Joined: under a digest of what it holds, never the run pseudonym (which the runs and
    /// their audit date) — the same name when a join is retried.
    pub fn follow_up_joined(wave: &WaveRef, content: &str) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(content.as_bytes());
        format!("{FOLLOW_UPS}{}/{}", wave.name, hex::encode(&digest[..12]))
    }
}

/// Whether the study needs its subjects' personal codes: to link the registries' answers
/// (p.17) or to request the follow-ups (p.19).
fn links_or_follows_up(spec: &studyflow_spec::Spec) -> bool {
    spec.follow_up.is_some()
        || spec
            .data_scope
            .as_ref()
            .is_some_and(|d| d.information_centre.is_some() || d.prison_administration.is_some())
}

/// Every file below `dir`, recursively (none when it does not exist or cannot be read).
pub fn files_below(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The first byte of a stored dataset: sealed under the study's keys, or plain (anonymised).
const SEALED: u8 = 1;
const PLAIN: u8 = 0;

/// A subject of the sample as a request names it (MK403 p.12.1–12.2): the personal code, the
/// previous one, and the proceeding number when the extraction holds it.
fn asked(s: &Subject) -> Asked<'_> {
    Asked {
        personal_code: &s.personal_code,
        previous_personal_code: s.previous_personal_code.as_deref(),
        proceeding_number: s.values.get("proceeding_number").and_then(Value::as_str),
    }
}

/// A follow-up run's subjects, sealed under its run pseudonym: the subjects whose wave falls
/// due the same day (they share the anchor date of the wave's edge, and so the period their
/// request asks about), asked in one request (p.19); or, in a study whose cohort was formed
/// before batches, one subject.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum RunVault {
    Batch { members: Vec<Member> },
    One(Member),
}

impl RunVault {
    fn members(self) -> Vec<Member> {
        match self {
            RunVault::Batch { members } => members,
            RunVault::One(m) => vec![m],
        }
    }
}

/// A wave's anonymised answers as stored: a batch's, or one subject's (a study whose waves
/// ran per subject).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Arrived {
    Batch(Vec<WaveAnswer>),
    One(Box<WaveAnswer>),
}

impl Arrived {
    fn answers(self) -> Vec<WaveAnswer> {
        match self {
            Arrived::Batch(v) => v,
            Arrived::One(a) => vec![*a],
        }
    }
}

/// The follow-up runs of a cohort: per wave, one batch per due day (p.19). A wave whose edge is
/// not known for a subject (the end of a supervision still going on) has no run for it.
fn batches(
    waves: &[studyflow_plan::WaveRef],
    members: &[Member],
) -> BTreeMap<(&'static str, jiff::civil::Date), Vec<Member>> {
    let mut out: BTreeMap<(&'static str, jiff::civil::Date), Vec<Member>> = BTreeMap::new();
    for wave in waves {
        for m in members {
            if let Some(due) = followup::due(wave, &m.anchor) {
                out.entry((wave.name, due)).or_default().push(m.clone());
            }
        }
    }
    out
}

/// A fresh run pseudonym: random, unrelated to the study ID or anything else.
fn run_pseudonym() -> Result<String, StepError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| fail(format!("no randomness: {e}"), true))?;
    Ok(format!("R-{}", hex::encode(b)))
}

/// A dataset's JSON text.
fn encode<T: Serialize>(name: &str, value: &T) -> Result<String, StepError> {
    serde_json::to_string(value).map_err(|e| fail(format!("dataset {name}: {e}"), false))
}

/// A dataset stored plain (anonymised), decoded; a sealed one is refused.
fn decode_plain<T: DeserializeOwned>(name: &str, stored: &[u8]) -> Result<T, StepError> {
    let text = match stored.split_first() {
        Some((&PLAIN, plain)) => std::str::from_utf8(plain).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        fail(
            format!("dataset {name} is not stored as anonymised data"),
            false,
        )
    })?;
    serde_json::from_str(text).map_err(|e| fail(format!("dataset {name}: {e}"), false))
}

fn fail(message: impl Into<String>, retryable: bool) -> StepError {
    StepError::new(message, retryable)
}

fn store_err(e: studyflow_store::StoreError) -> StepError {
    fail(format!("database: {e}"), true)
}

impl RegistryDataPlane {
    /// The study's keys: made and stored wrapped when the first data arrives (`create`; the
    /// first writer wins); afterwards only read — once destroyed they are never made again.
    async fn keys(&self, study: &str, create: bool) -> Result<StudyKeys, StepError> {
        let wrapped = match self.store.study_keys(study).await.map_err(store_err)? {
            Some(w) => w,
            None if !create => {
                return Err(fail(
                    "the study's keys were destroyed (MK403 p.26); its identifying data no longer exists",
                    false,
                ));
            }
            None => {
                let fresh = StudyKeys::generate(study).wrap(&self.master);
                self.store
                    .put_study_keys(study, &fresh, micros(self.clock.now()))
                    .await
                    .map_err(store_err)?
            }
        };
        StudyKeys::unwrap(study, &wrapped, &self.master).map_err(|e| fail(e.to_string(), false))
    }

    /// Stores a dataset: sealed under the study's keys when it is identifying or pseudonymised
    /// (destroyed with them, p.26), as plain JSON when it is anonymised — anonymised data is
    /// kept for as long as the Service decides (p.27), so it must outlive the keys.
    async fn save<T: Serialize>(
        &self,
        keys: &StudyKeys,
        study: &str,
        name: &str,
        identifying: bool,
        value: &T,
    ) -> Result<(), StepError> {
        if !identifying {
            return self.save_plain(study, name, value).await;
        }
        let mut b = vec![SEALED];
        b.extend(keys.seal(&format!("dataset:{name}"), &encode(name, value)?));
        self.put(study, name, true, &b).await
    }

    /// Stores anonymised data, plain: it needs no key and outlives them (p.27).
    async fn save_plain<T: Serialize>(
        &self,
        study: &str,
        name: &str,
        value: &T,
    ) -> Result<(), StepError> {
        self.save_plain_at(study, name, value, micros(self.clock.now()))
            .await
    }

    /// Stores one subject's anonymised data without the time it was stored: the day a
    /// subject's wave arrives is its anchor date plus the wave's years, and would date every
    /// relative day of its released rows (p.7).
    async fn save_untimed<T: Serialize>(
        &self,
        study: &str,
        name: &str,
        value: &T,
    ) -> Result<(), StepError> {
        self.save_plain_at(study, name, value, 0).await
    }

    async fn save_plain_at<T: Serialize>(
        &self,
        study: &str,
        name: &str,
        value: &T,
        at: i64,
    ) -> Result<(), StepError> {
        let mut b = vec![PLAIN];
        b.extend(encode(name, value)?.into_bytes());
        self.put_at(study, name, false, &b, at).await
    }

    async fn put(
        &self,
        study: &str,
        name: &str,
        identifying: bool,
        stored: &[u8],
    ) -> Result<(), StepError> {
        self.put_at(study, name, identifying, stored, micros(self.clock.now()))
            .await
    }

    async fn put_at(
        &self,
        study: &str,
        name: &str,
        identifying: bool,
        stored: &[u8],
        at: i64,
    ) -> Result<(), StepError> {
        self.store
            .put_dataset(study, name, identifying, stored, at)
            .await
            .map_err(store_err)
    }

    async fn load<T: DeserializeOwned>(
        &self,
        keys: &StudyKeys,
        study: &str,
        name: &str,
    ) -> Result<T, StepError> {
        self.load_optional(keys, study, name)
            .await?
            .ok_or_else(|| fail(format!("dataset {name} is missing"), false))
    }

    /// A dataset that may not exist (a source the study does not use).
    async fn load_optional<T: DeserializeOwned>(
        &self,
        keys: &StudyKeys,
        study: &str,
        name: &str,
    ) -> Result<Option<T>, StepError> {
        let Some(stored) = self.store.dataset(study, name).await.map_err(store_err)? else {
            return Ok(None);
        };
        let text = match stored.split_first() {
            Some((&SEALED, sealed)) => keys
                .open(&format!("dataset:{name}"), sealed)
                .map_err(|e| fail(e.to_string(), false))?,
            Some((&PLAIN, plain)) => String::from_utf8(plain.to_vec())
                .map_err(|_| fail(format!("dataset {name} is damaged"), false))?,
            _ => return Err(fail(format!("dataset {name} is damaged"), false)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| fail(format!("dataset {name}: {e}"), false))
    }

    async fn sample(&self, ctx: &StepContext<'_>) -> Result<Vec<Subject>, StepError> {
        match &self.service_is {
            // A configuration to fix, not a failure of the study: it waits.
            ServiceIs::None => Err(StepError::waiting(
                "no Service IS source is configured (studyflow worker --service-is)",
                LOOK_AGAIN,
            )),
            ServiceIs::Subjects(s) => Ok(s.as_ref().clone()),
            ServiceIs::Csv(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| fail(format!("cannot read the Service IS export: {e}"), true))?;
                let fields: Vec<&str> = ctx.step.fields.iter().map(String::as_str).collect();
                crate::csv_import::import(&bytes, &fields, links_or_follows_up(ctx.spec))
                    .map_err(|e| fail(e.to_string(), false))
            }
            ServiceIs::Sql(src) => {
                let mut fields: Vec<&str> = ctx.step.fields.iter().map(String::as_str).collect();
                if !fields.contains(&"personal_code") {
                    fields.push("personal_code");
                }
                let rows = studyflow_store::service_is::read(src, &fields)
                    .await
                    .map_err(store_err)?;
                Ok(rows
                    .into_iter()
                    .enumerate()
                    .map(|(i, values)| Subject {
                        key: format!("S{:06}", i + 1),
                        personal_code: values
                            .get("personal_code")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        previous_personal_code: values
                            .get("previous_personal_code")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        values,
                    })
                    .collect())
            }
        }
    }

    /// The registry a request or answer step is about (typed in the plan).
    fn registry_of(ctx: &StepContext<'_>) -> Result<Registry, StepError> {
        ctx.step
            .about
            .registry()
            .ok_or_else(|| fail("a request or answer that names no registry", false))
    }

    /// The wave a follow-up step is about (typed in the plan).
    fn wave_of(ctx: &StepContext<'_>) -> Result<studyflow_plan::WaveRef, StepError> {
        ctx.step
            .about
            .wave()
            .ok_or_else(|| fail("a follow-up step that names no wave", false))
    }

    /// The catalogue sources a registry answers for.
    fn sources_of(registry: Registry) -> &'static [Source] {
        match registry {
            Registry::InformationCentre => &[Source::InformationCentre],
            Registry::PrisonAdministration => {
                &[Source::PrisonRulings, Source::PrisonResocialisation]
            }
        }
    }

    /// The period a baseline request to the Punishment Register asks about (MK403 p.3.3): the
    /// spec's, answered as of today. The Prison Administration's rulings carry dates that lie
    /// ahead by nature (a planned release), so its answers are checked against the request only.
    fn baseline_period(&self, ctx: &StepContext<'_>, registry: Registry) -> Option<Period> {
        let scope = ctx.spec.data_scope.as_ref()?;
        match registry {
            Registry::InformationCentre => scope.information_centre.as_ref().map(|ic| Period {
                from: ic.volume.period.from.0,
                to: ic.volume.period.to.0,
                as_of: riga_date(self.clock.now()),
            }),
            Registry::PrisonAdministration => None,
        }
    }

    async fn run(&self, ctx: StepContext<'_>) -> Result<StepOutput, StepError> {
        let study = ctx.study;
        let needs_data = matches!(
            ctx.step.kind,
            StepKind::AcquireServiceIs
                | StepKind::Request
                | StepKind::Answer
                | StepKind::MergeLink
                | StepKind::DeleteIdentifiers
                | StepKind::Anonymise
                | StepKind::FollowUpRequest
                | StepKind::FollowUpAnonymise
                | StepKind::FollowUpJoin
                | StepKind::Transfer
                | StepKind::Release
                | StepKind::QualityCheck
                | StepKind::ConsentCollection
                | StepKind::ContactTransfer
        );
        if !needs_data {
            return self.without_data(&ctx).await;
        }
        // Anonymised data only: it outlives the study's keys (p.27), so these steps need none
        // (a release may come after the destruction of the identifying data).
        if matches!(
            ctx.step.kind,
            StepKind::FollowUpJoin | StepKind::Transfer | StepKind::Release
        ) {
            return self.anonymised_step(&ctx).await;
        }
        // Keys are made by the first step that receives personal data: the extraction, or the
        // consent list when it comes first (never after destruction: the plan puts that last).
        let keys = self
            .keys(
                study,
                matches!(
                    ctx.step.kind,
                    StepKind::AcquireServiceIs | StepKind::ConsentCollection
                ),
            )
            .await?;
        let fields: Vec<&str> = ctx.step.fields.iter().map(String::as_str).collect();
        let record = match ctx.step.kind {
            StepKind::AcquireServiceIs if ctx.mode == TaskMode::TaskThenApply => {
                // Manual extraction (p.22.1): the researcher has put the export in the inbox.
                let path = self.inbox.join(study).join(MANUAL_EXTRACTION_FILE);
                if let Some(done) = self
                    .imported_before(study, names::SERVICE_IS, &path)
                    .await?
                {
                    return Ok(done);
                }
                let bytes = self.supplied(&path)?;
                let sample =
                    crate::csv_import::import(&bytes, &fields, links_or_follows_up(ctx.spec))
                        .map_err(|e| {
                            StepError::waiting(
                                format!("{}: {e}; put a corrected export there", path.display()),
                                LOOK_AGAIN,
                            )
                        })?;
                self.save(&keys, study, names::SERVICE_IS, true, &sample)
                    .await?;
                crate::contact::shred(&path)
                    .map_err(|e| fail(format!("{}: {e}", path.display()), true))?;
                json!({"subjects": sample.len(), "imported_from": "manual extraction (MK403 p.22.1)", "export_deleted": true})
            }
            StepKind::AcquireServiceIs => {
                let sample = self.sample(&ctx).await?;
                self.save(&keys, study, names::SERVICE_IS, true, &sample)
                    .await?;
                json!({"subjects": sample.len()})
            }
            StepKind::QualityCheck => {
                // Prepared for the sign-off task (p.18, p.22.2): counts and row positions only.
                let subjects: Vec<Record> = self.load(&keys, study, names::LINKED_SUBJECTS).await?;
                let today = riga_date(self.clock.now());
                let expected: Vec<&str> = ctx
                    .spec
                    .data_scope
                    .as_ref()
                    .and_then(|d| d.service_is.as_ref())
                    .map(|s| s.fields.0.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let expected: Vec<&str> = expected
                    .into_iter()
                    .filter(|k| {
                        studyflow_spec::catalogue::lookup(Source::ServiceIs, k).is_some_and(|f| {
                            f.class != studyflow_spec::catalogue::FieldClass::Identifier
                        })
                    })
                    .collect();
                let mut reports = BTreeMap::new();
                reports.insert(
                    "subjects".to_owned(),
                    crate::quality::check(&subjects, &expected, today),
                );
                if let Some(rows) = self
                    .load_optional::<BTreeMap<String, Vec<Record>>>(
                        &keys,
                        study,
                        names::LINKED_ROWS,
                    )
                    .await?
                {
                    for (source, records) in &rows {
                        let seen: std::collections::BTreeSet<&str> = records
                            .iter()
                            .flat_map(|r| r.values.keys().map(String::as_str))
                            .collect();
                        let seen: Vec<&str> = seen.into_iter().collect();
                        reports
                            .insert(source.clone(), crate::quality::check(records, &seen, today));
                    }
                }
                let findings: usize = reports
                    .values()
                    .map(crate::quality::QualityReport::findings)
                    .sum();
                json!({"quality": reports, "findings": findings,
                       "sign_off": "the service researcher checks this report before the data goes on (MK403 p.18, p.22.2)"})
            }
            StepKind::ConsentCollection => {
                // The consenting clients' contact details (p.31–32), supplied by the researcher.
                let path = self.inbox.join(study).join(CONSENTED_CONTACTS_FILE);
                if let Some(done) = self.imported_before(study, names::CONSENTED, &path).await? {
                    return Ok(done);
                }
                let bytes = self.supplied(&path)?;
                let allowed: Vec<&str> = ctx
                    .spec
                    .direct_contact
                    .as_ref()
                    .map(|d| d.fields.iter().map(|f| f.0.as_str()).collect())
                    .unwrap_or_default();
                let contacts = crate::contact::import(&bytes, &allowed).map_err(|e| {
                    StepError::waiting(
                        format!("{}: {e}; put a corrected list there", path.display()),
                        LOOK_AGAIN,
                    )
                })?;
                self.save(&keys, study, names::CONSENTED, true, &contacts)
                    .await?;
                crate::contact::shred(&path)
                    .map_err(|e| fail(format!("{}: {e}", path.display()), true))?;
                json!({"contacts": contacts.rows.len(), "columns": contacts.columns, "list_deleted": true})
            }
            StepKind::ContactTransfer => {
                self.contract_in_place(&ctx).await?;
                let contacts: crate::contact::Contacts =
                    self.load(&keys, study, names::CONSENTED).await?;
                let key_file = self.recipients.join(format!("{study}.txt"));
                if !key_file.exists() {
                    return Err(StepError::waiting(
                        format!(
                            "the external researcher's age public key is not at {} yet (MK403 p.32)",
                            key_file.display()
                        ),
                        LOOK_AGAIN,
                    ));
                }
                let recipients = crate::contact::recipients(&key_file)
                    .map_err(|e| StepError::waiting(e.to_string(), LOOK_AGAIN))?;
                let path = self
                    .releases
                    .join(study)
                    .join(format!("contacts-v{}.csv.age", ctx.version));
                let t = crate::contact::transfer(&contacts, &recipients, &path)
                    .map_err(|e| fail(e.to_string(), true))?;
                let detail = json!({"contacts": t.contacts, "recipients": t.recipients, "sha256": t.sha256, "columns": contacts.columns});
                return Ok(StepOutput {
                    record: json!({"file": t.file, "contacts": t.contacts, "recipients": t.recipients, "sha256": t.sha256}),
                    subjects: Vec::new(),
                    audit: vec![("contact.transferred", detail)],
                });
            }
            StepKind::Request => {
                let registry = Self::registry_of(&ctx)?;
                let exchange = match registry {
                    Registry::InformationCentre => ctx
                        .spec
                        .data_scope
                        .as_ref()
                        .and_then(|d| d.information_centre.as_ref())
                        .map(|s| s.exchange),
                    Registry::PrisonAdministration => ctx
                        .spec
                        .data_scope
                        .as_ref()
                        .and_then(|d| d.prison_administration.as_ref())
                        .map(|s| s.exchange),
                };
                let sample: Vec<Subject> = self.load(&keys, study, names::SERVICE_IS).await?;
                let codes: Vec<Asked<'_>> = sample.iter().map(asked).collect();
                if exchange == Some(Exchange::SecureElectronic) {
                    // The request goes to the outbox with its cover letter; the answer step
                    // waits for the inbox (MK403 p.12.3, p.14.2).
                    let id = exchange_id(study, ctx.version, registry);
                    let hash = self
                        .store
                        .version(study, Some(ctx.version))
                        .await
                        .map_err(store_err)?
                        .map(|v| v.plan_hash)
                        .unwrap_or_default();
                    let letter = crate::letters::Letters::new(None)
                        .and_then(|l| {
                            l.request(
                                ctx.spec,
                                &hash,
                                registry,
                                codes.len(),
                                riga_date(self.clock.now()),
                                crate::letters::signatory(ctx.spec).unwrap_or_default(),
                            )
                        })
                        .map_err(|e| fail(e.to_string(), false))?;
                    // The period and day asked about, kept to check the answer against when it
                    // arrives, however much later (p.3.3, p.12).
                    let period = self.baseline_period(&ctx, registry);
                    if let Some(p) = &period {
                        self.save_plain(study, &names::asked(registry), p).await?;
                    }
                    match crate::exchange::send(
                        &self.outbox.join(study),
                        &id,
                        &letter,
                        &fields,
                        &codes,
                        period.as_ref(),
                    ) {
                        Ok(_) | Err(crate::exchange::ExchangeError::Exists(_)) => {}
                        Err(e) => return Err(fail(e.to_string(), true)),
                    }
                    return Ok(StepOutput {
                        record: json!({"sent": id, "subjects": codes.len()}),
                        subjects: Vec::new(),
                        audit: Vec::new(),
                    });
                }
                self.registries_configured()?;
                let period = self.baseline_period(&ctx, registry);
                let rows = self
                    .connector
                    .query(
                        &keys,
                        Self::sources_of(registry)[0],
                        &fields,
                        &codes,
                        period.as_ref(),
                    )
                    .await
                    .map_err(|e| {
                        let retryable = e.retryable();
                        fail(e.to_string(), retryable)
                    })?;
                self.save(&keys, study, names::answer(registry), true, &rows)
                    .await?;
                json!({"rows": rows.len(), "period": period})
            }
            StepKind::Answer => {
                let registry = Self::registry_of(&ctx)?;
                let name = names::answer(registry);
                if self
                    .store
                    .dataset(study, name)
                    .await
                    .map_err(store_err)?
                    .is_none()
                {
                    // Secure electronic: the answer comes through the inbox.
                    let id = exchange_id(study, ctx.version, registry);
                    let sample: Vec<Subject> = self.load(&keys, study, names::SERVICE_IS).await?;
                    let codes: Vec<Asked<'_>> = sample.iter().map(asked).collect();
                    let sources = Self::sources_of(registry);
                    let request = crate::answers::Request::new(
                        &keys,
                        sources,
                        &fields,
                        codes.iter().flat_map(Asked::codes),
                    );
                    let received = crate::exchange::receive(
                        &self.inbox.join(study),
                        &self.outbox.join(study),
                        &id,
                        &keys,
                        sources,
                        &request,
                    );
                    match received {
                        Ok(Some(rows)) => {
                            // The answer keeps to the period asked about, as the automated
                            // exchange's does (MK403 p.3.3, p.12).
                            let asked: Option<Period> =
                                self.load_plain(study, &names::asked(registry)).await?;
                            if let Some(period) =
                                asked.or_else(|| self.baseline_period(&ctx, registry))
                                && let Err(e) =
                                    followup::check_period(rows.iter().map(|r| &r.values), &period)
                            {
                                return Err(StepError::waiting(
                                    format!("the answer to {id}: {e}"),
                                    LOOK_AGAIN,
                                ));
                            }
                            self.save(&keys, study, name, true, &rows).await?
                        }
                        Ok(None) => {
                            return Err(StepError::waiting(
                                format!("the answer to {id} has not arrived in the inbox"),
                                LOOK_AGAIN,
                            ));
                        }
                        // A rejected answer waits to be replaced: nothing of it was imported.
                        Err(e) => return Err(StepError::waiting(e.to_string(), LOOK_AGAIN)),
                    }
                }
                let rows: Vec<AnswerRow> = self.load(&keys, study, name).await?;
                json!({"rows": rows.len(), "validated": true})
            }
            StepKind::MergeLink => {
                let sample: Vec<Subject> = self.load(&keys, study, names::SERVICE_IS).await?;
                let mut answers: Vec<AnswerRow> = Vec::new();
                for registry in [Registry::InformationCentre, Registry::PrisonAdministration] {
                    let name = names::answer(registry);
                    if let Some(rows) = self
                        .load_optional::<Vec<AnswerRow>>(&keys, study, name)
                        .await?
                    {
                        answers.extend(rows);
                    }
                }
                let linked = linkage::link(&keys, &sample, &answers);
                self.save(&keys, study, names::LINKED_SUBJECTS, true, &linked.subjects)
                    .await?;
                self.save(&keys, study, names::LINKED_ROWS, true, &linked.rows)
                    .await?;
                serde_json::to_value(&linked.report).unwrap_or_default()
            }
            StepKind::DeleteIdentifiers => {
                // The follow-ups (p.19) are requested from the Service IS's own records: keep
                // only subject key → codes, sealed, for the engine alone; the rest goes.
                let sample: Vec<Subject> = self.load(&keys, study, names::SERVICE_IS).await?;
                let codes: BTreeMap<String, (String, Option<String>)> = sample
                    .iter()
                    .map(|s| {
                        (
                            s.key.clone(),
                            (s.personal_code.clone(), s.previous_personal_code.clone()),
                        )
                    })
                    .collect();
                self.save(&keys, study, names::CODES, true, &codes).await?;
                if self
                    .store
                    .dataset(study, names::LINKED_SUBJECTS)
                    .await
                    .map_err(store_err)?
                    .is_none()
                {
                    // No registry to link (the Service IS alone): the subjects without their
                    // identifiers are the study dataset.
                    let linked = linkage::link(&keys, &sample, &[]);
                    self.save(&keys, study, names::LINKED_SUBJECTS, true, &linked.subjects)
                        .await?;
                    self.save(&keys, study, names::LINKED_ROWS, true, &linked.rows)
                        .await?;
                }
                let deleted = self
                    .store
                    .delete_datasets(
                        study,
                        &[
                            names::SERVICE_IS,
                            names::answer(Registry::InformationCentre),
                            names::answer(Registry::PrisonAdministration),
                        ],
                    )
                    .await
                    .map_err(store_err)?;
                json!({"datasets_deleted": deleted, "fields_deleted": ctx.step.fields})
            }
            StepKind::Anonymise => {
                let subjects: Vec<Record> = self.load(&keys, study, names::LINKED_SUBJECTS).await?;
                let rows: BTreeMap<String, Vec<Record>> =
                    self.load(&keys, study, names::LINKED_ROWS).await?;
                let policy = ctx
                    .spec
                    .anonymisation
                    .as_ref()
                    .map(Policy::from_spec)
                    .ok_or_else(|| fail("no anonymisation policy", false))?;
                let out = anonymise::anonymise_study(
                    &subjects,
                    &rows,
                    &policy,
                    &anonymise::random_secret(),
                )
                .map_err(|b| fail(b.to_string(), false))?;
                let tables = &out.tables;
                self.save(&keys, study, names::TABLES, false, &tables)
                    .await?;
                self.save(&keys, study, names::STUDY_IDS, true, &out.vault)
                    .await?;
                let released: Vec<&str> = out.tables["subjects"]
                    .iter()
                    .map(|r| r.study_id.as_str())
                    .collect();
                self.save(&keys, study, names::RELEASED_IDS, false, &released)
                    .await?;
                // The cohort for the waves: the released subjects' study IDs and anchor dates
                // (p.19). A subject suppressed for k-anonymity is never released, so its
                // follow-ups are not requested either (p.7: no more data than the study uses).
                let released: std::collections::HashSet<&str> = released.into_iter().collect();
                let cohort: Vec<Cohort> = match &ctx.spec.follow_up {
                    Some(f) => {
                        let [start_key, end_key] = f.anchor_event.date_fields();
                        subjects
                            .iter()
                            .filter_map(|s| {
                                let id = out.vault.get(&s.subject)?;
                                if !released.contains(id.as_str()) {
                                    return None;
                                }
                                let date = |k: &str| {
                                    s.values
                                        .get(k)
                                        .and_then(Value::as_str)
                                        .and_then(|d| d.parse().ok())
                                };
                                Some(Cohort {
                                    pseudonym: id.clone(),
                                    start: date(start_key)?,
                                    end: date(end_key),
                                    wave: None,
                                })
                            })
                            .collect()
                    }
                    None => Vec::new(),
                };
                // The waves run in batches, one per wave and due day (p.19: one request per
                // registry and day, not one per subject), each under a run pseudonym of its
                // own, never a released study ID: the runs, their timers and the audit of them
                // would otherwise tell each released subject's anchor date. What a batch's runs
                // need is sealed under its pseudonym and goes with the keys (p.26).
                let codes: BTreeMap<String, (String, Option<String>)> = self
                    .load_optional(&keys, study, names::CODES)
                    .await?
                    .unwrap_or_default();
                let key_of: BTreeMap<&str, &str> = out
                    .vault
                    .iter()
                    .map(|(key, id)| (id.as_str(), key.as_str()))
                    .collect();
                let members: Vec<Member> = cohort
                    .iter()
                    .map(|c| Member {
                        study_id: c.pseudonym.clone(),
                        anchor: Anchor {
                            start: c.start,
                            end: c.end,
                        },
                        codes: key_of
                            .get(c.pseudonym.as_str())
                            .and_then(|k| codes.get(*k))
                            .cloned(),
                    })
                    .collect();
                let waves = ctx
                    .spec
                    .follow_up
                    .as_ref()
                    .map(studyflow_plan::waves)
                    .unwrap_or_default();
                let mut runs: Vec<Cohort> = Vec::new();
                for ((wave, due), members) in batches(&waves, &members) {
                    // The batch's members share the anchor date of the wave's edge, the date
                    // the engine's timer counts from (or, around 29 February, fall due the
                    // same day from it).
                    let edge = waves
                        .iter()
                        .find(|w| w.name == wave)
                        .and_then(|w| followup::edge_of(w, &members[0].anchor))
                        .unwrap_or(due);
                    let run = run_pseudonym()?;
                    self.save(
                        &keys,
                        study,
                        &names::run(&run),
                        true,
                        &RunVault::Batch { members },
                    )
                    .await?;
                    runs.push(Cohort {
                        pseudonym: run,
                        start: edge,
                        end: Some(edge),
                        wave: Some(wave.to_owned()),
                    });
                }
                let by_study_id: BTreeMap<&str, Anchor> = members
                    .iter()
                    .map(|m| (m.study_id.as_str(), m.anchor))
                    .collect();
                if ctx.spec.follow_up.is_some() {
                    let asked: Vec<(bool, i16)> = waves
                        .iter()
                        .map(|w| (w.edge == studyflow_plan::model::AnchorEdge::End, w.years))
                        .collect();
                    let cut_off = studyflow_plan::stage_deadline(
                        ctx.spec,
                        studyflow_spec::model::Stage::FollowUp,
                    );
                    let expected: BTreeMap<&str, (usize, Option<followup::Censoring>)> =
                        by_study_id
                            .iter()
                            .map(|(id, a)| {
                                (
                                    *id,
                                    followup::expected_waves(asked.iter().copied(), a, cut_off),
                                )
                            })
                            .collect();
                    self.save(&keys, study, names::EXPECTED_WAVES, false, &expected)
                        .await?;
                }
                return Ok(StepOutput {
                    record: json!({"k": out.report, "dropped": out.dropped, "subjects": out.tables["subjects"].len()}),
                    subjects: runs,
                    audit: Vec::new(),
                });
            }
            StepKind::FollowUpRequest => {
                let wave = Self::wave_of(&ctx)?;
                let members = self.run_vault(&keys, study, ctx.subject).await?;
                // Each subject by the personal code and the previous one if it changed
                // (p.12.1), in one request for the batch.
                let mut asked = Vec::with_capacity(members.len());
                for m in &members {
                    let (code, previous) = m
                        .codes
                        .as_ref()
                        .ok_or_else(|| fail("a subject's code is not in the vault", false))?;
                    asked.push(Asked {
                        personal_code: code,
                        previous_personal_code: previous.as_deref(),
                        proceeding_number: None,
                    });
                }
                // From the edge to the end of the wave's window, as of today (p.19): the
                // members share it (around 29 February their edges may differ by a day: the
                // request covers both, the anonymisation keeps each subject's own window).
                let today = riga_date(self.clock.now());
                let period = members
                    .iter()
                    .map(|m| followup::request_period(&wave, &m.anchor, today))
                    .collect::<Option<Vec<Period>>>()
                    .and_then(|all| {
                        all.into_iter().reduce(|a, p| Period {
                            from: a.from.min(p.from),
                            to: a.to.max(p.to),
                            as_of: today,
                        })
                    })
                    .ok_or_else(|| fail("the wave's anchor date is not known", false))?;
                self.registries_configured()?;
                let rows = self
                    .connector
                    .query(
                        &keys,
                        Source::InformationCentre,
                        &fields,
                        &asked,
                        Some(&period),
                    )
                    .await
                    .map_err(|e| {
                        let retryable = e.retryable();
                        fail(e.to_string(), retryable)
                    })?;
                self.save(
                    &keys,
                    study,
                    &names::follow_up_raw(&wave, ctx.subject),
                    true,
                    &rows,
                )
                .await?;
                json!({"subjects": members.len(), "rows": rows.len(), "wave": wave.name})
            }
            StepKind::FollowUpAnonymise => {
                let wave = Self::wave_of(&ctx)?;
                let raw_name = names::follow_up_raw(&wave, ctx.subject);
                let arrived = names::follow_up_arrived(&wave, ctx.subject);
                // Anonymised before, the commit lost (the raw answer is gone): done.
                if self
                    .store
                    .dataset(study, &arrived)
                    .await
                    .map_err(store_err)?
                    .is_some()
                {
                    return Ok(StepOutput {
                        record: json!({"anonymised_before": true, "wave": wave.name}),
                        ..StepOutput::default()
                    });
                }
                let members = self.run_vault(&keys, study, ctx.subject).await?;
                let rows: Vec<AnswerRow> = self.load(&keys, study, &raw_name).await?;
                // Anonymised on arrival (p.20): identifiers dropped, dates by the spec's
                // policy counted from the start of the anchor event, under the study ID.
                let policy = ctx
                    .spec
                    .anonymisation
                    .as_ref()
                    .map(Policy::from_spec)
                    .ok_or_else(|| fail("no anonymisation policy", false))?;
                let answers = followup::anonymise_batch(&wave, &policy, &members, rows)
                    .ok_or_else(|| fail("the wave's anchor date is not known", false))?;
                let events: usize = answers.iter().map(|a| a.events.len()).sum();
                self.save_untimed(study, &arrived, &answers).await?;
                self.store
                    .delete_datasets(study, &[raw_name.as_str()])
                    .await
                    .map_err(store_err)?;
                json!({"subjects": answers.len(), "events": events, "wave": wave.name})
            }
            _ => return self.without_data(&ctx).await,
        };
        Ok(StepOutput {
            record,
            subjects: Vec::new(),
            audit: Vec::new(),
        })
    }

    /// The steps on anonymised data alone: the follow-up join (p.20), the release to the
    /// study workspace (p.22.5, p.24) and the transfer to the external researcher (p.30).
    async fn anonymised_step(&self, ctx: &StepContext<'_>) -> Result<StepOutput, StepError> {
        let study = ctx.study;
        let record = match ctx.step.kind {
            StepKind::FollowUpJoin => {
                // Joined to the study dataset by study ID (p.20). A batch holds released
                // subjects only (the cohort for the waves is formed from the subjects' table
                // the k-anonymity check released), and the release keeps only the released
                // subjects' rows again, so the join itself looks up nothing.
                let wave = Self::wave_of(ctx)?;
                let arrived = names::follow_up_arrived(&wave, ctx.subject);
                let Some(stored) = self
                    .store
                    .dataset(study, &arrived)
                    .await
                    .map_err(store_err)?
                else {
                    // Joined before, the commit lost: nothing more to do.
                    return Ok(StepOutput {
                        record: json!({"joined_before": true}),
                        ..StepOutput::default()
                    });
                };
                let joined = decode_plain::<Arrived>(&arrived, &stored)?.answers();
                if !joined.is_empty() {
                    let text = encode(&arrived, &joined)?;
                    self.save_untimed(study, &names::follow_up_joined(&wave, &text), &joined)
                        .await?;
                }
                self.store
                    .delete_datasets(study, &[arrived.as_str()])
                    .await
                    .map_err(store_err)?;
                json!({"joined": joined.len(), "wave": wave.name})
            }
            StepKind::Transfer | StepKind::Release => {
                if ctx.step.kind == StepKind::Transfer {
                    self.contract_in_place(ctx).await?;
                }
                let (tables, per_wave) = self.analysis_dataset(ctx).await?;
                let label = match ctx.step.about.wave() {
                    Some(w) => format!("-{}", w.name),
                    None if ctx.step.kind == StepKind::Release => "-baseline".to_owned(),
                    None => "-transfer".to_owned(),
                };
                // Named by version and step, never by the day: a retry after a crash finds the
                // folder it wrote, whatever the date.
                let folder = self
                    .releases
                    .join(study)
                    .join(format!("v{}{label}", ctx.version));
                let to = if ctx.step.kind == StepKind::Transfer {
                    "the external researcher (MK403 p.30)"
                } else {
                    "the study workspace of the authorised service researchers (MK403 p.22.5, p.24)"
                };
                let described = crate::datapackage::Description::of(
                    ctx.spec,
                    ctx.version,
                    label.trim_start_matches('-'),
                    to,
                );
                let written = tokio::task::spawn_blocking({
                    let folder = folder.clone();
                    move || {
                        let list: Vec<crate::release::Table<'_>> = tables
                            .iter()
                            .map(|(name, records)| crate::release::Table { name, records })
                            .collect();
                        crate::release::write_described(&folder, &list, &described)
                    }
                })
                .await
                .map_err(|e| fail(format!("the release writer stopped: {e}"), true))?;
                match written {
                    Ok(w) => {
                        let detail = json!({"folder": w.folder, "files": w.files, "follow_up_events": per_wave, "for": to});
                        return Ok(StepOutput {
                            record: json!({"release": w.folder, "files": w.files.len(), "follow_up_events": per_wave, "for": to}),
                            subjects: Vec::new(),
                            audit: vec![("release.written", detail)],
                        });
                    }
                    Err(crate::release::ReleaseError::Exists(_)) => {
                        // Written before, the commit lost: the audit event goes with this
                        // finish, from the release's own manifest.
                        let files = crate::release::manifest(&folder)
                            .map_err(|e| fail(e.to_string(), false))?;
                        let detail = json!({"folder": folder, "files": files, "follow_up_events": per_wave, "for": to, "written_before": true});
                        return Ok(StepOutput {
                            record: json!({"release": folder, "files": files.len(), "follow_up_events": per_wave, "for": to, "written_before": true}),
                            subjects: Vec::new(),
                            audit: vec![("release.written", detail)],
                        });
                    }
                    Err(e) => return Err(fail(e.to_string(), false)),
                }
            }
            _ => return self.without_data(ctx).await,
        };
        Ok(StepOutput {
            record,
            subjects: Vec::new(),
            audit: Vec::new(),
        })
    }

    /// A dataset stored plain (anonymised); a sealed one is refused.
    async fn load_plain<T: DeserializeOwned>(
        &self,
        study: &str,
        name: &str,
    ) -> Result<Option<T>, StepError> {
        let Some(stored) = self.store.dataset(study, name).await.map_err(store_err)? else {
            return Ok(None);
        };
        decode_plain(name, &stored).map(Some)
    }

    /// The subjects of a follow-up run, from the sealed vault: its own (a batch), else the one
    /// map of a study formed before batches, else — a study formed before run pseudonyms, which
    /// ran its waves under the study IDs themselves — the anchors, study IDs and codes kept
    /// apart.
    async fn run_vault(
        &self,
        keys: &StudyKeys,
        study: &str,
        run: &str,
    ) -> Result<Vec<Member>, StepError> {
        if let Some(v) = self
            .load_optional::<RunVault>(keys, study, &names::run(run))
            .await?
        {
            return Ok(v.members());
        }
        let missing = || fail("the subject is not in the study's cohort", false);
        if let Some(mut vault) = self
            .load_optional::<BTreeMap<String, RunVault>>(keys, study, names::RUNS)
            .await?
        {
            return vault.remove(run).map(RunVault::members).ok_or_else(missing);
        }
        let anchors: BTreeMap<String, Anchor> = self.load(keys, study, names::COHORT).await?;
        let ids: BTreeMap<String, String> = self.load(keys, study, names::STUDY_IDS).await?;
        let codes: BTreeMap<String, (String, Option<String>)> =
            self.load(keys, study, names::CODES).await?;
        let key = ids.iter().find(|(_, id)| *id == run).map(|(k, _)| k);
        Ok(vec![Member {
            study_id: run.to_owned(),
            anchor: anchors.get(run).copied().ok_or_else(missing)?,
            codes: key.and_then(|k| codes.get(k)).cloned(),
        }])
    }

    /// The analysis dataset as it stands: the anonymised baseline tables and the follow-up
    /// waves joined so far (MK403 p.20) — waves, events, and each subject's observation for a
    /// survival analysis. Also the events found per wave, for people.
    async fn analysis_dataset(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<(BTreeMap<String, Vec<AnonRecord>>, BTreeMap<String, usize>), StepError> {
        let study = ctx.study;
        let mut tables: BTreeMap<String, Vec<AnonRecord>> = self
            .load_plain(study, names::TABLES)
            .await?
            .ok_or_else(|| fail(format!("dataset {} is missing", names::TABLES), false))?;
        if ctx.spec.follow_up.is_none() {
            return Ok((tables, BTreeMap::new()));
        }
        let mut answers = Vec::new();
        for (name, stored) in self
            .store
            .datasets_under(study, names::FOLLOW_UPS)
            .await
            .map_err(store_err)?
        {
            answers.extend(decode_plain::<Arrived>(&name, &stored)?.answers());
        }
        let released: std::collections::BTreeSet<&str> = tables
            .get("subjects")
            .map(|t| t.iter().map(|r| r.study_id.as_str()).collect())
            .unwrap_or_default();
        let plan: BTreeMap<String, (usize, Option<followup::Censoring>)> = self
            .load_plain(study, names::EXPECTED_WAVES)
            .await?
            .unwrap_or_default();
        // A released subject outside the cohort had no anchor date: no wave for it.
        let expected = |id: &str| {
            plan.get(id)
                .copied()
                .unwrap_or((0, Some(followup::Censoring::AnchorNotKnown)))
        };
        let unit = followup::Unit::of(
            ctx.spec
                .anonymisation
                .as_ref()
                .map_or(studyflow_spec::model::DatePolicy::RelativeToAnchor, |a| {
                    a.date_policy
                }),
        );
        let t = followup::tables(&answers, &released, &expected, unit);
        let per_wave = t.events_per_wave();
        tables.insert("follow_up_waves".to_owned(), t.waves);
        tables.insert("follow_up_events".to_owned(), t.events);
        tables.insert("follow_up_observation".to_owned(), t.observation);
        Ok((tables, per_wave))
    }

    /// A retried import whose data is already saved (the file was removed after the save, the
    /// commit did not happen): nothing to import again; a file still there is removed.
    async fn imported_before(
        &self,
        study: &str,
        dataset: &str,
        file: &std::path::Path,
    ) -> Result<Option<StepOutput>, StepError> {
        if self
            .store
            .dataset(study, dataset)
            .await
            .map_err(store_err)?
            .is_none()
        {
            return Ok(None);
        }
        if file.exists() {
            crate::contact::shred(file)
                .map_err(|e| fail(format!("{}: {e}", file.display()), true))?;
        }
        Ok(Some(StepOutput {
            record: json!({"imported_before": true}),
            ..StepOutput::default()
        }))
    }

    /// Nothing leaves for an external researcher without the contract, its non-disclosure
    /// declarations and recorded measures (MK403 p.30.2, p.33): the plan's gate comes first,
    /// this checks once more.
    async fn contract_in_place(&self, ctx: &StepContext<'_>) -> Result<(), StepError> {
        if ctx.spec.external.is_none() {
            return Ok(());
        }
        let contract = self.store.contract(ctx.study).await.map_err(store_err)?;
        if contract.is_some_and(|c| c.measures_recorded) {
            Ok(())
        } else {
            Err(fail(
                "no contract with non-disclosure declarations and recorded measures: nothing is transferred to an external researcher (MK403 p.30.2, p.33)",
                false,
            ))
        }
    }

    /// A registry query needs the registries' address; without it the step waits for the
    /// configuration to be fixed (it is not the study's failure).
    fn registries_configured(&self) -> Result<(), StepError> {
        if self.connector.is_configured() {
            Ok(())
        } else {
            Err(StepError::waiting(
                "no registry address is configured (studyflow worker --registries)",
                LOOK_AGAIN,
            ))
        }
    }

    /// A file a person supplies through the inbox; the step waits while it is not there.
    fn supplied(&self, path: &std::path::Path) -> Result<Vec<u8>, StepError> {
        match std::fs::read(path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StepError::waiting(
                format!("{} is not there yet", path.display()),
                LOOK_AGAIN,
            )),
            Err(e) => Err(fail(format!("{}: {e}", path.display()), true)),
        }
    }
}

impl RegistryDataPlane {
    /// Steps that move no data: human decisions recorded by their tasks, destruction (the store
    /// deletes the identifying datasets and the keys as it finishes), and retention.
    async fn without_data(&self, ctx: &StepContext<'_>) -> Result<StepOutput, StepError> {
        let mut record = json!({"kind": ctx.step.kind});
        if ctx.step.kind == StepKind::PrisonAdministrationNotice
            && ctx.mode == TaskMode::PrepareThenTask
        {
            // The p.8 notice is prepared before its task opens: the publication date, the
            // computed deadline, the signatory; the researcher writes the results summary in
            // and sends it.
            let letter = crate::letters::Letters::new(None).and_then(|l| {
                l.notice_for(
                    ctx.spec,
                    ctx.step,
                    NOTICE_SUMMARY,
                    riga_date(self.clock.now()),
                    crate::letters::signatory(ctx.spec).unwrap_or_default(),
                )
            });
            let letter = match letter {
                Ok(l) => l,
                // No publication planned yet: the task opens without a prepared letter.
                Err(crate::letters::LetterError::NotApplicable(why)) => {
                    return Ok(StepOutput {
                        record: json!({"letter": null, "why": why}),
                        ..StepOutput::default()
                    });
                }
                Err(e) => return Err(fail(e.to_string(), false)),
            };
            let folder = self.outbox.join(ctx.study);
            std::fs::create_dir_all(&folder)
                .map_err(|e| fail(format!("{}: {e}", folder.display()), true))?;
            let path = folder.join(NOTICE_FILE);
            // Written once: a retried preparation leaves a letter the researcher may be
            // editing as it is.
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, letter.as_bytes()));
            match written {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(fail(format!("{}: {e}", path.display()), true)),
            }
            return Ok(StepOutput {
                record: json!({"letter": NOTICE_FILE, "deadline": ctx.step.deadline.as_ref().and_then(|d| d.date)}),
                ..StepOutput::default()
            });
        }
        if ctx.step.kind == StepKind::DestroyIdentifying {
            // The store deletes the identifying datasets and the keys as this step finishes;
            // the files that held identifiers in plaintext go now: what people put in the inbox
            // and the request files in the outbox (a study terminated mid-exchange leaves
            // some). Cover letters carry no identifier and stay as the record of the exchange.
            let mut files = files_below(&self.inbox.join(ctx.study));
            files.extend(
                files_below(&self.outbox.join(ctx.study))
                    .into_iter()
                    .filter(|p| p.file_name().is_some_and(|n| n == "request.json")),
            );
            for f in &files {
                crate::contact::shred(f)
                    .map_err(|e| fail(format!("{}: {e}", f.display()), true))?;
            }
            // An answer anonymised but never joined (a terminated study's) lies under its run
            // pseudonym with its study ID: the one link between the two outside the vault.
            let unjoined = self
                .store
                .dataset_names(ctx.study, names::ARRIVED)
                .await
                .map_err(store_err)?;
            let unjoined: Vec<&str> = unjoined.iter().map(String::as_str).collect();
            self.store
                .delete_datasets(ctx.study, &unjoined)
                .await
                .map_err(store_err)?;
            record = json!({"plaintext_files_deleted": files.len()});
        }
        if ctx.step.kind == StepKind::AnonymisedRetention {
            let keep = ctx
                .spec
                .retention
                .as_ref()
                .and_then(|r| r.anonymised_data.as_ref())
                .map(|t| t.keep);
            if keep.is_some_and(|k| k != studyflow_spec::model::Keep::Permanent) {
                let names = self
                    .store
                    .dataset_names(ctx.study, names::ANONYMISED)
                    .await
                    .map_err(store_err)?;
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let n = self
                    .store
                    .delete_datasets(ctx.study, &names)
                    .await
                    .map_err(store_err)?;
                record = json!({"anonymised_datasets_deleted": n});
            } else {
                record = json!({"anonymised_data": "kept permanently (MK403 p.27)"});
            }
        }
        Ok(StepOutput {
            record,
            subjects: Vec::new(),
            audit: Vec::new(),
        })
    }
}

impl DataPlane for RegistryDataPlane {
    fn execute<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(self.run(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use studyflow_plan::WaveRef;
    use studyflow_plan::model::AnchorEdge;

    fn member(id: &str, start: &str, end: Option<&str>) -> Member {
        Member {
            study_id: id.to_owned(),
            anchor: Anchor {
                start: start.parse().unwrap(),
                end: end.map(|e| e.parse().unwrap()),
            },
            codes: None,
        }
    }

    /// One run per wave and due day (p.19): subjects due the same day share a request; a wave
    /// from an end not known yet has no run for its subject.
    #[test]
    fn follow_ups_are_batched_by_wave_and_due_day() {
        let wave = |name, edge, years| WaveRef {
            name,
            point: "p.19.1",
            edge,
            years,
            since_years: 0,
        };
        let waves = [
            wave("1y_after_start", AnchorEdge::Start, 1),
            wave("1y_after_end", AnchorEdge::End, 1),
        ];
        let members = [
            member("S-a", "2026-03-10", Some("2026-09-01")),
            member("S-b", "2026-03-10", Some("2026-10-01")),
            member("S-c", "2026-03-11", None),
        ];
        let b = batches(&waves, &members);
        let summary: Vec<(&str, String, Vec<&str>)> = b
            .iter()
            .map(|((w, due), m)| {
                (
                    *w,
                    due.to_string(),
                    m.iter().map(|m| m.study_id.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("1y_after_end", "2027-09-01".to_owned(), vec!["S-a"]),
                ("1y_after_end", "2027-10-01".to_owned(), vec!["S-b"]),
                (
                    "1y_after_start",
                    "2027-03-10".to_owned(),
                    vec!["S-a", "S-b"]
                ),
                ("1y_after_start", "2027-03-11".to_owned(), vec!["S-c"]),
            ]
        );
    }
}
