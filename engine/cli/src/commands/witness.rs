//! The audit's witnesses (C2SP tlog-witness, tlog-cosignature): `audit cosign` asks a witness
//! to cosign the latest signed checkpoint and keeps the cosigned one in the checkpoint log;
//! `audit witness` is a witness of another installation's log; `audit witness-keygen` makes
//! its key. `audit verify --witness` checks the cosignatures (`engine.rs`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use studyflow_store::tlog::{self, AuditVerifier};
use studyflow_store::witness::{Witness, WitnessSigner, WitnessVerifier, add_checkpoint_body};
use studyflow_store::{Store, TrustedWitness};

use super::Context;
use crate::cli::EngineArgs;
use crate::{EXIT_FAILURE, EXIT_OK};

/// The installation's witness policy: a text file kept beside the audit key (outside the
/// database), a line each —
///
/// ```text
/// # comments and blank lines are skipped
/// witness NAME+ID+KEY [URL]    (a witness's public key, and where it answers)
/// quorum K                     (how many must hold; all when not given)
/// ```
///
/// — so that `audit verify` and `audit cosign` need no witness on their command line, and an
/// operator who forgets one does not verify the audit without its witnesses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub witnesses: Vec<String>,
    /// Every witness's address, in order, or none.
    pub urls: Vec<String>,
    pub quorum: Option<usize>,
}

/// Reads the policy at `path`: refused, naming the line, when a line is not one of the above,
/// a key is not a witness's, an address is not http(s), the quorum is outside 1…n, some
/// witnesses have an address and others not, there is no witness, or the file may be
/// changed by others than its owner (whoever can change it chooses the witnesses).
pub fn read_policy(path: &Path) -> anyhow::Result<Policy> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode();
        anyhow::ensure!(
            mode & 0o022 == 0,
            "{} may be changed by others than its owner (mode {:o}): whoever can change it chooses which witnesses verify the audit (chmod go-w)",
            path.display(),
            mode & 0o777
        );
    }
    let mut p = Policy {
        witnesses: Vec::new(),
        urls: Vec::new(),
        quorum: None,
    };
    let mut with_url = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", path.display(), i + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            [first, ..] if first.starts_with('#') => {}
            ["witness", key, rest @ ..] if rest.len() <= 1 => {
                WitnessVerifier::parse(key)
                    .with_context(|| format!("{}: not a witness's public key", at()))?;
                p.witnesses.push((*key).to_owned());
                with_url.push(!rest.is_empty());
                if let Some(url) = rest.first() {
                    anyhow::ensure!(
                        url.starts_with("https://") || url.starts_with("http://"),
                        "{}: a witness's address is an http(s) URL, not `{url}`",
                        at()
                    );
                    p.urls.push((*url).to_owned());
                }
            }
            ["quorum", k] if p.quorum.is_none() => {
                p.quorum = Some(
                    k.parse()
                        .ok()
                        .filter(|k| *k >= 1)
                        .with_context(|| format!("{}: the quorum is a number from 1", at()))?,
                );
            }
            _ => anyhow::bail!(
                "{}: expected `witness KEY [URL]` or `quorum K` (once), not `{}`",
                at(),
                line.trim().chars().take(60).collect::<String>()
            ),
        }
    }
    anyhow::ensure!(
        !p.witnesses.is_empty(),
        "{} names no witness",
        path.display()
    );
    anyhow::ensure!(
        with_url.iter().all(|u| *u) || with_url.iter().all(|u| !u),
        "{}: give every witness its address, or none",
        path.display()
    );
    anyhow::ensure!(
        p.quorum.is_none_or(|k| k <= p.witnesses.len()),
        "{}: a quorum of {} out of {} witnesses",
        path.display(),
        p.quorum.unwrap_or_default(),
        p.witnesses.len()
    );
    Ok(p)
}

