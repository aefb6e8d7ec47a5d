//! Witnesses of the audit log (issue #12): a party outside the Service — another institution's
//! administrator, say — keeps the latest checkpoint of the log it has seen and cosigns a new
//! one only when a Merkle consistency proof shows the new tree to extend it. A database writer
//! who also holds the audit key can rewrite history and sign it afresh, but cannot get a
//! witness to cosign it: `audit verify --witness` then finds no cosigned checkpoint that
//! matches, or the witness refuses.
//!
//! The standard formats, so that any witness of the ecosystem can do it (C2SP
//! `tlog-cosignature`: an Ed25519 `cosignature/v1` over `cosignature/v1`, `time <t>` and the
//! checkpoint's body, its key id with the signature type 0x04; C2SP `tlog-witness`: the
//! `add-checkpoint` request of `old <size>`, the consistency proof and the signed checkpoint).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, Verifier as _, VerifyingKey};

use crate::tlog::{
    AuditVerifier, Checkpoint, TlogError, checkpoint_text, consistent, empty_root, key_id_of,
    key_parts, key_text, parse_checkpoint, public_key, read_key_file, split_note, valid_name,
    write_key_file,
};

/// The signature type of a `cosignature/v1` key.
const COSIGNATURE_V1: u8 = 0x04;

/// The message a cosignature signs: the header, the time, the checkpoint's body.
fn cosigned_message(time: u64, text: &str) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

/// A witness's secret key (`PRIVATE+KEY+<name>+<id>+base64(0x04 ‖ seed)`).
pub struct WitnessSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for WitnessSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WitnessSigner({})", self.name)
    }
}

