//! What the engine tells people about a study, typed: its state, each step's runs, the
//! deadlines missed, and the releases written. The CLI (and later the server) render it; none
//! of them reads the store or decodes a run's recorded output for itself.
//!
//! Nothing here names a subject: per-subject steps are counted, never listed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use studyflow_store::{RunGroup, RunRow, RunState, StudyState};

use studyflow_identity::Identity;
use studyflow_spec::model::Spec;

use crate::engine::{Engine, Result};

/// A study's versions and contract, as its persons see them ([`Engine::history`]).
#[derive(Debug, Clone)]
pub struct History {
    /// Every version, the first first.
    pub versions: Vec<studyflow_store::VersionRow>,
    /// The contract with the external researcher and its non-disclosure declarations (p.30).
    pub contract: Option<studyflow_store::ContractRow>,
}

/// The acts on a study a person may take now, by their role in the spec in force and the
/// study's state ([`Engine::acts`]); the engine checks again when they take one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Acts {
    /// Start the approved (and, if external, contracted) study: a service researcher (p.21).
    pub start: bool,
    /// Record the contract of an approved external study: an approver or supervisor (p.30.2).
    pub contract: bool,
    /// End the study early, destroying its identifying data (p.26): its approver, or for an
    /// external study its supervisor.
    pub terminate: bool,
    /// Give the key the contact list is encrypted to (p.32): an authorised person of the
    /// external researcher who processes personal data, of a study with direct contact.
    pub contact_key: bool,
}

/// A study's latest version as an approver reviews it ([`Engine::review`]).
#[derive(Debug, Clone)]
pub struct Review {
    pub version: studyflow_store::VersionRow,
    /// Whether the person asking may approve it now (the engine checks again when they do).
    pub may_approve: bool,
    /// The latest version approved before it, when this one is an amendment: what the
    /// amendment changes is read against it.
    pub in_force: Option<studyflow_store::VersionRow>,
}
use crate::error::EngineError;

/// A study as `status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyStatus {
    pub study: String,
    pub state: StudyState,
    /// When the study reached its state (microseconds since the epoch).
    pub since: i64,
    pub latest: Option<VersionStatus>,
    /// The approved version the engine runs.
    pub running_version: Option<i64>,
    /// The engine's today (microseconds since the epoch).
    pub now: i64,
    /// One entry per step, per-subject steps summed, in the order the runs were created.
    pub steps: Vec<StepStatus>,
    /// Deadlines missed: runs finished after their deadline or still open past it.
    pub overdue: Vec<Overdue>,
    /// The releases written, oldest first.
    pub releases: Vec<Release>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStatus {
    pub version: i64,
    pub plan_hash: String,
    pub approved: Option<(String, i64)>,
}

/// What a run is doing, for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Activity {
    Pending,
    Ready,
    Running,
    /// A person's task is open.
    TaskOpen,
    /// Waiting for its date.
    Timer,
    /// Failed an attempt; tried again later.
    Retrying,
    /// Waiting for something outside: an answer, a file, a configuration.
    Waiting,
    Done,
    Failed,
    Cancelled,
}

impl Activity {
    pub const ALL: [Activity; 10] = [
        Activity::Pending,
        Activity::Ready,
        Activity::Running,
        Activity::TaskOpen,
        Activity::Timer,
        Activity::Retrying,
        Activity::Waiting,
        Activity::Done,
        Activity::Failed,
        Activity::Cancelled,
    ];

    pub fn of(r: &RunRow) -> Activity {
        Activity::of_state(r.state, r.wait_reason.as_deref())
    }

    fn of_state(state: RunState, wait_reason: Option<&str>) -> Activity {
        match (state, wait_reason) {
            (RunState::Waiting, Some("task")) => Activity::TaskOpen,
            (RunState::Waiting, Some("timer")) => Activity::Timer,
            (RunState::Waiting, Some("retry")) => Activity::Retrying,
            (RunState::Waiting, _) => Activity::Waiting,
            (RunState::Pending, _) => Activity::Pending,
            (RunState::Ready, _) => Activity::Ready,
            (RunState::Running, _) => Activity::Running,
            (RunState::Done, _) => Activity::Done,
            (RunState::Failed, _) => Activity::Failed,
            (RunState::Cancelled, _) => Activity::Cancelled,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Pending => "pending",
            Activity::Ready => "ready",
            Activity::Running => "running",
            Activity::TaskOpen => "task open",
            Activity::Timer => "timer",
            Activity::Retrying => "retrying",
            Activity::Waiting => "waiting",
            Activity::Done => "done",
            Activity::Failed => "failed",
            Activity::Cancelled => "cancelled",
        }
    }
}

/// One step of the study and its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStatus {
    pub step: String,
    pub per_subject: bool,
    /// The versions its runs ran under.
    pub versions: Vec<i64>,
    pub runs: usize,
    pub activities: BTreeMap<Activity, usize>,
    /// The earliest date a waiting run looks again.
    pub next: Option<i64>,
    /// The latest deadline of its runs.
    pub due: Option<i64>,
    /// Some run is still open past its deadline.
    pub late: bool,
    /// Why a study-level step failed or waits (recorded without identifiers).
    pub reason: Option<String>,
}

/// A deadline missed, per step: how many runs, the earliest deadline among them, the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    pub step: String,
    pub runs: usize,
    /// Still open past the deadline (the rest finished late).
    pub open: usize,
    pub due: i64,
    /// The latest a run finished, for those that did.
    pub finished: Option<i64>,
    pub rule: String,
}

