//! SF120: phases are unique, run forwards, in order, and end by publication (MK403 p.3.4).

use std::collections::HashMap;

use super::{Check, Findings, Rule};
use crate::diagnostic::{Severity, shown};
use crate::model::{Spec, Stage};

pub static RULE: Rule = Rule {
    code: "SF120",
    name: "phases",
    severity: Severity::Error,
    points: &["p.3.4"],
    summary: "Phase ids are unique, each phase starts on or before its deadline, deadlines are in order, none falls after publication.",
    explanation: "The application states the study's phases and their deadlines (p.3.4); the engine \
schedules them. Phase `id`s must be unique; a phase's `start` must not be after its `deadline`; \
phases are listed in the order of their deadlines; and no deadline falls after the planned \
publication date (`publication.planned_date`), since the results are published when the study \
is done. A phase's `covers` names the plan stages its deadline bounds (`studyflow plan` gives \
their steps that deadline); a stage the study does not have is an error: `follow_up` without \
`follow_up`, `contact` without `direct_contact`, `transfer` without an external researcher, \
`supplementation` without `data_scope.other_systems`.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut last_deadline = None;
    let publication = spec.publication.as_ref().and_then(|p| p.planned_date);
    for (i, phase) in spec.phases().iter().enumerate() {
        for (j, stage) in phase.covers.iter().enumerate() {
            if let Some(missing) = stage_missing(spec, *stage) {
                f.report(
                    &format!("/phases/{i}/covers/{j}"),
                    format!(
                        "phase {} covers the stage `{}`, but the study has {missing}",
                        shown(&phase.id),
                        stage.as_str()
                    ),
                )
                .help("remove the stage from `covers`, or add what it needs to the spec");
            }
        }
        if let Some(first) = seen.insert(phase.id.as_str(), i) {
            f.report(
                &format!("/phases/{i}/id"),
                format!(
                    "phase id {} is already used by phase {}",
                    shown(&phase.id),
                    first + 1
                ),
            )
            .help("give every phase its own id");
        }
        if let (Some(start), Some(deadline)) = (phase.start, phase.deadline)
            && start > deadline
        {
            f.report(
                &format!("/phases/{i}/deadline"),
                format!(
                    "phase {} has its deadline ({deadline}) before its start ({start})",
                    shown(&phase.id)
                ),
            );
        }
        if let Some(deadline) = phase.deadline {
            if let Some((prev_i, prev)) = last_deadline
                && deadline < prev
            {
                f.report(&format!("/phases/{i}/deadline"), format!("phase {} is due ({deadline}) before the phase listed before it (phase {}, due {prev})", shown(&phase.id), prev_i + 1))
                    .help("list phases in the order of their deadlines");
            }
            last_deadline = Some((i, deadline));
            if let Some(p) = publication
                && deadline > p
            {
                f.report(
                    &format!("/phases/{i}/deadline"),
                    format!(
                        "phase {} is due ({deadline}) after the planned publication ({p})",
                        shown(&phase.id)
                    ),
                )
                .points(&["p.3.4"]);
            }
        }
    }
}

/// Why the study has no steps of `stage`, if it has none.
fn stage_missing(spec: &Spec, stage: Stage) -> Option<&'static str> {
    match stage {
        Stage::FollowUp if spec.follow_up.is_none() => Some("no `follow_up` (MK403 p.19)"),
        Stage::Contact if spec.direct_contact.is_none() => Some("no `direct_contact` (MK403 p.31)"),
        Stage::Transfer if spec.external.is_none() => {
            Some("no external researcher to transfer to (MK403 p.30)")
        }
        Stage::Supplementation
            if spec
                .data_scope
                .as_ref()
                .is_none_or(|d| d.other_systems.is_empty()) =>
        {
            Some("no `data_scope.other_systems` (MK403 p.23)")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{base, spec_with};
    use serde_json::json;

    #[test]
    fn phase_order_and_publication() {
        assert!(run_rule(&RULE, &base()).is_empty());
        let spec = spec_with(|v| {
            v["phases"] = json!([
                {"id": "a", "title": "A", "start": "2027-05-01", "deadline": "2027-04-01"},
                {"id": "a", "title": "B", "start": "2027-01-01", "deadline": "2027-02-01"},
                {"id": "c", "title": "C", "start": "2027-01-01", "deadline": "2028-02-01"}
            ]);
        });
        let d = run_rule(&RULE, &spec);
        let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(d.len(), 4, "{msgs:?}");
        assert!(msgs[0].contains("before its start"));
        assert!(msgs[1].contains("already used"));
        assert!(msgs[2].contains("before the phase listed before it"));
        assert!(msgs[3].contains("after the planned publication"));
    }

    #[test]
    fn covered_stages_must_exist() {
        let spec = spec_with(|v| {
            v["phases"][0]["covers"] =
                json!(["acquisition", "contact", "transfer", "supplementation"]);
        });
        let d = run_rule(&RULE, &spec);
        let at: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            at,
            [
                "/phases/0/covers/1",
                "/phases/0/covers/2",
                "/phases/0/covers/3"
            ]
        );
        assert!(
            d[0].message.contains("no `direct_contact`"),
            "{}",
            d[0].message
        );
    }
}
