//! Workers: claim claimable runs with a lease, execute their bodies through the data plane,
//! and write the outcomes with the fencing tokens they hold, in one transaction per batch.
//!
//! Per batch, three kinds of task work together:
//!
//! - the worker's own task claims the batch, awaits each body in turn and commits the
//!   outcomes;
//! - a heartbeat task renews the leases of every run of the batch still held, every lease/3,
//!   for as long as the batch is executed, whatever the bodies do. A renewal that finds a
//!   run's fence stale (its lease expired and another worker took it over) marks the run lost:
//!   the worker stops waiting for that body, writes nothing for it and audits the refusal
//!   (`step.stale_write_rejected`), as the store's fence does for a write that comes too late;
//! - each body runs in a task of its own (`tokio::spawn`), so a body that holds a runtime
//!   thread does not hold the heartbeat with it.
//!
//! **Bodies put blocking work in `tokio::task::spawn_blocking`** (file IO, fsync, age
//! encryption, linkage over a large table): a body that blocks a runtime thread starves the
//! other tasks queued on that thread, and on a runtime with one thread the heartbeat too.
//! Blocking work cannot be cancelled: when a lease is lost the worker abandons the body's
//! result, but what runs inside `spawn_blocking` goes on to its end — which is one reason why a
//! body's effects outside the database deduplicate on the run key.
//!
//! Retries go by the runtime's one [`Policy`]: a failed step after the engine's
//! `retry_base`, doubled per attempt up to `retry_cap`, with full jitter; the pause after a
//! failing database round, from the poll interval up to a minute, with decorrelated jitter.
//! Logs (`tracing`) say what the worker does — start, claims, retries, waits, failures, lost
//! leases — by run id, study, step and kind, never with a subject's pseudonym or data; error
//! messages go through [`redact`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use studyflow_store::{AuditEvent, Claimed, Expect, Finish, TaskMode};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::dataplane::{StepContext, StepError, StepOutput};
use crate::engine::{Engine, Loaded, Result, event};
use crate::error::EngineError;
use crate::retry::{Jitter, Policy};
use studyflow_plan::StepKind;

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

/// What became of one claimed run.
enum Outcome {
    /// The body succeeded: its finish is committed with the batch.
    Finish(Box<Finish>),
    /// A failure, retry or wait, already written.
    Recorded,
    /// Its lease was lost while the body ran: nothing is written.
    Lost,
}

