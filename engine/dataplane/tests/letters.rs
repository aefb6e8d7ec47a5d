//! The letters, pinned: requests to both institutions and the p.8 notice, from the real specs.

use jiff::civil::date;
use studyflow_calendar::Calendar;
use studyflow_dataplane::letters::{LetterError, Letters, Registry};

fn load(name: &str) -> (studyflow_spec::Spec, studyflow_plan::Plan) {
    let bytes = std::fs::read(format!(
        "{}/../../specs/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let spec = studyflow_spec::check(&bytes).spec.unwrap();
    let (plan, _) = studyflow_plan::compile(&spec, &bytes, &Calendar::latvia(), None);
    (spec, plan)
}

#[test]
fn requests_and_notice_as_sent() {
    let letters = Letters::new(None).unwrap();
    let (spec, plan) = load("recidivism-2026-cohort");
    let ic = letters
        .request(
            &spec,
            &plan.hash,
            Registry::InformationCentre,
            4_812,
            date(2027, 1, 4),
            "Inese Kalniņa",
        )
        .unwrap();
    insta::assert_snapshot!("information_centre_request", ic);
    assert!(matches!(
        letters.notice(&spec, &plan, "x", date(2033, 11, 20), "I"),
        Err(LetterError::NotApplicable(_))
    ));
    assert!(matches!(
        letters.request(
            &spec,
            &plan.hash,
            Registry::PrisonAdministration,
            1,
            date(2027, 1, 4),
            "I"
        ),
        Err(LetterError::NotApplicable(_))
    ));

    let (spec, plan) = load("resocialisation-programmes-university");
    let pa = letters
        .request(
            &spec,
            &plan.hash,
            Registry::PrisonAdministration,
            640,
            date(2026, 7, 6),
            "Inese Kalniņa",
        )
        .unwrap();
    assert!(
        pa.contains("14.2.") && pa.contains("p.14.2") && pa.contains("p.12.3"),
        "{pa}"
    );
    // The Latvian part quotes the spec's Latvian texts of the p.14.2 agreement and of why
    // automation is not possible; the English ones stay in the English part.
    let (lv, en) = pa
        .split_once("\n---\n")
        .expect("a Latvian and an English part");
    for latvian in [
        "Resocializācijas departaments",
        "e-adresi",
        "vēl neaptver",
        "atņemšanas soda izciešanu",
    ] {
        assert!(lv.replace('\n', " ").contains(latvian), "{latvian}: {lv}");
    }
    for english in [
        "Resocialisation Department",
        "official electronic address",
        "does not yet cover",
    ] {
        assert!(
            !lv.replace('\n', " ").contains(english),
            "{english} in the Latvian part: {lv}"
        );
        assert!(en.replace('\n', " ").contains(english), "{english}: {en}");
    }
    insta::assert_snapshot!("prison_administration_request", pa);
    let notice = letters
        .notice(&spec, &plan, "Programme completion in prison was followed by fewer breaches of supervision in the first six months after release (aggregated tables attached). Contact 010180-12345.", date(2028, 2, 24), "Inese Kalniņa")
        .unwrap();
    // Dates the Latvian way in the Latvian part, in words in the English part.
    assert!(
        notice.contains("2028. gada 15. martā")
            && notice.contains("2028. gada 1. martā")
            && notice.contains("15 March 2028")
            && notice.contains("1 March 2028"),
        "{notice}"
    );
    // Signed by the service researcher with name and role, lines wrapped.
    assert!(
        notice.contains("Inese Kalniņa\nDienesta pētnieks"),
        "{notice}"
    );
    assert!(notice.lines().all(|l| l.chars().count() <= 80), "{notice}");
    assert!(
        !notice.contains("010180-12345"),
        "no personal code in a letter"
    );
    insta::assert_snapshot!("prison_administration_notice", notice);
}

#[test]
fn a_template_can_be_overridden_and_a_wrong_one_is_refused() {
    let dir = std::env::temp_dir().join(format!("studyflow-letters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("prison_administration_notice.txt"),
        "Notice for {{ study }}: {{ publication }}, {{ deadline }}.\n",
    )
    .unwrap();
    let letters = Letters::new(Some(&dir)).unwrap();
    let (spec, plan) = load("resocialisation-programmes-university");
    let n = letters
        .notice(&spec, &plan, "s", date(2028, 2, 24), "I")
        .unwrap();
    assert_eq!(
        n,
        "Notice for resocialisation-programmes-university: 15 March 2028, 1 March 2028.\n"
    );
    // A value the letter does not have is an error, not a blank.
    std::fs::write(
        dir.join("prison_administration_notice.txt"),
        "Dear {{ recipient_name }}\n",
    )
    .unwrap();
    let letters = Letters::new(Some(&dir)).unwrap();
    let e = letters
        .notice(&spec, &plan, "s", date(2028, 2, 24), "I")
        .unwrap_err();
    assert!(
        e.to_string().contains("prison_administration_notice.txt"),
        "{e}"
    );
    std::fs::write(dir.join("prison_administration_notice.txt"), "{% if %}\n").unwrap();
    assert!(matches!(
        Letters::new(Some(&dir)),
        Err(LetterError::Template { .. })
    ));
    let _ = std::fs::remove_dir_all(dir);
}
