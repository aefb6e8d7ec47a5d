//! SF141: the Service designates who may touch identifying data (MK403 p.21, p.25.1–25.2).

use super::{Check, Findings, Rule};
use crate::catalogue::{self, FieldClass, Source};
use crate::diagnostic::{Lang, Severity, shown_in};
use crate::model::{Access, ServiceIsExtraction, ServiceRole, Spec};

pub static RULE: Rule = Rule {
    code: "SF141",
    name: "authorised-persons",
    severity: Severity::Error,
    points: &["p.21", "p.22.2", "p.25.1", "p.25.2"],
    summary: "A study that processes identifying data names an authorised service researcher with access to it; only service researchers get that access.",
    summary_lv: "Pētījumam, kas apstrādā identificējošus datus, nosaukts pilnvarots dienesta pētnieks ar piekļuvi tiem; šo piekļuvi saņem tikai dienesta pētnieki.",
    explanation: "Only authorised persons receive the study's information (p.25.1); the Service \
designates the service researchers who may access the Service IS and identifying information \
(p.25.2), and identifying information is processed by service researchers (p.21). When the spec \
requests an identifier, or anything from the Information Centre or the Prison Administration \
(requests carry personal codes, p.12), `authorised_persons` must include a `service_researcher` \
with `identifying_data` access; manual extraction from the Service IS (p.22.1) needs one with \
`service_is` access. Giving `identifying_data` access to a Service person who is not a service \
researcher is an error. Every study names at least one service researcher: the Service's \
researchers check the quality of its information (p.22.2), and they submit and start it. Every \
person has a name (not only spaces or invisible characters), and names are unique however they \
are written (Unicode NFC, spaces).",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let requested = spec.requested_fields();
    let identifying = requested.iter().any(|r| {
        r.source != Source::ServiceIs
            || catalogue::lookup(r.source, r.key).is_some_and(|e| e.class == FieldClass::Identifier)
    }) || spec.follow_up.is_some()
        || spec.direct_contact.is_some();
    let researcher_with = |access: Access| {
        spec.authorised_persons
            .iter()
            .any(|p| p.role == ServiceRole::ServiceResearcher && p.access.contains(&access))
    };
    let any_researcher = spec
        .authorised_persons
        .iter()
        .any(|p| p.role == ServiceRole::ServiceResearcher);
    if !any_researcher && !identifying {
        // Every study's information is quality-checked in the Service by its researchers
        // (p.22.2: "Dienesta pētnieki ... pārbauda ... informācijas kvalitāti"), whoever
        // analyses it; and it is they who submit and start it.
        f.report("/authorised_persons", "no service researcher is named: the Service's researchers check the quality of the study's information (MK403 p.22.2)")
            .lv("nav norādīts neviens dienesta pētnieks: pētījuma informācijas kvalitāti pārbauda dienesta pētnieki (MK403 22.2. p.)")
            .points(&["p.22.2"])
            .help("add `- {name: <name>, role: service_researcher, access: [service_is]}`");
    }
    if identifying && !researcher_with(Access::IdentifyingData) {
        f.report("/authorised_persons", "the study processes identifying data, but no service researcher is designated with `identifying_data` access to process it and check its quality (MK403 p.18, p.21, p.25.2)")
            .lv("pētījumā apstrādā identificējošus datus, bet nav noteikts neviens dienesta pētnieks ar piekļuvi `identifying_data`, kas tos apstrādātu un pārbaudītu to kvalitāti (MK403 18., 21., 25.2. p.)")
            .points(&["p.18", "p.21", "p.25.2"])
            .help("add `- {name: <name>, role: service_researcher, access: [service_is, identifying_data]}`");
    }
    let manual = spec
        .data_scope
        .as_ref()
        .and_then(|d| d.service_is.as_ref())
        .is_some_and(|s| s.extraction == ServiceIsExtraction::ManualExtraction);
    if manual && !researcher_with(Access::ServiceIs) {
        f.report("/authorised_persons", "manual extraction from the Service IS is done by a service researcher designated with `service_is` access (MK403 p.22.1, p.25.2)")
            .lv("informāciju no dienesta informācijas sistēmas manuāli iegūst dienesta pētnieks, kuram noteikta piekļuve `service_is` (MK403 22.1., 25.2. p.)")
            .points(&["p.22.1", "p.25.2"]);
    }
    let mut seen = std::collections::HashSet::new();
    for (i, p) in spec.authorised_persons.iter().enumerate() {
        if super::blank(Some(&p.name)) {
            f.report(
                &format!("/authorised_persons/{i}/name"),
                "an authorised person has no name: the Service designates persons, by name (MK403 p.25.1)",
            )
            .lv("pilnvarotajai personai nav norādīts vārds un uzvārds: dienests nosaka pilnvarotās personas, norādot viņu vārdus un uzvārdus (MK403 25.1. p.)")
            .points(&["p.25.1"]);
            continue;
        }
        // However the name is written (NFC, spaces): one person.
        if !seen.insert(crate::model::person_key(&p.name)) {
            f.warn(
                &format!("/authorised_persons/{i}/name"),
                format!("{} is listed twice", crate::diagnostic::shown(&p.name)),
            )
            .lv(format!(
                "persona {} norādīta divreiz",
                shown_in(&p.name, Lang::Lv)
            ))
            .points(&["p.25.1"]);
        }
        if p.access.contains(&Access::IdentifyingData) && p.role != ServiceRole::ServiceResearcher {
            f.report(&format!("/authorised_persons/{i}/access"), format!("{} is not a service researcher; identifying information is processed by the service researchers the Service designates (MK403 p.21, p.25.2)", crate::diagnostic::shown(&p.name)))
                .lv(format!("persona {} nav dienesta pētnieks; identificējošu informāciju apstrādā dienesta noteiktie dienesta pētnieki (MK403 21., 25.2. p.)", shown_in(&p.name, Lang::Lv)))
                .points(&["p.21", "p.25.2"]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{base, spec_with};
    use serde_json::json;

    /// A name of spaces or invisible format characters (U+200B) is no name.
    #[test]
    fn every_authorised_person_has_a_name() {
        for name in ["", "   ", "\u{200b}", " \u{feff}\u{200b} "] {
            let spec = spec_with(|v| {
                v["authorised_persons"][0]["name"] = json!(name);
            });
            let d = run_rule(&RULE, &spec);
            assert!(
                d.iter().any(|d| d.pointer == "/authorised_persons/0/name"
                    && d.message.contains("has no name")),
                "{name:?}: {d:?}"
            );
        }
    }

    #[test]
    fn identifying_access_needs_a_service_researcher() {
        assert!(run_rule(&RULE, &base()).is_empty());
        let spec = spec_with(|v| {
            v["authorised_persons"] =
                json!([{"name": "B", "role": "approver", "access": ["identifying_data"]}]);
            v["data_scope"]["service_is"]["extraction"] = json!("manual_extraction");
        });
        let d = run_rule(&RULE, &spec);
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/authorised_persons",
                "/authorised_persons",
                "/authorised_persons/0/access"
            ]
        );
    }
}
