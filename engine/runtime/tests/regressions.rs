//! Regressions found in review: each test failed before its fix.

mod support;

use std::sync::Arc;

use jiff::civil::date;
use studyflow_calendar::Calendar;
use studyflow_runtime::dataplane::BoxFuture;
use studyflow_runtime::{
    ContractInput, DataPlane, Engine, EngineError, ManualClock, Options, PlaceholderDataPlane,
    StepContext, StepError, StepOutput, Worker,
};
use studyflow_store::{Activation, Claimed, Expect, Finish, NewRun, RunState, Store, Submission};
use support::*;

/// Two workers finishing a study's last two runs at once: one of them completes the study
/// (PostgreSQL; SQLite serialises writers anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_last_finishes_complete_the_study() {
    let Some(db) = postgres().await else { return };
    let store = Store::open(&db.url).await.unwrap();
    for i in 0..25 {
        let study = format!("race-{i}");
        let sub = Submission {
            study: study.clone(),
            version: 1,
            spec: vec![],
            plan_hash: "h".into(),
            plan_json: "{}".into(),
            submitted_by: "a".into(),
            at: 1,
        };
        store.submit(&sub, &[]).await.unwrap();
        store.approve(&study, 1, "h", "b", 2, &[]).await.unwrap();
        let run = |k: &str| NewRun {
            key: format!("{study}/{k}"),
            study: study.clone(),
            version: 1,
            step: k.into(),
            subject: String::new(),
            kind: "x".into(),
            actor: "engine".into(),
            mode: studyflow_store::TaskMode::Engine,
            not_before: None,
            timer_rule: None,
            calendar_version: None,
            due_at: None,
            deadline_rule: None,
            deadline_point: None,
            max_attempts: 5,
            done_by: None,
            deps: vec![],
        };
        let runs = [run("a"), run("b")];
        store
            .activate(&Activation {
                study: &study,
                version: 1,
                from_states: &[studyflow_store::StudyState::Approved],
                replace_unstarted: false,
                runs: &runs,
                now: 3,
                audit: &[],
            })
            .await
            .unwrap();
        let c1 = store.claim("w1", 4, 1_000_000, 1).await.unwrap();
        let c2 = store.claim("w2", 4, 1_000_000, 1).await.unwrap();
        let finish = |c: &Claimed| Finish {
            run: c.id,
            expect: Expect::Running { fence: c.fence },
            effects: Vec::new(),
            output: "{}".into(),
            completed_by: "w".into(),
            now: 5,
            new_runs: vec![],
            new_edges: vec![],
            audit: vec![],
        };
        let (f1, f2) = (finish(&c1[0]), finish(&c2[0]));
        let (s1, s2) = (store.clone(), store.clone());
        let (a, b) = tokio::join!(
            tokio::spawn(async move { s1.finish(&f1).await }),
            tokio::spawn(async move { s2.finish(&f2).await })
        );
        assert!(a.unwrap().unwrap() && b.unwrap().unwrap());
        assert_eq!(
            store.study(&study).await.unwrap().unwrap().state,
            studyflow_store::StudyState::Completed,
            "{study}"
        );
    }
}

