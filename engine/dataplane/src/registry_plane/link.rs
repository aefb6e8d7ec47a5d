//! Linkage of the registries' answers to the sample (MK403 p.17.1–17.2) and the irreversible
//! deletion of the identifiers (p.17.3, p.22.3–22.4).

use serde_json::json;
use studyflow_plan::Registry;
use studyflow_runtime::dataplane::{StepContext, StepError, StepOutput, blocking};

use super::datasets::Datasets;
use super::{RegistryDataPlane, done, names};
use crate::linkage::{self, LinkedTables};

/// The linked study, as tables (a study linked before tables: its rows made tables).
pub(super) async fn linked(data: &Datasets<'_>) -> Result<Option<LinkedTables>, StepError> {
    if let Some(t) = data.load_optional(&names::LINKED).await? {
        return Ok(Some(t));
    }
    let Some(subjects) = data
        .load_optional(&names::LINKED_SUBJECTS_BEFORE_TABLES)
        .await?
    else {
        return Ok(None);
    };
    let rows = data
        .load_optional(&names::LINKED_ROWS_BEFORE_TABLES)
        .await?
        .unwrap_or_default();
    blocking(|| names::linked_from_records(subjects, rows))
        .map(Some)
        .ok_or_else(|| {
            super::fail(
                "the linked study stored before tables is damaged (a subject twice, or a row without its subject)",
                false,
            )
        })
}

impl RegistryDataPlane {
    pub(super) async fn merge_link(&self, ctx: &StepContext<'_>) -> Result<StepOutput, StepError> {
        let data = self.sealed_datasets(ctx.study, false).await?;
        let sample = data.load(&names::SERVICE_IS).await?;
        let mut answers = Vec::new();
        for registry in [Registry::InformationCentre, Registry::PrisonAdministration] {
            if let Some(rows) = data.load_optional(&names::answer(registry)).await? {
                answers.extend(rows);
            }
        }
        let keys = data.keys()?;
        let linked = blocking(|| linkage::link(keys, &sample, &answers));
        drop((sample, answers));
        data.save(&names::LINKED, &linked).await?;
        Ok(done(
            serde_json::to_value(&linked.report).unwrap_or_default(),
        ))
    }

    pub(super) async fn delete_identifiers(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<StepOutput, StepError> {
        let data = self.sealed_datasets(ctx.study, false).await?;
        // The follow-ups (p.19) are requested from the Service IS's own records: keep only
        // subject key → codes, sealed, for the engine alone; the rest goes.
        let sample = data.load(&names::SERVICE_IS).await?;
        let codes: names::Codes = sample
            .iter()
            .map(|s| {
                (
                    s.key.clone(),
                    (s.personal_code.clone(), s.previous_personal_code.clone()),
                )
            })
            .collect();
        data.save(&names::CODES, &codes).await?;
        if !data.exists(&names::LINKED).await?
            && !data.exists(&names::LINKED_SUBJECTS_BEFORE_TABLES).await?
        {
            // No registry to link (the Service IS alone): the subjects without their
            // identifiers are the study dataset.
            let keys = data.keys()?;
            let linked = blocking(|| linkage::link(keys, &sample, &[]));
            data.save(&names::LINKED, &linked).await?;
        }
        let deleted = data
            .delete(&[
                names::SERVICE_IS.name(),
                names::answer(Registry::InformationCentre).name(),
                names::answer(Registry::PrisonAdministration).name(),
            ])
            .await?;
        Ok(done(
            json!({"datasets_deleted": deleted, "fields_deleted": ctx.step.fields}),
        ))
    }
}
