//! Anonymisation of the linked study (MK403 p.7, p.24) and the cohort of its follow-up waves
//! (p.19): the released subjects, in batches of one wave and due day, each under a run
//! pseudonym of its own.

use std::collections::BTreeMap;

use serde_json::json;
use studyflow_plan::WaveRef;
use studyflow_plan::model::AnchorEdge;
use studyflow_runtime::dataplane::{StepContext, StepError, StepOutput, Subject as Run, blocking};
use studyflow_spec::model::Stage;

use super::names::RunVault;
use super::{RegistryDataPlane, fail, names, policy_of};
use crate::anonymise;
use crate::followup::{self, Anchor, Member};
use crate::table;

impl RegistryDataPlane {
    pub(super) async fn anonymise(&self, ctx: &StepContext<'_>) -> Result<StepOutput, StepError> {
        let study = ctx.study;
        let data = self.sealed_datasets(study, false).await?;
        let linked = super::link::linked(&data)
            .await?
            .ok_or_else(|| fail("the linked study is missing", false))?;
        let policy = policy_of(ctx)?;
        // What the cohort of the waves needs of each subject, before the linked study goes
        // into the anonymisation: its key and the dates of its anchor event (p.19).
        let anchors: Vec<(Option<i32>, Option<i32>)> = match &ctx.spec.follow_up {
            Some(f) => {
                let [start, end] = f.anchor_event.date_fields();
                let day =
                    |field: &str, i: usize| linked.subjects.column(field).and_then(|c| c.day_at(i));
                (0..linked.subjects.rows)
                    .map(|i| (day(start, i), day(end, i)))
                    .collect()
            }
            None => Vec::new(),
        };
        let keys = linked.keys.clone();
        let out =
            blocking(|| anonymise::anonymise_linked(linked, &policy, &anonymise::random_secret()))
                .map_err(|b| fail(b.to_string(), false))?;
        // The cohort for the waves: the released subjects' study IDs, anchor dates (p.19) and
        // codes. A subject suppressed for k-anonymity is never released, so its follow-ups are
        // not requested either (p.7: no more data than the study uses).
        let members = match &ctx.spec.follow_up {
            Some(_) => {
                let codes = data.load_optional(&names::CODES).await?.unwrap_or_default();
                members(
                    &anchors,
                    &keys,
                    &out.linked_positions,
                    &out.study_ids,
                    &codes,
                )
            }
            None => Vec::new(),
        };
        drop((anchors, keys));
        let record = json!({"k": out.report, "subjects": out.study_ids.len()});
        data.save(&names::BASELINE, &out).await?;
        drop(out);
        // The waves run in batches, one per wave and due day (p.19: one request per registry
        // and day, not one per subject), each under a run pseudonym of its own, never a
        // released study ID: the runs, their timers and the audit of them would otherwise tell
        // each released subject's anchor date. What a batch's runs need is sealed under its
        // pseudonym and goes with the keys (p.26).
        let waves = ctx
            .spec
            .follow_up
            .as_ref()
            .map(studyflow_plan::waves)
            .unwrap_or_default();
        let mut runs = Vec::new();
        for ((wave, due), members) in batches(&waves, &members, self.batch_window) {
            // The batch runs when its last member is due: its timer counts from the anchor
            // date of that member's edge (around 29 February, or with a window of several
            // days, the members' edges differ; each keeps its own window, p.19).
            let edge = waves
                .iter()
                .find(|w| w.name == wave)
                .and_then(|w| {
                    members
                        .iter()
                        .filter(|m| followup::due(w, &m.anchor) == Some(due))
                        .find_map(|m| followup::edge_of(w, &m.anchor))
                })
                .unwrap_or(due);
            let run = run_pseudonym()?;
            data.save(&names::run(&run), &RunVault::Batch { members })
                .await?;
            runs.push(Run {
                pseudonym: run,
                start: edge,
                end: Some(edge),
                wave: Some(wave.to_owned()),
            });
        }
        if ctx.spec.follow_up.is_some() {
            let cut_off = studyflow_plan::stage_deadline(ctx.spec, Stage::FollowUp);
            let expected = expected(&waves, &members, cut_off);
            self.anonymised_datasets(study)
                .save(&names::EXPECTED_WAVES, &expected)
                .await?;
        }
        Ok(StepOutput {
            record,
            subjects: runs,
            audit: Vec::new(),
        })
    }
}