/// A cohort whose subjects are still supervised (no end date yet).
struct StillSupervised;
impl DataPlane for StillSupervised {
    fn execute<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let mut out = PlaceholderDataPlane { cohort_size: 3 }.execute(ctx).await?;
            for s in &mut out.subjects {
                s.end = None;
            }
            Ok(out)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_without_an_end_date_get_the_start_waves_and_the_study_goes_on() {
    let db = sqlite();
    let clock = Arc::new(ManualClock::at_date(date(2026, 8, 3)));
    let engine = Arc::new(Engine::new(
        Store::open(&db.url).await.unwrap(),
        clock.clone(),
        Arc::new(Calendar::latvia()),
        Arc::new(StillSupervised),
        Options::default(),
    ));
    let s = Setup {
        engine: engine.clone(),
        clock,
    };
    let bytes = spec_bytes("recidivism-2026-cohort");
    let study = launch(&s, &bytes).await;
    drive(&s, &study, &studyflow_spec::check(&bytes).spec.unwrap()).await;
    let runs = engine.store.runs(&study).await.unwrap();
    assert!(runs.iter().all(|r| r.state == RunState::Done));
    assert_eq!(
        runs.iter()
            .filter(|r| r.step == "follow-up-1y-after-start-join")
            .count(),
        3
    );
    assert_eq!(
        runs.iter()
            .filter(|r| r.step.contains("after-end") && !r.subject.is_empty())
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_workers_keep_dying_fails_after_the_maximum() {
    let db = sqlite();
    let s = engine(&db.url, date(2026, 8, 3), 2).await;
    launch(&s, &spec_bytes("recidivism-2026-cohort")).await;
    let store = &s.engine.store;
    let mut now = s.engine.now();
    let mut id = None;
    // Claimed five times, never finished (each worker "dies" holding it).
    for _ in 0..5 {
        let c = store.claim("dying", now, now + 1, 1).await.unwrap();
        assert_eq!(c.len(), 1);
        id = Some(c[0].id);
        now += 10;
    }
    let again = store.claim("next", now, now + 1, 1).await.unwrap();
    assert!(again.iter().all(|c| Some(c.id) != id));
    let run = store.run(id.unwrap()).await.unwrap().unwrap();
    assert_eq!(run.state, RunState::Failed);
    assert_eq!(run.attempts, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymised_data_is_deleted_on_its_date_not_before() {
    let db = sqlite();
    let s = engine(&db.url, date(2026, 7, 1), 0).await;
    let bytes = spec_bytes("probation-client-survey");
    let study = launch(&s, &bytes).await;
    drive(&s, &study, &studyflow_spec::check(&bytes).spec.unwrap()).await;
    let rows = s.engine.store.audit_rows(0, 100_000).await.unwrap();
    let when = |object: &str| {
        rows.iter()
            .filter(|r| {
                r.event.object == object
                    && (r.event.action == "step.done" || r.event.action == "task.completed")
            })
            .map(|r| {
                studyflow_runtime::clock::riga_date(studyflow_runtime::clock::from_micros(
                    r.event.at,
                ))
            })
            .max()
            .unwrap_or_else(|| panic!("{object} never done"))
    };
    let deleted = when(&format!("{study}/anonymised-retention"));
    assert!(deleted >= date(2032, 12, 31), "deleted on {deleted}");
    assert!(when(&format!("{study}/external-copy-deletion")) >= date(2027, 12, 31));
    assert!(deleted > when(&format!("{study}/transfer")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publication_waits_ten_working_days_after_the_prison_notice() {
    let db = sqlite();
    let s = engine(&db.url, date(2026, 5, 4), 0).await;
    let bytes = spec_bytes("resocialisation-programmes-university");
    let study = launch(&s, &bytes).await;
    let w = Worker::new(s.engine.clone(), "w".into());
    let complete = |step: &'static str, who: studyflow_runtime::Identity| {
        let e = s.engine.clone();
        async move {
            let t = e
                .tasks(None)
                .await
                .unwrap()
                .into_iter()
                .find(|t| t.step == step)
                .unwrap_or_else(|| panic!("{step} not open"));
            e.complete_task(t.id, &who, None).await
        }
    };
    let spec = studyflow_spec::check(&bytes).spec.unwrap();
    let people = people(&spec);
    // Everything up to the notice, tasks done as they open.
    'outer: for _ in 0..50 {
        w.run_until_idle().await.unwrap();
        let open = s.engine.tasks(None).await.unwrap();
        if open.is_empty() {
            // Nothing to do until a phase starts (MK403 p.3.4): its day comes.
            let next = s.engine.store.next_timer().await.unwrap().expect("a timer");
            s.clock.set(studyflow_runtime::clock::from_micros(next));
            continue;
        }
        for t in open {
            if t.step == "prison-administration-notice" {
                break 'outer;
            }
            let loaded = s.engine.load(&t.study, t.version).await.unwrap();
            let step = loaded.plan.step(&t.step).unwrap();
            let who = people
                .iter()
                .find(|p| studyflow_runtime::authorise(&loaded.spec, step, p).is_ok())
                .unwrap();
            s.engine.complete_task(t.id, who, None).await.unwrap();
        }
    }
    // The notice is given on 10 March 2028, three working days before publication on the 15th.
    s.clock
        .set(studyflow_runtime::clock::riga_midnight(date(2028, 3, 10)));
    complete("prison-administration-notice", who("inese.kalnina"))
        .await
        .unwrap();
    s.clock
        .set(studyflow_runtime::clock::riga_midnight(date(2028, 3, 15)));
    let e = complete("publication", who("ieva.berzina"))
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Refused(_)), "{e}");
    assert!(e.to_string().contains("MK403 p.8"), "{e}");
    // Published ten working days after the notice: allowed.
    s.clock
        .set(studyflow_runtime::clock::riga_midnight(date(2028, 3, 24)));
    complete("publication", who("ieva.berzina")).await.unwrap();
    let publication = s
        .engine
        .store
        .runs(&study)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.step == "publication")
        .unwrap();
    assert_eq!(publication.state, RunState::Done);
}

/// A body that fails for good until its input is fixed.
struct BadInputUntilFixed(Arc<std::sync::atomic::AtomicBool>);
impl DataPlane for BadInputUntilFixed {
    fn execute<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(async move {
            if ctx.step.id == "acquire-service-is"
                && !self.0.load(std::sync::atomic::Ordering::SeqCst)
            {
                return Err(StepError::new(
                    "the extraction has a column named twice",
                    false,
                ));
            }
            PlaceholderDataPlane { cohort_size: 2 }.execute(ctx).await
        })
    }
}

/// A step failed on bad input goes on once the input is fixed, by the operator's audited retry
/// — not only by an amendment; a retry of nothing, of an unknown step or of a person's task is
/// refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_failed_on_bad_input_is_retried_by_the_operator() {
    for db in databases().await {
        let fixed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clock = Arc::new(ManualClock::at_date(date(2026, 8, 3)));
        let engine = Arc::new(Engine::new(
            Store::open(&db.url).await.unwrap(),
            clock.clone(),
            Arc::new(Calendar::latvia()),
            Arc::new(BadInputUntilFixed(fixed.clone())),
            Options::default(),
        ));
        let s = Setup {
            engine: engine.clone(),
            clock,
        };
        let bytes = spec_bytes("recidivism-2026-cohort");
        let study = launch(&s, &bytes).await;
        Worker::new(engine.clone(), "w".into())
            .run_until_idle()
            .await
            .unwrap();
        let state = |runs: &[studyflow_store::RunRow]| {
            runs.iter()
                .find(|r| r.step == "acquire-service-is")
                .map(|r| r.state)
        };
        assert_eq!(
            state(&engine.store.runs(&study).await.unwrap()),
            Some(RunState::Failed),
            "{}",
            db.label
        );
        assert!(matches!(
            engine.retry(&study, "acquire-service-is", "").await,
            Err(EngineError::Forbidden(_))
        ));
        assert!(matches!(
            engine.retry(&study, "no-such-step", "operator:ops").await,
            Err(EngineError::NotFound(_))
        ));
        assert!(matches!(
            engine.retry(&study, "analysis", "operator:ops").await,
            Err(EngineError::Refused(_))
        ));
        fixed.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            engine
                .retry(&study, "acquire-service-is", "operator:ops")
                .await
                .unwrap(),
            1
        );
        // Retrying again: nothing failed any more.
        assert!(matches!(
            engine
                .retry(&study, "acquire-service-is", "operator:ops")
                .await,
            Err(EngineError::Refused(_))
        ));
        drive(&s, &study, &studyflow_spec::check(&bytes).spec.unwrap()).await;
        let runs = engine.store.runs(&study).await.unwrap();
        assert!(
            runs.iter().all(|r| r.state == RunState::Done),
            "{}",
            db.label
        );
        let audit = engine.store.audit_rows(0, 1_000_000).await.unwrap();
        let retried: Vec<_> = audit
            .iter()
            .filter(|a| a.event.action == "step.retried")
            .collect();
        assert_eq!(retried.len(), 1);
        assert_eq!(retried[0].event.actor, "operator:ops");
        engine.store.close().await;
    }
}