/// The policy that applies, with its path: the one given (`--witnesses`), else the one beside
/// the audit key when it exists; none when the command line `named` its own witnesses (a
/// policy given as well is refused: one or the other).
pub fn policy_of(
    given: Option<&Path>,
    e: &EngineArgs,
    named: bool,
) -> anyhow::Result<Option<(PathBuf, Policy)>> {
    if named {
        anyhow::ensure!(
            given.is_none(),
            "give the witnesses either by --witnesses or by --witness, not both"
        );
        return Ok(None);
    }
    let path = match given {
        Some(p) => Some(p.to_owned()),
        None => e.beside_key(".witnesses").filter(|p| p.exists()),
    };
    path.map(|p| read_policy(&p).map(|policy| (p, policy)))
        .transpose()
}

/// Asks every witness of the installation's policy to cosign (each needs its address there);
/// the worst exit of them.
pub async fn cosign_all(
    ctx: &mut Context<'_>,
    e: &EngineArgs,
    given: Option<&Path>,
) -> anyhow::Result<u8> {
    let (path, policy) = policy_of(given, e, false)?.ok_or_else(|| {
        anyhow::anyhow!(
            "name the witness (--url and --witness), or keep the installation's witnesses in a policy (--witnesses, or a `.witnesses` file beside the audit key)"
        )
    })?;
    anyhow::ensure!(
        !policy.urls.is_empty(),
        "{}: give each witness its address to ask it to cosign",
        path.display()
    );
    // Each is asked, whatever the others answer.
    let mut worst = EXIT_OK;
    for (w, url) in policy.witnesses.iter().zip(&policy.urls) {
        let done = match cosign(ctx, e, url, w).await {
            Ok(code) => code,
            Err(why) => {
                writeln!(ctx.err, "studyflow: the witness at {url}: {why:#}")?;
                EXIT_FAILURE
            }
        };
        worst = worst.max(done);
    }
    Ok(worst)
}

/// A key given as itself or as a file holding it.
pub fn key_text(k: &str) -> anyhow::Result<String> {
    if Path::new(k).is_file() {
        std::fs::read_to_string(k).with_context(|| format!("cannot read {k}"))
    } else {
        Ok(k.to_owned())
    }
}

pub fn keygen(ctx: &mut Context<'_>, name: &str, out: &Path) -> anyhow::Result<u8> {
    let signer = WitnessSigner::generate(name)?;
    signer
        .write_new(out)
        .with_context(|| format!("cannot write the new key file {}", out.display()))?;
    writeln!(ctx.out, "{}", signer.verifier().encode())?;
    Ok(EXIT_OK)
}

