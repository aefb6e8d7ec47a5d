//! # studyflow-plan
//!
//! Compiles a study spec into the plan the engine executes: a DAG of steps (approval,
//! contract gate, acquisition, requests and answers, linkage, deletion of identifiers, quality
//! check, anonymisation, follow-up waves, contact, transfer, analysis, notice, publication,
//! destruction, retention), each with its actor, the data class it reads and writes, the MK403
//! points it rests on, its trigger and its deadline, computed on the Latvian working-day
//! calendar where the date is known. Pure: no IO.
//!
//! ```
//! use studyflow_calendar::Calendar;
//! let yaml = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../specs/recidivism-2026-cohort.yaml")).unwrap();
//! let checked = studyflow_spec::check(&yaml);
//! let spec = checked.spec.unwrap();
//! let (plan, findings) = studyflow_plan::compile(&spec, &yaml, &Calendar::latvia(), None);
//! assert!(findings.is_empty(), "{findings:?}");
//! assert!(plan.hash.starts_with("sha256:"));
//! assert_eq!(plan.step("delete-identifiers").unwrap().regulation[1], "p.17.3");
//! ```
//!
//! The plan-level checks ([`checks`], SF2xx) run on every compiled plan and in
//! `studyflow validate` through [`check`].

pub mod checks;
pub mod compile;
pub mod diff;
pub mod model;
pub mod render;
pub mod svg;

pub use compile::{compile, prison_notice_day, stage_deadline, stage_start, waves};
pub use model::{
    About, Actor, DataClass, Deadline, DeadlineKind, Plan, Registry, Step, StepKind, TaskBody,
    Trigger, WaveRef,
};

use jiff::civil::Date;
use sha2::{Digest, Sha256};
use studyflow_calendar::Calendar;

/// The compiler's version: part of every plan hash, so a compiler that would build a
/// different plan from the same spec gives a different hash. Raise `PLAN_FORMAT` whenever the
/// plan a spec compiles to changes.
pub const COMPILER_VERSION: &str = concat!(
    "studyflow-plan ",
    env!("CARGO_PKG_VERSION"),
    " format ",
    "4"
);

/// The version of the JSON plan format (`studyflow plan --format json`).
pub const FORMAT: &str = "studyflow-plan/1";

/// sha256 over the spec bytes, the calendar data version and the compiler version, each
/// length-prefixed so no two different inputs hash alike.
pub fn plan_hash(spec_bytes: &[u8], calendar: &Calendar) -> String {
    let mut h = Sha256::new();
    for part in [
        COMPILER_VERSION.as_bytes(),
        calendar.version().as_bytes(),
        spec_bytes,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    let digest = h.finalize();
    format!("sha256:{}", hex::encode(digest))
}

/// A spec file checked through all layers, the plan's included.
#[derive(Debug)]
pub struct Checked {
    /// The spec layers' outcome, with the plan-level findings among its diagnostics.
    pub checked: studyflow_spec::Checked,
    /// The plan, when the spec could be typed.
    pub plan: Option<Plan>,
}

/// Checks one spec file's bytes (YAML, schema, legal rules) and compiles its plan, whose
/// findings (SF2xx) are placed in the file like every other.
pub fn check(bytes: &[u8], calendar: &Calendar, today: Option<Date>) -> Checked {
    let mut plan = None;
    let checked = studyflow_spec::check_extended(
        bytes,
        studyflow_spec::yaml::Limits::default(),
        &mut |spec| {
            let (p, findings) = compile(spec, bytes, calendar, today);
            plan = Some(p);
            findings
        },
    );
    Checked { checked, plan }
}

/// What the rule reference says of the finding `code`, of any layer (YAML and schema, the
/// legal rules, the plan's): an editor's hover on a finding.
pub fn rule_doc(code: &str) -> Option<studyflow_spec::rules::RuleDoc<'static>> {
    use studyflow_spec::rules::{RULES, STRUCTURAL};
    if let Some(r) = RULES.iter().find(|r| r.code == code) {
        return Some(r.doc());
    }
    if let Some(r) = checks::RULES.iter().find(|r| r.code == code) {
        return Some(**r);
    }
    STRUCTURAL.iter().find(|c| c.code == code).map(|c| c.doc())
}

/// The rule reference: the spec layers' and the plan's (`docs/rules.md`).
pub fn reference_markdown() -> String {
    let mut out = studyflow_spec::rules::reference_markdown();
    out.push_str(
        "\n## Plan rules (SF2xx)\n\n\
         `studyflow validate` and `studyflow plan` compile each spec that could be typed into its plan \
         and check the plan: how data classes flow through the steps, and the dates the calendar \
         computes. Flow findings point at the start of the file: they describe the plan, not a line.\n",
    );
    for rule in checks::RULES {
        out.push_str(&rule.section());
    }
    out
}

#[cfg(test)]
mod tests {
    /// Every rule of every layer says what it checks in Latvian too (the Latvian pages show
    /// it beside a finding's English message): not empty, not the English, and citing the
    /// same MK403 points and naming the same spec keys (in backquotes) as the English line,
    /// and without common English words.
    #[test]
    fn every_rule_is_summarised_in_latvian() {
        use studyflow_spec::rules::{RULES, STRUCTURAL};
        let mut docs: Vec<_> = STRUCTURAL
            .iter()
            .map(|c| super::rule_doc(c.code).unwrap())
            .collect();
        docs.extend(RULES.iter().map(|r| r.doc()));
        docs.extend(super::checks::RULES.iter().map(|r| **r));
        assert!(docs.len() > 40, "{}", docs.len());
        // The points, however each language writes them, and the spec's keys.
        let facts = |s: &str| {
            let mut v: Vec<String> = studyflow_spec::regulation::cited_points(s)
                .into_iter()
                .chain(s.split('`').skip(1).step_by(2).map(str::to_owned))
                .collect();
            v.sort();
            v
        };
        let english = [
            " the ", "The ", " and ", " of ", " from ", " with ", " is ", " a ",
        ];
        for d in docs {
            assert!(
                !d.summary_lv.trim().is_empty() && d.summary_lv != d.summary,
                "{}",
                d.code
            );
            // Latvian words, the spec's keys (in backquotes) aside.
            let words: String = d.summary_lv.split('`').step_by(2).collect();
            for w in english {
                assert!(
                    !words.contains(w),
                    "{}: {:?} has {w:?}",
                    d.code,
                    d.summary_lv
                );
            }
            assert_eq!(
                facts(d.summary),
                facts(d.summary_lv),
                "{}: {} / {}",
                d.code,
                d.summary,
                d.summary_lv
            );
        }
    }
}
