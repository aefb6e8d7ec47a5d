//! The hash-chained audit: events go to `audit_outbox` inside the transaction that changes
//! state; [`Store::seal_audit`] chains them into `audit`.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::tlog::{AuditVerifier, Frontier, notes_in, unsigned_checkpoint};
use crate::{Backend, Result, Store, in_tx, on_pool};

/// What `audit verify` trusts beyond the database: the public key the checkpoints must be
/// signed with, and the checkpoint log kept outside the database. Without them, the chain and
/// the checkpoints' roots are checked against each other only.
#[derive(Debug, Clone, Default)]
pub struct AuditTrust {
    pub verifier: Option<AuditVerifier>,
    pub log: Option<std::path::PathBuf>,
}

/// Appends a signed checkpoint to the log file (made the owner's only), a blank line after it.
fn append_note(path: &std::path::Path, note: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(note.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Held by the PostgreSQL transaction that seals, so one sealer at a time extends the chain.
const SEAL_LOCK: i64 = 0x5354_5544_5941_5544;

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One thing that happened. Nothing identifying goes into any field: objects are study ids,
/// step ids and study pseudonyms.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// The outcome of `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every row chains to the one before; `pending` events are not sealed yet; `checkpoints`
    /// signed checkpoints match the chain (their signatures checked when a key was given).
    Intact {
        rows: i64,
        pending: i64,
        checkpoints: u64,
    },
    /// The first row that does not verify, and why.
    Broken { seq: i64, reason: String },
}

/// The hash of a row: SHA-256 over the previous hash and the row's fields, each
/// length-prefixed.
pub fn row_hash(prev: &str, seq: i64, e: &AuditEvent) -> String {
    let mut h = Sha256::new();
    let seq = seq.to_string();
    let at = e.at.to_string();
    for part in [
        prev,
        seq.as_str(),
        at.as_str(),
        &e.actor,
        &e.action,
        &e.object,
        &e.point,
        &e.detail,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The Merkle tree's leaf of the event at position `seq` (see [`crate::tlog`]): its fields
/// length-prefixed, as the chain hashes them.
pub fn leaf_hash(seq: i64, e: &AuditEvent) -> [u8; 32] {
    let (seq, at) = (seq.to_string(), e.at.to_string());
    crate::tlog::leaf(
        [
            seq.as_str(),
            at.as_str(),
            &e.actor,
            &e.action,
            &e.object,
            &e.point,
            &e.detail,
        ]
        .map(str::as_bytes),
    )
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

/// Inserts events into the outbox inside the caller's transaction, a few hundred per
/// statement.
macro_rules! push_audit {
    ($tx:expr, $events:expr) => {
        for chunk in $events.chunks(500) {
            let sql = $crate::audit::multi_insert(
                "INSERT INTO audit_outbox (at, actor, action, object, point, detail)",
                6,
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
                    .bind(&e.detail);
            }
            q.execute(&mut *$tx).await?;
        }
    };
}
pub(crate) use push_audit;

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
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        event: event_from(row)?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

impl Store {
    /// Appends events on their own (for what happens outside a state change, e.g. a stale
    /// write rejected) and seals them.
    pub async fn append_audit(&self, events: &[AuditEvent]) -> Result<()> {
        in_tx!(self, |tx, _b| {
            push_audit!(tx, events);
        });
        self.seal_audit().await?;
        Ok(())
    }

    /// Moves pending events into the chain, in outbox order, up to 5,000 at a time until none
    /// is left. Returns how many were sealed.
    pub async fn seal_audit(&self) -> Result<u64> {
        let mut total = 0;
        let mut latest = None;
        loop {
            let (n, note) = self.seal_batch(5_000).await?;
            total += n;
            latest = note.or(latest);
            if n < 5_000 {
                break;
            }
        }
        // Outside the database too: deleting the chain with its checkpoints is then seen.
        if let (Some(note), Some(path)) = (
            latest,
            self.audit_signing.as_ref().and_then(|s| s.log.as_ref()),
        ) {
            append_note(path, &note).map_err(|source| crate::StoreError::CheckpointLog {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(total)
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
        Ok(in_tx!(self, |tx, backend| {
            if backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(SEAL_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let pending = sqlx::query(
                "SELECT id, at, actor, action, object, point, detail FROM audit_outbox ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            if pending.is_empty() {
                (0, None)
            } else {
                let head = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await?;
                let (mut seq, mut prev): (i64, String) = match head {
                    Some(r) => (r.try_get("seq")?, r.try_get("hash")?),
                    None => (0, GENESIS.to_owned()),
                };
                let mut ids = Vec::with_capacity(pending.len());
                let mut rows = Vec::with_capacity(pending.len());
                for row in &pending {
                    ids.push(row.try_get::<i64, _>("id")?);
                    let e = event_from(row)?;
                    seq += 1;
                    let hash = row_hash(&prev, seq, &e);
                    rows.push((seq, e, std::mem::replace(&mut prev, hash.clone()), hash));
                }
                for chunk in rows.chunks(500) {
                    let sql = multi_insert(
                        "INSERT INTO audit (seq, at, actor, action, object, point, detail, prev_hash, hash)",
                        9,
                        chunk.len(),
                        "",
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (seq, e, prev_hash, hash) in chunk {
                        q = q
                            .bind(*seq)
                            .bind(e.at)
                            .bind(&e.actor)
                            .bind(&e.action)
                            .bind(&e.object)
                            .bind(&e.point)
                            .bind(&e.detail)
                            .bind(prev_hash)
                            .bind(hash);
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
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ('audit_head', $1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(format!("{seq}:{prev}"))
                .execute(&mut *tx)
                .await?;
                // The Merkle tree's right edge, extended by the rows just sealed (built from
                // the whole chain once, for a log sealed before the tree).
                let first = rows.first().map_or(seq, |r| r.0) - 1;
                let kept: Option<String> =
                    sqlx::query_scalar("SELECT value FROM meta WHERE key = 'audit_frontier'")
                        .fetch_optional(&mut *tx)
                        .await?;
                let kept = kept
                    .as_deref()
                    .and_then(Frontier::decode)
                    .filter(|f| f.size() == first as u64);
                // A signing sealer extends only the history it signed last: the latest
                // checkpoint of the log outside the database must be the root of the chain's
                // first rows, whatever the database says (its rows or its stored tree).
                let last_signed = match &self.audit_signing {
                    Some(s) if s.log.is_some() => {
                        let path = s.log.as_deref().unwrap_or(std::path::Path::new(""));
                        let note = crate::tlog::last_note(path).map_err(|source| {
                            crate::StoreError::CheckpointLog {
                                path: path.display().to_string(),
                                source,
                            }
                        })?;
                        match note {
                            Some(note) => {
                                Some(s.signer.verifier().checkpoint(&note).map_err(|e| {
                                    crate::StoreError::AuditTampered(format!(
                                        "the last checkpoint of the log {} does not verify ({e})",
                                        path.display()
                                    ))
                                })?)
                            }
                            None => None,
                        }
                    }
                    _ => None,
                };
                let mut root_at_signed = None;
                let mut frontier = match kept {
                    Some(f) if last_signed.as_ref().is_none_or(|c| c.size == f.size()) => f,
                    _ => {
                        let mut f = Frontier::default();
                        let earlier = sqlx::query(
                            "SELECT seq, at, actor, action, object, point, detail FROM audit
                             WHERE seq <= $1 ORDER BY seq",
                        )
                        .bind(first)
                        .fetch_all(&mut *tx)
                        .await?;
                        for r in &earlier {
                            f.push(leaf_hash(r.try_get("seq")?, &event_from(r)?));
                            if last_signed.as_ref().is_some_and(|c| c.size == f.size()) {
                                root_at_signed = Some(f.root());
                            }
                        }
                        f
                    }
                };
                if let Some(c) = &last_signed {
                    let root = if c.size == frontier.size() {
                        Some(frontier.root())
                    } else {
                        root_at_signed
                    };
                    if root != Some(c.root) {
                        return Err(crate::StoreError::AuditTampered(format!(
                            "its first {} rows are not the history signed last (edited or deleted since)",
                            c.size
                        )));
                    }
                }
                for (seq, e, _, _) in &rows {
                    frontier.push(leaf_hash(*seq, e));
                }
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ('audit_frontier', $1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(frontier.encode())
                .execute(&mut *tx)
                .await?;
                let note = match &self.audit_signing {
                    Some(signing) => {
                        let note = signing.signer.checkpoint(frontier.size(), &frontier.root());
                        sqlx::query(
                            "INSERT INTO audit_checkpoints (tree_size, note) VALUES ($1, $2)
                             ON CONFLICT (tree_size) DO NOTHING",
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
    pub async fn audit_rows(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>> {
        Ok(on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, object, point, detail, prev_hash, hash
                 FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(row_from)
                .collect::<std::result::Result<Vec<_>, _>>()?
        }))
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
        let checkpoints: Vec<(i64, String)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT tree_size, note FROM audit_checkpoints ORDER BY tree_size")
                .fetch_all(p)
                .await?
        });
        // Every checkpoint the log outside the database holds: an older one covers the history
        // as it was signed then, whatever the database holds now.
        let outside: Vec<String> = match &trust.log {
            Some(path) => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let notes = notes_in(&text);
                if notes.is_empty() {
                    return Ok(Verification::Broken {
                        seq: 0,
                        reason: format!(
                            "the checkpoint log {} holds no checkpoint (deleted, or the audit was never signed)",
                            path.display()
                        ),
                    });
                }
                notes
            }
            None => Vec::new(),
        };
        // The checkpoints to hold against the chain: (size, note, whose: the database's or
        // the log's).
        let mut expected: Vec<(u64, &str, &str)> = checkpoints
            .iter()
            .map(|(size, note)| (*size as u64, note.as_str(), "database"))
            .collect();
        for note in &outside {
            let size = unsigned_checkpoint(note).map_or(0, |c| c.size);
            expected.push((size, note.as_str(), "checkpoint log"));
        }
        expected.sort_by_key(|e| e.0);
        for (size, note, whose) in &expected {
            let Some(c) = unsigned_checkpoint(note) else {
                return Ok(Verification::Broken {
                    seq: *size as i64,
                    reason: format!("a checkpoint in the {whose} is not a checkpoint"),
                });
            };
            if let Some(v) = &trust.verifier {
                match v.checkpoint(note) {
                    Ok(signed) if signed == c => {}
                    _ => {
                        return Ok(Verification::Broken {
                            seq: *size as i64,
                            reason: format!(
                                "the checkpoint of row {size} in the {whose} is not signed by the audit key {} (forged)",
                                v.name()
                            ),
                        });
                    }
                }
            }
        }
        let mut next = expected.iter().peekable();
        let mut frontier = Frontier::default();
        let mut matched = 0u64;
        let mismatch = |size: u64, whose: &str| Verification::Broken {
            seq: size as i64,
            reason: format!(
                "the signed checkpoint of rows 1–{size} in the {whose} does not match the chain (history rewritten)"
            ),
        };
        let mut expected_seq = 1;
        let mut prev = GENESIS.to_owned();
        loop {
            let rows = self.audit_rows(expected_seq - 1, 10_000).await?;
            // Rows below the position we expect would not be returned; read by position
            // instead of by value to catch a swap of seq numbers.
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                if row.seq != expected_seq {
                    return Ok(Verification::Broken {
                        seq: expected_seq,
                        reason: format!(
                            "row {expected_seq} is missing (the next row is {})",
                            row.seq
                        ),
                    });
                }
                if row.prev_hash != prev {
                    return Ok(Verification::Broken {
                        seq: row.seq,
                        reason:
                            "it does not follow the row before it (deleted, inserted or reordered)"
                                .into(),
                    });
                }
                if row_hash(&prev, row.seq, &row.event) != row.hash {
                    return Ok(Verification::Broken {
                        seq: row.seq,
                        reason: "its content does not match its hash (edited)".into(),
                    });
                }
                prev = row.hash.clone();
                frontier.push(leaf_hash(row.seq, &row.event));
                while let Some((size, note, whose)) = next.next_if(|e| e.0 <= frontier.size()) {
                    let root = unsigned_checkpoint(note).map(|c| c.root);
                    if *size != frontier.size() || root != Some(frontier.root()) {
                        return Ok(mismatch(*size, whose));
                    }
                    matched += 1;
                }
                expected_seq += 1;
            }
        }
        let rows = expected_seq - 1;
        if let Some((size, _, whose)) = next.next() {
            return Ok(Verification::Broken {
                seq: rows + 1,
                reason: format!(
                    "a signed checkpoint in the {whose} covers {size} rows, the chain has {rows} (rows deleted)"
                ),
            });
        }
        if trust.verifier.is_some() && rows > 0 && expected.is_empty() {
            return Ok(Verification::Broken {
                seq: rows,
                reason: "no signed checkpoint covers the chain (the audit was not signed, or its checkpoints were deleted)".into(),
            });
        }
        let head: Option<String> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'audit_head'")
                .fetch_optional(p)
                .await?
        });
        if head.is_none() && rows > 0 {
            return Ok(Verification::Broken {
                seq: rows,
                reason: "the recorded head of the chain is missing (edited)".into(),
            });
        }
        if let Some(head) = head
            && head != format!("{rows}:{prev}")
        {
            let recorded: i64 = head
                .split(':')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return Ok(Verification::Broken {
                seq: rows + 1,
                reason: format!(
                    "the chain ends at row {rows} but the recorded head is row {recorded} (rows cut off the end, or the head edited)"
                ),
            });
        }
        let pending: i64 = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_outbox")
                .fetch_one(p)
                .await?
        });
        Ok(Verification::Intact {
            rows,
            pending,
            checkpoints: matched,
        })
    }
}
