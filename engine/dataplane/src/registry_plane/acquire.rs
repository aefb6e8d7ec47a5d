//! The Service IS extraction (MK403 p.10): from the Service's database, a configured export,
//! or — a manual extraction (p.22.1) — the file a service researcher put in the study's inbox.

use serde_json::{Value, json};
use studyflow_runtime::dataplane::{StepContext, StepError, StepOutput, blocking};
use studyflow_store::TaskMode;

use super::{
    LOOK_AGAIN, MANUAL_EXTRACTION_FILE, RegistryDataPlane, done, fail, names, step_fields,
    store_err,
};
use crate::linkage::Subject;

/// Whether the study needs its subjects' personal codes: to link the registries' answers
/// (p.17) or to request the follow-ups (p.19).
pub(super) fn links_or_follows_up(spec: &studyflow_spec::Spec) -> bool {
    spec.follow_up.is_some()
        || spec
            .data_scope
            .as_ref()
            .is_some_and(|d| d.information_centre.is_some() || d.prison_administration.is_some())
}

impl RegistryDataPlane {
    pub(super) async fn acquire(&self, ctx: &StepContext<'_>) -> Result<StepOutput, StepError> {
        // The keys are made by the first step that receives personal data.
        let data = self.sealed_datasets(ctx.study, true).await?;
        if ctx.mode != TaskMode::TaskThenApply {
            let sample = self.sample(ctx).await?;
            data.save(&names::SERVICE_IS, &sample).await?;
            return Ok(done(json!({"subjects": sample.len()})));
        }
        // Manual extraction (p.22.1): the researcher has put the export in the inbox.
        let path = self.inbox.join(ctx.study).join(MANUAL_EXTRACTION_FILE);
        let fields = step_fields(ctx);
        let imported = self
            .import_supplied(
                &data,
                &names::SERVICE_IS,
                &path,
                "put a corrected export there",
                |bytes| {
                    blocking(|| {
                        crate::csv_import::import(bytes, &fields, links_or_follows_up(ctx.spec))
                    })
                },
            )
            .await?;
        Ok(done(match imported {
            Some(sample) => {
                json!({"subjects": sample.len(), "imported_from": "manual extraction (MK403 p.22.1)", "export_deleted": true})
            }
            None => json!({"imported_before": true}),
        }))
    }

    async fn sample(&self, ctx: &StepContext<'_>) -> Result<Vec<Subject>, StepError> {
        let fields = step_fields(ctx);
        match &self.service_is {
            // A configuration to fix, not a failure of the study: it waits.
            super::ServiceIs::None => Err(StepError::waiting(
                "no Service IS source is configured (studyflow worker --service-is)",
                LOOK_AGAIN,
            )),
            super::ServiceIs::Subjects(s) => Ok(s.as_ref().clone()),
            super::ServiceIs::Csv(path) => blocking(|| {
                let bytes = std::fs::read(path)
                    .map_err(|e| fail(format!("cannot read the Service IS export: {e}"), true))?;
                crate::csv_import::import(&bytes, &fields, links_or_follows_up(ctx.spec))
                    .map_err(|e| fail(e.to_string(), false))
            }),
            super::ServiceIs::Sql(src) => {
                let mut fields = fields;
                if !fields.contains(&"personal_code") {
                    fields.push("personal_code");
                }
                let rows = studyflow_store::service_is::read(src, &fields)
                    .await
                    .map_err(store_err)?;
                Ok(rows
                    .into_iter()
                    .enumerate()
                    .map(|(i, values)| Subject {
                        key: format!("S{:06}", i + 1),
                        personal_code: values
                            .get("personal_code")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        previous_personal_code: values
                            .get("previous_personal_code")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        values: values.into_iter().collect(),
                    })
                    .collect())
            }
        }
    }
}
