//! The data plane that moves real data: the Service IS sample, the registries' answers, linkage,
//! deletion of identifiers, anonymisation, the follow-up waves and releases, each step reading
//! and writing datasets that the store keeps between steps ([`datasets`]).
//!
//! One thin adapter per step kind, a module per stage of the study, each calling the pure
//! stage functions of this crate ([`crate::linkage`], [`crate::anonymise`], [`crate::followup`],
//! [`crate::release`], …): [`acquire`] (the Service IS extraction, p.10, p.22.1),
//! [`registries`] (the requests and answers, p.11–16), [`link`] (linkage and the deletion of
//! identifiers, p.17, p.22.3–22.4), [`quality`] (p.18, p.22.2), [`cohort`] (anonymisation and
//! the cohort of the waves, p.7, p.19), [`follow_up`] (the waves, p.19–20), [`release`] (the
//! study workspace and the external researcher, p.22.5, p.24, p.30), [`contact`] (p.31–32) and
//! [`decisions`] (the steps that move no data). The dispatch below names every step kind: a new
//! kind does not compile until it is given its adapter.
//!
//! Datasets holding identifying or pseudonymised data are sealed; the destruction step
//! (MK403 p.26) deletes them with the study's keys. Nothing identifying is ever written in
//! plaintext: not to the database, not to a log, not to a step's recorded output.

mod acquire;
mod cohort;
mod contact;
mod datasets;
mod decisions;
mod follow_up;
mod link;
mod names;
mod quality;
mod registries;
mod release;

use std::path::PathBuf;
use std::sync::Arc;

use studyflow_plan::{Registry, StepKind};
use studyflow_runtime::clock::Clock;
use studyflow_runtime::dataplane::{BoxFuture, DataPlane, StepContext, StepError, StepOutput};
use studyflow_store::Store;

use crate::connector::Connector;
use crate::linkage::Subject;
use crate::vault::MasterKey;

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
    /// The follow-up batch window in days (p.19): the subjects of a wave whose due days fall in
    /// the same window of this many days are asked about in one request, on the window's last
    /// due day. 1 (the default): one request per due day.
    pub batch_window: u16,
    /// One analysis dataset built at a time in this process: a release holds the whole
    /// anonymised study (the baseline and every wave joined so far), and the releases after
    /// several waves falling due together would otherwise each hold one side by side.
    release_gate: tokio::sync::Mutex<()>,
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
            batch_window: 1,
            release_gate: tokio::sync::Mutex::new(()),
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

/// How long a step waiting for a file or an answer sleeps before it looks again.
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_secs(86_400);

pub(crate) use registries::sources_of;

