//! SF105: requests to the registries can identify their subjects (MK403 p.12).

use super::{Check, Findings, Rule};
use crate::diagnostic::Severity;
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF105",
    name: "request-identifiers",
    severity: Severity::Error,
    points: &["p.6", "p.11", "p.12.1", "p.12.2"],
    summary: "The Service IS supplies the identifiers a registry request needs.",
    summary_lv: "Dienesta informācijas sistēma sniedz identifikatorus, kas vajadzīgi reģistra pieprasījumam.",
    explanation: "The Service sends the requests (p.6, p.11) and identifies each subject by \
personal code (p.12.1) and by criminal proceeding, court ruling or prosecutor's decision number \
(p.12.2) — in every request of p.11, to the Information Centre and to the Prison \
Administration alike. A spec asking either for data (or for follow-ups, p.19) must therefore \
take `personal_code` and one of `proceeding_number`, `court_ruling_number` or \
`prosecutor_decision_number` from the Service IS. Subjects \
whose code changed also need `previous_personal_code` (p.12.1): its absence is a warning.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let scope = spec.data_scope.as_ref();
    let is = scope.and_then(|d| d.service_is.as_ref());
    let has = |key: &str| is.is_some_and(|s| s.fields.0.contains_key(key));
    let ic = scope.is_some_and(|d| d.information_centre.is_some()) || spec.follow_up.is_some();
    let pa = spec.uses_prison_administration();
    if !ic && !pa {
        return;
    }
    let pointer = if is.is_some() {
        "/data_scope/service_is/fields"
    } else {
        "/data_scope/service_is"
    };
    if !has("personal_code") {
        f.report(pointer, "requests to the Information Centre or the Prison Administration identify subjects by personal code, and their answers are linked by it, but the Service IS does not supply `personal_code` (MK403 p.12.1, p.17.2)")
            .lv("pieprasījumos Informācijas centram vai Ieslodzījuma vietu pārvaldei datu subjektus identificē pēc personas koda, un pēc tā apvieno saņemto informāciju, bet dienesta informācijas sistēma nesniedz `personal_code` (MK403 12.1., 17.2. p.)")
            .points(&["p.12.1", "p.17.2"])
            .help("request `personal_code` from the Service IS; it is deleted right after linkage (MK403 p.17.3)");
    }
    if ![
        "proceeding_number",
        "court_ruling_number",
        "prosecutor_decision_number",
    ]
    .iter()
    .any(|k| has(k))
    {
        f.report(pointer, "a request to the Information Centre or the Prison Administration names the subject's criminal proceeding, court ruling or prosecutor's decision number, but the Service IS supplies no `proceeding_number`, `court_ruling_number` or `prosecutor_decision_number` (MK403 p.11, p.12.2)")
            .lv("pieprasījumā Informācijas centram vai Ieslodzījuma vietu pārvaldei norāda datu subjekta kriminālprocesa numuru, tiesas nolēmuma numuru vai prokurora lēmuma numuru, bet dienesta informācijas sistēma nesniedz ne `proceeding_number`, ne `court_ruling_number`, ne `prosecutor_decision_number` (MK403 11., 12.2. p.)")
            .points(&["p.11", "p.12.2"])
            .help("request `proceeding_number` from the Service IS");
    }
    if has("personal_code") && !has("previous_personal_code") {
        f.warn(pointer, "subjects whose personal code changed cannot be matched without `previous_personal_code` (MK403 p.12.1)")
            .lv("datu subjektus, kuru personas kods ir mainīts, bez `previous_personal_code` nevar sasaistīt (MK403 12.1. p.)")
            .points(&["p.12.1"])
            .help("request `previous_personal_code` from the Service IS");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{found, spec_with};
    use serde_json::json;

    #[test]
    fn identifiers_must_come_from_the_service_is() {
        let ok = spec_with(|v| {
            v["data_scope"]["service_is"]["fields"]["previous_personal_code"] =
                json!("changed codes")
        });
        assert!(run_rule(&RULE, &ok).is_empty());
        let spec = spec_with(|v| {
            let fields = v["data_scope"]["service_is"]["fields"]
                .as_object_mut()
                .unwrap();
            fields.remove("personal_code");
            fields.remove("proceeding_number");
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(found(&d).len(), 2);
        assert_eq!(d[0].regulation, ["p.12.1", "p.17.2"]);
        assert_eq!(d[1].regulation, ["p.11", "p.12.2"]);
    }
}
