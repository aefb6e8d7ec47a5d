//! SF121: the Prison Administration notice can be scheduled (MK403 p.8).

use super::{Check, Findings, Rule};
use crate::diagnostic::Severity;
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF121",
    name: "prison-notice",
    severity: Severity::Warning,
    points: &["p.8"],
    summary: "A study using Prison Administration data has a planned publication date, so the p.8 notice can be scheduled.",
    summary_lv: "Pētījumam, kas izmanto Ieslodzījuma vietu pārvaldes informāciju, ir plānots publicēšanas datums, lai varētu ieplānot iepazīstināšanu ar rezultātiem (8. p.).",
    explanation: "If Prison Administration information was used, the Service informs the Prison \
Administration of the results no later than 10 working days before publication (p.8). Without \
`publication.planned_date` the notice cannot be scheduled yet: a warning, since the date may be \
set by an amendment. The working-day computation of the notice date arrives with the calendar \
(`studyflow plan`).",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    if spec.uses_prison_administration()
        && spec
            .publication
            .as_ref()
            .and_then(|p| p.planned_date)
            .is_none()
    {
        let pointer = if spec.publication.is_some() {
            "/publication/planned_date"
        } else {
            "/publication"
        };
        f.report(pointer, "Prison Administration data is requested but there is no planned publication date, so the notice due 10 working days before publication cannot be scheduled (MK403 p.8)")
            .lv("tiek pieprasīta Ieslodzījuma vietu pārvaldes informācija, bet nav plānotā publicēšanas datuma, tāpēc nevar ieplānot iepazīstināšanu ar pētījuma rezultātiem, kas jāveic ne vēlāk kā 10 darbdienas pirms to publicēšanas (MK403 8. p.)")
            .help("add `publication: {planned_date: YYYY-MM-DD}`");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::spec_with;
    use serde_json::json;

    #[test]
    fn prison_data_without_publication_date_warns() {
        let prison = json!({"exchange": "automated", "rulings": {"volume": {"period": {"from": "2020-01-01", "to": "2026-12-31"}, "expected_records": 10}, "fields": {"prison_admission_date": "exposure"}}});
        let with_date = spec_with(|v| v["data_scope"]["prison_administration"] = prison.clone());
        assert!(run_rule(&RULE, &with_date).is_empty());
        let without = spec_with(|v| {
            v["data_scope"]["prison_administration"] = prison.clone();
            v.as_object_mut().unwrap().remove("publication");
        });
        let d = run_rule(&RULE, &without);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].severity, Severity::Warning);
        assert_eq!(d[0].pointer, "/publication");
    }
}
