//! SF130: an external study carries the p.4 part of the application, a Service study does not.

use super::{Findings, Rule, blank};
use crate::diagnostic::Severity;
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF130",
    name: "external-application",
    severity: Severity::Error,
    points: &["p.4", "p.4.1"],
    summary: "An external researcher's study has an `external` section with its justification and expected benefit.",
    explanation: "When an external researcher (a natural or legal person) initiates the study, the \
application also states why it is needed, including the expected benefit for the Service's \
effectiveness or for public safety (p.4.1), and the items of p.4.2–4.4. `initiator.kind: \
external_*` therefore needs `external:` with non-blank `justification` and `expected_benefit`. \
A Service study with an `external` section is an error too: it would claim contract and NDA \
gates that do not apply.",
    check,
};

fn check(spec: &Spec, f: &mut Findings) {
    match (&spec.external, spec.is_external()) {
        (None, true) => {
            f.report("/external", "a study initiated by an external researcher must state the p.4 items: justification, team, programme, ethics review, contract (MK403 p.4)")
                .help("add `external:`; see specs/ for a complete example");
        }
        (Some(_), false) => {
            f.report("/external", "`external` is for studies initiated by an external researcher, but `initiator.kind` is `service` (MK403 p.4)")
                .help("set `initiator.kind` to `external_natural_person` or `external_legal_person`, or remove `external`");
        }
        (Some(e), true) => {
            if blank(e.justification.as_deref()) {
                f.report(
                    "/external/justification",
                    "an external study must state why it is needed (MK403 p.4.1)",
                )
                .points(&["p.4.1"]);
            }
            if blank(e.expected_benefit.as_deref()) {
                f.report("/external/expected_benefit", "an external study must state its expected benefit for the Service's effectiveness or for public safety (MK403 p.4.1)")
                    .points(&["p.4.1"]);
            }
        }
        (None, false) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{base, spec_with};
    use serde_json::json;

    #[test]
    fn external_section_matches_the_initiator() {
        assert!(run_rule(&RULE, &base()).is_empty());
        let missing = spec_with(|v| v["initiator"]["kind"] = json!("external_legal_person"));
        assert_eq!(run_rule(&RULE, &missing)[0].pointer, "/external");
        let blank = spec_with(|v| {
            v["initiator"]["kind"] = json!("external_legal_person");
            v["external"] = json!({"justification": "x"});
        });
        assert_eq!(
            run_rule(&RULE, &blank)[0].pointer,
            "/external/expected_benefit"
        );
        let stray = spec_with(|v| v["external"] = json!({}));
        assert!(run_rule(&RULE, &stray)[0].message.contains("`service`"));
    }
}
