//! Shared by the engine's tests: a fresh database per test on each backend, an engine on a
//! manual clock, and a driver that runs a study to its end.
#![allow(dead_code)]

use std::sync::Arc;

use jiff::civil::Date;
use studyflow_calendar::Calendar;
use studyflow_runtime::Identity;
use studyflow_runtime::{
    ContractInput, Engine, ManualClock, Options, PlaceholderDataPlane, Worker,
};
use studyflow_store::Store;

/// A fresh database: an SQLite file in a new temporary directory, or a new PostgreSQL schema
/// (dropped with it).
pub struct Db {
    pub url: String,
    pub label: &'static str,
    schema: Option<studyflow_store::testing::PgSchema>,
    dir: Option<std::path::PathBuf>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn unique(label: &str) -> String {
    format!(
        "{label}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        jiff::Timestamp::now().as_microsecond() % 1_000_000
    )
}

pub fn sqlite() -> Db {
    let dir = std::env::temp_dir().join(unique("studyflow-db"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    Db {
        url: dir.join("studyflow.db").to_string_lossy().into_owned(),
        label: "sqlite",
        schema: None,
        dir: Some(dir),
    }
}

/// A fresh PostgreSQL schema, or `None` when no server answers — said loudly, and a failure
/// when `CI` is set.
pub async fn postgres() -> Option<Db> {
    let schema = studyflow_store::testing::postgres_schema("t").await?;
    Some(Db {
        url: schema.url.clone(),
        label: "postgres",
        schema: Some(schema),
        dir: None,
    })
}

/// Every backend that is here: SQLite always, PostgreSQL when it answers.
pub async fn databases() -> Vec<Db> {
    let mut v = vec![sqlite()];
    v.extend(postgres().await);
    v
}

pub fn spec_bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../specs/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("spec")
}

pub struct Setup {
    pub engine: Arc<Engine>,
    pub clock: Arc<ManualClock>,
}

pub async fn engine(url: &str, start: Date, cohort: usize) -> Setup {
    let store = Store::open(url).await.expect("open store");
    let clock = Arc::new(ManualClock::at_date(start));
    let engine = Engine::new(
        store,
        clock.clone(),
        Arc::new(Calendar::latvia()),
        Arc::new(PlaceholderDataPlane {
            cohort_size: cohort,
        }),
        Options::default(),
    );
    Setup {
        engine: Arc::new(engine),
        clock,
    }
}

/// A signed-in person, as the tests make one (the `testing` feature: no password asked).
pub fn who(login: &str) -> Identity {
    Identity::for_tests(login)
}

/// The people of a spec who can do things: the approver, and everyone who may complete tasks,
/// each signed in as the login the spec binds to them.
pub fn people(spec: &studyflow_spec::Spec) -> Vec<Identity> {
    let mut v: Vec<Identity> = spec
        .authorised_persons
        .iter()
        .filter_map(|p| p.login.as_deref().map(who))
        .collect();
    if let Some(e) = &spec.external {
        v.extend(e.team().iter().filter_map(|m| m.login.as_deref().map(who)));
    }
    v
}

/// The spec's first service researcher: who submits and starts it (MK403 p.3, p.21).
pub fn service_researcher(spec: &studyflow_spec::Spec) -> Identity {
    spec.authorised_persons
        .iter()
        .find(|p| p.role == studyflow_spec::model::ServiceRole::ServiceResearcher)
        .and_then(|p| p.login.as_deref().map(who))
        .expect("a service researcher with a login")
}

pub fn approver(spec: &studyflow_spec::Spec) -> Identity {
    spec.authorised_persons
        .iter()
        .find(|p| p.role == studyflow_spec::model::ServiceRole::Approver)
        .and_then(|p| p.login.as_deref().map(who))
        .expect("an approver with a login")
}

/// Submits, approves, contracts (external studies) and starts a spec.
pub async fn launch(s: &Setup, bytes: &[u8]) -> String {
    let spec = studyflow_spec::check(bytes).spec.expect("typed");
    let (study, _, hash) = s
        .engine
        .submit(bytes, &service_researcher(&spec))
        .await
        .expect("submit");
    s.engine
        .approve(&study, &approver(&spec), Some(&hash))
        .await
        .expect("approve");
    if let Some(external) = &spec.external {
        // The contract the spec states, recorded on the day it was concluded (the clock goes
        // there when it lies ahead: none is recorded before it exists), with the declaration of
        // everyone who needs one (the rule SF134 shares).
        let stated = external.contract.as_ref();
        let today =
            studyflow_runtime::clock::riga_date(studyflow_runtime::Clock::now(s.clock.as_ref()));
        let concluded_on = stated.and_then(|c| c.concluded_on).map_or(today, |d| d.0);
        let at = studyflow_runtime::clock::riga_midnight(concluded_on);
        if studyflow_runtime::clock::micros(at) > s.engine.now() {
            s.clock.set(at);
        }
        let signatories = external
            .team()
            .iter()
            .filter(|m| m.needs_declaration().is_some())
            .map(|m| m.name.clone())
            .collect();
        s.engine
            .contract(
                &study,
                &approver(&spec),
                &ContractInput {
                    number: stated
                        .and_then(|c| c.number.clone())
                        .unwrap_or_else(|| "L-2026/17".into()),
                    concluded_on,
                    signatories,
                    measures_checked: true,
                },
            )
            .await
            .expect("contract");
    }
    s.engine
        .start(&study, &service_researcher(&spec))
        .await
        .expect("start");
    // The study's steps wait for their phase (MK403 p.3.4): the clock goes to the start of the
    // acquisition's phase when that lies ahead, so the first steps can run.
    let acquisition = studyflow_plan::stage_start(&spec, studyflow_spec::model::Stage::Acquisition);
    if let Some(start) = acquisition {
        let at = studyflow_runtime::clock::riga_midnight(start);
        if studyflow_runtime::clock::micros(at) > s.engine.now() {
            s.clock.set(at);
        }
    }
    study
}

/// Drives a study to its end: workers until idle, every open task completed by someone allowed
/// to, the clock moved to the next timer; returns how many times the clock moved.
pub async fn drive(s: &Setup, study: &str, spec: &studyflow_spec::Spec) -> usize {
    drive_with(s, study, spec, &mut || {}).await
}

/// As [`drive`], with `world` — the people and institutions outside the engine (a registry's
/// clerk answering the outbox, a researcher putting an export in the inbox) — acting before
/// every pass of the worker.
#[allow(dead_code)]
pub async fn drive_with(
    s: &Setup,
    study: &str,
    spec: &studyflow_spec::Spec,
    world: &mut dyn FnMut(),
) -> usize {
    let worker = Worker::new(s.engine.clone(), "test-worker".into());
    let people = people(spec);
    let mut moves = 0;
    for _ in 0..10_000 {
        world();
        worker.run_until_idle().await.expect("worker");
        let tasks = s.engine.tasks(None).await.expect("tasks");
        let mut did = false;
        for t in tasks.iter().filter(|t| t.study == study) {
            let loaded = s.engine.load(&t.study, t.version).await.expect("load");
            let step = loaded.plan.step(&t.step).expect("step");
            let who = people
                .iter()
                .find(|p| studyflow_runtime::authorise(&loaded.spec, step, p).is_ok())
                .unwrap_or_else(|| panic!("nobody in the spec may complete `{}`", t.step));
            // A note on a step with personal data is sealed under the study's keys (p.26):
            // none without them.
            let personal = step.handles_personal_data();
            let sealable = s
                .engine
                .store
                .note_recipient(study)
                .await
                .expect("note key")
                .is_some();
            let note = (!personal || sealable).then_some("checked");
            s.engine
                .complete_task(t.id, who, note)
                .await
                .expect("complete task");
            did = true;
        }
        if did {
            continue;
        }
        let row = s
            .engine
            .store
            .study(study)
            .await
            .expect("study")
            .expect("exists");
        if row.state == studyflow_store::StudyState::Completed
            || row.state == studyflow_store::StudyState::Terminated
        {
            return moves;
        }
        match s.engine.store.next_timer().await.expect("timer") {
            Some(t) if t > s.engine.now() => {
                s.clock.set(studyflow_runtime::clock::from_micros(t));
                moves += 1;
            }
            other => panic!(
                "study `{study}` is stuck in state {} (next timer {other:?}); not done: {:#?}",
                row.state,
                not_done(s, study).await
            ),
        }
    }
    panic!(
        "study `{study}` did not finish; not done: {:#?}",
        not_done(s, study).await
    );
}

/// The first runs of a study that are not done, with their last errors.
async fn not_done(s: &Setup, study: &str) -> Vec<String> {
    s.engine
        .store
        .runs(study)
        .await
        .expect("runs")
        .into_iter()
        .filter(|r| r.state != studyflow_store::RunState::Done)
        .map(|r| format!("{} {:?} {:?}", r.step, r.state, r.last_error))
        .take(10)
        .collect()
}

/// Makes and stores a study's keys, wrapped by a master key of `seed` bytes, as the data plane
/// does when its first data arrives (with the public key its task notes are sealed to).
#[allow(dead_code)]
pub async fn put_study_keys(
    store: &studyflow_store::Store,
    study: &str,
    seed: u8,
) -> (
    studyflow_dataplane::vault::MasterKey,
    studyflow_dataplane::vault::StudyKeys,
    Vec<u8>,
) {
    let master = studyflow_dataplane::vault::MasterKey::from_bytes([seed; 32]);
    let keys = studyflow_dataplane::vault::StudyKeys::generate(study);
    let wrapped = store
        .put_study_keys(
            study,
            &keys.wrap(&master),
            &keys.note_recipient().unwrap(),
            0,
        )
        .await
        .expect("study keys");
    (master, keys, wrapped)
}
