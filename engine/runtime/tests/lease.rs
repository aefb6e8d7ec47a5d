//! Leases under long step bodies: the heartbeat is a task of its own, so a body that takes
//! several leases' time — blocking work in `spawn_blocking`, or a long await — keeps the
//! leases of its whole batch and runs exactly once while a second worker keeps trying to
//! claim; and a worker whose run was taken over (its lease expired on the engine's clock)
//! notices at the next renewal, abandons the body and writes nothing for it.
//!
//! Time: the lease is checked against the engine's clock, so these tests give the engine a
//! clock that moves with real time (and can be pushed forward), with a lease of 400 ms: long
//! enough that a machine busy compiling does not delay a renewal (every lease/3) past it.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use studyflow_calendar::Calendar;
use studyflow_runtime::dataplane::{BoxFuture, blocking};
use studyflow_runtime::{
    Clock, DataPlane, Engine, ManualClock, Options, PlaceholderDataPlane, StepContext, StepError,
    StepOutput, Worker,
};
use studyflow_store::{AuditRow, RunState, Store};
use support::*;

const LEASE: Duration = Duration::from_millis(400);

/// A clock that runs with real time from a given instant, and can be pushed forward.
struct Ticking {
    start: Timestamp,
    since: Instant,
    pushed: Mutex<SignedDuration>,
}

impl Ticking {
    fn at(start: Timestamp) -> Ticking {
        Ticking {
            start,
            since: Instant::now(),
            pushed: Mutex::new(SignedDuration::ZERO),
        }
    }

    fn push(&self, by: Duration) {
        let mut p = self.pushed.lock().unwrap();
        *p = p
            .checked_add(SignedDuration::try_from(by).unwrap())
            .unwrap();
    }
}

impl Clock for Ticking {
    fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.since.elapsed()).unwrap();
        let pushed = *self.pushed.lock().unwrap();
        self.start + elapsed + pushed
    }
}

#[derive(Clone, Copy, Debug)]
enum Pause {
    /// `std::thread::sleep` inside `spawn_blocking`.
    Blocking,
    /// `std::thread::sleep` in [`blocking`], as the data plane's bodies open, seal and compute
    /// their datasets: the body's own thread is blocked, the heartbeat goes on elsewhere.
    InPlace,
    /// A long await.
    Async,
}

/// The placeholder's bodies, made slow: the first `slow` executions take `pause` each. Counts
/// executions by run key.
struct Slow {
    inner: PlaceholderDataPlane,
    pause: Duration,
    how: Pause,
    slow: usize,
    started: AtomicUsize,
    /// Slow bodies that ran to their end.
    slow_finished: AtomicUsize,
    executed: Mutex<HashMap<String, usize>>,
}

impl Slow {
    fn new(how: Pause, pause: Duration, slow: usize) -> Arc<Slow> {
        Arc::new(Slow {
            inner: PlaceholderDataPlane { cohort_size: 3 },
            pause,
            how,
            slow,
            started: AtomicUsize::new(0),
            slow_finished: AtomicUsize::new(0),
            executed: Mutex::new(HashMap::new()),
        })
    }

    fn executions(&self) -> HashMap<String, usize> {
        self.executed.lock().unwrap().clone()
    }
}

impl DataPlane for Slow {
    fn execute<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(async move {
            *self
                .executed
                .lock()
                .unwrap()
                .entry(ctx.key.to_owned())
                .or_default() += 1;
            let n = self.started.fetch_add(1, Ordering::SeqCst);
            if n < self.slow {
                match self.how {
                    Pause::Blocking => {
                        let pause = self.pause;
                        tokio::task::spawn_blocking(move || std::thread::sleep(pause))
                            .await
                            .map_err(|e| StepError::new(e.to_string(), true))?;
                    }
                    Pause::InPlace => blocking(|| std::thread::sleep(self.pause)),
                    Pause::Async => tokio::time::sleep(self.pause).await,
                }
                self.slow_finished.fetch_add(1, Ordering::SeqCst);
            }
            self.inner.execute(ctx).await
        })
    }
}

struct World {
    engine: Arc<Engine>,
    clock: Arc<Ticking>,
    plane: Arc<Slow>,
    studies: Vec<String>,
}

/// Every spec launched on an engine with a 200 ms lease and a clock that moves: each study's
/// first step is ready, so a worker's first batch holds several runs.
async fn world(db: &Db, plane: Arc<Slow>) -> World {
    // When every study's acquisition phase has begun (MK403 p.3.4: steps wait for their phase).
    let clock = Arc::new(Ticking::at(studyflow_runtime::clock::riga_midnight(date(
        2027, 1, 4,
    ))));
    let engine = Arc::new(Engine::new(
        Store::open(&db.url).await.unwrap(),
        clock.clone(),
        Arc::new(Calendar::latvia()),
        plane.clone(),
        Options {
            lease: LEASE,
            ..Options::default()
        },
    ));
    let setup = Setup {
        engine: engine.clone(),
        clock: Arc::new(ManualClock::at_date(date(2026, 8, 3))),
    };
    let mut studies = Vec::new();
    for spec in [
        "recidivism-2026-cohort",
        "probation-client-survey",
        "resocialisation-programmes-university",
    ] {
        studies.push(launch(&setup, &spec_bytes(spec)).await);
    }
    World {
        engine,
        clock,
        plane,
        studies,
    }
}

