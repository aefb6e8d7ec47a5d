//! The hash-chained audit: events go to `audit_outbox` inside the transaction that changes
//! state; [`Store::seal_audit`] chains them into `audit`.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::tlog::{
    AuditVerifier, Checkpoint, Frontier, included, inclusion_proof, last_note, notes_in,
    unsigned_checkpoint,
};
use crate::{Backend, Result, Store, in_tx, on_pool};

/// What `audit verify` trusts beyond the database: the public key the checkpoints must be
/// signed with, the checkpoint log kept outside the database, and the witnesses whose
/// cosignatures it must hold. Without them, the chain and the checkpoints' roots are checked
/// against each other only.
#[derive(Debug, Clone, Default)]
pub struct AuditTrust {
    pub verifier: Option<AuditVerifier>,
    pub log: Option<std::path::PathBuf>,
    /// Each must have cosigned a checkpoint that the chain still matches — or, with
    /// `quorum`, at least that many of them.
    pub witnesses: Vec<TrustedWitness>,
    /// How many of `witnesses` must hold (k of n); `None`: all of them. The others are
    /// reported with why they do not count ([`Verification::Intact`]'s `uncounted`).
    pub quorum: Option<usize>,
}

/// A witness `audit verify` holds the log to.
#[derive(Debug, Clone)]
pub struct TrustedWitness {
    pub key: crate::witness::WitnessVerifier,
    /// How far the witness itself says it has cosigned, when it was asked: the checkpoint log
    /// must hold that very cosignature, so one that keeps only older cosigned checkpoints (and
    /// a history rewritten after them) is caught.
    pub holds: Option<u64>,
    /// Why it could not be asked, when it was to be (it then does not count).
    pub unreachable: Option<String>,
}

impl AuditTrust {
    /// The latest checkpoint each witness cosigned in the checkpoint log: (witness, rows
    /// covered, when cosigned, seconds since the epoch); a witness that cosigned none, or that
    /// could not be asked (it is not counted: see [`Verification::Intact`]'s `uncounted`), is
    /// left out.
    pub fn witnessed(&self) -> Vec<(String, u64, u64)> {
        let text = self
            .log
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let notes = notes_in(&text);
        self.witnesses
            .iter()
            .filter(|w| w.unreachable.is_none())
            .filter_map(|w| {
                let (c, time) = w.key.latest(&notes)?;
                Some((w.key.name().to_owned(), c.size, time))
            })
            .collect()
    }
}

/// Appends a signed checkpoint (a cosigned one, too) to the checkpoint log file `path` (made the
/// owner's only), a blank line after it. In one write, so a crash leaves a note whole or
/// missing; a log that does not end with the blank line after its last note (an append cut
/// short before) gets it first.
pub fn append_note(path: &std::path::Path, note: &str) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut options = std::fs::OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    let len = f.metadata()?.len();
    let mut end = [0u8; 2];
    let mut before = "";
    if len > 0 {
        f.seek(SeekFrom::Start(len.saturating_sub(2)))?;
        let n = f.read(&mut end)?;
        before = match &end[..n] {
            b"\n\n" => "",
            [.., b'\n'] => "\n",
            _ => "\n\n",
        };
    }
    f.write_all(format!("{before}{note}\n").as_bytes())?;
    f.sync_all()
}

/// The MAC of an event under the audit key with a random nonce of its own, stored as
/// `nonce.mac`: the nonce makes each written event unique, so a genuine event copied (from the
/// chain, the outbox or `audit_refused`) is a replay the sealer refuses.
fn event_mac(signer: &crate::tlog::AuditSigner, e: &AuditEvent) -> String {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).expect("the operating system's random generator");
    let nonce = hex::encode(nonce);
    format!("{nonce}.{}", mac_with(signer, &nonce, e))
}

fn mac_with(signer: &crate::tlog::AuditSigner, nonce: &str, e: &AuditEvent) -> String {
    let at = e.at.to_string();
    signer.event_mac(parts(&[nonce], &at, e))
}

/// An event's parts in the order every hash and MAC of it takes them (each length-prefixed by
/// the taker): `lead` (the previous hash and position, the position, or the nonce), its time,
/// and its fields.
fn parts<'a>(
    lead: &'a [&'a str],
    at: &'a str,
    e: &'a AuditEvent,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    lead.iter()
        .copied()
        .chain([at, &e.actor, &e.action, &e.object, &e.point, &e.detail])
        .map(str::as_bytes)
}

/// The parts of an event its chain hash and Merkle leaf take after `lead`: with `digest` (rows
/// sealed since schema 15), its time, action, MK403 point, the first part of its object and the
/// digest of its payload ([`payload_digest`]), so the payload can be erased
/// ([`Store::erase_audit_payloads`]) while the row still verifies; without (older rows), every
/// field itself, as [`parts`].
fn hashed<'a>(
    lead: &'a [&'a str],
    at: &'a str,
    e: &'a AuditEvent,
    digest: Option<&'a str>,
) -> Vec<&'a [u8]> {
    match digest {
        None => parts(lead, at, e).collect(),
        Some(d) => lead
            .iter()
            .copied()
            .chain([at, &e.action, &e.point, scope(&e.object), d])
            .map(str::as_bytes)
            .collect(),
    }
}

/// The digest of an event's payload — who acted, on what, and the rest (`actor`, `object`,
/// `detail`), each length-prefixed after the row's random `salt` — as hex SHA-256: what stands
/// for the payload in the hashes of a row sealed since schema 15. The salt goes with an
/// erasure, so an erased payload cannot be found again by guessing it and hashing the guess.
pub fn payload_digest(e: &AuditEvent, salt: &str) -> String {
    hex::encode(prefixed_sha256(
        [salt, &e.actor, &e.object, &e.detail].map(str::as_bytes),
    ))
}

/// SHA-256 over `parts`, each length-prefixed, as a row's hash and its payload's digest take
/// them.
fn prefixed_sha256<'p>(parts: impl IntoIterator<Item = &'p [u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// A new random salt for a payload's digest (16 bytes, hex).
fn new_salt() -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system's random generator");
    hex::encode(salt)
}

/// What an erased row keeps of its MAC: its hash, so a copy of the event as it was written is
/// still known for a replay, and the MAC (under the audit key) confirms no guess of the payload.
fn erased_mac(mac: &str) -> String {
    format!("erased:{}", hex::encode(Sha256::digest(mac.as_bytes())))
}

/// The first part of an object — the study, `account` or `audit` — which names nobody: what a
/// row whose payload was erased keeps of its object (and what its hashes take of it).
pub fn scope(object: &str) -> &str {
    object.split('/').next().unwrap_or_default()
}

/// Whether `stored` is a valid `nonce.mac` of the event (compared in constant time).
fn mac_valid(signer: &crate::tlog::AuditSigner, e: &AuditEvent, stored: Option<&str>) -> bool {
    let Some((nonce, mac)) = stored.and_then(|s| s.split_once('.')) else {
        return false;
    };
    let expected = mac_with(signer, nonce, e);
    expected.len() == mac.len()
        && expected
            .bytes()
            .zip(mac.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The audit no longer is the history signed.
fn tampered(why: String) -> crate::StoreError {
    crate::StoreError::AuditTampered(why)
}

/// Held by the PostgreSQL transaction that seals, so one sealer at a time extends the chain.
const SEAL_LOCK: i64 = 0x5354_5544_5941_5544;

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One thing that happened. Nothing identifying goes into any field: objects are study ids,
/// step ids and study pseudonyms.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    /// Microseconds since the Unix epoch.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub object: String,
    /// The MK403 point the action rests on, e.g. `p.17.3`; empty when none does.
    pub point: String,
    /// Anything else, as JSON text.
    pub detail: String,
}

impl AuditEvent {
    pub fn new(
        at: i64,
        actor: impl Into<String>,
        action: impl Into<String>,
        object: impl Into<String>,
        point: impl Into<String>,
        detail: impl Into<String>,
    ) -> AuditEvent {
        AuditEvent {
            at,
            actor: actor.into(),
            action: action.into(),
            object: object.into(),
            point: point.into(),
            detail: detail.into(),
        }
    }
}

/// A sealed audit row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
    /// The digest its payload is chained by ([`payload_digest`]); `None` for a row sealed
    /// before schema 15, whose hashes take the payload itself (it cannot be erased).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_hash: Option<String>,
    /// The digest's random salt; gone with an erasure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_salt: Option<String>,
    /// When its payload was erased by `audit erase` (µs since the epoch): its actor and detail
    /// are then empty and its object is the object's first part ([`scope`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<i64>,
}

