//! SF135: the external researcher's security measures (MK403 p.33.3–33.5).

use super::{Check, Findings, Rule, blank};
use crate::diagnostic::Severity;
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF135",
    name: "security-measures",
    severity: Severity::Error,
    points: &["p.33.3", "p.33.4", "p.33.5"],
    summary: "An external study states device protection, up-to-date antivirus and network security tools.",
    summary_lv: "Pētījumā, ko veic pētījuma izstrādātājs, norādīta ierīču aizsardzība, aktuāla pretvīrusu programmatūra un tīkla drošības instrumenti.",
    explanation: "The external researcher protects devices with passwords or multi-factor \
authentication (p.33.3), keeps antivirus software up to date (p.33.4) and uses network security \
tools (p.33.5). `external.security_measures` must state `device_protection`, \
`antivirus_up_to_date: true` and a non-blank `network_security`.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let Some(ext) = &spec.external else {
        return;
    };
    let base = "/external/security_measures";
    let Some(m) = &ext.security_measures else {
        f.report(base, "an external study must state its security measures (MK403 p.33.3–33.5)")
            .lv("pētījumam, ko veic pētījuma izstrādātājs, jānorāda drošības pasākumi (MK403 33.3.–33.5. p.)")
            .help("add `security_measures: {device_protection: multi_factor, antivirus_up_to_date: true, network_security: <tools>}`");
        return;
    };
    if m.device_protection.is_none() {
        f.report(
            &format!("{base}/device_protection"),
            "devices must be protected by passwords or multi-factor authentication (MK403 p.33.3)",
        )
        .lv("ierīcēm jābūt aizsargātām ar parolēm vai piekļuvei ierīcē glabātajai informācijai jābūt iespējamai tikai pēc daudzfaktoru autentifikācijas (MK403 33.3. p.)")
        .points(&["p.33.3"]);
    }
    if m.antivirus_up_to_date != Some(true) {
        f.report(
            &format!("{base}/antivirus_up_to_date"),
            "antivirus software must be installed and kept up to date (MK403 p.33.4)",
        )
        .lv("iekārtām jābūt pretvīrusu funkcionalitātei, kas tiek regulāri atjaunināta (MK403 33.4. p.)")
        .points(&["p.33.4"]);
    }
    if blank(m.network_security.as_deref()) {
        f.report(
            &format!("{base}/network_security"),
            "state the network security tools used (MK403 p.33.5)",
        )
        .lv("norādiet izmantotos tīkla drošības instrumentus (MK403 33.5. p.)")
        .points(&["p.33.5"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::spec_with;
    use serde_json::json;

    #[test]
    fn each_measure_is_required() {
        let spec = spec_with(|v| {
            v["initiator"]["kind"] = json!("external_legal_person");
            v["external"] = json!({"security_measures": {"antivirus_up_to_date": false}});
        });
        let d = run_rule(&RULE, &spec);
        let pts: Vec<&str> = d.iter().map(|d| d.regulation[0].as_str()).collect();
        assert_eq!(pts, ["p.33.3", "p.33.4", "p.33.5"]);
    }
}
