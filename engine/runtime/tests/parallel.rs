//! Four workers on PostgreSQL, each with its own connection pool as if on its own machine,
//! over a study with 1,008 per-subject steps: each step runs exactly once.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use jiff::civil::date;
use studyflow_calendar::Calendar;
use studyflow_runtime::{Engine, Options, PlaceholderDataPlane, Worker};
use studyflow_store::{RunState, Store, Verification};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_postgres_workers_run_each_step_exactly_once() {
    let Some(db) = postgres().await else { return };
    let cohort = 42; // 42 subjects × 24 per-subject steps = 1,008
    let s = engine(&db.url, date(2026, 8, 3), cohort).await;
    let study = launch(&s, &spec_bytes("recidivism-2026-cohort")).await;
    let mut workers = Vec::new();
    for n in 0..4 {
        let e = Engine::new(
            Store::open(&db.url).await.unwrap(),
            s.clock.clone(),
            Arc::new(Calendar::latvia()),
            Arc::new(PlaceholderDataPlane {
                cohort_size: cohort,
            }),
            Options {
                batch: 8,
                ..Options::default()
            },
        );
        workers.push(Arc::new(Worker::new(Arc::new(e), format!("pg-worker-{n}"))));
    }
    let mut executed = [0usize; 4];
    for _ in 0..10_000 {
        let handles: Vec<_> = workers
            .iter()
            .cloned()
            .map(|w| tokio::spawn(async move { w.run_until_idle().await }))
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            executed[i] += h.await.unwrap().unwrap();
        }
        let tasks = s.engine.tasks(None).await.unwrap();
        for t in &tasks {
            let who = if t.step == "quality-check" {
                &who("inese.kalnina")
            } else {
                &who("martins.ozols")
            };
            s.engine.complete_task(t.id, who, None).await.unwrap();
        }
        if !tasks.is_empty() {
            continue;
        }
        if s.engine.store.study(&study).await.unwrap().unwrap().state
            == studyflow_store::StudyState::Completed
        {
            break;
        }
        let next = s.engine.store.next_timer().await.unwrap().expect("a timer");
        s.clock.set(studyflow_runtime::clock::from_micros(next));
    }
    let runs = s.engine.store.runs(&study).await.unwrap();
    let per_subject = runs.iter().filter(|r| !r.subject.is_empty()).count();
    // 42 subjects × 6 waves × 4 steps = 1,008, less the waves that would fall due after the
    // study's follow-up cut-off (not requested: the subject is right-censored there).
    let spec = studyflow_spec::check(&spec_bytes("recidivism-2026-cohort"))
        .spec
        .unwrap();
    let cut_off = studyflow_plan::stage_deadline(&spec, studyflow_spec::model::Stage::FollowUp);
    let waves: usize = PlaceholderDataPlane {
        cohort_size: cohort,
    }
    .cohort(&study, &spec)
    .iter()
    .map(|c| {
        let anchor = studyflow_dataplane::followup::Anchor {
            start: c.start,
            end: c.end,
        };
        let all = studyflow_spec::model::WAVES
            .iter()
            .map(|w| (w.from_end, w.years));
        studyflow_dataplane::followup::expected_waves(all, &anchor, cut_off).0
    })
    .sum();
    assert!(
        waves < 6 * cohort,
        "some waves fall after the cut-off: {waves}"
    );
    assert_eq!(per_subject, 4 * waves);
    assert!(runs.iter().all(|r| r.state == RunState::Done));
    // Exactly once: one claim and one `step.done` per engine run.
    s.engine.store.seal_audit().await.unwrap();
    let mut claims: HashMap<String, usize> = HashMap::new();
    let mut done: HashMap<String, usize> = HashMap::new();
    let mut after = 0;
    loop {
        let rows = s.engine.store.audit_rows(after, 10_000).await.unwrap();
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for r in rows {
            match r.event.action.as_str() {
                "step.running" => *claims.entry(r.event.object).or_default() += 1,
                "step.done" => *done.entry(r.event.object).or_default() += 1,
                _ => {}
            }
        }
    }
    for r in runs.iter().filter(|r| !r.human) {
        let o = studyflow_store::run_object(&r.study, &r.step, &r.subject);
        assert_eq!((claims.get(&o), done.get(&o)), (Some(&1), Some(&1)), "{o}");
    }
    assert!(
        executed.iter().filter(|n| **n > 0).count() >= 2,
        "the work was shared: {executed:?}"
    );
    assert!(matches!(
        s.engine.store.verify_audit().await.unwrap(),
        Verification::Intact { .. }
    ));
    eprintln!("four workers executed {executed:?}");
}