/// `contract` records the contract the approved spec states, not another (MK403 p.5): not
/// before it is concluded, under its number and date; and the declarations by the rule SF134
/// checks in the spec (p.30.2, p.33.1) — an authorised person's too, a name given twice once,
/// nobody outside the team.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_is_the_approved_one_with_every_declaration() {
    let db = sqlite();
    // The university study states contract VPD-2026/PL-14, concluded on 2026-05-27.
    let s = engine(&db.url, date(2026, 5, 26), 0).await;
    let bytes = spec_bytes("resocialisation-programmes-university");
    let spec = studyflow_spec::check(&bytes).spec.expect("typed");
    let (study, _, hash) = s
        .engine
        .submit(&bytes, &service_researcher(&spec))
        .await
        .expect("submit");
    let approver = approver(&spec);
    s.engine
        .approve(&study, &approver, Some(&hash))
        .await
        .expect("approve");
    let team: Vec<String> = spec
        .external
        .as_ref()
        .unwrap()
        .team()
        .iter()
        .filter(|m| m.needs_declaration().is_some())
        .map(|m| m.name.clone())
        .collect();
    assert_eq!(
        team.len(),
        3,
        "three authorised persons, none processing personal data"
    );
    let input = |number: &str, on: jiff::civil::Date, signatories: Vec<String>| ContractInput {
        number: number.into(),
        concluded_on: on,
        signatories,
        measures_checked: true,
    };
    let refused = |r: Result<(), EngineError>| match r {
        Err(EngineError::Refused(m)) => m,
        other => panic!("not refused: {other:?}"),
    };
    let stated = date(2026, 5, 27);
    // The day before the contract's date: it does not exist yet.
    let m = refused(
        s.engine
            .contract(
                &study,
                &approver,
                &input("VPD-2026/PL-14", stated, team.clone()),
            )
            .await,
    );
    assert!(
        m.contains("is not concluded yet: today is 2026-05-26"),
        "{m}"
    );
    s.clock.set(studyflow_runtime::clock::riga_midnight(stated));
    // No number at all.
    let m = refused(
        s.engine
            .contract(&study, &approver, &input("  ", stated, team.clone()))
            .await,
    );
    assert!(m.contains("has a number"), "{m}");
    // Another number or another date than the approved spec's.
    let m = refused(
        s.engine
            .contract(
                &study,
                &approver,
                &input("VPD-2026/PL-15", stated, team.clone()),
            )
            .await,
    );
    assert!(m.contains("not the one in the approved spec"), "{m}");
    let m = refused(
        s.engine
            .contract(
                &study,
                &approver,
                &input("VPD-2026/PL-14", date(2026, 5, 20), team.clone()),
            )
            .await,
    );
    assert!(
        m.contains("concluded on 2026-05-27 by the approved spec"),
        "{m}"
    );
    // An authorised person without a declaration, though nobody processes personal data.
    let m = refused(
        s.engine
            .contract(
                &study,
                &approver,
                &input("VPD-2026/PL-14", stated, team[..2].to_vec()),
            )
            .await,
    );
    assert!(
        m.contains(&team[2]) && m.contains("authorised person"),
        "{m}"
    );
    // Someone outside the team.
    let mut stranger = team.clone();
    stranger.push("Nobody Known".into());
    let m = refused(
        s.engine
            .contract(
                &study,
                &approver,
                &input("VPD-2026/PL-14", stated, stranger),
            )
            .await,
    );
    assert!(
        m.contains("`Nobody Known` is not in the external researcher's team"),
        "{m}"
    );
    assert!(
        s.engine.store.contract(&study).await.unwrap().is_none(),
        "nothing recorded"
    );
    // The approved contract, one name twice: one declaration each.
    let mut twice = team.clone();
    twice.push(format!(" {} ", team[0]));
    s.engine
        .contract(&study, &approver, &input("VPD-2026/PL-14", stated, twice))
        .await
        .expect("the approved contract");
    let row = s.engine.store.contract(&study).await.unwrap().unwrap();
    let declarations: Vec<String> = serde_json::from_str(&row.declarations).unwrap();
    let mut expected = team.clone();
    expected.sort();
    assert_eq!(declarations, expected);
    // The audit counts the declarations recorded, not the names given.
    let recorded = s
        .engine
        .store
        .audit_rows(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.event.action == "study.contracted")
        .expect("audited");
    let detail: serde_json::Value = serde_json::from_str(&recorded.event.detail).unwrap();
    assert_eq!(detail["declarations"], serde_json::json!(3));
}