/// A release written to a folder, from the run that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub step: String,
    pub folder: PathBuf,
    /// Who it is for, in words.
    pub recipient: String,
    pub written_at: i64,
    /// Events the follow-ups found, per wave, in this release.
    pub follow_up_events: BTreeMap<String, u64>,
    /// A transfer to the external researcher (MK403 p.30), not a release to the study
    /// workspace (p.22.5, p.24).
    pub to_external: bool,
    /// The contact list, encrypted to its recipients' keys (MK403 p.32): to the external
    /// researcher's authorised persons who process personal data.
    pub contacts: bool,
}

impl Engine {
    /// The study's status, or `None` when there is no such study. With
    /// [`crate::Options::status_cache`], computed at most once in that long and shared
    /// ([`crate::cache::Shared`]); an act of this engine makes it current at once.
    pub async fn status(&self, study: &str) -> Result<Option<StudyStatus>> {
        let Some(ttl) = self.options.status_cache else {
            return self.status_now(study).await;
        };
        let shared = self
            .statuses
            .get_or_compute(study, ttl, || async {
                Ok::<_, EngineError>(
                    self.status_now(study)
                        .await?
                        .map(|s| std::sync::Arc::new(s) as crate::cache::Value),
                )
            })
            .await?;
        Ok(shared.and_then(|v| v.downcast_ref::<StudyStatus>().cloned()))
    }

    /// The study's status, computed now.
    async fn status_now(&self, study: &str) -> Result<Option<StudyStatus>> {
        let Some(row) = self.store.study(study).await? else {
            return Ok(None);
        };
        let latest = self
            .store
            .version(study, None)
            .await?
            .map(|v| VersionStatus {
                version: v.version,
                plan_hash: v.plan_hash,
                approved: v.approved_by.zip(v.approved_at),
            });
        let now = self.now();
        // Summed by the database: a study may have 100,000 runs and more.
        let groups = self.store.run_groups(study, now).await?;
        Ok(Some(StudyStatus {
            study: row.id,
            state: row.state,
            since: row.updated_at,
            latest,
            running_version: row.active_version,
            now,
            steps: steps(&groups),
            overdue: overdue(&groups),
            releases: releases(&self.store.release_runs(study).await?),
        }))
    }

    /// The study's state alone (one row, not its runs), or `None` when there is no such study.
    pub async fn state(&self, study: &str) -> Result<Option<StudyState>> {
        Ok(self.store.study(study).await?.map(|r| r.state))
    }

    /// When the next timer falls due (a subject's wave, a date, a retry), if any.
    pub async fn next_timer(&self) -> Result<Option<i64>> {
        Ok(self.store.next_timer().await?)
    }

    /// The earliest deadline from now on of a run not done yet.
    pub async fn next_deadline(&self) -> Result<Option<i64>> {
        Ok(self.store.next_due(self.now()).await?)
    }

    /// What a done study-level step recorded (counts and reports, never a subject's data).
    pub async fn step_record(&self, study: &str, step: &str) -> Result<Option<serde_json::Value>> {
        Ok(self
            .store
            .runs(study)
            .await?
            .into_iter()
            .find(|r| r.step == step && r.subject.is_empty() && r.state == RunState::Done)
            .and_then(|r| serde_json::from_str(r.output.as_deref()?).ok()))
    }

    /// The releases of a study, oldest first.
    pub async fn releases(&self, study: &str) -> Result<Vec<Release>> {
        Ok(releases(&self.store.release_runs(study).await?))
    }

    /// Every study, with its state and version.
    pub async fn studies(&self) -> Result<Vec<studyflow_store::StudyRow>> {
        Ok(self.store.studies().await?)
    }

    /// The database the engine works on, its password masked (for messages).
    pub fn database(&self) -> &str {
        self.store.target()
    }

    /// Whether the study's keys — and with them its identifying data — exist no more (p.26).
    pub async fn keys_destroyed(&self, study: &str) -> Result<bool> {
        Ok(self.store.study_keys(study).await?.is_none())
    }

    /// The audit chain checked from its first event to its head, and its signed checkpoints
    /// with what `trust` adds (the public key, the checkpoint log outside the database).
    pub async fn verify_audit(
        &self,
        trust: &studyflow_store::AuditTrust,
    ) -> Result<studyflow_store::Verification> {
        Ok(self.store.verify_audit_with(trust).await?)
    }

    /// The audit verified with what this installation's own signing trusts (its public key and
    /// checkpoint log; the chain alone without signing), for a person of a study who reads its
    /// audit (MK403 p.25.3); `signed` says whether signatures were checked.
    pub async fn verify_audit_for(
        &self,
        study: &str,
        who: &Identity,
    ) -> Result<(studyflow_store::Verification, bool)> {
        // The same check of who may read the study's audit as for its events.
        self.audit_of(study, who, &studyflow_store::AuditFilter::default(), 0, 1)
            .await?;
        let trust = self.store.own_audit_trust();
        let signed = trust.verifier.is_some();
        Ok((self.store.verify_audit_with(&trust).await?, signed))
    }

    /// Every cell of a PostgreSQL database handed to `each`, for an identifier scan (a SQLite
    /// database is a file, scanned as one); `false` on SQLite, where nothing is handed.
    pub async fn scan_database(&self, each: impl FnMut(&[u8])) -> Result<bool> {
        if self.store.backend() != studyflow_store::Backend::Postgres {
            return Ok(false);
        }
        self.store.contents(each).await?;
        Ok(true)
    }

    /// Closes the database connections (a SQLite database's write-ahead log is folded back).
    pub async fn close(&self) {
        self.store.close().await;
    }
}

