//! The boundary to the data plane: what a step body is given and returns.
//!
//! The engine owns the control flow (claims, leases, retries, dependencies, timers, tasks,
//! audit); the data plane moves data (acquisition, linkage, anonymisation, releases). Issue #5
//! implements the real one. Until then [`PlaceholderDataPlane`] is the honest simplest body:
//! it moves no data, records what each step would read and write, and — for the step that
//! establishes the cohort — makes up pseudonymous subjects (no identifiers, only study
//! pseudonyms and anchor dates inside the sample period) so the per-subject follow-up waves
//! can be planned and run.

use std::future::Future;
use std::pin::Pin;

use jiff::civil::Date;
use sha2::{Digest, Sha256};
use studyflow_plan::{Step, StepKind};
use studyflow_spec::Spec;

/// What a step body gets.
pub struct StepContext<'a> {
    pub study: &'a str,
    pub version: i64,
    pub spec: &'a Spec,
    pub step: &'a Step,
    /// The subject's run pseudonym (never its released study ID), or empty for a study-level
    /// step.
    pub subject: &'a str,
    /// The run's idempotency key: a redelivered or retried run has the same key, so a body
    /// that has effects outside the database deduplicates on it.
    pub key: &'a str,
    pub attempt: i64,
    /// For a human task with a body: `PrepareThenTask` — the body prepares what the person
    /// will see; `TaskThenApply` — the person has completed the task and the body imports
    /// what they supplied. `Engine` for an engine step.
    pub mode: studyflow_store::TaskMode,
}

/// A unit the per-subject steps run for, by pseudonym, with the dates of its anchor event
/// (MK403 p.19): one subject, or — when `wave` is set — a batch of subjects whose wave falls
/// due the same day, who share the anchor date of that wave's edge, and for which only that
/// wave's steps run (one request per registry and due day, not one per subject).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    pub pseudonym: String,
    pub start: Date,
    pub end: Option<Date>,
    /// The spec's name of the one wave this unit runs (`1y_after_start`); none: every wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<String>,
}

/// What a step body returns.
#[derive(Debug, Clone, Default)]
pub struct StepOutput {
    /// Recorded as the run's output (nothing identifying).
    pub record: serde_json::Value,
    /// Set by the step that establishes the cohort: the per-subject runs are created for these.
    pub subjects: Vec<Subject>,
    /// Audit events of what the body did beyond finishing (a release written, contact
    /// details transferred): action and detail, recorded with the run's finish, in the same
    /// transaction. Counts and hashes only, never a value.
    pub audit: Vec<(&'static str, serde_json::Value)>,
}

/// A failed attempt. `retryable` failures are retried with backoff up to the maximum.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    pub retryable: bool,
    /// Not a failure: the step waits for an external answer (the secure electronic exchange,
    /// MK403 p.12.3, p.14.2) and is looked at again after this long, without spending an
    /// attempt.
    pub wait: Option<std::time::Duration>,
}

impl StepError {
    pub fn new(message: impl Into<String>, retryable: bool) -> StepError {
        StepError {
            message: message.into(),
            retryable,
            wait: None,
        }
    }

    /// The step waits for an external answer; look again after `after`.
    pub fn waiting(message: impl Into<String>, after: std::time::Duration) -> StepError {
        StepError {
            message: message.into(),
            retryable: true,
            wait: Some(after),
        }
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs a step body's blocking work — opening and sealing a dataset, linkage, anonymisation,
/// writing files — without taking a runtime thread from the other tasks. On the multi-threaded
/// runtime the worker runs on, [`tokio::task::block_in_place`] first hands the tasks queued on
/// this thread (the lease heartbeat among them) to another one, so no body outlives its lease
/// unnoticed however long it computes; unlike `spawn_blocking` the work may borrow the body's
/// data. On a current-thread runtime (where nothing else could run anyway) it runs in place.
pub fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Executes step bodies.
pub trait DataPlane: Send + Sync {
    fn execute<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, Result<StepOutput, StepError>>;
}

/// The placeholder body (see the module docs): records, moves nothing.
#[derive(Debug, Clone)]
pub struct PlaceholderDataPlane {
    /// How many pseudonymous subjects the cohort step makes up.
    pub cohort_size: usize,
}

impl PlaceholderDataPlane {
    /// The made-up cohort of a study: deterministic, pseudonyms only, starts spread over the
    /// sample period, ends half a year to two years after.
    pub fn cohort(&self, study: &str, spec: &Spec) -> Vec<Subject> {
        let period = spec
            .methodology
            .as_ref()
            .and_then(|m| m.sample.as_ref())
            .and_then(|s| s.period);
        let (from, to) = match period {
            Some(p) => (p.from.0, p.to.0),
            None => return Vec::new(),
        };
        let span = (to - from).get_days().max(1) as u64;
        (0..self.cohort_size)
            .map(|i| {
                let digest = Sha256::digest(format!("{study}/{i}").as_bytes());
                let n = u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]));
                let start = from
                    .checked_add(jiff::Span::new().days((n % (span + 1)) as i64))
                    .unwrap_or(from);
                let end = start
                    .checked_add(jiff::Span::new().days(180 + ((n >> 20) % 540) as i64))
                    .ok();
                Subject {
                    pseudonym: format!("S-{}", hex::encode(&digest[..6])),
                    start,
                    end,
                    wave: None,
                }
            })
            .collect()
    }
}

impl DataPlane for PlaceholderDataPlane {
    fn execute<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let subjects = if ctx.step.kind == StepKind::Anonymise {
                self.cohort(ctx.study, ctx.spec)
            } else {
                Vec::new()
            };
            let mut record = serde_json::json!({
                "placeholder": "no data moved (the data plane arrives with issue #5)",
                "kind": ctx.step.kind,
                "reads": ctx.step.data_in,
                "writes": ctx.step.data_out,
                "fields": ctx.step.fields,
            });
            if !subjects.is_empty() {
                record["subjects"] = subjects.len().into();
            }
            Ok(StepOutput {
                record,
                subjects,
                audit: Vec::new(),
            })
        })
    }
}
