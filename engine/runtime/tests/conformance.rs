//! The engine's behaviour, the same on both backends: refusals that change nothing, the
//! fencing token, retries, amendments, termination, authorisation, overdue deadlines, and an
//! audit chain that reports the first tampered row.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::civil::date;
use studyflow_runtime::{
    DataPlane, EngineError, PlaceholderDataPlane, StepContext, StepError, StepOutput, Worker,
};
use studyflow_store::{RunState, Store, StoreError, Verification};
use support::*;

const RECIDIVISM: &str = "recidivism-2026-cohort";

async fn count_rows(s: &Setup) -> (usize, i64) {
    let studies = s.engine.store.studies().await.unwrap().len();
    let audit = match s.engine.store.verify_audit().await.unwrap() {
        Verification::Intact { rows, .. } => rows,
        b => panic!("{b:?}"),
    };
    (studies, audit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_are_refused_and_change_nothing() {
    for db in databases().await {
        let s = engine(&db.url, date(2026, 8, 3), 3).await;
        let bytes = spec_bytes(RECIDIVISM);
        // Unknown study.
        assert!(matches!(
            s.engine.start("no-such-study", &who("operator")).await,
            Err(EngineError::NotFound(_))
        ));
        // An invalid spec stores nothing.
        let broken = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("purpose:", "porpose:");
        assert!(matches!(
            s.engine.submit(broken.as_bytes(), &who("a")).await,
            Err(EngineError::Invalid(_))
        ));
        assert_eq!(count_rows(&s).await, (0, 0));
        // Only its service researcher (or the external team) submits an application
        // (MK403 p.3, p.4): not its approver, not a stranger, not a blank name.
        for who in [
            &who("gatis.krumins"),
            &who("nobody.named"),
            &who(""),
            &who(""),
        ] {
            assert!(
                matches!(
                    s.engine.submit(&bytes, who).await,
                    Err(EngineError::Forbidden(_))
                ),
                "{who:?} submitted"
            );
        }
        assert_eq!(count_rows(&s).await, (0, 0));
        let (study, _, hash) = s
            .engine
            .submit(&bytes, &who("inese.kalnina"))
            .await
            .unwrap();
        let before = count_rows(&s).await;
        // Unapproved: cannot start, even by its service researcher.
        assert!(matches!(
            s.engine.start(&study, &who("inese.kalnina")).await,
            Err(EngineError::Refused(_))
        ));
        // The submitter cannot approve their own study.
        let e = s
            .engine
            .approve(&study, &who("inese.kalnina"), None)
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::Forbidden(_)), "{e}");
        // Only an approver named in the spec approves.
        let e = s
            .engine
            .approve(&study, &who("martins.ozols"), None)
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::Forbidden(_)), "{e}");
        // Approval pinned to the reviewed plan.
        let e = s
            .engine
            .approve(&study, &who("gatis.krumins"), Some("sha256:0000"))
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::Refused(_)), "{e}");
        // A second submission of the same study is refused: changes are amendments.
        assert!(matches!(
            s.engine.submit(&bytes, &who("martins.ozols")).await,
            Err(EngineError::Refused(m)) if m.contains("exists already")
        ));
        // Neither a stranger nor the approver amends it; nobody but an approver terminates it.
        for who in [&who("nobody.named"), &who(""), &who("gatis.krumins")] {
            assert!(
                matches!(
                    s.engine.amend(&study, &bytes, who).await,
                    Err(EngineError::Forbidden(_))
                ),
                "{who:?} amended"
            );
        }
        for who in [&who("nobody.named"), &who(""), &who("inese.kalnina")] {
            assert!(
                matches!(
                    s.engine.terminate(&study, who).await,
                    Err(EngineError::Forbidden(_))
                ),
                "{who:?} terminated"
            );
        }
        assert_eq!(
            count_rows(&s).await,
            before,
            "{}: refusals changed nothing",
            db.label
        );
        assert_eq!(
            s.engine.store.study(&study).await.unwrap().unwrap().state,
            studyflow_store::StudyState::Submitted
        );
        let _ = hash;
        s.engine.store.close().await;
    }
}

