//! SF120: phases are unique and run forwards; those that produce the published results end by
//! the publication (MK403 p.3.4, p.22.5–22.7).

use std::collections::HashMap;

use super::{Check, Findings, Rule};
use crate::diagnostic::{Lang, Severity, points_lv, shown, shown_in};
use crate::model::{Spec, Stage};

pub static RULE: Rule = Rule {
    code: "SF120",
    name: "phases",
    severity: Severity::Error,
    points: &["p.3.4", "p.22.5", "p.22.6", "p.22.7"],
    summary: "Phase ids are unique, each phase starts on or before its deadline, and a phase that produces the published results ends by the publication.",
    summary_lv: "Posmu identifikatori ir unikāli, katrs posms sākas ne vēlāk kā tā termiņā, un posms, kurā top publicējamie rezultāti, beidzas līdz publicēšanai.",
    explanation: "The application states the study's phases and their deadlines (p.3.4); the engine \
schedules them. The text sets no order: phases may be listed in any order and may overlap. Phase \
`id`s must be unique, and a phase's `start` must not be after its `deadline`. The results are \
published once the analysis and the report exist (p.22.5–22.6): a phase that covers `analysis` \
or `report` ending after the planned publication (`publication.planned_date`) is an error. \
Disseminating the results may go on after their publication (p.22.7), and so may a phase of \
any other stage; a phase without `covers` due after the publication is a warning, since what \
it produces is not said. A phase's `covers` names the plan stages its deadline bounds \
(`studyflow plan` gives their steps that deadline); a stage the study does not have is an \
error: `follow_up` without `follow_up`, `contact` without `direct_contact`, `transfer` without \
an external researcher, `supplementation` without `data_scope.other_systems`. An external \
researcher's study whose `external` section is not written yet is told so once, by SF130, not \
again here.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let publication = spec.publication.as_ref().and_then(|p| p.planned_date);
    for (i, phase) in spec.phases().iter().enumerate() {
        for (j, stage) in phase.covers.iter().enumerate() {
            if let Some((missing, missing_lv, point)) = stage_missing(spec, *stage) {
                f.report(
                    &format!("/phases/{i}/covers/{j}"),
                    format!(
                        "phase {} covers the stage `{}`, but the study has {missing} (MK403 p.3.4, {point})",
                        shown(&phase.id),
                        stage.as_str()
                    ),
                )
                .lv(format!(
                    "posms {} aptver plāna stadiju `{}`, bet pētījumam {missing_lv} (MK403 {})",
                    shown_in(&phase.id, Lang::Lv),
                    stage.as_str(),
                    points_lv(&["p.3.4", point])
                ))
                .points(&["p.3.4", point])
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
            .lv(format!(
                "posma identifikators {} jau ir izmantots {}. posmam",
                shown_in(&phase.id, Lang::Lv),
                first + 1
            ))
            .points(&["p.3.4"])
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
            )
            .lv(format!(
                "posma {} izpildes termiņš ({deadline}) ir pirms tā sākuma ({start})",
                shown_in(&phase.id, Lang::Lv)
            ))
            .points(&["p.3.4"]);
        }
        if let (Some(deadline), Some(p)) = (phase.deadline, publication)
            && deadline > p
        {
            let results = phase
                .covers
                .iter()
                .find(|s| matches!(s, Stage::Analysis | Stage::Report));
            let at = format!("/phases/{i}/deadline");
            match results {
                Some(stage) => {
                    // The analysis is p.22.5's, the report and recommendations p.22.6's.
                    let point = if *stage == Stage::Analysis {
                        "p.22.5"
                    } else {
                        "p.22.6"
                    };
                    f.report(
                        &at,
                        format!(
                            "phase {} covers `{}` and is due ({deadline}) after the planned publication ({p}): the published results would not exist yet (MK403 p.3.4, {point})",
                            shown(&phase.id),
                            stage.as_str()
                        ),
                    )
                    .lv(format!(
                        "posms {} aptver `{}`, un tā izpildes termiņš ({deadline}) ir pēc plānotās publicēšanas ({p}): publicējamo rezultātu vēl nebūtu (MK403 {})",
                        shown_in(&phase.id, Lang::Lv),
                        stage.as_str(),
                        points_lv(&["p.3.4", point])
                    ))
                    .points(&["p.3.4", point])
                    .help("end the phase by the publication, or move the publication");
                }
                None if phase.covers.is_empty() => {
                    f.warn(
                        &at,
                        format!(
                            "phase {} is due ({deadline}) after the planned publication ({p}), and its `covers` does not say whether it produces the published results or disseminates them (MK403 p.3.4, p.22.5–22.7)",
                            shown(&phase.id)
                        ),
                    )
                    .lv(format!(
                        "posma {} izpildes termiņš ({deadline}) ir pēc plānotās publicēšanas ({p}), un tā `covers` nenorāda, vai tajā top publicējamie rezultāti vai tajā tos izplata (MK403 3.4., 22.5.–22.7. p.)",
                        shown_in(&phase.id, Lang::Lv)
                    ))
                    .points(&["p.3.4", "p.22.5", "p.22.6", "p.22.7"])
                    .help("add `covers`: a phase of `analysis` or `report` ends by the publication; dissemination (`presentation`) may go on after it (p.22.7)");
                }
                None => {}
            }
        }
    }
}

