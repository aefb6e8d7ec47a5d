//! SF131: the external team names its members, roles, who processes personal data and who is
//! authorised (MK403 p.4.2, p.33.1).

use std::collections::HashMap;

use super::{Check, Findings, Rule, blank};
use crate::diagnostic::{Lang, Severity, shown_in};
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF131",
    name: "external-team",
    severity: Severity::Error,
    points: &["p.4.2", "p.33.1"],
    summary: "The external team lists its members with roles, names who processes personal data, and names an authorised person.",
    summary_lv: "Pētījuma izstrādātāja komanda uzskaita dalībniekus ar lomām, nosauc, kas apstrādā personas datus, un nosauc pilnvaroto personu.",
    explanation: "The application of an external researcher states the persons involved and their \
roles, naming who will process personal data, if any (p.4.2); the external researcher designates \
authorised persons and agrees them with the Service (p.33.1, p.25.1). The team must be non-empty, \
names unique, every role stated, and at least one member `authorised_person: true`; a member who \
processes personal data must be an authorised person (p.25.1, p.33.1). When personal \
data reaches the external researcher — in studyflow only the contact details of a consented \
contact (p.31–32; see SF140) — at least one member must be named with `processes_personal_data: true`. A member so named when \
no personal data reaches the team is a warning: the study only transfers anonymised data.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let Some(ext) = &spec.external else { return };
    let team = ext.team();
    if team.is_empty() {
        f.report("/external/team", "the study must list the external researcher's persons involved and their roles (MK403 p.4.2, p.33.1)")
            .lv("jānorāda pētījuma izstrādātāja pētījuma īstenošanā iesaistītās personas un viņu loma pētījuma veikšanā (MK403 4.2., 33.1. p.)");
        return;
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, m) in team.iter().enumerate() {
        if super::blank(Some(&m.name)) {
            f.report(
                &format!("/external/team/{i}/name"),
                "a person of the team has no name: the application names the persons involved (MK403 p.4.2)",
            )
            .lv("komandas personai nav norādīts vārds un uzvārds: pieteikumā norāda pētījuma īstenošanā iesaistītās personas (MK403 4.2. p.)")
            .points(&["p.4.2"]);
            continue;
        }
        if names.insert(crate::model::person_key(&m.name), i).is_some() {
            f.report(
                &format!("/external/team/{i}/name"),
                format!(
                    "{} is listed twice in the team",
                    crate::diagnostic::shown(&m.name)
                ),
            )
            .lv(format!(
                "persona {} komandā norādīta divreiz",
                shown_in(&m.name, Lang::Lv)
            ))
            .points(&["p.4.2"]);
        }
        if blank(m.role.as_deref()) {
            f.report(
                &format!("/external/team/{i}/role"),
                format!(
                    "state the role of {} in the study (MK403 p.4.2)",
                    crate::diagnostic::shown(&m.name)
                ),
            )
            .lv(format!(
                "norādiet personas {} lomu pētījuma veikšanā (MK403 4.2. p.)",
                shown_in(&m.name, Lang::Lv)
            ))
            .points(&["p.4.2"]);
        }
    }
    for (i, m) in team.iter().enumerate() {
        if m.processes_personal_data && !m.authorised_person {
            f.report(&format!("/external/team/{i}/authorised_person"), format!("{} processes personal data, so must be an authorised person agreed with the Service (MK403 p.25.1, p.33.1)", crate::diagnostic::shown(&m.name)))
                .lv(format!("persona {} apstrādā personas datus, tāpēc tai jābūt pilnvarotajai personai, kas saskaņota ar dienestu (MK403 25.1., 33.1. p.)", shown_in(&m.name, Lang::Lv)))
                .points(&["p.25.1", "p.33.1"])
                .help("set `authorised_person: true`");
        }
    }
    let personal = spec.personal_data_reaches_external_researcher();
    if personal && !team.iter().any(|m| m.processes_personal_data) {
        f.report("/external/team", "personal data reaches the external researcher, so the application must name who processes it (MK403 p.4.2)")
            .lv("personas dati nonāk pie pētījuma izstrādātāja, tāpēc pieteikumā jānorāda personas, kuras veiks personas datu apstrādi (MK403 4.2. p.)")
            .points(&["p.4.2"])
            .help("set `processes_personal_data: true` on the members who receive it");
    }
    if !personal {
        for (i, m) in team.iter().enumerate() {
            if m.processes_personal_data {
                f.warn(&format!("/external/team/{i}/processes_personal_data"), format!("{} is marked as processing personal data, but the study transfers only anonymised data to the external researcher (MK403 p.7, p.4.2)", crate::diagnostic::shown(&m.name)))
                    .lv(format!("persona {} atzīmēta kā tāda, kas apstrādā personas datus, bet pētījuma izstrādātājam nodod tikai anonimizētu informāciju (MK403 4.2., 7. p.)", shown_in(&m.name, Lang::Lv)))
                    .points(&["p.4.2", "p.7"]);
            }
        }
    }
    if !team.iter().any(|m| m.authorised_person) {
        f.report("/external/team", "the external researcher must designate authorised persons and agree them with the Service (MK403 p.33.1, p.25.1)")
            .lv("pētījuma izstrādātājam jānosaka pilnvarotās personas un jāsaskaņo tās ar dienestu (MK403 25.1., 33.1. p.)")
            .points(&["p.33.1", "p.25.1"])
            .help("set `authorised_person: true` on the members who receive the study's information");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::spec_with;
    use serde_json::json;

    fn external(team: serde_json::Value, contact: bool) -> Spec {
        spec_with(|v| {
            v["initiator"]["kind"] = json!("external_legal_person");
            v["external"] = json!({"team": team});
            if contact {
                v["direct_contact"] = json!({"fields": ["first_name"]});
            }
        })
    }

    #[test]
    fn team_rules() {
        let good = json!([{"name": "A", "role": "lead", "authorised_person": true}]);
        assert!(run_rule(&RULE, &external(good.clone(), false)).is_empty());
        let d = run_rule(&RULE, &external(good, true));
        assert_eq!(d.len(), 1);
        assert!(
            d[0].message
                .contains("personal data reaches the external researcher")
        );
        let bad =
            json!([{"name": "A"}, {"name": "A", "role": "x", "processes_personal_data": true}]);
        let d = run_rule(&RULE, &external(bad, false));
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/external/team/0/role",
                "/external/team/1/name",
                "/external/team/1/authorised_person",
                "/external/team/1/processes_personal_data",
                "/external/team"
            ]
        );
    }
}
