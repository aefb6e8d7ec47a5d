//! The steps around people's decisions that move no study data: the p.8 notice letter prepared
//! for its task, the destruction of the identifying data (p.26; the store deletes the sealed
//! datasets and the keys as the step finishes) and the retention of the anonymised data (p.27).

use serde_json::json;
use studyflow_runtime::clock::riga_date;
use studyflow_runtime::dataplane::{StepContext, StepError, StepOutput};
use studyflow_spec::model::Keep;
use studyflow_store::TaskMode;

use super::{NOTICE_FILE, RegistryDataPlane, done, fail, files_below, names};

/// Where the prepared notice asks the researcher for the results summary.
const NOTICE_SUMMARY: &str = "[the results summary: write it here before sending]";

impl RegistryDataPlane {
    /// The p.8 notice is prepared before its task opens: the publication date, the computed
    /// deadline, the signatory; the researcher writes the results summary in and sends it.
    pub(super) async fn notice(&self, ctx: &StepContext<'_>) -> Result<StepOutput, StepError> {
        if ctx.mode != TaskMode::PrepareThenTask {
            return Ok(done(json!({"kind": ctx.step.kind})));
        }
        let letter = crate::letters::Letters::new(None).and_then(|l| {
            l.notice_for(
                ctx.spec,
                ctx.step,
                NOTICE_SUMMARY,
                riga_date(self.clock.now()),
                crate::letters::signatory(ctx.spec).unwrap_or_default(),
            )
        });
        let letter = match letter {
            Ok(l) => l,
            // No publication planned yet: the task opens without a prepared letter.
            Err(crate::letters::LetterError::NotApplicable(why)) => {
                return Ok(done(json!({"letter": null, "why": why})));
            }
            Err(e) => return Err(fail(e.to_string(), false)),
        };
        let folder = self.outbox.join(ctx.study);
        crate::files::private_dirs(&folder)
            .map_err(|e| fail(format!("{}: {e}", folder.display()), true))?;
        let path = folder.join(NOTICE_FILE);
        // Written once: a retried preparation leaves a letter the researcher may be editing as
        // it is.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, letter.as_bytes()));
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail(format!("{}: {e}", path.display()), true)),
        }
        Ok(done(
            json!({"letter": NOTICE_FILE, "deadline": ctx.step.deadline.as_ref().and_then(|d| d.date)}),
        ))
    }

    /// The store deletes the identifying datasets and the keys as this step finishes; the
    /// files that held identifiers in plaintext go now: what people put in the inbox and the
    /// request files in the outbox (a study terminated mid-exchange leaves some). Cover letters
    /// carry no identifier and stay as the record of the exchange.
    pub(super) async fn destroy_identifying(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<StepOutput, StepError> {
        let mut files = files_below(&self.inbox.join(ctx.study));
        files.extend(
            files_below(&self.outbox.join(ctx.study))
                .into_iter()
                .filter(|p| p.file_name().is_some_and(|n| n == "request.json")),
        );
        for f in &files {
            crate::files::shred(f).map_err(|e| fail(format!("{}: {e}", f.display()), true))?;
        }
        // An answer anonymised but never joined (a terminated study's) lies under its run
        // pseudonym with its study ID: the one link between the two outside the vault.
        let data = self.anonymised_datasets(ctx.study);
        let unjoined = data.names_under(names::ARRIVED).await?;
        let unjoined: Vec<&str> = unjoined.iter().map(String::as_str).collect();
        data.delete(&unjoined).await?;
        Ok(done(json!({"plaintext_files_deleted": files.len()})))
    }

    /// Anonymised data is kept for as long as the spec says (p.27): deleted now unless it is
    /// kept permanently.
    pub(super) async fn anonymised_retention(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<StepOutput, StepError> {
        let keep = ctx
            .spec
            .retention
            .as_ref()
            .and_then(|r| r.anonymised_data.as_ref())
            .map(|t| t.keep);
        if keep.is_none_or(|k| k == Keep::Permanent) {
            return Ok(done(
                json!({"anonymised_data": "kept permanently (MK403 p.27)"}),
            ));
        }
        let data = self.anonymised_datasets(ctx.study);
        let names = data.names_under(names::ANONYMISED).await?;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let n = data.delete(&names).await?;
        Ok(done(json!({"anonymised_datasets_deleted": n})))
    }
}
