//! Benchmark: the API's latency for the status of a study with about 100,000 step runs, one
//! client after another and 50 side by side, on SQLite, over loopback HTTP with a personal
//! token — and what a sign-in costs; then the pages of that study (its page, the first and the
//! last of its steps, its audit, the tasks) in a browser session: time and HTML size (issue #13:
//! under 50 ms and 200 KB). Prints numbers; asserts nothing.
//!
//! ```sh
//! cargo run --profile production -p studyflow-server --example api_bench -- [--subjects N] [--postgres] [--keep]
//! ```

use std::sync::Arc;
use std::time::Instant;

use jiff::civil::date;
use studyflow_calendar::Calendar;
use studyflow_identity::{Accounts, Identity, Policy, totp};
use studyflow_runtime::{Clock, Engine, ManualClock, Options, PlaceholderDataPlane, Worker};
use studyflow_server::App;
use studyflow_server::auth::Limiter;
use studyflow_store::Store;

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../specs/recidivism-2026-cohort.yaml"
);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{label}: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms[ms.len() - 1]
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let subjects: usize = args
        .iter()
        .position(|a| a == "--subjects")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(4_170);
    let dir = std::env::temp_dir().join(format!("sf-api-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = Store::open(dir.join("db").to_str().expect("path"))
        .await
        .expect("store");
    let clock = Arc::new(ManualClock::at_date(date(2026, 8, 3)));
    let engine = Arc::new(Engine::new(
        store.clone(),
        clock.clone(),
        Arc::new(Calendar::latvia()),
        Arc::new(PlaceholderDataPlane {
            cohort_size: subjects,
        }),
        Options::default(),
    ));
    // The study, run to its follow-ups: a run per subject and per-subject step.
    let researcher = Identity::for_tests("inese.kalnina");
    let bytes = std::fs::read(SPEC).expect("spec");
    let (study, _, hash) = engine.submit(&bytes, &researcher).await.expect("submit");
    engine
        .approve(&study, &Identity::for_tests("gatis.krumins"), Some(&hash))
        .await
        .expect("approve");
    engine.start(&study, &researcher).await.expect("start");
    // Its first phase begins: the extraction runs, then the quality check waits for a person.
    clock.set(studyflow_runtime::clock::riga_midnight(date(2027, 1, 4)));
    let w = Worker::new(engine.clone(), "setup".into());
    let t = Instant::now();
    w.run_until_idle().await.expect("worker");
    let qc = engine.tasks(None).await.expect("tasks");
    engine
        .complete_task(qc[0].id, &researcher, None)
        .await
        .expect("qc");
    w.run_until_idle().await.expect("expand");
    let runs: usize = engine
        .status(&study)
        .await
        .expect("status")
        .expect("study")
        .steps
        .iter()
        .map(|s| s.runs)
        .sum();
    println!(
        "setup: {runs} step runs of {subjects} subjects in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // What one status costs when it is computed (the server's cache aside).
    let mut computed = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        engine.status(&study).await.expect("status");
        computed.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    summary("status computed in the engine, uncached", computed);

    // A person's token, signed in for real.
    let accounts = Accounts::new(store.clone(), Policy::default());
    let now = engine.now();
    let account = accounts
        .add(
            "inese.kalnina",
            "Inese Kalniņa",
            "a long enough passphrase",
            false,
            "bench",
            now,
        )
        .await
        .expect("account");
    let code = totp::code_at(&account.totp_secret, totp::step_of(clock.now().as_second()));
    let t = Instant::now();
    let who = accounts
        .sign_in(
            "inese.kalnina",
            "a long enough passphrase",
            &code,
            "bench",
            now,
        )
        .await
        .expect("sign in");
    println!(
        "sign-in (Argon2id and TOTP, audited): {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let (token, _) = accounts
        .issue_token(&who, "bench", None, now)
        .await
        .expect("token");
    // A browser session of the same person, for the pages.
    let (session, _) = accounts
        .open_session(&who, "bench", now)
        .await
        .expect("session");
    let app = Arc::new(App {
        engine: Engine::new(
            store.clone(),
            clock.clone(),
            Arc::new(Calendar::latvia()),
            Arc::new(PlaceholderDataPlane { cohort_size: 0 }),
            studyflow_server::engine_options(),
        ),
        accounts,
        limiter: Limiter::new(store.clone(), 20, 600_000_000),
        master: None,
        trusted_proxies: Vec::new(),
        oidc: None,
        work: None,
        witnesses: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(studyflow_server::serve(
        app,
        listener,
        std::future::pending(),
    ));
    let url = format!("{base}/api/v1/studies/{study}");
    let http = reqwest::Client::new();
    let get = |http: reqwest::Client, url: String, token: String| async move {
        let t = Instant::now();
        let r = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        assert!(r.status().is_success(), "{}", r.status());
        let _ = r.bytes().await.expect("body");
        t.elapsed().as_secs_f64() * 1000.0
    };
    // Warm up, then one client after another.
    for _ in 0..5 {
        get(http.clone(), url.clone(), token.expose().to_owned()).await;
    }
    let mut ms = Vec::new();
    for _ in 0..200 {
        ms.push(get(http.clone(), url.clone(), token.expose().to_owned()).await);
    }
    summary("GET study status, one client", ms);
    // 50 clients side by side for 10 seconds — five of the server's 2-second status windows, so
    // the status is computed anew while they ask.
    let t = Instant::now();
    let until = t + std::time::Duration::from_secs(10);
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let (http, url, token) = (
                reqwest::Client::new(),
                url.clone(),
                token.expose().to_owned(),
            );
            tokio::spawn(async move {
                let mut v = Vec::new();
                while Instant::now() < until {
                    v.push(get(http.clone(), url.clone(), token.clone()).await);
                }
                v
            })
        })
        .collect();
    let mut ms = Vec::new();
    for h in handles {
        ms.extend(h.await.expect("client"));
    }
    let secs = t.elapsed().as_secs_f64();
    println!("50 clients: {:.0} requests/s", ms.len() as f64 / secs);
    summary("GET study status, 50 clients", ms);
    // The pages, as a browser asks for them: a session's cookie, one request after another.
    let cookie = format!("{}={}", studyflow_server::auth::COOKIE, session.expose());
    let pages = [
        format!("/studies/{study}"),
        format!("/studies/{study}?page=2"),
        format!("/studies/{study}?page=9999"),
        format!("/studies/{study}/audit"),
        "/studies".to_owned(),
        "/tasks".to_owned(),
    ];
    for page in &pages {
        let mut ms = Vec::new();
        let mut size = 0;
        for i in 0..60 {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{page}"))
                .header("cookie", &cookie)
                .send()
                .await
                .expect("send");
            assert!(r.status().is_success(), "{page}: {}", r.status());
            size = r.bytes().await.expect("body").len();
            // The first few warm the caches.
            if i >= 10 {
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        summary(&format!("page {page} ({} KB of HTML)", size / 1024), ms);
    }
    if args.iter().any(|a| a == "--keep") {
        println!("database kept: {}", dir.join("db").display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
