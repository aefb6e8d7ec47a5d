//! The engine's commands: submit, approve, contract, start, amend, terminate, worker, status,
//! tasks, task complete, audit verify and export. Each opens the database, does one thing,
//! and says what it did; a refusal is exit 1 and changes nothing.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use studyflow_calendar::Calendar;
use studyflow_dataplane::connector::Connector;
use studyflow_dataplane::registry_plane::{RegistryDataPlane, ServiceIs};
use studyflow_dataplane::vault::MasterKey;
use studyflow_runtime::clock::{from_micros, riga_date};
use studyflow_runtime::{Engine, EngineError, Options, PlaceholderDataPlane, Worker, owner_name};
use studyflow_store::tlog::{AuditSigner, AuditVerifier};
use studyflow_store::{AuditTrust, Store, StoreError, Verification};

use super::Context;
use super::{client, users, witness};
use crate::cli::{AuditArgs, AuditCommand, Command, EngineArgs, ServeArgs, UserArgs, WorkerArgs};
use crate::render::{self, FileReport};
use crate::{EXIT_FINDINGS, EXIT_OK};

use super::setup::{audit_key_required, clock, no_trial_on_a_signed_audit, operator, signing};

async fn open_with(args: &EngineArgs, cohort: usize, create: bool) -> anyhow::Result<Engine> {
    let store = if create {
        Store::open(&args.database).await?
    } else {
        Store::open_existing(&args.database).await?
    };
    let store = signing(args, store)?;
    Ok(Engine::new(
        store,
        clock()?,
        Arc::new(Calendar::latvia()),
        Arc::new(PlaceholderDataPlane {
            cohort_size: cohort,
        }),
        Options::default(),
    ))
}

/// The worker's engine: the data plane that moves data (issue #5), configured from the
/// options, or the placeholder only when asked for by name — a worker never falls back to a
/// plane that marks steps done without doing them.
async fn open_worker(a: &WorkerArgs) -> anyhow::Result<Engine> {
    audit_key_required(&a.engine, a.unsigned_audit)?;
    if a.placeholder {
        let engine = open(&a.engine, a.cohort_size).await?;
        no_trial_on_a_signed_audit(&a.engine, &engine.store).await?;
        return Ok(engine);
    }
    let (Some(key), Some(work)) = (&a.master_key_file, &a.work_dir) else {
        anyhow::bail!(
            "the worker needs --master-key-file (STUDYFLOW_MASTER_KEY_FILE) and --work-dir (STUDYFLOW_WORK_DIR) to move data; --placeholder runs the placeholder that moves none"
        );
    };
    let master = MasterKey::from_file(key)
        .with_context(|| format!("cannot read the master key {}", key.display()))?;
    let service_is = match &a.service_is {
        None => ServiceIs::None,
        Some(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) => {
            ServiceIs::Csv(p.clone())
        }
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            ServiceIs::Sql(serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: not a Service IS configuration (url, query, columns)",
                    p.display()
                )
            })?)
        }
    };
    let store = signing(&a.engine, Store::open_existing(&a.engine.database).await?)?;
    no_trial_on_a_signed_audit(&a.engine, &store).await?;
    let clock = clock()?;
    let mut plane = RegistryDataPlane::new(
        store.clone(),
        master,
        service_is,
        Connector::new(a.registries.as_deref().unwrap_or("")),
        work,
        clock.clone(),
    );
    plane.batch_window = a.batch_window;
    Ok(Engine::new(
        store,
        clock,
        Arc::new(Calendar::latvia()),
        Arc::new(plane),
        Options::default(),
    ))
}

