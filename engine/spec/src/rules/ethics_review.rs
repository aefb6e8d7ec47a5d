//! SF133: an ethics committee review is stated in full (MK403 p.4.4).

use super::{Check, Findings, Rule};
use crate::diagnostic::Severity;
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF133",
    name: "ethics-review",
    severity: Severity::Error,
    points: &["p.4.4"],
    summary: "A study reviewed by a research ethics committee states the committee, its permission and the permission number.",
    summary_lv: "Pētījumam, ko izvērtējusi pētījumu ētikas komisija, norādīta komisija, tās atļauja un atļaujas numurs.",
    explanation: "If a research ethics committee reviewed the study, the application states the \
committee's name, its permission and the permission's number (p.4.4). When \
`external.ethics_review` is present, all three must be non-blank.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let Some(r) = spec
        .external
        .as_ref()
        .and_then(|e| e.ethics_review.as_ref())
    else {
        return;
    };
    f.require_texts(
        "/external/ethics_review",
        &[
            (
                "committee",
                r.committee.as_deref(),
                "the committee's name",
                "pētījumu ētikas komisijas nosaukums",
            ),
            (
                "permission",
                r.permission.as_deref(),
                "the committee's permission",
                "informācija par komisijas atļauju veikt pētījumu",
            ),
            (
                "permission_number",
                r.permission_number.as_deref(),
                "the permission's number",
                "atļaujas numurs",
            ),
        ],
        (
            "a study reviewed by a research ethics committee must state",
            "pētījumam, kura priekšlikums skatīts pētījumu ētikas komisijā, jānorāda",
        ),
        "p.4.4",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::spec_with;
    use serde_json::json;

    #[test]
    fn incomplete_review_is_reported() {
        let spec = spec_with(|v| {
            v["external"] = json!({"ethics_review": {"committee": "RSU", "permission": "approved"}})
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].pointer, "/external/ethics_review/permission_number");
    }
}
