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
        // The keys the persons who receive the list gave through the server (MK403 p.32), of
        // those who receive it now: an authorised person of the external researcher who
        // processes personal data, under the spec in force, with a non-disclosure declaration
        // recorded with the contract (p.30.2) — a key of someone taken off the team stays out.
        let given = match crate::contact::study_recipients(&self.recipients, ctx.study) {
            Ok(r) => r,
            Err(
                crate::contact::TransferError::Io(..)
                | crate::contact::TransferError::NoRecipient(_),
            ) => {
                return Err(StepError::waiting(
                    "no person who receives the contact list has given their age public key yet (on the study's page, or `studyflow contact-key`) (MK403 p.32)",
                    LOOK_AGAIN,
                ));
            }
            Err(e) => return Err(StepError::waiting(e.to_string(), LOOK_AGAIN)),
        };
        let declared = self
            .store
            .contract(ctx.study)
            .await
            .map_err(super::store_err)?
            .map(|c| c.signatories())
            .unwrap_or_default();
        let given_count = given.len();
        let recipients: Vec<age::x25519::Recipient> = given
            .into_iter()
            .filter(|(login, _)| {
                studyflow_runtime::people::contact_recipient_named(ctx.spec, login)
                    .is_some_and(|m| declared.contains(&m.name))
            })
            .map(|(_, key)| key)
            .collect();
        let left_out = given_count - recipients.len();
        if recipients.is_empty() {
            return Err(StepError::waiting(
                format!(
                    "no person who receives the contact list — an authorised person of the external researcher who processes personal data, with a declaration recorded with the contract — has given their age public key yet ({left_out} key(s) given by others left out) (MK403 p.32, p.30.2)"
                ),
                LOOK_AGAIN,
            ));
        }
        let folder = self
            .releases
            .join(ctx.study)
            .join(format!("contacts-v{}", ctx.version));
        let t = blocking(|| crate::contact::transfer(&contacts, &recipients, &folder))
            .map_err(|e| fail(e.to_string(), true))?;
        let detail = json!({"contacts": t.contacts, "recipients": t.recipients, "keys_left_out": left_out, "sha256": t.sha256, "columns": contacts.columns});
        Ok(StepOutput {
            // Served like a release, to the contact list's recipients alone (MK403 p.32).
            record: json!({
                "release": t.folder,
                "for": "the external researcher's persons who receive the contact list (MK403 p.32)",
                "file": t.file,
                "contacts": t.contacts,
                "recipients": t.recipients,
                "sha256": t.sha256,
            }),
            subjects: Vec::new(),
            audit: vec![("contact.transferred", detail)],
        })
    }
}
