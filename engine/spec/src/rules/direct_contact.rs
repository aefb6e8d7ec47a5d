//! SF160: direct contact only with consent, for the reasons of p.31, with the fields of p.32.

use super::{Check, Findings, Rule, blank};
use crate::catalogue::CONTACT_FIELDS;
use crate::diagnostic::{Severity, shown};
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF160",
    name: "direct-contact",
    severity: Severity::Error,
    points: &["p.31", "p.32"],
    summary: "Direct contact states consent, the target group, why there is no alternative and the risk assessment, and transfers only first name, surname, e-mail or phone.",
    explanation: "Data subjects are contacted directly only with their consent, and only when a \
specific target group must be surveyed (p.31.1), there is no alternative way (p.31.2), and the \
risk to the subject has been weighed against the public-interest benefit (p.31.3). `consent`, \
`target_group`, `why_no_alternative` and `risk_assessment` are all required. The Service then \
transfers first name, surname, e-mail or phone number, and nothing else (p.32): any other field \
is an error, as is a repeated one; without e-mail or phone the subject cannot be reached (a \
warning).",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let Some(dc) = &spec.direct_contact else {
        return;
    };
    if dc.consent.is_none() {
        f.report("/direct_contact/consent", "data subjects are contacted only with their consent; state how it is obtained (MK403 p.31)")
            .points(&["p.31"]);
    }
    for (key, value, what, point) in [
        (
            "target_group",
            dc.target_group.as_deref(),
            "the specific target group that must be surveyed",
            "p.31.1",
        ),
        (
            "why_no_alternative",
            dc.why_no_alternative.as_deref(),
            "why there is no alternative way",
            "p.31.2",
        ),
        (
            "risk_assessment",
            dc.risk_assessment.as_deref(),
            "how the risk to the subjects was weighed against the public-interest benefit",
            "p.31.3",
        ),
    ] {
        if blank(value) {
            f.report(
                &format!("/direct_contact/{key}"),
                format!("direct contact must state {what} (MK403 {point})"),
            )
            .points(&[point]);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, field) in dc.fields.iter().enumerate() {
        let pointer = format!("/direct_contact/fields/{i}");
        if !CONTACT_FIELDS.contains(&field.0.as_str()) {
            f.report(&pointer, format!("{} may not be transferred for a contact: only first name, surname, e-mail or phone (MK403 p.32)", shown(&field.0)))
                .points(&["p.32"])
                .help("use `first_name`, `last_name`, `email` or `phone`");
        } else if !seen.insert(field.0.as_str()) {
            f.report(&pointer, format!("`{}` is listed twice", field.0))
                .points(&["p.32"]);
        }
    }
    if !seen.contains("email") && !seen.contains("phone") {
        f.warn(
            "/direct_contact/fields",
            "without `email` or `phone` the subjects cannot be contacted (MK403 p.32)",
        )
        .points(&["p.32"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::spec_with;
    use serde_json::json;

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
