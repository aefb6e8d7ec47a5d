//! Releases of the analysis dataset: to the study workspace the authorised service researchers
//! read (MK403 p.22.5, p.24), a new version after the baseline and after every wave, and to the
//! external researcher under the contract (p.30). Anonymised data only: a release may come
//! after the destruction of the identifying data and needs no key.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use studyflow_plan::StepKind;
use studyflow_runtime::dataplane::{StepContext, StepError, StepOutput, blocking};
use studyflow_spec::model::DatePolicy;

use super::{RegistryDataPlane, fail, names};
use crate::anonymise;
use crate::followup::{self, Censoring};
use crate::release::ReleaseError;
use crate::table::Table;

/// The analysis dataset: the released study IDs and the tables under them.
struct Analysis {
    study_ids: Vec<String>,
    tables: Vec<Table>,
}

impl RegistryDataPlane {
    pub(super) async fn release(&self, ctx: &StepContext<'_>) -> Result<StepOutput, StepError> {
        let external = ctx.step.kind == StepKind::Transfer;
        if external {
            self.contract_in_place(ctx).await?;
        }
        // Waits for a release of another study or wave to finish (the lease is kept meanwhile).
        let _one_at_a_time = self.release_gate.lock().await;
        let (analysis, per_wave) = self.analysis_dataset(ctx).await?;
        let label = match ctx.step.about.wave() {
            Some(w) => w.name.to_owned(),
            None if external => "transfer".to_owned(),
            None => "baseline".to_owned(),
        };
        // Named by version and step, never by the day: a retry after a crash finds the folder
        // it wrote, whatever the date.
        let folder = self
            .releases
            .join(ctx.study)
            .join(format!("v{}-{label}", ctx.version));
        let to = if external {
            "the external researcher (MK403 p.30)"
        } else {
            "the study workspace of the authorised service researchers (MK403 p.22.5, p.24)"
        };
        let described = crate::datapackage::Description::of(ctx.spec, ctx.version, &label, to);
        let written = blocking(|| {
            let mut tables: Vec<&Table> = analysis.tables.iter().collect();
            tables.sort_by(|a, b| a.name.cmp(&b.name));
            crate::release::write(&folder, &analysis.study_ids, &tables, Some(&described))
        });
        drop(analysis);
        let (files, before) = match written {
            Ok(w) => (json!(w.files), false),
            // Written before, the commit lost: the audit event goes with this finish, from the
            // release's own manifest.
            Err(ReleaseError::Exists(_)) => (
                json!(crate::release::manifest(&folder).map_err(|e| fail(e.to_string(), false))?),
                true,
            ),
            Err(e) => return Err(fail(e.to_string(), false)),
        };
        let count = files.as_array().map_or(0, Vec::len);
        let mut detail =
            json!({"folder": folder, "files": files, "follow_up_events": per_wave, "for": to});
        let mut record =
            json!({"release": folder, "files": count, "follow_up_events": per_wave, "for": to});
        if before {
            detail["written_before"] = json!(true);
            record["written_before"] = json!(true);
        }
        Ok(StepOutput {
            record,
            subjects: Vec::new(),
            audit: vec![("release.written", detail)],
        })
    }

    /// The analysis dataset as it stands: the anonymised baseline tables and the follow-up
    /// waves joined so far (MK403 p.20) — waves, events, and each subject's observation for a
    /// survival analysis. Also the events found per wave, for people.
    async fn analysis_dataset(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<(Analysis, BTreeMap<String, usize>), StepError> {
        let data = self.anonymised_datasets(ctx.study);
        let (study_ids, mut tables) = match data.load_optional(&names::BASELINE).await? {
            Some(b) => (b.study_ids, b.tables),
            None => {
                let records = data.load(&names::TABLES_BEFORE_TABLES).await?;
                blocking(|| anonymise::tables_from_records(&records)).ok_or_else(|| {
                    fail(
                        "the anonymised study stored before tables is damaged (no subjects' table, or a study ID twice)",
                        false,
                    )
                })?
            }
        };
        if ctx.spec.follow_up.is_none() {
            return Ok((Analysis { study_ids, tables }, BTreeMap::new()));
        }
        let mut answers: Vec<followup::WaveAnswer> = Vec::new();
        data.for_each_under(
            names::FOLLOW_UPS,
            super::datasets::Envelope::AnonymisedUntimed,
            |joined: names::Arrived| answers.extend(joined.answers()),
        )
        .await?;
        let plan = data
            .load_optional(&names::EXPECTED_WAVES)
            .await?
            .unwrap_or_default();
        let unit = followup::Unit::of(
            ctx.spec
                .anonymisation
                .as_ref()
                .map_or(DatePolicy::RelativeToAnchor, |a| a.date_policy),
        );
        let per_wave = blocking(|| {
            let released: BTreeSet<&str> = study_ids.iter().map(String::as_str).collect();
            // A released subject outside the cohort had no anchor date: no wave for it.
            let expected = |id: &str| {
                plan.get(id)
                    .copied()
                    .unwrap_or((0, Some(Censoring::AnchorNotKnown)))
            };
            let t = followup::tables(answers, &released, &expected, unit);
            let positions = anonymise::positions(&study_ids);
            for (name, records) in [
                ("follow_up_waves", &t.waves),
                ("follow_up_events", &t.events),
                ("follow_up_observation", &t.observation),
            ] {
                tables.push(anonymise::records_table(name, records, &positions));
            }
            t.events_per_wave()
        });
        Ok((Analysis { study_ids, tables }, per_wave))
    }
}
