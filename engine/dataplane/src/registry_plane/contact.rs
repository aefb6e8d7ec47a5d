//! Direct contact with data subjects through the consent route (MK403 p.31–32): the consenting
//! clients' contact details, supplied by the service researcher, and their transfer to the
//! external researcher, encrypted to the recipients' keys alone.

use serde_json::json;
use studyflow_runtime::dataplane::{StepContext, StepError, StepOutput, blocking};

use super::{LOOK_AGAIN, RegistryDataPlane, done, fail, names};

impl RegistryDataPlane {
    pub(super) async fn consent_collection(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<StepOutput, StepError> {
        // The consent list may be the first personal data of the study: it makes the keys.
        let data = self.sealed_datasets(ctx.study, true).await?;
        let path = crate::supply::Supply::ConsentedContacts.path(&self.inbox, ctx.study);
        let imported = self
            .import_supplied(
                &data,
                &names::CONSENTED,
                &path,
                "put a corrected list there",
                |bytes| crate::supply::consented_contacts(ctx.spec, bytes),
            )
            .await?;
        Ok(done(match imported {
            Some(contacts) => {
                json!({"contacts": contacts.rows.len(), "columns": contacts.columns, "list_deleted": true})
            }
            None => json!({"imported_before": true}),
        }))
    }

    pub(super) async fn contact_transfer(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<StepOutput, StepError> {
        self.contract_in_place(ctx).await?;
        let data = self.sealed_datasets(ctx.study, false).await?;
        let contacts = data.load(&names::CONSENTED).await?;
        let key_file = self.recipients.join(format!("{}.txt", ctx.study));
        if !key_file.exists() {
            return Err(StepError::waiting(
                format!(
                    "the external researcher's age public key is not at {} yet (MK403 p.32)",
                    key_file.display()
                ),
                LOOK_AGAIN,
            ));
        }
        let recipients = crate::contact::recipients(&key_file)
            .map_err(|e| StepError::waiting(e.to_string(), LOOK_AGAIN))?;
        let path = self
            .releases
            .join(ctx.study)
            .join(format!("contacts-v{}.csv.age", ctx.version));
        let t = blocking(|| crate::contact::transfer(&contacts, &recipients, &path))
            .map_err(|e| fail(e.to_string(), true))?;
        let detail = json!({"contacts": t.contacts, "recipients": t.recipients, "sha256": t.sha256, "columns": contacts.columns});
        Ok(StepOutput {
            record: json!({"file": t.file, "contacts": t.contacts, "recipients": t.recipients, "sha256": t.sha256}),
            subjects: Vec::new(),
            audit: vec![("contact.transferred", detail)],
        })
    }
}
