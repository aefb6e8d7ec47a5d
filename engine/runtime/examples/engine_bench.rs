//! Benchmark: step transitions per second for a study with 10,008 per-subject steps (417
//! subjects × 24), on SQLite and on PostgreSQL with 1 and 4 workers, next to the raw rate of
//! single-row insert-and-commit transactions on the same database in the same run.
//!
//! ```sh
//! cargo run --profile production -p studyflow-runtime --example engine_bench -- [--subjects N] [--skip-postgres]
//! ```
//!
//! A transition is a change of a run's state (pending → ready, ready → running, running →
//! done), counted from the audit, which records each one.

use std::sync::Arc;
use std::time::Instant;

use jiff::civil::date;
use studyflow_calendar::Calendar;
use studyflow_runtime::clock::riga_midnight;
use studyflow_runtime::{Engine, ManualClock, Options, PlaceholderDataPlane, Worker};
use studyflow_store::{Store, Verification};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../specs/recidivism-2026-cohort.yaml"
);

async fn audit_rows(store: &Store) -> i64 {
    store.seal_audit().await.expect("seal");
    match store.verify_audit().await.expect("verify") {
        Verification::Intact { rows, .. } => rows,
        b => panic!("{b:?}"),
    }
}

async fn engine_on(url: &str, clock: Arc<ManualClock>, subjects: usize) -> Arc<Engine> {
    Arc::new(Engine::new(
        Store::open(url).await.expect("open"),
        clock,
        Arc::new(Calendar::latvia()),
        Arc::new(PlaceholderDataPlane {
            cohort_size: subjects,
        }),
        Options::default(),
    ))
}

/// Runs one measurement: returns (per-subject runs, transitions, seconds, expansion seconds).
async fn measure(url: &str, workers: usize, subjects: usize) -> (usize, i64, f64, f64) {
    let clock = Arc::new(ManualClock::at_date(date(2026, 8, 3)));
    let main = engine_on(url, clock.clone(), subjects).await;
    let bytes = std::fs::read(SPEC).expect("spec");
    let (study, _, hash) = main
        .submit(
            &bytes,
            &studyflow_runtime::Identity::for_tests("inese.kalnina"),
        )
        .await
        .expect("submit");
    main.approve(
        &study,
        &studyflow_runtime::Identity::for_tests("gatis.krumins"),
        Some(&hash),
    )
    .await
    .expect("approve");
    main.start(
        &study,
        &studyflow_runtime::Identity::for_tests("inese.kalnina"),
    )
    .await
    .expect("start");
    let w = Worker::new(main.clone(), "setup".into());
    w.run_until_idle().await.expect("worker");
    let qc = main.tasks(None).await.expect("tasks");
    main.complete_task(
        qc[0].id,
        &studyflow_runtime::Identity::for_tests("inese.kalnina"),
        None,
    )
    .await
    .expect("qc");
    let t = Instant::now();
    w.run_until_idle().await.expect("anonymise and expand");
    let expansion = t.elapsed().as_secs_f64();
    // Every wave due: the per-subject runs are all claimable.
    clock.set(riga_midnight(date(2034, 1, 2)));
    let mut ws = Vec::new();
    for n in 0..workers {
        let e = engine_on(url, clock.clone(), subjects).await;
        ws.push(Arc::new(Worker::new(e, format!("bench-{n}"))));
    }
    let before = audit_rows(&main.store).await;
    let t = Instant::now();
    let handles: Vec<_> = ws
        .iter()
        .cloned()
        .map(|w| tokio::spawn(async move { w.run_until_idle().await }))
        .collect();
    let mut executed = 0;
    for h in handles {
        executed += h.await.expect("join").expect("worker");
    }
    let secs = t.elapsed().as_secs_f64();
    let after = audit_rows(&main.store).await;
    (executed, after - before, secs, expansion)
}

/// `urls`: a fresh database for the raw commits, then one per entry of `worker_counts`.
async fn backend(label: &str, urls: &[String], worker_counts: &[usize], subjects: usize) {
    let raw_url = urls[0].clone();
    let store = Store::open(&raw_url).await.expect("open");
    let n = 3_000;
    let raw = store.raw_commit_benchmark(n, 1).await.expect("raw");
    let raw_rate = n as f64 / raw.as_secs_f64();
    store.close().await;
    println!(
        "{label}: raw single-row insert-and-commit: {raw_rate:.0} commits/s ({n} in {:.2} s)",
        raw.as_secs_f64()
    );
    let mut one = None;
    for (&w, url) in worker_counts.iter().zip(&urls[1..]) {
        let (runs, transitions, secs, expansion) = measure(url, w, subjects).await;
        let rate = transitions as f64 / secs;
        println!(
            "{label}: {w} worker(s): {runs} per-subject runs, {transitions} transitions in {secs:.2} s = {rate:.0} transitions/s ({:.2}× the raw commit rate); cohort expansion {expansion:.2} s",
            rate / raw_rate
        );
        if w == 1 {
            one = Some(rate);
        } else if let Some(one) = one {
            println!("{label}: {w} workers = {:.2}× one worker", rate / one);
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let subjects: usize = args
        .iter()
        .position(|a| a == "--subjects")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(417);
    let skip_pg = args.iter().any(|a| a == "--skip-postgres");
    println!(
        "study: recidivism-2026-cohort, {subjects} subjects × 24 per-subject steps = {} per-subject runs",
        subjects * 24
    );
    let dir = std::env::temp_dir().join(format!("studyflow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sqlite: Vec<String> = (0..2)
        .map(|n| {
            dir.join(format!("bench-{n}.db"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    backend("sqlite", &sqlite, &[1], subjects).await;
    if !skip_pg {
        // Fresh schemas on the test server, dropped at the end.
        let mut schemas = Vec::new();
        for _ in 0..3 {
            schemas.extend(studyflow_store::testing::postgres_schema("bench").await);
        }
        if schemas.len() == 3 {
            let urls: Vec<String> = schemas.iter().map(|s| s.url.clone()).collect();
            backend("postgres", &urls, &[1, 4], subjects).await;
        } else {
            println!("postgres: no server; skipped");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
