//! The connector against the simulated registries on loopback: answers as asked, and every way
//! the registries can misbehave — a slow answer, a server error, a malformed or truncated body,
//! duplicate rows, a row about someone nobody asked about. Each ends in a retry that succeeds or
//! a clear error with nothing imported, and the next query after recovery succeeds.

use std::time::Duration;

use studyflow_dataplane::connector::{Connector, ConnectorError};
use studyflow_dataplane::vault::StudyKeys;
use studyflow_sim::registry::{Misbehaviour, Registries};
use studyflow_sim::{Config, generate};
use studyflow_spec::catalogue::Source;

const IC_FIELDS: [&str; 3] = ["offence_date", "offence_qualification", "judgment_date"];

async fn setup() -> (Registries, Connector, StudyKeys, Vec<String>, usize) {
    let clients = generate(&Config {
        seed: 21,
        clients: 60,
        ..Config::default()
    });
    let codes: Vec<String> = clients
        .iter()
        .take(20)
        .map(|c| c.personal_code.expose())
        .collect();
    let proceedings: usize = clients.iter().take(20).map(|c| c.proceedings.len()).sum();
    let registries = Registries::start(clients).await.unwrap();
    let mut connector = Connector::new(&registries.url());
    connector.timeout = Duration::from_millis(400);
    connector.retry.base = Duration::from_millis(20);
    connector.retry.max_attempts = 3;
    (
        registries,
        connector,
        StudyKeys::generate("registry-test"),
        codes,
        proceedings,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_exactly_the_fields_asked_for_every_proceeding() {
    let (_r, c, keys, codes, proceedings) = setup().await;
    let codes: Vec<studyflow_dataplane::answers::Asked<'_>> = codes
        .iter()
        .map(|c| studyflow_dataplane::answers::Asked::code(c))
        .collect();
    let rows = c
        .query(&keys, Source::InformationCentre, &IC_FIELDS, &codes, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), proceedings);
    for r in &rows {
        assert!(
            r.values.keys().all(|k| IC_FIELDS.contains(&k)),
            "{:?}",
            r.values.keys().collect::<Vec<_>>()
        );
        assert!(codes.iter().any(|c| c.personal_code == r.personal_code));
    }
    // A query larger than one request may name goes in parts; the answer is the same.
    let mut parted = c.clone();
    parted.max_subjects = 3;
    let before = _r.served();
    let in_parts = parted
        .query(&keys, Source::InformationCentre, &IC_FIELDS, &codes, None)
        .await
        .unwrap();
    assert_eq!(_r.served() - before, 7, "20 subjects in parts of 3");
    let key = |r: &studyflow_dataplane::linkage::AnswerRow| {
        (r.personal_code.clone(), format!("{:?}", r.values))
    };
    let mut a: Vec<_> = rows.iter().map(key).collect();
    let mut b: Vec<_> = in_parts.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // The Prison Administration answers p.15 and p.16 together.
    let pa = c
        .query(
            &keys,
            Source::PrisonRulings,
            &["prison_admission_date", "education"],
            &codes,
            None,
        )
        .await
        .unwrap();
    assert!(pa.iter().all(|r| r.values.len() <= 2));
    // A field of another register is refused by the registry, and that is not retried.
    let e = c
        .query(
            &keys,
            Source::InformationCentre,
            &["release_regime"],
            &codes,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ConnectorError::Refused { status: 400, .. }),
        "{e}"
    );
    assert!(!e.retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passing_trouble_is_retried_and_bad_answers_are_rejected_whole() {
    let (r, c, keys, codes, proceedings) = setup().await;
    let codes: Vec<studyflow_dataplane::answers::Asked<'_>> = codes
        .iter()
        .map(|c| studyflow_dataplane::answers::Asked::code(c))
        .collect();
    // Passing: one slow answer (past the timeout), one server error — retried, then answered.
    for mode in [Misbehaviour::Slow, Misbehaviour::ServerError] {
        r.misbehave(mode, 1, 1_500);
        let before = r.served();
        let rows = c
            .query(&keys, Source::InformationCentre, &IC_FIELDS, &codes, None)
            .await
            .unwrap();
        assert_eq!(rows.len(), proceedings, "{mode:?}");
        assert_eq!(
            r.served() - before,
            2,
            "{mode:?}: one failed attempt, one good"
        );
    }
    // Persisting: every attempt fails, the step will be retried later.
    r.misbehave(Misbehaviour::ServerError, 10, 0);
    let e = c
        .query(&keys, Source::InformationCentre, &IC_FIELDS, &codes, None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ConnectorError::Unavailable { attempts: 3, .. }),
        "{e}"
    );
    assert!(e.retryable());
    r.misbehave(Misbehaviour::None, 0, 0);
    // Wrong answers: rejected whole, with the row and the reason, nothing returned.
    for (mode, says) in [
        (Misbehaviour::Malformed, "not JSON"),
        (Misbehaviour::Truncated, "not JSON"),
        (Misbehaviour::Duplicates, "repeats an earlier row"),
        (Misbehaviour::UnknownSubjects, "not asked about"),
    ] {
        r.misbehave(mode, 1, 0);
        let e = c
            .query(&keys, Source::InformationCentre, &IC_FIELDS, &codes, None)
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, ConnectorError::Rejected { .. }),
            "{mode:?}: {text}"
        );
        assert!(text.contains(says), "{mode:?}: {text}");
        assert!(text.contains("nothing of it imported"), "{text}");
        assert!(
            codes.iter().all(|code| !text.contains(code.personal_code)),
            "no personal code in the error"
        );
        // The registry recovers: the same query succeeds.
        assert_eq!(
            c.query(&keys, Source::InformationCentre, &IC_FIELDS, &codes, None)
                .await
                .unwrap()
                .len(),
            proceedings
        );
    }
}
