//! The study lifecycle: submit → approve (pinned to the plan hash) → contract (external
//! studies) → start → running → completed | terminated, amendments, human tasks, status.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petgraph::Direction::{Incoming, Outgoing};
use studyflow_calendar::Calendar;
use studyflow_identity::Identity;
use studyflow_plan::{Plan, Step, StepKind, TaskBody, Trigger};
use studyflow_spec::Spec;
use studyflow_spec::model::{ServiceRole, same_person};
use studyflow_store::{
    AuditEvent, Expect, Finish, Language, NewRun, RunRow, RunState, Store, StudyRow, StudyState,
    TaskMode, VersionState,
};

use crate::clock::{Clock, micros, riga_date, riga_end_of_day, riga_midnight};
use crate::dataplane::{DataPlane, Subject};
use crate::people::{StudyAct, authorise, authorise_act, has_role, service_persons, team_member};

use crate::error::Latvian as _;
pub use crate::error::{EngineError, ProvenAct, Result, Said};
use crate::said;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Attempts before a step fails for good.
    pub max_attempts: i64,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// First retry delay; doubled per attempt up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Runs claimed at once by one worker.
    pub batch: i64,
    /// Approving, recording a contract and terminating need a proof of identity (password and
    /// second factor) no older than this.
    pub step_up: Duration,
    /// When set, a study's status is computed at most once in this long and shared by the
    /// requests meanwhile (the server: many people looking at a study of 100,000 runs); an act
    /// of this engine makes it current at once, the workers' progress shows within this long.
    /// `None` (the default): every status is computed when asked.
    pub status_cache: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_attempts: 5,
            lease: Duration::from_secs(60),
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(6 * 3600),
            batch: 32,
            step_up: Duration::from_secs(5 * 60),
            status_cache: None,
        }
    }
}

/// A study version loaded for execution: its spec and its plan, whose hash was checked
/// against the approved one.
pub struct Loaded {
    pub spec: Spec,
    pub plan: Plan,
}

impl Loaded {
    /// Steps whose completion establishes the cohort: study-level steps with a per-subject
    /// successor.
    pub fn cohort_steps(&self) -> Vec<&Step> {
        let g = &self.plan.graph;
        g.node_indices()
            .filter(|n| {
                !g[*n].per_subject && g.neighbors_directed(*n, Outgoing).any(|m| g[m].per_subject)
            })
            .map(|n| &g[n])
            .collect()
    }
}

/// The contract of an external study, as recorded by `contract` (MK403 p.5, p.30.2, p.33).
#[derive(Debug, Clone)]
pub struct ContractInput {
    pub number: String,
    pub concluded_on: jiff::civil::Date,
    /// Who signed a non-disclosure declaration.
    pub signatories: Vec<String>,
    /// Whether the p.33.3–33.5 measures were checked.
    pub measures_checked: bool,
}

/// The engine.
pub struct Engine {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub calendar: Arc<Calendar>,
    pub data_plane: Arc<dyn DataPlane>,
    pub options: Options,
    loaded: Mutex<HashMap<(String, i64), Arc<Loaded>>>,
    /// The specs of stored versions, parsed once: a version's bytes never change.
    specs: Mutex<HashMap<(String, i64), Arc<Spec>>>,
    /// Studies' statuses as last computed, when [`Options::status_cache`] is set.
    pub(crate) statuses: crate::cache::Shared,
}

/// A person's note on a task, as the run records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskNote {
    /// On a step without personal data: the words, personal codes masked.
    Plain(String),
    /// On a step with personal data: age ciphertext (hex) to the study's note key, opened
    /// only with the study's keys and unreadable once they are destroyed (MK403 p.26).
    Sealed(String),
}

/// The run key (idempotency key) of a step: study, version, step and, per subject, the
/// subject's pseudonym.
pub fn run_key(study: &str, version: i64, step: &str, subject: &str) -> String {
    if subject.is_empty() {
        format!("{study}/v{version}/{step}")
    } else {
        format!("{study}/v{version}/{step}/{subject}")
    }
}

/// An audit event with a JSON detail.
pub(crate) fn event(
    at: i64,
    actor: &str,
    action: &str,
    object: &str,
    point: &str,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent::new(at, actor, action, object, point, detail.to_string())
}