impl Engine {
    /// The audit of a study for `who` — the events about the study and its runs that `filter`
    /// keeps, after `after`, at most `limit` — when the spec in force binds `who` to a person of
    /// the Service, which checks and supervises the processing (MK403 p.25.3, p.25.5, p.28).
    /// The external team is told it may not; someone the study does not involve, that there
    /// is no such study.
    pub async fn audit_of(
        &self,
        study: &str,
        who: &Identity,
        filter: &studyflow_store::AuditFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<studyflow_store::AuditRow>> {
        let not_found = || not_yours(study);
        let row = self.store.study(study).await?.ok_or_else(not_found)?;
        let spec = self.authority(study, row.active_version).await?;
        if crate::people::service_persons(&spec, who).next().is_none() {
            return Err(if crate::people::team_member(&spec, who).is_some() {
                EngineError::Forbidden(crate::said!(
                    "`{}` is not bound to a person of the Service: the audit of a study is the Service's, which checks access and supervises the processing (MK403 p.25.3, p.25.5, p.28)",
                    "`{}` nav dienesta persona: pētījuma audits ir dienesta, kas pārbauda piekļuvi un uzrauga informācijas apstrādi (MK403 25.3., 25.5., 28. p.)",
                    who.login()
                ))
            } else {
                not_found()
            });
        }
        Ok(self
            .store
            .audit_of(study, filter, after, limit.clamp(1, 1000))
            .await?)
    }

    /// The audit log's latest signed checkpoint (a C2SP signed note), if any: public by design,
    /// it carries the log's size and Merkle root, nothing of an event.
    /// A study's versions (who submitted and approved each, its plan hash and state) and its
    /// contract, for a person the study involves; not found for anyone else.
    pub async fn history(&self, study: &str, who: &Identity) -> Result<History> {
        if !self.involved(study, who).await? {
            return Err(not_yours(study));
        }
        let latest = self
            .store
            .version(study, None)
            .await?
            .map_or(0, |v| v.version);
        let mut versions = Vec::new();
        for v in 1..=latest {
            if let Some(row) = self.store.version(study, Some(v)).await? {
                versions.push(row);
            }
        }
        Ok(History {
            versions,
            contract: self.store.contract(study).await?,
        })
    }

    /// The acts `who` may take on the study now ([`Acts`]); not found for a person the study
    /// does not involve.
    pub async fn acts(&self, study: &str, who: &Identity) -> Result<Acts> {
        if !self.involved(study, who).await? {
            return Err(not_yours(study));
        }
        let row = self.study_row(study).await?;
        let spec = self.authority(study, None).await?;
        let may = |act| crate::people::authorise_act(&spec, act, who).is_ok();
        let external = spec.external.is_some();
        let state = row.state;
        Ok(Acts {
            start: may(crate::people::StudyAct::Start)
                && matches!(
                    (state, external),
                    (StudyState::Approved, false) | (StudyState::Contracted, true)
                ),
            contract: external
                && state == StudyState::Approved
                && crate::people::service_persons(&spec, who).any(|p| {
                    matches!(
                        p.role,
                        studyflow_spec::model::ServiceRole::Approver
                            | studyflow_spec::model::ServiceRole::Supervisor
                    )
                }),
            terminate: may(crate::people::StudyAct::Terminate)
                && !matches!(state, StudyState::Completed | StudyState::Terminated),
            contact_key: spec.direct_contact.is_some()
                && crate::people::contact_recipient(&spec, who).is_ok()
                && !matches!(state, StudyState::Completed | StudyState::Terminated),
        })
    }

    /// What a person reviews before approving (MK403 p.3, p.30.1): the latest version of a
    /// study they are involved in, as submitted, and whether they may approve it — an approver
    /// of the version in force, not its submitter, while it waits. A study that does not involve
    /// them is not found.
    pub async fn review(&self, study: &str, who: &Identity) -> Result<Review> {
        if !self.involved(study, who).await? {
            return Err(not_yours(study));
        }
        let version = self
            .store
            .version(study, None)
            .await?
            .ok_or_else(|| crate::engine::no_study(study))?;
        let authority = self.authority(study, None).await?;
        let may_approve = version.state == studyflow_store::VersionState::Submitted
            && version.submitted_by != who.login()
            && crate::people::has_role(
                &authority,
                who,
                studyflow_spec::model::ServiceRole::Approver,
            );
        // The latest approved version before it (in force, or to be once started).
        let mut in_force = None;
        for v in (1..version.version).rev() {
            if let Some(row) = self.store.version(study, Some(v)).await?
                && row.approved_by.is_some()
            {
                in_force = Some(row);
                break;
            }
        }
        Ok(Review {
            version,
            may_approve,
            in_force,
        })
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<String>> {
        Ok(self.store.latest_audit_checkpoint().await?)
    }

    /// Release `n` (0 the oldest) of the study, for `who` to download: someone the study
    /// involves (else there is no such study for them), who may receive that release
    /// ([`Engine::receives`]), with a recent proof of identity.
    pub async fn release_for(&self, study: &str, n: usize, who: &Identity) -> Result<Release> {
        let (row, spec) = self.involving(study, who).await?;
        crate::people::authorise_download(&spec, who)?;
        self.require_recent_proof(who, crate::error::ProvenAct::DownloadRelease)?;
        let release = self
            .releases(study)
            .await?
            .into_iter()
            .nth(n)
            .ok_or_else(|| {
                EngineError::Refused(crate::said!(
                    "`{study}` has no release {n} yet (MK403 p.24, p.30)",
                    "pētījumam `{study}` vēl nav nodošanas {n} (MK403 24., 30. p.)"
                ))
            })?;
        self.receives(&row, &spec, &release, who).await?;
        Ok(release)
    }

    /// The study's releases, each with whether `who` may receive it ([`Engine::receives`],
    /// the proof of identity left to the download): what a release list shows them the files
    /// of. Only to someone the study involves.
    pub async fn releases_seen_by(
        &self,
        study: &str,
        who: &Identity,
    ) -> Result<Vec<(Release, bool)>> {
        let (row, spec) = self.involving(study, who).await?;
        let mut out = Vec::new();
        for release in self.releases(study).await? {
            let may = self.receives(&row, &spec, &release, who).await.is_ok();
            out.push((release, may));
        }
        Ok(out)
    }

    /// The study and its spec in force, for someone it involves (else there is no such study
    /// for them).
    async fn involving(
        &self,
        study: &str,
        who: &Identity,
    ) -> Result<(studyflow_store::StudyRow, std::sync::Arc<Spec>)> {
        if !self.involved(study, who).await? {
            return Err(not_yours(study));
        }
        let row = self
            .store
            .study(study)
            .await?
            .ok_or_else(|| not_yours(study))?;
        let spec = self.authority(study, row.active_version).await?;
        Ok((row, spec))
    }

    /// Whether `who` may receive `release`, by what the release is, whatever the spec has
    /// become since: the contact list to the external researcher's authorised persons who
    /// process personal data (MK403 p.32), a transfer to its authorised persons (p.30,
    /// p.33.1) — either only with a declaration of theirs recorded with the contract, while the
    /// study and the contract last (p.30.2, p.35) — and a release to the study workspace to the
    /// Service's researchers with access to anonymised data (p.22.5, p.24).
    async fn receives(
        &self,
        row: &studyflow_store::StudyRow,
        spec: &Spec,
        release: &Release,
        who: &Identity,
    ) -> Result<()> {
        let study = row.id.as_str();
        if !release.to_external {
            return crate::people::workspace_reader(spec, who);
        }
        let member = if release.contacts {
            crate::people::contact_recipient(spec, who)?
        } else {
            crate::people::transfer_recipient(spec, who)?
        };
        let contract = self.store.contract(study).await?.ok_or_else(|| {
            EngineError::Forbidden(crate::said!(
                "no contract of `{study}` is recorded: nothing is handed over before it (MK403 p.30.2)",
                "pētījuma `{study}` līgums nav ierakstīts: pirms tā neko nenodod (MK403 30.2. p.)"
            ))
        })?;
        if !contract.signatories().contains(&member.name) {
            return Err(EngineError::Forbidden(crate::said!(
                "no non-disclosure declaration of `{}` is recorded with the contract (MK403 p.30.2)",
                "ar līgumu nav ierakstīts lietotāja `{}` apliecinājums par ierobežotas pieejamības informācijas neizpaušanu (MK403 30.2. p.)",
                who.login()
            )));
        }
        if row.state == StudyState::Terminated {
            return Err(EngineError::Refused(crate::said!(
                "`{study}` was ended early: nothing more is handed over (MK403 p.26)",
                "pētījums `{study}` ir pārtraukts: vairs neko nenodod (MK403 26. p.)"
            )));
        }
        let term = spec
            .external
            .as_ref()
            .and_then(|e| e.contract.as_ref())
            .and_then(|c| c.term_ends_on);
        let today = crate::clock::riga_date(crate::clock::from_micros(self.now()));
        if let Some(t) = term
            && today > t.0
        {
            return Err(EngineError::Refused(crate::said!(
                "the contract's term ended on {t}: the external researcher keeps no copy after it (MK403 p.35)",
                "līguma termiņš beidzās {t}: pēc tā pētījuma izstrādātājs kopiju neglabā (MK403 35. p.)"
            )));
        }
        Ok(())
    }

    /// Whether `who` may give the key the study's contact list is encrypted to (MK403 p.32):
    /// a person who receives it ([`crate::people::contact_recipient`]) of a study that asks
    /// for direct contact, while it lasts, with a recent proof of identity. Their name in the
    /// spec.
    pub async fn contact_key_holder(&self, study: &str, who: &Identity) -> Result<String> {
        let (row, spec) = self.involving(study, who).await?;
        let member = crate::people::contact_recipient(&spec, who)?;
        if spec.direct_contact.is_none() {
            return Err(EngineError::Refused(crate::said!(
                "`{study}` asks for no direct contact with data subjects: there is no contact list (MK403 p.31)",
                "pētījumā `{study}` nav paredzēta tieša saziņa ar datu subjektiem: kontaktu saraksta nav (MK403 31. p.)"
            )));
        }
        // Written once, to the keys given before it: a key given after would not open it (an
        // approved amendment makes no new transfer; one is to come only while a run of it is
        // not finished).
        let kind = studyflow_plan::StepKind::ContactTransfer.as_str();
        let transfers: Vec<_> = self
            .store
            .runs(study)
            .await?
            .into_iter()
            .filter(|r| r.kind == kind)
            .collect();
        let written = transfers.iter().any(|r| r.state == RunState::Done)
            && !transfers.iter().any(|r| {
                matches!(
                    r.state,
                    RunState::Pending | RunState::Ready | RunState::Waiting
                )
            });
        if written {
            return Err(EngineError::Refused(crate::said!(
                "the contact list of `{study}` was written already, encrypted to the keys given before it; a key given now would not open it (MK403 p.32)",
                "pētījuma `{study}` kontaktu saraksts jau ir sagatavots, šifrēts ar iepriekš norādītajām atslēgām; tagad norādīta atslēga to neatvērtu (MK403 32. p.)"
            )));
        }
        if matches!(row.state, StudyState::Terminated | StudyState::Completed) {
            return Err(EngineError::Refused(crate::said!(
                "`{study}` has ended: nothing more is handed over (MK403 p.26)",
                "pētījums `{study}` ir beidzies: vairs neko nenodod (MK403 26. p.)"
            )));
        }
        self.require_recent_proof(who, crate::error::ProvenAct::GiveContactKey)?;
        // The transfer holds each key to a declaration recorded with the contract: without one,
        // a key would be left out.
        let declared = self
            .store
            .contract(study)
            .await?
            .map(|c| c.signatories())
            .unwrap_or_default();
        if !declared.contains(&member.name) {
            return Err(EngineError::Forbidden(crate::said!(
                "no non-disclosure declaration of `{}` is recorded with the contract: the contact list is not encrypted to a key of theirs (MK403 p.30.2, p.32)",
                "ar līgumu nav ierakstīts lietotāja `{}` apliecinājums par informācijas neizpaušanu: kontaktu sarakstu nešifrē ar viņa atslēgu (MK403 30.2., 32. p.)",
                who.login()
            )));
        }
        Ok(member.name.clone())
    }
}

impl Activity {
    /// What the runs of a group are doing.
    fn of_group(g: &RunGroup) -> Activity {
        Activity::of_state(g.state, g.wait_reason.as_deref())
    }
}

fn steps(groups: &[RunGroup]) -> Vec<StepStatus> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_step: BTreeMap<&str, Vec<&RunGroup>> = BTreeMap::new();
    for g in groups {
        if !by_step.contains_key(g.step.as_str()) {
            order.push(&g.step);
        }
        by_step.entry(&g.step).or_default().push(g);
    }
    order
        .into_iter()
        .map(|step| {
            let gs = &by_step[step];
            let mut activities = BTreeMap::new();
            for g in gs {
                *activities.entry(Activity::of_group(g)).or_insert(0) += g.runs as usize;
            }
            let mut versions: Vec<i64> = gs.iter().map(|g| g.version).collect();
            versions.sort_unstable();
            versions.dedup();
            let per_subject = gs.iter().any(|g| g.per_subject);
            let runs: i64 = gs.iter().map(|g| g.runs).sum();
            // A study-level step of one run says why it failed or waits.
            let reason = match gs.as_slice() {
                [g] if runs == 1
                    && !per_subject
                    && (matches!(g.state, RunState::Failed | RunState::Ready)
                        || (g.state == RunState::Waiting
                            && g.wait_reason.as_deref() != Some("task"))) =>
                {
                    g.last_error.clone()
                }
                _ => None,
            };
            StepStatus {
                step: step.to_owned(),
                per_subject,
                versions,
                runs: runs as usize,
                activities,
                next: gs
                    .iter()
                    .filter(|g| g.state == RunState::Waiting)
                    .filter_map(|g| g.next_at)
                    .min(),
                due: gs.iter().filter_map(|g| g.due_max).max(),
                late: gs.iter().any(|g| g.state.is_active() && g.past_due > 0),
                reason,
            }
        })
        .collect()
}

fn overdue(groups: &[RunGroup]) -> Vec<Overdue> {
    let mut out: BTreeMap<&str, Overdue> = BTreeMap::new();
    for g in groups {
        // Runs finished after their deadline, or still open past it.
        let (late, open, due, finished) = match g.state {
            RunState::Done => (g.done_late, 0, g.done_late_due, g.done_late_at),
            s if s.is_active() => (g.past_due, g.past_due, g.past_due_min, None),
            _ => (0, 0, None, None),
        };
        let (true, Some(due)) = (late > 0, due) else {
            continue;
        };
        let o = out.entry(&g.step).or_insert_with(|| Overdue {
            step: g.step.clone(),
            runs: 0,
            open: 0,
            due,
            finished: None,
            rule: g.rule.clone().unwrap_or_default(),
        });
        o.runs += late as usize;
        o.open += open as usize;
        o.due = o.due.min(due);
        if let Some(f) = finished {
            o.finished = Some(o.finished.map_or(f, |x| x.max(f)));
        }
    }
    out.into_values().collect()
}

/// The releases the done release and transfer runs recorded.
fn releases(runs: &[RunRow]) -> Vec<Release> {
    let mut out: Vec<Release> = runs
        .iter()
        .filter(|r| {
            r.state == RunState::Done
                && matches!(r.kind.as_str(), "release" | "transfer" | "contact_transfer")
        })
        .filter_map(|r| {
            let record: serde_json::Value = serde_json::from_str(r.output.as_deref()?).ok()?;
            Some(Release {
                step: r.step.clone(),
                folder: PathBuf::from(record.get("release")?.as_str()?),
                recipient: record
                    .get("for")
                    .and_then(|f| f.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                written_at: r.updated_at,
                to_external: matches!(r.kind.as_str(), "transfer" | "contact_transfer"),
                contacts: r.kind == "contact_transfer",
                follow_up_events: record
                    .get("follow_up_events")
                    .and_then(|e| serde_json::from_value(e.clone()).ok())
                    .unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by_key(|r| r.written_at);
    out
}

/// What a person's open task asks of them, in words: which file to send where, which file to
/// put where, what to check. Never the engine's raw record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskGuide {
    /// The step's title from the plan.
    pub title: String,
    /// The same in Latvian.
    pub title_lv: String,
    /// The MK403 points the task rests on.
    pub points: Vec<&'static str>,
    /// What to do, one instruction a line.
    pub steps: Vec<String>,
    /// The same in Latvian.
    pub steps_lv: Vec<String>,
}

impl Engine {
    /// The quality report of an open quality-check task of `who` (MK403 p.18, p.22.2): per
    /// table its rows and duplicates, and per column the values missing, dates out of order,
    /// impossible values and values outside their domain — counts, never a value. `None` for
    /// another kind of task.
    pub async fn quality_report(
        &self,
        run: i64,
        who: &Identity,
    ) -> Result<Option<serde_json::Value>> {
        let (row, _, step) = self.open_task(run, who, None).await?;
        if step.kind != studyflow_plan::StepKind::QualityCheck {
            return Ok(None);
        }
        Ok(row
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
            .and_then(|o| o.get("quality").cloned()))
    }

    /// The guide to an open task (see [`TaskGuide`]). Paths are in the worker's work folder.
    pub async fn task_guide(&self, task: &RunRow) -> Result<TaskGuide> {
        let loaded = self.load(&task.study, task.version).await?;
        let Some(step) = loaded.plan.step(&task.step) else {
            return Ok(TaskGuide {
                title: task.step.clone(),
                title_lv: task.step.clone(),
                points: Vec::new(),
                steps: vec!["complete this task when it is done".into()],
                steps_lv: vec!["pabeidziet šo uzdevumu, kad tas izdarīts".into()],
            });
        };
        let prepared: Option<serde_json::Value> = task
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok());
        let (steps, steps_lv) = guide(&task.study, step, prepared.as_ref())
            .into_iter()
            .unzip();
        Ok(TaskGuide {
            title: step.title.clone(),
            title_lv: step.title_lv.clone(),
            points: step.regulation.clone(),
            steps,
            steps_lv,
        })
    }
}

fn registry_words(step: &studyflow_plan::Step, lv: bool) -> &'static str {
    match (step.about.registry(), lv) {
        (Some(studyflow_plan::Registry::InformationCentre), false) => {
            "the Information Centre (Punishment Register)"
        }
        (Some(studyflow_plan::Registry::InformationCentre), true) => {
            "Informācijas centram (Sodu reģistrs)"
        }
        (Some(studyflow_plan::Registry::PrisonAdministration), false) => {
            "the Prison Administration"
        }
        (Some(studyflow_plan::Registry::PrisonAdministration), true) => {
            "Ieslodzījuma vietu pārvaldei"
        }
        (None, false) => "the institution",
        (None, true) => "iestādei",
    }
}

/// What an open task of `step` asks, one instruction a line, each in English and Latvian: the
/// same instructions, paths and figures in both languages.
fn guide(
    study: &str,
    step: &studyflow_plan::Step,
    prepared: Option<&serde_json::Value>,
) -> Vec<(String, String)> {
    use studyflow_plan::StepKind;
    let fields = step.fields.join(", ");
    let points = step.regulation.join(", ");
    // One instruction, in English and in Latvian.
    let say = |en: String, lv: String| (en, lv);
    match step.kind {
        StepKind::Request => {
            let id = prepared
                .and_then(|p| p.get("sent"))
                .and_then(|s| s.as_str())
                .unwrap_or("…");
            let subjects = prepared
                .and_then(|p| p.get("subjects"))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            let (to, to_lv) = (registry_words(step, false), registry_words(step, true));
            vec![
                say(
                    format!(
                        "send the request in outbox/{study}/{id}/ (`studyflow task files` with this task's id and --out downloads it) — cover-letter.txt, request.json ({subjects} subjects) and MANIFEST.sha256 — to {to} by the secure electronic means agreed (MK403 p.12.3, p.14.2)"
                    ),
                    format!(
                        "nosūtiet pieprasījumu no outbox/{study}/{id}/ (to lejupielādē `studyflow task files` ar šī uzdevuma numuru un --out) — cover-letter.txt, request.json ({subjects} datu subjekti) un MANIFEST.sha256 — {to_lv} ar saskaņotajiem drošajiem elektroniskajiem līdzekļiem (MK403 12.3., 14.2. p.)"
                    ),
                ),
                say(
                    format!(
                        "when the answer comes, send it as answer.json on this task's page or with `studyflow task supply` and this task's id (checked at once against the request sent, refused whole with a report by row), or put it at inbox/{study}/{id}/ with its MANIFEST.sha256; the engine checks it whole against the study's sample and imports it, then deletes the request file"
                    ),
                    format!(
                        "kad atbilde pienāk, iesniedziet to kā answer.json šī uzdevuma lapā vai ar `studyflow task supply` un šī uzdevuma numuru (to uzreiz pārbauda pret nosūtīto pieprasījumu; ja tajā ir kļūdas, to noraida visu un norāda kļūdas pa rindām), vai ievietojiet to inbox/{study}/{id}/ kopā ar tās MANIFEST.sha256; sistēma to visu pārbauda pret pētījuma izlasi, importē un pēc tam dzēš pieprasījuma failu"
                    ),
                ),
                say(
                    "then complete this task".into(),
                    "pēc tam pabeidziet šo uzdevumu".into(),
                ),
            ]
        }
        StepKind::Answer => {
            let (to, to_lv) = (registry_words(step, false), registry_words(step, true));
            vec![
                say(
                    format!("the request to {to} was sent and its task done; its answer has not come"),
                    format!("pieprasījums {to_lv} ir nosūtīts un tā uzdevums pabeigts; atbilde vēl nav pienākusi"),
                ),
                say(
                    format!(
                        "when it comes, send it as answer.json on this page or with `studyflow task supply` and this id (checked at once against the request sent, refused whole with a report by row), or put it in inbox/{study}/ in the folder named as the request's in the outbox, with its MANIFEST.sha256; the engine imports it at once (MK403 {points})"
                    ),
                    format!(
                        "kad tā pienāk, iesniedziet to kā answer.json šajā lapā vai ar `studyflow task supply` un šo numuru (to uzreiz pārbauda pret nosūtīto pieprasījumu; ja tajā ir kļūdas, to noraida visu un norāda kļūdas pa rindām), vai ievietojiet to inbox/{study}/ mapē, kas nosaukta tāpat kā pieprasījuma mape outbox, kopā ar tās MANIFEST.sha256; sistēma to importē uzreiz (MK403 {points})"
                    ),
                ),
            ]
        }
        StepKind::QualityCheck => {
            let mut out = Vec::new();
            if let Some(reports) = prepared
                .and_then(|p| p.get("quality"))
                .and_then(|q| q.as_object())
            {
                let findings = prepared
                    .and_then(|p| p.get("findings"))
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                out.push(say(
                    format!("check the quality report (MK403 p.18, p.22.2): {findings} finding(s)"),
                    format!("pārbaudiet kvalitātes pārskatu (MK403 18., 22.2. p.): konstatējumi — {findings}"),
                ));
                for (table, r) in reports {
                    let sum = |k: &str| {
                        r.get(k).and_then(|m| m.as_object()).map_or(0, |m| {
                            m.values()
                                .filter_map(serde_json::Value::as_u64)
                                .sum::<u64>()
                        })
                    };
                    let rows = r.get("rows").and_then(serde_json::Value::as_u64).unwrap_or(0);
                    let duplicates = r
                        .get("duplicates")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0);
                    let (missing, order, impossible, domain) = (
                        sum("missing"),
                        sum("date_order"),
                        sum("impossible"),
                        sum("out_of_domain"),
                    );
                    out.push(say(
                        format!(
                            "  {table}: {rows} rows; missing {missing}, duplicates {duplicates}, dates out of order {order}, impossible {impossible}, outside their domain {domain}"
                        ),
                        format!(
                            "  {table}: rindas — {rows}; trūkst {missing}, dublikāti {duplicates}, datumi nepareizā secībā {order}, neiespējamas vērtības {impossible}, vērtības ārpus pieļaujamām {domain}"
                        ),
                    ));
                }
            }
            out.push(say(
                "correct what is wrong at its source, then complete this task with a note saying what you checked".into(),
                "izlabojiet kļūdas to avotā, pēc tam pabeidziet šo uzdevumu ar piezīmi par to, ko pārbaudījāt".into(),
            ));
            out
        }
        StepKind::AcquireServiceIs => vec![
            say(
                format!(
                    "extract the sample from the Service IS by hand (MK403 p.22.1) as CSV with the columns {fields}"
                ),
                format!(
                    "manuāli atlasiet izlasi no dienesta informācijas sistēmas (MK403 22.1. p.) CSV formātā ar kolonnām {fields}"
                ),
            ),
            say(
                format!(
                    "send it with `studyflow task supply` and this task's id (checked whole at once, refused whole with a report by row), or put it at inbox/{study}/service-is.csv; when you complete this task the engine imports it whole (or refuses it whole, saying which line and column) and deletes the file"
                ),
                format!(
                    "iesniedziet to ar `studyflow task supply` un šī uzdevuma numuru (to uzreiz pārbauda visu; ja tajā ir kļūdas, to noraida visu un norāda kļūdas pa rindām) vai ievietojiet inbox/{study}/service-is.csv; kad pabeigsiet šo uzdevumu, sistēma to importēs visu (vai noraidīs visu, norādot rindu un kolonnu) un dzēsīs failu"
                ),
            ),
        ],
        StepKind::ConsentCollection => vec![
            say(
                format!(
                    "collect the consent of the subjects who agree to be contacted (MK403 p.31) and send their contact details with `studyflow task supply` and this task's id, or put them at inbox/{study}/consented-contacts.csv, with the columns {fields}"
                ),
                format!(
                    "savāciet to datu subjektu piekrišanu, kuri piekrīt saziņai (MK403 31. p.), un iesniedziet viņu kontaktinformāciju ar `studyflow task supply` un šī uzdevuma numuru vai ievietojiet inbox/{study}/consented-contacts.csv ar kolonnām {fields}"
                ),
            ),
            say(
                "when you complete this task the engine imports the list whole and deletes the file".into(),
                "kad pabeigsiet šo uzdevumu, sistēma importēs visu sarakstu un dzēsīs failu".into(),
            ),
        ],
        StepKind::PrisonAdministrationNotice => {
            let deadline = prepared
                .and_then(|p| p.get("deadline"))
                .and_then(|d| d.as_str());
            vec![
                say(
                    format!(
                        "the notice of the results is ready at outbox/{study}/prison-administration-notice.txt (publication date and deadline filled in): write the results summary where it asks for it"
                    ),
                    format!(
                        "paziņojums par rezultātiem ir sagatavots outbox/{study}/prison-administration-notice.txt (publicēšanas datums un termiņš ir ierakstīti): ierakstiet rezultātu kopsavilkumu norādītajā vietā"
                    ),
                ),
                say(
                    format!(
                        "send it to the Prison Administration{}, no later than 10 working days before the publication (MK403 p.8), then complete this task with the summary as the note",
                        deadline.map(|d| format!(" by {d}")).unwrap_or_default()
                    ),
                    format!(
                        "nosūtiet to Ieslodzījuma vietu pārvaldei{}, ne vēlāk kā 10 darbdienas pirms publicēšanas (MK403 8. p.), pēc tam pabeidziet šo uzdevumu ar kopsavilkumu kā piezīmi",
                        deadline.map(|d| format!(" līdz {d}")).unwrap_or_default()
                    ),
                ),
            ]
        }
        _ => vec![say(
            format!("{}; complete this task when it is done (MK403 {points})", step.title),
            format!("{}; pabeidziet šo uzdevumu, kad tas izdarīts (MK403 {points})", step.title_lv),
        )],
    }
}

/// No study of that id the person takes part in (whether it exists is not theirs to know).
fn not_yours(study: &str) -> EngineError {
    EngineError::NotFound(crate::said!(
        "no study `{study}` of yours",
        "nav pētījuma `{study}`, kurā tu esi iesaistīts"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_english(guide: Vec<(String, String)>) -> Vec<String> {
        guide.into_iter().map(|(en, _)| en).collect()
    }

    fn in_latvian(guide: Vec<(String, String)>) -> Vec<String> {
        guide.into_iter().map(|(_, lv)| lv).collect()
    }

    fn plan(name: &str) -> studyflow_plan::Plan {
        let bytes = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../specs/{name}.yaml")),
        )
        .unwrap();
        let spec = studyflow_spec::check(&bytes).spec.unwrap();
        studyflow_plan::compile(&spec, &bytes, &studyflow_calendar::Calendar::latvia(), None).0
    }

    #[test]
    fn a_task_says_what_to_do_in_words() {
        let p = plan("resocialisation-programmes-university");
        let request = p.step("prison-administration-request").unwrap();
        let prepared =
            serde_json::json!({"sent": "s-v1-prison-administration-request", "subjects": 40});
        let text = in_english(guide("s", request, Some(&prepared))).join("\n");
        assert!(
            text.contains("outbox/s/s-v1-prison-administration-request/")
                && text.contains("the Prison Administration")
                && text.contains("inbox/s/s-v1-prison-administration-request/")
                && text.contains("40 subjects"),
            "{text}"
        );
        let quality = p.step("quality-check").unwrap();
        let prepared = serde_json::json!({"findings": 3, "quality": {"subjects": {"rows": 40, "missing": {"sex": 2}, "duplicates": 1, "date_order": {}, "impossible": {}, "out_of_domain": {}}}});
        let text = in_english(guide("s", quality, Some(&prepared))).join("\n");
        assert!(
            text.contains("3 finding(s)")
                && text.contains("subjects: 40 rows; missing 2, duplicates 1"),
            "{text}"
        );
        assert!(!text.contains('{'), "{text}");
        let notice = p.step("prison-administration-notice").unwrap();
        let prepared = serde_json::json!({"letter": "prison-administration-notice.txt", "deadline": "2028-03-01"});
        let text = in_english(guide("s", notice, Some(&prepared))).join("\n");
        assert!(
            text.contains("outbox/s/prison-administration-notice.txt")
                && text.contains("by 2028-03-01"),
            "{text}"
        );
        let lv = in_latvian(guide("s", notice, Some(&prepared))).join("\n");
        assert!(
            lv.contains("outbox/s/prison-administration-notice.txt")
                && lv.contains("līdz 2028-03-01"),
            "{lv}"
        );
    }

    /// Every task of the three shipped specs is guided in Latvian too (issue #13): as many
    /// instructions as in English, each with the same paths, files and figures, and none of
    /// the English words every English instruction has one of.
    #[test]
    fn every_task_is_guided_in_latvian_as_in_english() {
        let prepared = serde_json::json!({
            "sent": "s-v1-request", "subjects": 40, "findings": 3, "deadline": "2028-03-01",
            "quality": {"subjects": {"rows": 40, "missing": {"sex": 2}, "duplicates": 1}},
        });
        let mut tasks = 0;
        for name in [
            "probation-client-survey",
            "recidivism-2026-cohort",
            "resocialisation-programmes-university",
        ] {
            let p = plan(name);
            for step in p.graph.node_weights().filter(|s| s.human_task) {
                let (en, lv): (Vec<String>, Vec<String>) =
                    guide("s", step, Some(&prepared)).into_iter().unzip();
                assert_eq!(en.len(), lv.len(), "{name} {}", step.id);
                for (e, l) in en.iter().zip(&lv) {
                    assert_ne!(e, l, "{name} {}", step.id);
                    for w in [" the ", " and ", " with ", "when "] {
                        assert!(!l.contains(w), "{name} {}: {l:?} has {w:?}", step.id);
                    }
                    // The same paths, files and figures, and the same MK403 points however
                    // each language writes them (`p.22.1`, `22.1. p.`).
                    let marks = |t: &str| -> Vec<String> {
                        let cited = |w: &str| {
                            w.starts_with("p.")
                                || (w.ends_with('.')
                                    && w.chars().all(|c| c.is_ascii_digit() || c == '.'))
                        };
                        let mut v: Vec<String> = t
                            .split(|c: char| c.is_whitespace() || "(),;:—".contains(c))
                            .filter(|w| {
                                w.contains('/')
                                    || w.contains(".csv")
                                    || w.contains(".json")
                                    || w.chars().any(|c| c.is_ascii_digit())
                            })
                            .filter(|w| !cited(w))
                            .map(str::to_owned)
                            .chain(studyflow_spec::regulation::cited_points(t))
                            .collect();
                        v.sort();
                        v
                    };
                    assert_eq!(marks(e), marks(l), "{name} {}:\n{e}\n{l}", step.id);
                }
                tasks += 1;
            }
        }
        assert!(tasks >= 15, "{tasks} tasks");
    }
}