/// Why the study has no steps of `stage`, if it has none (in English, and in Latvian after
/// "pētījumam"), and the point the stage rests on.
fn stage_missing(spec: &Spec, stage: Stage) -> Option<(&'static str, &'static str, &'static str)> {
    match stage {
        Stage::FollowUp if spec.follow_up.is_none() => {
            Some(("no `follow_up`", "nav `follow_up`", "p.19"))
        }
        Stage::Contact if spec.direct_contact.is_none() => {
            Some(("no `direct_contact`", "nav `direct_contact`", "p.31"))
        }
        // An external researcher's study whose `external` section is not written (yet): SF130
        // says what it must state; a second finding here would be about the same gap.
        Stage::Transfer if spec.external.is_none() && !spec.is_external() => Some((
            "no external researcher to transfer to",
            "nav pētījuma izstrādātāja, kam nodot informāciju",
            "p.30",
        )),
        Stage::Supplementation
            if spec
                .data_scope
                .as_ref()
                .is_none_or(|d| d.other_systems.is_empty()) =>
        {
            Some((
                "no `data_scope.other_systems`",
                "nav `data_scope.other_systems`",
                "p.23",
            ))
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

    /// Unique ids and forward phases; the listing order and overlaps are free (p.3.4 sets
    /// none). After the publication: a phase of the results is an error, dissemination is not,
    /// a phase that does not say what it covers is a warning.
    #[test]
    fn phases_and_the_publication() {
        assert!(run_rule(&RULE, &base()).is_empty());
        let spec = spec_with(|v| {
            v["phases"] = json!([
                {"id": "a", "title": "A", "start": "2027-05-01", "deadline": "2027-04-01"},
                {"id": "a", "title": "B", "start": "2027-01-01", "deadline": "2027-02-01"},
                {"id": "c", "title": "C", "start": "2027-01-01", "deadline": "2028-02-01", "covers": ["analysis"]},
                {"id": "d", "title": "D", "start": "2027-01-01", "deadline": "2028-02-01", "covers": ["presentation"]},
                {"id": "e", "title": "E", "start": "2027-01-01", "deadline": "2028-02-01"}
            ]);
        });
        let d = run_rule(&RULE, &spec);
        let msgs: Vec<(&str, Severity)> =
            d.iter().map(|d| (d.message.as_str(), d.severity)).collect();
        assert_eq!(d.len(), 4, "{msgs:?}");
        assert!(msgs[0].0.contains("before its start"));
        assert!(msgs[1].0.contains("already used"));
        assert!(
            msgs[2].0.contains(
                "covers `analysis` and is due (2028-02-01) after the planned publication"
            )
        );
        assert_eq!(msgs[2].1, Severity::Error);
        // The analysis is p.22.5's; the report p.22.6's (below).
        assert_eq!(d[2].regulation, ["p.3.4", "p.22.5"]);
        assert!(msgs[2].0.ends_with("(MK403 p.3.4, p.22.5)"));
        assert!(msgs[3].0.starts_with("phase `e` is due"), "{msgs:?}");
        assert_eq!(msgs[3].1, Severity::Warning);

        // Listed out of order and overlapping: nothing to say.
        let spec = spec_with(|v| {
            v["phases"] = json!([
                {"id": "report", "title": "R", "start": "2027-05-01", "deadline": "2027-06-30", "covers": ["report"]},
                {"id": "analysis", "title": "A", "start": "2027-02-01", "deadline": "2027-05-31", "covers": ["analysis"]}
            ]);
        });
        assert!(run_rule(&RULE, &spec).is_empty());
        // On the publication day itself: allowed.
        let spec = spec_with(|v| {
            let p = v["publication"]["planned_date"].clone();
            v["phases"] = json!([{"id": "r", "title": "R", "start": "2027-01-01", "deadline": p, "covers": ["report"]}]);
        });
        assert!(run_rule(&RULE, &spec).is_empty());
        // One day after it: the report's point.
        let spec = spec_with(|v| {
            let p: jiff::civil::Date = v["publication"]["planned_date"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let late = p.tomorrow().unwrap().to_string();
            v["phases"] = json!([{"id": "r", "title": "R", "start": "2027-01-01", "deadline": late, "covers": ["report"]}]);
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].regulation, ["p.3.4", "p.22.6"]);
        assert!(d[0].message.ends_with("(MK403 p.3.4, p.22.6)"));
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