impl Engine {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        calendar: Arc<Calendar>,
        data_plane: Arc<dyn DataPlane>,
        options: Options,
    ) -> Engine {
        Engine {
            store,
            clock,
            calendar,
            data_plane,
            options,
            loaded: Mutex::new(HashMap::new()),
            specs: Mutex::new(HashMap::new()),
            statuses: crate::cache::Shared::default(),
        }
    }

    /// Seals the audit after an act of this engine, which stands once committed
    /// ([`Store::seal_committed`]); a cached status no longer holds.
    async fn seal(&self) -> Result<()> {
        self.statuses.forget();
        Ok(self.store.seal_committed().await?)
    }

    /// What is wrong with the audit's sealing now, in words, if anything: what is recorded
    /// cannot be sealed, events wait for a process with the audit key, or the checkpoint log
    /// outside the database lags behind it (an append that failed after its seal). An
    /// operator's `status` says it, not only the log of each act that met it. An audit found
    /// tampered with is the error itself.
    pub async fn audit_standing(&self) -> Result<Vec<String>> {
        use studyflow_store::StoreError::AuditTampered;
        self.statuses.forget();
        let mut wrong = Vec::new();
        match self.store.seal_audit().await {
            Ok(_) => {}
            Err(e @ AuditTampered(_)) => return Err(e.into()),
            // Said once: the log would be read again below.
            Err(e @ studyflow_store::StoreError::CheckpointLogUnreadable { .. }) => {
                wrong.push(format!("sealing the audit failed: {e}"));
                return Ok(wrong);
            }
            Err(e) => wrong.push(format!("sealing the audit failed: {e}")),
        }
        match self.store.audit_log_behind().await {
            Ok(None) => {}
            Ok(Some((sealed, 0))) => wrong.push(format!(
                "the checkpoint log holds no checkpoint, the database's cover rows 1–{sealed} (deleted, never written, or appending to it failed)"
            )),
            Ok(Some((sealed, logged))) => wrong.push(format!(
                "the checkpoint log lacks the latest signed checkpoint: the database's covers rows 1–{sealed}, the log's rows 1–{logged} (appending to it failed; the next seal appends a newer one)"
            )),
            Err(e @ AuditTampered(_)) => return Err(e.into()),
            Err(e) => wrong.push(e.to_string()),
        }
        let waiting = self.store.audit_waiting_for_key().await?;
        if waiting > 0 {
            wrong.push(format!(
                "{waiting} recorded audit event(s) wait to be sealed: the audit is signed, and only a process given the audit key (--audit-key-file) seals them"
            ));
        }
        Ok(wrong)
    }

    pub fn now(&self) -> i64 {
        micros(self.clock.now())
    }

    /// Whether this process's last seal of committed acts failed and none has succeeded since:
    /// acts are recorded and wait to be sealed into the audit ([`Engine::audit_standing`] says
    /// why, to an operator).
    pub fn audit_unsealed(&self) -> bool {
        self.store.seal_trouble().is_some()
    }

    fn compile(&self, bytes: &[u8]) -> Result<(Spec, Plan)> {
        let today = riga_date(self.clock.now());
        let checked = studyflow_plan::check(bytes, &self.calendar, Some(today));
        if checked.checked.errors() > 0 {
            return Err(EngineError::Invalid(checked.checked.diagnostics));
        }
        match (checked.checked.spec, checked.plan) {
            (Some(spec), Some(plan)) => Ok((spec, plan)),
            _ => Err(EngineError::Invalid(checked.checked.diagnostics)),
        }
    }

    /// Loads a stored version and checks that the plan compiled from its bytes today is the
    /// one stored (and approved): a changed calendar or compiler must not silently change a
    /// running study.
    pub async fn load(&self, study: &str, version: i64) -> Result<Arc<Loaded>> {
        self.load_checked(study, version, true).await
    }

    /// A version as compiled today without comparing its shape with the approved plan: only
    /// for running the destruction of its identifying data (MK403 p.26, p.34), which must
    /// happen even after the compiler changed; everything else waits for an amendment.
    pub(crate) async fn load_for_destruction(
        &self,
        study: &str,
        version: i64,
    ) -> Result<Arc<Loaded>> {
        self.load_checked(study, version, false).await
    }

    async fn load_checked(
        &self,
        study: &str,
        version: i64,
        check_shape: bool,
    ) -> Result<Arc<Loaded>> {
        let key = (study.to_owned(), version);
        if check_shape
            && let Some(l) = self
                .loaded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
        {
            return Ok(l.clone());
        }
        let v = self
            .store
            .version(study, Some(version))
            .await?
            .ok_or_else(|| {
                EngineError::NotFound(said!(
                    "no version {version} of study `{study}`",
                    "pētījumam `{study}` nav {version}. versijas"
                ))
            })?;
        let checked = studyflow_spec::check(&v.spec);
        let spec = checked
            .spec
            .ok_or_else(|| no_longer_parses(study, version))?;
        let (plan, _) = studyflow_plan::compile(&spec, &v.spec, &self.calendar, None);
        // The destruction of identifying data (MK403 p.26) runs whatever the compiler became:
        // its step as compiled today, uncached, for that step alone (see `Worker::execute`).
        if !check_shape {
            return Ok(Arc::new(Loaded { spec, plan }));
        }
        // The approved plan runs for years, across releases and calendar updates: what must
        // not change is its shape — the steps, who performs them, what data they read and
        // write, and their order. Dates may move with a new Cabinet order; a different shape
        // needs an amendment and its own approval.
        let stored: serde_json::Value = serde_json::from_str(&v.plan_json).unwrap_or_default();
        let now = studyflow_plan::render::json(&plan);
        if plan_shape(&stored) != plan_shape(&now) {
            return Err(EngineError::Refused(said!(
                "the plan of `{study}` version {version} compiles today to steps or an order other than the approved plan {} (the compiler changed); submit the spec again as an amendment",
                "šodien kompilējot pētījuma `{study}` {version}. versijas plānu, tā soļi vai to secība atšķiras no apstiprinātā plāna {} (kompilators ir mainījies); iesniedziet specifikāciju vēlreiz kā grozījumu",
                v.plan_hash
            )));
        }
        let l = Arc::new(Loaded { spec, plan });
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((study.to_owned(), version), l.clone());
        Ok(l)
    }

    /// The acts that cannot be undone or that let data out — approving, recording a contract,
    /// terminating — need a recent proof of identity, not only a session or token that may
    /// have been left open.
    pub fn require_recent_proof(&self, who: &Identity, act: ProvenAct) -> Result<()> {
        let window = i64::try_from(self.options.step_up.as_micros()).unwrap_or(i64::MAX);
        if who.recently_authenticated(self.now(), window) {
            Ok(())
        } else {
            let minutes = self.options.step_up.as_secs() / 60;
            Err(EngineError::Reauthenticate(Said {
                en: format!(
                    "to {}, prove who you are again (password and code, or a new sign-in at the identity provider): the last proof is older than {minutes} minutes",
                    act.en()
                ),
                lv: format!(
                    "lai {}, vēlreiz aplieciniet savu identitāti (ar paroli un kodu vai no jauna pierakstoties pie identitātes nodrošinātāja): pēdējais apliecinājums ir vecāks par {minutes} minūtēm",
                    act.lv()
                ),
            }))
        }
    }

    /// Submits a new study (its spec's `version` must be 1), as a person the spec names as
    /// one who submits its application ([`StudyAct::Submit`]).
    pub async fn submit(&self, bytes: &[u8], who: &Identity) -> Result<(String, i64, String)> {
        let (spec, plan) = self.compile(bytes)?;
        authorise_act(&spec, StudyAct::Submit, who)?;
        // A new study only: a later version is an amendment, decided by the persons of the
        // version in force, never by whoever writes themselves into a new spec (MK403 p.3).
        if spec.version.0 != 1 {
            return Err(EngineError::Refused(said!(
                "a new study's spec has `version: 1`, not {}; a changed spec of a study is an amendment (`studyflow amend`), approved in its turn (MK403 p.3)",
                "jauna pētījuma specifikācijā jābūt `version: 1`, nevis {}; pētījuma mainīta specifikācija ir grozījums (`studyflow amend`), kas arī jāapstiprina (MK403 3. p.)",
                spec.version.0
            )));
        }
        // The audit's objects outside any study (`account/<login>`, `audit`) are named so that
        // no study's audit can take them for its own.
        if studyflow_store::RESERVED_OBJECTS.contains(&spec.id.as_str()) {
            return Err(EngineError::Refused(said!(
                "the id `{}` is reserved for the audit's own records; choose another",
                "identifikators `{}` ir rezervēts paša audita ierakstiem; izvēlieties citu",
                spec.id
            )));
        }
        if self.store.study(&spec.id).await?.is_some() {
            // Said only to someone the study involves: to anyone else, that it exists is none
            // of their business.
            return Err(EngineError::Refused(
                if self.involved(&spec.id, who).await? {
                    said!(
                        "study `{}` exists already; submit a changed spec with `amend` (MK403 p.3)",
                        "pētījums `{}` jau pastāv; mainītu specifikāciju iesniedziet ar `amend` (MK403 3. p.)",
                        spec.id
                    )
                } else {
                    said!(
                        "the id `{}` cannot be used; choose another",
                        "identifikatoru `{}` nevar izmantot; izvēlieties citu",
                        spec.id
                    )
                },
            ));
        }
        self.store_version(&spec, &plan, bytes, who, "study.submitted")
            .await
    }

    /// Submits a changed spec of an existing study as its next version (an amendment); it needs
    /// its own approval.
    pub async fn amend(
        &self,
        study: &str,
        bytes: &[u8],
        who: &Identity,
    ) -> Result<(String, i64, String)> {
        if self.store.study(study).await?.is_none() {
            return Err(no_study(study));
        }
        // Amended by a person the version in force names, not one the amendment adds.
        let authority = self.authority(study, None).await?;
        authorise_act(&authority, StudyAct::Amend, who)?;
        let (spec, plan) = self.compile(bytes)?;
        if spec.id != study {
            return Err(EngineError::Refused(said!(
                "the spec is of study `{}`, not `{study}`",
                "specifikācija attiecas uz pētījumu `{}`, nevis `{study}`",
                spec.id
            )));
        }
        self.store_version(&spec, &plan, bytes, who, "study.amended")
            .await
    }

    async fn store_version(
        &self,
        spec: &Spec,
        plan: &Plan,
        bytes: &[u8],
        who: &Identity,
        action: &str,
    ) -> Result<(String, i64, String)> {
        let now = self.now();
        let version = i64::from(spec.version.0);
        let sub = studyflow_store::Submission {
            study: spec.id.clone(),
            version,
            spec: bytes.to_vec(),
            plan_hash: plan.hash.clone(),
            plan_json: studyflow_plan::render::json(plan).to_string(),
            submitted_by: who.login().to_owned(),
            at: now,
        };
        let audit = [event(
            now,
            &who.actor(),
            action,
            &spec.id,
            "p.3",
            serde_json::json!({"version": version, "plan_hash": plan.hash}),
        )];
        self.store.submit(&sub, &audit).await?;
        self.seal().await?;
        Ok((spec.id.clone(), version, plan.hash.clone()))
    }

    /// The spec whose people may act on `study`: the running version's, else the latest
    /// approved one's, else — before any approval — the first submitted one's, never a pending
    /// amendment's (the people it adds act only once it is approved). Read from the stored
    /// spec alone, not its plan, so a study whose plan no longer compiles to its approved shape
    /// can still be amended or terminated.
    pub(crate) async fn authority(&self, study: &str, running: Option<i64>) -> Result<Arc<Spec>> {
        let version = match running {
            Some(v) => v,
            None => self
                .store
                .latest_approved_version(study)
                .await?
                .unwrap_or(1),
        };
        let key = (study.to_owned(), version);
        if let Some(spec) = self
            .specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(spec.clone());
        }
        let v = self
            .store
            .version(study, Some(version))
            .await?
            .ok_or_else(|| no_study(study))?;
        let spec = Arc::new(
            studyflow_spec::check(&v.spec)
                .spec
                .ok_or_else(|| no_longer_parses(study, version))?,
        );
        self.specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, spec.clone());
        Ok(spec)
    }

    /// The language `who` chose for the pages, if they chose one (a person's own preference,
    /// read for them alone).
    pub async fn language_of(&self, who: &Identity) -> Result<Option<Language>> {
        Ok(self.store.language(who.login()).await?)
    }

    /// Keeps the language `who` chose for the pages: their own preference, set by them.
    pub async fn choose_language(&self, who: &Identity, language: Language) -> Result<()> {
        Ok(self.store.set_language(who.login(), language).await?)
    }

    /// Audits a read of restricted information by `who` (a sealed note opened, a release file
    /// downloaded): what, which MK403 point allows it, and a digest of what was read — never the
    /// content.
    pub async fn record_read(
        &self,
        who: &Identity,
        action: &str,
        object: &str,
        point: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let e = event(self.now(), &who.actor(), action, object, point, detail);
        self.store.append_audit(&[e]).await?;
        Ok(())
    }

    /// Whether the spec in force binds `who` to any of the study's persons (MK403 p.25.1): only
    /// they see the study. `false` for a study that does not exist, so a stranger learns
    /// nothing of which studies do.
    pub async fn involved(&self, study: &str, who: &Identity) -> Result<bool> {
        match self.store.study(study).await? {
            Some(row) => self.involves(&row, who).await,
            None => Ok(false),
        }
    }

    /// Whether the spec in force of the study `row` binds `who` to any of its persons.
    async fn involves(&self, row: &StudyRow, who: &Identity) -> Result<bool> {
        let spec = self.authority(&row.id, row.active_version).await?;
        Ok(service_persons(&spec, who).next().is_some() || team_member(&spec, who).is_some())
    }

    /// The studies `who` is involved in ([`Engine::involved`]).
    pub async fn studies_of(&self, who: &Identity) -> Result<Vec<StudyRow>> {
        let mut out = Vec::new();
        for s in self.store.studies().await? {
            if self.involves(&s, who).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The steps (id and kind) of a version's plan as approved and stored.
    pub(crate) async fn approved_steps(
        &self,
        study: &str,
        version: i64,
    ) -> Result<Vec<(String, StepKind)>> {
        #[derive(serde::Deserialize)]
        struct Node {
            id: String,
            kind: StepKind,
        }
        #[derive(serde::Deserialize)]
        struct Stored {
            nodes: Vec<Node>,
        }
        let v = self
            .store
            .version(study, Some(version))
            .await?
            .ok_or_else(|| {
                EngineError::NotFound(said!(
                    "no version {version} of `{study}`",
                    "pētījumam `{study}` nav {version}. versijas"
                ))
            })?;
        let stored: Stored = serde_json::from_str(&v.plan_json).map_err(|e| {
            EngineError::Refused(said!(
                "the stored plan of `{study}` version {version} does not read: {e}",
                "pētījuma `{study}` {version}. versijas saglabāto plānu nevar nolasīt: {e}"
            ))
        })?;
        Ok(stored.nodes.into_iter().map(|n| (n.id, n.kind)).collect())
    }

    pub(crate) async fn study_row(&self, study: &str) -> Result<StudyRow> {
        self.store
            .study(study)
            .await?
            .ok_or_else(|| no_study(study))
    }

    /// Approves the latest submitted version, pinned to its plan hash (MK403 p.3, p.30.1). The
    /// approver must be an approver named in the spec and not the submitter. Approving an
    /// amendment of a running study re-plans it: steps done stay done, the rest follow the new
    /// plan.
    pub async fn approve(
        &self,
        study: &str,
        who: &Identity,
        expected_hash: Option<&str>,
    ) -> Result<i64> {
        let user = who.login();
        let row = self.study_row(study).await?;
        let v = self
            .waiting_for(study, who, expected_hash, ProvenAct::Approve)
            .await?;
        self.load(study, v.version).await?;
        let now = self.now();
        let audit = [event(
            now,
            &who.actor(),
            "study.approved",
            study,
            "p.30.1",
            serde_json::json!({"version": v.version, "plan_hash": v.plan_hash}),
        )];
        self.store
            .approve(study, v.version, &v.plan_hash, user, now, &audit)
            .await?;
        if row.state == StudyState::Running {
            self.activate(study, v.version, &[StudyState::Running], true, &who.actor())
                .await?;
        }
        self.seal().await?;
        Ok(v.version)
    }

    /// The version waiting for `who` to decide on (`act`: approve or refuse). Who acts is
    /// checked before anything about the study is said: an approver of the version in force
    /// (before any approval, of the first version), not one the amendment itself names; not its
    /// submitter; with a recent proof of who they are; then that a version waits, with the plan
    /// reviewed.
    async fn waiting_for(
        &self,
        study: &str,
        who: &Identity,
        expected_hash: Option<&str>,
        act: ProvenAct,
    ) -> Result<studyflow_store::VersionRow> {
        let user = who.login();
        self.study_row(study).await?;
        let v = self
            .store
            .version(study, None)
            .await?
            .ok_or_else(|| no_study(study))?;
        let in_force = self.authority(study, None).await?;
        if !has_role(&in_force, who, ServiceRole::Approver) {
            return Err(EngineError::Forbidden(said!(
                "`{user}` is not bound to an approver among the authorised persons of `{study}` in force (MK403 p.3, p.25.1)",
                "`{user}` nav apstiprinātājs starp pētījuma `{study}` spēkā esošās versijas pilnvarotajām personām (MK403 3., 25.1. p.)"
            )));
        }
        if v.state == VersionState::Submitted && v.submitted_by == user {
            let (en, lv) = if act == ProvenAct::Refuse {
                ("refuse", "noraidīt")
            } else {
                ("approve", "apstiprināt")
            };
            return Err(EngineError::Forbidden(Said {
                en: format!(
                    "`{user}` submitted version {} of `{study}` and cannot also {en} it (MK403 p.3: the Service approves the application)",
                    v.version
                ),
                lv: format!(
                    "`{user}` iesniedza pētījuma `{study}` {}. versiju un nevar to arī {lv} (MK403 3. p.: pieteikumu apstiprina dienests)",
                    v.version
                ),
            }));
        }
        self.require_recent_proof(who, act)?;
        if v.state != VersionState::Submitted {
            return Err(EngineError::Refused(Said {
                en: format!(
                    "no version of `{study}` is waiting for approval (version {} is {})",
                    v.version, v.state
                ),
                lv: format!(
                    "neviena pētījuma `{study}` versija negaida apstiprinājumu ({}. versija ir {})",
                    v.version,
                    v.state.lv()
                ),
            }));
        }
        if let Some(h) = expected_hash
            && h != v.plan_hash
        {
            return Err(EngineError::Refused(said!(
                "version {} of `{study}` has plan {}, not the {h} you reviewed; nothing was decided",
                "pētījuma `{study}` {}. versijai ir plāns {}, nevis jūsu pārskatītais {h}; nekas netika izlemts",
                v.version,
                v.plan_hash
            )));
        }
        Ok(v)
    }

    /// Refuses the latest submitted version, pinned to the plan hash the approver reviewed
    /// (MK403 p.3: the Service approves — or does not approve — the application), with a reason
    /// for its submitter; personal codes in the reason are masked before it is kept. The same
    /// approver as for approving: of the version in force, not the submitter, with a recent
    /// proof. The study and the version in force stay as they are; a changed spec may follow as
    /// a new version.
    pub async fn refuse(
        &self,
        study: &str,
        who: &Identity,
        expected_hash: Option<&str>,
        reason: &str,
    ) -> Result<i64> {
        let v = self
            .waiting_for(study, who, expected_hash, ProvenAct::Refuse)
            .await?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 2000 {
            return Err(EngineError::Refused(said!(
                "a refusal gives its reason, in at most 2000 characters",
                "noraidījumam norāda iemeslu, ne garāku par 2000 rakstzīmēm"
            )));
        }
        let reason = studyflow_spec::diagnostic::mask_personal_codes(reason);
        let now = self.now();
        let audit = [event(
            now,
            &who.actor(),
            "study.refused",
            study,
            "p.3",
            serde_json::json!({"version": v.version, "plan_hash": v.plan_hash, "reason": reason}),
        )];
        self.store
            .refuse(study, v.version, &v.plan_hash, &audit)
            .await?;
        self.seal().await?;
        Ok(v.version)
    }

    /// Records the contract, the non-disclosure declarations and the security measures of an
    /// external study (MK403 p.5, p.30.2, p.33).
    pub async fn contract(&self, study: &str, who: &Identity, c: &ContractInput) -> Result<()> {
        let user = who.login();
        let row = self.study_row(study).await?;
        // Who acts first: an approver or supervisor of the spec in force (MK403 p.30.2), with
        // a recent proof of who they are.
        let in_force = self.authority(study, row.active_version).await?;
        if !service_persons(&in_force, who)
            .any(|p| matches!(p.role, ServiceRole::Approver | ServiceRole::Supervisor))
        {
            return Err(EngineError::Forbidden(said!(
                "`{user}` is not bound to an approver or supervisor among the spec's authorised persons (MK403 p.30.2)",
                "`{user}` nav ne apstiprinātājs, ne uzraugs starp specifikācijas pilnvarotajām personām (MK403 30.2. p.)"
            )));
        }
        self.require_recent_proof(who, ProvenAct::RecordContract)?;
        let version = self.approved_version(study).await?;
        let loaded = self.load(study, version).await?;
        let Some(external) = &loaded.spec.external else {
            return Err(EngineError::Refused(said!(
                "`{study}` has no external researcher, so there is no contract to record (MK403 p.5)",
                "pētījumam `{study}` nav pētījuma izstrādātāja, tāpēc nav līguma, ko ierakstīt (MK403 5. p.)"
            )));
        };
        if row.state != StudyState::Approved {
            return Err(EngineError::Refused(Said {
                en: format!(
                    "`{study}` is {}, not approved and waiting for its contract",
                    row.state
                ),
                lv: format!(
                    "pētījuma `{study}` stāvoklis ir „{}”, nevis „apstiprināts”, un tas negaida līgumu",
                    row.state.lv()
                ),
            }));
        }
        // The contract as the approved spec states it: a contract recorded as concluded names
        // the number and the date the approver saw (p.5), and none is concluded in the future.
        let today = riga_date(self.clock.now());
        if c.number.trim().is_empty() {
            return Err(EngineError::Refused(said!(
                "a concluded contract has a number (MK403 p.5)",
                "noslēgtam līgumam jānorāda numurs (MK403 5. p.)"
            )));
        }
        if c.concluded_on > today {
            return Err(EngineError::Refused(said!(
                "a contract concluded on {} is not concluded yet: today is {today} (MK403 p.5, p.30.2)",
                "līguma noslēgšanas datums {} vēl nav pienācis: šodien ir {today} (MK403 5., 30.2. p.)",
                c.concluded_on
            )));
        }
        if let Some(stated) = &external.contract {
            if let Some(number) = stated.number.as_deref().filter(|n| !n.trim().is_empty())
                && number.trim() != c.number.trim()
            {
                return Err(EngineError::Refused(said!(
                    "the contract number `{}` is not the one in the approved spec (`{number}`); a different contract is an amendment (MK403 p.5)",
                    "līguma numurs `{}` nav tas, kas norādīts apstiprinātajā specifikācijā (`{number}`); citam līgumam vajadzīgs grozījums (MK403 5. p.)",
                    c.number
                )));
            }
            if let Some(on) = stated.concluded_on
                && on.0 != c.concluded_on
            {
                return Err(EngineError::Refused(said!(
                    "the contract was concluded on {on} by the approved spec, not on {} (MK403 p.5)",
                    "saskaņā ar apstiprināto specifikāciju līgums noslēgts {on}, nevis {} (MK403 5. p.)",
                    c.concluded_on
                )));
            }
        }
        // One declaration per person, under the team member's name as the spec writes it,
        // however often or however it was typed; a name of no team member is refused; and one
        // from everyone who needs one, by the rule SF134 checks in the spec (p.30.2, p.33.1).
        let team = external.team();
        let mut signatories: Vec<String> = Vec::new();
        for given in &c.signatories {
            let Some(member) = team.iter().find(|m| same_person(&m.name, given)) else {
                return Err(EngineError::Refused(said!(
                    "`{}` is not in the external researcher's team; only its members' declarations are recorded (MK403 p.4.2, p.30.2)",
                    "`{}` nav pētījuma izstrādātāja komandā; reģistrējami tikai tās locekļu apliecinājumi (MK403 4.2., 30.2. p.)",
                    given.trim()
                )));
            };
            if !signatories.contains(&member.name) {
                signatories.push(member.name.clone());
            }
        }
        signatories.sort_unstable();
        let missing: Vec<(&str, (&str, &str))> = team
            .iter()
            .filter_map(|m| {
                let why = m.needs_declaration_in_both()?;
                (!signatories.contains(&m.name)).then_some((m.name.as_str(), why))
            })
            .collect();
        if !missing.is_empty() {
            let en: Vec<String> = missing
                .iter()
                .map(|(n, (why, _))| format!("{n} ({why})"))
                .collect();
            let lv: Vec<String> = missing
                .iter()
                .map(|(n, (_, why))| format!("{n} ({why})"))
                .collect();
            return Err(EngineError::Refused(Said {
                en: format!(
                    "no signed non-disclosure declaration from {} (MK403 p.30.2)",
                    en.join(", ")
                ),
                lv: format!(
                    "šīm personām trūkst parakstīta apliecinājuma par ierobežotas pieejamības informācijas neizpaušanu: {} (MK403 30.2. p.)",
                    lv.join(", ")
                ),
            }));
        }
        let measures = external.security_measures.as_ref();
        let complete = measures.is_some_and(|m| {
            m.device_protection.is_some()
                && m.antivirus_up_to_date == Some(true)
                && m.network_security
                    .as_deref()
                    .is_some_and(|n| !n.trim().is_empty())
        });
        if !c.measures_checked || !complete {
            return Err(EngineError::Refused(said!(
                "the external researcher's security measures (MK403 p.33.3–33.5) must be stated in the spec and checked (--measures-checked)",
                "pētījuma izstrādātāja drošības pasākumiem (MK403 33.3.–33.5. p.) jābūt norādītiem specifikācijā un pārbaudītiem (--measures-checked)"
            )));
        }
        let now = self.now();
        let row = studyflow_store::ContractRow {
            study: study.to_owned(),
            number: c.number.clone(),
            concluded_on: c.concluded_on.to_string(),
            declarations: serde_json::to_string(&signatories).unwrap_or_default(),
            measures_recorded: true,
            recorded_by: user.to_owned(),
            recorded_at: now,
        };
        let audit = [event(
            now,
            &who.actor(),
            "study.contracted",
            study,
            "p.30.2",
            serde_json::json!({"contract": c.number, "declarations": signatories.len()}),
        )];
        self.store.record_contract(&row, &audit).await?;
        self.seal().await?;
        Ok(())
    }

    async fn approved_version(&self, study: &str) -> Result<i64> {
        self.store
            .latest_approved_version(study)
            .await?
            .ok_or_else(|| {
                EngineError::Refused(said!(
                    "`{study}` has no approved version (MK403 p.3)",
                    "pētījumam `{study}` nav apstiprinātas versijas (MK403 3. p.)"
                ))
            })
    }

    /// Starts an approved study (an external one once its contract is recorded, MK403 p.30).
    pub async fn start(&self, study: &str, who: &Identity) -> Result<usize> {
        let row = self.study_row(study).await?;
        // Who acts first, by the spec in force, before anything about the study is said.
        authorise_act(
            &*self.authority(study, row.active_version).await?,
            StudyAct::Start,
            who,
        )?;
        let version = self.approved_version(study).await?;
        let loaded = self.load(study, version).await?;
        let user = &who.actor();
        let external = loaded.spec.external.is_some();
        // An approved amendment whose re-planning did not complete (the approval committed,
        // the activation failed) is re-planned by `start`.
        if row.state == StudyState::Running && row.active_version.is_some_and(|a| a < version) {
            let n = self
                .activate(study, version, &[StudyState::Running], true, user)
                .await?;
            self.seal().await?;
            return Ok(n);
        }
        match (row.state, external) {
            (StudyState::Approved, false) | (StudyState::Contracted, true) => {}
            (StudyState::Approved, true) => {
                return Err(EngineError::Refused(said!(
                    "`{study}` is an external study: record the contract, the non-disclosure declarations and the security measures first (MK403 p.30.2)",
                    "`{study}` ir pētījums, ko īsteno pētījuma izstrādātājs: vispirms reģistrē līgumu, neizpaušanas apliecinājumus un drošības pasākumus (MK403 30.2. p.)"
                )));
            }
            (s, _) => {
                return Err(EngineError::Refused(Said {
                    en: format!("`{study}` is {s}; only an approved study can start"),
                    lv: format!(
                        "pētījuma `{study}` stāvoklis ir „{}”; sākt var tikai apstiprinātu pētījumu",
                        s.lv()
                    ),
                }));
            }
        }
        let n = self
            .activate(
                study,
                version,
                &[StudyState::Approved, StudyState::Contracted],
                false,
                user,
            )
            .await?;
        self.seal().await?;
        Ok(n)
    }

    /// Creates the runs of `version` that are not done or running yet (in any version).
    async fn activate(
        &self,
        study: &str,
        version: i64,
        from: &[StudyState],
        replace: bool,
        user: &str,
    ) -> Result<usize> {
        let loaded = self.load(study, version).await?;
        let existing = self.store.runs(study).await?;
        let started: HashMap<(String, String), String> = existing
            .iter()
            .filter(|r| matches!(r.state, RunState::Done | RunState::Running))
            .map(|r| ((r.step.clone(), r.subject.clone()), r.key.clone()))
            .collect();
        // Subjects known from a cohort step done before.
        let cohort: HashSet<&str> = loaded
            .cohort_steps()
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        let subjects: Option<Vec<Subject>> = existing
            .iter()
            .filter(|r| r.state == RunState::Done && cohort.contains(r.step.as_str()))
            .find_map(subjects_of);
        let version_row = self.store.version(study, Some(version)).await?;
        let approver = version_row.and_then(|v| v.approved_by).unwrap_or_default();
        let contract = self.store.contract(study).await?.map(|c| c.recorded_by);
        let runs = self.materialise(
            study,
            version,
            &loaded,
            &started,
            subjects.as_deref(),
            &approver,
            contract.as_deref(),
        );
        let now = self.now();
        let audit = [event(
            now,
            user,
            if replace {
                "study.replanned"
            } else {
                "study.started"
            },
            study,
            "p.3",
            serde_json::json!({"version": version, "runs": runs.len()}),
        )];
        Ok(self
            .store
            .activate(&studyflow_store::Activation {
                study,
                version,
                from_states: from,
                replace_unstarted: replace,
                runs: &runs,
                now,
                audit: &audit,
            })
            .await?)
    }

    /// The runs of a version: every study-level step, and every per-subject step for each
    /// known subject, that has no done or running run; dependencies on steps already done
    /// point at the runs that did them.
    #[allow(clippy::too_many_arguments)]
    fn materialise(
        &self,
        study: &str,
        version: i64,
        loaded: &Loaded,
        started: &HashMap<(String, String), String>,
        subjects: Option<&[Subject]>,
        approver: &str,
        contract_by: Option<&str>,
    ) -> Vec<NewRun> {
        let g = &loaded.plan.graph;
        let order = loaded.plan.topological().unwrap_or_default();
        let key_of = |step: &str, subject: &str| -> String {
            started
                .get(&(step.to_owned(), subject.to_owned()))
                .cloned()
                .unwrap_or_else(|| run_key(study, version, step, subject))
        };
        let cohort: Vec<String> = loaded.cohort_steps().iter().map(|s| s.id.clone()).collect();
        // The subjects' runs first: a study-level step depends only on those that exist.
        let subject_runs = match subjects {
            Some(subjects) => self.subject_runs(study, version, loaded, subjects, &key_of),
            None => Vec::new(),
        };
        let known: HashSet<&str> = subject_runs
            .iter()
            .map(|r| r.key.as_str())
            .chain(started.values().map(String::as_str))
            .collect();
        let exists = |key: &str| known.contains(key);
        let mut out = Vec::new();
        for &n in &order {
            let step = &g[n];
            if step.per_subject {
                continue;
            }
            if started.contains_key(&(step.id.clone(), String::new())) {
                continue;
            }
            let mut deps = Vec::new();
            for p in g.neighbors_directed(n, Incoming) {
                let pred = &g[p];
                if pred.per_subject {
                    match subjects {
                        Some(subjects) => deps.extend(
                            subjects
                                .iter()
                                .map(|s| key_of(&pred.id, &s.pseudonym))
                                .filter(|k| exists(k)),
                        ),
                        None => deps.extend(cohort.iter().map(|c| key_of(c, ""))),
                    }
                } else {
                    deps.push(key_of(&pred.id, ""));
                }
            }
            deps.sort();
            deps.dedup();
            let mut run = self.new_run(study, version, step, "", None, deps);
            match step.kind {
                StepKind::Approval => run.done_by = Some(approver.to_owned()),
                StepKind::ContractGate => run.done_by = contract_by.map(str::to_owned),
                _ => {}
            }
            out.push(run);
        }
        out.extend(subject_runs);
        out
    }

    /// The per-subject runs of each subject, those not done or running yet.
    fn subject_runs(
        &self,
        study: &str,
        version: i64,
        loaded: &Loaded,
        subjects: &[Subject],
        key_of: &dyn Fn(&str, &str) -> String,
    ) -> Vec<NewRun> {
        let g = &loaded.plan.graph;
        let order = loaded.plan.topological().unwrap_or_default();
        let mut out = Vec::new();
        for s in subjects {
            // Steps not created for this subject, and so neither what follows them.
            let mut skipped: HashSet<&str> = HashSet::new();
            for &n in &order {
                let step = &g[n];
                if !step.per_subject {
                    continue;
                }
                // A batch of one wave runs that wave's steps alone.
                let other_wave = s
                    .wave
                    .as_deref()
                    .is_some_and(|w| step.about.wave().is_none_or(|x| x.name != w));
                if other_wave
                    || g.neighbors_directed(n, Incoming)
                        .any(|p| g[p].per_subject && skipped.contains(g[p].id.as_str()))
                {
                    skipped.insert(&step.id);
                    continue;
                }
                let own = key_of(&step.id, &s.pseudonym);
                if own != run_key(study, version, &step.id, &s.pseudonym) {
                    continue; // done or running already
                }
                let deps: Vec<String> = g
                    .neighbors_directed(n, Incoming)
                    .map(|p| {
                        let pred = &g[p];
                        key_of(&pred.id, if pred.per_subject { &s.pseudonym } else { "" })
                    })
                    .collect();
                let run = self.new_run(study, version, step, &s.pseudonym, Some(s), deps);
                // A wave counted from an end not known yet (the subject is still supervised)
                // is not run early: it and what follows it wait for the data that brings the
                // end, by an amendment. A wave that would fall due after the study's follow-up
                // cut-off (the deadline of its stage, MK403 p.3.4) is not requested at all: the
                // subject is right-censored there.
                let per_subject_timer = matches!(step.trigger, Trigger::PerSubject { .. });
                let after_cut_off = per_subject_timer
                    // `due_at` is the end of the cut-off day (midnight after it); a wave due the
                    // day after the cut-off starts at that very instant and is past it.
                    && matches!((run.not_before, run.due_at), (Some(nb), Some(due)) if nb >= due);
                if (run.not_before.is_some() || !per_subject_timer) && !after_cut_off {
                    out.push(run);
                } else {
                    skipped.insert(&step.id);
                }
            }
        }
        out
    }

    fn new_run(
        &self,
        study: &str,
        version: i64,
        step: &Step,
        subject: &str,
        who: Option<&Subject>,
        deps: Vec<String>,
    ) -> NewRun {
        let (not_before, timer_rule) = match (&step.trigger, who) {
            (Trigger::AtDate { date }, _) => (
                Some(micros(riga_midnight(*date))),
                Some(step.trigger.describe()),
            ),
            (Trigger::PerSubject { edge, years, .. }, Some(s)) => {
                let anchor = match edge {
                    studyflow_plan::model::AnchorEdge::Start => Some(s.start),
                    studyflow_plan::model::AnchorEdge::End => s.end,
                };
                let due = anchor.and_then(|a| a.checked_add(jiff::Span::new().years(*years)).ok());
                (
                    due.map(|d| micros(riga_midnight(d))),
                    Some(format!(
                        "{} (MK403 {})",
                        step.trigger.describe(),
                        step.regulation.first().copied().unwrap_or("p.19")
                    )),
                )
            }
            _ => (None, None),
        };
        let deadline = step.deadline.as_ref();
        NewRun {
            key: run_key(study, version, &step.id, subject),
            study: study.to_owned(),
            version,
            step: step.id.clone(),
            subject: subject.to_owned(),
            kind: step.kind.as_str().to_owned(),
            actor: step.actor.as_str().to_owned(),
            mode: match (step.human_task, step.task_body()) {
                (false, _) => TaskMode::Engine,
                (true, TaskBody::None) => TaskMode::Task,
                (true, TaskBody::Before) => TaskMode::PrepareThenTask,
                (true, TaskBody::After) => TaskMode::TaskThenApply,
            },
            not_before,
            timer_rule,
            calendar_version: Some(self.calendar.version().to_owned()),
            due_at: deadline
                .and_then(|d| d.date)
                .map(|d| micros(riga_end_of_day(d))),
            deadline_rule: deadline.map(|d| d.rule.clone()),
            deadline_point: deadline.map(|d| d.kind.point().to_owned()),
            max_attempts: self.options.max_attempts,
            done_by: None,
            deps,
        }
    }

    /// What finishing a run adds: for a cohort step, the subjects' runs and their links to the
    /// study-level steps after them.
    pub(crate) async fn expansion(
        &self,
        study: &str,
        step: &Step,
        subjects: &[Subject],
    ) -> Result<(Vec<NewRun>, Vec<(String, String)>)> {
        if subjects.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        // The subjects follow the plan the study runs now, which an amendment may have
        // replaced since the cohort step was claimed.
        let Some(version) = self
            .store
            .study(study)
            .await?
            .and_then(|r| r.active_version)
        else {
            return Ok((Vec::new(), Vec::new()));
        };
        let loaded = self.load(study, version).await?;
        let loaded = loaded.as_ref();
        if !loaded.cohort_steps().iter().any(|s| s.id == step.id) {
            return Ok((Vec::new(), Vec::new()));
        }
        let existing = self.store.runs(study).await?;
        let current: HashMap<(String, String), String> = existing
            .iter()
            .filter(|r| r.state != RunState::Cancelled)
            .map(|r| ((r.step.clone(), r.subject.clone()), r.key.clone()))
            .collect();
        let key_of = |s: &str, subject: &str| -> String {
            current
                .get(&(s.to_owned(), subject.to_owned()))
                .cloned()
                .unwrap_or_else(|| run_key(study, version, s, subject))
        };
        let runs = self.subject_runs(study, version, loaded, subjects, &key_of);
        let created: HashSet<&str> = runs.iter().map(|r| r.key.as_str()).collect();
        let g = &loaded.plan.graph;
        let mut edges = Vec::new();
        for n in g.node_indices() {
            if !g[n].per_subject {
                continue;
            }
            for t in g.neighbors_directed(n, Outgoing) {
                if g[t].per_subject {
                    continue;
                }
                for s in subjects {
                    let from = key_of(&g[n].id, &s.pseudonym);
                    if created.contains(from.as_str()) {
                        edges.push((from, key_of(&g[t].id, "")));
                    }
                }
            }
        }
        Ok((runs, edges))
    }

    /// Terminates a study: everything not done is cancelled, and everything identifying is
    /// destroyed at once (MK403 p.26, p.34).
    pub async fn terminate(&self, study: &str, who: &Identity) -> Result<()> {
        let row = self.study_row(study).await?;
        // Decided by a person the version in force names.
        let authority = self.authority(study, row.active_version).await?;
        authorise_act(&authority, StudyAct::Terminate, who)?;
        self.require_recent_proof(who, ProvenAct::Terminate)?;
        let user = &who.actor();
        let keep = match row.active_version {
            // Destruction (p.26, p.34) and the external researcher's deletion of their copy
            // (p.35) still happen; nothing else does. Read from the approved plan as stored, so
            // a study whose plan no longer compiles to that shape can still be ended.
            Some(v) => self
                .approved_steps(study, v)
                .await?
                .into_iter()
                .filter(|(_, kind)| {
                    matches!(
                        kind,
                        StepKind::DestroyIdentifying | StepKind::ExternalCopyDeletion
                    )
                })
                .map(|(id, _)| id)
                .collect(),
            None => Vec::new(),
        };
        let now = self.now();
        let audit = [event(
            now,
            user,
            "study.terminated",
            study,
            "p.26",
            serde_json::json!({}),
        )];
        self.store.terminate(study, &keep, now, &audit).await?;
        self.seal().await?;
        Ok(())
    }

    /// Retries the failed runs of an engine step once the input that failed them is fixed (a
    /// supplied file corrected, a registry's answer replaced): an operator's act, audited as
    /// `step.retried` with the operator, the count and the last error's kind — never a cell.
    /// Refused for a step the running version does not have, for a person's task (completing
    /// it is the person's act), and when nothing of the step failed.
    pub async fn retry(&self, study: &str, step: &str, operator: &str) -> Result<u64> {
        if operator.trim().is_empty() {
            return Err(EngineError::Forbidden(said!(
                "a retry is an operator's act: the operator must be named",
                "atkārtošana ir operatora darbība: operators jānorāda"
            )));
        }
        let row = self.study_row(study).await?;
        let Some(version) = row.active_version else {
            return Err(EngineError::Refused(said!(
                "`{study}` is not running",
                "pētījums `{study}` netiek īstenots"
            )));
        };
        let loaded = self.load(study, version).await?;
        let Some(planned) = loaded.plan.step(step) else {
            return Err(EngineError::NotFound(said!(
                "`{study}` version {version} has no step `{step}`",
                "pētījuma `{study}` {version}. versijā nav soļa `{step}`"
            )));
        };
        if planned.human_task && planned.task_body() == TaskBody::None {
            return Err(EngineError::Refused(said!(
                "`{step}` is a person's task, not an engine step: it is completed, not retried",
                "`{step}` ir personas uzdevums, nevis sistēmas solis: to pabeidz, nevis atkārto"
            )));
        }
        // Only the running version's runs: a failed run of a superseded plan stays failed.
        let failed: Vec<RunRow> = self
            .store
            .runs(study)
            .await?
            .into_iter()
            .filter(|r| r.step == step && r.state == RunState::Failed && r.version == version)
            .collect();
        let last_error = failed.iter().rev().find_map(|r| r.last_error.clone());
        let failed = failed.len();
        if failed == 0 {
            return Err(EngineError::Refused(said!(
                "no run of `{step}` in `{study}` has failed; nothing to retry",
                "neviena soļa `{step}` izpilde pētījumā `{study}` nav neizdevusies; nav ko atkārtot"
            )));
        }
        let now = self.now();
        let audit = [event(
            now,
            operator,
            "step.retried",
            &format!("{study}/{step}"),
            "",
            // The error as it was recorded: redacted of every identifier when it was.
            serde_json::json!({"runs": failed, "version": version, "last_error": last_error}),
        )];
        let n = self
            .store
            .retry_failed(study, version, step, now, &audit)
            .await?;
        self.seal().await?;
        Ok(n)
    }

    /// A note on a step with personal data, sealed to the study's note key: it may name a
    /// subject (a name, an e-mail the code mask does not catch), so it goes with the study's
    /// keys (MK403 p.26). Refused while the study has no keys to seal to.
    async fn seal_note(&self, study: &str, note: &str) -> Result<TaskNote> {
        use std::str::FromStr;
        let recipient = self
            .store
            .note_recipient(study)
            .await?
            .and_then(|r| age::x25519::Recipient::from_str(&r).ok())
            .ok_or_else(|| {
                EngineError::Refused(said!(
                    "a note on a step with personal data is kept only sealed under the study's keys (MK403 p.26), and the study has none (its data has not arrived yet, or was destroyed); complete the task without --note",
                    "piezīmi par soli ar personas datiem glabā tikai šifrētu ar pētījuma atslēgām (MK403 26. p.), bet pētījumam to nav (tā dati vēl nav saņemti vai jau dzēsti); pabeidziet uzdevumu bez piezīmes"
                ))
            })?;
        let sealed = age::encrypt(&recipient, note.as_bytes()).map_err(|e| {
            EngineError::Refused(said!(
                "the note could not be sealed: {e}",
                "piezīmi nevarēja nošifrēt: {e}"
            ))
        })?;
        Ok(TaskNote::Sealed(hex::encode(sealed)))
    }

    /// The note recorded with a completed task, for `user`, who must be allowed to do the
    /// task (MK403 p.21, p.25.2): in words, or sealed under the study's keys (only the data
    /// plane opens it, see `studyflow task note`).
    pub async fn task_note(&self, run: i64, who: &Identity) -> Result<(RunRow, Option<TaskNote>)> {
        let r = self.store.run(run).await?.ok_or_else(|| no_task(run))?;
        self.task_for(&r, who).await?;
        if !(r.human && r.state == RunState::Done) {
            return Err(EngineError::Refused(said!(
                "run {run} ({}) is not a completed task",
                "izpilde {run} ({}) nav pabeigts uzdevums",
                r.step
            )));
        }
        let note = r
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
            .and_then(|o| serde_json::from_value(o.get("note")?.clone()).ok());
        Ok((r, note))
    }

    /// A study's keys as the store keeps them, wrapped by the master key (which never enters
    /// the database): `None` once destroyed (MK403 p.26). For an operator holding the master
    /// key, to open a sealed task note.
    pub async fn wrapped_study_keys(&self, study: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.store.study_keys(study).await?)
    }

    /// The version and step of run `r`, if `who` may do it: a person the study does not
    /// involve is told there is no such task (MK403 p.25.1), one it involves in another role is
    /// told why not (MK403 p.21, p.25.2, p.30.2).
    async fn task_for(&self, r: &RunRow, who: &Identity) -> Result<(Arc<Loaded>, Step)> {
        if !self.involved(&r.study, who).await? {
            return Err(no_task(r.id));
        }
        let loaded = self.load(&r.study, r.version).await?;
        let step = loaded
            .plan
            .step(&r.step)
            .ok_or_else(|| {
                EngineError::NotFound(said!(
                    "step `{}` is not in the plan",
                    "soļa `{}` plānā nav",
                    r.step
                ))
            })?
            .clone();
        // Allowed by the version the run belongs to and by the one in force: an amendment that
        // takes a person's access away takes it from the tasks of earlier versions too.
        let acting = acting_step(&loaded.plan, &step);
        authorise(&loaded.spec, acting, who)?;
        let row = self.study_row(&r.study).await?;
        authorise(
            &*self.authority(&r.study, row.active_version).await?,
            acting,
            who,
        )?;
        Ok((loaded, step))
    }

    /// The runs waiting for a file that `who` may supply: a task of theirs completed before its
    /// file came, and an institution's answer to a secure electronic request they sent (MK403
    /// p.12.3, p.14.2); oldest first.
    pub async fn awaiting_files(&self, who: &Identity) -> Result<Vec<RunRow>> {
        let mut out = Vec::new();
        for r in self.store.awaiting_files().await? {
            match self.task_for(&r, who).await {
                Ok(_) => out.push(r),
                // Not theirs: another study's, or another role's.
                Err(EngineError::NotFound(_) | EngineError::Forbidden(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Open task `run`, which `who` may do (MK403 p.21, p.25.2, p.30.2): its run, version and
    /// step. `act`: what `who` is about to do with it beyond completing it — reading what the
    /// engine prepared, supplying a file — which, on a step that handles personal data, asks
    /// for a recent proof of identity (p.25.3).
    pub async fn open_task(
        &self,
        run: i64,
        who: &Identity,
        act: Option<ProvenAct>,
    ) -> Result<(RunRow, Arc<Loaded>, Step)> {
        self.task_open_for(run, who, act, false).await
    }

    /// As [`Engine::open_task`], and also a person's task completed before its file was
    /// supplied, whose import waits for the file: what a person supplies may still come.
    pub async fn task_taking_files(
        &self,
        run: i64,
        who: &Identity,
        act: Option<ProvenAct>,
    ) -> Result<(RunRow, Arc<Loaded>, Step)> {
        self.task_open_for(run, who, act, true).await
    }

    /// A run waiting for something supplied from outside is looked at now (a person supplied
    /// it); `false` when it waits no more.
    pub async fn wake(&self, run: i64) -> Result<bool> {
        Ok(self.store.wake_waiting(run, self.now()).await?)
    }

    /// Wakes the study's runs of `kind` that wait to look again for what a person has now
    /// given (a key for the contact list: its transfer looks at once, MK403 p.32); how many.
    pub async fn wake_kind(&self, study: &str, kind: StepKind) -> Result<usize> {
        let mut woken = 0;
        for r in self.store.runs(study).await? {
            if r.kind == kind.as_str()
                && r.state == RunState::Waiting
                && self.store.wake_waiting(r.id, self.now()).await?
            {
                woken += 1;
            }
        }
        Ok(woken)
    }

    async fn task_open_for(
        &self,
        run: i64,
        who: &Identity,
        act: Option<ProvenAct>,
        or_awaiting_file: bool,
    ) -> Result<(RunRow, Arc<Loaded>, Step)> {
        let r = self.store.run(run).await?.ok_or_else(|| no_task(run))?;
        let (loaded, step) = self.task_for(&r, who).await?;
        let waits_for = |reason: &str| {
            r.state == RunState::Waiting
                && (r.human || (reason == "answer" && step.kind == StepKind::Answer))
                && r.wait_reason.as_deref() == Some(reason)
        };
        if !(waits_for("task") || (or_awaiting_file && waits_for("answer"))) {
            return Err(EngineError::Refused(Said {
                en: format!(
                    "run {run} ({}) is {}, not an open task",
                    r.step,
                    r.state.as_str()
                ),
                lv: format!(
                    "izpilde {run} ({}) ir stāvoklī „{}” un nav atvērts uzdevums",
                    r.step,
                    r.state.lv()
                ),
            }));
        }
        if let Some(act) = act
            && step.handles_personal_data()
        {
            self.require_recent_proof(who, act)?;
        }
        Ok((r, loaded, step))
    }

    /// Completes a human task as `user`, who must be allowed to (MK403 p.21, p.25.2, p.30.2).
    pub async fn complete_task(&self, run: i64, who: &Identity, note: Option<&str>) -> Result<()> {
        let user = who.login();
        let (r, loaded, step) = self.open_task(run, who, None).await?;
        let now = self.now();
        if let Some(nb) = r.not_before
            && nb > now
        {
            return Err(EngineError::Refused(said!(
                "task {run} ({}) opens only on {}",
                "uzdevums {run} ({}) atveras tikai {}",
                r.step,
                riga_date(crate::clock::from_micros(nb))
            )));
        }
        if step.kind == StepKind::Publication {
            self.check_notice_before_publication(&r, &loaded, now)
                .await?;
        }
        // What the engine prepared for the task (the quality report, the request in the
        // outbox) stays with the run beside the person's note.
        let prepared = r
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok());
        let note = match note.map(str::trim).filter(|n| !n.is_empty()) {
            None => serde_json::Value::Null,
            Some(n) => {
                let masked = studyflow_spec::diagnostic::mask_personal_codes(n);
                if step.handles_personal_data() {
                    serde_json::to_value(self.seal_note(&r.study, &masked).await?)
                        .unwrap_or_default()
                } else {
                    serde_json::to_value(TaskNote::Plain(masked.into_owned())).unwrap_or_default()
                }
            }
        };
        let output = serde_json::json!({
            "completed_by": user,
            "note": note,
            "prepared": prepared,
        })
        .to_string();
        let f = Finish {
            run,
            expect: Expect::Task,
            effects: Vec::new(),
            output,
            completed_by: user.to_owned(),
            now,
            new_runs: Vec::new(),
            new_edges: Vec::new(),
            audit: vec![event(
                now,
                &who.actor(),
                "task.completed",
                &studyflow_store::run_object(&r.study, &r.step, &r.subject),
                &step.regulation.join(" "),
                serde_json::json!({"version": r.version}),
            )],
        };
        if !self.store.finish(&f).await? {
            return Err(EngineError::Refused(said!(
                "task {run} was completed or changed meanwhile",
                "uzdevums {run} pa to laiku ir pabeigts vai mainīts"
            )));
        }
        self.seal().await?;
        Ok(())
    }

    /// MK403 p.8: when the study used Prison Administration data, the results are published
    /// only when the notice was given at least 10 working days before.
    async fn check_notice_before_publication(
        &self,
        publication: &RunRow,
        loaded: &Loaded,
        now: i64,
    ) -> Result<()> {
        let Some((_, notice)) = loaded
            .plan
            .steps_of(StepKind::PrisonAdministrationNotice)
            .next()
        else {
            return Ok(());
        };
        let runs = self.store.runs(&publication.study).await?;
        let given = runs
            .iter()
            .filter(|r| r.step == notice.id && r.state == RunState::Done)
            .map(|r| r.updated_at)
            .max();
        let today = riga_date(crate::clock::from_micros(now));
        let Some(given) = given else {
            return Err(EngineError::Refused(said!(
                "the Prison Administration has not been informed of the results yet (MK403 p.8)",
                "Ieslodzījuma vietu pārvalde vēl nav iepazīstināta ar pētījuma rezultātiem (MK403 8. p.)"
            )));
        };
        let given = riga_date(crate::clock::from_micros(given));
        // Working days from the notice's day up to the day before publication: the notice on
        // its due date (the 10th working day before) counts 10, as the plan computes it.
        let between = self
            .calendar
            .working_days_between(given, today)
            .unwrap_or(0);
        if between < 10 {
            return Err(EngineError::Refused(said!(
                "the Prison Administration was informed on {given}, {between} working day(s) before today; MK403 p.8 needs at least 10 before publication",
                "Ieslodzījuma vietu pārvalde ar rezultātiem iepazīstināta {given}, {between} darbdienu(-as) pirms šodienas; MK403 8. p. prasa vismaz 10 darbdienas pirms publicēšanas"
            )));
        }
        Ok(())
    }

    /// Open tasks; those `who` may complete when someone is given.
    pub async fn tasks(&self, who: Option<&Identity>) -> Result<Vec<RunRow>> {
        let all = self.store.open_tasks(self.now()).await?;
        let Some(who) = who else {
            return Ok(all);
        };
        let mut out = Vec::new();
        for r in all {
            let loaded = self.load(&r.study, r.version).await?;
            if let Some(step) = loaded.plan.step(&r.step)
                && authorise(&loaded.spec, step, who).is_ok()
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Flags passed deadlines (once each) and returns the events raised.
    pub async fn flag_overdue(&self) -> Result<Vec<AuditEvent>> {
        let events = self.store.flag_overdue(self.now()).await?;
        if !events.is_empty() {
            self.seal().await?;
        }
        Ok(events)
    }
}

/// What of a plan's JSON must stay as approved: each step's id, kind, actor and data classes,
/// and the edges.
fn plan_shape(plan: &serde_json::Value) -> Option<(Vec<[String; 5]>, String)> {
    let nodes = plan.get("nodes")?.as_array()?;
    let text = |n: &serde_json::Value, k: &str| n.get(k).map(|v| v.to_string()).unwrap_or_default();
    let steps = nodes
        .iter()
        .map(|n| {
            [
                text(n, "id"),
                text(n, "kind"),
                text(n, "actor"),
                text(n, "data_in"),
                text(n, "data_out"),
            ]
        })
        .collect();
    Some((steps, plan.get("edges")?.to_string()))
}

impl Engine {
    /// The recorded outputs of the study's cohort runs without their cohort (the pseudonyms
    /// with their anchor dates, [`subjects_of`]): what the destruction leaves of them (p.26).
    pub(crate) async fn without_cohorts(
        &self,
        study: &str,
        loaded: &Loaded,
    ) -> Result<Vec<(i64, String)>> {
        let cohort_steps: HashSet<String> =
            loaded.cohort_steps().iter().map(|s| s.id.clone()).collect();
        Ok(self
            .store
            .runs(study)
            .await?
            .into_iter()
            .filter(|r| cohort_steps.contains(&r.step))
            .filter_map(|r| {
                let mut out: serde_json::Value = serde_json::from_str(r.output.as_deref()?).ok()?;
                out.as_object_mut()?.remove(SUBJECT_LIST)?;
                Some((r.id, out.to_string()))
            })
            .collect())
    }
}

/// Where a cohort run's recorded output keeps its subjects (engine-internal).
pub(crate) const SUBJECT_LIST: &str = "subject_list";

/// The subjects a cohort run recorded.
pub(crate) fn subjects_of(r: &RunRow) -> Option<Vec<Subject>> {
    let out: serde_json::Value = serde_json::from_str(r.output.as_deref()?).ok()?;
    serde_json::from_value(out.get(SUBJECT_LIST)?.clone()).ok()
}

/// The step whose persons act for a run of `step`: an institution's answer to a secure
/// electronic request is supplied by the persons who sent the request (MK403 p.12.3, p.14.2);
/// every other step is its own.
fn acting_step<'p>(plan: &'p studyflow_plan::Plan, step: &'p Step) -> &'p Step {
    if step.kind != StepKind::Answer {
        return step;
    }
    plan.steps_of(StepKind::Request)
        .map(|(_, s)| s)
        .find(|s| s.about.registry() == step.about.registry())
        .unwrap_or(step)
}

/// No study of that id (or none the person may know of).
pub(crate) fn no_study(study: &str) -> EngineError {
    EngineError::NotFound(said!("no study `{study}`", "pētījuma `{study}` nav"))
}

/// The stored spec of a version that the checker of this build no longer reads.
fn no_longer_parses(study: &str, version: i64) -> EngineError {
    EngineError::Refused(said!(
        "the stored spec of `{study}` version {version} no longer parses",
        "pētījuma `{study}` {version}. versijas saglabāto specifikāciju vairs nevar nolasīt"
    ))
}

/// No task of that number (or none the person may know of).
fn no_task(run: i64) -> EngineError {
    EngineError::NotFound(said!("no task {run}", "uzdevuma {run} nav"))
}
