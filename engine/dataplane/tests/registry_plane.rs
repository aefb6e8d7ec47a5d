//! Every spec in `specs/` end to end with the data plane that moves data, on SQLite and
//! PostgreSQL, against the simulated registries: the recidivism study over the Punishment
//! Register's HTTP interface with all six follow-up waves; the resocialisation study over the
//! Prison Administration's secure electronic exchange (outbox, cover letter, inbox); the client
//! survey with the manual extraction, the consenting clients' contact list and its transfer
//! encrypted to the researcher's age key (MK403 p.31–32). After each run: every step done, the
//! keys and every identifying dataset destroyed, the audit intact, and every byte of every file
//! the run left (the SQLite database with its WAL, releases, outbox, inbox) and everything the
//! database holds (datasets, run outputs and errors, the audit) scanned for every identifier
//! the generator made: none appears.

#[path = "../../runtime/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::civil::Date;
use studyflow_calendar::Calendar;
use studyflow_dataplane::connector::Connector;
use studyflow_dataplane::linkage::Subject;
use studyflow_dataplane::registry_plane::{
    CONSENTED_CONTACTS_FILE, MANUAL_EXTRACTION_FILE, RegistryDataPlane, ServiceIs, files_below,
};
use studyflow_dataplane::vault::MasterKey;
use studyflow_runtime::{Engine, ManualClock, Options};
use studyflow_sim::registry::{Misbehaviour, Registries};
use studyflow_sim::{Client, Config, IdentifierScan, generate};
use studyflow_store::{RunRow, RunState, Store, Verification};
use support::*;

/// One end-to-end run's surroundings.
struct World {
    base: PathBuf,
    registries: Registries,
    clients: Vec<Client>,
    setup: Setup,
}

fn first_phase_start(spec: &studyflow_spec::Spec) -> Date {
    spec.phases
        .iter()
        .flatten()
        .filter_map(|p| p.start.map(|d| d.0))
        .min()
        .expect("a phase with a start")
}

