//! What the engine tells people about a study, typed: its state, each step's runs, the
//! deadlines missed, and the releases written. The CLI (and later the server) render it; none
//! of them reads the store or decodes a run's recorded output for itself.
//!
//! Nothing here names a subject: per-subject steps are counted, never listed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use studyflow_store::{RunRow, RunState, StudyState};

use crate::engine::{Engine, Result};

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
    pub fn of(r: &RunRow) -> Activity {
        match (r.state, r.wait_reason.as_deref()) {
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
}

impl Engine {
    /// The study's status, or `None` when there is no such study.
    pub async fn status(&self, study: &str) -> Result<Option<StudyStatus>> {
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
        let runs = self.store.runs(study).await?;
        Ok(Some(StudyStatus {
            study: row.id,
            state: row.state,
            since: row.updated_at,
            latest,
            running_version: row.active_version,
            now,
            steps: steps(&runs, now),
            overdue: overdue(&runs, now),
            releases: releases(&runs),
        }))
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
        Ok(releases(&self.store.runs(study).await?))
    }
}

fn steps(runs: &[RunRow], now: i64) -> Vec<StepStatus> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_step: BTreeMap<&str, Vec<&RunRow>> = BTreeMap::new();
    for r in runs {
        if !by_step.contains_key(r.step.as_str()) {
            order.push(&r.step);
        }
        by_step.entry(&r.step).or_default().push(r);
    }
    order
        .into_iter()
        .map(|step| {
            let rs = &by_step[step];
            let mut activities = BTreeMap::new();
            for r in rs {
                *activities.entry(Activity::of(r)).or_insert(0) += 1;
            }
            let mut versions: Vec<i64> = rs.iter().map(|r| r.version).collect();
            versions.sort_unstable();
            versions.dedup();
            let per_subject = rs.iter().any(|r| !r.subject.is_empty());
            let reason = match rs.as_slice() {
                [r] if !per_subject
                    && (matches!(r.state, RunState::Failed | RunState::Ready)
                        || (r.state == RunState::Waiting
                            && r.wait_reason.as_deref() != Some("task"))) =>
                {
                    r.last_error.clone()
                }
                _ => None,
            };
            StepStatus {
                step: step.to_owned(),
                per_subject,
                versions,
                runs: rs.len(),
                activities,
                next: rs
                    .iter()
                    .filter(|r| r.state == RunState::Waiting)
                    .filter_map(|r| r.not_before)
                    .min(),
                due: rs.iter().filter_map(|r| r.due_at).max(),
                late: rs
                    .iter()
                    .any(|r| r.state.is_active() && r.due_at.is_some_and(|d| d < now)),
                reason,
            }
        })
        .collect()
}

/// Runs that missed their deadline: finished after it, or still open past it.
fn overdue(runs: &[RunRow], now: i64) -> Vec<Overdue> {
    let mut out: BTreeMap<&str, Overdue> = BTreeMap::new();
    for r in runs {
        let Some(due) = r.due_at else { continue };
        let (late, open) = match r.state {
            RunState::Done => (r.updated_at > due, false),
            s if s.is_active() => (now > due, true),
            _ => (false, false),
        };
        if !late {
            continue;
        }
        let o = out.entry(&r.step).or_insert_with(|| Overdue {
            step: r.step.clone(),
            runs: 0,
            open: 0,
            due,
            finished: None,
            rule: r.deadline_rule.clone().unwrap_or_default(),
        });
        o.runs += 1;
        o.open += usize::from(open);
        o.due = o.due.min(due);
        if !open {
            o.finished = Some(o.finished.map_or(r.updated_at, |f| f.max(r.updated_at)));
        }
    }
    out.into_values().collect()
}

/// The releases the done release and transfer runs recorded.
fn releases(runs: &[RunRow]) -> Vec<Release> {
    let mut out: Vec<Release> = runs
        .iter()
        .filter(|r| r.state == RunState::Done && matches!(r.kind.as_str(), "release" | "transfer"))
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
