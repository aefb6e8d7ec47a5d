//! SF132: a state research programme is stated in full (MK403 p.4.3).

use super::{Check, Findings, Rule};
use crate::diagnostic::Severity;
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF132",
    name: "research-programme",
    severity: Severity::Error,
    points: &["p.4.3"],
    summary: "A study within a state research programme states the programme, the project and the registration number.",
    summary_lv: "Pētījumam valsts pētījumu programmas ietvaros norādīta programma, projekts un reģistrācijas numurs.",
    explanation: "If the study is carried out within a state research programme, the application \
states the programme's name, the project's name and its registration number (p.4.3). When \
`external.state_research_programme` is present, all three must be non-blank.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let Some(p) = spec
        .external
        .as_ref()
        .and_then(|e| e.state_research_programme.as_ref())
    else {
        return;
    };
    f.require_texts(
        "/external/state_research_programme",
        &[
            (
                "programme",
                p.programme.as_deref(),
                "the programme's name",
                "valsts pētījumu programmas nosaukums",
            ),
            (
                "project",
                p.project.as_deref(),
                "the project's name",
                "projekta nosaukums",
            ),
            (
                "registration_number",
                p.registration_number.as_deref(),
                "the project's registration number",
                "projekta reģistrācijas numurs",
            ),
        ],
        (
            "a study within a state research programme must state",
            "pētījumam, ko īsteno valsts pētījumu programmas ietvaros, jānorāda",
        ),
        "p.4.3",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::spec_with;
    use serde_json::json;

    #[test]
    fn incomplete_programme_is_reported() {
        let spec = spec_with(|v| {
            v["external"] =
                json!({"state_research_programme": {"programme": "VPP", "project": " "}})
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[1].pointer,
            "/external/state_research_programme/registration_number"
        );
    }
}
