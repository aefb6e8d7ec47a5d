//! The installation's witnesses as a monitor sees them (issue #12, MK403 p.25.3): who they
//! are, how many must hold, how far each has cosigned the audit log, and the latest checkpoint
//! that enough of them cosigned — a signed note a monitor checks with the audit's public key
//! and the witnesses' keys alone. Read from the checkpoint log that `audit cosign` appends to,
//! again only when that file changed (the log grows with every seal for years).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use studyflow_store::tlog;
use studyflow_store::witness::WitnessVerifier;

/// The installation's witness policy and the checkpoint log their cosignatures are kept in.
#[derive(Debug)]
pub struct Witnesses {
    witnesses: Vec<(WitnessVerifier, Option<String>)>,
    quorum: usize,
    log: PathBuf,
    /// What the log held when last read, by its length and time of change.
    seen: Mutex<Option<(u64, SystemTime, Arc<Cosigned>)>>,
}

/// What the checkpoint log shows of the witnesses.
#[derive(Debug)]
struct Cosigned {
    /// Per witness, in the policy's order: the largest checkpoint it cosigned (size) and when.
    latest: Vec<Option<(u64, u64)>>,
    /// The latest note cosigned by at least the quorum.
    note: Option<String>,
}

/// A witness of the audit log, as a monitor is told of it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WitnessView {
    /// Its public key (C2SP signed-note verifier key).
    pub key: String,
    /// Where it answers (C2SP tlog-witness), when the policy says.
    pub url: Option<String>,
    /// The size of the largest checkpoint of the log it cosigned, as the checkpoint log holds it.
    pub cosigned_size: Option<u64>,
    /// When it cosigned that one (RFC 3339).
    pub cosigned_at: Option<String>,
}

/// The installation's witnesses and how many must hold (`GET /api/v1/audit/witnesses`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WitnessesView {
    pub quorum: usize,
    pub witnesses: Vec<WitnessView>,
}

impl Witnesses {
    /// `quorum` of `witnesses` (each with its address, when known) must hold; their
    /// cosignatures are in the checkpoint log at `log`.
    pub fn new(
        witnesses: Vec<(WitnessVerifier, Option<String>)>,
        quorum: usize,
        log: PathBuf,
    ) -> Witnesses {
        Witnesses {
            witnesses,
            quorum,
            log,
            seen: Mutex::new(None),
        }
    }

    /// What the checkpoint log holds now; read again only when it changed. Blocking.
    fn cosigned(&self) -> std::io::Result<Arc<Cosigned>> {
        let (len, modified) = match std::fs::metadata(&self.log) {
            Ok(m) => (m.len(), m.modified()?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, SystemTime::UNIX_EPOCH),
            Err(e) => return Err(e),
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((l, m, c)) = seen.as_ref()
            && (*l, *m) == (len, modified)
        {
            return Ok(c.clone());
        }
        let text = match std::fs::read_to_string(&self.log) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let notes = tlog::notes_in(&text);
        let latest = self
            .witnesses
            .iter()
            .map(|(w, _)| w.latest(&notes).map(|(c, time)| (c.size, time)))
            .collect();
        // `audit cosign` keeps each witness's cosignature of a checkpoint in a note of its own:
        // the notes of one checkpoint are one, with every signature line any of them has.
        let mut checkpoints: Vec<(&str, Vec<&str>)> = Vec::new();
        for n in &notes {
            let Some((text, signatures)) = tlog::split_note(n) else {
                continue;
            };
            let at = match checkpoints.iter().position(|(t, _)| *t == text) {
                Some(at) => at,
                None => {
                    checkpoints.push((text, Vec::new()));
                    checkpoints.len() - 1
                }
            };
            for line in signatures.lines().filter(|l| !l.is_empty()) {
                if !checkpoints[at].1.contains(&line) {
                    checkpoints[at].1.push(line);
                }
            }
        }
        // The largest checkpoint enough of the witnesses cosigned, each with a valid line.
        let note = checkpoints
            .iter()
            .map(|(text, lines)| format!("{text}\n{}\n", lines.join("\n")))
            .filter(|n| {
                self.witnesses
                    .iter()
                    .filter(|(w, _)| w.cosigned(n).is_some())
                    .count()
                    >= self.quorum
            })
            .filter_map(|n| tlog::parse_checkpoint(tlog::split_note(&n)?.0).map(|c| (c.size, n)))
            .max_by_key(|(size, _)| *size)
            .map(|(_, n)| n);
        let c = Arc::new(Cosigned { latest, note });
        *seen = Some((len, modified, c.clone()));
        Ok(c)
    }

    /// The witnesses, the quorum and how far each has cosigned. Blocking.
    pub fn view(&self) -> std::io::Result<WitnessesView> {
        let c = self.cosigned()?;
        Ok(WitnessesView {
            quorum: self.quorum,
            witnesses: self
                .witnesses
                .iter()
                .zip(&c.latest)
                .map(|((w, url), latest)| WitnessView {
                    key: w.encode(),
                    url: url.clone(),
                    cosigned_size: latest.map(|(size, _)| size),
                    cosigned_at: latest.and_then(|(_, time)| {
                        jiff::Timestamp::from_second(time as i64)
                            .ok()
                            .map(|t| t.to_string())
                    }),
                })
                .collect(),
        })
    }

    /// The latest checkpoint at least the quorum of the witnesses cosigned, as a signed note
    /// with its signature lines; `None` when there is none yet. Blocking.
    pub fn cosigned_note(&self) -> std::io::Result<Option<String>> {
        Ok(self.cosigned()?.note.clone())
    }
}
