//! The recidivism study end to end with the data plane that moves data: the Service IS sample
//! from the synthetic population, the Punishment Register on loopback for the baseline and all
//! six follow-up waves, linkage, deletion of identifiers, anonymisation, destruction — on SQLite
//! and PostgreSQL. Afterwards no identifying dataset and no key is left, and on SQLite every byte
//! of the database files is scanned for every identifier the generator made: none appears.

mod support;

use std::sync::Arc;

use jiff::civil::date;
use studyflow_calendar::Calendar;
use studyflow_runtime::connector::Connector;
use studyflow_runtime::linkage::Subject;
use studyflow_runtime::registry_plane::{RegistryDataPlane, ServiceIs};
use studyflow_runtime::vault::MasterKey;
use studyflow_runtime::{Engine, ManualClock, Options};
use studyflow_sim::registry::Registries;
use studyflow_sim::{Config, generate};
use studyflow_store::{RunState, Store, Verification};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recidivism_study_moves_real_data_and_leaves_no_identifier() {
    for db in databases().await {
        let clients = generate(&Config {
            seed: 5,
            clients: 40,
            ..Config::default()
        });
        let bytes = spec_bytes("recidivism-2026-cohort");
        let spec = studyflow_spec::check(&bytes).spec.unwrap();
        let wanted: Vec<&str> = spec
            .requested_fields()
            .iter()
            .filter(|f| f.source == studyflow_spec::catalogue::Source::ServiceIs)
            .map(|f| f.key)
            .collect();
        let sample: Vec<Subject> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| Subject {
                key: format!("S{i:06}"),
                personal_code: c.personal_code.expose(),
                previous_personal_code: c.previous_personal_code.as_ref().map(|p| p.expose()),
                values: c.record(&wanted),
            })
            .collect();
        let registries = Registries::start(clients.clone()).await.unwrap();
        let clock = Arc::new(ManualClock::at_date(date(2026, 8, 3)));
        let store = Store::open(&db.url).await.unwrap();
        let releases = std::env::temp_dir().join(format!(
            "studyflow-plane-{}-{}",
            db.label,
            std::process::id()
        ));
        let plane = RegistryDataPlane {
            store: store.clone(),
            master: MasterKey::from_bytes([4u8; 32]),
            service_is: ServiceIs::Subjects(Arc::new(sample)),
            connector: Connector::new(&registries.url()),
            releases: releases.clone(),
            outbox: releases.join("outbox"),
            inbox: releases.join("inbox"),
            clock: clock.clone(),
        };
        let engine = Arc::new(Engine::new(
            store,
            clock.clone(),
            Arc::new(Calendar::latvia()),
            Arc::new(plane),
            Options::default(),
        ));
        let s = Setup {
            engine: engine.clone(),
            clock,
        };
        let study = launch(&s, &bytes).await;
        drive(&s, &study, &spec).await;

        let runs = engine.store.runs(&study).await.unwrap();
        assert!(
            runs.iter().all(|r| r.state == RunState::Done),
            "{}",
            db.label
        );
        let link = runs.iter().find(|r| r.step == "merge-link").unwrap();
        let report: serde_json::Value =
            serde_json::from_str(link.output.as_deref().unwrap()).unwrap();
        assert!(
            report["sources"]["information_centre"]["linked"]
                .as_u64()
                .unwrap()
                > 40,
            "{report}"
        );
        // The cohort's anchor dates recorded by the anonymisation step went with the rest.
        let anon = runs.iter().find(|r| r.step == "anonymise").unwrap();
        assert_eq!(anon.output, None);
        // Every subject went through the six waves.
        let waves = runs.iter().filter(|r| r.step.ends_with("-join")).count();
        assert!(waves >= 6 * 35, "{waves} joins");
        // Destroyed: the keys and every identifying dataset; the anonymised data stays (p.27).
        assert_eq!(engine.store.study_keys(&study).await.unwrap(), None);
        assert!(
            engine
                .store
                .dataset_names(&study, "vault/")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            engine
                .store
                .dataset_names(&study, "service_is")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            !engine
                .store
                .dataset_names(&study, "anonymised/")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            engine.store.verify_audit().await.unwrap(),
            Verification::Intact { .. }
        ));
        engine.store.close().await;

        if db.label == "sqlite" {
            let identifiers = studyflow_sim::IdentifierScan::of(&clients);
            let dir = std::path::Path::new(&db.url).parent().unwrap();
            let mut scanned = 0;
            for entry in std::fs::read_dir(dir).unwrap() {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                scanned += bytes.len();
                assert_eq!(
                    identifiers.count_in(&bytes),
                    0,
                    "an identifier in the database files"
                );
            }
            assert!(scanned > 100_000, "{scanned} bytes scanned");
        }
        let _ = std::fs::remove_dir_all(releases);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_electronic_exchange_goes_through_outbox_and_inbox() {
    use sha2::Digest;
    use studyflow_runtime::{DataPlane, StepContext};
    let db = sqlite();
    let clients: Vec<_> = generate(&Config {
        seed: 9,
        clients: 200,
        ..Config::default()
    })
    .into_iter()
    .filter(|c| !c.rulings.is_empty())
    .take(10)
    .collect();
    let bytes = spec_bytes("resocialisation-programmes-university");
    let spec = studyflow_spec::check(&bytes).spec.unwrap();
    let sample: Vec<Subject> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| Subject {
            key: format!("S{i:06}"),
            personal_code: c.personal_code.expose(),
            previous_personal_code: None,
            values: Default::default(),
        })
        .collect();
    let clock = Arc::new(ManualClock::at_date(date(2026, 6, 1)));
    let store = Store::open(&db.url).await.unwrap();
    let base = std::env::temp_dir().join(format!("studyflow-se-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let plane = RegistryDataPlane {
        store: store.clone(),
        master: MasterKey::from_bytes([6u8; 32]),
        service_is: ServiceIs::Subjects(Arc::new(sample)),
        connector: Connector::new("http://127.0.0.1:9"),
        releases: base.join("releases"),
        outbox: base.join("outbox"),
        inbox: base.join("inbox"),
        clock: clock.clone(),
    };
    let engine = Engine::new(
        store.clone(),
        clock.clone(),
        Arc::new(Calendar::latvia()),
        Arc::new(studyflow_runtime::PlaceholderDataPlane { cohort_size: 0 }),
        Options::default(),
    );
    let (study, version, _) = engine.submit(&bytes, "Inese Kalniņa").await.unwrap();
    let loaded = engine.load(&study, version).await.unwrap();
    let run = |id: &'static str| {
        let step = loaded.plan.step(id).unwrap();
        plane.execute(StepContext {
            study: &study,
            version,
            spec: &spec,
            step,
            subject: "",
            key: id,
            attempt: 1,
        })
    };
    run("acquire-service-is").await.unwrap();
    let sent = run("prison-administration-request").await.unwrap();
    let id = sent.record["sent"].as_str().unwrap().to_owned();
    let folder = base.join("outbox").join(&study).join(&id);
    let letter = std::fs::read_to_string(folder.join("cover-letter.txt")).unwrap();
    assert!(
        letter.contains("p.14.2") && letter.contains("10 (identified"),
        "{letter}"
    );
    // Not arrived: the answer step waits, it does not fail.
    let e = run("prison-administration-answer").await.unwrap_err();
    assert!(
        e.wait.is_some() && e.message.contains("has not arrived"),
        "{e:?}"
    );
    // The Prison Administration answers through the inbox.
    let request: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("request.json")).unwrap()).unwrap();
    let fields: Vec<&str> = request["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let mut rows = Vec::new();
    for c in &clients {
        for r in &c.rulings {
            let mut row = serde_json::Map::new();
            row.insert("personal_code".into(), c.personal_code.expose().into());
            for f in &fields {
                if let Some(v) = r
                    .value(f)
                    .or_else(|| c.resocialisation.as_ref().and_then(|x| x.value(f)))
                {
                    row.insert((*f).into(), v);
                }
            }
            rows.push(serde_json::Value::Object(row));
        }
    }
    let answer = serde_json::to_vec(&rows).unwrap();
    let inbox = base.join("inbox").join(&study).join(&id);
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("answer.json"), &answer).unwrap();
    let hash: String = sha2::Sha256::digest(&answer)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        inbox.join("MANIFEST.sha256"),
        format!("{hash}  answer.json\n"),
    )
    .unwrap();
    let got = run("prison-administration-answer").await.unwrap();
    assert_eq!(got.record["rows"].as_u64().unwrap() as usize, rows.len());
    assert!(
        !inbox.exists() && !folder.join("request.json").exists(),
        "identifier files deleted after the exchange"
    );
    assert!(
        store
            .dataset(&study, "answer/prison_administration")
            .await
            .unwrap()
            .is_some()
    );
    let _ = std::fs::remove_dir_all(base);
}
