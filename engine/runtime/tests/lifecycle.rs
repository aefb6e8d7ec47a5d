//! The whole lifecycle of each study in `specs/`, on SQLite and on PostgreSQL, with the clock
//! moved through every timer.

mod support;

use studyflow_store::{RunState, Verification};
use support::*;

async fn lifecycle(name: &str, start: jiff::civil::Date, cohort: usize) {
    for db in databases().await {
        let s = engine(&db.url, start, cohort).await;
        let bytes = spec_bytes(name);
        let spec = studyflow_spec::check(&bytes).spec.unwrap();
        let study = launch(&s, &bytes).await;
        // The study's keys, wrapped by the master key.
        let (master, _, wrapped) = put_study_keys(&s.engine.store, &study, 3).await;
        assert!(studyflow_dataplane::vault::StudyKeys::unwrap(&study, &wrapped, &master).is_ok());
        let moves = drive(&s, &study, &spec).await;
        // Destroyed with the study's identifying data (p.26): nothing is left to unwrap.
        assert_eq!(
            s.engine.store.study_keys(&study).await.unwrap(),
            None,
            "{} {name}",
            db.label
        );
        let runs = s.engine.store.runs(&study).await.unwrap();
        let row = s.engine.store.study(&study).await.unwrap().unwrap();
        assert_eq!(
            row.state,
            studyflow_store::StudyState::Completed,
            "{} {name}",
            db.label
        );
        assert!(
            runs.iter().all(|r| r.state == RunState::Done),
            "{} {name}: {:?}",
            db.label,
            runs.iter()
                .filter(|r| r.state != RunState::Done)
                .map(|r| (&r.step, r.state))
                .collect::<Vec<_>>()
        );
        // Every step of the plan ran exactly once per scope.
        let loaded = s.engine.load(&study, 1).await.unwrap();
        // People's notes: sealed on steps with personal data (MK403 p.26), in words elsewhere.
        let mut applied = 0;
        for r in runs.iter().filter(|r| r.human) {
            let step = loaded.plan.step(&r.step).unwrap();
            // The approval and the contract are recorded by their own commands, not as tasks.
            if matches!(
                step.kind,
                studyflow_plan::StepKind::Approval | studyflow_plan::StepKind::ContractGate
            ) {
                continue;
            }
            let output: serde_json::Value =
                serde_json::from_str(r.output.as_deref().unwrap_or("{}")).unwrap();
            // A body that applies what the person supplied (a task, then its body) keeps the
            // person's note: every such task was completed with one, the keys existing then.
            let note = &output["note"];
            if step.task_body() == studyflow_plan::TaskBody::After {
                applied += 1;
                assert!(
                    !note.is_null(),
                    "{} {name} {}: the note is gone: {output}",
                    db.label,
                    r.step
                );
            }
            if note.is_null() {
                continue;
            }
            let personal = step.handles_personal_data();
            assert_eq!(
                (note.get("sealed").is_some(), note.get("plain").is_some()),
                (personal, !personal),
                "{} {name} {}: {note}",
                db.label,
                r.step
            );
        }
        // The survey supplies its consents through such a task.
        if name == "probation-client-survey" {
            assert!(
                applied > 0,
                "{} {name}: no task with a body after it",
                db.label
            );
        }
        for step in loaded.plan.graph.node_weights() {
            let n = runs.iter().filter(|r| r.step == step.id).count();
            let expected = if step.per_subject { cohort } else { 1 };
            assert_eq!(n, expected, "{} {name}: runs of {}", db.label, step.id);
        }
        let mut keys: Vec<&str> = runs.iter().map(|r| r.key.as_str()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), runs.len(), "idempotency keys are unique");
        match s.engine.store.verify_audit().await.unwrap() {
            Verification::Intact { rows, pending, .. } => {
                assert_eq!(pending, 0);
                assert!(
                    rows as usize > runs.len(),
                    "{} {name}: {rows} audit rows",
                    db.label
                );
            }
            broken => panic!("{} {name}: {broken:?}", db.label),
        }
        eprintln!(
            "{} {name}: {} runs, clock moved {moves} times",
            db.label,
            runs.len()
        );
        s.engine.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recidivism_cohort_runs_all_six_waves_over_seven_years() {
    lifecycle("recidivism-2026-cohort", jiff::civil::date(2026, 8, 3), 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_university_study_runs_after_its_contract() {
    lifecycle(
        "resocialisation-programmes-university",
        jiff::civil::date(2026, 5, 4),
        0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survey_with_consented_contact_runs_to_destruction() {
    lifecycle("probation-client-survey", jiff::civil::date(2026, 7, 1), 0).await;
}

/// With a status cache (the server's), a study's status is computed once in its window and
/// shared: an act of the same engine shows at once; the workers' progress on another engine
/// (another process) shows when the window has passed, never later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_status_is_shared_and_an_act_shows_at_once() {
    let db = sqlite();
    let bytes = spec_bytes("recidivism-2026-cohort");
    let spec = studyflow_spec::check(&bytes).spec.unwrap();
    let worker_side = engine(&db.url, jiff::civil::date(2026, 8, 3), 3).await;
    let window = std::time::Duration::from_millis(400);
    let served = studyflow_runtime::Engine::new(
        studyflow_store::Store::open(&db.url).await.unwrap(),
        worker_side.clock.clone(),
        std::sync::Arc::new(studyflow_calendar::Calendar::latvia()),
        std::sync::Arc::new(studyflow_runtime::PlaceholderDataPlane { cohort_size: 3 }),
        studyflow_runtime::Options {
            status_cache: Some(window),
            ..studyflow_runtime::Options::default()
        },
    );
    let (study, _, hash) = served
        .submit(&bytes, &service_researcher(&spec))
        .await
        .unwrap();
    let state = |s: Option<studyflow_runtime::status::StudyStatus>| s.unwrap().state;
    assert_eq!(
        state(served.status(&study).await.unwrap()),
        studyflow_store::StudyState::Submitted
    );
    // An act of the serving engine: current at once, cache or not.
    served
        .approve(&study, &approver(&spec), Some(&hash))
        .await
        .unwrap();
    assert_eq!(
        state(served.status(&study).await.unwrap()),
        studyflow_store::StudyState::Approved
    );
    // An act elsewhere: the cached status holds within its window, then follows.
    worker_side
        .engine
        .start(&study, &service_researcher(&spec))
        .await
        .unwrap();
    assert_eq!(
        state(served.status(&study).await.unwrap()),
        studyflow_store::StudyState::Approved,
        "within the window, the status computed a moment ago"
    );
    tokio::time::sleep(window + std::time::Duration::from_millis(50)).await;
    assert_eq!(
        state(served.status(&study).await.unwrap()),
        studyflow_store::StudyState::Running
    );
    // Fifty readers at once all see the same status.
    tokio::time::sleep(window + std::time::Duration::from_millis(50)).await;
    let served = std::sync::Arc::new(served);
    let all = futures_like_join(
        (0..50)
            .map(|_| {
                let served = served.clone();
                let study = study.clone();
                tokio::spawn(async move { served.status(&study).await.unwrap().unwrap() })
            })
            .collect(),
    )
    .await;
    assert!(all.iter().all(|s| *s == all[0]));
}

async fn futures_like_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
