//! `studyflow demo`: the whole system in one command, with no configuration. A work folder, a
//! master key and an SQLite store; a synthetic Service IS; the Punishment Register simulated on
//! loopback; the recidivism study from `specs/` submitted, approved and run with the clock moved
//! through every phase and all six follow-up waves; then a summary, `audit verify`, and a scan
//! of every file written for every identifier the generator made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use jiff::civil::date;
use studyflow_calendar::Calendar;
use studyflow_dataplane::connector::Connector;
use studyflow_dataplane::linkage::Subject;
use studyflow_dataplane::registry_plane::{RegistryDataPlane, ServiceIs};
use studyflow_dataplane::vault::MasterKey;
use studyflow_identity::{Accounts, Identity, Policy, Secret, totp};
use studyflow_runtime::clock::{from_micros, riga_date};
use studyflow_runtime::{Clock, Engine, ManualClock, Options, Worker, authorise};
use studyflow_sim::registry::Registries;
use studyflow_sim::{Config, generate_in_chunks};
use studyflow_spec::catalogue::Source;
use studyflow_store::{Store, StudyState, Verification};

use super::Context;
use crate::cli::DemoArgs;
use crate::{EXIT_FINDINGS, EXIT_OK};

const SPEC: &str = include_str!("../../../../specs/recidivism-2026-cohort.yaml");

/// A fresh numbered run folder below `base`.
fn run_folder(base: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(base).with_context(|| format!("cannot create {}", base.display()))?;
    for n in 1.. {
        let dir = base.join(format!("run-{n}"));
        if std::fs::create_dir(&dir).is_ok() {
            return Ok(dir);
        }
    }
    unreachable!("some run number is free")
}

/// Runs every worker until none finds work; the step runs they did.
async fn run_until_idle(workers: &[Arc<Worker>]) -> anyhow::Result<usize> {
    if let [one] = workers {
        return Ok(one.run_until_idle().await?);
    }
    let mut all = tokio::task::JoinSet::new();
    for w in workers {
        let w = w.clone();
        all.spawn(async move { w.run_until_idle().await });
    }
    let mut runs = 0;
    while let Some(done) = all.join_next().await {
        runs += done??;
    }
    Ok(runs)
}

/// The process's peak resident memory in MiB, where the system tells it (Linux).
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// A half year of the study's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Half {
    year: i16,
    second: bool,
}

impl Half {
    fn of(d: jiff::civil::Date) -> Half {
        Half {
            year: d.year(),
            second: d.month() > 6,
        }
    }

    fn first_day(self) -> jiff::civil::Date {
        date(self.year, if self.second { 7 } else { 1 }, 1)
    }

    fn last_day(self) -> jiff::civil::Date {
        if self.second {
            date(self.year, 12, 31)
        } else {
            date(self.year, 6, 30)
        }
    }
}

impl std::fmt::Display for Half {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-H{}", self.year, if self.second { 2 } else { 1 })
    }
}

/// The line of a half year that is over: the study's progress, the wall time and step runs it
/// took, and the spec's phases it falls in.
async fn progress(
    engine: &Engine,
    study: &str,
    spec: &studyflow_spec::Spec,
    half: Half,
    lap: Instant,
    runs: usize,
    ctx: &mut Context<'_>,
) -> anyhow::Result<()> {
    let status = engine
        .status(study)
        .await?
        .context("the demo's study is in the store")?;
    let total: usize = status.steps.iter().map(|s| s.runs).sum();
    let done: usize = status
        .steps
        .iter()
        .map(|s| {
            s.activities
                .get(&studyflow_runtime::status::Activity::Done)
                .copied()
                .unwrap_or(0)
        })
        .sum();
    let phases: Vec<&str> = spec
        .phases
        .iter()
        .flatten()
        .filter(|p| {
            p.start.is_some_and(|s| s.0 <= half.last_day())
                && p.deadline.is_some_and(|d| half.first_day() <= d.0)
        })
        .map(|p| p.id.as_str())
        .collect();
    writeln!(
        ctx.out,
        "  {half}  {}  {:6.1} s {:6} runs {:>6} MiB peak  {}",
        bar(done, total),
        lap.elapsed().as_secs_f64(),
        runs,
        peak_memory().map(|m| m.to_string()).unwrap_or_default(),
        phases.join(", ")
    )?;
    ctx.out.flush()?;
    Ok(())
}