impl WitnessSigner {
    /// A new key named `name` (a schema-less URL that names the witness, e.g.
    /// `witness.example.lv/studyflow`).
    pub fn generate(name: &str) -> Result<WitnessSigner, TlogError> {
        if !valid_name(name) {
            return Err(TlogError::MalformedSigner(format!("the name `{name}`")));
        }
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut seed[..]).expect("the operating system's random generator");
        Ok(WitnessSigner {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    pub fn parse(text: &str) -> Result<WitnessSigner, TlogError> {
        let bad = || TlogError::MalformedSigner("the witness key".into());
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or_else(bad)?;
        let (name, id, seed) = key_parts(rest, COSIGNATURE_V1).ok_or_else(bad)?;
        let signer = WitnessSigner {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        };
        if hex::encode(signer.id()) != id {
            return Err(bad());
        }
        Ok(signer)
    }

    /// Reads the key file, which must be its owner's only.
    pub fn from_file(path: &Path) -> Result<WitnessSigner, TlogError> {
        let text = read_key_file(path)?;
        WitnessSigner::parse(&text)
            .map_err(|_| TlogError::MalformedSigner(path.display().to_string()))
    }

    /// Writes the key to a new file only its owner can read.
    pub fn write_new(&self, path: &Path) -> std::io::Result<()> {
        let key = key_text(&self.name, COSIGNATURE_V1, self.id(), self.key.as_bytes());
        write_key_file(
            path,
            &zeroize::Zeroizing::new(format!("PRIVATE+KEY+{}", key.as_str())),
        )
    }

    fn id(&self) -> [u8; 4] {
        key_id_of(
            &self.name,
            COSIGNATURE_V1,
            self.key.verifying_key().as_bytes(),
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> WitnessVerifier {
        WitnessVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The cosignature line of a checkpoint's body `text` at `time` (seconds since the epoch).
    pub fn cosign(&self, text: &str, time: u64) -> String {
        let signature = self.key.sign(cosigned_message(time, text).as_bytes());
        let mut blob = self.id().to_vec();
        blob.extend_from_slice(&time.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!("\u{2014} {} {}\n", self.name, B64.encode(blob))
    }
}

/// A witness's public key (`<name>+<id>+base64(0x04 ‖ key)`), as its operator publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessVerifier {
    name: String,
    key: VerifyingKey,
}

impl WitnessVerifier {
    pub fn parse(text: &str) -> Result<WitnessVerifier, TlogError> {
        let (name, key) = public_key(text, COSIGNATURE_V1)
            .ok_or_else(|| TlogError::MalformedVerifier(text.trim().chars().take(80).collect()))?;
        Ok(WitnessVerifier { name, key })
    }

    pub fn encode(&self) -> String {
        let id = key_id_of(&self.name, COSIGNATURE_V1, self.key.as_bytes());
        key_text(&self.name, COSIGNATURE_V1, id, self.key.as_bytes()).to_string()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The checkpoint a signed note holds and the time this witness cosigned it, when one of
    /// the note's signature lines is this witness's valid cosignature (others are skipped).
    pub fn cosigned(&self, note: &str) -> Option<(Checkpoint, u64)> {
        let (text, signatures) = split_note(note)?;
        let id = key_id_of(&self.name, COSIGNATURE_V1, self.key.as_bytes());
        signatures.lines().find_map(|line| {
            let (name, blob) = line.strip_prefix("\u{2014} ")?.split_once(' ')?;
            let blob = B64.decode(blob).ok().filter(|_| name == self.name)?;
            if blob.len() != 76 || blob[..4] != id {
                return None;
            }
            let time = u64::from_be_bytes(blob[4..12].try_into().ok()?);
            let signature = ed25519_dalek::Signature::from_slice(&blob[12..]).ok()?;
            self.key
                .verify(cosigned_message(time, text).as_bytes(), &signature)
                .ok()?;
            Some((parse_checkpoint(text)?, time))
        })
    }

    /// `note` with the lines of a witness's answer that are this witness's valid cosignature
    /// of it, and nothing else of the answer (a line that is not a signature, or another
    /// key's, would make the note unreadable where it is kept); `None` when there is none.
    pub fn cosigned_note(&self, note: &str, answer: &str) -> Option<(String, Checkpoint, u64)> {
        let base = format!("{}\n", note.trim_end_matches('\n'));
        let mut out = base.clone();
        let mut found = None;
        // Each line on its own against the note: one valid line admits no other.
        for line in answer.lines().filter(|l| l.starts_with('\u{2014}')).take(8) {
            if let Some(seen) = self.cosigned(&format!("{base}{line}\n")) {
                out.push_str(line);
                out.push('\n');
                found = Some(seen);
            }
        }
        found.map(|(c, time)| (out, c, time))
    }

    /// The largest checkpoint among `notes` that this witness cosigned, with its time.
    pub fn latest<'n>(
        &self,
        notes: impl IntoIterator<Item = &'n String>,
    ) -> Option<(Checkpoint, u64)> {
        notes
            .into_iter()
            .filter_map(|n| self.cosigned(n))
            .max_by_key(|(c, _)| c.size)
    }
}

/// The body of a C2SP `tlog-witness` `add-checkpoint` request: `old <size>`, the consistency
/// proof from that size, a blank line, the signed checkpoint.
pub fn add_checkpoint_body(old: u64, proof: &[[u8; 32]], note: &str) -> String {
    let mut body = format!("old {old}\n");
    for p in proof {
        body.push_str(&B64.encode(p));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}

/// Why a witness refuses to cosign, with the HTTP status C2SP `tlog-witness` gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("the checkpoint is not signed by the log's key")]
    NotSigned,
    #[error("this witness does not witness the log `{0}`")]
    UnknownLog(String),
    /// The request's `old` is not the size the witness last cosigned: the size it did.
    #[error("the witness's latest checkpoint of the log has {0} entries")]
    Conflict(u64),
    #[error(
        "the consistency proof does not show the checkpoint to extend the one cosigned before (history rewritten?)"
    )]
    Inconsistent,
    #[error("the witness cannot keep its state: {0}")]
    State(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) => 400,
            Refusal::NotSigned => 403,
            Refusal::UnknownLog(_) => 404,
            Refusal::Conflict(_) => 409,
            Refusal::Inconsistent => 422,
            Refusal::State(_) => 500,
        }
    }
}

/// A witness of one log: its key, the log's public key, and the file that keeps the latest
/// checkpoint it cosigned (written whole and synced before a cosignature leaves it, so it
/// never cosigns two views of the log), locked against a second witness process on it.
#[derive(Debug)]
pub struct Witness {
    signer: WitnessSigner,
    log: AuditVerifier,
    state: PathBuf,
    _lock: std::fs::File,
}

impl Witness {
    /// The witness keeping its state in `state`, which must exist unless `init` (a witness
    /// that lost its state would cosign any view of the log, a fork too, so a missing state is
    /// an error, not a fresh start). Refused while another process witnesses with it.
    pub fn open(
        signer: WitnessSigner,
        log: AuditVerifier,
        state: PathBuf,
        init: bool,
    ) -> Result<Witness, Refusal> {
        let refused = |why: String| Refusal::State(why);
        let lock_path = sibling(&state, ".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| refused(format!("{}: {e}", lock_path.display())))?;
        lock.try_lock().map_err(|_| {
            refused(format!(
                "{} is in use by another witness process",
                state.display()
            ))
        })?;
        let w = Witness {
            signer,
            log,
            state,
            _lock: lock,
        };
        match std::fs::metadata(&w.state) {
            Ok(_) if init => Err(refused(format!(
                "{} exists already: a witness's state is made once (--init only for a new one)",
                w.state.display()
            ))),
            Ok(_) => w.latest().map(|_| w),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && init => {
                let empty = Checkpoint {
                    origin: w.log.name().to_owned(),
                    size: 0,
                    root: empty_root(),
                };
                w.keep(&empty)?;
                Ok(w)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(refused(format!(
                "{} does not exist: give the state this witness has kept, or --init for a new witness",
                w.state.display()
            ))),
            Err(e) => Err(refused(format!("{}: {e}", w.state.display()))),
        }
    }

    /// The size and root of the latest checkpoint cosigned.
    pub fn latest(&self) -> Result<(u64, [u8; 32]), Refusal> {
        let text = std::fs::read_to_string(&self.state)
            .map_err(|e| Refusal::State(format!("{}: {e}", self.state.display())))?;
        let bad = || Refusal::State(format!("{} is not a witness's state", self.state.display()));
        let c = parse_checkpoint(&text).ok_or_else(bad)?;
        if c.origin != self.log.name() {
            return Err(bad());
        }
        Ok((c.size, c.root))
    }

    fn keep(&self, c: &Checkpoint) -> Result<(), Refusal> {
        use std::io::Write;
        let state = |e: std::io::Error| Refusal::State(e.to_string());
        let temporary = sibling(&self.state, ".partial");
        let text = checkpoint_text(&c.origin, c.size, &c.root);
        {
            let mut f = std::fs::File::create(&temporary).map_err(state)?;
            f.write_all(text.as_bytes()).map_err(state)?;
            f.sync_all().map_err(state)?;
        }
        std::fs::rename(&temporary, &self.state).map_err(state)?;
        let dir = match self.state.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(state)?;
        Ok(())
    }

    /// C2SP `tlog-witness` `add-checkpoint`: the cosignature line of the request's checkpoint,
    /// at `now` (seconds since the epoch), when it is the log's, `old` is the size cosigned
    /// last and the proof shows the new tree to extend that one.
    pub fn add_checkpoint(&self, body: &str, now: u64) -> Result<String, Refusal> {
        let bad = |why: &str| Refusal::Malformed(why.to_owned());
        let (head, note) = body
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line"))?;
        let mut lines = head.lines();
        let old: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("the first line is not `old <size>`"))?;
        let proof = lines
            .map(|l| {
                B64.decode(l)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
            })
            .collect::<Option<Vec<[u8; 32]>>>()
            .ok_or_else(|| bad("a proof line is not a base64 hash"))?;
        if proof.len() > 63 {
            return Err(bad("more than 63 proof lines"));
        }
        let (text, _) =
            split_note(note).ok_or_else(|| bad("the checkpoint is not a signed note"))?;
        let claimed = parse_checkpoint(text).ok_or_else(|| bad("not a checkpoint"))?;
        if claimed.origin != self.log.name() {
            return Err(Refusal::UnknownLog(claimed.origin));
        }
        let checkpoint = self.log.checkpoint(note).map_err(|_| Refusal::NotSigned)?;
        if checkpoint.size < old {
            return Err(bad("the checkpoint is smaller than `old`"));
        }
        let (size, root) = self.latest()?;
        // Another size, or another tree of the same size: the witness says which it holds.
        if old != size || (checkpoint.size == size && checkpoint.root != root) {
            return Err(Refusal::Conflict(size));
        }
        if !consistent(old, checkpoint.size, &root, &checkpoint.root, &proof) {
            return Err(Refusal::Inconsistent);
        }
        // The same checkpoint again is cosigned again without a write.
        if checkpoint.size != size {
            self.keep(&checkpoint)?;
        }
        Ok(self.signer.cosign(text, now))
    }
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::{AuditSigner, consistency_proof, root_of};

    /// A note with signature lines added after its own, as they are (a witness's answer is
    /// taken through [`WitnessVerifier::cosigned_note`]).
    fn with_cosignatures(note: &str, lines: &str) -> String {
        let mut out = note.trim_end_matches('\n').to_owned();
        out.push('\n');
        for l in lines.lines().filter(|l| l.starts_with('\u{2014}')) {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    fn leaves(n: usize) -> Vec<[u8; 32]> {
        (0..n)
            .map(|i| crate::tlog::leaf([i.to_string().as_bytes()]))
            .collect()
    }

    /// Every prefix of trees up to 40 leaves is proved consistent with the whole, and no proof
    /// survives a changed hash, a wrong size or another tree's root (RFC 9162 §2.1.4).
    #[test]
    fn consistency_proofs_prove_prefixes_and_nothing_else() {
        for n in 1..=40usize {
            let all = leaves(n);
            let new_root = root_of(&all);
            let mut frontier = crate::tlog::Frontier::default();
            for l in &all {
                frontier.push(*l);
            }
            assert_eq!(frontier.root(), new_root, "{n}");
            for m in 0..=n {
                let old_root = root_of(&all[..m]);
                let proof = consistency_proof(&all, m);
                assert!(
                    consistent(m as u64, n as u64, &old_root, &new_root, &proof),
                    "{m} of {n}"
                );
                if m == 0 || m == n {
                    continue;
                }
                let mut other = all.clone();
                other[m - 1] = crate::tlog::leaf([b"rewritten".as_slice()]);
                assert!(!consistent(
                    m as u64,
                    n as u64,
                    &root_of(&other[..m]),
                    &new_root,
                    &proof
                ));
                assert!(!consistent(
                    m as u64,
                    n as u64,
                    &old_root,
                    &root_of(&other),
                    &proof
                ));
                for i in 0..proof.len() {
                    let mut p = proof.clone();
                    p[i][0] ^= 1;
                    assert!(!consistent(m as u64, n as u64, &old_root, &new_root, &p));
                }
                if m + 1 < n {
                    assert!(!consistent(
                        m as u64 + 1,
                        n as u64,
                        &old_root,
                        &new_root,
                        &proof
                    ));
                }
            }
        }
    }

    /// A witness cosigns the log's growing checkpoints, refuses a stale `old` with the size
    /// it holds, a checkpoint signed by another key, another log's, and a rewritten history
    /// signed with the log's own key; its keys round-trip in the note formats.
    #[test]
    fn a_witness_cosigns_only_a_log_that_grows() {
        let dir = std::env::temp_dir().join(format!("sf-witness-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = AuditSigner::generate("studyflow.test/audit").unwrap();
        let signer = WitnessSigner::generate("witness.test/w1").unwrap();
        signer.write_new(&dir.join("w.key")).unwrap();
        let signer = WitnessSigner::from_file(&dir.join("w.key")).unwrap();
        let public = WitnessVerifier::parse(&signer.verifier().encode()).unwrap();
        assert_eq!(public, signer.verifier());
        assert!(
            WitnessVerifier::parse(&log.verifier().encode()).is_err(),
            "a log's key (0x01) is no witness's key"
        );
        let signer2 = WitnessSigner::from_file(&dir.join("w.key")).unwrap();
        assert!(
            matches!(
                Witness::open(signer2, log.verifier(), dir.join("state"), false),
                Err(Refusal::State(_))
            ),
            "no state and no --init: refused, not started afresh"
        );
        let w = Witness::open(signer, log.verifier(), dir.join("state"), true).unwrap();
        let signer3 = WitnessSigner::from_file(&dir.join("w.key")).unwrap();
        assert!(
            Witness::open(signer3, log.verifier(), dir.join("state"), false).is_err(),
            "a second witness process on the same state is refused"
        );
        let all = leaves(20);
        let note = |n: usize| log.checkpoint(n as u64, &root_of(&all[..n]));
        let ask = |old: usize, n: usize| {
            let proof = consistency_proof(&all[..n], old);
            w.add_checkpoint(
                &add_checkpoint_body(old as u64, &proof, &note(n)),
                1_700_000_000 + n as u64,
            )
        };
        let line = ask(0, 5).unwrap();
        let cosigned = with_cosignatures(&note(5), &line);
        let (c, time) = public.cosigned(&cosigned).unwrap();
        assert_eq!((c.size, time), (5, 1_700_000_005));
        assert_eq!(
            log.verifier().checkpoint(&cosigned).unwrap().size,
            5,
            "the log's own signature still reads"
        );
        assert_eq!(ask(0, 9), Err(Refusal::Conflict(5)));
        assert_eq!(ask(5, 12).map(|_| ()), Ok(()));
        assert_eq!(ask(12, 12).map(|_| ()), Ok(()), "the same checkpoint again");
        // Rewritten before row 12 and signed with the log's own key: refused, state kept.
        let mut rewritten = all.clone();
        rewritten[3] = crate::tlog::leaf([b"rewritten".as_slice()]);
        let forged = log.checkpoint(16, &root_of(&rewritten[..16]));
        let proof = consistency_proof(&rewritten[..16], 12);
        assert_eq!(
            w.add_checkpoint(&add_checkpoint_body(12, &proof, &forged), 1),
            Err(Refusal::Inconsistent)
        );
        assert_eq!(w.latest().unwrap().0, 12);
        let stranger = AuditSigner::generate("studyflow.test/audit").unwrap();
        let body = add_checkpoint_body(
            12,
            &consistency_proof(&all[..16], 12),
            &stranger.checkpoint(16, &root_of(&all[..16])),
        );
        assert_eq!(w.add_checkpoint(&body, 1), Err(Refusal::NotSigned));
        let other = AuditSigner::generate("elsewhere.test/log").unwrap();
        let body = add_checkpoint_body(0, &[], &other.checkpoint(1, &root_of(&all[..1])));
        assert!(matches!(
            w.add_checkpoint(&body, 1),
            Err(Refusal::UnknownLog(_))
        ));
        assert!(matches!(
            w.add_checkpoint("old x\n\n", 1),
            Err(Refusal::Malformed(_))
        ));
        // Only the witness's own valid lines of an answer are kept with the note.
        let junk = format!("\u{2014}x\n\u{2014} studyflow.test/audit !!!\n{line}\u{2014}y\n");
        let (kept, c, _) = public.cosigned_note(&note(5), &junk).unwrap();
        assert_eq!((kept, c.size), (cosigned.clone(), 5));
        assert_eq!(public.cosigned_note(&note(5), "\u{2014}x\n"), None);
        // A cosignature over another checkpoint, or by another witness, does not count.
        let other_note = with_cosignatures(&note(6), &line);
        assert_eq!(public.cosigned(&other_note), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