/// Serves the witness until interrupted; prints the address it listens on first.
pub async fn serve(
    ctx: &mut Context<'_>,
    key: &Path,
    log_key: &str,
    state: PathBuf,
    listen: std::net::SocketAddr,
    init: bool,
) -> anyhow::Result<u8> {
    let signer = WitnessSigner::from_file(key)?;
    let log = AuditVerifier::parse(&key_text(log_key)?)?;
    let witness = Witness::open(signer, log.clone(), state.clone(), init)?;
    let (size, _) = witness.latest()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    writeln!(
        ctx.out,
        "studyflow serves http://{}/ as a witness of {} (add-checkpoint; {} entries cosigned so far, kept in {})",
        listener.local_addr()?,
        log.name(),
        size,
        state.display()
    )?;
    ctx.out.flush()?;
    studyflow_server::witness::serve(witness, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    writeln!(ctx.out, "stopped")?;
    Ok(EXIT_OK)
}

/// Asks the witness at `url` to cosign the audit's latest signed checkpoint.
pub async fn cosign(
    ctx: &mut Context<'_>,
    e: &EngineArgs,
    url: &str,
    witness: &str,
) -> anyhow::Result<u8> {
    let witness = WitnessVerifier::parse(&key_text(witness)?)?;
    let log = e.checkpoint_log().ok_or_else(|| {
        anyhow::anyhow!(
            "cosigned checkpoints are kept in the checkpoint log: give --audit-key-file or --checkpoint-log"
        )
    })?;
    let store = Store::open_existing(&e.database).await?;
    let (checkpoints, _) = store.audit_checkpoints().await?;
    let note = checkpoints.last().ok_or_else(|| {
        anyhow::anyhow!(
            "the audit has no signed checkpoint yet: the engine signs one at each seal when it is given --audit-key-file"
        )
    })?;
    let checkpoint = tlog::unsigned_checkpoint(note)
        .ok_or_else(|| anyhow::anyhow!("the latest checkpoint in the database is not one"))?;
    // The proof is computed from the rows: they must be the tree the checkpoint signs.
    let leaves = store.audit_leaves().await?;
    let size = usize::try_from(checkpoint.size)?;
    anyhow::ensure!(
        leaves.len() >= size && tlog::root_of(&leaves[..size]) == checkpoint.root,
        "the audit's rows do not match its latest checkpoint (rows 1–{size}): run `studyflow audit verify`; nothing was sent"
    );
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let mut old = witness
        .latest(&tlog::notes_in(&logged))
        .map_or(0, |(c, _)| c.size);
    let witness_at = WitnessAt::new(url)?;
    // At most twice: a witness that holds another size than this log remembers says which.
    for _ in 0..2 {
        anyhow::ensure!(
            old <= checkpoint.size,
            "the witness {} holds a checkpoint of {old} rows, more than the {} this database's latest covers: another copy of the log went further, or rows were cut off",
            witness.name(),
            checkpoint.size
        );
        let proof = tlog::consistency_proof(&leaves[..size], usize::try_from(old)?);
        let (status, body) = witness_at
            .add_checkpoint(&add_checkpoint_body(old, &proof, note))
            .await?;
        match status {
            200 => {
                // Only the witness's own valid cosignature is kept: any other line of its
                // answer would make the checkpoint log unreadable to the next seal.
                let (cosigned, c, time) = witness
                    .cosigned_note(note, &body)
                    .filter(|(_, c, _)| *c == checkpoint)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "the witness answered, but not with {}'s cosignature of this checkpoint; nothing was kept",
                            witness.name()
                        )
                    })?;
                studyflow_store::append_note(&log, &cosigned)
                    .with_context(|| format!("cannot append to {}", log.display()))?;
                writeln!(
                    ctx.out,
                    "cosigned by {}: rows 1–{} of {} at {} (kept in {})",
                    witness.name(),
                    c.size,
                    c.origin,
                    jiff::Timestamp::from_second(i64::try_from(time)?)?,
                    log.display()
                )?;
                return Ok(EXIT_OK);
            }
            409 => {
                let held: u64 = body.trim().parse().with_context(|| {
                    format!(
                        "the witness answered 409 without its size: {}",
                        shown(&body)
                    )
                })?;
                anyhow::ensure!(
                    held != old,
                    "the witness holds another tree of {held} rows than this audit's: the history differs from the one it cosigned (rewritten?); nothing was kept"
                );
                old = held;
            }
            _ => anyhow::bail!(
                "the witness refused to cosign rows 1–{} ({status}): {}",
                checkpoint.size,
                shown(&body)
            ),
        }
    }
    anyhow::bail!("the witness keeps answering with another size; nothing was kept")
}

/// A witness's `add-checkpoint` over HTTP: its answer's status and text, read to 64 KiB at
/// most (a cosignature line is about a hundred bytes).
struct WitnessAt {
    http: reqwest::Client,
    endpoint: String,
}

impl WitnessAt {
    const ANSWER_LIMIT: usize = 64 * 1024;

    fn new(url: &str) -> anyhow::Result<WitnessAt> {
        // A witness's size (409) is not signed: only TLS says it is the witness's own word,
        // so plain http only to this machine.
        let parsed = reqwest::Url::parse(url)
            .with_context(|| format!("`{url}` is not a witness's address"))?;
        anyhow::ensure!(
            studyflow_identity::oidc::secrets_may_go_to(&parsed),
            "the witness at `{url}` is not reached over https: its answers about what it cosigned would travel unauthenticated"
        );
        Ok(WitnessAt {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .connect_timeout(std::time::Duration::from_secs(5))
                .build()?,
            endpoint: format!("{}/add-checkpoint", url.trim_end_matches('/')),
        })
    }