/// The name of a study's exchange with a registry, as the outbox and the inbox know it.
pub fn exchange_id(study: &str, version: i64, registry: Registry) -> String {
    let name = match registry {
        Registry::InformationCentre => "information-centre-request",
        Registry::PrisonAdministration => "prison-administration-request",
    };
    format!("{study}-v{version}-{name}")
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

fn fail(message: impl Into<String>, retryable: bool) -> StepError {
    StepError::new(message, retryable)
}

fn store_err(e: studyflow_store::StoreError) -> StepError {
    fail(format!("database: {e}"), true)
}

/// The catalogue fields a step reads or asks for.
fn step_fields<'a>(ctx: &'a StepContext<'_>) -> Vec<&'a str> {
    ctx.step.fields.iter().map(String::as_str).collect()
}

/// The spec's anonymisation policy (p.7; the schema requires the section).
fn policy_of(ctx: &StepContext<'_>) -> Result<crate::anonymise::Policy, StepError> {
    ctx.spec
        .anonymisation
        .as_ref()
        .map(crate::anonymise::Policy::from_spec)
        .ok_or_else(|| fail("no anonymisation policy", false))
}

/// A registry query that failed: retried when the connector says it may pass later.
fn registry_failure(e: crate::connector::ConnectorError) -> StepError {
    let retryable = e.retryable();
    fail(e.to_string(), retryable)
}

/// A step's output with a record and nothing else.
fn done(record: serde_json::Value) -> StepOutput {
    StepOutput {
        record,
        ..StepOutput::default()
    }
}

impl RegistryDataPlane {
    /// The adapter of each step kind.
    async fn run(&self, ctx: StepContext<'_>) -> Result<StepOutput, StepError> {
        let ctx = &ctx;
        match ctx.step.kind {
            StepKind::AcquireServiceIs => self.acquire(ctx).await,
            StepKind::Request => self.request(ctx).await,
            StepKind::Answer => self.answer(ctx).await,
            StepKind::MergeLink => self.merge_link(ctx).await,
            StepKind::DeleteIdentifiers => self.delete_identifiers(ctx).await,
            StepKind::QualityCheck => self.quality_check(ctx).await,
            StepKind::Anonymise => self.anonymise(ctx).await,
            StepKind::FollowUpRequest => self.follow_up_request(ctx).await,
            StepKind::FollowUpAnonymise => self.follow_up_anonymise(ctx).await,
            StepKind::FollowUpJoin => self.follow_up_join(ctx).await,
            StepKind::Transfer | StepKind::Release => self.release(ctx).await,
            StepKind::ConsentCollection => self.consent_collection(ctx).await,
            StepKind::ContactTransfer => self.contact_transfer(ctx).await,
            StepKind::PrisonAdministrationNotice => self.notice(ctx).await,
            StepKind::DestroyIdentifying => self.destroy_identifying(ctx).await,
            StepKind::AnonymisedRetention => self.anonymised_retention(ctx).await,
            // Human decisions and acts the tasks record, the follow-up answer the request
            // step received, and the deletion the external researcher confirms: no data moves.
            StepKind::Approval
            | StepKind::ContractGate
            | StepKind::OtherSystem
            | StepKind::IdentifiableProcessing
            | StepKind::Survey
            | StepKind::Analysis
            | StepKind::Report
            | StepKind::Presentation
            | StepKind::Publication
            | StepKind::FollowUpAnswer
            | StepKind::ExternalCopyDeletion => {
                Ok(done(serde_json::json!({"kind": ctx.step.kind})))
            }
        }
    }

    /// The wave a follow-up step is about (typed in the plan).
    fn wave_of(ctx: &StepContext<'_>) -> Result<studyflow_plan::WaveRef, StepError> {
        ctx.step
            .about
            .wave()
            .ok_or_else(|| fail("a follow-up step that names no wave", false))
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

    /// A file a person supplies through the inbox (the manual extraction, p.22.1; the consented
    /// contacts, p.31–32), imported once. The step waits while the file is not there, or while
    /// `parse` refuses it whole (nothing of it is kept; `correct` says what to put there); the
    /// data is saved in its dataset, then the file is overwritten and removed. `None`: imported
    /// before and the commit lost — the file is removed if it is still there.
    async fn import_supplied<T: serde::Serialize, E: std::fmt::Display>(
        &self,
        data: &datasets::Datasets<'_>,
        dataset: &datasets::Dataset<T>,
        file: &std::path::Path,
        correct: &str,
        parse: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Option<T>, StepError> {
        let shred = |f: &std::path::Path| {
            crate::files::shred(f).map_err(|e| fail(format!("{}: {e}", f.display()), true))
        };
        if data.exists(dataset).await? {
            if file.exists() {
                shred(file)?;
            }
            return Ok(None);
        }
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StepError::waiting(
                    format!("{} is not there yet", file.display()),
                    LOOK_AGAIN,
                ));
            }
            Err(e) => return Err(fail(format!("{}: {e}", file.display()), true)),
        };
        let parsed = parse(&bytes).map_err(|e| {
            StepError::waiting(format!("{}: {e}; {correct}", file.display()), LOOK_AGAIN)
        })?;
        data.save(dataset, &parsed).await?;
        shred(file)?;
        Ok(Some(parsed))
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
}

impl DataPlane for RegistryDataPlane {
    fn execute<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(self.run(ctx))
    }
}
