//! Workers: claim claimable runs with a lease, execute their bodies through the data plane
//! while keeping the whole batch's leases alive, and write the outcomes with the fencing
//! tokens they hold, in one transaction per batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use studyflow_store::{AuditEvent, Claimed, Expect, Finish, TaskMode};

use crate::dataplane::{StepContext, StepError};
use crate::engine::{Engine, Result, event};

/// One worker.
pub struct Worker {
    pub engine: Arc<Engine>,
    /// Who holds the leases: host, process and worker number.
    pub owner: String,
}

/// A worker's name: the host, the process and the number.
pub fn owner_name(n: usize) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!("worker:{host}:{}:{n}", std::process::id())
}

/// A body's error message as it may be recorded: personal codes masked, and any other long
/// number (proceeding, ruling, case numbers) too — an error never carries an identifier.
pub fn redact(message: &str) -> String {
    let masked = studyflow_spec::diagnostic::mask_personal_codes(message);
    let mut out = String::with_capacity(masked.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.chars().filter(char::is_ascii_digit).count() >= 6 {
            out.push_str("[number]");
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for ch in masked.chars() {
        if ch.is_ascii_digit() || (!digits.is_empty() && matches!(ch, '-' | '/')) {
            digits.push(ch);
        } else {
            flush(&mut digits, &mut out);
            out.push(ch);
        }
    }
    flush(&mut digits, &mut out);
    out
}

impl Worker {
    pub fn new(engine: Arc<Engine>, owner: String) -> Worker {
        Worker { engine, owner }
    }

    /// Claims one batch and executes it; returns how many runs it claimed. A run whose body
    /// or bookkeeping fails is recorded as a failed attempt (retried with backoff); the rest of
    /// the batch still commits.
    pub async fn run_once(&self) -> Result<usize> {
        let e = &self.engine;
        let now = e.now();
        let lease = micros_of(e.options.lease);
        let claimed = e
            .store
            .claim(&self.owner, now, now + lease, e.options.batch)
            .await?;
        let n = claimed.len();
        let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
        let mut renewed = Instant::now();
        let mut finishes = Vec::with_capacity(n);
        for c in claimed {
            // The batch commits at the end: keep every lease in it alive, not only the one
            // whose body runs.
            if renewed.elapsed() > e.options.lease / 3 {
                e.store
                    .heartbeat_many(&self.owner, &ids, e.now() + lease)
                    .await?;
                renewed = Instant::now();
            }
            match self.execute(&c).await {
                Ok(Some(f)) => finishes.push(f),
                Ok(None) => {}
                Err(err) => self.record_failure(&c, &err.to_string(), true).await?,
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
                    event(
                        f.now,
                        &self.owner,
                        "step.stale_write_rejected",
                        &object,
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

    /// Runs until `stop` turns true, waiting for work when idle. A failing database (a
    /// restart, a network cut) does not end the worker: it says so on stderr and tries again
    /// with a growing pause.
    pub async fn run(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
        poll: Duration,
    ) -> Result<usize> {
        let mut total = 0;
        let mut pause = poll;
        loop {
            if *stop.borrow() {
                return Ok(total);
            }
            let round = async {
                self.engine.flag_overdue().await?;
                self.run_once().await
            };
            match round.await {
                Ok(n) => {
                    total += n;
                    pause = poll;
                    if n == 0 {
                        tokio::select! {
                            _ = self.engine.store.wait_for_work(poll) => {}
                            _ = stop.changed() => {}
                        }
                    }
                }
                Err(err) => {
                    eprintln!(
                        "studyflow worker {}: {}; trying again in {:?}",
                        self.owner,
                        redact(&err.to_string()),
                        pause
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    /// Records a failed attempt of `c`: retried with exponential backoff while attempts are
    /// left (and the failure may pass), failed for good otherwise.
    async fn record_failure(&self, c: &Claimed, message: &str, retryable: bool) -> Result<()> {
        let e = &self.engine;
        let now = e.now();
        let retry = retryable && c.attempts < c.max_attempts;
        let retry_at = retry.then(|| {
            let factor = 1u32 << (c.attempts.clamp(1, 20) - 1) as u32;
            let delay = e
                .options
                .retry_base
                .saturating_mul(factor)
                .min(e.options.retry_cap);
            now + micros_of(delay)
        });
        let message = redact(message);
        let action = if retry { "step.retry" } else { "step.failed" };
        let object = studyflow_store::run_object(&c.study, &c.step, &c.subject);
        let audit = [event(
            now,
            &self.owner,
            action,
            &object,
            "",
            serde_json::json!({"attempt": c.attempts, "error": message, "retry_at": retry_at}),
        )];
        e.store
            .fail(c.id, c.fence, &message, now, retry_at, &audit)
            .await?;
        Ok(())
    }

    /// Runs one claimed run's body; returns its finish to commit, or `None` when the attempt
    /// failed (recorded here: a retry or a failure).
    async fn execute(&self, c: &Claimed) -> Result<Option<Finish>> {
        let e = &self.engine;
        let loaded = e.load(&c.study, c.version).await?;
        let object = studyflow_store::run_object(&c.study, &c.step, &c.subject);
        let Some(step) = loaded.plan.step(&c.step) else {
            self.record_failure(c, "the step is not in the plan", false)
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
            mode: c.mode,
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
                    // `false`: taken over; the late write is then refused by the fence.
                    let _ = e.store.heartbeat(c.id, c.fence, e.now() + micros_of(e.options.lease)).await?;
                }
            }
        };
        let now = e.now();
        match outcome {
            Ok(out) => {
                let (new_runs, new_edges) = e.expansion(&c.study, step, &out.subjects).await?;
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
                    audit: vec![event(
                        now,
                        &self.owner,
                        if c.mode == TaskMode::PrepareThenTask {
                            "step.prepared"
                        } else {
                            "step.done"
                        },
                        &object,
                        &step.regulation.join(" "),
                        serde_json::json!({"version": c.version, "attempt": c.attempts, "fence": c.fence}),
                    )]
                    .into_iter()
                    .chain(out.audit.into_iter().map(|(action, detail)| {
                        event(now, &self.owner, action, &object, &step.regulation.join(" "), detail)
                    }))
                    .collect(),
                }))
            }
            Err(StepError {
                message,
                wait: Some(after),
                ..
            }) => {
                let until = now + micros_of(after);
                let object = studyflow_store::run_object(&c.study, &c.step, &c.subject);
                let why = redact(&message);
                let audit = [event(
                    now,
                    &self.owner,
                    "step.waiting",
                    &object,
                    "",
                    serde_json::json!({"for": why, "until": until}),
                )];
                e.store
                    .wait_external(c.id, c.fence, until, now, &why, &audit)
                    .await?;
                Ok(None)
            }
            Err(err) => {
                self.record_failure(c, &err.message, err.retryable).await?;
                Ok(None)
            }
        }
    }
}

pub(crate) fn micros_of(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_lose_their_identifiers() {
        let m = super::redact(
            "no answer for 010180-12345 in proceeding 11826001234, case R-2026-00012/1",
        );
        assert!(!m.contains("12345") && !m.contains("11826001234"), "{m}");
        assert!(m.contains("no answer for"));
        assert_eq!(super::redact("attempt 3 of 5"), "attempt 3 of 5");
    }
}