/// A local account for every person the spec binds to a login, each signed in with its
/// password and a code of its second factor at the demo clock's `now`.
async fn demo_people(
    accounts: &Accounts,
    spec: &studyflow_spec::Spec,
    now: i64,
) -> anyhow::Result<Vec<Identity>> {
    let mut people = Vec::new();
    for p in &spec.authorised_persons {
        let login = p
            .login
            .as_deref()
            .with_context(|| format!("{} has no login in the demo's spec", p.name))?;
        let password = Secret::generated_password();
        let account = accounts
            .add(login, &p.name, password.expose(), false, "demo", now)
            .await?;
        let code = totp::code_at(&account.totp_secret, totp::step_of(now / 1_000_000));
        people.push(
            accounts
                .sign_in(login, password.expose(), &code, "demo", now)
                .await?,
        );
    }
    Ok(people)
}

fn bar(done: usize, total: usize) -> String {
    let width = 30;
    let filled = (done * width)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled),
        ".".repeat(width - filled)
    )
}

pub fn run(args: &DemoArgs, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(demo(args, ctx))
}

async fn demo(args: &DemoArgs, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let started = Instant::now();
    let dir = run_folder(&args.dir)?;
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    writeln!(ctx.out, "studyflow demo in {}", dir.display())?;
    let master =
        MasterKey::create_file(&dir.join("master.key")).context("cannot create the master key")?;
    let db = dir.join("studyflow.db");
    let url = match &args.database {
        Some(url) => url.clone(),
        None => db.to_str().unwrap_or("studyflow.db").to_owned(),
    };
    // The audit signed as an installation signs it (issue #12): the key beside the master
    // key, each checkpoint also appended to a log outside the database.
    let audit_signer = studyflow_store::tlog::AuditSigner::generate("studyflow-demo/audit")?;
    audit_signer
        .write_new(&dir.join("audit.key"))
        .context("cannot create the audit key")?;
    let audit_trust = studyflow_store::AuditTrust {
        verifier: Some(audit_signer.verifier()),
        log: Some(dir.join("audit.checkpoints")),
        witnesses: Vec::new(),
        quorum: None,
    };
    let store = Store::open(&url)
        .await?
        .with_audit_signing(studyflow_store::AuditSigning {
            signer: audit_signer,
            log: audit_trust.log.clone(),
        });
    writeln!(
        ctx.out,
        "store {} with {} worker(s)",
        studyflow_store::redact(&url),
        args.workers
    )?;

    let spec = studyflow_spec::check(SPEC.as_bytes())
        .spec
        .context("the demo spec")?;
    let period = spec
        .methodology
        .as_ref()
        .and_then(|m| m.sample.as_ref())
        .and_then(|s| s.period)
        .context("the sample period")?;
    let wanted: Vec<&str> = spec
        .requested_fields()
        .iter()
        .filter(|f| f.source == Source::ServiceIs)
        .map(|f| f.key)
        .collect();
    let in_sample = |d: jiff::civil::Date| period.from.0 <= d && d <= period.to.0;
    // The Service IS: clients whose supervision began over twelve years; the study's sample is
    // the 2026 cohort, as its spec says. The population is made a chunk at a time and only the
    // cohort is kept: the registries hold the records of the people the study can ask about
    // (an answer about anyone else would be refused whole), and a million clients whole would
    // take gigabytes.
    let mut population = 0usize;
    let mut cohort = Vec::new();
    generate_in_chunks(
        &Config {
            seed: args.seed,
            clients: args.clients,
            supervision_from: date(2019, 1, 1),
            supervision_to: date(2030, 12, 31),
            observed_until: date(2033, 6, 30),
        },
        10_000,
        |chunk| {
            population += chunk.len();
            cohort.extend(
                chunk
                    .iter()
                    .filter(|c| in_sample(c.supervision.start))
                    .cloned(),
            );
        },
    );
    let clients = Arc::new(cohort);
    let sample: Vec<Subject> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| Subject {
            key: format!("S{i:06}"),
            personal_code: c.personal_code.expose(),
            previous_personal_code: c.previous_personal_code.as_ref().map(|p| p.expose()),
            values: c.record(&wanted).into_iter().collect(),
        })
        .collect();
    writeln!(
        ctx.out,
        "Service IS: {} clients generated; the 2026 cohort has {} subjects ({:.1} s)",
        population,
        sample.len(),
        started.elapsed().as_secs_f64()
    )?;
    let registries = Registries::start(clients.clone()).await?;
    writeln!(
        ctx.out,
        "Punishment Register (Information Centre) simulated at {}",
        registries.url()
    )?;

    let clock = Arc::new(ManualClock::at_date(date(2026, 8, 3)));
    let mut plane = RegistryDataPlane::new(
        store.clone(),
        master,
        ServiceIs::Subjects(Arc::new(sample)),
        Connector::new(&registries.url()),
        &dir,
        clock.clone(),
    );
    plane.batch_window = args.batch_window;
    let accounts = Accounts::new(store.clone(), Policy::default());
    let engine = Arc::new(Engine::new(
        store,
        clock.clone(),
        Arc::new(Calendar::latvia()),
        Arc::new(plane),
        Options {
            batch: 64,
            ..Options::default()
        },
    ));
    // The study's people sign in with local accounts (a password and a code of their second
    // factor), as they would to `studyflow serve`: the engine lets only a proven identity act.
    let people = demo_people(&accounts, &spec, engine.now()).await?;
    let person = |login: &str| {
        people
            .iter()
            .find(|p| p.login() == login)
            .with_context(|| format!("the demo's spec binds `{login}`"))
    };
    let (study, version, hash) = engine
        .submit(SPEC.as_bytes(), person("inese.kalnina")?)
        .await?;
    engine
        .approve(&study, person("gatis.krumins")?, Some(&hash))
        .await?;
    engine.start(&study, person("inese.kalnina")?).await?;
    writeln!(
        ctx.out,
        "submitted, approved and started {study} version {version} (plan {})",
        &hash[..19]
    )?;

    let workers: Vec<Arc<Worker>> = (1..=args.workers)
        .map(|i| Arc::new(Worker::new(engine.clone(), format!("demo-worker-{i}"))))
        .collect();
    let mut outputs: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
    let mut last_half: Option<Half> = None;
    // Wall time and step runs per half year of the study's clock, with the phases it falls in.
    let mut lap = Instant::now();
    let mut lap_runs = 0usize;
    let captured = ["merge-link", "delete-identifiers", "anonymise"];
    loop {
        // One line per half year of the study's clock, written when it is over (the whole
        // status only then).
        let half = Half::of(riga_date(clock.now()));
        if last_half != Some(half) {
            if let Some(h) = last_half {
                progress(&engine, &study, &spec, h, lap, lap_runs, ctx).await?;
            }
            last_half = Some(half);
            lap = Instant::now();
            lap_runs = 0;
        }
        lap_runs += run_until_idle(&workers).await?;
        // The records the summary shows, read once each as soon as they exist (the
        // anonymisation's record goes with the identifying data at destruction).
        for step in captured {
            if !outputs.contains_key(step)
                && let Some(r) = engine.step_record(&study, step).await?
            {
                outputs.insert(step, r);
            }
        }
        let tasks = engine.tasks(None).await?;
        let mut did = false;
        for t in tasks.iter().filter(|t| t.study == study) {
            let loaded = engine.load(&t.study, t.version).await?;
            let Some(step) = loaded.plan.step(&t.step) else {
                continue;
            };
            if let Some(who) = people
                .iter()
                .find(|p| authorise(&loaded.spec, step, p).is_ok())
            {
                // A note on a step with personal data would be sealed under the study's
                // keys (MK403 p.26); the demo has nothing to say there.
                let note = (!step.handles_personal_data()).then_some("demo");
                engine.complete_task(t.id, who, note).await?;
                did = true;
            }
        }
        if did {
            continue;
        }
        let state = engine
            .state(&study)
            .await?
            .context("the demo's study is in the store")?;
        if state == StudyState::Completed {
            if let Some(h) = last_half {
                progress(&engine, &study, &spec, h, lap, lap_runs, ctx).await?;
            }
            break;
        }
        // The clock moves a week at a time past the next timer, so the subjects' anniversaries
        // in that week fall due together — but never past a deadline of work still to do: the
        // demo keeps the spec's deadlines when it can.
        let Some(timer) = engine.next_timer().await?.filter(|t| *t > engine.now()) else {
            anyhow::bail!("the study stopped in state {state} with nothing left to wait for");
        };
        let mut to = timer.saturating_add(7 * 86_400_000_000);
        if let Some(due) = engine.next_deadline().await?
            && due >= timer
        {
            to = to.min(due);
        }
        clock.set(from_micros(to));
    }
    let status = engine
        .status(&study)
        .await?
        .context("the demo's study is in the store")?;
    let step_runs: usize = status.steps.iter().map(|s| s.runs).sum();
    writeln!(
        ctx.out,
        "\n{study} completed on {} (by the study's clock): {step_runs} step runs",
        riga_date(from_micros(status.since))
    )?;
    if let Some(r) = outputs.get("merge-link") {
        let ic = &r["sources"]["information_centre"];
        writeln!(
            ctx.out,
            "linked (p.17.2): {} proceedings of {} subjects; {} unlinked, {} ambiguous; {} subjects found by a previous code",
            ic["linked"],
            r["subjects"],
            ic["unlinked"],
            ic["ambiguous"],
            r["linked_by_previous_code"]
        )?;
    }
    if let Some(r) = outputs.get("delete-identifiers") {
        writeln!(
            ctx.out,
            "deleted right after linkage (p.17.3): {} identifier datasets; fields {}",
            r["datasets_deleted"], r["fields_deleted"]
        )?;
    }
    if let Some(r) = outputs.get("anonymise") {
        writeln!(
            ctx.out,
            "anonymised (p.7): {} subjects released, k = {} over {} classes, {} suppressed",
            r["subjects"], r["k"]["k"], r["k"]["classes"], r["k"]["suppressed"]
        )?;
    }
    let requests: usize = status
        .steps
        .iter()
        .filter(|s| s.per_subject && s.step.ends_with("-request"))
        .map(|s| s.runs)
        .sum();
    // What the researchers receive: the rows of the latest release's waves table.
    let subject_waves = status
        .releases
        .last()
        .and_then(|r| std::fs::read_to_string(r.folder.join("follow_up_waves.csv")).ok())
        .map_or(0, |t| t.lines().count().saturating_sub(1));
    let per = match args.batch_window {
        1 => "due day".to_owned(),
        n => format!("{n}-day window of due days"),
    };
    writeln!(
        ctx.out,
        "follow-ups (p.19-20): {requests} requests to the Information Centre (one per wave and {per}) for {subject_waves} subject-waves of the released subjects, anonymised on arrival and joined"
    )?;
    if let Some(last) = status.releases.last() {
        let per_wave: Vec<String> = last
            .follow_up_events
            .iter()
            .map(|(w, n)| format!("{w} {n}"))
            .collect();
        writeln!(
            ctx.out,
            "new offences found per wave: {}",
            if per_wave.is_empty() {
                "none".to_owned()
            } else {
                per_wave.join(", ")
            }
        )?;
    }
    match engine.load(&study, version).await?.plan.prison_notice_due() {
        Some(d) => writeln!(ctx.out, "Prison Administration notice (p.8) due by {d}")?,
        None => writeln!(
            ctx.out,
            "Prison Administration notice (p.8): none due — the study uses no Prison Administration data"
        )?,
    }
    if status.overdue.is_empty() {
        writeln!(ctx.out, "deadlines: every step met its deadline")?;
    } else {
        let late: usize = status.overdue.iter().map(|o| o.runs).sum();
        writeln!(
            ctx.out,
            "deadlines MISSED: {late} run(s) finished after their deadline"
        )?;
        for o in &status.overdue {
            writeln!(
                ctx.out,
                "  {}: {} run(s), the last on {} — {}",
                o.step,
                o.runs,
                o.finished
                    .map(|f| riga_date(from_micros(f)).to_string())
                    .unwrap_or_else(|| "still open".into()),
                o.rule
            )?;
        }
    }
    // The analysis dataset in the study workspace (p.22.5, p.24): `studyflow release` says
    // the same.
    writeln!(
        ctx.out,
        "analysis dataset: {} versions in the study workspace; the latest, with every wave: {}",
        status.releases.len(),
        status
            .releases
            .last()
            .map(|r| r.folder.display().to_string())
            .unwrap_or_else(|| "NONE".into())
    )?;
    let keys_left = !engine.keys_destroyed(&study).await?;
    let released = !status.releases.is_empty();
    writeln!(
        ctx.out,
        "identifying data and the study's keys destroyed (p.26): {}",
        if keys_left { "NO" } else { "yes" }
    )?;
    let audit = engine.verify_audit(&audit_trust).await?;
    let audit_ok = matches!(audit, Verification::Intact { .. });
    writeln!(
        ctx.out,
        "audit verify: {}",
        match &audit {
            Verification::Intact {
                rows, checkpoints, ..
            } => format!(
                "passed ({rows} events; {checkpoints} checkpoints, in the database and in the log {}, signed by the audit key and matching the chain)",
                dir.join("audit.checkpoints").display()
            ),
            Verification::Broken { seq, reason } => format!("FAILED at row {seq}: {reason}"),
        }
    )?;
    // Every file written, every window, against every identifier of the subjects the study
    // asked about: nobody else's data reaches it (an answer naming anyone not asked is refused
    // whole). A SQLite database is a file of the run folder; a PostgreSQL one is read table by
    // table, every cell.
    drop(registries);
    let identifiers = studyflow_sim::IdentifierScan::of(clients.iter());
    let (mut bytes, mut found) = (0usize, 0usize);
    let scanned = engine
        .scan_database(|cell| {
            bytes += cell.len();
            found += identifiers.count_in(cell);
        })
        .await?;
    let in_database = if scanned {
        writeln!(
            ctx.out,
            "identifier scan of the PostgreSQL database ({bytes} bytes in its tables): {}",
            if found == 0 {
                "clean".to_owned()
            } else {
                format!("{found} FOUND")
            }
        )?;
        found
    } else {
        0
    };
    engine.close().await;
    let found = scan(&dir, &identifiers)?;
    writeln!(
        ctx.out,
        "identifier scan of {} files ({} bytes) for the {} identifiers of the cohort: {}",
        found.0,
        found.1,
        identifiers.len(),
        if found.2 == 0 {
            "clean".to_owned()
        } else {
            format!("{} FOUND", found.2)
        }
    )?;
    // Where, by file (a path names no one), for the operator to look.
    for (path, n) in &found.3 {
        writeln!(ctx.out, "  {n} in {}", path.display())?;
    }
    writeln!(
        ctx.out,
        "done in {:.1} s{}",
        started.elapsed().as_secs_f64(),
        peak_memory()
            .map(|m| format!(", peak memory {m} MiB"))
            .unwrap_or_default()
    )?;
    let passed = audit_ok && !keys_left && found.2 == 0 && in_database == 0 && released;
    if args.serve && passed {
        return serve(&url, &dir, &spec, &args.listen, ctx).await;
    }
    Ok(if passed { EXIT_OK } else { EXIT_FINDINGS })
}

