//! SF140: anonymisation is declared coherently (MK403 p.7, p.21, p.30).

use super::{Check, Findings, Rule, blank};
use crate::catalogue::{self, FieldClass, Source};
use crate::diagnostic::{Lang, Severity, shown_in};
use crate::model::{DatePolicy, Spec};

pub static RULE: Rule = Rule {
    code: "SF140",
    name: "anonymisation",
    severity: Severity::Error,
    points: &["p.7"],
    summary: "Quasi-identifiers are requested non-identifying fields, the date anchor exists, and identifying data is justified and stays with the Service.",
    summary_lv: "Kvaziidentifikatori ir pieprasīti neidentificējoši lauki, datuma atskaites lauks pastāv, un identificējošie dati ir pamatoti un paliek dienestā.",
    explanation: "If the purpose can be reached with anonymised information, the Service \
anonymises right after verification and linkage, deleting personal data and identifiers (p.7). \
Each quasi-identifier must be a field the spec requests, and not an `identifier`-class field \
(those are deleted, p.7, p.17.3). With `date_policy: relative_to_anchor`, `anchor_field` must \
name a requested Service IS date field. When the purpose cannot be reached with anonymised \
data, `why_identifying_data_is_needed` must say why. A study carried out by an external \
researcher must be reachable with anonymised data: identifying information is processed by \
service researchers (p.21), and studyflow transfers only anonymised data to an external \
researcher, besides the contact details of a consented contact (p.32). This is studyflow's \
policy, stricter than the text: p.25.1, p.33.1 and p.34 contemplate identifying data reaching \
an external researcher, a transfer studyflow does not automate. An external study without \
quasi-identifiers is a warning: its release could not be checked for k-anonymity. A field in \
`bands` must be a requested plain attribute (not a date, not an identifier), banded by 2 or more.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let Some(a) = &spec.anonymisation else { return };
    let requested = spec.requested_fields();
    for (i, qi) in a.quasi_identifiers.iter().enumerate() {
        let pointer = format!("/anonymisation/quasi_identifiers/{i}");
        let matches: Vec<_> = requested.iter().filter(|r| r.key == qi).collect();
        if matches.is_empty() {
            f.report(
                &pointer,
                format!(
                    "quasi-identifier {} is not a field the spec requests",
                    crate::diagnostic::shown(qi)
                ),
            )
            .lv(format!(
                "kvaziidentifikators {} nav specifikācijā pieprasīts lauks",
                shown_in(qi, Lang::Lv)
            ))
            .help("list fields requested under `data_scope`");
            continue;
        }
        let identifying = matches.iter().any(|r| {
            catalogue::lookup(r.source, r.key).is_some_and(|e| e.class == FieldClass::Identifier)
        });
        if identifying {
            f.report(&pointer, format!("`{qi}` is an identifier; it is deleted before analysis, so it cannot be a quasi-identifier of the anonymised data (MK403 p.7, p.17.3)"))
                .lv(format!("`{qi}` ir identifikators; to dzēš pirms analīzes, tāpēc tas nevar būt anonimizētās informācijas kvaziidentifikators (MK403 7., 17.3. p.)"))
                .points(&["p.7", "p.17.3"]);
        }
    }
    for (key, width) in &a.bands {
        let pointer = crate::diagnostic::pointer_join("/anonymisation/bands", key);
        let field = requested.iter().find(|r| r.key == key.as_str());
        match field.and_then(|r| catalogue::lookup(r.source, r.key)) {
            None => {
                f.report(
                    &pointer,
                    format!(
                        "{} is not a field the spec requests, so it cannot be banded",
                        crate::diagnostic::shown(key)
                    ),
                )
                .lv(format!(
                    "{} nav specifikācijā pieprasīts lauks, tāpēc to nevar grupēt intervālos",
                    shown_in(key, Lang::Lv)
                ));
            }
            Some(e) if e.class != FieldClass::Attribute => {
                f.report(&pointer, format!("`{key}` is not a plain attribute (dates follow `date_policy`; identifiers are deleted), so it cannot be banded (MK403 p.7)"))
                    .lv(format!("`{key}` nav vienkāršs atribūts (datumus apstrādā pēc `date_policy`, identifikatorus dzēš), tāpēc to nevar grupēt intervālos (MK403 7. p.)"));
            }
            Some(_) if width.0 < 2 => {
                f.report(
                    &pointer,
                    format!("a band of {} changes nothing; use 2 or more", width.0),
                )
                .lv(format!(
                    "intervāls ar platumu {} neko nemaina; norādiet 2 vai vairāk",
                    width.0
                ));
            }
            Some(_) => {}
        }
    }
    if a.date_policy == DatePolicy::RelativeToAnchor {
        match a.anchor_field.as_deref() {
            None => {
                f.report("/anonymisation/anchor_field", "`relative_to_anchor` needs `anchor_field`: the Service IS date the days are counted from")
                    .lv("`relative_to_anchor` prasa `anchor_field`: dienesta informācijas sistēmas datumu, no kura skaita dienas");
            }
            Some(k) => {
                let ok = requested.iter().any(|r| {
                    r.source == Source::ServiceIs
                        && r.key == k
                        && catalogue::lookup(r.source, k)
                            .is_some_and(|e| e.class == FieldClass::Date)
                });
                if !ok {
                    f.report("/anonymisation/anchor_field", format!("{} is not a requested Service IS date field", crate::diagnostic::shown(k)))
                        .lv(format!("{} nav pieprasīts dienesta informācijas sistēmas datuma lauks", shown_in(k, Lang::Lv)))
                        .help("request it under `data_scope.service_is.fields`, e.g. `supervision_start_date`");
                }
            }
        }
    }
    if a.purpose_reachable_with_anonymised_data == Some(false) {
        if blank(a.why_identifying_data_is_needed.as_deref()) {
            f.report("/anonymisation/why_identifying_data_is_needed", "the purpose cannot be reached with anonymised data: say why identifying information is needed (MK403 p.7)")
                .lv("pētījuma mērķi nevar sasniegt, izmantojot anonimizētu informāciju: norādiet, kāpēc nepieciešama identificējoša informācija (MK403 7. p.)");
        }
        if spec.external.is_some() {
            f.report("/anonymisation/purpose_reachable_with_anonymised_data", "studyflow transfers only anonymised data to an external researcher (besides a consented contact, MK403 p.32); identifying data stays with the service researchers (MK403 p.7, p.21)")
                .lv("studyflow pētījuma izstrādātājam nodod tikai anonimizētu informāciju (izņemot kontaktinformāciju saziņai ar datu subjektiem, kuri devuši piekrišanu, MK403 32. p.); identificējošā informācija paliek pie dienesta pētniekiem (MK403 7., 21. p.)")
                .points(&["p.7", "p.21", "p.32"])
                .help("MK403 p.25.1, p.33.1 and p.34 contemplate identifying data reaching an external researcher, but studyflow does not automate that transfer; see docs/regulation-coverage.md");
        }
    }
    if spec.external.is_some() && a.quasi_identifiers.is_empty() {
        f.warn("/anonymisation/quasi_identifiers", "no quasi-identifiers are declared, so the release to the external researcher cannot be checked for k-anonymity (MK403 p.7)")
            .lv("nav norādīts neviens kvaziidentifikators, tāpēc pētījuma izstrādātājam nododamās informācijas k-anonimitāti nevar pārbaudīt (MK403 7. p.)")
            .points(&["p.7"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{base, spec_with};
    use serde_json::json;

    #[test]
    fn bands_only_for_requested_plain_attributes() {
        let spec = spec_with(|v| {
            v["anonymisation"]["bands"] =
                json!({"sex": 5, "supervision_start_date": 7, "personal_code": 2, "height": 3});
        });
        let d = run_rule(&RULE, &spec);
        let at: Vec<&str> = d
            .iter()
            .filter(|d| d.pointer.starts_with("/anonymisation/bands"))
            .map(|d| d.pointer.as_str())
            .collect();
        assert_eq!(
            at,
            [
                "/anonymisation/bands/height",
                "/anonymisation/bands/personal_code",
                "/anonymisation/bands/supervision_start_date"
            ]
        );
        let one = spec_with(|v| v["anonymisation"]["bands"] = json!({"sex": 1}));
        assert!(
            run_rule(&RULE, &one)
                .iter()
                .any(|d| d.message.contains("changes nothing"))
        );
    }

    #[test]
    fn quasi_identifiers_and_anchor() {
        assert!(run_rule(&RULE, &base()).is_empty());
        let spec = spec_with(|v| {
            v["anonymisation"]["quasi_identifiers"] = json!(["sex", "personal_code", "region"]);
            v["anonymisation"]["date_policy"] = json!("relative_to_anchor");
            v["anonymisation"]["anchor_field"] = json!("mediation_start_date");
        });
        let d = run_rule(&RULE, &spec);
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/anonymisation/quasi_identifiers/1",
                "/anonymisation/quasi_identifiers/2",
                "/anonymisation/anchor_field"
            ]
        );
    }

    #[test]
    fn external_study_must_be_anonymised() {
        let spec = spec_with(|v| {
            v["initiator"]["kind"] = json!("external_legal_person");
            v["external"] = json!({});
            v["anonymisation"]["purpose_reachable_with_anonymised_data"] = json!(false);
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(d.len(), 2);
        assert!(d[1].regulation.contains(&"p.21".to_string()));
    }
}
