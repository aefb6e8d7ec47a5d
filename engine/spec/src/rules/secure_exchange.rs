//! SF106: secure electronic exchange is justified, and with the Prison Administration agreed
//! (MK403 p.10, p.14.2).

use super::{Check, Findings, Rule, blank};
use crate::diagnostic::Severity;
use crate::model::{Exchange, Spec};

pub static RULE: Rule = Rule {
    code: "SF106",
    name: "secure-exchange",
    severity: Severity::Error,
    points: &["p.10", "p.14.2"],
    summary: "Secure electronic exchange says why automation is impossible; with the Prison Administration it carries the p.14.2 agreement.",
    summary_lv: "Drošai elektroniskai apmaiņai norādīts, kāpēc automatizācija nav iespējama; apmaiņai ar Ieslodzījuma vietu pārvaldi ir 14.2. p. minētā vienošanās.",
    explanation: "Exchange is automated, or by secure electronic means where automation is not \
possible (p.10): a secure electronic exchange without `automation_not_possible_because` is a \
warning. With the Prison Administration, secure electronic exchange happens only after agreeing \
the data volume, its availability and the delivery deadlines and assessing the Prison \
Administration's resources (p.14.2): `agreement` must state `volume`, `availability`, \
`delivery_deadlines` and `resources_assessed: true`, or it is an error.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let Some(scope) = &spec.data_scope else {
        return;
    };
    if let Some(ic) = &scope.information_centre
        && ic.exchange == Exchange::SecureElectronic
        && blank(ic.automation_not_possible_because.as_deref())
    {
        f.warn("/data_scope/information_centre/automation_not_possible_because", "secure electronic exchange is for when automated exchange is not possible; say why it is not (MK403 p.10)")
            .lv("informācijas apmaiņu drošā elektroniskā veidā veic, ja automatizēta informācijas apmaiņa nav iespējama; norādiet, kāpēc tā nav iespējama (MK403 10. p.)")
            .points(&["p.10"]);
    }
    let Some(pa) = &scope.prison_administration else {
        return;
    };
    if pa.exchange != Exchange::SecureElectronic {
        return;
    }
    if blank(pa.automation_not_possible_because.as_deref()) {
        f.warn("/data_scope/prison_administration/automation_not_possible_because", "secure electronic exchange is for when automated exchange is not possible; say why it is not (MK403 p.10, p.14.2)")
            .lv("informācijas apmaiņu drošā elektroniskā veidā veic, ja automatizēta informācijas apmaiņa nav iespējama; norādiet, kāpēc tā nav iespējama (MK403 10., 14.2. p.)")
            .points(&["p.10", "p.14.2"]);
    }
    let base = "/data_scope/prison_administration/agreement";
    let Some(a) = &pa.agreement else {
        f.report(base, "secure electronic exchange with the Prison Administration needs an agreed data volume, availability and delivery deadlines (MK403 p.14.2)")
            .lv("informācijas apmaiņai ar Ieslodzījuma vietu pārvaldi drošā elektroniskā veidā vispirms jāvienojas par nepieciešamo datu apjomu, pieejamību un datu iesniegšanas termiņiem (MK403 14.2. p.)")
            .points(&["p.14.2"])
            .help("add `agreement:` with `volume`, `availability`, `delivery_deadlines` and `resources_assessed: true`");
        return;
    };
    f.require_texts(
        base,
        &[
            (
                "volume",
                a.volume.as_deref(),
                "the agreed data volume",
                "saskaņotais datu apjoms",
            ),
            (
                "availability",
                a.availability.as_deref(),
                "the agreed availability of the data",
                "saskaņotā datu pieejamība",
            ),
            (
                "delivery_deadlines",
                a.delivery_deadlines.as_deref(),
                "the agreed delivery deadlines",
                "saskaņotie datu iesniegšanas termiņi",
            ),
        ],
        ("the agreement must state", "par vienošanos jānorāda"),
        "p.14.2",
    );
    if a.resources_assessed != Some(true) {
        f.report(&format!("{base}/resources_assessed"), "the Prison Administration's resources must be assessed before secure electronic exchange (MK403 p.14.2)")
            .lv("pirms informācijas apmaiņas drošā elektroniskā veidā jāizvērtē Ieslodzījuma vietu pārvaldes resursi (MK403 14.2. p.)")
            .points(&["p.14.2"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{found, spec_with};
    use serde_json::json;

    fn with_prison(agreement: serde_json::Value) -> Spec {
        spec_with(|v| {
            v["data_scope"]["prison_administration"] = json!({
                "exchange": "secure_electronic",
                "automation_not_possible_because": "no integration yet",
                "agreement": agreement,
                "rulings": {"volume": {"period": {"from": "2020-01-01", "to": "2026-12-31"}, "expected_records": 10},
                            "fields": {"prison_admission_date": "exposure"}}
            })
        })
    }

    #[test]
    fn agreement_is_required_and_complete() {
        let full = json!({"volume": "10 rulings", "availability": "monthly", "delivery_deadlines": "within 20 days", "resources_assessed": true});
        assert!(run_rule(&RULE, &with_prison(full)).is_empty());
        let partial = json!({"volume": "10 rulings", "resources_assessed": false});
        let d = run_rule(&RULE, &with_prison(partial));
        assert_eq!(
            found(&d)
                .iter()
                .map(|(p, _)| p.rsplit('/').next().unwrap().to_owned())
                .collect::<Vec<_>>(),
            ["availability", "delivery_deadlines", "resources_assessed"]
        );
    }
}
