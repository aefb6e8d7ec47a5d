//! The follow-up waves (MK403 p.19–20): per batch of one wave and due day, the request to the
//! Punishment Register by the members' codes for the wave's window, its anonymisation on
//! arrival under the members' study IDs, and the join into the study's anonymised data.

use serde_json::json;
use studyflow_runtime::clock::riga_date;
use studyflow_runtime::dataplane::{StepContext, StepError, StepOutput, blocking};
use studyflow_spec::catalogue::Source;

use super::datasets::Datasets;
use super::names::{Arrived, RunVault};
use super::{RegistryDataPlane, done, fail, names, policy_of, registry_failure, step_fields};
use crate::answers::Asked;
use crate::followup::{self, Member, Period};

impl RegistryDataPlane {
    pub(super) async fn follow_up_request(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<StepOutput, StepError> {
        let wave = Self::wave_of(ctx)?;
        let data = self.sealed_datasets(ctx.study, false).await?;
        let members = run_vault(&data, ctx.subject).await?;
        // Each subject by the personal code and the previous one if it changed (p.12.1), in
        // one request for the batch.
        let asked = members
            .iter()
            .map(|m| {
                let (code, previous) = m
                    .codes
                    .as_ref()
                    .ok_or_else(|| fail("a subject's code is not in the vault", false))?;
                Ok(Asked {
                    personal_code: code,
                    previous_personal_code: previous.as_deref(),
                    proceeding_number: None,
                })
            })
            .collect::<Result<Vec<_>, StepError>>()?;
        // From the edge to the end of the wave's window, as of today (p.19): the members share
        // it (around 29 February their edges may differ by a day: the request covers both, the
        // anonymisation keeps each subject's own window).
        let today = riga_date(self.clock.now());
        let period = members
            .iter()
            .map(|m| followup::request_period(&wave, &m.anchor, today))
            .collect::<Option<Vec<Period>>>()
            .and_then(|all| {
                all.into_iter().reduce(|a, p| Period {
                    from: a.from.min(p.from),
                    to: a.to.max(p.to),
                    as_of: today,
                })
            })
            .ok_or_else(|| fail("the wave's anchor date is not known", false))?;
        self.registries_configured()?;
        let rows = self
            .connector
            .query(
                data.keys()?,
                Source::InformationCentre,
                &step_fields(ctx),
                &asked,
                Some(&period),
            )
            .await
            .map_err(registry_failure)?;
        data.save(&names::follow_up_raw(&wave, ctx.subject), &rows)
            .await?;
        Ok(done(
            json!({"subjects": members.len(), "rows": rows.len(), "wave": wave.name}),
        ))
    }

    pub(super) async fn follow_up_anonymise(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<StepOutput, StepError> {
        let wave = Self::wave_of(ctx)?;
        let data = self.sealed_datasets(ctx.study, false).await?;
        let raw = names::follow_up_raw(&wave, ctx.subject);
        let arrived = names::follow_up_arrived(&wave, ctx.subject);
        // Anonymised before, the commit lost (the raw answer is gone): done.
        if data.exists(&arrived).await? {
            return Ok(done(json!({"anonymised_before": true, "wave": wave.name})));
        }
        let members = run_vault(&data, ctx.subject).await?;
        let rows = data.load(&raw).await?;
        // Anonymised on arrival (p.20): identifiers dropped, dates by the spec's policy counted
        // from the start of the anchor event, under the study ID.
        let policy = policy_of(ctx)?;
        let answers = blocking(|| followup::anonymise_batch(&wave, &policy, &members, rows))
            .ok_or_else(|| fail("the wave's anchor date is not known", false))?;
        let events: usize = answers.iter().map(|a| a.events.len()).sum();
        let subjects = answers.len();
        data.save(&arrived, &Arrived::Batch(answers)).await?;
        data.delete(&[raw.name()]).await?;
        Ok(done(
            json!({"subjects": subjects, "events": events, "wave": wave.name}),
        ))
    }

    /// Joined to the study dataset by study ID (p.20). A batch holds released subjects only
    /// (the cohort for the waves is formed from the subjects' table the k-anonymity check
    /// released), and the release keeps only the released subjects' rows again, so the join
    /// itself looks up nothing. Anonymised data only: it needs no key.
    pub(super) async fn follow_up_join(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<StepOutput, StepError> {
        let wave = Self::wave_of(ctx)?;
        let data = self.anonymised_datasets(ctx.study);
        let arrived = names::follow_up_arrived(&wave, ctx.subject);
        let Some(stored) = data.load_optional(&arrived).await? else {
            // Joined before, the commit lost: nothing more to do.
            return Ok(done(json!({"joined_before": true})));
        };
        let answers = stored.answers();
        let n = answers.len();
        if n > 0 {
            data.save_named_by_content(
                |content| names::follow_up_joined(&wave, content),
                &Arrived::Batch(answers),
            )
            .await?;
        }
        data.delete(&[arrived.name()]).await?;
        Ok(done(json!({"joined": n, "wave": wave.name})))
    }
}

/// The subjects of a follow-up run, from the sealed vault: its own (a batch), else the one map
/// of a study formed before batches, else — a study formed before run pseudonyms, which ran its
/// waves under the study IDs themselves — the anchors, study IDs and codes kept apart.
async fn run_vault(data: &Datasets<'_>, run: &str) -> Result<Vec<Member>, StepError> {
    if let Some(v) = data.load_optional(&names::run(run)).await? {
        return Ok(v.members());
    }
    let missing = || fail("the subject is not in the study's cohort", false);
    if let Some(mut vault) = data.load_optional(&names::RUNS).await? {
        return vault.remove(run).map(RunVault::members).ok_or_else(missing);
    }
    let anchors = data.load(&names::COHORT).await?;
    let ids = data.load(&names::STUDY_IDS).await?;
    let codes = data.load(&names::CODES).await?;
    let key = ids.iter().find(|(_, id)| *id == run).map(|(k, _)| k);
    Ok(vec![Member {
        study_id: run.to_owned(),
        anchor: anchors.get(run).copied().ok_or_else(missing)?,
        codes: key.and_then(|k| codes.get(k)).cloned(),
    }])
}