    async fn add_checkpoint(&self, body: &str) -> anyhow::Result<(u16, String)> {
        let mut sent = self
            .http
            .post(&self.endpoint)
            .body(body.to_owned())
            .send()
            .await
            .with_context(|| format!("cannot reach the witness at {}", self.endpoint))?;
        let status = sent.status().as_u16();
        let mut answer = Vec::new();
        while let Some(chunk) = sent.chunk().await? {
            anyhow::ensure!(
                answer.len() + chunk.len() <= Self::ANSWER_LIMIT,
                "the witness at {} answered with more than 64 KiB; nothing was kept",
                self.endpoint
            );
            answer.extend_from_slice(&chunk);
        }
        Ok((status, String::from_utf8_lossy(&answer).into_owned()))
    }
}

/// How far the witness at `url` has cosigned the log: asked with the latest signed checkpoint
/// `note` of `size` rows and no proof, which it answers with the size it holds (409) or, when
/// that is this very checkpoint, by cosigning it again (200). For `audit verify`, so the
/// checkpoint log can be held to the witness's own record, not to what the log file says.
/// What a witness said when asked how far it has cosigned.
enum Asked {
    Holds(u64),
    /// Not reached, or it failed on its side (5xx): it said nothing, and does not count.
    Unreachable(String),
}

/// `Err` for an answer that is not the witness's word (another cosignature, a 409 without a
/// size, a refusal): never taken for a witness that is merely down.
async fn cosigned_size(url: &str, witness: &WitnessVerifier, note: &str) -> anyhow::Result<Asked> {
    let size = tlog::unsigned_checkpoint(note).map_or(0, |c| c.size);
    let (status, body) = match WitnessAt::new(url)?
        .add_checkpoint(&add_checkpoint_body(size, &[], note))
        .await
    {
        Ok(answer) => answer,
        Err(e) => return Ok(Asked::Unreachable(shown(&format!("{e:#}")))),
    };
    if (500..600).contains(&status) {
        return Ok(Asked::Unreachable(format!("it answered {status}")));
    }
    let holds = match status {
        // Only the witness's own cosignature of this checkpoint says it holds it.
        200 => witness
            .cosigned_note(note, &body)
            .filter(|(_, c, _)| c.size == size)
            .map(|_| size)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the server at {url} answered, but not with {}'s cosignature of the latest checkpoint",
                    witness.name()
                )
            }),
        409 => body.trim().parse().with_context(|| {
            format!(
                "the witness answered 409 without its size: {}",
                shown(&body)
            )
        }),
        _ => anyhow::bail!(
            "the witness at {url} did not say how far it has cosigned ({status}): {}",
            shown(&body)
        ),
    }?;
    Ok(Asked::Holds(holds))
}

/// The witnesses `audit verify` holds the log to (`keys`, each a key or a file holding one),
/// each asked, when its address is given (`urls`, in the same order), how far it has cosigned
/// the database's latest checkpoint.
pub async fn trusted(
    database: &str,
    keys: &[String],
    urls: &[String],
) -> anyhow::Result<Vec<TrustedWitness>> {
    let latest = if urls.is_empty() {
        None
    } else {
        let (notes, _) = Store::open_existing(database)
            .await?
            .audit_checkpoints()
            .await?;
        Some(notes.last().cloned().ok_or_else(|| {
            anyhow::anyhow!("the audit has no signed checkpoint to ask a witness about")
        })?)
    };
    let mut trusted: Vec<TrustedWitness> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let key = WitnessVerifier::parse(&key_text(k)?)?;
        anyhow::ensure!(
            !trusted.iter().any(|w| w.key.name() == key.name()),
            "the witness {} is given twice: each counts once",
            key.name()
        );
        // One that cannot be reached does not count; whether the rest are enough is the
        // verification's (`--witness-quorum`). One that answers otherwise than with its
        // word is an error, as ever.
        let (holds, unreachable) = match (urls.get(i), &latest) {
            (Some(url), Some(note)) => match cosigned_size(url, &key, note).await? {
                Asked::Holds(size) => (Some(size), None),
                Asked::Unreachable(why) => (None, Some(why)),
            },
            _ => (None, None),
        };
        trusted.push(TrustedWitness {
            key,
            holds,
            unreachable,
        });
    }
    Ok(trusted)
}

/// A remote answer as it may be shown: one line, at most 200 characters.
fn shown(body: &str) -> String {
    body.trim()
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}