/// The registries know all of `clients`; the study's sample is the first `sample` of them.
async fn world(
    db: &Db,
    name: &str,
    spec: &studyflow_spec::Spec,
    clients: Vec<Client>,
    sample: usize,
) -> World {
    let wanted: Vec<&str> = spec
        .requested_fields()
        .iter()
        .filter(|f| f.source == studyflow_spec::catalogue::Source::ServiceIs)
        .map(|f| f.key)
        .collect();
    let sample: Vec<Subject> = clients
        .iter()
        .take(sample)
        .enumerate()
        .map(|(i, c)| Subject {
            key: format!("S{i:06}"),
            personal_code: c.personal_code.expose(),
            previous_personal_code: c.previous_personal_code.as_ref().map(|p| p.expose()),
            values: c.record(&wanted).into_iter().collect(),
        })
        .collect();
    let registries = Registries::start(clients.clone()).await.unwrap();
    let clock = Arc::new(ManualClock::at_date(first_phase_start(spec)));
    let store = Store::open(&db.url).await.unwrap();
    let base = std::env::temp_dir().join(format!(
        "studyflow-e2e-{name}-{}-{}",
        db.label,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&base);
    // One try per step attempt, quickly given up: the engine's retries are under test.
    let mut connector = Connector::new(&registries.url());
    connector.retry.max_attempts = 1;
    connector.timeout = std::time::Duration::from_millis(300);
    let plane = RegistryDataPlane::new(
        store.clone(),
        MasterKey::from_bytes([4u8; 32]),
        ServiceIs::Subjects(Arc::new(sample)),
        connector,
        &base,
        clock.clone(),
    );
    let engine = Arc::new(Engine::new(
        store,
        clock.clone(),
        Arc::new(Calendar::latvia()),
        Arc::new(plane),
        Options {
            max_attempts: 8,
            ..Options::default()
        },
    ));
    World {
        base,
        registries,
        clients,
        setup: Setup { engine, clock },
    }
}

/// After a run: everything done, destroyed what must be, the audit intact, no identifier in
/// any byte of the files or of what the database holds. Returns the runs.
async fn check_clean(w: &World, db: &Db, study: &str) -> Vec<RunRow> {
    let engine = &w.setup.engine;
    let runs = engine.store.runs(study).await.unwrap();
    let undone: Vec<_> = runs
        .iter()
        .filter(|r| r.state != RunState::Done)
        .map(|r| (&r.step, r.state, &r.last_error))
        .collect();
    assert!(undone.is_empty(), "{}: {undone:?}", db.label);
    assert_eq!(
        engine.store.study(study).await.unwrap().unwrap().state,
        studyflow_store::StudyState::Completed
    );
    // Destroyed (p.26): the keys, and with them every identifying dataset.
    assert_eq!(engine.store.study_keys(study).await.unwrap(), None);
    for prefix in [
        "vault/",
        "service_is",
        "answer/",
        "linked/",
        "contact/",
        "followup/",
    ] {
        let left = engine.store.dataset_names(study, prefix).await.unwrap();
        assert!(
            left.iter().all(|n| n.ends_with("/anonymised")),
            "{prefix}: {left:?}"
        );
    }
    assert!(matches!(
        engine.store.verify_audit().await.unwrap(),
        Verification::Intact { .. }
    ));
    let scan = IdentifierScan::of(&w.clients);
    // What the database holds, on either backend.
    let mut held = Vec::new();
    for r in &runs {
        held.extend(r.output.iter().flat_map(|o| o.bytes()));
        held.extend(r.last_error.iter().flat_map(|o| o.bytes()));
    }
    for name in engine.store.dataset_names(study, "").await.unwrap() {
        held.extend(engine.store.dataset(study, &name).await.unwrap().unwrap());
    }
    for a in engine.store.audit_rows(0, 1_000_000).await.unwrap() {
        held.extend(format!("{a:?}").into_bytes());
    }
    assert_eq!(scan.count_in(&held), 0, "an identifier in the database");
    // Every file the run left, and on SQLite the database files themselves.
    let mut paths = files_below(&w.base);
    if db.label == "sqlite" {
        paths.extend(files_below(Path::new(&db.url).parent().unwrap()));
    }
    let mut scanned = 0;
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        scanned += bytes.len();
        assert_eq!(scan.count_in(&bytes), 0, "an identifier in {}", p.display());
    }
    if db.label == "sqlite" {
        assert!(scanned > 100_000, "{scanned} bytes scanned");
    }
    // What the engine wrote (releases, requests, letters) is its owner's alone, folders and
    // files, whatever the umask (MK403 p.25.3); the inbox and recipients are the world's.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut checked = 0;
        for p in &paths {
            let s = p.to_string_lossy();
            if !(s.contains("/releases/") || s.contains("/outbox/")) {
                continue;
            }
            for q in p
                .ancestors()
                .take_while(|a| a.starts_with(&w.base) && *a != w.base)
            {
                let name = q.to_string_lossy();
                if name.ends_with("/releases")
                    || name.ends_with("/outbox")
                    || name.contains("/releases/")
                    || name.contains("/outbox/")
                {
                    let mode = std::fs::metadata(q).unwrap().permissions().mode();
                    assert_eq!(mode & 0o077, 0, "{} is {mode:o}", q.display());
                    checked += 1;
                }
            }
        }
        assert!(checked > 0, "nothing written to check");
    }
    runs
}

