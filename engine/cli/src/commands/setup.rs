//! What the commands that open the database share: the clock, the audit's signing key, and
//! the operator who acts.

use std::sync::Arc;

use studyflow_runtime::{Clock, SystemClock};
use studyflow_store::tlog::AuditSigner;
use studyflow_store::{AuditSigning, Store};

use crate::cli::EngineArgs;

/// The clock: the machine's. Test builds (the `test-clock` feature) may fix it with
/// `STUDYFLOW_NOW`; a production binary cannot.
pub(crate) fn clock() -> anyhow::Result<Arc<dyn Clock>> {
    Ok(studyflow_runtime::clock::from_env()
        .map_err(anyhow::Error::msg)?
        .unwrap_or_else(|| Arc::new(SystemClock)))
}

/// The store, signing the audit's checkpoints when an audit key is given.
pub(crate) fn signing(args: &EngineArgs, store: Store) -> anyhow::Result<Store> {
    let Some(path) = &args.audit_key_file else {
        return Ok(store);
    };
    let signer = AuditSigner::from_file(path)?;
    Ok(store.with_audit_signing(AuditSigning {
        signer,
        log: args.checkpoint_log(),
    }))
}

/// A server or worker signs the audit (issue #12: checkpoints under a key outside the
/// database, each event MAC'd) unless its operator asked for a trial with `--unsigned-audit`.
pub(crate) fn audit_key_required(args: &EngineArgs, unsigned: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.audit_key_file.is_some() || unsigned,
        "the audit needs its key: give --audit-key-file FILE (STUDYFLOW_AUDIT_KEY_FILE; `studyflow audit keygen --name … --out FILE` makes one), or --unsigned-audit for a trial whose audit anyone who can write the database can rewrite"
    );
    Ok(())
}

/// A trial's `--unsigned-audit` is refused on a database whose audit is signed: a server or
/// worker without the key would leave every event it records unsealed, and the next signing
/// seal would refuse them all as unauthenticated.
pub(crate) async fn no_trial_on_a_signed_audit(
    args: &EngineArgs,
    store: &Store,
) -> anyhow::Result<()> {
    if args.audit_key_file.is_none() && store.audit_signed().await? {
        anyhow::bail!(
            "the audit of {} is signed: give its key (--audit-key-file); --unsigned-audit is for a trial's database, whose audit no key has signed",
            store.target()
        );
    }
    Ok(())
}

/// The operator: the system account that runs the command, as the audit names it.
pub(crate) fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .map(|u| format!("operator:{u}"))
        .unwrap_or_else(|_| "operator".into())
}
