//! The quality report a service researcher signs off before the data goes on (MK403 p.18,
//! p.22.2): counts and row positions only, never a value.

use std::collections::BTreeMap;

use serde_json::json;
use studyflow_runtime::clock::riga_date;
use studyflow_runtime::dataplane::{StepContext, StepError, StepOutput, blocking};
use studyflow_spec::catalogue::{self, FieldClass, Source};

use super::{RegistryDataPlane, done, fail};
use crate::quality::{self, QualityReport};

impl RegistryDataPlane {
    pub(super) async fn quality_check(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<StepOutput, StepError> {
        let data = self.sealed_datasets(ctx.study, false).await?;
        let linked = super::link::linked(&data)
            .await?
            .ok_or_else(|| fail("the linked study is missing", false))?;
        let today = riga_date(self.clock.now());
        // The Service IS fields the spec asks for, its identifiers deleted before.
        let expected: Vec<&str> = ctx
            .spec
            .data_scope
            .as_ref()
            .and_then(|d| d.service_is.as_ref())
            .map(|s| s.fields.0.keys().map(String::as_str).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|k| {
                catalogue::lookup(Source::ServiceIs, k)
                    .is_some_and(|f| f.class != FieldClass::Identifier)
            })
            .collect();
        let reports = blocking(|| {
            let mut reports = BTreeMap::new();
            reports.insert(
                "subjects".to_owned(),
                quality::check(&linked.subjects, &expected, today),
            );
            // A registry answers the fields the spec asked of it: each is expected.
            for t in &linked.sources {
                let fields: Vec<&str> = t.fields.iter().map(String::as_str).collect();
                reports.insert(t.name.clone(), quality::check(t, &fields, today));
            }
            reports
        });
        let findings: usize = reports.values().map(QualityReport::findings).sum();
        Ok(done(json!({"quality": reports, "findings": findings,
               "sign_off": "the service researcher checks this report before the data goes on (MK403 p.18, p.22.2)"})))
    }
}
