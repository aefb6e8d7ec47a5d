//! SF131: the external team names its members, roles, who processes personal data and who is
//! authorised (MK403 p.4.2, p.33.1).

use std::collections::HashMap;

use super::{Findings, Rule, blank};
use crate::diagnostic::Severity;
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF131",
    name: "external-team",
    severity: Severity::Error,
    points: &["p.4.2", "p.33.1"],
    summary: "The external team lists its members with roles, names who processes personal data, and names an authorised person.",
    explanation: "The application of an external researcher states the persons involved and their \
roles, naming who will process personal data, if any (p.4.2); the external researcher designates \
authorised persons and agrees them with the Service (p.33.1, p.25.1). The team must be non-empty, \
names unique, every role stated, and at least one member `authorised_person: true`. Personal \
data reaches an external team only through a consented contact (p.31–32; everything else is \
anonymised first, p.21, p.30): with `direct_contact`, at least one member must be named with \
`processes_personal_data: true`. Without it, a member marked as processing personal data is a \
warning, since nothing personal will be transferred.",
    check,
};

fn check(spec: &Spec, f: &mut Findings) {
    let Some(ext) = spec.external.as_ref().filter(|_| spec.is_external()) else {
        return;
    };
    if ext.team.is_empty() {
        f.report(
            "/external/team",
            "an external study must list the persons involved and their roles (MK403 p.4.2)",
        )
        .points(&["p.4.2"]);
        return;
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, m) in ext.team.iter().enumerate() {
        if names.insert(m.name.trim(), i).is_some() {
            f.report(
                &format!("/external/team/{i}/name"),
                format!("`{}` is listed twice in the team", m.name),
            )
            .points(&["p.4.2"]);
        }
        if blank(m.role.as_deref()) {
            f.report(
                &format!("/external/team/{i}/role"),
                format!("state the role of `{}` in the study (MK403 p.4.2)", m.name),
            )
            .points(&["p.4.2"]);
        }
    }
    let processors = ext
        .team
        .iter()
        .filter(|m| m.processes_personal_data)
        .count();
    if spec.direct_contact.is_some() && processors == 0 {
        f.report("/external/team", "the study contacts data subjects, so the application must name who processes their personal data (MK403 p.4.2, p.32)")
            .points(&["p.4.2", "p.32"])
            .help("set `processes_personal_data: true` on the members who receive the contact details");
    }
    if spec.direct_contact.is_none() {
        for (i, m) in ext
            .team
            .iter()
            .enumerate()
            .filter(|(_, m)| m.processes_personal_data)
        {
            f.warn(&format!("/external/team/{i}/processes_personal_data"), format!("`{}` is marked as processing personal data, but an external researcher receives only anonymised data unless subjects are contacted (MK403 p.21, p.30)", m.name))
                .points(&["p.4.2", "p.21"]);
        }
    }
    if !ext.team.iter().any(|m| m.authorised_person) {
        f.report("/external/team", "the external researcher must designate authorised persons and agree them with the Service (MK403 p.33.1, p.25.1)")
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
        assert!(d[0].message.contains("contacts data subjects"));
        let bad =
            json!([{"name": "A"}, {"name": "A", "role": "x", "processes_personal_data": true}]);
        let d = run_rule(&RULE, &external(bad, false));
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/external/team/0/role",
                "/external/team/1/name",
                "/external/team/1/processes_personal_data",
                "/external/team"
            ]
        );
    }
}