impl AuditRow {
    /// The hash this row must have after the row whose hash is `prev`.
    pub fn hash_after(&self, prev: &str) -> String {
        row_hash(prev, self.seq, &self.event, self.payload_hash.as_deref())
    }

    /// Its leaf in the Merkle tree.
    pub fn leaf(&self) -> [u8; 32] {
        leaf_hash(self.seq, &self.event, self.payload_hash.as_deref())
    }

    /// Whether its payload is what its hashes stand for: the payload itself (a row sealed
    /// before schema 15), the payload under its digest and salt, or — erased — nothing of it:
    /// no actor, no detail, the object's first part, no salt. Why not, when it is not.
    pub fn payload_holds(&self) -> std::result::Result<(), &'static str> {
        let e = &self.event;
        let empty = e.actor.is_empty() && e.detail.is_empty() && scope(&e.object) == e.object;
        match (&self.payload_hash, &self.payload_salt, self.erased_at) {
            (None, None, None) => Ok(()),
            (None, _, _) => {
                Err("its payload is marked erased, or salted, but no digest stands for it (edited)")
            }
            (Some(_), None, None) => Err("its payload's salt is missing (edited)"),
            (Some(d), Some(salt), None) if payload_digest(e, salt) != *d => {
                Err("its payload (actor, object, detail) does not match its digest (edited)")
            }
            (Some(_), Some(_), None) => Ok(()),
            (Some(_), Some(_), Some(_)) => {
                Err("its payload is marked erased, but it keeps the salt of its digest (edited)")
            }
            (Some(_), None, Some(_)) if !empty => {
                Err("its payload is marked erased, but it holds one (edited)")
            }
            (Some(_), None, Some(_)) => Ok(()),
        }
    }
}

/// What proves that one sealed event is in the log a signed checkpoint names (`studyflow
/// audit prove`): the row, its audit path in the Merkle tree (RFC 6962 §2.1.1, hex) and the
/// checkpoint. Checked elsewhere with the public key alone ([`verify_inclusion`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InclusionProof {
    pub row: AuditRow,
    pub proof: Vec<String>,
    pub checkpoint: String,
}

/// Checks an [`InclusionProof`] (as JSON) with the audit's public key: the checkpoint is the
/// key's, the row is what its hashes say ([`AuditRow::payload_holds`]: its payload matches its
/// digest, or was erased whole), and its leaf is at its place in the tree the checkpoint names.
/// `Ok((the row proved, rows the checkpoint covers))`, or why not.
pub fn verify_inclusion(
    text: &str,
    verifier: &AuditVerifier,
) -> std::result::Result<(AuditRow, u64), String> {
    let p: InclusionProof = serde_json::from_str(text)
        .map_err(|e| format!("not a proof of `studyflow audit prove`: {e}"))?;
    let c = verifier.checkpoint(&p.checkpoint).map_err(|e| {
        format!(
            "its checkpoint is not one of the audit key {} ({e})",
            verifier.name()
        )
    })?;
    let row = &p.row;
    row.payload_holds()
        .map_err(|why| format!("the row: {why}"))?;
    let proof = p
        .proof
        .iter()
        .map(|h| hex::decode(h).ok()?.try_into().ok())
        .collect::<Option<Vec<[u8; 32]>>>()
        .ok_or("its audit path is not a list of SHA-256 hashes")?;
    let index = row
        .seq
        .checked_sub(1)
        .and_then(|i| u64::try_from(i).ok())
        .ok_or("the row has no place in the log")?;
    if included(index, c.size, &row.leaf(), &proof, &c.root) {
        Ok((row.clone(), c.size))
    } else {
        Err(format!(
            "the row is not the event at row {} of the log the checkpoint of rows 1–{} names (edited, or another log)",
            row.seq, c.size
        ))
    }
}

/// The action of the event that records an erasure of payloads, and lists the rows erased.
pub const PAYLOADS_ERASED: &str = "audit.payloads_erased";

/// What [`Store::erase_audit_payloads`] did, or would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// Rows whose payload is now erased (0 on a dry run).
    pub erased: u64,
    /// The rows erased, or that would be.
    pub rows: Vec<i64>,
    /// Rows that name the person but were sealed before schema 15: their hashes take the
    /// payload itself, so it stays.
    pub kept: u64,
}

/// The first parts of audit objects that name no study (`account/<login>`, `audit`): no study
/// may have these ids, so a study's audit ([`Store::audit_of`]) never holds their events.
pub const RESERVED_OBJECTS: &[&str] = &["account", "audit"];

/// Which of a study's audit rows to read ([`Store::audit_of`]); every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// This actor (`alice`, `engine`): a login names its person whether signed in locally or at
    /// the identity provider (`alice (https://idp… sub)`).
    pub actor: Option<String>,
    /// Exactly this action (`study.approved`).
    pub action: Option<String>,
    /// At or after this time (microseconds since the Unix epoch).
    pub from: Option<i64>,
    /// Before this time.
    pub until: Option<i64>,
}

/// The outcome of `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every row chains to the one before; `pending` events are not sealed yet; `checkpoints`
    /// signed checkpoints match the chain (their signatures checked when a key was given);
    /// `refused` events were refused by a signing sealer (no valid MAC) and kept apart.
    Intact {
        rows: i64,
        pending: i64,
        /// Rows whose payload was erased by `audit erase` (each listed by its sealed record).
        erased: i64,
        checkpoints: u64,
        refused: i64,
        /// The witnesses that did not count towards a quorum of fewer than all, each with why.
        uncounted: Vec<String>,
    },
    /// The first row that does not verify, and why.
    Broken { seq: i64, reason: String },
}

/// The hash of a row: SHA-256 over the previous hash and the row's fields, each
/// length-prefixed — its payload by `digest` when it has one ([`hashed`]).
pub fn row_hash(prev: &str, seq: i64, e: &AuditEvent, digest: Option<&str>) -> String {
    let (seq, at) = (seq.to_string(), e.at.to_string());
    hex::encode(prefixed_sha256(hashed(&[prev, &seq], &at, e, digest)))
}

/// The Merkle tree's leaf of the event at position `seq` (see [`crate::tlog`]): its fields
/// length-prefixed, as the chain hashes them (its payload by `digest` when it has one).
pub fn leaf_hash(seq: i64, e: &AuditEvent, digest: Option<&str>) -> [u8; 32] {
    let (seq, at) = (seq.to_string(), e.at.to_string());
    crate::tlog::leaf(hashed(&[&seq], &at, e, digest))
}

/// `INSERT INTO table (columns) VALUES ($1, …), (…), …` for `rows` rows: one statement per
/// chunk instead of one per row (both backends accept multi-row VALUES).
pub(crate) fn multi_insert(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * columns * 5 + tail.len());
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push(',');
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

/// Rows of `columns` columns per multi-row statement on `backend`: up to `most` on PostgreSQL,
/// where each statement is a round trip; on SQLite, which has none to save, few enough that a
/// statement binds at most [`SQLITE_PARAMETERS`] — sqlx looks each parameter's name up in a
/// list as long as the statement's, so binding costs the square of its parameters (400 runs
/// of 19 columns: 29 million steps a statement, a tenth of a demo's time).
pub(crate) fn rows_at_once(backend: crate::Backend, columns: usize, most: usize) -> usize {
    match backend {
        crate::Backend::Postgres => most,
        crate::Backend::Sqlite => (SQLITE_PARAMETERS / columns).clamp(1, most),
    }
}

