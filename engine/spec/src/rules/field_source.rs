//! SF110: a catalogue key is requested from the source that holds it (MK403 p.13, p.15, p.16).

use super::{Check, Findings, Rule};
use crate::catalogue;
use crate::diagnostic::{Severity, points_lv};
use crate::model::Spec;

pub static RULE: Rule = Rule {
    code: "SF110",
    name: "field-source",
    severity: Severity::Error,
    points: &["p.9", "p.13", "p.15", "p.16"],
    summary: "A field is requested from the source that holds it, and the error names the right source.",
    summary_lv: "Lauku pieprasa no avota, kurā tas ir, un kļūdas ziņojums nosauc pareizo avotu.",
    explanation: "The Information Centre provides only the p.13 fields, the Prison Administration \
only the p.15 (rulings) and p.16 (resocialisation) fields, and the Service IS its own catalogue. \
A key listed under a source that does not hold it (say `release_regime`, p.15.5, under \
`information_centre`) is reported with the source and the spec path where it belongs. Keys that \
no source holds are schema errors (SF010) with a \"did you mean\".",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    for field in spec.requested_fields() {
        if catalogue::lookup(field.source, field.key).is_some() {
            continue;
        }
        let elsewhere: Vec<_> = catalogue::sources_of(field.key).collect();
        let Some(first) = elsewhere.first() else {
            continue;
        };
        let where_ = elsewhere
            .iter()
            .map(|e| {
                format!(
                    "{} ({})",
                    e.source.title(),
                    e.point
                        .map_or_else(|| e.source.point().to_owned(), |p| format!("MK403 {p}"))
                )
            })
            .collect::<Vec<_>>()
            .join(" and ");
        let where_lv = elsewhere
            .iter()
            .map(|e| {
                format!(
                    "{} ({})",
                    e.source.title_lv(),
                    match e.point {
                        Some(p) => format!("MK403 {}", points_lv(&[p])),
                        None => points_lv(&[e.source.point()]),
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(" un ");
        // p.9: each piece of information comes from the Service IS or is requested from the
        // institution whose register holds it.
        let message = format!(
            "`{}` is not provided by {}; it comes from {} (MK403 p.9)",
            field.key,
            field.source.title(),
            where_
        );
        // The points the message names, and no other.
        let points = crate::diagnostic::points_in(&message);
        let points: Vec<&str> = points.iter().map(String::as_str).collect();
        f.report(&field.pointer(), message)
            .lv(format!(
                "{} nesniedz `{}`; to sniedz {where_lv} (MK403 9. p.)",
                field.source.title_lv(),
                field.key
            ))
            .points(&points)
            .help(format!("move it to `{}`", first.source.spec_path()))
            .fix(crate::diagnostic::Fix::MoveTo(format!(
                "/{}",
                first.source.spec_path().replace('.', "/")
            )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{base, spec_with};
    use serde_json::json;

    #[test]
    fn prison_key_asked_of_the_information_centre_names_the_prison_administration() {
        assert!(run_rule(&RULE, &base()).is_empty());
        let spec = spec_with(|v| {
            v["data_scope"]["information_centre"]["fields"]["release_regime"] =
                json!("regime at release")
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].pointer,
            "/data_scope/information_centre/fields/release_regime"
        );
        assert!(
            d[0].message.contains("Prison Administration rulings"),
            "{}",
            d[0].message
        );
        assert!(d[0].regulation.contains(&"p.15.5".to_string()));
        assert_eq!(
            d[0].help.as_deref(),
            Some("move it to `data_scope.prison_administration.rulings.fields`")
        );
    }
}
