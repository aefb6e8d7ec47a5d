//! SF120: phases are unique, run forwards, in order, and end by publication (MK403 p.3.4).

use std::collections::HashMap;

use super::{Check, Findings, Rule};
use crate::diagnostic::{Severity, shown};
use crate::model::Spec;

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
is done.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut last_deadline = None;
    let publication = spec.publication.as_ref().and_then(|p| p.planned_date);
    for (i, phase) in spec.phases().iter().enumerate() {
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
}