/// The most parameters a multi-row statement binds on SQLite ([`rows_at_once`]).
pub(crate) const SQLITE_PARAMETERS: usize = 256;

/// Inserts events into the outbox inside the caller's transaction, a few hundred per
/// statement on PostgreSQL ([`rows_at_once`]).
macro_rules! push_audit {
    ($store:expr, $tx:expr, $events:expr) => {
        for chunk in $events.chunks($crate::audit::rows_at_once($store.backend(), 7, 500)) {
            let sql = $crate::audit::multi_insert(
                "INSERT INTO audit_outbox (at, actor, action, object, point, detail, mac)",
                7,
                chunk.len(),
                "",
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(e.at)
                    .bind(&e.actor)
                    .bind(&e.action)
                    .bind(&e.object)
                    .bind(&e.point)
                    .bind(&e.detail)
                    .bind($store.audit_mac(e));
            }
            q.execute(&mut *$tx).await?;
        }
    };
}
pub(crate) use push_audit;

/// Runs the statement `$q` in the transaction `$tx` and, when it changed a row, writes `$events`
/// with it: whether it changed one (an act that happens once is audited only when it does).
macro_rules! audited_if_changed {
    ($store:expr, $tx:expr, $q:expr, $events:expr) => {{
        let changed = $q.execute(&mut *$tx).await?.rows_affected() > 0;
        if changed {
            $crate::audit::push_audit!($store, $tx, $events);
        }
        changed
    }};
}
pub(crate) use audited_if_changed;

fn event_from<R: Row>(row: &R) -> std::result::Result<AuditEvent, sqlx::Error>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    Ok(AuditEvent {
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        object: row.try_get("object")?,
        point: row.try_get("point")?,
        detail: row.try_get("detail")?,
    })
}

fn row_from<R: Row>(row: &R) -> std::result::Result<AuditRow, sqlx::Error>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        event: event_from(row)?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
        payload_hash: row.try_get("payload_hash")?,
        payload_salt: row.try_get("payload_salt")?,
        erased_at: row.try_get("erased_at")?,
    })
}

/// The columns [`row_from`] reads.
const ROW_COLUMNS: &str = "seq, at, actor, action, object, point, detail, prev_hash, hash, payload_hash, payload_salt, erased_at";

/// The check of a chain, row by row, against its signed checkpoints: the database's and the
/// log's, or an export's. The same for `audit verify` on a database and on an export.
struct ChainCheck<'t> {
    /// (size, note, whose), by size.
    expected: Vec<(u64, String, &'static str)>,
    next: usize,
    trust: &'t AuditTrust,
    expected_seq: i64,
    prev: String,
    frontier: Frontier,
    matched: u64,
    /// Digests of the events the sealed refusals say were kept apart.
    listed: Vec<String>,
    /// The witnesses that do not count, each with why (a quorum of fewer held).
    uncounted: Vec<String>,
    /// The rows whose payload is erased, and the ranges of rows the sealed erasures list:
    /// each erased row must be listed by one ([`PAYLOADS_ERASED`]).
    erased: Vec<i64>,
    /// Each sealed erasure's row and the ranges it lists.
    erasures: Vec<(i64, i64, i64)>,
    /// How many rows the signed checkpoints matched so far cover.
    covered: u64,
}

