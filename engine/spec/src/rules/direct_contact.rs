//! SF160: direct contact only with consent, for the reasons of p.31, with the fields of p.32.

use super::{Check, Findings, Rule, blank};
use crate::catalogue::CONTACT_FIELDS;
use crate::diagnostic::{Lang, Severity, points_lv, shown, shown_in};
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF160",
    name: "direct-contact",
    severity: Severity::Error,
    points: &["p.31", "p.32"],
    summary: "Contact details are asked for only through direct contact, which states consent, the target group, why there is no alternative and the risk assessment, and transfers only first name, surname, e-mail or phone.",
    summary_lv: "Kontaktinformāciju pieprasa tikai tiešai saziņai, kurai norādīta piekrišana, mērķgrupa, kāpēc nav citas iespējas, un riska novērtējums, un nodod tikai vārdu, uzvārdu, e-pasta adresi vai tālruņa numuru.",
    explanation: "Data subjects are contacted directly only with their consent, and only when a \
specific target group must be surveyed (p.31.1), there is no alternative way (p.31.2), and the \
risk to the subject has been weighed against the public-interest benefit (p.31.3). `consent`, \
`target_group`, `why_no_alternative` and `risk_assessment` are all required. The Service then \
transfers first name, surname, e-mail or phone number, and nothing else (p.32): any other field \
is an error, as is a repeated one; without e-mail or phone the subject cannot be reached (a \
warning). Asking any source — the Service IS too — for a first name, surname, phone or e-mail \
is direct contact with a data subject whatever the study means to do with it: it needs the \
`direct_contact` section, and the field listed in its `fields`.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    // Asking any source for a name, surname, phone or e-mail is direct contact with a data
    // subject, whatever the study means to do with it (p.31): it goes through the consent
    // route, and only the fields of that route are transferred (p.32).
    let listed: Vec<&str> = spec
        .direct_contact
        .iter()
        .flat_map(|dc| dc.fields.iter().map(|x| x.0.as_str()))
        .collect();
    for r in spec.requested_fields() {
        if !CONTACT_FIELDS.contains(&r.key) {
            continue;
        }
        if spec.direct_contact.is_none() {
            f.report(
                &r.pointer(),
                format!("`{}` is a contact detail: asking for it is direct contact with a data subject, which the Service makes only with the subject's consent (MK403 p.31–32)", r.key),
            )
            .lv(format!("`{}` ir kontaktinformācija: tās pieprasīšana ir tieša saziņa ar datu subjektu, ko veic tikai ar datu subjekta piekrišanu (MK403 31.–32. p.)", r.key))
            .points(&["p.31", "p.32"])
            .help("add a `direct_contact` section (consent, target group, why there is no alternative, risk assessment) and list the field in its `fields`");
        } else if !listed.contains(&r.key) {
            f.report(
                &r.pointer(),
                format!("`{}` is a contact detail the consent route does not list: only the fields of `direct_contact.fields` are transferred, for the consenting subjects (MK403 p.31–32)", r.key),
            )
            .lv(format!("`{}` ir kontaktinformācija, kas nav norādīta saziņai ar piekrišanu: nodod tikai `direct_contact.fields` laukus un tikai par datu subjektiem, kuri devuši piekrišanu (MK403 31.–32. p.)", r.key))
            .points(&["p.31", "p.32"])
            .help("list it in `direct_contact.fields`, or drop it here");
        }
    }
    let Some(dc) = &spec.direct_contact else {
        return;
    };
    if dc.consent.is_none() {
        f.report("/direct_contact/consent", "data subjects are contacted only with their consent; state how it is obtained (MK403 p.31)")
            .lv("ar datu subjektiem sazinās tikai ar viņu piekrišanu; norādiet, kā piekrišanu iegūst (MK403 31. p.)")
            .points(&["p.31"]);
    }
    for (key, value, what, what_lv, point) in [
        (
            "target_group",
            dc.target_group.as_deref(),
            "the specific target group that must be surveyed",
            "konkrētā pētījuma mērķgrupa, kas mērķtiecīgi jāaptaujā",
            "p.31.1",
        ),
        (
            "why_no_alternative",
            dc.why_no_alternative.as_deref(),
            "why there is no alternative way",
            "pamatojums, kāpēc nav alternatīvas, kā veikt pētījumu citādā veidā",
            "p.31.2",
        ),
        (
            "risk_assessment",
            dc.risk_assessment.as_deref(),
            "how the risk to the subjects was weighed against the public-interest benefit",
            "izvērtējums, kā datu subjektu iesaistīšanas risks samērots ar pētījuma rezultātā gūstamo ieguvumu sabiedrības interešu labā",
            "p.31.3",
        ),
    ] {
        if blank(value) {
            f.report(
                &format!("/direct_contact/{key}"),
                format!("direct contact must state {what} (MK403 {point})"),
            )
            .lv(format!(
                "tiešai saziņai jānorāda {what_lv} (MK403 {})",
                points_lv(&[point])
            ))
            .points(&[point]);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, field) in dc.fields.iter().enumerate() {
        let pointer = format!("/direct_contact/fields/{i}");
        if !CONTACT_FIELDS.contains(&field.0.as_str()) {
            f.report(&pointer, format!("{} may not be transferred for a contact: only first name, surname, e-mail or phone (MK403 p.32)", shown(&field.0)))
                .lv(format!("{} nedrīkst nodot saziņas nolūkā: nodod tikai vārdu, uzvārdu, elektroniskā pasta adresi vai tālruņa numuru (MK403 32. p.)", shown_in(&field.0, Lang::Lv)))
                .points(&["p.32"])
                .help("use `first_name`, `last_name`, `email` or `phone`");
        } else if !seen.insert(field.0.as_str()) {
            f.report(&pointer, format!("`{}` is listed twice", field.0))
                .lv(format!("`{}` norādīts divreiz", field.0))
                .points(&["p.32"]);
        }
    }
    if !seen.contains("email") && !seen.contains("phone") {
        f.warn(
            "/direct_contact/fields",
            "without `email` or `phone` the subjects cannot be contacted (MK403 p.32)",
        )
        .lv("bez `email` vai `phone` ar datu subjektiem nevar sazināties (MK403 32. p.)")
        .points(&["p.32"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::spec_with;
    use serde_json::json;

    /// A contact field asked from any source is direct contact (p.31): without the consent
    /// route it is an error at the field; with it, the field must be one the route lists.
    #[test]
    fn contact_fields_need_the_consent_route() {
        let calls = spec_with(|v| {
            v["data_scope"]["service_is"]["fields"]["phone"] = json!("to call clients");
        });
        let d = run_rule(&RULE, &calls);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].pointer, "/data_scope/service_is/fields/phone");
        assert!(d[0].message.contains("MK403 p.31–32"), "{}", d[0].message);
        assert_eq!(d[0].regulation, ["p.31", "p.32"]);
        let unlisted = spec_with(|v| {
            v["data_scope"]["service_is"]["fields"]["email"] = json!("to send the link");
            v["direct_contact"] = json!({"consent": "written", "target_group": "t", "why_no_alternative": "w", "risk_assessment": "r", "fields": ["first_name", "phone"]});
        });
        let d = run_rule(&RULE, &unlisted);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].pointer, "/data_scope/service_is/fields/email");
        let listed = spec_with(|v| {
            v["data_scope"]["service_is"]["fields"]["phone"] = json!("for the interview");
            v["direct_contact"] = json!({"consent": "written", "target_group": "t", "why_no_alternative": "w", "risk_assessment": "r", "fields": ["first_name", "phone"]});
        });
        assert!(run_rule(&RULE, &listed).is_empty());
    }

    #[test]
    fn contact_conditions() {
        let good = spec_with(
            |v| v["direct_contact"] = json!({"consent": "written", "target_group": "t", "why_no_alternative": "w", "risk_assessment": "r", "fields": ["first_name", "last_name", "phone"]}),
        );
        assert!(run_rule(&RULE, &good).is_empty());
        let bad = spec_with(|v| {
            v["direct_contact"] =
                json!({"target_group": "t", "fields": ["first_name", "address", "first_name"]})
        });
        let d = run_rule(&RULE, &bad);
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/direct_contact/consent",
                "/direct_contact/why_no_alternative",
                "/direct_contact/risk_assessment",
                "/direct_contact/fields/1",
                "/direct_contact/fields/2",
                "/direct_contact/fields"
            ]
        );
    }
}
