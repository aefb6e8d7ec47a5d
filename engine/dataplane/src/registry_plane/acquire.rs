//! The Service IS extraction (MK403 p.10): from the Service's database, a configured export,
//! or — a manual extraction (p.22.1) — the file a service researcher put in the study's inbox.

use serde_json::{Value, json};
use studyflow_runtime::dataplane::{StepContext, StepError, StepOutput, blocking};
use studyflow_store::TaskMode;

use super::{LOOK_AGAIN, RegistryDataPlane, done, fail, names, step_fields, store_err};
use crate::linkage::Subject;

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
        let path = crate::supply::Supply::ManualExtraction.path(&self.inbox, ctx.study);
        let imported = self
            .import_supplied(
                &data,
                &names::SERVICE_IS,
                &path,
                "put a corrected export there",
                |bytes| blocking(|| crate::supply::manual_extraction(ctx.spec, ctx.step, bytes)),
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
                crate::supply::manual_extraction(ctx.spec, ctx.step, &bytes)
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