/// Starts `owner`'s `run_once` in a task of its own.
fn spawn_run_once(
    engine: &Arc<Engine>,
    owner: &str,
) -> tokio::task::JoinHandle<studyflow_runtime::engine::Result<usize>> {
    let w = Worker::new(engine.clone(), owner.into());
    tokio::spawn(async move { w.run_once().await })
}

async fn audit(engine: &Engine) -> Vec<AuditRow> {
    engine.store.audit_rows(0, 100_000).await.unwrap()
}

async fn wait_for_bodies(plane: &Slow, n: usize) {
    let start = Instant::now();
    while plane.started.load(Ordering::SeqCst) < n {
        assert!(start.elapsed() < Duration::from_secs(10), "no body started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_longer_than_the_lease_keeps_its_batch_and_runs_once() {
    for how in [Pause::Blocking, Pause::InPlace, Pause::Async] {
        for db in databases().await {
            // Every body of the first batch takes three and a half leases' time.
            let w = world(&db, Slow::new(how, LEASE * 7 / 2, 2)).await;
            let first = spawn_run_once(&w.engine, "w1");
            wait_for_bodies(&w.plane, 1).await;
            // A second worker tries all the while to take the batch's runs over.
            let rival = Worker::new(w.engine.clone(), "w2".into());
            let mut taken = 0;
            while !first.is_finished() {
                taken += rival.run_once().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let claimed = first.await.unwrap().unwrap();
            let label = format!("{} {how:?}", db.label);
            assert!(
                claimed >= 2,
                "{label}: the first batch holds more than the body that runs ({claimed})"
            );
            assert_eq!(
                w.plane.slow_finished.load(Ordering::SeqCst),
                2,
                "{label}: both slow bodies ran to their end"
            );
            let executions = w.plane.executions();
            assert!(
                executions.values().all(|n| *n == 1),
                "{label}: every run executed once: {executions:?}"
            );
            let rows = audit(&w.engine).await;
            assert!(
                !rows
                    .iter()
                    .any(|r| r.event.action == "step.stale_write_rejected"),
                "{label}: no lease was lost"
            );
            // Each executed run finished exactly once (done, or prepared for its task), by
            // the worker that ran it; the first batch by the first worker.
            let finished: Vec<&AuditRow> = rows
                .iter()
                .filter(|r| matches!(r.event.action.as_str(), "step.done" | "step.prepared"))
                .collect();
            let mut objects: Vec<&str> = finished.iter().map(|r| r.event.object.as_str()).collect();
            objects.sort();
            objects.dedup();
            assert_eq!(objects.len(), finished.len(), "{label}: finished once each");
            assert_eq!(finished.len(), executions.len(), "{label}");
            assert_eq!(
                finished.iter().filter(|r| r.event.actor == "w1").count(),
                claimed,
                "{label}: the first batch was finished by its worker"
            );
            for study in &w.studies {
                let runs = w.engine.store.runs(study).await.unwrap();
                assert!(
                    !runs.iter().any(|r| r.state == RunState::Running),
                    "{label}: nothing left running"
                );
            }
            // The rival got only what the first batch made ready, after it committed.
            assert!(taken <= executions.len() - claimed, "{label}: {taken}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_run_was_taken_over_does_not_finish_it() {
    for db in databases().await {
        // The first body takes far longer than the test waits; later ones are quick.
        let w = world(&db, Slow::new(Pause::Async, Duration::from_secs(30), 1)).await;
        let started = Instant::now();
        let first = spawn_run_once(&w.engine, "w1");
        wait_for_bodies(&w.plane, 1).await;
        // The engine's clock jumps past the lease (a paused VM, a clock step): the second
        // worker takes the batch over before the first renews.
        let rival = Worker::new(w.engine.clone(), "w2".into());
        let mut taken = 0;
        while taken == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never taken over"
            );
            w.clock.push(LEASE * 10);
            taken = rival.run_once().await.unwrap();
        }
        let claimed = tokio::time::timeout(Duration::from_secs(5), first)
            .await
            .expect("the first worker noticed the loss at its next renewal")
            .unwrap()
            .unwrap();
        let label = db.label;
        assert!(claimed >= 1);
        assert_eq!(
            w.plane.slow_finished.load(Ordering::SeqCst),
            0,
            "{label}: the abandoned body did not run to its end"
        );
        let rows = audit(&w.engine).await;
        let refused: Vec<&AuditRow> = rows
            .iter()
            .filter(|r| r.event.action == "step.stale_write_rejected")
            .collect();
        assert!(!refused.is_empty(), "{label}: the loss is audited");
        assert!(
            refused.iter().all(|r| r.event.actor == "w1"
                && r.event.detail.contains("\"noticed_by\":\"heartbeat\""))
        );
        // Nothing was finished by the worker that lost the runs; each run it had claimed is
        // finished once, by the rival.
        let done: Vec<&AuditRow> = rows
            .iter()
            .filter(|r| r.event.action == "step.done")
            .collect();
        assert!(done.iter().all(|r| r.event.actor == "w2"), "{label}");
        let mut objects: Vec<&str> = done.iter().map(|r| r.event.object.as_str()).collect();
        let n = objects.len();
        objects.sort();
        objects.dedup();
        assert_eq!(objects.len(), n, "{label}: each run finished once");
        for r in &refused {
            assert!(
                objects.contains(&r.event.object.as_str()),
                "{label}: {} was finished by the rival",
                r.event.object
            );
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