/// The released subjects with their anchor dates and codes: the members of the waves. A
/// subject whose anchor start is not known has no wave. `anchors` and `keys` are by position
/// in the linked study; `positions` and `study_ids` are the released subjects'.
fn members(
    anchors: &[(Option<i32>, Option<i32>)],
    keys: &[String],
    positions: &[u32],
    study_ids: &[String],
    codes: &names::Codes,
) -> Vec<Member> {
    positions
        .iter()
        .zip(study_ids)
        .filter_map(|(&at, id)| {
            let (start, end) = anchors.get(at as usize).copied()?;
            Some(Member {
                study_id: id.clone(),
                anchor: Anchor {
                    start: table::date(start?)?,
                    end: end.and_then(table::date),
                },
                codes: codes.get(&keys[at as usize]).cloned(),
            })
        })
        .collect()
}

/// Per member: the waves it will have before the follow-up stage's cut-off, and why some
/// cannot run — counts only, for the censoring of the follow-up tables.
fn expected(
    waves: &[WaveRef],
    members: &[Member],
    cut_off: Option<jiff::civil::Date>,
) -> names::ExpectedWaves {
    let asked: Vec<(bool, i16)> = waves
        .iter()
        .map(|w| (w.edge == AnchorEdge::End, w.years))
        .collect();
    members
        .iter()
        .map(|m| {
            (
                m.study_id.clone(),
                followup::expected_waves(asked.iter().copied(), &m.anchor, cut_off),
            )
        })
        .collect()
}

/// The follow-up runs of a cohort: per wave, one batch per window of `window` days of due days
/// (p.19; a window of 1: one per due day), keyed by the last due day in it, when the batch
/// runs. A wave whose edge is not known for a subject (the end of a supervision still going
/// on) has no run for it.
fn batches(
    waves: &[WaveRef],
    members: &[Member],
    window: u16,
) -> BTreeMap<(&'static str, jiff::civil::Date), Vec<Member>> {
    let window = i32::from(window.max(1));
    let epoch = jiff::civil::date(2000, 1, 1);
    let mut grouped: BTreeMap<(&'static str, i32), (jiff::civil::Date, Vec<Member>)> =
        BTreeMap::new();
    for wave in waves {
        for m in members {
            if let Some(due) = followup::due(wave, &m.anchor) {
                let slot = (due - epoch).get_days().div_euclid(window);
                let entry = grouped
                    .entry((wave.name, slot))
                    .or_insert_with(|| (due, Vec::new()));
                entry.0 = entry.0.max(due);
                entry.1.push(m.clone());
            }
        }
    }
    grouped
        .into_iter()
        .map(|((wave, _), (last, members))| ((wave, last), members))
        .collect()
}

/// A fresh run pseudonym: random, unrelated to the study ID or anything else.
fn run_pseudonym() -> Result<String, StepError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| fail(format!("no randomness: {e}"), true))?;
    Ok(format!("R-{}", hex::encode(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, start: &str, end: Option<&str>) -> Member {
        Member {
            study_id: id.to_owned(),
            anchor: Anchor {
                start: start.parse().unwrap(),
                end: end.map(|e| e.parse().unwrap()),
            },
            codes: None,
        }
    }

    /// One run per wave and due day (p.19): subjects due the same day share a request; a wave
    /// from an end not known yet has no run for its subject.
    #[test]
    fn follow_ups_are_batched_by_wave_and_due_day() {
        let wave = |name, edge, years| WaveRef {
            name,
            point: "p.19.1",
            edge,
            years,
            since_years: 0,
        };
        let waves = [
            wave("1y_after_start", AnchorEdge::Start, 1),
            wave("1y_after_end", AnchorEdge::End, 1),
        ];
        let members = [
            member("S-a", "2026-03-10", Some("2026-09-01")),
            member("S-b", "2026-03-10", Some("2026-10-01")),
            member("S-c", "2026-03-11", None),
        ];
        let b = batches(&waves, &members, 1);
        let summary: Vec<(&str, String, Vec<&str>)> = b
            .iter()
            .map(|((w, due), m)| {
                (
                    *w,
                    due.to_string(),
                    m.iter().map(|m| m.study_id.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("1y_after_end", "2027-09-01".to_owned(), vec!["S-a"]),
                ("1y_after_end", "2027-10-01".to_owned(), vec!["S-b"]),
                (
                    "1y_after_start",
                    "2027-03-10".to_owned(),
                    vec!["S-a", "S-b"]
                ),
                ("1y_after_start", "2027-03-11".to_owned(), vec!["S-c"]),
            ]
        );
        // A window of 7 days: the start wave's two due days (10 and 11 March 2027) fall in one
        // window and run on the later; the end waves a month apart stay apart.
        let b = batches(&waves, &members, 7);
        let summary: Vec<(&str, String, usize)> = b
            .iter()
            .map(|((w, due), m)| (*w, due.to_string(), m.len()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("1y_after_end", "2027-09-01".to_owned(), 1),
                ("1y_after_end", "2027-10-01".to_owned(), 1),
                ("1y_after_start", "2027-03-11".to_owned(), 3),
            ]
        );
    }
}
