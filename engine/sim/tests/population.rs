//! The synthetic population is deterministic, valid and plausible.

use std::collections::HashSet;

use jiff::civil::date;
use studyflow_sim::{Config, PersonalCode, generate};
use studyflow_spec::catalogue::{CATALOGUE, Source};

fn small(seed: u64) -> Config {
    Config {
        seed,
        clients: 3000,
        ..Config::default()
    }
}

#[test]
fn the_same_seed_gives_the_same_registries() {
    let a = generate(&small(5));
    let b = generate(&small(5));
    let c = generate(&small(6));
    let codes = |v: &[studyflow_sim::Client]| {
        v.iter()
            .map(|c| c.personal_code.expose())
            .collect::<Vec<_>>()
    };
    assert_eq!(codes(&a), codes(&b));
    assert_ne!(codes(&a), codes(&c));
    assert_eq!(a[17].proceedings.len(), b[17].proceedings.len());
}

#[test]
fn personal_codes_are_valid_unique_and_in_both_formats() {
    let clients = generate(&small(1));
    let mut seen = HashSet::new();
    let (mut new, mut changed) = (0, 0);
    for c in &clients {
        for code in std::iter::once(&c.personal_code).chain(c.previous_personal_code.iter()) {
            assert_eq!(PersonalCode::parse(&code.expose()).as_ref(), Some(code));
            assert!(seen.insert(code.expose()), "codes are unique");
        }
        if c.personal_code.is_new_format() {
            new += 1;
        } else {
            assert_eq!(c.personal_code.birth_date(), Some(c.birth));
        }
        if let Some(prev) = &c.previous_personal_code {
            changed += 1;
            assert_eq!(
                prev.birth_date(),
                Some(c.birth),
                "the old code carried the birth date"
            );
            assert!(c.personal_code.is_new_format());
        }
    }
    assert!((50..400).contains(&new), "{new} new-format codes");
    assert!(
        (20..200).contains(&changed),
        "{changed} changed codes (p.12.1)"
    );
}

#[test]
fn dates_follow_each_other_as_proceedings_do() {
    let cfg = small(2);
    let clients = generate(&cfg);
    let mut reoffended = 0;
    let mut numbers = HashSet::new();
    for c in &clients {
        assert!(
            cfg.supervision_from <= c.supervision.start
                && c.supervision.start <= cfg.supervision_to
        );
        assert!(c.supervision.start < c.supervision.end);
        let age = (c.supervision.start - c.birth).get_days() / 365;
        assert!((14..=71).contains(&age), "{age}");
        let current = c
            .proceedings
            .iter()
            .find(|p| p.number == c.proceeding_number)
            .expect("the supervised proceeding");
        assert!(
            current
                .judgment_effective_date
                .is_some_and(|d| d <= c.supervision.start)
        );
        for p in &c.proceedings {
            assert!(
                numbers.insert(p.number.clone()),
                "proceeding numbers are unique"
            );
            assert_eq!(p.number.len(), 11);
            assert!(p.offence_date <= p.start_date);
            assert!(p.start_date <= p.suspect_date);
            assert!(p.suspect_date <= p.prosecution_date);
            if let Some(d) = p.detention_date {
                assert!(p.start_date <= d);
            }
            if let (Some(j), Some(e)) = (p.judgment_date, p.judgment_effective_date) {
                assert!(p.prosecution_date <= j && j <= e);
            }
            assert!(p.offence_date <= cfg.observed_until);
            if p.new_offence {
                assert!(p.offence_date > c.supervision.start);
            }
        }
        if c.proceedings.iter().any(|p| p.new_offence) {
            reoffended += 1;
        }
        for r in &c.rulings {
            assert!(r.admission_date <= r.release_date && r.release_date <= c.supervision.start);
            if let Some(m) = r.progressive_move {
                assert!(r.admission_date <= m && m <= r.release_date);
            }
        }
        assert_eq!(c.resocialisation.is_some(), !c.rulings.is_empty());
    }
    let share = reoffended as f64 / clients.len() as f64;
    assert!((0.2..0.5).contains(&share), "re-offending share {share}");
    assert!(clients.iter().filter(|c| !c.rulings.is_empty()).count() > 300);
    assert!(clients.iter().any(|c| c.educational_measure.is_some()));
    assert!(clients.iter().any(|c| c.mediation.is_some()));
    assert_eq!(date(2026, 1, 1), cfg.supervision_from);
}

#[test]
fn every_catalogue_key_is_answered_by_its_source() {
    let clients = generate(&small(3));
    let c = clients.iter().find(|c| !c.rulings.is_empty()).unwrap();
    for f in CATALOGUE {
        let v = match f.source {
            Source::ServiceIs => c.value(f.key),
            Source::InformationCentre => c.proceedings[0].value(f.key),
            Source::PrisonRulings => c.rulings[0].value(f.key),
            Source::PrisonResocialisation => c.resocialisation.as_ref().unwrap().value(f.key),
        };
        assert!(v.is_some(), "{} ({:?}) has no value", f.key, f.source);
    }
    assert!(
        c.value("offence_date").is_none(),
        "the Service IS does not hold p.13 fields"
    );
}

#[test]
fn the_masking_in_diagnostics_recognises_every_generated_code() {
    for c in generate(&small(4)) {
        for code in std::iter::once(&c.personal_code).chain(c.previous_personal_code.iter()) {
            let text = code.expose();
            assert!(
                studyflow_spec::diagnostic::looks_like_personal_code(&text),
                "a code the masking would miss"
            );
            let line = format!("subject {text} failed");
            let masked = studyflow_spec::diagnostic::mask_personal_codes(&line);
            assert!(!masked.contains(&text));
        }
    }
}
