//! SF101: every item of the study application (MK403 p.3.1–3.4) is present and not blank.

use super::{Check, Findings, Rule, blank};
use crate::diagnostic::{Severity, points_lv};
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF101",
    name: "application-complete",
    severity: Severity::Error,
    points: &["p.3"],
    summary: "Every item of the study application is present and not blank.",
    summary_lv: "Ir visas pētījuma pieteikuma sastāvdaļas, un neviena nav tukša.",
    explanation: "A study runs only under an approved application stating its purpose (p.3.1), its \
methodology with the planned sample and acquisition methods and procedures (p.3.2), the \
information needed and its volume (p.3.3), and its phases and their deadlines (p.3.4). The rule \
checks the title, `purpose`, `methodology.description`, the sample's population, inclusion \
criteria, period and expected size, the acquisition methods and procedures, that `data_scope` \
requests at least one source, and that there is at least one phase. Blank text counts as missing.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    // What must be stated, in English and in Latvian (the debitive's nominative).
    let text = |f: &mut Findings,
                pointer: &str,
                value: Option<&str>,
                (what, what_lv): (&str, &str),
                point: &str| {
        if blank(value) {
            f.report(
                pointer,
                format!("the application must state {what} (MK403 {point})"),
            )
            .lv(format!(
                "pieteikumā jānorāda {what_lv} (MK403 {})",
                points_lv(&[point])
            ))
            .points(&[point]);
        }
    };
    text(
        f,
        "/title",
        spec.title.as_deref(),
        ("the study's title", "pētījuma nosaukums"),
        "p.3",
    );
    text(
        f,
        "/purpose",
        spec.purpose.as_deref(),
        ("the purpose of the study", "pētījuma mērķis"),
        "p.3.1",
    );
    match &spec.methodology {
        None => {
            f.report(
                "/methodology",
                "the application must state the methodology (MK403 p.3.2)",
            )
            .lv("pieteikumā jānorāda metodoloģija (MK403 3.2. p.)")
            .points(&["p.3.2"]);
        }
        Some(m) => {
            text(
                f,
                "/methodology/description",
                m.description.as_deref(),
                ("the methodology", "metodoloģija"),
                "p.3.2",
            );
            match &m.sample {
                None => {
                    f.report(
                        "/methodology/sample",
                        "the methodology must include the planned sample (MK403 p.3.2)",
                    )
                    .lv("metodoloģijā jāietver informācija par plānoto pētījuma izlasi (MK403 3.2. p.)")
                    .points(&["p.3.2"]);
                }
                Some(s) => {
                    text(
                        f,
                        "/methodology/sample/population",
                        s.population.as_deref(),
                        (
                            "the sample's population",
                            "populācija, no kuras veido izlasi",
                        ),
                        "p.3.2",
                    );
                    if s.inclusion_criteria().iter().all(|c| c.trim().is_empty()) {
                        f.report(
                            "/methodology/sample/inclusion_criteria",
                            "the planned sample must state its inclusion criteria (MK403 p.3.2)",
                        )
                        .lv("plānotajai izlasei jānorāda iekļaušanas kritēriji (MK403 3.2. p.)")
                        .points(&["p.3.2"]);
                    }
                    if s.period.is_none() {
                        f.report(
                            "/methodology/sample/period",
                            "the planned sample must state the period it covers (MK403 p.3.2)",
                        )
                        .lv("plānotajai izlasei jānorāda periods, ko tā aptver (MK403 3.2. p.)")
                        .points(&["p.3.2"]);
                    }
                    if s.expected_size.is_none() {
                        f.report(
                            "/methodology/sample/expected_size",
                            "the planned sample must state its expected size (MK403 p.3.2)",
                        )
                        .lv("plānotajai izlasei jānorāda tās paredzamais lielums (MK403 3.2. p.)")
                        .points(&["p.3.2"]);
                    }
                }
            }
            match &m.acquisition {
                None => {
                    f.report("/methodology/acquisition", "the methodology must include the planned acquisition methods and procedures (MK403 p.3.2)")
                        .lv("metodoloģijā jāietver plānotās informācijas ieguves metodes un procedūras (MK403 3.2. p.)")
                        .points(&["p.3.2"]);
                }
                Some(a) => {
                    text(
                        f,
                        "/methodology/acquisition/methods",
                        a.methods.as_deref(),
                        (
                            "the planned acquisition methods",
                            "plānotās informācijas ieguves metodes",
                        ),
                        "p.3.2",
                    );
                    text(
                        f,
                        "/methodology/acquisition/procedures",
                        a.procedures.as_deref(),
                        (
                            "the planned acquisition procedures",
                            "plānotās informācijas ieguves procedūras",
                        ),
                        "p.3.2",
                    );
                }
            }
        }
    }
    let no_sources = spec.data_scope.as_ref().is_none_or(|d| {
        d.service_is.is_none()
            && d.information_centre.is_none()
            && d.prison_administration.is_none()
    });
    if no_sources {
        f.report("/data_scope", "the application must state the information needed and its volume (MK403 p.3.3)")
            .lv("pieteikumā jānorāda pētījuma veikšanai nepieciešamā informācija un tās apjoms (MK403 3.3. p.)")
            .points(&["p.3.3"])
            .help("request fields from at least one of `service_is`, `information_centre`, `prison_administration`");
    }
    if spec.phases().is_empty() {
        f.report(
            "/phases",
            "the application must state the study's phases and their deadlines (MK403 p.3.4)",
        )
        .lv("pieteikumā jānorāda pētījuma norises posmi un to izpildes termiņi (MK403 3.4. p.)")
        .points(&["p.3.4"]);
    }
    for (i, phase) in spec.phases().iter().enumerate() {
        text(
            f,
            &format!("/phases/{i}/title"),
            phase.title.as_deref(),
            ("what each phase is", "katra posma nosaukums"),
            "p.3.4",
        );
        if phase.start.is_none() {
            f.report(
                &format!("/phases/{i}/start"),
                "each phase must state when it starts (MK403 p.3.4)",
            )
            .lv("katram posmam jānorāda, kad tas sākas (MK403 3.4. p.)")
            .points(&["p.3.4"]);
        }
        if phase.deadline.is_none() {
            f.report(
                &format!("/phases/{i}/deadline"),
                "each phase must state its deadline (MK403 p.3.4)",
            )
            .lv("katram posmam jānorāda izpildes termiņš (MK403 3.4. p.)")
            .points(&["p.3.4"]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{base, found, spec_with};
    use serde_json::json;

    #[test]
    fn complete_application_passes() {
        assert!(run_rule(&RULE, &base()).is_empty());
    }

    #[test]
    fn blank_and_missing_items_are_reported() {
        let spec = spec_with(|v| {
            v["purpose"] = json!("  ");
            v["methodology"]["sample"]["inclusion_criteria"] = json!([]);
            v["methodology"]["acquisition"]
                .as_object_mut()
                .unwrap()
                .remove("procedures");
            v.as_object_mut().unwrap().remove("data_scope");
            v["phases"][1].as_object_mut().unwrap().remove("deadline");
        });
        let got = found(&run_rule(&RULE, &spec));
        let pointers: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/purpose",
                "/methodology/sample/inclusion_criteria",
                "/methodology/acquisition/procedures",
                "/data_scope",
                "/phases/1/deadline"
            ]
        );
    }
}
