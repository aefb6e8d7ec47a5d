//! Crash recovery: a `studyflow worker` process is killed with SIGKILL inside a claim, inside a
//! step body and inside the commit of a step's outcome, several times over; workers started
//! again take the runs over when the leases expire. In the end every run is done exactly once
//! (one `step.done` per run in the audit) and `studyflow audit verify` passes. On SQLite and,
//! when it answers, PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use studyflow_runtime::{Engine, Identity, ManualClock, Options, PlaceholderDataPlane, Worker};
use studyflow_store::{RunState, Store, Verification};

const BIN: &str = env!("CARGO_BIN_EXE_studyflow");
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../specs/recidivism-2026-cohort.yaml"
);
const COHORT: usize = 3;

fn studyflow(db: &str, now: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("STUDYFLOW_DATABASE_URL", db)
        .env("STUDYFLOW_NOW", now)
        .env("STUDYFLOW_PLACEHOLDER_COHORT", COHORT.to_string())
        .env_remove("STUDYFLOW_FAILPOINT")
        .output()
        .expect("studyflow runs")
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts a worker that stops at the failpoint, waits until it is there, and kills it (SIGKILL).
fn crash_at(db: &str, now: &str, point: &str, dir: &Path) {
    let marker = dir.join(format!("marker-{}", point.replace(':', "-")));
    let _ = std::fs::remove_file(&marker);
    let mut child = Command::new(BIN)
        .args([
            "worker",
            "--unsigned-audit",
            "--placeholder",
            "--poll-ms",
            "20",
        ])
        .env("STUDYFLOW_DATABASE_URL", db)
        .env("STUDYFLOW_NOW", now)
        .env("STUDYFLOW_PLACEHOLDER_COHORT", COHORT.to_string())
        .env("STUDYFLOW_FAILPOINT", point)
        .env("STUDYFLOW_FAILPOINT_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker starts");
    let start = Instant::now();
    while !marker.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the worker exited ({status}) before reaching {point}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the worker never reached {point}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
    let status = child.wait().expect("reaped");
    assert!(!status.success(), "killed at {point}");
}

async fn scenario(db: &str, dir: &Path) {
    assert!(
        studyflow_runtime::clock::test_clock(),
        "the crash test needs the binary's fixed clock (the `test-clock` feature)"
    );
    assert!(
        studyflow_store::failpoint::enabled(),
        "the crash test needs the binary built with failpoints (`cargo test` turns them on \
         through the CLI's dev-dependency on studyflow-store/failpoints)"
    );
    // Submitted, approved and started in August; the cohort's phase starts on 4 January, when
    // the workers (and their crashes) begin (MK403 p.3.4).
    let approved = "2026-08-03T09:00:00Z";
    let days = [
        "2027-01-04T09:00:00Z",
        "2027-01-04T09:10:00Z",
        "2027-01-04T09:20:00Z",
        "2027-01-04T09:30:00Z",
        "2027-01-04T09:40:00Z",
        "2027-01-04T09:50:00Z",
    ];
    // The people's acts, in-process (the server's part is tested in engine/server).
    {
        let engine = Engine::new(
            Store::open(db).await.unwrap(),
            Arc::new(ManualClock::new(approved.parse().unwrap())),
            Arc::new(studyflow_calendar::Calendar::latvia()),
            Arc::new(PlaceholderDataPlane {
                cohort_size: COHORT,
            }),
            Options::default(),
        );
        let bytes = std::fs::read(SPEC).unwrap();
        let (study, _, hash) = engine
            .submit(&bytes, &Identity::for_tests("inese.kalnina"))
            .await
            .unwrap();
        engine
            .approve(&study, &Identity::for_tests("gatis.krumins"), Some(&hash))
            .await
            .unwrap();
        engine
            .start(&study, &Identity::for_tests("inese.kalnina"))
            .await
            .unwrap();
        engine.close().await;
    }
    // Each restart comes ten minutes later (by the injected clock), after the 60 s leases.
    crash_at(db, days[0], "claim:1", dir);
    crash_at(db, days[1], "step:2", dir);
    crash_at(db, days[2], "commit:2", dir);
    crash_at(db, days[3], "commit:1", dir);
    crash_at(db, days[4], "claim:2", dir);
    let out = ok(studyflow(
        db,
        days[5],
        &["worker", "--once", "--unsigned-audit", "--placeholder"],
    ));
    assert!(out.starts_with("worker: "), "{out}");

    // Drive the rest in-process on the same database: tasks, then the clock through every timer.
    let store = Store::open(db).await.unwrap();
    let clock = Arc::new(ManualClock::new(days[5].parse().unwrap()));
    let engine = Arc::new(Engine::new(
        store,
        clock.clone(),
        Arc::new(studyflow_calendar::Calendar::latvia()),
        Arc::new(PlaceholderDataPlane {
            cohort_size: COHORT,
        }),
        Options::default(),
    ));
    let worker = Worker::new(engine.clone(), "after-crash".into());
    let people = [
        Identity::for_tests("inese.kalnina"),
        Identity::for_tests("gatis.krumins"),
    ];
    for _ in 0..1000 {
        worker.run_until_idle().await.unwrap();
        let tasks = engine.tasks(None).await.unwrap();
        if !tasks.is_empty() {
            for t in tasks {
                let loaded = engine.load(&t.study, t.version).await.unwrap();
                let step = loaded.plan.step(&t.step).unwrap();
                let who = people
                    .iter()
                    .find(|p| studyflow_runtime::authorise(&loaded.spec, step, p).is_ok())
                    .unwrap();
                engine.complete_task(t.id, who, None).await.unwrap();
            }
            continue;
        }
        if engine
            .store
            .study("recidivism-2026-cohort")
            .await
            .unwrap()
            .unwrap()
            .state
            == studyflow_store::StudyState::Completed
        {
            break;
        }
        let next = engine.store.next_timer().await.unwrap().expect("a timer");
        clock.set(studyflow_runtime::clock::from_micros(next));
    }
    let runs = engine.store.runs("recidivism-2026-cohort").await.unwrap();
    assert!(
        runs.iter().all(|r| r.state == RunState::Done),
        "{:?}",
        runs.iter()
            .filter(|r| r.state != RunState::Done)
            .map(|r| (&r.step, r.state))
            .collect::<Vec<_>>()
    );
    // 14 study-level steps, the 7 releases to the study workspace (baseline, six waves).
    assert_eq!(runs.len(), 21 + COHORT * 24);
    // Exactly once: one `step.done` per engine run, however often it was claimed.
    engine.store.seal_audit().await.unwrap();
    let mut done = std::collections::HashMap::new();
    let mut claims = 0;
    let mut after = 0;
    loop {
        let rows = engine.store.audit_rows(after, 10_000).await.unwrap();
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for r in rows {
            match r.event.action.as_str() {
                "step.done" => *done.entry(r.event.object.clone()).or_insert(0) += 1,
                "step.running" => claims += 1,
                _ => {}
            }
        }
    }
    for r in runs.iter().filter(|r| !r.human) {
        let object = studyflow_store::run_object(&r.study, &r.step, &r.subject);
        assert_eq!(done.get(&object), Some(&1), "{object} done once");
    }
    assert!(
        claims > done.len(),
        "the killed claims were taken over ({claims} claims for {} runs)",
        done.len()
    );
    assert!(matches!(
        engine.store.verify_audit().await.unwrap(),
        Verification::Intact { .. }
    ));
    engine.store.close().await;
    let out = ok(studyflow(db, days[5], &["audit", "verify"]));
    assert!(out.starts_with("audit intact"), "{out}");
}

fn temp(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("studyflow-crash-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_worker_killed_at_every_point_loses_nothing() {
    let dir = temp("sqlite");
    let db = dir.join("studyflow.db");
    scenario(db.to_str().unwrap(), &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_worker_killed_at_every_point_loses_nothing() {
    let Some(schema) = studyflow_store::testing::postgres_schema("crash").await else {
        return;
    };
    let dir = temp("pg");
    scenario(&schema.url, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}
