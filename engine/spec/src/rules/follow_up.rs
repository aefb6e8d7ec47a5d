//! SF150: recidivism follow-ups as MK403 p.19–20 define them.

use std::collections::HashSet;

use super::{Check, Findings, Rule};
use crate::catalogue::{self, Source};
use crate::diagnostic::{Severity, shown};
use crate::model::{Exchange, Spec, StudyDesign, WAVES};

pub static RULE: Rule = Rule {
    code: "SF150",
    name: "follow-up",
    severity: Severity::Error,
    points: &["p.19", "p.20"],
    summary: "Follow-ups use only the six waves of p.19, only Punishment Register fields, automated exchange, in a longitudinal study whose anchor dates are requested.",
    explanation: "For recidivism studies the Service requests the p.13 information 1, 3 and 5 years \
after the start and after the end of a compulsory educational measure, sentence execution in the \
Service, or a mediation (p.19): six waves per subject. Waves must be among \
`1y_after_start`, `3y_after_start`, `5y_after_start`, `1y_after_end`, `3y_after_end`, \
`5y_after_end`, each at most once, and at least one. Fields must be Information Centre (p.13) \
fields; a field of another source is reported with its source. The exchange is automated \
(p.20). Only a study that follows subjects over time (`methodology.design: longitudinal`) \
requests follow-ups, and the Service IS must supply the anchor event's start date (for \
`…after_start` waves) and end date (for `…after_end` waves), or the waves cannot be scheduled.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let Some(fu) = &spec.follow_up else { return };
    let design = spec.methodology.as_ref().map(|m| m.design);
    if design != Some(StudyDesign::Longitudinal) {
        f.report("/follow_up", "recidivism follow-ups are only for a study that follows subjects over time (MK403 p.19)")
            .points(&["p.19", "p.3.2"])
            .help("set `methodology.design: longitudinal`, or remove `follow_up`");
    }
    if fu.waves.is_empty() {
        f.report(
            "/follow_up/waves",
            "request at least one of the six follow-ups (MK403 p.19)",
        );
    }
    let mut seen = HashSet::new();
    for (i, w) in fu.waves.iter().enumerate() {
        let pointer = format!("/follow_up/waves/{i}");
        if !WAVES.iter().any(|(name, _)| *name == w.0) {
            let known: Vec<&str> = WAVES.iter().map(|(n, _)| *n).collect();
            let d = f.report(&pointer, format!("{} is not one of the six follow-ups of MK403 p.19 (1, 3 and 5 years after the start and after the end)", shown(&w.0)))
                .points(&["p.19"]);
            match crate::suggest::closest(&w.0, known.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!(
                    "use one of {}",
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
        } else if !seen.insert(w.0.as_str()) {
            f.report(&pointer, format!("wave `{}` is requested twice", w.0))
                .points(&["p.19"]);
        }
    }
    for (i, field) in fu.fields.iter().enumerate() {
        if catalogue::lookup(Source::InformationCentre, &field.0).is_some() {
            continue;
        }
        let pointer = format!("/follow_up/fields/{i}");
        let elsewhere: Vec<String> = catalogue::sources_of(&field.0)
            .map(|e| e.source.title().to_owned())
            .collect();
        let msg = if elsewhere.is_empty() {
            format!(
                "`{}` is not a Punishment Register field; follow-ups request only the p.13 information (MK403 p.19)",
                field.0
            )
        } else {
            format!(
                "`{}` comes from {}, but follow-ups request only the Punishment Register's p.13 information (MK403 p.19)",
                field.0,
                elsewhere.join(" and ")
            )
        };
        f.report(&pointer, msg).points(&["p.19", "p.13"]);
    }
    if fu.exchange != Exchange::Automated {
        f.report(
            "/follow_up/exchange",
            "follow-up exchange with the Information Centre is automated (MK403 p.20)",
        )
        .points(&["p.20"]);
    }
    let [start, end] = fu.anchor_event.date_fields();
    let is_fields = spec
        .data_scope
        .as_ref()
        .and_then(|d| d.service_is.as_ref())
        .map(|s| &s.fields.0);
    let has = |k: &str| is_fields.is_some_and(|m| m.contains_key(k));
    for (suffix, key) in [("_after_start", start), ("_after_end", end)] {
        if fu.waves.iter().any(|w| w.0.ends_with(suffix)) && !has(key) {
            f.report(
                "/follow_up/anchor_event",
                format!(
                    "waves counted from the anchor event's {} need `{key}` from the Service IS",
                    if suffix == "_after_start" {
                        "start"
                    } else {
                        "end"
                    }
                ),
            )
            .points(&["p.19"])
            .help(format!(
                "request `{key}` under `data_scope.service_is.fields`"
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

    fn with_follow_up(fu: serde_json::Value) -> Spec {
        spec_with(|v| v["follow_up"] = fu)
    }

    #[test]
    fn valid_follow_up_passes() {
        let spec = with_follow_up(
            json!({"anchor_event": "sentence_execution", "waves": ["1y_after_start", "5y_after_end"], "fields": ["offence_date"]}),
        );
        assert!(run_rule(&RULE, &spec).is_empty());
    }

    #[test]
    fn waves_fields_exchange_and_anchor() {
        let spec = with_follow_up(json!({
            "anchor_event": "mediation",
            "waves": ["2y_after_start", "1y_after_end", "1y_after_end"],
            "fields": ["release_regime", "offence_date"],
            "exchange": "secure_electronic"
        }));
        let d = run_rule(&RULE, &spec);
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/follow_up/waves/0",
                "/follow_up/waves/2",
                "/follow_up/fields/0",
                "/follow_up/exchange",
                "/follow_up/anchor_event",
                "/follow_up/anchor_event"
            ]
        );
        assert_eq!(d[0].help.as_deref(), Some("did you mean `1y_after_start`?"));
        assert!(d[2].message.contains("Prison Administration rulings"));
    }

    #[test]
    fn only_longitudinal_studies_follow_up() {
        let spec = spec_with(|v| {
            v["methodology"]["design"] = json!("cross_sectional");
            v["follow_up"] = json!({"anchor_event": "sentence_execution", "waves": ["1y_after_start"], "fields": ["offence_date"]});
        });
        assert_eq!(run_rule(&RULE, &spec)[0].pointer, "/follow_up");
    }
}