/// The leases of a claimed batch, shared by the worker and its heartbeat task.
struct Leases {
    /// Runs still held, to be renewed: id → (fence, step kind).
    held: Mutex<HashMap<i64, (i64, String)>>,
    /// Runs found taken over.
    lost: Mutex<HashSet<i64>>,
    /// Bumped whenever a run is found lost.
    changed: watch::Sender<u64>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Leases {
    fn new(claimed: &[Claimed]) -> Arc<Leases> {
        Arc::new(Leases {
            held: Mutex::new(
                claimed
                    .iter()
                    .map(|c| (c.id, (c.fence, c.kind.clone())))
                    .collect(),
            ),
            lost: Mutex::new(HashSet::new()),
            changed: watch::Sender::new(0),
        })
    }

    fn held(&self) -> Vec<(i64, i64, String)> {
        locked(&self.held)
            .iter()
            .map(|(id, (fence, kind))| (*id, *fence, kind.clone()))
            .collect()
    }

    /// The worker writes the run's outcome itself now (a failure, a wait): no more renewals,
    /// and a renewal that finds it no longer running is not a loss.
    fn release(&self, run: i64) {
        locked(&self.held).remove(&run);
    }

    /// A renewal found the run's fence stale. `true` when the run was still held (not
    /// released by the worker in the meantime), i.e. it was really taken over.
    fn mark_lost(&self, run: i64) -> bool {
        if locked(&self.held).remove(&run).is_none() {
            return false;
        }
        locked(&self.lost).insert(run);
        self.changed.send_modify(|n| *n += 1);
        true
    }

    fn is_lost(&self, run: i64) -> bool {
        locked(&self.lost).contains(&run)
    }

    /// Returns once `run` is found lost; never otherwise.
    async fn lost(&self, run: i64) {
        // Subscribed before the check, so a loss marked in between is not missed.
        let mut rx = self.changed.subscribe();
        loop {
            if self.is_lost(run) {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Renews the leases of a batch every lease/3 until `stop` says so (or its sender is dropped,
/// as when the worker's future is dropped).
async fn heartbeat(
    engine: Arc<Engine>,
    owner: String,
    leases: Arc<Leases>,
    mut stop: watch::Receiver<bool>,
) {
    let every = (engine.options.lease / 3).max(Duration::from_millis(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        renew(&engine, &owner, &leases).await;
    }
}

/// One renewal of every held lease: one statement for the batch; when it renewed fewer than
/// held, each run by its fence, to find the ones taken over.
async fn renew(engine: &Engine, owner: &str, leases: &Leases) {
    let held = leases.held();
    if held.is_empty() {
        return;
    }
    let until = engine.now() + micros_of(engine.options.lease);
    let ids: Vec<i64> = held.iter().map(|(id, _, _)| *id).collect();
    match engine.store.heartbeat_many(owner, &ids, until).await {
        Ok(renewed) if renewed == ids.len() as u64 => return,
        Ok(_) => {}
        Err(err) => {
            tracing::warn!(
                owner,
                error = %redact(&err.to_string()),
                "lease renewal failed; trying again at the next beat"
            );
            return;
        }
    }
    for (run, fence, kind) in held {
        match engine.store.heartbeat(run, fence, until).await {
            Ok(true) => {}
            Ok(false) => {
                if leases.mark_lost(run) {
                    tracing::warn!(
                        owner,
                        run,
                        kind = %kind,
                        fence,
                        "lease lost: the run was taken over; its outcome will not be written"
                    );
                }
            }
            Err(err) => tracing::warn!(
                owner,
                run,
                error = %redact(&err.to_string()),
                "lease renewal failed; trying again at the next beat"
            ),
        }
    }
}

/// A spawned task that is aborted when its handle is dropped (the worker's future dropped
/// mid-batch leaves no body behind).
struct Spawned<T>(JoinHandle<T>);

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A run's body, in a task of its own: it owns what it borrows the step context from.
async fn run_body(
    engine: Arc<Engine>,
    loaded: Arc<Loaded>,
    c: Claimed,
) -> std::result::Result<StepOutput, StepError> {
    let Some(step) = loaded.plan.step(&c.step) else {
        return Err(StepError::new("the step is not in the plan", false));
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
    engine.data_plane.execute(ctx).await
}

impl Worker {
    pub fn new(engine: Arc<Engine>, owner: String) -> Worker {
        Worker { engine, owner }
    }

    /// The policy for retrying a failed step: the engine's `retry_base`, doubled per attempt
    /// up to `retry_cap`, full jitter (a run keeps its attempt count, not its last delay),
    /// `max_attempts` in all.
    pub fn retry_policy(&self) -> Policy {
        let o = &self.engine.options;
        Policy {
            base: o.retry_base,
            factor: 2,
            max_delay: o.retry_cap,
            max_attempts: u32::try_from(o.max_attempts.max(1)).unwrap_or(u32::MAX),
            jitter: Jitter::Full,
        }
    }

    /// Claims one batch and executes it; returns how many runs it claimed. A run whose body
    /// or bookkeeping fails is recorded as a failed attempt (retried with backoff); the rest of
    /// the batch still commits. A run whose lease is lost while the batch runs is not written.
    pub async fn run_once(&self) -> Result<usize> {
        let e = &self.engine;
        let now = e.now();
        let lease = micros_of(e.options.lease);
        let claimed = e
            .store
            .claim(&self.owner, now, now + lease, e.options.batch)
            .await?;
        let n = claimed.len();
        if n > 0 {
            tracing::info!(owner = %self.owner, count = n, "claimed runs");
            let leases = Leases::new(&claimed);
            // Dropping `stop` (this future dropped) ends the heartbeat too.
            let (stop, stopped) = watch::channel(false);
            let beat = tokio::spawn(heartbeat(
                e.clone(),
                self.owner.clone(),
                leases.clone(),
                stopped,
            ));
            let executed = self.execute_batch(&claimed, &leases).await;
            let _ = stop.send(true);
            if let Err(err) = beat.await {
                tracing::warn!(owner = %self.owner, error = %err, "the heartbeat task ended abnormally");
            }
            let (finishes, lost) = executed?;
            self.commit(finishes, &lost, &leases).await?;
        }
        e.store.seal_audit().await?;
        Ok(n)
    }

    /// Executes the claimed runs in turn; returns the finishes to commit and the runs lost.
    async fn execute_batch(
        &self,
        claimed: &[Claimed],
        leases: &Leases,
    ) -> Result<(Vec<Finish>, Vec<Claimed>)> {
        let mut finishes = Vec::with_capacity(claimed.len());
        let mut lost = Vec::new();
        for c in claimed {
            if leases.is_lost(c.id) {
                // Taken over before its body started.
                lost.push(c.clone());
                continue;
            }
            match self.execute(c, leases).await {
                Ok(Outcome::Finish(f)) => finishes.push(*f),
                Ok(Outcome::Recorded) => {}
                Ok(Outcome::Lost) => lost.push(c.clone()),
                Err(err) => {
                    leases.release(c.id);
                    self.record_failure(c, &err.to_string(), true).await?
                }
            }
        }
        Ok((finishes, lost))
    }

    /// Commits a batch's finishes in one transaction, except those of runs lost; audits every
    /// refused write, whether the heartbeat noticed the loss or the store's fence refused it.
    async fn commit(&self, finishes: Vec<Finish>, lost: &[Claimed], leases: &Leases) -> Result<()> {
        let e = &self.engine;
        let now = e.now();
        let mut refused: Vec<AuditEvent> = lost
            .iter()
            .map(|c| {
                let object = studyflow_store::run_object(&c.study, &c.step, &c.subject);
                event(
                    now,
                    &self.owner,
                    "step.stale_write_rejected",
                    &object,
                    "",
                    serde_json::json!({"fence": c.fence, "noticed_by": "heartbeat"}),
                )
            })
            .collect();
        // A loss found by the last renewal, after the body had ended.
        let (late, finishes): (Vec<Finish>, Vec<Finish>) =
            finishes.into_iter().partition(|f| leases.is_lost(f.run));
        refused.extend(late.iter().map(|f| self.refusal(f, "heartbeat")));
        if !finishes.is_empty() {
            let done = e.store.finish_many(&finishes).await?;
            for (f, _) in finishes.iter().zip(done).filter(|(_, ok)| !ok) {
                tracing::warn!(
                    owner = %self.owner,
                    run = f.run,
                    "stale write refused: the run was taken over before its outcome was written"
                );
                refused.push(self.refusal(f, "fence"));
            }
        }
        if !refused.is_empty() {
            e.store.append_audit(&refused).await?;
        }
        Ok(())
    }

    /// The audit event of a finish that was not written.
    fn refusal(&self, f: &Finish, noticed_by: &str) -> AuditEvent {
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
            serde_json::json!({"fence": fence, "noticed_by": noticed_by}),
        )
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
    /// restart, a network cut) does not end the worker: it logs a warning and tries again
    /// after a growing, jittered pause.
    pub async fn run(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
        poll: Duration,
    ) -> Result<usize> {
        tracing::info!(owner = %self.owner, poll_ms = poll.as_millis() as u64, "worker started");
        let mut total = 0;
        let mut outage = Policy {
            base: poll,
            factor: 3,
            max_delay: Duration::from_secs(60).max(poll),
            max_attempts: u32::MAX,
            jitter: Jitter::Decorrelated,
        }
        .backoff();
        loop {
            if *stop.borrow() {
                tracing::info!(owner = %self.owner, runs = total, "worker stopped");
                return Ok(total);
            }
            let round = async {
                self.engine.flag_overdue().await?;
                self.run_once().await
            };
            match round.await {
                Ok(n) => {
                    total += n;
                    outage.reset();
                    if n == 0 {
                        tracing::debug!(owner = %self.owner, "idle; waiting for work");
                        tokio::select! {
                            _ = self.engine.store.wait_for_work(poll) => {}
                            _ = stop.changed() => {}
                        }
                    }
                }
                Err(err) => {
                    let pause = outage.next_delay().unwrap_or(poll);
                    tracing::warn!(
                        owner = %self.owner,
                        error = %redact(&err.to_string()),
                        pause_ms = pause.as_millis() as u64,
                        "worker round failed; trying again"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
    }

    /// Records a failed attempt of `c`: retried after the retry policy's delay while attempts
    /// are left (and the failure may pass), failed for good otherwise.
    async fn record_failure(&self, c: &Claimed, message: &str, retryable: bool) -> Result<()> {
        let e = &self.engine;
        let now = e.now();
        let policy = self.retry_policy();
        let attempt = u32::try_from(c.attempts.max(1)).unwrap_or(u32::MAX);
        let retry = retryable && c.attempts < c.max_attempts;
        let delay = retry.then(|| policy.delay(attempt));
        let retry_at = delay.map(|d| now + micros_of(d));
        let message = redact(message);
        if let Some(delay) = delay {
            tracing::info!(
                owner = %self.owner,
                run = c.id,
                study = %c.study,
                step = %c.step,
                kind = %c.kind,
                attempt = c.attempts,
                delay_ms = delay.as_millis() as u64,
                error = %message,
                "step failed; retrying"
            );
        } else {
            tracing::warn!(
                owner = %self.owner,
                run = c.id,
                study = %c.study,
                step = %c.step,
                kind = %c.kind,
                attempt = c.attempts,
                retryable,
                error = %message,
                "step failed for good"
            );
        }
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

    /// Runs one claimed run's body in a task of its own; returns its finish to commit,
    /// `Recorded` when the attempt failed or waits (written here), or `Lost` when its lease
    /// was lost meanwhile (nothing written).
    async fn execute(&self, c: &Claimed, leases: &Leases) -> Result<Outcome> {
        let e = &self.engine;
        let loaded = match e.load(&c.study, c.version).await {
            Ok(l) => l,
            // The plan no longer compiles to its approved shape: everything waits for an
            // amendment, except the destruction of identifying data (MK403 p.26), which the
            // approved plan as stored says this step is.
            Err(EngineError::Refused(why)) => {
                let destroys = e
                    .approved_steps(&c.study, c.version)
                    .await?
                    .iter()
                    .any(|(id, kind)| *id == c.step && *kind == StepKind::DestroyIdentifying);
                if !destroys {
                    return Err(EngineError::Refused(why));
                }
                e.load_for_destruction(&c.study, c.version).await?
            }
            Err(err) => return Err(err),
        };
        let object = studyflow_store::run_object(&c.study, &c.step, &c.subject);
        let Some(step) = loaded.plan.step(&c.step) else {
            leases.release(c.id);
            self.record_failure(c, "the step is not in the plan", false)
                .await?;
            return Ok(Outcome::Recorded);
        };
        studyflow_store::failpoint::hit("step").await;
        let mut body = Spawned(tokio::spawn(run_body(e.clone(), loaded.clone(), c.clone())));
        let joined = tokio::select! {
            joined = &mut body.0 => joined,
            () = leases.lost(c.id) => return Ok(Outcome::Lost),
        };
        drop(body);
        if leases.is_lost(c.id) {
            return Ok(Outcome::Lost);
        }
        let outcome = joined.unwrap_or_else(|join| {
            Err(StepError::new(
                if join.is_panic() {
                    "the step body panicked"
                } else {
                    "the step body was cancelled"
                },
                true,
            ))
        });
        let now = e.now();
        match outcome {
            Ok(out) => {
                let (new_runs, new_edges) = e.expansion(&c.study, step, &out.subjects).await?;
                let mut record = out.record;
                // A body that applies what a person supplied (a task, then its body) keeps the
                // person's completion beside its own record: who completed it and their note,
                // sealed as it was (MK403 p.26).
                if c.mode == TaskMode::TaskThenApply
                    && let Some(person) = e
                        .store
                        .run(c.id)
                        .await?
                        .and_then(|r| r.output)
                        .and_then(|o| serde_json::from_str::<serde_json::Value>(&o).ok())
                    && record.is_object()
                {
                    for key in ["completed_by", "note"] {
                        if let Some(v) = person.get(key).filter(|v| !v.is_null()) {
                            record[key] = v.clone();
                        }
                    }
                }
                if !out.subjects.is_empty() {
                    record[crate::engine::SUBJECT_LIST] =
                        serde_json::to_value(&out.subjects).unwrap_or_default();
                }
                // The destruction says so to the store, with the steps whose recorded output
                // holds the cohort's pseudonyms and anchor dates (MK403 p.26).
                let effects = if step.kind == studyflow_plan::StepKind::DestroyIdentifying {
                    vec![studyflow_store::Effect::DestroyIdentifying {
                        rewrite_outputs: e.without_cohorts(&c.study, &loaded).await?,
                    }]
                } else {
                    Vec::new()
                };
                Ok(Outcome::Finish(Box::new(Finish {
                    run: c.id,
                    expect: Expect::Running { fence: c.fence },
                    effects,
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
                })))
            }
            Err(StepError {
                message,
                wait: Some(after),
                ..
            }) => {
                let until = now + micros_of(after);
                let why = redact(&message);
                tracing::info!(
                    owner = %self.owner,
                    run = c.id,
                    study = %c.study,
                    step = %c.step,
                    kind = %c.kind,
                    wait_ms = after.as_millis() as u64,
                    reason = %why,
                    "step waits for an external answer"
                );
                let audit = [event(
                    now,
                    &self.owner,
                    "step.waiting",
                    &object,
                    "",
                    serde_json::json!({"for": why, "until": until}),
                )];
                leases.release(c.id);
                e.store
                    .wait_external(c.id, c.fence, until, now, &why, &audit)
                    .await?;
                Ok(Outcome::Recorded)
            }
            Err(err) => {
                leases.release(c.id);
                self.record_failure(c, &err.message, err.retryable).await?;
                Ok(Outcome::Recorded)
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