fn output(runs: &[RunRow], step: &str) -> serde_json::Value {
    let r = runs.iter().find(|r| r.step == step).unwrap();
    serde_json::from_str(r.output.as_deref().unwrap_or("null")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recidivism_study_moves_real_data_and_leaves_no_identifier() {
    for db in databases().await {
        let clients = generate(&Config {
            seed: 5,
            clients: 60,
            ..Config::default()
        });
        // The spec's quasi-identifiers would leave no class of 40 subjects at k = 5: over sex
        // and region alone some classes reach it and some are suppressed, so both paths run.
        let text = String::from_utf8(spec_bytes("recidivism-2026-cohort")).unwrap();
        let text = text.replacen(
            "    - sex\n    - birth_year\n    - region\n    - sanction_type\n",
            "    - sex\n    - region\n",
            1,
        );
        assert!(
            text.contains("    - sex\n    - region\n  k: 5"),
            "the test's spec edit applies"
        );
        let bytes = text.into_bytes();
        let spec = studyflow_spec::check(&bytes).spec.unwrap();
        let w = world(&db, "recidivism", &spec, clients, 40).await;
        let study = launch(&w.setup, &bytes).await;
        // The register misbehaves on the baseline query in every way it can, one step
        // attempt each: the attempt fails with a clear error, nothing of the answer is
        // imported, the step is retried after its backoff, and the study goes on when the
        // register recovers.
        let engine = &w.setup.engine;
        let worker = studyflow_runtime::Worker::new(engine.clone(), "w".into());
        let modes = [
            (Misbehaviour::ServerError, "503"),
            (Misbehaviour::Slow, "no answer within"),
            (Misbehaviour::Malformed, "rejected"),
            (Misbehaviour::Truncated, "rejected"),
            (Misbehaviour::Duplicates, "rejected"),
            (Misbehaviour::UnknownSubjects, "rejected"),
        ];
        for (attempt, (mode, says)) in modes.iter().enumerate() {
            w.registries.misbehave(*mode, 1, 1_000);
            worker.run_until_idle().await.unwrap();
            let runs = engine.store.runs(&study).await.unwrap();
            let request = runs
                .iter()
                .find(|r| r.step == "information-centre-request")
                .unwrap();
            let error = request.last_error.clone().unwrap_or_default();
            assert_eq!(request.attempts, attempt as i64 + 1, "{mode:?}: {error}");
            assert_ne!(request.state, RunState::Done, "{mode:?}");
            assert!(error.contains(says), "{mode:?}: {error}");
            assert!(
                engine
                    .store
                    .dataset(&study, "answer/information_centre")
                    .await
                    .unwrap()
                    .is_none(),
                "{mode:?}: nothing imported from a failed answer"
            );
            let retry = engine.store.next_timer().await.unwrap().unwrap();
            w.setup
                .clock
                .set(studyflow_runtime::clock::from_micros(retry));
        }
        drive(&w.setup, &study, &spec).await;
        let runs = check_clean(&w, &db, &study).await;
        let link = output(&runs, "merge-link");
        assert!(
            link["sources"]["information_centre"]["linked"]
                .as_u64()
                .unwrap()
                > 40,
            "{link}"
        );
        // The sign-off task showed the quality report; the person's note sits beside it.
        let quality = output(&runs, "quality-check");
        assert!(
            quality["prepared"]["quality"]["subjects"]["rows"]
                .as_u64()
                .unwrap()
                >= 35,
            "{quality}"
        );
        // The person's note on a step with personal data is sealed to the study's note key
        // and went with the keys (MK403 p.26).
        let sealed = quality["note"]["sealed"].as_str().expect("a sealed note");
        assert!(hex::decode(sealed).is_ok_and(|b| b.starts_with(b"age-encryption.org/v1")));
        assert_eq!(engine.wrapped_study_keys(&study).await.unwrap(), None);
        // The cohort's anchor dates recorded by the anonymisation step went with the rest.
        let anon = runs.iter().find(|r| r.step == "anonymise").unwrap();
        assert!(
            !anon
                .output
                .as_deref()
                .unwrap_or_default()
                .contains("subject_list"),
            "{:?}",
            anon.output
        );
        let joins = runs.iter().filter(|r| r.step.ends_with("-join")).count();
        let released = released_dataset_is_complete(&w, &study, joins, db.label == "sqlite");
        // The per-subject runs, their audit and the stored follow-ups never carry a released
        // study ID, nor the time a subject's wave arrived: either would date the subject's
        // released rows (anchor = the wave's day − its years).
        assert!(runs.iter().all(|r| !released.contains(&r.subject)));
        // What is kept of the follow-ups is never named by a run pseudonym (the runs and
        // their audit are dated); no unjoined arrival is left behind.
        for name in engine
            .store
            .dataset_names(&study, "anonymised/")
            .await
            .unwrap()
        {
            assert!(!name.starts_with("anonymised/arrived/"), "{name}");
            if let Some(rest) = name.strip_prefix("anonymised/followup/") {
                let id = rest.rsplit('/').next().unwrap();
                assert!(runs.iter().all(|r| r.subject != id), "{name}");
                assert!(!released.contains(id), "{name}");
            }
        }
        // Nor does any per-subject run keep what it recorded (a count could single one out).
        assert!(
            runs.iter()
                .filter(|r| !r.subject.is_empty())
                .all(|r| r.output.is_none())
        );
        let audit = engine.store.audit_rows(0, 1_000_000).await.unwrap();
        for a in &audit {
            assert!(
                released
                    .iter()
                    .all(|id| !a.event.object.contains(id.as_str())
                        && !a.event.detail.contains(id.as_str())),
                "{:?}",
                a.event
            );
        }
        assert!(
            !w.setup
                .engine
                .store
                .dataset_names(&study, "anonymised/")
                .await
                .unwrap()
                .is_empty(),
            "anonymised data stays (p.27)"
        );
        w.setup.engine.store.close().await;
        let _ = std::fs::remove_dir_all(&w.base);
    }
}

/// Whether a tool for the analysts' check is here; under CI it must be (`.ci/run` installs it).
fn tool_present(program: &str, args: &[&str]) -> bool {
    let present = std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} {args:?} fails under CI: .ci/run installs it"
        );
        eprintln!("SKIPPED: {program} is not usable here ({args:?})");
    }
    present
}

