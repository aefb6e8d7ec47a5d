//! SF134: the contract and a non-disclosure declaration for everyone who processes personal
//! data (MK403 p.5, p.30.2).

use std::collections::HashSet;

use super::{Check, Findings, Rule, blank};
use crate::diagnostic::{Lang, Severity, shown_in};
use crate::model::{ContractStatus, Spec};

pub static RULE: Rule = Rule {
    code: "SF134",
    name: "contract-and-nda",
    severity: Severity::Error,
    points: &["p.5", "p.30.2"],
    summary: "An external study has a contract, and every team member who processes personal data or receives the study's information a non-disclosure declaration.",
    summary_lv: "Pētījumam, ko veic pētījuma izstrādātājs, ir līgums, un katram komandas dalībniekam, kas apstrādā personas datus vai saņem pētījuma informāciju, ir neizpaušanas apliecinājums.",
    explanation: "An external study runs under a contract between the Service and the external \
researcher (p.5), and information is transferred only once the contract is concluded, \
including a signed declaration not to disclose restricted-access information when personal data \
*or restricted-access information* is processed (p.30.2: \"personas datus vai ierobežotas \
pieejamības informāciju\"). Punishment Register, Prisoners' IS and Service IS extracts are \
restricted-access information even once anonymised. The spec must have `external.contract` \
(status `planned` until it is signed; a `concluded` contract states its number and date), and \
`external.non_disclosure_declarations` must list every team member with \
`processes_personal_data: true` or `authorised_person: true` (who receives the information, \
p.33.1). The text asks the external researcher for a declaration; studyflow asks for one from \
each person who receives the information, since a legal person's declaration does not name \
who sees the data — a policy stricter than the text, as is treating anonymised extracts as \
restricted-access information. A declaration by someone not in the team, or listed twice, is a \
warning. The engine refuses every transfer step until the contract is concluded and the \
declarations are signed (p.30).",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let Some(ext) = &spec.external else {
        return;
    };
    match &ext.contract {
        None => {
            f.report("/external/contract", "an external study runs under a contract between the Service and the external researcher (MK403 p.5)")
                .lv("pētījumu, ko veic pētījuma izstrādātājs, īsteno saskaņā ar dienesta un pētījuma izstrādātāja noslēgto līgumu (MK403 5. p.)")
                .points(&["p.5"])
                .help("add `contract: {status: planned}` and record it as concluded before any transfer");
        }
        Some(c) if c.status == ContractStatus::Concluded => {
            if blank(c.number.as_deref()) {
                f.report(
                    "/external/contract/number",
                    "a concluded contract must state its number (MK403 p.5)",
                )
                .lv("noslēgtam līgumam jānorāda numurs (MK403 5. p.)")
                .points(&["p.5"]);
            }
            if c.concluded_on.is_none() {
                f.report(
                    "/external/contract/concluded_on",
                    "a concluded contract must state when it was concluded (MK403 p.5, p.30.2)",
                )
                .lv("noslēgtam līgumam jānorāda tā noslēgšanas datums (MK403 5., 30.2. p.)");
            }
        }
        Some(_) => {}
    }
    // Names compared however they are written (NFC, spaces), as the engine compares them.
    let key = crate::model::person_key;
    let team: HashSet<String> = ext.team().iter().map(|m| key(&m.name)).collect();
    let mut signed: HashSet<String> = HashSet::new();
    for (i, nda) in ext.non_disclosure_declarations.iter().enumerate() {
        let name = nda.signatory.trim();
        if !signed.insert(key(name)) {
            f.warn(
                &format!("/external/non_disclosure_declarations/{i}/signatory"),
                format!(
                    "{} has two non-disclosure declarations",
                    crate::diagnostic::shown(name)
                ),
            )
            .lv(format!(
                "personai {} ir divi neizpaušanas apliecinājumi",
                shown_in(name, Lang::Lv)
            ))
            .points(&["p.30.2"]);
        } else if !team.contains(&key(name)) {
            f.warn(&format!("/external/non_disclosure_declarations/{i}/signatory"), format!("{} signs a non-disclosure declaration but is not in the team (MK403 p.4.2, p.30.2)", crate::diagnostic::shown(name)))
                .lv(format!("persona {} paraksta neizpaušanas apliecinājumu, bet nav komandā (MK403 4.2., 30.2. p.)", shown_in(name, Lang::Lv)))
                .points(&["p.4.2", "p.30.2"]);
        }
    }
    for (i, m) in ext.team().iter().enumerate() {
        let Some((why, why_lv)) = m.needs_declaration_in_both() else {
            continue;
        };
        if !signed.contains(&key(&m.name)) {
            f.report(
                &format!("/external/team/{i}"),
                format!(
                    "{} {why} but has no non-disclosure declaration (MK403 p.30.2)",
                    crate::diagnostic::shown(&m.name)
                ),
            )
            .lv(format!(
                "persona {} {why_lv}, bet tai nav neizpaušanas apliecinājuma (MK403 30.2. p.)",
                shown_in(&m.name, Lang::Lv)
            ))
            .points(&["p.30.2"])
            .help(format!(
                "add `- {{signatory: {}}}` to `external.non_disclosure_declarations`",
                m.name
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::spec_with;
    use serde_json::json;

    fn external(ext: serde_json::Value) -> Spec {
        spec_with(|v| {
            v["initiator"]["kind"] = json!("external_natural_person");
            v["external"] = ext;
        })
    }

    #[test]
    fn contract_and_declarations() {
        let good = external(json!({
            "team": [{"name": "A", "processes_personal_data": true}, {"name": "B"}, {"name": "C", "authorised_person": true}],
            "contract": {"status": "concluded", "number": "VPD/2027/1", "concluded_on": "2027-01-10"},
            "non_disclosure_declarations": [{"signatory": "A", "signed_on": "2027-01-10"}, {"signatory": "C"}]
        }));
        assert!(run_rule(&RULE, &good).is_empty());
        let authorised = external(json!({
            "team": [{"name": "C", "authorised_person": true}],
            "contract": {"status": "planned"}
        }));
        let d = run_rule(&RULE, &authorised);
        assert_eq!(d.len(), 1);
        assert!(d[0].message.contains("restricted-access"));
        let bad = external(json!({
            "team": [{"name": "A", "processes_personal_data": true}],
            "contract": {"status": "concluded"},
            "non_disclosure_declarations": [{"signatory": "Z"}]
        }));
        let d = run_rule(&RULE, &bad);
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/external/contract/number",
                "/external/contract/concluded_on",
                "/external/non_disclosure_declarations/0/signatory",
                "/external/team/0"
            ]
        );
        assert!(
            run_rule(&RULE, &external(json!({})))[0]
                .message
                .contains("contract")
        );
    }
}
