//! SF102: every requested field says why the study needs it (MK403 p.3.3).

use super::{Check, Findings, Rule, blank};
use crate::diagnostic::Severity;
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF102",
    name: "field-justification",
    severity: Severity::Error,
    points: &["p.3.3"],
    summary: "Every requested field says why the study needs it.",
    summary_lv: "Katram pieprasītajam laukam norādīts, kāpēc tas pētījumam vajadzīgs.",
    explanation: "The application states the information needed (p.3.3); data minimisation means \
each field must be justified. Under `data_scope.<source>.fields` every catalogue key maps to a \
sentence saying why it is needed; an empty value is reported.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    for field in spec.requested_fields() {
        if blank(field.why) {
            f.report(
                &field.pointer(),
                format!("say why the study needs `{}` (MK403 p.3.3)", field.key),
            )
            .lv(format!(
                "norādiet, kāpēc pētījumam vajadzīgs `{}` (MK403 3.3. p.)",
                field.key
            ))
            .help(format!("write `{}: <why it is needed>`", field.key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{base, spec_with};
    use serde_json::json;

    #[test]
    fn unjustified_field_is_reported() {
        assert!(run_rule(&RULE, &base()).is_empty());
        let spec = spec_with(|v| v["data_scope"]["service_is"]["fields"]["sex"] = json!(null));
        let d = run_rule(&RULE, &spec);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].pointer, "/data_scope/service_is/fields/sex");
    }
}
