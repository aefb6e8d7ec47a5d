//! Workers: claim claimable runs with a lease, execute their bodies through the data plane
//! while heartbeating, and write the outcome with the fencing token they hold.

use std::sync::Arc;
use std::time::Duration;

use studyflow_store::{AuditEvent, Claimed, Expect, Finish};

use crate::dataplane::StepContext;
use crate::engine::{Engine, Result};

/// One worker.
pub struct Worker {
    pub engine: Arc<Engine>,
    /// Who holds the leases: host, process and worker number.
    pub owner: String,
}

fn ev(
    at: i64,
    actor: &str,
    action: &str,
    object: String,
    point: &str,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        object,
        point: point.to_owned(),
        detail: detail.to_string(),
    }
}

/// A worker's name: the host, the process and the number.
pub fn owner_name(n: usize) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!("worker:{host}:{}:{n}", std::process::id())
}

impl Worker {
    pub fn new(engine: Arc<Engine>, owner: String) -> Worker {
        Worker { engine, owner }
    }

    /// Claims one batch and executes it; returns how many runs it claimed.
    pub async fn run_once(&self) -> Result<usize> {
        let e = &self.engine;
        let now = e.now();
        let lease = micros_of(e.options.lease);
        let claimed = e
            .store
            .claim(&self.owner, now, now + lease, e.options.batch)
            .await?;
        let n = claimed.len();
        // Bodies one after another; their outcomes commit together (one transaction for the
        // batch). A failure is recorded on its own.
        let mut finishes = Vec::with_capacity(n);
        for c in claimed {
            if let Some(f) = self.execute(c).await? {
                finishes.push(f);
            }
        }
        if !finishes.is_empty() {
            let done = e.store.finish_many(&finishes).await?;
            let stale: Vec<AuditEvent> = finishes
                .iter()
                .zip(done)
                .filter(|(_, ok)| !ok)
                .map(|(f, _)| {
                    let object = f
                        .audit
                        .first()
                        .map(|a| a.object.clone())
                        .unwrap_or_default();
                    let fence = match f.expect {
                        Expect::Running { fence } => fence,
                        Expect::Task => 0,
                    };
                    ev(
                        f.now,
                        &self.owner,
                        "step.stale_write_rejected",
                        object,
                        "",
                        serde_json::json!({"fence": fence}),
                    )
                })
                .collect();
            if !stale.is_empty() {
                e.store.append_audit(&stale).await?;
            }
        }
        e.store.seal_audit().await?;
        Ok(n)
    }

    /// Runs batches until nothing is claimable at the clock's current time; returns the runs
    /// executed.
    pub async fn run_until_idle(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            self.engine.flag_overdue().await?;
            let n = self.run_once().await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    /// Runs until `stop` turns true, polling every `poll` when idle.
    pub async fn run(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
        poll: Duration,
    ) -> Result<usize> {
        let mut total = 0;
        loop {
            if *stop.borrow() {
                return Ok(total);
            }
            self.engine.flag_overdue().await?;
            let n = self.run_once().await?;
            total += n;
            if n == 0 {
                tokio::select! {
                    _ = self.engine.store.wait_for_work(poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Runs one claimed run's body; returns its finish to commit, or `None` when the attempt
    /// failed (recorded here: a retry or a failure).
    async fn execute(&self, c: Claimed) -> Result<Option<Finish>> {
        let e = &self.engine;
        let loaded = e.load(&c.study, c.version).await?;
        let object = studyflow_store::run_object(&c.study, &c.step, &c.subject);
        let Some(step) = loaded.plan.step(&c.step) else {
            let now = e.now();
            let audit = [ev(
                now,
                &self.owner,
                "step.failed",
                object,
                "",
                serde_json::json!({"error": "the step is not in the plan"}),
            )];
            e.store
                .fail(
                    c.id,
                    c.fence,
                    "the step is not in the plan",
                    now,
                    None,
                    &audit,
                )
                .await?;
            return Ok(None);
        };
        let ctx = StepContext {
            study: &c.study,
            version: c.version,
            spec: &loaded.spec,
            step,
            subject: &c.subject,
            key: &c.key,
            attempt: c.attempts,
        };
        studyflow_store::failpoint::hit("step").await;
        // Heartbeat while the body runs, so a long body keeps its lease.
        let body = e.data_plane.execute(ctx);
        tokio::pin!(body);
        let beat = e.options.lease / 3;
        let outcome = loop {
            tokio::select! {
                out = &mut body => break out,
                _ = tokio::time::sleep(beat) => {
                    let now = e.now();
                    if !e.store.heartbeat(c.id, c.fence, now + micros_of(e.options.lease)).await? {
                        // Taken over: the late write below will be refused by the fence.
                    }
                }
            }
        };
        let now = e.now();
        match outcome {
            Ok(out) => {
                let (new_runs, new_edges) = e
                    .expansion(&c.study, c.version, &loaded, step, &out.subjects)
                    .await?;
                let mut record = out.record;
                if !out.subjects.is_empty() {
                    record["subject_list"] =
                        serde_json::to_value(&out.subjects).unwrap_or_default();
                }
                Ok(Some(Finish {
                    run: c.id,
                    expect: Expect::Running { fence: c.fence },
                    output: record.to_string(),
                    completed_by: self.owner.clone(),
                    now,
                    new_runs,
                    new_edges,
                    audit: vec![ev(
                        now,
                        &self.owner,
                        "step.done",
                        object,
                        &step.regulation.join(" "),
                        serde_json::json!({"version": c.version, "attempt": c.attempts, "fence": c.fence}),
                    )],
                }))
            }
            Err(err) => {
                let retry = err.retryable && c.attempts < c.max_attempts;
                let retry_at = retry.then(|| {
                    let factor = 1u32 << (c.attempts.clamp(1, 20) - 1) as u32;
                    let delay = e
                        .options
                        .retry_base
                        .saturating_mul(factor)
                        .min(e.options.retry_cap);
                    now + micros_of(delay)
                });
                let message =
                    studyflow_spec::diagnostic::mask_personal_codes(&err.message).into_owned();
                let action = if retry { "step.retry" } else { "step.failed" };
                let audit = [ev(
                    now,
                    &self.owner,
                    action,
                    object,
                    "",
                    serde_json::json!({"attempt": c.attempts, "error": message, "retry_at": retry_at}),
                )];
                e.store
                    .fail(c.id, c.fence, &message, now, retry_at, &audit)
                    .await?;
                Ok(None)
            }
        }
    }
}

pub(crate) fn micros_of(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}
