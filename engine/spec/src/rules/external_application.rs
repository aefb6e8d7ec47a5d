//! SF130: an external study carries the p.4 part of the application, a Service study does not.

use super::{Check, Findings, Rule, blank};
use crate::diagnostic::Severity;
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF130",
    name: "external-application",
    severity: Severity::Error,
    points: &["p.4", "p.4.1"],
    summary: "A study an external researcher initiates has an `external` section with its justification and expected benefit.",
    summary_lv: "Pētījumam, ko ierosina pētījuma izstrādātājs, ir sadaļa `external` ar pamatojumu un sagaidāmo ieguvumu.",
    explanation: "When an external researcher (a natural or legal person) initiates the study, the \
application also states why it is needed, including the expected benefit for the Service's \
effectiveness or for public safety (p.4.1), and the items of p.4.2–4.4. `initiator.kind: \
external_*` therefore needs `external:` with non-blank `justification` and `expected_benefit`. \
A Service study may have an `external` section too: the Service commissions an external \
researcher to carry it out (p.30.1 speaks of a \"plan or procurement offer\"); then the p.4 \
items are not required, but the contract, declarations and security measures of p.5, p.30 and \
p.33 are (SF134, SF135).",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    match (&spec.external, spec.is_external()) {
        (None, true) => {
            f.report("/external", "a study initiated by an external researcher must state the p.4 items: justification, team, programme, ethics review, and the contract (MK403 p.4, p.5)")
                .lv("pētījumam, ko ierosina pētījuma izstrādātājs, jānorāda 4. p. minētā informācija: pamatojums, iesaistītās personas, valsts pētījumu programma, pētījumu ētikas komisijas izvērtējums, kā arī līgums (MK403 4., 5. p.)")
                .points(&["p.4", "p.5"])
                .help("add `external:`; see specs/ for a complete example");
        }
        (Some(e), true) => {
            if blank(e.justification.as_deref()) {
                f.report(
                    "/external/justification",
                    "an external study must state why it is needed (MK403 p.4.1)",
                )
                .lv("pētījumam, ko ierosina pētījuma izstrādātājs, jānorāda informācija, kas pamato pētījuma nepieciešamību (MK403 4.1. p.)")
                .points(&["p.4.1"]);
            }
            if blank(e.expected_benefit.as_deref()) {
                f.report("/external/expected_benefit", "an external study must state its expected benefit for the Service's effectiveness or for public safety (MK403 p.4.1)")
                    .lv("pētījumam, ko ierosina pētījuma izstrādātājs, jānorāda pētījuma rezultātā gūstamie ieguvumi dienesta darbības efektivitātei vai sabiedrības drošībai (MK403 4.1. p.)")
                    .points(&["p.4.1"]);
            }
        }
        // A Service study with or without a commissioned external researcher.
        (_, false) => {}
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
        let commissioned = spec_with(|v| v["external"] = json!({}));
        assert!(
            run_rule(&RULE, &commissioned).is_empty(),
            "the Service may commission an external researcher"
        );
    }
}