/// `studyflow serve`: the API on the engine's database, until interrupted.
async fn serve(a: &ServeArgs, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    audit_key_required(&a.engine, a.unsigned_audit)?;
    let store = signing(&a.engine, Store::open_existing(&a.engine.database).await?)?;
    no_trial_on_a_signed_audit(&a.engine, &store).await?;
    let master = match &a.master_key_file {
        None => None,
        Some(key) => Some(
            MasterKey::from_file(key)
                .with_context(|| format!("cannot read the master key {}", key.display()))?,
        ),
    };
    let oidc = match (
        &a.oidc_issuer,
        &a.oidc_client_id,
        &a.oidc_client_secret_file,
        &a.oidc_redirect_uri,
    ) {
        (Some(issuer), Some(client_id), Some(secret_file), Some(redirect_uri)) => {
            let secret = read_private(secret_file)?;
            let previous_client_secrets = a
                .oidc_previous_client_secret_files
                .iter()
                .map(|f| read_private(f))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let oidc = studyflow_identity::oidc::Oidc::discover(
                studyflow_identity::oidc::OidcConfig {
                    issuer: issuer.clone(),
                    client_id: client_id.clone(),
                    client_secret: secret,
                    previous_client_secrets,
                    redirect_uri: redirect_uri.clone(),
                    scope: a.oidc_scope.clone(),
                    acr_values: a.oidc_acr.clone(),
                    amr_values: a.oidc_amr.clone(),
                },
                store.clone(),
            )
            .await
            .with_context(|| format!("cannot use the identity provider {issuer}"))?;
            Some(oidc)
        }
        _ => None,
    };
    serve_store(
        store,
        &a.listen,
        Served {
            master,
            trusted_proxies: a.trusted_proxies.clone(),
            oidc,
            work: a.work_dir.clone(),
            tls: match (&a.tls_cert, &a.tls_key) {
                (Some(cert), Some(key)) => Some(studyflow_server::tls::config(cert, key)?),
                _ => None,
            },
            witnesses: monitored(a)?,
        },
        ctx,
    )
    .await
}

/// The installation's witness policy with the checkpoint log their cosignatures are kept in,
/// for monitors; none without a policy (or an audit key, beside which the log is kept).
fn monitored(a: &ServeArgs) -> anyhow::Result<Option<studyflow_server::monitor::Witnesses>> {
    let Some((path, policy)) =
        super::witness::policy_of(a.witnesses.file.as_deref(), &a.engine, false)?
    else {
        return Ok(None);
    };
    let log = a.engine.checkpoint_log().with_context(|| {
        format!(
            "{}: a witness policy needs the audit key (--audit-key-file), beside which the checkpoint log is kept",
            path.display()
        )
    })?;
    let mut witnesses = Vec::with_capacity(policy.witnesses.len());
    for (i, key) in policy.witnesses.iter().enumerate() {
        let verifier = studyflow_store::witness::WitnessVerifier::parse(key)
            .with_context(|| format!("{}: witness {}", path.display(), i + 1))?;
        witnesses.push((verifier, policy.urls.get(i).cloned()));
    }
    let quorum = policy.quorum.unwrap_or(witnesses.len());
    Ok(Some(studyflow_server::monitor::Witnesses::new(
        witnesses, quorum, log,
    )))
}

/// A secret from a file only its owner can read (its first line).
fn read_private(path: &std::path::Path) -> anyhow::Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode();
        anyhow::ensure!(
            mode & 0o077 == 0,
            "{} can be read by others (mode {:o}): `chmod 600` it",
            path.display(),
            mode & 0o777
        );
    }
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned())
}

/// What a server is given beside its store (`serve`, `demo --serve`).
pub(crate) struct Served {
    pub master: Option<MasterKey>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub oidc: Option<studyflow_identity::oidc::Oidc>,
    pub work: Option<std::path::PathBuf>,
    /// Serve over TLS with this configuration.
    pub tls: Option<Arc<studyflow_server::tls::ServerConfig>>,
    /// The installation's witnesses, told to monitors.
    pub witnesses: Option<studyflow_server::monitor::Witnesses>,
}