/// The release as analysts read it: the `frictionless` package validates its data package,
/// pandas and R's `read.csv` read every table with the declared types.
fn analysts_read(folder: &Path) {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools");
    if tool_present("python3", &["-c", "import frictionless, pandas"]) {
        let out = std::process::Command::new("python3")
            .arg(tools.join("read_release.py"))
            .arg(folder)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if tool_present("Rscript", &["--version"]) {
        let package: serde_json::Value =
            serde_json::from_slice(&std::fs::read(folder.join("datapackage.json")).unwrap())
                .unwrap();
        let mut types = String::new();
        for r in package["resources"].as_array().unwrap() {
            for f in r["schema"]["fields"].as_array().unwrap() {
                types.push_str(&format!(
                    "{}\t{}\t{}\n",
                    r["path"].as_str().unwrap(),
                    f["name"].as_str().unwrap(),
                    f["type"].as_str().unwrap()
                ));
            }
        }
        let list = std::env::temp_dir().join(format!("studyflow-types-{}.tsv", std::process::id()));
        std::fs::write(&list, types).unwrap();
        let out = std::process::Command::new("Rscript")
            .arg(tools.join("read_release.R"))
            .arg(folder)
            .arg(&list)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&list);
        assert!(
            out.status.success(),
            "R: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A release's table as rows of column → cell.
fn table(folder: &Path, name: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(folder.join(format!("{name}.csv"))).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|row| {
            let row = row.unwrap();
            headers
                .iter()
                .zip(row.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn day(cell: &str) -> i64 {
    cell.parse()
        .unwrap_or_else(|_| panic!("a day count, not {cell:?}"))
}

/// What the Service's researchers receive (MK403 p.20, p.22.5, p.24): the study workspace holds
/// a release after the baseline and after each wave; the last holds the baseline tables and
/// every wave joined by study ID, each event inside its wave's window, an observation row per
/// released subject, and nothing about a suppressed subject; the baseline holds no offence
/// the register could not have known on the day it was asked.
/// Returns the released study IDs.
fn released_dataset_is_complete(
    w: &World,
    study: &str,
    joins: usize,
    analyse: bool,
) -> std::collections::BTreeSet<String> {
    let root = w.base.join("releases").join(study);
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    folders.sort();
    let labels: Vec<String> = folders
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders.len(), 7, "baseline and six waves: {labels:?}");
    assert!(
        labels.iter().any(|l| l.ends_with("-baseline")),
        "{labels:?}"
    );
    // The latest: the one whose wave closed last (5 years after the end).
    let last = folders
        .iter()
        .find(|p| p.to_string_lossy().ends_with("-5y_after_end"))
        .unwrap();
    let subjects = table(last, "subjects");
    let released: std::collections::BTreeSet<&str> =
        subjects.iter().map(|r| r["study_id"].as_str()).collect();
    assert!(
        released.len() >= 5 && released.len() < 40,
        "some released, some suppressed: {}",
        released.len()
    );
    let waves = table(last, "follow_up_waves");
    let events = table(last, "follow_up_events");
    let observation = table(last, "follow_up_observation");
    // A suppressed subject gets no follow-up at all (p.7): every batch a join took holds a
    // released subject, and every joined wave reaches the release once.
    assert!(waves.len() >= joins, "every joined batch released");
    let pairs: std::collections::BTreeSet<(&str, &str)> = waves
        .iter()
        .map(|r| (r["study_id"].as_str(), r["wave"].as_str()))
        .collect();
    assert_eq!(pairs.len(), waves.len(), "one row per subject and wave");
    let arrived: usize = observation
        .iter()
        .map(|o| day(&o["waves_arrived"]) as usize)
        .sum();
    assert_eq!(
        arrived,
        waves.len(),
        "the observation counts every wave row"
    );
    assert!(
        waves
            .iter()
            .all(|r| released.contains(r["study_id"].as_str()))
    );
    assert!(
        events
            .iter()
            .all(|r| released.contains(r["study_id"].as_str()))
    );
    assert_eq!(
        observation.len(),
        released.len(),
        "one observation row per subject"
    );
    for wave in [
        "1y_after_start",
        "3y_after_start",
        "5y_after_start",
        "1y_after_end",
        "3y_after_end",
        "5y_after_end",
    ] {
        assert!(waves.iter().any(|r| r["wave"] == wave), "{wave} joined");
    }
    // Each event lies in its subject's window of that wave (the request asked for it and the
    // register answered no more).
    assert!(!events.is_empty(), "the follow-ups found new offences");
    for e in &events {
        let wave = waves
            .iter()
            .find(|r| r["study_id"] == e["study_id"] && r["wave"] == e["wave"])
            .expect("the event's wave row");
        let d = day(&e["offence_date"]);
        if e["late_registration"] == "1" {
            // An earlier window's offence the register opened after that wave was asked.
            assert!(d < day(&wave["window_from"]), "{e:?} late in {wave:?}");
        } else {
            assert_eq!(e["late_registration"], "0", "{e:?}");
            assert!(
                day(&wave["window_from"]) <= d && d <= day(&wave["window_to"]),
                "{e:?} outside {wave:?}"
            );
        }
    }
    let counted: usize = waves.iter().map(|r| day(&r["events"]) as usize).sum();
    assert_eq!(counted, events.len());
    // The survival table: complete observation for everyone at the end of the study.
    for o in &observation {
        assert!(
            ["follow_up_complete", "end_not_known", "cut_off"].contains(&o["censoring"].as_str()),
            "{o:?}"
        );
        if o["reoffended"] == "1" {
            assert!(day(&o["first_offence"]) <= day(&o["observed_until"]));
        }
    }
    // Baseline: the register answered as of the request (January 2027 for a 2026 cohort):
    // no offence years after the start of supervision.
    let baseline = folders
        .iter()
        .find(|p| p.to_string_lossy().ends_with("-baseline"))
        .unwrap();
    let ic = table(baseline, "information_centre");
    assert!(!ic.is_empty());
    let latest = ic.iter().map(|r| day(&r["offence_date"])).max().unwrap();
    assert!(
        latest < 2 * 366,
        "an offence {latest} days after the start in the baseline"
    );
    // An interim release (after the first wave) shows only what had arrived.
    let first = folders
        .iter()
        .find(|p| p.to_string_lossy().ends_with("-1y_after_start"))
        .unwrap();
    let interim = table(first, "follow_up_observation");
    assert!(
        interim
            .iter()
            .any(|o| o["censoring"] == "follow_up_in_progress"),
        "the interim release says the follow-up goes on"
    );
    // Described for analysts, and read by their tools with the declared types.
    let package: serde_json::Value =
        serde_json::from_slice(&std::fs::read(last.join("datapackage.json")).unwrap()).unwrap();
    let observed = package["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "follow_up_observation")
        .unwrap();
    assert_eq!(observed["schema"]["primaryKey"][0], "study_id");
    let codebook = std::fs::read_to_string(last.join("codebook.md")).unwrap();
    assert!(
        codebook.contains("`first_offence`") && codebook.contains("days"),
        "{codebook}"
    );
    if analyse {
        analysts_read(last);
        analysts_read(baseline);
    }
    for f in &folders {
        let names: Vec<String> = files_below(f)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"MANIFEST.sha256".to_owned()), "{names:?}");
        for file in ["codebook.csv", "codebook.md", "datapackage.json"] {
            assert!(names.contains(&file.to_owned()), "{file} in {names:?}");
        }
    }
    released.into_iter().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resocialisation_study_goes_through_the_secure_electronic_exchange() {
    for db in databases().await {
        let clients: Vec<Client> = generate(&Config {
            seed: 9,
            clients: 300,
            ..Config::default()
        })
        .into_iter()
        .filter(|c| !c.rulings.is_empty())
        .take(40)
        .collect();
        let bytes = spec_bytes("resocialisation-programmes-university");
        let spec = studyflow_spec::check(&bytes).spec.unwrap();
        let w = world(&db, "resocialisation", &spec, clients, 40).await;
        let study = launch(&w.setup, &bytes).await;
        let (outbox, inbox) = (
            w.base.join("outbox").join(&study),
            w.base.join("inbox").join(&study),
        );
        let mut letters = Vec::new();
        let mut answered = 0;
        drive_with(&w.setup, &study, &spec, &mut || {
            // The Prison Administration's clerk reads the outbox and answers in the inbox;
            // the cover letter is kept to look at.
            for f in std::fs::read_dir(&outbox).into_iter().flatten().flatten() {
                if let Ok(l) = std::fs::read_to_string(f.path().join("cover-letter.txt")) {
                    letters.push(l);
                }
            }
            answered += w.registries.answer_outbox(&outbox, &inbox).unwrap();
        })
        .await;
        assert_eq!(answered, 1, "one request, answered once");
        // The p.8 notice was prepared before its task opened: the publication date and the
        // deadline the Latvian way, the researcher's summary still to write in.
        let notice =
            std::fs::read_to_string(outbox.join("prison-administration-notice.txt")).unwrap();
        assert!(
            notice.contains("Rezultātus plānots publicēt 2028. gada 15. martā")
                && notice.contains("2028. gada 1. martā")
                && notice.contains("[the results summary"),
            "{notice}"
        );
        assert!(
            letters
                .iter()
                .any(|l| l.contains("p.14.2") && l.contains("40 (identified")),
            "{letters:?}"
        );
        let runs = check_clean(&w, &db, &study).await;
        // The request was prepared into the outbox, then sent by the service researcher.
        let request = output(&runs, "prison-administration-request");
        assert!(request["prepared"]["sent"].is_string(), "{request}");
        let link = output(&runs, "merge-link");
        assert!(
            link["sources"]["prison_rulings"]["linked"]
                .as_u64()
                .unwrap()
                >= 40,
            "{link}"
        );
        // Released to the university after the contract: CSV, codebook, manifest.
        let released = files_below(&w.base.join("releases").join(&study));
        let names: Vec<String> = released
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.contains(&"codebook.csv".to_owned())
                && names.contains(&"MANIFEST.sha256".to_owned()),
            "{names:?}"
        );
        let audit = w.setup.engine.store.audit_rows(0, 1_000_000).await.unwrap();
        assert!(audit.iter().any(|a| a.event.action == "release.written"));
        w.setup.engine.store.close().await;
        let _ = std::fs::remove_dir_all(&w.base);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survey_study_transfers_only_consented_contacts_encrypted_to_the_researcher() {
    for db in databases().await {
        let clients = generate(&Config {
            seed: 21,
            clients: 60,
            ..Config::default()
        });
        let bytes = spec_bytes("probation-client-survey");
        let spec = studyflow_spec::check(&bytes).spec.unwrap();
        let w = world(&db, "survey", &spec, clients, 60).await;
        let study = launch(&w.setup, &bytes).await;
        let inbox = w.base.join("inbox").join(&study);
        std::fs::create_dir_all(&inbox).unwrap();
        // The manual extraction (p.22.1), in the inbox before its task is completed.
        // No personal codes: the survey links nothing (p.3.3).
        let columns = ["sex", "birth_year", "region", "sanction_type"];
        let mut export = columns.join(",") + "\n";
        for c in &w.clients {
            let cells: Vec<String> = columns
                .iter()
                .map(|k| match c.value(k) {
                    Some(serde_json::Value::String(s)) => s,
                    Some(v) => v.to_string(),
                    None => String::new(),
                })
                .collect();
            export.push_str(&(cells.join(",") + "\n"));
        }
        std::fs::write(inbox.join(MANUAL_EXTRACTION_FILE), &export).unwrap();
        // The consenting clients' contact details: every third client who has a channel.
        let consenting: Vec<&Client> = w
            .clients
            .iter()
            .step_by(3)
            .filter(|c| c.email.is_some() || c.phone.is_some())
            .collect();
        let mut list = "first_name,last_name,email,phone\n".to_owned();
        for c in &consenting {
            list.push_str(&format!(
                "{},{},{},{}\n",
                c.first_name,
                c.last_name,
                c.email.clone().unwrap_or_default(),
                c.phone.clone().unwrap_or_default()
            ));
        }
        std::fs::write(inbox.join(CONSENTED_CONTACTS_FILE), &list).unwrap();
        // The researcher's key arrives only after the transfer has started waiting for it.
        let identity = age::x25519::Identity::generate();
        let consent_file = inbox.join(CONSENTED_CONTACTS_FILE);
        let mut passes_after_consent = 0;
        let contacts = w
            .base
            .join("releases")
            .join(&study)
            .join("contacts-v1")
            .join(studyflow_dataplane::contact::CONTACTS_FILE);
        drive_with(&w.setup, &study, &spec, &mut || {
            if !consent_file.exists() {
                passes_after_consent += 1;
                if passes_after_consent == 2 {
                    // As the server writes it for the person who gives it.
                    studyflow_dataplane::contact::give_key(
                        &w.base.join("recipients"),
                        &study,
                        "liga.ozolina",
                        &identity.to_public().to_string(),
                    )
                    .unwrap()
                    .place()
                    .unwrap();
                }
            }
        })
        .await;
        assert!(
            !inbox.join(MANUAL_EXTRACTION_FILE).exists() && !consent_file.exists(),
            "the plaintext files a person supplied are deleted once imported"
        );
        let cipher = std::fs::read(&contacts).unwrap();
        let plain = String::from_utf8(age::decrypt(&identity, &cipher).unwrap()).unwrap();
        assert_eq!(plain.lines().count(), consenting.len() + 1);
        assert!(plain.starts_with("first_name,last_name,email,phone\n"));
        for c in &consenting {
            assert!(plain.contains(&c.last_name));
        }
        // Only the consenting: nobody else's e-mail is in the list.
        for c in w
            .clients
            .iter()
            .filter(|c| !consenting.iter().any(|x| std::ptr::eq(*x, *c)))
        {
            if let Some(e) = &c.email {
                assert!(!plain.contains(e.as_str()));
            }
        }
        let audit = w.setup.engine.store.audit_rows(0, 1_000_000).await.unwrap();
        let transferred: Vec<_> = audit
            .iter()
            .filter(|a| a.event.action == "contact.transferred")
            .collect();
        assert_eq!(transferred.len(), 1);
        assert!(
            transferred[0]
                .event
                .detail
                .contains(&format!("\"contacts\":{}", consenting.len()))
        );
        let waited = audit.iter().any(|a| {
            a.event.action == "step.waiting" && a.event.object.ends_with("/contact-transfer")
        });
        assert!(waited, "the transfer waited for the researcher's key");
        // Both halves of a task with a body are in the audit: who completed the manual
        // extraction and the consent list, then the import; the quality report prepared, then
        // signed off.
        let has = |action: &str, step: &str| {
            audit
                .iter()
                .any(|a| a.event.action == action && a.event.object.ends_with(&format!("/{step}")))
        };
        for step in ["acquire-service-is", "consent"] {
            assert!(
                has("task.completed", step) && has("step.ready", step),
                "{step}"
            );
        }
        assert!(has("step.prepared", "quality-check") && has("task.completed", "quality-check"));
        let runs = w.setup.engine.store.runs(&study).await.unwrap();
        let consent = runs.iter().find(|r| r.step == "consent").unwrap();
        assert!(
            consent
                .completed_by
                .as_deref()
                .is_some_and(|p| !p.starts_with("test-worker")),
            "the person who completed the task stays on record: {:?}",
            consent.completed_by
        );
        check_clean(&w, &db, &study).await;
        w.setup.engine.store.close().await;
        let _ = std::fs::remove_dir_all(&w.base);
    }
}