impl<'t> ChainCheck<'t> {
    /// The checkpoints (those of `stored`, and every one of the trusted log) read and, with
    /// a public key, their signatures checked.
    fn new(stored: Vec<String>, trust: &'t AuditTrust) -> std::result::Result<Self, Verification> {
        let mut expected: Vec<(u64, String, &'static str)> = Vec::new();
        if let Some(path) = &trust.log {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let notes = notes_in(&text);
            if notes.is_empty() {
                return Err(Verification::Broken {
                    seq: 0,
                    reason: format!(
                        "the checkpoint log {} holds no checkpoint (deleted, or the audit was never signed)",
                        path.display()
                    ),
                });
            }
            expected.extend(notes.into_iter().map(|n| (0, n, "checkpoint log")));
        }
        expected.extend(stored.into_iter().map(|n| (0, n, "database")));
        // A witness's cosignature is what a writer holding the audit key cannot make: each
        // witness must have cosigned a checkpoint, and every checkpoint is held against the
        // chain below.
        if !trust.witnesses.is_empty() && trust.verifier.is_none() {
            return Err(Verification::Broken {
                seq: 0,
                reason: "a witness's cosignature counts only on a checkpoint signed by the audit key: give its public key (--public-key or --audit-key-file)".into(),
            });
        }
        // A witness that disagrees with the log — it says it has cosigned more than the log
        // holds, or less — breaks the verification whatever the quorum: that is what a
        // rewrite looks like. Only one that said nothing (not reached, or never given a
        // checkpoint to cosign: none of its cosignatures in the log and no word of it) does
        // not count, and a quorum may do without it.
        let mut uncounted = Vec::new();
        for (i, w) in trust.witnesses.iter().enumerate() {
            let name = w.key.name();
            if trust.witnesses[..i].iter().any(|o| o.key.name() == name) {
                return Err(Verification::Broken {
                    seq: 0,
                    reason: format!("the witness {name} is given twice: each counts once"),
                });
            }
            let broken = |reason: String| Err(Verification::Broken { seq: 0, reason });
            match (w.key.latest(expected.iter().map(|e| &e.1)), w.holds) {
                _ if w.unreachable.is_some() => uncounted.push(format!(
                    "the witness {name} could not be asked: {}",
                    w.unreachable.as_deref().unwrap_or_default()
                )),
                (None, None | Some(0)) => uncounted.push(format!(
                    "no checkpoint is cosigned by the witness {name} (run `studyflow audit cosign`, or its cosigned checkpoints were deleted)"
                )),
                (None, Some(n)) => {
                    return broken(format!(
                        "the witness {name} has cosigned rows 1–{n}, the checkpoint log holds none of its cosignatures (cosigned checkpoints removed)"
                    ));
                }
                (Some((c, _)), Some(n)) if c.size < n => {
                    return broken(format!(
                        "the witness {name} has cosigned rows 1–{n}, the checkpoint log holds its cosignature only up to row {} (cosigned checkpoints removed, or an `audit cosign` cut short: run it again)",
                        c.size
                    ));
                }
                (Some((c, _)), Some(n)) if c.size > n => {
                    return broken(format!(
                        "the checkpoint log holds the witness {name}'s cosignature of rows 1–{}, but it says it has cosigned rows 1–{n} only (its state was lost, or it is another witness under that key)",
                        c.size
                    ));
                }
                _ => {}
            }
        }
        // k of n (at least one): the chain is held to the witnesses that count, the rest
        // reported.
        let n = trust.witnesses.len();
        let needed = if n == 0 {
            0
        } else {
            trust.quorum.unwrap_or(n).clamp(1, n)
        };
        if n - uncounted.len() < needed {
            let reason = if trust.quorum.is_some() {
                format!(
                    "{} of {n} witnesses hold, {needed} are needed: {}",
                    n - uncounted.len(),
                    uncounted.join("; ")
                )
            } else {
                uncounted.join("; ")
            };
            return Err(Verification::Broken { seq: 0, reason });
        }
        for (size, note, whose) in &mut expected {
            let Some(c) = unsigned_checkpoint(note) else {
                return Err(Verification::Broken {
                    seq: 0,
                    reason: format!("a checkpoint in the {whose} is not a checkpoint"),
                });
            };
            *size = c.size;
            if let Some(v) = &trust.verifier
                && v.checkpoint(note).ok() != Some(c)
            {
                return Err(Verification::Broken {
                    seq: *size as i64,
                    reason: format!(
                        "the checkpoint of row {size} in the {whose} is not signed by the audit key {} (forged)",
                        v.name()
                    ),
                });
            }
        }
        expected.sort_by_key(|e| e.0);
        Ok(ChainCheck {
            expected,
            next: 0,
            trust,
            expected_seq: 1,
            prev: GENESIS.to_owned(),
            frontier: Frontier::default(),
            matched: 0,
            listed: Vec::new(),
            uncounted,
            erased: Vec::new(),
            erasures: Vec::new(),
            covered: 0,
        })
    }

    /// The next row: broken, or on.
    fn row(&mut self, row: &AuditRow) -> Option<Verification> {
        let broken = |seq: i64, reason: String| Some(Verification::Broken { seq, reason });
        if row.seq != self.expected_seq {
            return broken(
                self.expected_seq,
                format!(
                    "row {} is missing (the next row is {})",
                    self.expected_seq, row.seq
                ),
            );
        }
        if row.prev_hash != self.prev {
            return broken(
                row.seq,
                "it does not follow the row before it (deleted, inserted or reordered)".into(),
            );
        }
        let e = &row.event;
        if let Err(why) = row.payload_holds() {
            return broken(row.seq, why.into());
        }
        if row.erased_at.is_some() {
            self.erased.push(row.seq);
        }
        if row.hash_after(&self.prev) != row.hash {
            return broken(
                row.seq,
                "its content does not match its hash (edited)".into(),
            );
        }
        self.prev = row.hash.clone();
        self.frontier.push(row.leaf());
        if e.action == PAYLOADS_ERASED
            && let Ok(detail) = serde_json::from_str::<serde_json::Value>(&e.detail)
        {
            self.erasures.extend(
                detail["rows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| Some((row.seq, r[0].as_i64()?, r[1].as_i64()?))),
            );
        }
        if row.event.action == "audit.events_refused"
            && let Ok(detail) = serde_json::from_str::<serde_json::Value>(&row.event.detail)
        {
            self.listed.extend(
                detail["digests"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str().map(str::to_owned)),
            );
        }
        while let Some((size, note, whose)) = self
            .expected
            .get(self.next)
            .filter(|e| e.0 <= self.frontier.size())
        {
            let root = unsigned_checkpoint(note).map(|c| c.root);
            if *size != self.frontier.size() || root != Some(self.frontier.root()) {
                return broken(
                    *size as i64,
                    format!(
                        "the signed checkpoint of rows 1–{size} in the {whose} does not match the chain (history rewritten)"
                    ),
                );
            }
            self.matched += 1;
            self.covered = *size;
            self.next += 1;
        }
        self.expected_seq += 1;
        None
    }

    /// After the last row, with the recorded head (`rows:hash`): what the chain came to.
    fn end(self, head: Option<&str>) -> std::result::Result<Ended, Verification> {
        let rows = self.expected_seq - 1;
        let broken = |seq: i64, reason: String| Verification::Broken { seq, reason };
        // Held to the audit key, every row is under a signed checkpoint: a signing seal writes
        // one with the rows it seals, so rows after the last were put into the database.
        let signed = self.trust.verifier.is_some();
        if signed && !self.expected.is_empty() && (rows as u64) > self.covered {
            return Err(broken(
                self.covered as i64 + 1,
                format!(
                    "rows {}–{rows} are under no signed checkpoint: written into the database, not sealed by a holder of the audit key",
                    self.covered + 1
                ),
            ));
        }
        // An erased row is listed by an erasure sealed after it (and, held to the audit key,
        // under a signed checkpoint).
        let covered = self.covered as i64;
        if let Some(seq) = self.erased.iter().find(|seq| {
            !self.erasures.iter().any(|(at, from, to)| {
                (from..=to).contains(seq) && *seq < at && (!signed || *at <= covered)
            })
        }) {
            return Err(broken(
                *seq,
                "its payload was erased, and no `audit erase` recorded in the chain lists it (erased outside studyflow)".into(),
            ));
        }
        if let Some((size, _, whose)) = self.expected.get(self.next) {
            return Err(broken(
                rows + 1,
                format!(
                    "a signed checkpoint in the {whose} covers {size} rows, the chain has {rows} (rows deleted)"
                ),
            ));
        }
        if self.trust.verifier.is_some() && rows > 0 && self.expected.is_empty() {
            return Err(broken(
                rows,
                "no signed checkpoint covers the chain (the audit was not signed, or its checkpoints were deleted)".into(),
            ));
        }
        match head {
            None if rows > 0 => {
                return Err(broken(
                    rows,
                    "the recorded head of the chain is missing (edited)".into(),
                ));
            }
            Some(head) if head != format!("{rows}:{}", self.prev) => {
                let recorded: i64 = head
                    .split(':')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                return Err(broken(
                    rows + 1,
                    format!(
                        "the chain ends at row {rows} but the recorded head is row {recorded} (rows cut off the end, or the head edited)"
                    ),
                ));
            }
            _ => {}
        }
        Ok(Ended {
            rows,
            erased: self.erased.len() as i64,
            matched: self.matched,
            listed: self.listed,
            uncounted: self.uncounted,
        })
    }
}

/// A chain checked to its end ([`ChainCheck::end`]).
struct Ended {
    rows: i64,
    /// The rows whose payload was erased (each listed by a sealed erasure).
    erased: i64,
    /// The checkpoints matched.
    matched: u64,
    /// The digests the sealed refusals listed.
    listed: Vec<String>,
    /// The witnesses that do not count, each with why.
    uncounted: Vec<String>,
}

/// Checks an export (`studyflow audit export`: a row per line, then its checkpoints and head)
/// elsewhere, with only what `trust` holds: the public key and, when given, the checkpoint log.
pub fn verify_export(text: &str, trust: &AuditTrust) -> Verification {
    let bad = |line: usize, why: &str| Verification::Broken {
        seq: 0,
        reason: format!("line {line} of the export: {why}"),
    };
    let (mut rows, mut notes, mut head) = (Vec::new(), Vec::new(), None);
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            return bad(i + 1, "not JSON");
        };
        if let Some(note) = v.get("checkpoint").and_then(|n| n.as_str()) {
            notes.push(note.to_owned());
        } else if let Some(h) = v.get("head").and_then(|h| h.as_str()) {
            head = Some(h.to_owned());
        } else {
            let field = |k: &str| {
                v.get(k)
                    .and_then(|x| x.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let (Some(seq), Some(at)) = (v["seq"].as_i64(), v["at"].as_i64()) else {
                return bad(i + 1, "a row without its seq or time");
            };
            rows.push(AuditRow {
                seq,
                event: AuditEvent::new(
                    at,
                    field("actor"),
                    field("action"),
                    field("object"),
                    field("point"),
                    field("detail"),
                ),
                prev_hash: field("prev_hash"),
                hash: field("hash"),
                payload_hash: v["payload_hash"].as_str().map(str::to_owned),
                payload_salt: v["payload_salt"].as_str().map(str::to_owned),
                erased_at: v["erased_at"].as_i64(),
            });
        }
    }
    let mut check = match ChainCheck::new(notes, trust) {
        Ok(c) => c,
        Err(broken) => return broken,
    };
    for row in &rows {
        if let Some(broken) = check.row(row) {
            return broken;
        }
    }
    match check.end(head.as_deref()) {
        Ok(Ended {
            rows,
            erased,
            matched,
            uncounted,
            ..
        }) => Verification::Intact {
            rows,
            pending: 0,
            erased,
            checkpoints: matched,
            refused: 0,
            uncounted,
        },
        Err(broken) => broken,
    }
}

impl Store {
    /// The latest signed checkpoint, if any.
    pub async fn latest_audit_checkpoint(&self) -> Result<Option<String>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1")
                .fetch_optional(p)
                .await?
        }))
    }

    /// The audit's signed checkpoints and its recorded head (`rows:hash`): what `audit verify`
    /// holds the chain to, and what an export carries.
    pub async fn audit_checkpoints(&self) -> Result<(Vec<String>, Option<String>)> {
        let notes: Vec<String> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT note FROM audit_checkpoints ORDER BY tree_size")
                .fetch_all(p)
                .await?
        });
        let head: Option<String> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'audit_head'")
                .fetch_optional(p)
                .await?
        });
        Ok((notes, head))
    }
}