/// Serves the API on `store` at `listen` until interrupted (`serve`, `demo --serve`).
pub(crate) async fn serve_store(
    store: Store,
    listen: &str,
    Served {
        master,
        trusted_proxies,
        oidc,
        work,
        tls,
        witnesses,
    }: Served,
    ctx: &mut Context<'_>,
) -> anyhow::Result<u8> {
    let mut accounts =
        studyflow_identity::Accounts::new(store.clone(), studyflow_identity::Policy::default());
    if let Some(o) = &oidc {
        accounts = accounts.with_provider(o.issuer());
    }
    let app = std::sync::Arc::new(studyflow_server::App {
        engine: Engine::new(
            store.clone(),
            clock()?,
            Arc::new(Calendar::latvia()),
            Arc::new(PlaceholderDataPlane { cohort_size: 0 }),
            studyflow_server::engine_options(),
        ),
        accounts,
        // 20 sign-in attempts per address in 10 minutes; each account locks itself after 5
        // failures in a row.
        limiter: studyflow_server::auth::Limiter::new(store.clone(), 20, 600_000_000),
        master,
        trusted_proxies,
        oidc,
        work,
        witnesses,
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    writeln!(
        ctx.out,
        "studyflow serves {scheme}://{addr}/ (the pages; the API under /api/v1; Ctrl-C stops it)"
    )?;
    if tls.is_none() && !addr.ip().is_loopback() {
        writeln!(
            ctx.err,
            "studyflow: warning: plain HTTP on {addr}, which is not loopback: passwords, codes and tokens would cross the network unencrypted and browsers drop the `Secure` session cookie; give --tls-cert and --tls-key, or listen on loopback behind a proxy that terminates TLS (docs/serve.md)"
        )?;
    }
    ctx.out.flush()?;
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match tls {
        Some(config) => studyflow_server::serve_tls(app, listener, config, stop).await?,
        None => studyflow_server::serve(app, listener, stop).await?,
    }
    writeln!(ctx.out, "stopped")?;
    Ok(EXIT_OK)
}

async fn open(args: &EngineArgs, cohort: usize) -> anyhow::Result<Engine> {
    open_with(args, cohort, false).await
}

/// A domain refusal becomes exit 1 with its message; anything else is an error (exit 2).
fn refusal(
    ctx: &mut Context<'_>,
    e: EngineError,
    path: Option<(&str, &[u8])>,
) -> anyhow::Result<u8> {
    match e {
        EngineError::Invalid(diagnostics) => {
            if let Some((path, bytes)) = path {
                let report = FileReport {
                    path: path.to_owned(),
                    source: String::from_utf8_lossy(bytes).into_owned(),
                    checked: studyflow_spec::Checked {
                        spec: None,
                        diagnostics,
                    },
                };
                ctx.err.write_all(
                    render::human::render(std::slice::from_ref(&report), ctx.color).as_bytes(),
                )?;
            }
            writeln!(
                ctx.err,
                "studyflow: refused: the spec does not validate; nothing was stored"
            )?;
            Ok(EXIT_FINDINGS)
        }
        EngineError::Store(StoreError::Database(e)) => Err(e.into()),
        EngineError::Store(StoreError::Open { target, source }) => Err(anyhow::anyhow!(
            "cannot open the database {target}: {source}"
        )),
        other => {
            writeln!(ctx.err, "studyflow: refused: {other}")?;
            Ok(EXIT_FINDINGS)
        }
    }
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?)
}

fn date_of(us: i64) -> String {
    riga_date(from_micros(us)).to_string()
}

pub fn run(command: Command, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let threads = match &command {
        Command::Worker(w) => usize::from(w.concurrency).min(4),
        _ => 1,
    };
    let rt = runtime(threads)?;
    rt.block_on(dispatch(command, ctx))
}

async fn dispatch(command: Command, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    match command {
        Command::Serve(a) => serve(&a, ctx).await,
        Command::User(UserArgs { command }) => users::run(command, ctx).await,
        Command::Login(a) => client::login(&a, ctx).await,
        Command::Logout(a) => client::logout(&a, ctx).await,
        Command::Tokens(a) => client::tokens(&a, ctx).await,
        Command::Password(a) => client::change_password(&a, ctx).await,
        Command::SecondFactor(a) => client::second_factor(&a, ctx).await,
        person @ (Command::Submit(_)
        | Command::Amend(_)
        | Command::Approve(_)
        | Command::Refuse(_)
        | Command::Contract(_)
        | Command::Start(_)
        | Command::ContactKey(_)
        | Command::Terminate(_)
        | Command::Tasks(_)
        | Command::Download(_)
        | Command::Task(_)) => client::run(person, ctx).await,
        Command::Worker(a) => {
            let engine = Arc::new(open_worker(&a).await?);
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let mut handles = Vec::new();
            for n in 0..usize::from(a.concurrency) {
                let w = Worker::new(engine.clone(), owner_name(n));
                let rx = stop_rx.clone();
                let once = a.once;
                let poll = Duration::from_millis(a.poll_ms);
                handles.push(tokio::spawn(async move {
                    if once {
                        w.run_until_idle().await
                    } else {
                        w.run(rx, poll).await
                    }
                }));
            }
            if !a.once {
                let _ = tokio::signal::ctrl_c().await;
                let _ = stop_tx.send(true);
            }
            let mut total = 0;
            for h in handles {
                total += h.await.context("a worker panicked")??;
            }
            writeln!(ctx.out, "worker: {total} step runs executed")?;
            Ok(EXIT_OK)
        }
        Command::Status(a) => {
            let engine = open(&a.engine, 0).await?;
            let said = operator_status(&engine, a.study.as_deref(), ctx).await;
            // The write-ahead log folded back: the database file alone is the database again.
            engine.close().await;
            said
        }
        Command::Release(a) => {
            let engine = open(&a.engine, 0).await?;
            if engine.status(&a.study).await?.is_none() {
                writeln!(ctx.err, "studyflow: refused: no study `{}`", a.study)?;
                return Ok(EXIT_FINDINGS);
            }
            let releases = engine.releases(&a.study).await?;
            let Some(latest) = releases.last() else {
                writeln!(
                    ctx.out,
                    "{}: no release yet; the anonymised dataset is released after anonymisation (MK403 p.7, p.24)",
                    a.study
                )?;
                return Ok(EXIT_OK);
            };
            writeln!(
                ctx.out,
                "latest release of {}: {}\n  for {}\n  written {} by step {}",
                a.study,
                latest.folder.display(),
                latest.recipient,
                date_of(latest.written_at),
                latest.step
            )?;
            if !latest.follow_up_events.is_empty() {
                let waves: Vec<String> = latest
                    .follow_up_events
                    .iter()
                    .map(|(w, n)| format!("{w} {n}"))
                    .collect();
                writeln!(ctx.out, "  follow-up events per wave: {}", waves.join(", "))?;
            }
            if releases.len() > 1 {
                writeln!(ctx.out, "earlier versions:")?;
                for r in releases.iter().rev().skip(1) {
                    writeln!(
                        ctx.out,
                        "  {}  {}",
                        date_of(r.written_at),
                        r.folder.display()
                    )?;
                }
            }
            Ok(EXIT_OK)
        }
        Command::Retry(a) => {
            let engine = open(&a.engine, 0).await?;
            // The operator is the account that runs the command; the audit names it.
            let operator = operator();
            match engine.retry(&a.study, &a.step, &operator).await {
                Ok(n) => {
                    writeln!(
                        ctx.out,
                        "{n} failed run(s) of {} in {} are ready again; a worker picks them up",
                        a.step, a.study
                    )?;
                    Ok(EXIT_OK)
                }
                Err(e) => refusal(ctx, e, None),
            }
        }
        Command::Audit(AuditArgs { command }) => match command {
            AuditCommand::Verify {
                engine: e,
                public_key,
                export,
                proof,
                witnesses,
                witness_urls,
                witness_quorum,
                policy,
            } => {
                // The installation's witnesses, unless the command line names its own.
                let named =
                    !witnesses.is_empty() || !witness_urls.is_empty() || witness_quorum.is_some();
                let (witnesses, witness_urls, witness_quorum) =
                    match witness::policy_of(policy.file.as_deref(), &e, named)? {
                        Some((path, p)) => {
                            writeln!(
                                ctx.out,
                                "witnesses: the policy {} ({} of {} must hold)",
                                path.display(),
                                p.quorum.unwrap_or(p.witnesses.len()),
                                p.witnesses.len()
                            )?;
                            // A copy is verified without asking the witnesses.
                            let urls = if export.is_some() { Vec::new() } else { p.urls };
                            (p.witnesses, urls, p.quorum)
                        }
                        None => (witnesses, witness_urls, witness_quorum),
                    };
                let verifier = match (public_key, &e.audit_key_file) {
                    (Some(k), _) => Some(AuditVerifier::parse(&witness::key_text(&k)?)?),
                    (None, Some(path)) => Some(AuditSigner::from_file(path)?.verifier()),
                    (None, None) => None,
                };
                let signed = verifier.is_some();
                if let Some(path) = &proof {
                    let Some(verifier) = &verifier else {
                        anyhow::bail!(
                            "a proof is checked with the audit's public key: give --public-key or --audit-key-file"
                        );
                    };
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    return match studyflow_store::verify_inclusion(&text, verifier) {
                        Ok((row, size)) => {
                            let e = &row.event;
                            writeln!(
                                ctx.out,
                                "row {} ({} at {}{}, about {}{}) is in the audit log: the checkpoint of rows 1–{size} signed by {} includes it",
                                row.seq,
                                e.action,
                                from_micros(e.at),
                                if e.point.is_empty() {
                                    String::new()
                                } else {
                                    format!(", MK403 {}", e.point)
                                },
                                studyflow_store::scope(&e.object),
                                if row.erased_at.is_some() {
                                    "; what it said of a person was erased"
                                } else {
                                    ""
                                },
                                verifier.name()
                            )?;
                            Ok(EXIT_OK)
                        }
                        Err(why) => {
                            writeln!(ctx.out, "proof REFUSED: {why}")?;
                            Ok(EXIT_FINDINGS)
                        }
                    };
                }
                anyhow::ensure!(
                    witnesses.is_empty() || signed,
                    "a witness's cosignature counts only on a checkpoint signed by the audit key: give its public key (--public-key or --audit-key-file)"
                );
                anyhow::ensure!(
                    witness_urls.is_empty() || witness_urls.len() == witnesses.len(),
                    "give a --witness-url for every --witness, in the same order, or none"
                );
                anyhow::ensure!(
                    witness_quorum.is_none_or(|k| k >= 1 && k <= witnesses.len()),
                    "--witness-quorum is between 1 and the number of --witness given ({})",
                    witnesses.len()
                );
                anyhow::ensure!(
                    witness_urls.is_empty() || export.is_none(),
                    "--witness-url asks the witnesses about the database's latest checkpoint: not with --export"
                );
                let trust = AuditTrust {
                    verifier,
                    log: e.checkpoint_log(),
                    witnesses: witness::trusted(&e.database, &witnesses, &witness_urls).await?,
                    quorum: witness_quorum,
                };
                // Every witness needed: one that cannot be reached stops the verification as
                // an error of this run, not as a broken audit.
                if witness_quorum.is_none()
                    && let Some((w, why)) = trust
                        .witnesses
                        .iter()
                        .find_map(|w| w.unreachable.as_ref().map(|why| (w, why)))
                {
                    anyhow::bail!(
                        "the witness {} could not be asked: {why} (with --witness-quorum, the others may do)",
                        w.key.name()
                    );
                }
                let logged = trust.log.is_some();
                let verified = match &export {
                    // A copy, elsewhere: no database needed.
                    Some(path) => studyflow_store::verify_export(
                        &std::fs::read_to_string(path)
                            .with_context(|| format!("cannot read {}", path.display()))?,
                        &trust,
                    ),
                    // Read only: verifying writes nothing (events not sealed yet are counted).
                    None => {
                        Store::open_existing(&e.database)
                            .await?
                            .verify_audit_with(&trust)
                            .await?
                    }
                };
                match verified {
                    Verification::Intact {
                        rows,
                        pending,
                        erased,
                        checkpoints,
                        refused,
                        uncounted,
                    } => {
                        writeln!(
                            ctx.out,
                            "audit intact: {rows} rows chained{}; {checkpoints} checkpoints match the chain{}{}",
                            if pending > 0 {
                                format!(", {pending} not sealed yet")
                            } else {
                                String::new()
                            },
                            if signed {
                                ", each signed by the audit key"
                            } else {
                                " (signatures not checked: no --public-key or --audit-key-file)"
                            },
                            if logged {
                                ""
                            } else {
                                "; NOT checked against a checkpoint log (--checkpoint-log): a chain deleted, or cut back to a checkpoint, would not be seen"
                            }
                        )?;
                        if erased > 0 {
                            writeln!(
                                ctx.out,
                                "{erased} rows' payloads erased by `audit erase`, each listed by its sealed record"
                            )?;
                        }
                        for (name, size, time) in trust.witnessed() {
                            writeln!(
                                ctx.out,
                                "cosigned by the witness {name}: rows 1–{size}, at {}",
                                jiff::Timestamp::from_second(i64::try_from(time)?)?
                            )?;
                        }
                        for why in &uncounted {
                            writeln!(ctx.out, "NOT counted: {why}")?;
                        }
                        if refused > 0 {
                            writeln!(
                                ctx.out,
                                "{refused} events refused as unauthenticated (no valid MAC) and kept in audit_refused: written by a process without the audit key, or into the database"
                            )?;
                        }
                        Ok(EXIT_OK)
                    }
                    Verification::Broken { seq, reason } => {
                        writeln!(ctx.out, "audit BROKEN at row {seq}: {reason}")?;
                        Ok(EXIT_FINDINGS)
                    }
                }
            }
            AuditCommand::Cosign {
                engine: e,
                url,
                witness: w,
                policy,
            } => match (url, w) {
                (Some(url), Some(w)) => witness::cosign(ctx, &e, &url, &w).await,
                _ => witness::cosign_all(ctx, &e, policy.file.as_deref()).await,
            },
            AuditCommand::WitnessKeygen { name, out } => witness::keygen(ctx, &name, &out),
            AuditCommand::Witness {
                key,
                log_key,
                state,
                listen,
                init,
            } => witness::serve(ctx, &key, &log_key, state, listen, init).await,
            AuditCommand::Keygen { name, out } => {
                let signer = AuditSigner::generate(&name)?;
                signer
                    .write_new(&out)
                    .with_context(|| format!("cannot write the new key file {}", out.display()))?;
                writeln!(ctx.out, "{}", signer.verifier().encode())?;
                Ok(EXIT_OK)
            }
            AuditCommand::Erase {
                engine: e,
                person,
                names,
                before,
                dry_run,
            } => {
                let store = signing(&e, Store::open_existing(&e.database).await?)?;
                let now = clock()?.now();
                let before = studyflow_runtime::clock::riga_midnight(before);
                // Up to the end of today (everything recorded so far); a later day is a typo.
                anyhow::ensure!(
                    before <= studyflow_runtime::clock::riga_end_of_day(riga_date(now)),
                    "--before is after tomorrow: give the day the retention period ends (what was recorded before its midnight is erased)"
                );
                let erasure = store
                    .erase_audit_payloads(
                        &person,
                        &names,
                        before.as_microsecond(),
                        &operator(),
                        now.as_microsecond(),
                        dry_run,
                    )
                    .await?;
                if dry_run {
                    let mut listed = 0;
                    for seq in &erasure.rows {
                        if let Some(r) = store.audit_rows(seq - 1, 1).await?.first() {
                            writeln!(
                                ctx.out,
                                "{seq}\t{}\t{}",
                                from_micros(r.event.at),
                                r.event.action
                            )?;
                            listed += 1;
                        }
                    }
                    writeln!(
                        ctx.out,
                        "{listed} audit rows would be erased; nothing was changed (without --dry-run they are){}",
                        if erasure.kept > 0 {
                            format!(
                                "; {} rows sealed before schema 15 would keep their payload",
                                erasure.kept
                            )
                        } else {
                            String::new()
                        }
                    )?;
                    return Ok(EXIT_OK);
                }
                writeln!(
                    ctx.out,
                    "{} audit rows erased of what named the person (actor, detail, object); the chain and its checkpoints still verify, and the erasure is recorded (audit.payloads_erased, MK403 p.25.4)",
                    erasure.erased
                )?;
                if erasure.kept > 0 {
                    writeln!(
                        ctx.out,
                        "{} rows sealed before schema 15 keep their payload: their hashes take it itself",
                        erasure.kept
                    )?;
                }
                Ok(EXIT_OK)
            }
            AuditCommand::Prove { engine: e, seq } => {
                let store = signing(&e, Store::open_existing(&e.database).await?)?;
                store.seal_audit().await?;
                let proof = store.audit_inclusion(seq).await?;
                writeln!(ctx.out, "{}", serde_json::to_string_pretty(&proof)?)?;
                Ok(EXIT_OK)
            }
            AuditCommand::Export { engine: e } => {
                let store = signing(&e, Store::open_existing(&e.database).await?)?;
                store.seal_audit().await?;
                let mut after = 0;
                loop {
                    let rows = store.audit_rows(after, 10_000).await?;
                    let Some(last) = rows.last() else { break };
                    after = last.seq;
                    for r in &rows {
                        writeln!(ctx.out, "{}", serde_json::to_string(r)?)?;
                    }
                }
                // The signed checkpoints and the head: a copy verifies elsewhere with only the
                // public key (`audit verify --export FILE --public-key KEY`).
                let (notes, head) = store.audit_checkpoints().await?;
                for note in notes {
                    writeln!(ctx.out, "{}", serde_json::json!({ "checkpoint": note }))?;
                }
                if let Some(head) = head {
                    writeln!(ctx.out, "{}", serde_json::json!({ "head": head }))?;
                }
                Ok(EXIT_OK)
            }
        },
        other => anyhow::bail!("not an engine command: {other:?}"),
    }
}

/// `studyflow status`: the audit's sealing, then the studies, or one study.
async fn operator_status(
    engine: &Engine,
    study: Option<&str>,
    ctx: &mut Context<'_>,
) -> anyhow::Result<u8> {
    engine.flag_overdue().await?;
    for wrong in engine.audit_standing().await? {
        writeln!(ctx.err, "studyflow: warning: {wrong}")?;
    }
    match study {
        None => {
            let studies = engine.studies().await?;
            if studies.is_empty() {
                writeln!(ctx.out, "no studies in {}", engine.database())?;
            }
            for s in studies {
                writeln!(
                    ctx.out,
                    "{:<40} {:<11} version {}",
                    s.id,
                    s.state,
                    s.active_version.map_or("—".to_owned(), |v| v.to_string())
                )?;
            }
            Ok(EXIT_OK)
        }
        Some(study) => status(engine, study, ctx).await,
    }
}

async fn status(engine: &Engine, study: &str, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let Some(st) = engine.status(study).await? else {
        writeln!(ctx.err, "studyflow: refused: no study `{study}`")?;
        return Ok(EXIT_FINDINGS);
    };
    match st.state.as_str() {
        "completed" | "terminated" => writeln!(
            ctx.out,
            "study {} — {} on {}",
            st.study,
            st.state,
            date_of(st.since)
        )?,
        _ => writeln!(ctx.out, "study {} — {}", st.study, st.state)?,
    }
    if let Some(v) = &st.latest {
        let approved = match &v.approved {
            Some((by, at)) => format!("approved by {by} on {}", date_of(*at)),
            None => "waiting for approval".to_owned(),
        };
        writeln!(
            ctx.out,
            "latest version {} ({}), plan {}",
            v.version, approved, v.plan_hash
        )?;
    }
    if let Some(active) = st.running_version {
        writeln!(ctx.out, "running version {active}")?;
    }
    writeln!(ctx.out, "today {}\n", date_of(st.now))?;
    let width = st
        .steps
        .iter()
        .map(|s| s.step.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        ctx.out,
        "{:<width$}  {:<7}  {:<44}  due",
        "step", "version", "state"
    )?;
    for s in &st.steps {
        let state = if s.per_subject {
            let parts: Vec<String> = s
                .activities
                .iter()
                .map(|(k, n)| format!("{n} {}", k.as_str()))
                .collect();
            // One run per wave and due day, each a batch of subjects (never counted here).
            format!(
                "{} batches by due day: {}{}",
                s.runs,
                parts.join(", "),
                s.next
                    .map(|n| format!(", next {}", date_of(n)))
                    .unwrap_or_default()
            )
        } else {
            let mut text = s
                .activities
                .keys()
                .next()
                .map(|a| a.as_str())
                .unwrap_or("")
                .to_owned();
            if let Some(next) = s.next {
                text.push_str(&format!(" until {}", date_of(next)));
            }
            text
        };
        let versions: Vec<String> = s.versions.iter().map(i64::to_string).collect();
        writeln!(
            ctx.out,
            "{:<width$}  {:<7}  {state:<44}  {}{}",
            s.step,
            versions.join(","),
            s.due.map(|d| date_of(d - 1)).unwrap_or_default(),
            if s.late { "  OVERDUE" } else { "" }
        )?;
        if let Some(e) = &s.reason {
            writeln!(ctx.out, "{:width$}    └ {e}", "")?;
        }
    }
    let late = st.steps.iter().filter(|s| s.late).count();
    if late > 0 {
        writeln!(ctx.out, "\n{late} step(s) overdue")?;
    }
    if !st.overdue.is_empty() {
        writeln!(ctx.out, "\ndeadlines missed:")?;
        for o in &st.overdue {
            writeln!(
                ctx.out,
                "  {}: {} run(s) after {}{} — {}",
                o.step,
                o.runs,
                date_of(o.due - 1),
                if o.open > 0 {
                    format!(", {} still open", o.open)
                } else {
                    String::new()
                },
                o.rule
            )?;
        }
    }
    if let Some(r) = st.releases.last() {
        writeln!(
            ctx.out,
            "\nlatest release: {} (for {})",
            r.folder.display(),
            r.recipient
        )?;
    }
    Ok(EXIT_OK)
}