/// `demo --serve`: the study left on a running server, its people's accounts given new
/// passwords and second factors on the machine's clock, and printed.
async fn serve(
    url: &str,
    dir: &Path,
    spec: &studyflow_spec::Spec,
    listen: &str,
    ctx: &mut Context<'_>,
) -> anyhow::Result<u8> {
    // Its accounts' passwords are printed: this machine only.
    let address: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("`{listen}` is not an address and port"))?;
    anyhow::ensure!(
        address.ip().is_loopback(),
        "demo --serve listens on this machine only (127.0.0.1 or ::1): it prints its accounts' passwords"
    );
    let store =
        Store::open_existing(url)
            .await?
            .with_audit_signing(studyflow_store::AuditSigning {
                signer: studyflow_store::tlog::AuditSigner::from_file(&dir.join("audit.key"))?,
                log: Some(dir.join("audit.checkpoints")),
            });
    let master = MasterKey::from_file(&dir.join("master.key"))?;
    let accounts = Accounts::new(store.clone(), Policy::default());
    let now = super::setup::clock()?.now().as_microsecond();
    writeln!(
        ctx.out,
        "demo accounts (demo only: an installation adds its people with `studyflow user add`); sign in with the password and a code of the secret (an authenticator app, or `oathtool --totp -b SECRET`):"
    )?;
    for p in &spec.authorised_persons {
        let Some(login) = p.login.as_deref() else {
            continue;
        };
        let password = Secret::generated_password();
        let secret = accounts
            .reset(login, password.expose(), "demo", now)
            .await?;
        writeln!(
            ctx.out,
            "  {login:<16} {:<20} password {}  secret {}",
            format!(
                "({})",
                serde_json::to_value(p.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            password.expose(),
            totp::base32(&secret)
        )?;
    }
    super::engine::serve_store(
        store,
        listen,
        super::engine::Served {
            master: Some(master),
            trusted_proxies: Vec::new(),
            oidc: None,
            work: Some(dir.to_path_buf()),
            tls: None,
            witnesses: None,
        },
        ctx,
    )
    .await
}

/// (files, bytes, identifiers found) below `dir`.
/// Files scanned, bytes scanned, identifiers found, and the files they were found in.
type Scanned = (usize, usize, usize, Vec<(std::path::PathBuf, usize)>);

fn scan(dir: &Path, identifiers: &studyflow_sim::IdentifierScan) -> anyhow::Result<Scanned> {
    let (mut files, mut bytes, mut found, mut where_) = (0, 0, 0, Vec::new());
    for path in studyflow_dataplane::registry_plane::files_below(dir) {
        let data = std::fs::read(&path)?;
        files += 1;
        bytes += data.len();
        let n = identifiers.count_in(&data);
        if n > 0 {
            found += n;
            where_.push((path, n));
        }
    }
    Ok((files, bytes, found, where_))
}
