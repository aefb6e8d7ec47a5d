//! SF103: the declared personal-data types cover what the study processes (MK403 p.3.5, p.12).

use std::collections::BTreeSet;

use super::{Check, Findings, Rule};
use crate::catalogue::{self, PersonalDataType, Source};
use crate::diagnostic::{Severity, points_lv};
use crate::model::{Exchange, Spec};

pub static RULE: Rule = Rule {
    code: "SF103",
    name: "personal-data-types",
    severity: Severity::Error,
    points: &["p.3.5"],
    summary: "`personal_data_types` is declared when personal data is processed, and matches the data scope.",
    summary_lv: "Ja apstrādā personas datus, ir norādīti `personal_data_types`, un tie atbilst datu apjomam.",
    explanation: "The application states the personal-data types needed (p.3.5). Every requested \
field carries a type in the catalogue (see `docs/catalogue.md`); direct contact (p.32) carries \
`contact_details`; a request to the Information Centre or the Prison Administration identifies \
subjects by personal code and by proceeding or ruling number (p.12), so it implies \
`personal_code` and `proceeding_identifiers` even when those are not analysed. Each implied type \
missing from `personal_data_types` is an error. A declared type that nothing in the spec uses is \
a warning: p.3.5 asks for the types *needed*.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    // Each type the spec implies, and why, in English and in Latvian.
    let mut implied: Vec<(PersonalDataType, String, String)> = Vec::new();
    let requested = spec.requested_fields();
    // A request by secure electronic means states the personal-data types it asks for (p.12.3).
    let secure = |source: Source| {
        let scope = spec.data_scope.as_ref();
        match source {
            Source::ServiceIs => false,
            Source::InformationCentre => scope
                .and_then(|d| d.information_centre.as_ref())
                .is_some_and(|s| s.exchange == Exchange::SecureElectronic),
            Source::PrisonRulings | Source::PrisonResocialisation => scope
                .and_then(|d| d.prison_administration.as_ref())
                .is_some_and(|s| s.exchange == Exchange::SecureElectronic),
        }
    };
    for field in &requested {
        if let Some(entry) = catalogue::lookup(field.source, field.key) {
            // A Service IS field without a point of its own comes from the Service IS (p.9).
            let point = entry.point.unwrap_or(match field.source {
                Source::ServiceIs => "p.9",
                other => other.point(),
            });
            let (how, how_lv) = if secure(field.source) {
                (
                    " by secure electronic means, whose request states the personal-data types (p.12.3)",
                    " drošā elektroniskā veidā, un šādā pieprasījumā norāda personas datu veidus (12.3. p.)",
                )
            } else {
                ("", "")
            };
            implied.push((
                entry.data_type,
                format!("`{}` ({point}) is requested{how}", field.key),
                format!(
                    "tiek pieprasīts `{}` ({}){how_lv}",
                    field.key,
                    points_lv(&[point])
                ),
            ));
        }
    }
    let registries = requested.iter().any(|f| f.source != Source::ServiceIs);
    if registries {
        for t in [
            PersonalDataType::PersonalCode,
            PersonalDataType::ProceedingIdentifiers,
        ] {
            implied.push((
                t,
                "requests to the Information Centre or the Prison Administration identify subjects by them (MK403 p.12)".into(),
                "pieprasījumos Informācijas centram vai Ieslodzījuma vietu pārvaldei datu subjektus identificē pēc tiem (MK403 12. p.)".into(),
            ));
        }
    }
    if let Some(fu) = &spec.follow_up {
        for field in &fu.fields {
            if catalogue::lookup(Source::InformationCentre, &field.0).is_some() {
                implied.push((
                    PersonalDataType::CriminalRecords,
                    "follow-ups request Punishment Register data (MK403 p.19)".into(),
                    "recidīva pārbaudēs pieprasa Sodu reģistra informāciju (MK403 19. p.)".into(),
                ));
            }
        }
        implied.push((
            PersonalDataType::PersonalCode,
            "follow-up requests identify subjects by personal code (MK403 p.12.1, p.19)".into(),
            "recidīva pārbaužu pieprasījumos datu subjektus identificē pēc personas koda (MK403 12.1., 19. p.)".into(),
        ));
    }
    if spec.direct_contact.is_some() {
        implied.push((
            PersonalDataType::ContactDetails,
            "direct contact transfers contact details (MK403 p.32)".into(),
            "tiešai saziņai nodod kontaktinformāciju (MK403 32. p.)".into(),
        ));
    }
    let declared: BTreeSet<PersonalDataType> = spec.personal_data_types.iter().copied().collect();
    if spec.personal_data_types.is_empty() && !implied.is_empty() {
        let needed: BTreeSet<&str> = implied.iter().map(|(t, _, _)| t.key()).collect();
        f.report(
            "/personal_data_types",
            "the study processes personal data, so the application must state the personal-data types (MK403 p.3.5)",
        )
        .lv("pētījumā apstrādā personas datus, tāpēc pieteikumā jānorāda personas datu veidi (MK403 3.5. p.)")
        .help(format!(
            "declare `personal_data_types: [{}]`",
            needed.into_iter().collect::<Vec<_>>().join(", ")
        ));
        return;
    }
    let mut reported = BTreeSet::new();
    for (t, why, why_lv) in &implied {
        if !declared.contains(t) && reported.insert(*t) {
            // The message names p.3.5 and what the reason rests on; the field says the same.
            let message = format!(
                "`{}` is processed but not declared (MK403 p.3.5): {why}",
                t.key()
            );
            let points = crate::diagnostic::points_in(&message);
            let points: Vec<&str> = points.iter().map(String::as_str).collect();
            f.report("/personal_data_types", message)
                .lv(format!(
                    "personas datu veidu `{}` apstrādā, bet tas nav norādīts (MK403 3.5. p.): {why_lv}",
                    t.key()
                ))
                .points(&points)
                .help(format!("add `{}` to `personal_data_types`", t.key()));
        }
    }
    let used: BTreeSet<PersonalDataType> = implied.iter().map(|(t, _, _)| *t).collect();
    for (i, t) in spec.personal_data_types.iter().enumerate() {
        // Survey answers come from the subjects themselves, not from the data scope.
        let survey = *t == PersonalDataType::SurveyResponses && spec.direct_contact.is_some();
        if !used.contains(t) && !survey {
            f.warn(
                &format!("/personal_data_types/{i}"),
                format!("`{}` is declared but nothing in the spec processes it", t.key()),
            )
            .lv(format!(
                "personas datu veids `{}` ir norādīts, bet specifikācijā nekas to neapstrādā",
                t.key()
            ))
            .help("declare only the types the study needs (MK403 p.3.5), or request the fields that carry it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{base, found, spec_with};
    use serde_json::json;

    #[test]
    fn consistent_declaration_passes() {
        assert!(run_rule(&RULE, &base()).is_empty());
    }

    #[test]
    fn missing_declaration_lists_the_types_needed() {
        let spec = spec_with(|v| v["personal_data_types"] = json!([]));
        let d = run_rule(&RULE, &spec);
        assert_eq!(d.len(), 1);
        assert!(
            d[0].help
                .as_deref()
                .unwrap()
                .contains("proceeding_identifiers")
        );
    }

    #[test]
    fn registry_request_implies_codes_and_unused_types_warn() {
        let spec = spec_with(|v| {
            v["data_scope"]["service_is"]["fields"]
                .as_object_mut()
                .unwrap()
                .remove("proceeding_number");
            v["personal_data_types"] = json!([
                "personal_code",
                "probation_records",
                "demographics",
                "criminal_records",
                "health"
            ]);
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(
            found(&d),
            [
                ("/personal_data_types".into(), "error"),
                ("/personal_data_types/4".into(), "warning")
            ]
        );
        assert!(d[0].message.contains("proceeding_identifiers"));
        assert_eq!(d[0].regulation, ["p.3.5", "p.12"]);
    }
}