#[tokio::test]
async fn newer_and_corrupt_databases_are_refused_untouched() {
    let db = sqlite();
    let store = Store::open(&db.url).await.unwrap();
    store.force_schema_version(99).await.unwrap();
    store.close().await;
    let e = Store::open(&db.url).await.unwrap_err();
    assert!(
        matches!(e, StoreError::NewerSchema { found: 99, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("newer"));

    let dir = std::env::temp_dir().join(format!("studyflow-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("studyflow.db");
    let garbage =
        b"this is not an SQLite database, it is a text file that someone renamed".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let e = Store::open(path.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(e, StoreError::NotADatabase(_)), "{e}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file is unchanged"
    );
    let _ = std::fs::remove_dir_all(dir);

    if let Some(pg) = postgres().await {
        let store = Store::open(&pg.url).await.unwrap();
        store.force_schema_version(99).await.unwrap();
        store.close().await;
        assert!(matches!(
            Store::open(&pg.url).await.unwrap_err(),
            StoreError::NewerSchema { .. }
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_worker_cannot_write_after_its_lease_was_taken_over() {
    for db in databases().await {
        let s = engine(&db.url, date(2026, 8, 3), 2).await;
        let study = launch(&s, &spec_bytes(RECIDIVISM)).await;
        let store = &s.engine.store;
        let now = s.engine.now();
        let first = store
            .claim("worker-a", now, now + 1_000_000, 1)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        // Worker A stalls past its lease; worker B takes the run over.
        let later = now + 5_000_000;
        let second = store
            .claim("worker-b", later, later + 1_000_000, 1)
            .await
            .unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].id, first[0].id);
        assert_eq!(second[0].fence, first[0].fence + 1);
        let finish = |fence| studyflow_store::Finish {
            run: first[0].id,
            expect: studyflow_store::Expect::Running { fence },
            effects: Vec::new(),
            output: "{}".into(),
            completed_by: "w".into(),
            now: later,
            new_runs: vec![],
            new_edges: vec![],
            audit: vec![],
        };
        assert!(
            !store.finish(&finish(first[0].fence)).await.unwrap(),
            "{}: the late write is refused",
            db.label
        );
        assert!(
            !store
                .heartbeat(first[0].id, first[0].fence, later + 9)
                .await
                .unwrap()
        );
        assert_eq!(
            store.run(first[0].id).await.unwrap().unwrap().state,
            RunState::Running
        );
        assert!(store.finish(&finish(second[0].fence)).await.unwrap());
        assert_eq!(
            store.run(first[0].id).await.unwrap().unwrap().state,
            RunState::Done
        );
        let _ = study;
        store.close().await;
    }
}

/// Fails the first `fail` attempts of every `acquire_service_is`, retryable or not.
struct Flaky {
    fail: usize,
    retryable: bool,
    seen: AtomicUsize,
    inner: PlaceholderDataPlane,
}

impl DataPlane for Flaky {
    fn execute<'a>(
        &'a self,
        ctx: StepContext<'a>,
    ) -> studyflow_runtime::dataplane::BoxFuture<'a, Result<StepOutput, StepError>> {
        if ctx.step.id == "acquire-service-is"
            && self.seen.fetch_add(1, Ordering::SeqCst) < self.fail
        {
            let retryable = self.retryable;
            return Box::pin(async move {
                Err(StepError::new(
                    "the Service IS did not answer (personal code 010180-12345 masked)",
                    retryable,
                ))
            });
        }
        self.inner.execute(ctx)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_back_off_and_then_fail_for_good() {
    for (retryable, fail, expect) in [(true, 2, RunState::Done), (false, 1, RunState::Failed)] {
        let db = sqlite();
        let mut s = engine(&db.url, date(2026, 8, 3), 2).await;
        let flaky = Arc::new(Flaky {
            fail,
            retryable,
            seen: AtomicUsize::new(0),
            inner: PlaceholderDataPlane { cohort_size: 2 },
        });
        let e = studyflow_runtime::Engine::new(
            Store::open(&db.url).await.unwrap(),
            s.clock.clone(),
            s.engine.calendar.clone(),
            flaky,
            s.engine.options.clone(),
        );
        s.engine = Arc::new(e);
        let study = launch(&s, &spec_bytes(RECIDIVISM)).await;
        let w = Worker::new(s.engine.clone(), "w".into());
        for _ in 0..4 {
            w.run_until_idle().await.unwrap();
            // Move past the backoff.
            s.clock.advance(jiff::SignedDuration::from_hours(1));
        }
        let runs = s.engine.store.runs(&study).await.unwrap();
        let acq = runs
            .iter()
            .find(|r| r.step == "acquire-service-is")
            .unwrap();
        assert_eq!(acq.state, expect, "retryable={retryable}");
        assert_eq!(acq.attempts, fail as i64 + i64::from(retryable));
        let err = acq.last_error.clone().unwrap_or_default();
        assert!(
            !err.contains("010180-12345"),
            "no personal code in the error: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amendment_replans_what_has_not_started() {
    for db in databases().await {
        let s = engine(&db.url, date(2026, 8, 3), 3).await;
        let bytes = spec_bytes(RECIDIVISM);
        let study = launch(&s, &bytes).await;
        let w = Worker::new(s.engine.clone(), "w".into());
        w.run_until_idle().await.unwrap();
        // Quality check is now an open task (its report prepared); the steps before it are done.
        let amended = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("\nversion: 1\n", "\nversion: 2\n")
            .replace(
                "title: Survival analysis of the complete anonymised dataset",
                "title: Survival and competing-risks analysis of the complete anonymised dataset",
            );
        // A changed spec is a new version: submitted, not yet approved, nothing replanned.
        s.engine
            .amend(&study, amended.as_bytes(), &who("inese.kalnina"))
            .await
            .unwrap();
        let runs = s.engine.store.runs(&study).await.unwrap();
        assert!(runs.iter().all(|r| r.version == 1));
        s.engine
            .approve(&study, &who("gatis.krumins"), None)
            .await
            .unwrap();
        let runs = s.engine.store.runs(&study).await.unwrap();
        let done_v1 = runs
            .iter()
            .filter(|r| r.version == 1 && r.state == RunState::Done)
            .count();
        assert!(
            done_v1 >= 4,
            "{}: done steps stay done under version 1",
            db.label
        );
        // The quality check was prepared under version 1 and waits for its sign-off: a
        // half-done task with a body is not thrown away by an amendment (its report, or a
        // request already in the outbox, stands); version 2 makes no second one.
        assert!(runs.iter().any(|r| r.version == 1
            && r.step == "quality-check"
            && r.state == RunState::Waiting
            && r.wait_reason.as_deref() == Some("task")));
        assert!(
            !runs
                .iter()
                .any(|r| r.version == 2 && r.step == "quality-check"),
            "{}",
            db.label
        );
        let spec = studyflow_spec::check(amended.as_bytes()).spec.unwrap();
        drive(&s, &study, &spec).await;
        let runs = s.engine.store.runs(&study).await.unwrap();
        assert!(
            runs.iter()
                .filter(|r| r.state == RunState::Done)
                .all(|r| r.version == 1 || r.version == 2)
        );
        assert!(
            runs.iter()
                .any(|r| r.version == 2 && r.step == "analysis" && r.state == RunState::Done)
        );
        assert_eq!(
            s.engine.store.study(&study).await.unwrap().unwrap().state,
            studyflow_store::StudyState::Completed
        );
        assert!(matches!(
            s.engine.store.verify_audit().await.unwrap(),
            Verification::Intact { .. }
        ));
        s.engine.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_with_personal_data_need_an_authorised_service_researcher() {
    let db = sqlite();
    let s = engine(&db.url, date(2026, 8, 3), 2).await;
    let study = launch(&s, &spec_bytes(RECIDIVISM)).await;
    Worker::new(s.engine.clone(), "w".into())
        .run_until_idle()
        .await
        .unwrap();
    let tasks = s.engine.tasks(None).await.unwrap();
    let qc = tasks
        .iter()
        .find(|t| t.step == "quality-check")
        .expect("quality check is open");
    // Dace Liepiņa may see anonymised data only (MK403 p.21, p.25.2).
    let e = s
        .engine
        .complete_task(qc.id, &who("dace.liepina"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Forbidden(_)), "{e}");
    assert!(e.to_string().contains("p.25.2"));
    assert!(
        s.engine
            .tasks(Some(&who("dace.liepina")))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.engine
            .tasks(Some(&who("inese.kalnina")))
            .await
            .unwrap()
            .len(),
        1
    );
    // A note on a step with personal data may name a subject: it is kept only sealed under
    // the study's keys (MK403 p.26). With no keys to seal to, it is refused and the task
    // stays open.
    let note = "Jānis Bērziņš (010180-12345) had two rows; duplicates removed";
    let e = s
        .engine
        .complete_task(qc.id, &who("inese.kalnina"), Some(note))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::Refused(m) if m.contains("p.26") && m.contains("without --note")),
        "{e}"
    );
    assert_eq!(
        s.engine
            .tasks(Some(&who("inese.kalnina")))
            .await
            .unwrap()
            .len(),
        1
    );
    let (master, _, _) = put_study_keys(&s.engine.store, &study, 5).await;
    s.engine
        .complete_task(qc.id, &who("inese.kalnina"), Some(note))
        .await
        .unwrap();
    assert!(matches!(
        s.engine
            .complete_task(qc.id, &who("inese.kalnina"), None)
            .await,
        Err(EngineError::Refused(_))
    ));
    // Nothing of it in the database in the clear.
    let mut clear = Vec::new();
    s.engine
        .store
        .contents(|cell| {
            let text = String::from_utf8_lossy(cell);
            if text.contains("Bērziņš")
                || text.contains("12345")
                || text.contains("duplicates removed")
            {
                clear.push(text.into_owned());
            }
        })
        .await
        .unwrap();
    assert!(clear.is_empty(), "{clear:?}");
    // Only a person who may do the task reads it back, and only with the study's keys.
    assert!(matches!(
        s.engine.task_note(qc.id, &who("dace.liepina")).await,
        Err(EngineError::Forbidden(_))
    ));
    let (_, sealed) = s
        .engine
        .task_note(qc.id, &who("inese.kalnina"))
        .await
        .unwrap();
    let Some(studyflow_runtime::TaskNote::Sealed(hex_text)) = sealed else {
        panic!("{sealed:?}");
    };
    let wrapped = s.engine.wrapped_study_keys(&study).await.unwrap().unwrap();
    let opened = studyflow_dataplane::vault::StudyKeys::unwrap(&study, &wrapped, &master)
        .unwrap()
        .open_note(&hex::decode(&hex_text).unwrap())
        .unwrap();
    // Personal codes are masked before sealing, as everywhere a note is kept.
    assert!(
        opened.starts_with("Jānis Bērziņš (") && !opened.contains("12345"),
        "{opened}"
    );
    // Another study's keys open nothing.
    let other = studyflow_dataplane::vault::StudyKeys::generate(&study);
    assert!(other.open_note(&hex::decode(&hex_text).unwrap()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_cancels_the_rest_and_destroys_at_once() {
    for db in databases().await {
        let s = engine(&db.url, date(2026, 8, 3), 3).await;
        let study = launch(&s, &spec_bytes(RECIDIVISM)).await;
        let w = Worker::new(s.engine.clone(), "w".into());
        w.run_until_idle().await.unwrap();
        s.engine
            .terminate(&study, &who("gatis.krumins"))
            .await
            .unwrap();
        w.run_until_idle().await.unwrap();
        let runs = s.engine.store.runs(&study).await.unwrap();
        let destroy = runs
            .iter()
            .find(|r| r.step == "destroy-identifying")
            .unwrap();
        assert_eq!(destroy.state, RunState::Done, "{}", db.label);
        assert!(
            runs.iter()
                .all(|r| matches!(r.state, RunState::Done | RunState::Cancelled))
        );
        assert_eq!(
            s.engine.store.study(&study).await.unwrap().unwrap().state,
            studyflow_store::StudyState::Terminated
        );
        assert!(matches!(
            s.engine.terminate(&study, &who("gatis.krumins")).await,
            Err(EngineError::Store(StoreError::Conflict(_)))
        ));
        s.engine.store.close().await;
    }
}

/// On both backends: an overdue deadline raises its event once, and the study's status (the
/// runs summed by the database) says which step is late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_deadlines_raise_one_event_each() {
    for db in databases().await {
        let s = engine(&db.url, date(2026, 8, 3), 2).await;
        let study = launch(&s, &spec_bytes(RECIDIVISM)).await;
        Worker::new(s.engine.clone(), "w".into())
            .run_until_idle()
            .await
            .unwrap();
        // The quality check (phase `cohort-baseline`, due 2027-04-30) is still open on 2027-05-03.
        s.clock
            .set(studyflow_runtime::clock::riga_midnight(date(2027, 5, 3)));
        let events = s.engine.flag_overdue().await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.object == format!("{study}/quality-check")
                    && e.action == "deadline.overdue"),
            "{events:?}"
        );
        assert!(
            s.engine.flag_overdue().await.unwrap().is_empty(),
            "flagged once"
        );
        let qc = s
            .engine
            .store
            .runs(&study)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.step == "quality-check")
            .unwrap();
        assert!(qc.overdue_flagged);
        let status = s.engine.status(&study).await.unwrap().unwrap();
        let late: Vec<&str> = status.overdue.iter().map(|o| o.step.as_str()).collect();
        assert!(late.contains(&"quality-check"), "{}: {late:?}", db.url);
        let step = |id: &str| status.steps.iter().find(|x| x.step == id).unwrap();
        assert!(step("quality-check").late && !step("quality-check").per_subject);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_finds_the_first_tampered_row() {
    for db in databases().await {
        let s = engine(&db.url, date(2026, 8, 3), 2).await;
        launch(&s, &spec_bytes(RECIDIVISM)).await;
        Worker::new(s.engine.clone(), "w".into())
            .run_until_idle()
            .await
            .unwrap();
        let store = &s.engine.store;
        let Verification::Intact { rows, .. } = store.verify_audit().await.unwrap() else {
            panic!()
        };
        assert!(rows > 10);
        let broken = |v: Verification| match v {
            Verification::Broken { seq, reason } => (seq, reason),
            v => panic!("{}: tampering not found: {v:?}", db.label),
        };
        // Edited.
        store
            .execute_raw_for_tests("UPDATE audit SET actor = 'someone else' WHERE seq = 5")
            .await
            .unwrap();
        let (seq, reason) = broken(store.verify_audit().await.unwrap());
        assert_eq!(seq, 5);
        assert!(reason.contains("edited"), "{reason}");
        store
            .execute_raw_for_tests("DELETE FROM audit")
            .await
            .unwrap();
        store
            .execute_raw_for_tests("DELETE FROM meta WHERE key = 'audit_head'")
            .await
            .unwrap();
        s.engine
            .store
            .append_audit(
                &(0..8)
                    .map(|i| studyflow_store::AuditEvent {
                        at: i,
                        actor: "t".into(),
                        action: "a".into(),
                        object: format!("o{i}"),
                        point: String::new(),
                        detail: "{}".into(),
                    })
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        assert!(matches!(
            store.verify_audit().await.unwrap(),
            Verification::Intact { rows: 8, .. }
        ));
        // Deleted.
        store
            .execute_raw_for_tests("DELETE FROM audit WHERE seq = 3")
            .await
            .unwrap();
        let (seq, reason) = broken(store.verify_audit().await.unwrap());
        assert_eq!(seq, 3, "{reason}");
        // Swapped: rows 5 and 6 exchange their content but keep their numbers.
        store.execute_raw_for_tests("UPDATE audit SET seq = 3, object = 'o2', at = 2, prev_hash = (SELECT hash FROM audit WHERE seq = 2), hash = hash WHERE seq = 2").await.unwrap();
        let _ = store
            .execute_raw_for_tests("UPDATE audit SET seq = -5 WHERE seq = 5")
            .await
            .unwrap();
        store
            .execute_raw_for_tests("UPDATE audit SET seq = 5 WHERE seq = 6")
            .await
            .unwrap();
        store
            .execute_raw_for_tests("UPDATE audit SET seq = 6 WHERE seq = -5")
            .await
            .unwrap();
        let (seq, _) = broken(store.verify_audit().await.unwrap());
        assert!(
            seq <= 5,
            "{}: the first broken row is reported ({seq})",
            db.label
        );
        // Cut off the end: only the recorded head tells.
        store
            .execute_raw_for_tests("DELETE FROM audit")
            .await
            .unwrap();
        store
            .execute_raw_for_tests("DELETE FROM meta WHERE key = 'audit_head'")
            .await
            .unwrap();
        s.engine
            .store
            .append_audit(
                &(0..4)
                    .map(|i| studyflow_store::AuditEvent {
                        at: i,
                        actor: "t".into(),
                        action: "a".into(),
                        object: format!("o{i}"),
                        point: String::new(),
                        detail: "{}".into(),
                    })
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        store
            .execute_raw_for_tests("DELETE FROM audit WHERE seq = 4")
            .await
            .unwrap();
        let (seq, reason) = broken(store.verify_audit().await.unwrap());
        assert_eq!(seq, 4, "{reason}");
        assert!(reason.contains("cut off"), "{reason}");
        s.engine.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_postgres_worker_is_woken_by_notify() {
    let Some(db) = postgres().await else { return };
    let s = engine(&db.url, date(2026, 8, 3), 2).await;
    let waiter = Store::open(&db.url).await.unwrap();
    // Open the LISTEN connection first, then wait with a poll far longer than the test needs.
    waiter
        .wait_for_work(std::time::Duration::from_millis(10))
        .await;
    let waiting = tokio::spawn(async move {
        let t = std::time::Instant::now();
        waiter
            .wait_for_work(std::time::Duration::from_secs(60))
            .await;
        t.elapsed()
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    launch(&s, &spec_bytes(RECIDIVISM)).await;
    let waited = waiting.await.unwrap();
    assert!(
        waited < std::time::Duration::from_secs(30),
        "woken by NOTIFY, not by the 60 s poll: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_calendar_moves_dates_but_a_changed_plan_shape_is_not_run() {
    let db = sqlite();
    let s = engine(&db.url, date(2026, 8, 3), 2).await;
    let bytes = spec_bytes(RECIDIVISM);
    let (study, _, hash) = s
        .engine
        .submit(&bytes, &who("inese.kalnina"))
        .await
        .unwrap();
    s.engine
        .approve(&study, &who("gatis.krumins"), Some(&hash))
        .await
        .unwrap();
    let other = |calendar: studyflow_calendar::Calendar| async {
        studyflow_runtime::Engine::new(
            Store::open(&db.url).await.unwrap(),
            s.clock.clone(),
            Arc::new(calendar),
            Arc::new(PlaceholderDataPlane { cohort_size: 2 }),
            studyflow_runtime::Options::default(),
        )
    };
    // A later Cabinet order (a new day off) changes the plan's hash and dates, not its steps:
    // the study a new release of the calendar finds running goes on.
    let calendar = studyflow_calendar::Calendar::with_overrides(&[(
        "order.txt",
        "one-off 2030-05-06 A day off by a future law (Brīvdiena ar nākotnes likumu)\n",
    )])
    .unwrap();
    let e = other(calendar).await;
    assert!(e.load(&study, 1).await.is_ok());
    // A stored plan whose steps differ from what the spec compiles to is refused.
    s.engine
        .store
        .execute_raw_for_tests("UPDATE study_versions SET plan_json = REPLACE(plan_json, '\"quality-check\"', '\"quality-control\"')")
        .await
        .unwrap();
    let e = other(studyflow_calendar::Calendar::latvia()).await;
    let err = e.start(&study, &who("inese.kalnina")).await.unwrap_err();
    assert!(matches!(err, EngineError::Refused(_)), "{err}");
    assert!(
        err.to_string().contains("other than the approved plan"),
        "{err}"
    );
    assert_eq!(
        s.engine.store.study(&study).await.unwrap().unwrap().state,
        studyflow_store::StudyState::Approved
    );
    assert!(s.engine.store.runs(&study).await.unwrap().is_empty());
}

/// Says "waiting for the answer" twice for the Service IS extraction, then does it.
struct Waits {
    left: AtomicUsize,
    inner: PlaceholderDataPlane,
}

impl DataPlane for Waits {
    fn execute<'a>(
        &'a self,
        ctx: StepContext<'a>,
    ) -> studyflow_runtime::dataplane::BoxFuture<'a, Result<StepOutput, StepError>> {
        if ctx.step.id == "acquire-service-is" && self.left.load(Ordering::SeqCst) > 0 {
            self.left.fetch_sub(1, Ordering::SeqCst);
            return Box::pin(async {
                Err(StepError::waiting(
                    "the answer has not arrived",
                    std::time::Duration::from_secs(3600),
                ))
            });
        }
        self.inner.execute(ctx)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_an_external_answer_spends_no_attempt() {
    let db = sqlite();
    let mut s = engine(&db.url, date(2026, 8, 3), 2).await;
    let e = studyflow_runtime::Engine::new(
        Store::open(&db.url).await.unwrap(),
        s.clock.clone(),
        s.engine.calendar.clone(),
        Arc::new(Waits {
            left: AtomicUsize::new(2),
            inner: PlaceholderDataPlane { cohort_size: 2 },
        }),
        studyflow_runtime::Options {
            max_attempts: 2,
            ..Default::default()
        },
    );
    s.engine = Arc::new(e);
    let study = launch(&s, &spec_bytes(RECIDIVISM)).await;
    let w = Worker::new(s.engine.clone(), "w".into());
    let acq = |runs: Vec<studyflow_store::RunRow>| {
        runs.into_iter()
            .find(|r| r.step == "acquire-service-is")
            .unwrap()
    };
    w.run_until_idle().await.unwrap();
    let r = acq(s.engine.store.runs(&study).await.unwrap());
    assert_eq!(
        (r.state, r.wait_reason.as_deref(), r.attempts),
        (RunState::Waiting, Some("answer"), 0)
    );
    // Not looked at again before its time; then again (still waiting), then done — with
    // max_attempts 2, two waits would have failed it had they counted.
    w.run_until_idle().await.unwrap();
    assert_eq!(
        acq(s.engine.store.runs(&study).await.unwrap()).state,
        RunState::Waiting
    );
    for _ in 0..2 {
        s.clock.advance(jiff::SignedDuration::from_hours(2));
        w.run_until_idle().await.unwrap();
    }
    let r = acq(s.engine.store.runs(&study).await.unwrap());
    assert_eq!((r.state, r.attempts), (RunState::Done, 1));
}

/// Every study-level act checks who acts (MK403 p.3, p.21, p.26, p.28): a stranger, a blank
/// name, the external team or the supervisor of a Service study cannot start or end a study;
/// the approver can end it, and for an external study so can its supervisor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn study_acts_check_who_acts() {
    let db = sqlite();
    let s = engine(&db.url, date(2026, 5, 26), 0).await;
    let bytes = spec_bytes("resocialisation-programmes-university");
    let spec = studyflow_spec::check(&bytes).spec.unwrap();
    // A member of the external researcher's team submits the application (p.4).
    let (study, _, hash) = s.engine.submit(&bytes, &who("ieva.berzina")).await.unwrap();
    s.engine
        .approve(&study, &approver(&spec), Some(&hash))
        .await
        .unwrap();
    let before = count_rows(&s).await;
    for who in [
        &who("nobody.named"),
        &who(""),
        &who("ieva.berzina"),
        &who("gatis.krumins"),
        &who("rihards.eglitis"),
    ] {
        let e = s.engine.start(&study, who).await.unwrap_err();
        assert!(
            matches!(&e, EngineError::Forbidden(m) if who.login().is_empty() || m.contains("p.21")),
            "{who:?}: {e}"
        );
    }
    for who in [
        &who("nobody.named"),
        &who(""),
        &who("ieva.berzina"),
        &who("inese.kalnina"),
    ] {
        let e = s.engine.terminate(&study, who).await.unwrap_err();
        assert!(matches!(e, EngineError::Forbidden(_)), "{who:?}: {e}");
    }
    assert_eq!(count_rows(&s).await, before, "refusals changed nothing");
    // The supervisor of an external study may end it (p.25.5, p.28); the audit names them.
    s.engine
        .terminate(&study, &who("rihards.eglitis"))
        .await
        .unwrap();
    let audit = s.engine.store.audit_rows(0, 1000).await.unwrap();
    let last = audit
        .iter()
        .rev()
        .find(|r| r.event.action == "study.terminated")
        .unwrap();
    assert_eq!(last.event.actor, "rihards.eglitis");
}

/// The people a pending amendment adds act only once it is approved: before the first approval
/// the first version decides, afterwards the version in force (MK403 p.3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_an_amendment_adds_act_only_once_it_is_approved() {
    let db = sqlite();
    let s = engine(&db.url, date(2026, 8, 3), 0).await;
    let bytes = spec_bytes(RECIDIVISM);
    let text = String::from_utf8(bytes.clone()).unwrap();
    let (study, _, _) = s
        .engine
        .submit(&bytes, &who("inese.kalnina"))
        .await
        .unwrap();
    let amended = text
        .replacen("\nversion: 1\n", "\nversion: 2\n", 1)
        .replacen(
            "authorised_persons:\n",
            "authorised_persons:\n  - name: Eve Newcomer\n    login: eve.newcomer\n    role: service_researcher\n    access: [anonymised_data]\n  - name: Ansis Jaunais\n    login: ansis.jaunais\n    role: approver\n    access: [anonymised_data]\n",
            1,
        );
    assert_ne!(amended, text, "the test's edit applies");
    s.engine
        .amend(&study, amended.as_bytes(), &who("inese.kalnina"))
        .await
        .unwrap();
    let v3 = amended.replacen("\nversion: 2\n", "\nversion: 3\n", 1);
    let e = s
        .engine
        .amend(&study, v3.as_bytes(), &who("eve.newcomer"))
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Forbidden(_)), "{e}");
    let e = s
        .engine
        .terminate(&study, &who("ansis.jaunais"))
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Forbidden(_)), "{e}");
    // Nor does the amendment's own approver approve it.
    let e = s
        .engine
        .approve(&study, &who("ansis.jaunais"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Forbidden(_)), "{e}");
    // The first version's approver may.
    s.engine
        .terminate(&study, &who("gatis.krumins"))
        .await
        .unwrap();
}

/// A running study whose plan no longer compiles to its approved shape (the compiler changed)
/// can still be ended, with its destruction (MK403 p.26): the steps kept are read from the plan
/// as approved and stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_study_whose_plan_drifted_can_still_be_terminated() {
    let db = sqlite();
    let s = engine(&db.url, date(2026, 8, 3), 2).await;
    let study = launch(&s, &spec_bytes(RECIDIVISM)).await;
    s.engine
        .store
        .execute_raw_for_tests("UPDATE study_versions SET plan_json = REPLACE(plan_json, '\"quality-check\"', '\"quality-control\"')")
        .await
        .unwrap();
    // A fresh engine, so nothing is cached from before.
    let fresh = studyflow_runtime::Engine::new(
        s.engine.store.clone(),
        s.clock.clone(),
        Arc::new(studyflow_calendar::Calendar::latvia()),
        Arc::new(PlaceholderDataPlane { cohort_size: 2 }),
        studyflow_runtime::Options::default(),
    );
    assert!(matches!(
        fresh.load(&study, 1).await,
        Err(EngineError::Refused(_))
    ));
    fresh
        .terminate(&study, &who("gatis.krumins"))
        .await
        .unwrap();
    // And the destruction runs (nothing else of the drifted plan does): the keys go.
    put_study_keys(&fresh.store, &study, 6).await;
    let fresh = Arc::new(fresh);
    Worker::new(fresh.clone(), "w".into())
        .run_until_idle()
        .await
        .unwrap();
    let runs = fresh.store.runs(&study).await.unwrap();
    let destroy = runs
        .iter()
        .find(|r| r.step == "destroy-identifying")
        .unwrap();
    assert_eq!(destroy.state, RunState::Done, "{:?}", destroy.last_error);
    assert_eq!(fresh.store.study_keys(&study).await.unwrap(), None);
}

/// A login is one person however the spec writes their name: the submitter cannot approve
/// under a second entry of the spec that binds their login as an approver (MK403 p.3), and a
/// person another entry names but whose login is not theirs is not them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_not_the_name_is_the_person() {
    let db = sqlite();
    let s = engine(&db.url, date(2026, 8, 3), 0).await;
    let text = String::from_utf8(spec_bytes(RECIDIVISM)).unwrap();
    // `ņ` decomposed: `n` and a combining cedilla; the same person, the same login.
    let spec = text.replacen(
        "authorised_persons:\n",
        "authorised_persons:\n  - name: Inese Kalnin\u{327}a\n    login: inese.kalnina\n    role: approver\n    access: [anonymised_data]\n",
        1,
    );
    assert_ne!(spec, text, "the test's edit applies");
    let (study, _, _) = s
        .engine
        .submit(spec.as_bytes(), &who("inese.kalnina"))
        .await
        .unwrap();
    let e = s
        .engine
        .approve(&study, &who("inese.kalnina"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::Forbidden(m) if m.contains("cannot also approve")),
        "{e}"
    );
    // A login that looks like the approver's is not the approver's.
    for look_alike in ["gatis.krumins ", "Gatis.Krumins", "gatis.krūmiņš"] {
        let e = s
            .engine
            .approve(&study, &who(look_alike), None)
            .await
            .unwrap_err();
        assert!(matches!(&e, EngineError::Forbidden(_)), "{look_alike}: {e}");
    }
    s.engine
        .approve(&study, &who("gatis.krumins"), None)
        .await
        .unwrap();
}