impl Store {
    /// The MAC an event is written with, when this store holds the audit key.
    pub(crate) fn audit_mac(&self, e: &AuditEvent) -> Option<String> {
        self.audit_signing
            .as_deref()
            .map(|s| event_mac(&s.signer, e))
    }

    /// Appends events on their own (for what happens outside a state change, e.g. a stale
    /// write rejected) and seals them. `Ok` once they are recorded (committed to the outbox),
    /// unless the seal finds the audit tampered with ([`crate::StoreError::AuditTampered`], which
    /// stops every act). A seal that fails otherwise (a busy database, the checkpoint log not
    /// writable) leaves them recorded and pending, sealed by the next seal (`audit verify`
    /// counts them): a caller that undid its act on an error would undo an act the audit
    /// keeps. Such a failure is logged; the next seal meets it again if it lasts.
    pub async fn append_audit(&self, events: &[AuditEvent]) -> Result<()> {
        in_tx!(self, |tx, _b| {
            push_audit!(self, tx, events);
        });
        self.seal_committed().await
    }

    /// Seals the events an act has just committed with its change: `Ok` unless the seal finds
    /// the audit tampered with ([`crate::StoreError::AuditTampered`]). The act stands once
    /// committed: a seal that fails otherwise (a busy database, the checkpoint log not
    /// writable) is logged and left to the next seal, and an operator's `status` says it
    /// ([`Store::audit_log_behind`]) — never an error to a person whose act was done, who
    /// would try it again, nor one a caller would undo the act on.
    pub async fn seal_committed(&self) -> Result<()> {
        let result = self.seal_audit().await;
        let mut trouble = self.seal_trouble.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => {
                *trouble = None;
                Ok(())
            }
            Err(e @ crate::StoreError::AuditTampered(_)) => Err(e),
            Err(e) => {
                tracing::error!(error = %e, "recorded audit events could not be sealed yet");
                *trouble = Some(e.to_string());
                Ok(())
            }
        }
    }

    /// Why this process's last seal of committed acts failed, if it did and none has succeeded
    /// since: the acts stand, recorded and waiting to be sealed. What a server tells the people
    /// acting through it (the pages' warning, the API's `Studyflow-Audit: unsealed`), and an
    /// operator's `status` explains ([`Store::audit_log_behind`] and the seal it tries).
    pub fn seal_trouble(&self) -> Option<String> {
        self.seal_trouble
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many recorded events wait for a process with the audit key: the audit is signed
    /// (a checkpoint exists) and this store has no key, so its seals leave them (0 when this
    /// store signs, or the audit is not signed).
    pub async fn audit_waiting_for_key(&self) -> Result<i64> {
        if self.audit_signing.is_some() || !self.audit_signed().await? {
            return Ok(0);
        }
        self.audit_pending().await
    }

    /// Whether the audit is signed: a signed checkpoint exists. From then on only a holder of
    /// the key seals.
    pub async fn audit_signed(&self) -> Result<bool> {
        let signed: Option<i64> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT tree_size FROM audit_checkpoints LIMIT 1")
                .fetch_optional(p)
                .await?
        });
        Ok(signed.is_some())
    }

    /// Moves pending events into the chain, in outbox order, up to 5,000 at a time until none
    /// is left. Returns how many were sealed. A store that signs appends each batch's signed
    /// checkpoint to its log outside the database as the batch commits.
    pub async fn seal_audit(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let (n, note) = self.seal_batch(5_000).await?;
            total += n;
            // Outside the database too: deleting the chain with its checkpoints is then seen.
            if let (Some(note), Some(path)) = (
                note,
                self.audit_signing.as_ref().and_then(|s| s.log.as_ref()),
            ) {
                append_note(path, &note).map_err(|source| crate::StoreError::CheckpointLog {
                    path: path.display().to_string(),
                    source,
                })?;
            }
            if n < 5_000 {
                return Ok(total);
            }
        }
    }

    /// How far the database's latest signed checkpoint and the checkpoint log's reach (rows),
    /// when the log lags behind: an append that failed after its seal leaves the checkpoint
    /// in the database only, until a later seal appends a newer one (a log holding none: 0).
    /// `None` when they agree, or when this store signs with no log. A log ahead of the
    /// database, or another tree of the same size, is [`crate::StoreError::AuditTampered`]:
    /// rows and checkpoints deleted, or another database.
    pub async fn audit_log_behind(&self) -> Result<Option<(u64, u64)>> {
        if self
            .audit_signing
            .as_deref()
            .and_then(|s| s.log.as_deref())
            .is_none()
        {
            return Ok(None);
        }
        let logged = self.logged_checkpoint()?;
        let newest: Option<String> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1")
                .fetch_optional(p)
                .await?
        });
        let newest = newest.as_deref().and_then(crate::tlog::unsigned_checkpoint);
        match (newest, logged) {
            (None, None) => Ok(None),
            (Some(db), None) => Ok(Some((db.size, 0))),
            (None, Some(log)) => Err(tampered(format!(
                "the checkpoint log covers rows 1–{}, the database holds no checkpoint (deleted, or another database)",
                log.size
            ))),
            (Some(db), Some(log)) if log.size > db.size => Err(tampered(format!(
                "the checkpoint log covers rows 1–{}, the database's checkpoints only rows 1–{} (rows or checkpoints deleted, or an older database)",
                log.size, db.size
            ))),
            (Some(db), Some(log)) if log.size == db.size && log.root != db.root => {
                Err(tampered(format!(
                    "the checkpoint log and the database hold different trees of rows 1–{} (another database, or a rewritten one)",
                    db.size
                )))
            }
            (Some(db), Some(log)) => Ok((db.size > log.size).then_some((db.size, log.size))),
        }
    }

    /// How many recorded events wait to be sealed.
    pub async fn audit_pending(&self) -> Result<i64> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_outbox")
                .fetch_one(p)
                .await?
        }))
    }

    /// The latest checkpoint of the signing store's log, its signature checked.
    fn logged_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let Some((signing, path)) = self
            .audit_signing
            .as_deref()
            .and_then(|s| Some((s, s.log.as_deref()?)))
        else {
            return Ok(None);
        };
        let note =
            last_note(path).map_err(|source| crate::StoreError::CheckpointLogUnreadable {
                path: path.display().to_string(),
                source,
            })?;
        note.map(|n| {
            signing.signer.verifier().checkpoint(&n).map_err(|e| {
                tampered(format!(
                    "the last checkpoint of the log {} does not verify ({e})",
                    path.display()
                ))
            })
        })
        .transpose()
    }

    async fn seal_batch(&self, limit: i64) -> Result<(u64, Option<String>)> {
        // A read first: with nothing pending, no write lock is taken.
        let pending: Option<i64> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT id FROM audit_outbox LIMIT 1")
                .fetch_optional(p)
                .await?
        });
        if pending.is_none() {
            return Ok((0, None));
        }
        let signer = self.audit_signing.as_deref().map(|s| &s.signer);
        // Once the log is signed, only a holder of the key seals: events wait for one (a
        // keyless seal would make them part of the chain unauthenticated).
        if signer.is_none() && self.audit_signed().await? {
            return Ok((0, None));
        }
        let logged = self.logged_checkpoint()?;
        Ok(in_tx!(self, |tx, backend| {
            if backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(SEAL_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let pending = sqlx::query(
                "SELECT id, at, actor, action, object, point, detail, mac FROM audit_outbox ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            if pending.is_empty() {
                (0, None)
            } else {
                let head = sqlx::query("SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await?;
                let (mut seq, mut prev, head_at): (i64, String, i64) = match head {
                    Some(r) => (r.try_get("seq")?, r.try_get("hash")?, r.try_get("at")?),
                    None => (0, GENESIS.to_owned(), 0),
                };
                let first = seq;
                // A signing sealer seals authenticated events only; the rest are moved aside
                // and the refusal is sealed in their place.
                let mut ids = Vec::with_capacity(pending.len());
                let mut accepted: Vec<(AuditEvent, Option<String>)> = Vec::new();
                let mut refused: Vec<(i64, AuditEvent, &str)> = Vec::new();
                // MACs already in the chain: a copy of a sealed event is a replay — of an
                // erased one too, known by its MAC's hash.
                let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
                if signer.is_some() {
                    let written: Vec<String> = pending
                        .iter()
                        .filter_map(|r| r.try_get::<Option<String>, _>("mac").ok().flatten())
                        .collect();
                    let unerased: std::collections::HashMap<String, String> =
                        written.iter().map(|m| (erased_mac(m), m.clone())).collect();
                    let macs: Vec<String> = written
                        .iter()
                        .cloned()
                        .chain(unerased.keys().cloned())
                        .collect();
                    for chunk in macs.chunks(rows_at_once(self.backend(), 1, 500)) {
                        let list = (1..=chunk.len())
                            .map(|i| format!("${i}"))
                            .collect::<Vec<_>>()
                            .join(",");
                        let sql = format!("SELECT mac FROM audit WHERE mac IN ({list})");
                        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
                        for m in chunk {
                            q = q.bind(m);
                        }
                        let found: Vec<String> = q.fetch_all(&mut *tx).await?;
                        seen.extend(
                            found
                                .into_iter()
                                .map(|m| unerased.get(&m).cloned().unwrap_or(m)),
                        );
                    }
                }
                for row in &pending {
                    let id: i64 = row.try_get("id")?;
                    ids.push(id);
                    let e = event_from(row)?;
                    let mac: Option<String> = row.try_get("mac")?;
                    let why = match (signer, &mac) {
                        (None, _) => None,
                        (Some(_), None) => Some("no MAC"),
                        (Some(s), Some(m)) if !mac_valid(s, &e, Some(m)) => {
                            Some("a MAC that does not verify")
                        }
                        (Some(_), Some(m)) if !seen.insert(m.clone()) => {
                            Some("a copy of an event written once (a replay)")
                        }
                        _ => None,
                    };
                    match why {
                        Some(why) => refused.push((id, e, why)),
                        None => accepted.push((e, mac)),
                    }
                }
                if let (Some(s), false) = (signer, refused.is_empty()) {
                    // Dated by the chain, not by what was refused (its time is anyone's).
                    let at = head_at;
                    for (id, e, why) in &refused {
                        sqlx::query(
                            "INSERT INTO audit_refused (refused_at, outbox_id, at, actor, action, object, point, detail, reason)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        )
                        .bind(at)
                        .bind(*id)
                        .bind(e.at)
                        .bind(&e.actor)
                        .bind(&e.action)
                        .bind(&e.object)
                        .bind(&e.point)
                        .bind(&e.detail)
                        .bind(*why)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let outbox: Vec<i64> = refused.iter().map(|r| r.0).collect();
                    // What was refused, by digest: `audit_refused` can be held to it.
                    let digests: Vec<String> = refused
                        .iter()
                        .map(|(id, e, _)| hex::encode(leaf_hash(*id, e, None)))
                        .collect();
                    let e = AuditEvent::new(
                        at,
                        "studyflow",
                        "audit.events_refused",
                        "audit_outbox",
                        "",
                        serde_json::json!({"count": refused.len(), "outbox_ids": outbox, "digests": digests, "kept_in": "audit_refused"}).to_string(),
                    );
                    let mac = event_mac(s, &e);
                    accepted.push((e, Some(mac)));
                }
                let mut rows = Vec::with_capacity(accepted.len());
                for (e, mac) in accepted {
                    seq += 1;
                    let salt = new_salt();
                    let digest = payload_digest(&e, &salt);
                    let hash = row_hash(&prev, seq, &e, Some(&digest));
                    rows.push((
                        seq,
                        e,
                        std::mem::replace(&mut prev, hash.clone()),
                        hash,
                        mac,
                        (digest, salt),
                    ));
                }
                for chunk in rows.chunks(rows_at_once(self.backend(), 12, 500)) {
                    let sql = multi_insert(
                        "INSERT INTO audit (seq, at, actor, action, object, point, detail, prev_hash, hash, mac, payload_hash, payload_salt)",
                        12,
                        chunk.len(),
                        "",
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (seq, e, prev_hash, hash, mac, (digest, salt)) in chunk {
                        q = q
                            .bind(*seq)
                            .bind(e.at)
                            .bind(&e.actor)
                            .bind(&e.action)
                            .bind(&e.object)
                            .bind(&e.point)
                            .bind(&e.detail)
                            .bind(prev_hash)
                            .bind(hash)
                            .bind(mac)
                            .bind(digest)
                            .bind(salt);
                    }
                    q.execute(&mut *tx).await?;
                }
                // Outbox ids may commit out of order on PostgreSQL: delete exactly the rows
                // sealed, never a range.
                for chunk in ids.chunks(500) {
                    let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                    let sql = format!("DELETE FROM audit_outbox WHERE id IN ({})", list.join(","));
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut *tx)
                        .await?;
                }
                crate::put_meta!(tx, "audit_head", format!("{seq}:{prev}"));
                // The signed checkpoints the chain's first rows must still have as their root:
                // the log's latest (outside the database) and the database's newest that the
                // key verifies (another host's, whose log this one does not see).
                let mut signed: Vec<Checkpoint> = logged.iter().cloned().collect();
                if let Some(s) = signer {
                    let newest: Option<String> = sqlx::query_scalar(
                        "SELECT note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
                    )
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(note) = newest {
                        signed.push(s.verifier().checkpoint(&note).map_err(|e| {
                            tampered(format!(
                                "the newest checkpoint in the database does not verify ({e})"
                            ))
                        })?);
                    }
                }
                if let Some(c) = signed.iter().find(|c| c.size > first as u64) {
                    return Err(tampered(format!(
                        "a signed checkpoint covers {} rows, the chain had {first} (rows deleted)",
                        c.size
                    )));
                }
                let newest_signed = signed.iter().map(|c| c.size).max().unwrap_or(0);
                // The Merkle tree's right edge, as stored, or built from the rows (a log sealed
                // before the tree; a signed checkpoint of another size to hold the rows to).
                let kept: Option<String> =
                    sqlx::query_scalar("SELECT value FROM meta WHERE key = 'audit_frontier'")
                        .fetch_optional(&mut *tx)
                        .await?;
                let kept = kept
                    .as_deref()
                    .and_then(Frontier::decode)
                    .filter(|f| f.size() == first as u64);
                let mut roots: Vec<(u64, [u8; 32])> = Vec::new();
                let mut frontier = match kept {
                    Some(f) if signed.iter().all(|c| c.size == f.size()) => f,
                    _ => {
                        let mut f = Frontier::default();
                        let earlier = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT {ROW_COLUMNS}, mac FROM audit WHERE seq <= $1 ORDER BY seq"
                        )))
                        .bind(first)
                        .fetch_all(&mut *tx)
                        .await?;
                        let mut macs: std::collections::HashSet<String> =
                            std::collections::HashSet::new();
                        let mut link = GENESIS.to_owned();
                        for r in &earlier {
                            let row = row_from(r)?;
                            let n = row.seq;
                            let mac: Option<String> = r.try_get("mac")?;
                            // Known by the hash of its MAC, as an erased row keeps it: a copy
                            // of an event since erased is a copy too.
                            let unique = mac.as_ref().is_none_or(|m| {
                                macs.insert(if m.starts_with("erased:") {
                                    m.clone()
                                } else {
                                    erased_mac(m)
                                })
                            });
                            // After a signed checkpoint, every row was sealed by a holder of
                            // the key, in order, once: one that is not was put into the
                            // database.
                            if let Some(s) = signer
                                && newest_signed > 0
                                && n as u64 > newest_signed
                            {
                                // Only a row a signed checkpoint covers is erased: one after the
                                // last is not what was sealed.
                                let linked = n as u64 == f.size() + 1
                                    && row.erased_at.is_none()
                                    && row.payload_holds().is_ok()
                                    && row.prev_hash == link
                                    && row.hash == row.hash_after(&link);
                                if !linked || !unique || !mac_valid(s, &row.event, mac.as_deref()) {
                                    return Err(tampered(format!(
                                        "row {n}, after the last signed checkpoint, is not an event sealed once by a holder of the audit key (no valid MAC, a copy, or out of the chain)"
                                    )));
                                }
                            }
                            f.push(row.leaf());
                            link = row.hash;
                            // Only where a signed checkpoint is to be held to it.
                            if signed.iter().any(|c| c.size == f.size()) {
                                roots.push((f.size(), f.root()));
                            }
                        }
                        f
                    }
                };
                for c in &signed {
                    let root = if c.size == frontier.size() {
                        Some(frontier.root())
                    } else {
                        roots.iter().find(|r| r.0 == c.size).map(|r| r.1)
                    };
                    if root != Some(c.root) {
                        return Err(tampered(format!(
                            "its first {} rows are not the history signed then (edited or deleted since)",
                            c.size
                        )));
                    }
                }
                for (seq, e, _, _, _, (digest, _)) in &rows {
                    frontier.push(leaf_hash(*seq, e, Some(digest)));
                }
                crate::put_meta!(tx, "audit_frontier", frontier.encode());
                // A checkpoint planted at this size beforehand makes the insert fail: the seal
                // is refused rather than the planted one kept.
                let note = match signer {
                    Some(s) => {
                        let note = s.checkpoint(frontier.size(), &frontier.root());
                        sqlx::query(
                            "INSERT INTO audit_checkpoints (tree_size, note) VALUES ($1, $2)",
                        )
                        .bind(seq)
                        .bind(&note)
                        .execute(&mut *tx)
                        .await?;
                        Some(note)
                    }
                    None => None,
                };
                (pending.len() as u64, note)
            }
        }))
    }

    /// Sealed rows from `after` (exclusive), at most `limit`, in order.
    /// The leaf hashes of the sealed chain in order: what a consistency proof for a witness is
    /// computed over (32 bytes a row).
    pub async fn audit_leaves(&self) -> Result<Vec<[u8; 32]>> {
        let mut out: Vec<[u8; 32]> = Vec::new();
        loop {
            let rows = self.audit_rows(out.len() as i64, 10_000).await?;
            if rows.is_empty() {
                return Ok(out);
            }
            out.extend(rows.iter().map(AuditRow::leaf));
        }
    }

    /// The proof that the sealed row `seq` is in the log the latest signed checkpoint names
    /// ([`InclusionProof`]). Reads every leaf the checkpoint covers.
    pub async fn audit_inclusion(&self, seq: i64) -> Result<InclusionProof> {
        let Some(note) = self.latest_audit_checkpoint().await? else {
            return Err(crate::StoreError::Conflict(
                "the audit has no signed checkpoint to prove a row against: it is sealed without the audit key (--audit-key-file)".into(),
            ));
        };
        let size = unsigned_checkpoint(&note)
            .ok_or_else(|| tampered("the latest checkpoint in the database is not one".into()))?
            .size;
        let covered = usize::try_from(size).unwrap_or(usize::MAX);
        let index = usize::try_from(seq - 1)
            .ok()
            .filter(|i| *i < covered)
            .ok_or_else(|| {
                crate::StoreError::NotFound(format!(
                    "row {seq} is not in the latest signed checkpoint (rows 1–{size})"
                ))
            })?;
        let mut leaves = self.audit_leaves().await?;
        if leaves.len() < covered {
            return Err(tampered(format!(
                "the latest signed checkpoint covers {size} rows, the chain has {} (rows deleted)",
                leaves.len()
            )));
        }
        leaves.truncate(covered);
        let row = self
            .audit_rows(seq - 1, 1)
            .await?
            .pop()
            .ok_or_else(|| crate::StoreError::NotFound(format!("no row {seq}")))?;
        Ok(InclusionProof {
            row,
            proof: inclusion_proof(&leaves, index)
                .iter()
                .map(hex::encode)
                .collect(),
            checkpoint: note,
        })
    }

    pub async fn audit_rows(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>> {
        Ok(on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ROW_COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"
            )))
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(row_from)
                .collect::<std::result::Result<Vec<_>, _>>()?
        }))
    }

    /// The sealed rows about `study` — the study itself and its runs (`study/step[/subject]`) —
    /// that `filter` keeps, from `after` (exclusive), at most `limit`, in order.
    pub async fn audit_of(
        &self,
        study: &str,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        // A person of the identity provider is audited as `login (issuer subject)`.
        let actor_prefix = format!("{} (", filter.actor.as_deref().unwrap_or(""));
        Ok(on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ROW_COLUMNS}
                 FROM audit
                 WHERE study = $2 AND seq > $1
                   AND ($3 IS NULL OR actor = $3 OR substr(actor, 1, $4) = $5)
                   AND ($6 IS NULL OR action = $6)
                   AND at >= $7 AND at < $8
                 ORDER BY seq LIMIT $9"
            )))
            .bind(after)
            .bind(study)
            .bind(filter.actor.as_deref())
            .bind(actor_prefix.chars().count() as i32)
            .bind(&actor_prefix)
            .bind(filter.action.as_deref())
            .bind(filter.from.unwrap_or(i64::MIN))
            .bind(filter.until.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(row_from)
                .collect::<std::result::Result<Vec<_>, _>>()?
        }))
    }

    /// Erases the payload — actor, detail, and the object but for its first part ([`scope`]) —
    /// of every sealed event from before `before` (µs) that names `person`: acted by them
    /// (locally or at the identity provider), about their account, or with their login, or one
    /// of `names`, as a value in its detail. The rows keep their time, action, MK403 point and
    /// the digest their hashes take (schema 15), so the chain, the Merkle tree and every
    /// signed checkpoint still verify; a sealed event ([`PAYLOADS_ERASED`], MK403 p.25.4: the
    /// Service's own procedure sets how long its audit names a person) lists the rows erased
    /// and names nobody, and `audit verify` holds every erased row to such a list. Rows sealed
    /// before schema 15 keep their payload ([`Erasure::kept`]); the erasures' own records are
    /// never erased (they name the operator who erased, and nothing of the person).
    ///
    /// The salt of each erased digest goes, and its MAC is kept only as its hash (a replay of
    /// the event as written is still refused), so neither the digest nor the audit key can
    /// confirm a guess of what was erased. With `dry_run`, only says which rows it would erase
    /// ([`Erasure::rows`]) and changes nothing.
    ///
    /// On a signed audit only a store with the audit key erases, and only rows a signed
    /// checkpoint covers (everything pending is sealed first).
    pub async fn erase_audit_payloads(
        &self,
        person: &str,
        names: &[String],
        before: i64,
        by: &str,
        at: i64,
        dry_run: bool,
    ) -> Result<Erasure> {
        if person.trim().is_empty() || names.iter().any(|n| n.trim().is_empty()) {
            return Err(crate::StoreError::Conflict(
                "name the person whose audit payloads are to be erased (a login, and names that are not empty)".into(),
            ));
        }
        if self.audit_signing.is_none() && self.audit_signed().await? {
            return Err(crate::StoreError::Conflict(
                "the audit is signed: erasing records a sealed event, which needs the audit key (--audit-key-file)".into(),
            ));
        }
        self.seal_audit().await?;
        // A value of the detail's JSON, as serde_json writes it, in a LIKE pattern: the
        // database's first sieve (SQLite's LIKE ignores ASCII case; the rows are then held to
        // the person exactly, below).
        let like = |value: &str| {
            let quoted = serde_json::Value::from(value).to_string();
            let escaped = quoted
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        };
        let prefix = format!("{person} (");
        let account = format!("account/{person}");
        let mut patterns = vec![like(person)];
        patterns.extend(names.iter().map(|n| like(n)));
        let details = (0..patterns.len())
            .map(|i| format!("detail LIKE ${} ESCAPE '\\'", i + 7))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT seq, payload_hash, actor, object, detail, mac FROM audit
             WHERE erased_at IS NULL AND at < $1 AND seq <= $2
               AND action NOT IN ('{PAYLOADS_ERASED}', 'audit.events_refused')
               AND (actor = $3 OR substr(actor, 1, $4) = $5 OR object = $6 OR {details})
             ORDER BY seq"
        );
        // Exactly: acted by the person (here or at the identity provider), about their
        // account, or with their login or a given name as a whole value of the detail — a
        // value, not a key, and with its case.
        let names_them = |actor: &str, object: &str, detail: &str| {
            fn values(v: &serde_json::Value, out: &mut Vec<String>) {
                match v {
                    serde_json::Value::String(s) => out.push(s.clone()),
                    serde_json::Value::Array(a) => a.iter().for_each(|x| values(x, out)),
                    serde_json::Value::Object(o) => o.values().for_each(|x| values(x, out)),
                    _ => {}
                }
            }
            let mut found = Vec::new();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(detail) {
                values(&v, &mut found);
            }
            actor == person
                || actor.starts_with(&prefix)
                || object == account
                || object.starts_with(&format!("{account}/"))
                || found
                    .iter()
                    .any(|v| v == person || names.iter().any(|n| n == v))
        };
        let signed = self.audit_signing.is_some();
        type Found = (i64, Option<String>, String, String, String, Option<String>);
        let erasure = in_tx!(self, |tx, _b| {
            // Only what a signed checkpoint covers (all of it, once sealed by a signer).
            let covered: Option<i64> = if signed {
                sqlx::query_scalar("SELECT MAX(tree_size) FROM audit_checkpoints")
                    .fetch_one(&mut *tx)
                    .await?
            } else {
                Some(i64::MAX)
            };
            let mut q = sqlx::query_as::<_, Found>(sqlx::AssertSqlSafe(sql))
                .bind(before)
                .bind(covered.unwrap_or(0))
                .bind(person)
                .bind(prefix.chars().count() as i32)
                .bind(&prefix)
                .bind(&account);
            for p in &patterns {
                q = q.bind(p);
            }
            let found: Vec<Found> = q
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .filter(|(_, _, actor, object, detail, _)| names_them(actor, object, detail))
                .collect();
            let (chained, old): (Vec<Found>, Vec<Found>) =
                found.into_iter().partition(|r| r.1.is_some());
            let rows: Vec<i64> = chained.iter().map(|r| r.0).collect();
            let kept = old.len() as u64;
            if !dry_run {
                for (seq, _, _, object, _, mac) in &chained {
                    sqlx::query(
                        "UPDATE audit SET actor = '', detail = '', object = $1, payload_salt = NULL,
                                          mac = $2, erased_at = $3
                         WHERE seq = $4",
                    )
                    .bind(scope(object))
                    .bind(mac.as_deref().map(erased_mac))
                    .bind(at)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if !dry_run && !rows.is_empty() {
                // The rows as ranges: a person's thousands of events stay a short list.
                let mut ranges: Vec<[i64; 2]> = Vec::new();
                for seq in &rows {
                    match ranges.last_mut() {
                        Some(r) if r[1] + 1 == *seq => r[1] = *seq,
                        _ => ranges.push([*seq, *seq]),
                    }
                }
                let event = AuditEvent::new(
                    at,
                    by,
                    PAYLOADS_ERASED,
                    "audit",
                    "p.25.4",
                    serde_json::json!({
                        "count": rows.len(),
                        "rows": ranges,
                        "before": before,
                        "kept": kept,
                    })
                    .to_string(),
                );
                push_audit!(self, tx, [event]);
            }
            Erasure {
                erased: if dry_run { 0 } else { rows.len() as u64 },
                kept,
                rows,
            }
        });
        // The record must be sealed for the erased rows to verify: a failure is the operator's
        // to see (and the next seal's to finish), not to be logged away.
        self.seal_audit().await?;
        Ok(erasure)
    }

    /// Checks the whole chain: every row's hash, every link to the previous row, the sequence
    /// without gaps, and the recorded head (which catches rows cut off the end); every signed
    /// checkpoint against the Merkle tree of the rows it covers.
    pub async fn verify_audit(&self) -> Result<Verification> {
        self.verify_audit_with(&AuditTrust::default()).await
    }

    /// [`Store::verify_audit`], and what `trust` adds: every checkpoint's signature, and the
    /// latest checkpoint of the log outside the database (which catches a chain deleted or
    /// rewritten with its checkpoints).
    pub async fn verify_audit_with(&self, trust: &AuditTrust) -> Result<Verification> {
        let (checkpoints, head) = self.audit_checkpoints().await?;
        let mut check = match ChainCheck::new(checkpoints, trust) {
            Ok(c) => c,
            Err(broken) => return Ok(broken),
        };
        loop {
            // Read by position: rows below the one expected would not be returned, so a swap
            // of seq numbers shows as a gap.
            let rows = self.audit_rows(check.expected_seq - 1, 10_000).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                if let Some(broken) = check.row(row) {
                    return Ok(broken);
                }
            }
        }
        let Ended {
            rows,
            erased,
            matched,
            mut listed,
            uncounted,
        } = match check.end(head.as_deref()) {
            Ok(done) => done,
            Err(broken) => return Ok(broken),
        };
        let pending = self.audit_pending().await?;
        // The refused events kept apart are the ones the sealed refusals list, by digest.
        let kept: Vec<(i64, i64, String, String, String, String, String)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT outbox_id, at, actor, action, object, point, detail FROM audit_refused",
            )
            .fetch_all(p)
            .await?
        });
        let mut kept: Vec<String> = kept
            .into_iter()
            .map(|(id, at, actor, action, object, point, detail)| {
                hex::encode(leaf_hash(
                    id,
                    &AuditEvent::new(at, actor, action, object, point, detail),
                    None,
                ))
            })
            .collect();
        kept.sort();
        listed.sort();
        if kept != listed {
            return Ok(Verification::Broken {
                seq: rows,
                reason: format!(
                    "audit_refused holds {} events, the sealed refusals list {} others (kept events deleted, edited or added)",
                    kept.len(),
                    listed.len()
                ),
            });
        }
        let refused = kept.len() as i64;
        Ok(Verification::Intact {
            rows,
            pending,
            erased,
            checkpoints: matched,
            refused,
            uncounted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;

    /// A multi-row statement on SQLite binds at most 256 parameters, one row at least; on
    /// PostgreSQL, as many rows as asked.
    #[test]
    fn a_statement_binds_few_parameters_on_sqlite() {
        for columns in [1, 2, 7, 10, 19, 300] {
            let rows = rows_at_once(Backend::Sqlite, columns, 500);
            assert!(rows >= 1 && (rows == 1 || rows * columns <= SQLITE_PARAMETERS));
            assert_eq!(rows_at_once(Backend::Postgres, columns, 500), 500);
        }
        assert_eq!(rows_at_once(Backend::Sqlite, 19, 400), 13);
        assert_eq!(rows_at_once(Backend::Sqlite, 1, 10), 10);
    }
}
