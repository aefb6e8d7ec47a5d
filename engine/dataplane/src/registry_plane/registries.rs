//! The baseline requests to the Information Centre (the Punishment Register, MK403 p.13) and
//! the Prison Administration (p.15–16), and their answers: over the automated exchange, or as a
//! request file with its cover letter in the outbox and the answer through the inbox (the
//! secure electronic exchange, p.12.3, p.14.2), checked whole against what was asked.

use serde_json::{Value, json};
use studyflow_plan::Registry;
use studyflow_runtime::clock::riga_date;
use studyflow_runtime::dataplane::{StepContext, StepError, StepOutput, blocking};
use studyflow_spec::catalogue::Source;
use studyflow_spec::model::Exchange;

use super::{
    LOOK_AGAIN, RegistryDataPlane, done, exchange_id, fail, names, registry_failure, step_fields,
    store_err,
};
use crate::answers::Asked;
use crate::followup::Period;
use crate::linkage::Subject;

/// A subject of the sample as a request names it (MK403 p.12.1–12.2): the personal code, the
/// previous one, and the proceeding number when the extraction holds it.
fn asked(s: &Subject) -> Asked<'_> {
    Asked {
        personal_code: &s.personal_code,
        previous_personal_code: s.previous_personal_code.as_deref(),
        proceeding_number: s.values.get("proceeding_number").and_then(Value::as_str),
    }
}

/// The registry a request or answer step is about (typed in the plan).
fn registry_of(ctx: &StepContext<'_>) -> Result<Registry, StepError> {
    ctx.step
        .about
        .registry()
        .ok_or_else(|| fail("a request or answer that names no registry", false))
}

/// The catalogue sources a registry answers for.
pub(crate) fn sources_of(registry: Registry) -> &'static [Source] {
    match registry {
        Registry::InformationCentre => &[Source::InformationCentre],
        Registry::PrisonAdministration => &[Source::PrisonRulings, Source::PrisonResocialisation],
    }
}

/// How the spec exchanges with a registry.
fn exchange(ctx: &StepContext<'_>, registry: Registry) -> Option<Exchange> {
    let scope = ctx.spec.data_scope.as_ref()?;
    match registry {
        Registry::InformationCentre => scope.information_centre.as_ref().map(|s| s.exchange),
        Registry::PrisonAdministration => scope.prison_administration.as_ref().map(|s| s.exchange),
    }
}

impl RegistryDataPlane {
    /// The period a baseline request to the Punishment Register asks about (MK403 p.3.3): the
    /// spec's, answered as of today. The Prison Administration's rulings carry dates that lie
    /// ahead by nature (a planned release), so its answers are checked against the request
    /// only.
    fn baseline_period(&self, ctx: &StepContext<'_>, registry: Registry) -> Option<Period> {
        let scope = ctx.spec.data_scope.as_ref()?;
        match registry {
            Registry::InformationCentre => scope.information_centre.as_ref().map(|ic| Period {
                from: ic.volume.period.from.0,
                to: ic.volume.period.to.0,
                as_of: riga_date(self.clock.now()),
            }),
            Registry::PrisonAdministration => None,
        }
    }

    pub(super) async fn request(&self, ctx: &StepContext<'_>) -> Result<StepOutput, StepError> {
        let study = ctx.study;
        let registry = registry_of(ctx)?;
        let data = self.sealed_datasets(study, false).await?;
        let fields = step_fields(ctx);
        let sample = data.load(&names::SERVICE_IS).await?;
        let codes: Vec<Asked<'_>> = sample.iter().map(asked).collect();
        let period = self.baseline_period(ctx, registry);
        if exchange(ctx, registry) == Some(Exchange::SecureElectronic) {
            // The request goes to the outbox with its cover letter; the answer step waits for
            // the inbox (MK403 p.12.3, p.14.2).
            let id = exchange_id(study, ctx.version, registry);
            let hash = self
                .store
                .version(study, Some(ctx.version))
                .await
                .map_err(store_err)?
                .map(|v| v.plan_hash)
                .unwrap_or_default();
            let letter = crate::letters::Letters::new(None)
                .and_then(|l| {
                    l.request(
                        ctx.spec,
                        &hash,
                        registry,
                        codes.len(),
                        riga_date(self.clock.now()),
                        crate::letters::signatory(ctx.spec).unwrap_or_default(),
                    )
                })
                .map_err(|e| fail(e.to_string(), false))?;
            // The period and day asked about, kept to check the answer against when it
            // arrives, however much later (p.3.3, p.12).
            if let Some(p) = &period {
                let plain = self.anonymised_datasets(study);
                plain.save(&names::asked(registry), p).await?;
            }
            let sent = blocking(|| {
                crate::exchange::send(
                    &self.outbox.join(study),
                    &id,
                    &letter,
                    &fields,
                    &codes,
                    period.as_ref(),
                )
            });
            match sent {
                Ok(_) | Err(crate::exchange::ExchangeError::Exists(_)) => {}
                Err(e) => return Err(fail(e.to_string(), true)),
            }
            return Ok(done(json!({"sent": id, "subjects": codes.len()})));
        }
        self.registries_configured()?;
        let rows = self
            .connector
            .query(
                data.keys()?,
                sources_of(registry)[0],
                &fields,
                &codes,
                period.as_ref(),
            )
            .await
            .map_err(registry_failure)?;
        data.save(&names::answer(registry), &rows).await?;
        Ok(done(json!({"rows": rows.len(), "period": period})))
    }

    pub(super) async fn answer(&self, ctx: &StepContext<'_>) -> Result<StepOutput, StepError> {
        let study = ctx.study;
        let registry = registry_of(ctx)?;
        let data = self.sealed_datasets(study, false).await?;
        let answer = names::answer(registry);
        if data.exists(&answer).await? {
            // The automated exchange's request step received it, or this step did before its
            // commit was lost.
            return Ok(done(json!({"validated": true})));
        }
        // Secure electronic: the answer comes through the inbox.
        let id = exchange_id(study, ctx.version, registry);
        let fields = step_fields(ctx);
        let sample = data.load(&names::SERVICE_IS).await?;
        let codes: Vec<Asked<'_>> = sample.iter().map(asked).collect();
        let sources = sources_of(registry);
        let keys = data.keys()?;
        let request = crate::answers::Request::new(
            keys,
            sources,
            &fields,
            codes.iter().flat_map(Asked::codes),
        );
        // The answer keeps to the period asked about, as the automated exchange's does
        // (MK403 p.3.3, p.12): checked before anything of it is kept or deleted.
        let asked = self
            .anonymised_datasets(study)
            .load_optional(&names::asked(registry))
            .await?;
        let period = asked.or_else(|| self.baseline_period(ctx, registry));
        let received = blocking(|| {
            crate::exchange::receive(
                &self.inbox.join(study),
                &self.outbox.join(study),
                &id,
                keys,
                sources,
                &request,
                period.as_ref(),
            )
        });
        let rows = match received {
            Ok(Some(rows)) => rows,
            Ok(None) => {
                return Err(StepError::waiting(
                    format!("the answer to {id} has not arrived in the inbox"),
                    LOOK_AGAIN,
                ));
            }
            // A rejected answer waits to be replaced: nothing of it was imported.
            Err(e) => return Err(StepError::waiting(e.to_string(), LOOK_AGAIN)),
        };
        data.save(&answer, &rows).await?;
        Ok(done(json!({"rows": rows.len(), "validated": true})))
    }
}
