//! # studyflow-store
//!
//! The only crate that writes SQL. One API over two real backends: SQLite, the embedded
//! default (`./studyflow.db`; WAL, `synchronous=FULL`, `secure_delete=ON`, foreign keys on),
//! and PostgreSQL, for several workers on several machines. Both run the same statements
//! (`$1` placeholders work on both); what differs — the DDL, the row locks of a claim, the lock
//! that orders the audit chain — is chosen per backend.
//!
//! What it stores: studies and their versions (spec bytes, plan hash, plan JSON, who submitted
//! and approved), contracts, step runs (the engine's state machine, leases and fencing tokens,
//! timers as `not_before` instants with the rule and calendar version that produced them,
//! deadlines), the dependencies between step runs, and the hash-chained audit.
//!
//! The audit is written in two stages so that workers never serialise on it: every
//! transaction that changes state inserts its audit events into `audit_outbox` (atomically
//! with the change), and [`Store::seal_audit`] moves them, in order, into `audit`, each row
//! hashing the previous row's hash and its own content. Commands and workers seal after their
//! writes.

mod accounts;
mod audit;
mod devices;
pub mod failpoint;
mod migrate;
mod runs;
pub mod service_is;
mod sign_ins;
mod studies;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tlog;
pub mod witness;

use std::time::Duration;

pub use accounts::{AccountRow, CredentialKind, CredentialRow, Ended, Language, OwnChange};
pub use audit::{
    AuditEvent, AuditFilter, AuditRow, AuditTrust, Erasure, GENESIS, InclusionProof,
    PAYLOADS_ERASED, RESERVED_OBJECTS, TrustedWitness, Verification, append_note, leaf_hash,
    payload_digest, row_hash, scope, verify_export, verify_inclusion,
};
pub use devices::{DeviceGrantRow, DeviceState};
pub use runs::{
    Activation, Claimed, Effect, Expect, Finish, NewRun, RunGroup, RunRow, RunState, TaskMode,
    object as run_object,
};
pub use sign_ins::{OidcSessionRow, OidcSignInRow};
pub use studies::{ContractRow, StudyRow, StudyState, Submission, VersionRow, VersionState};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// The schema version this build knows; migrations `0001`…`SCHEMA_VERSION` per backend.
pub const SCHEMA_VERSION: i64 = 15;

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why a store operation failed. Messages name the database, never data about a subject.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database's schema version is {found}, newer than this studyflow knows ({known}); use a newer studyflow, the database was not changed"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error(
        "{0} is not a studyflow database (it is not an SQLite file, or it is damaged); nothing was changed"
    )]
    NotADatabase(String),
    #[error("cannot open the database {target}: {source}")]
    Open {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the PostgreSQL server at {target} did not answer within {seconds} s: check that it runs, that the host and port are right, and that no firewall drops the connection"
    )]
    Unanswered { target: String, seconds: u64 },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// Too much waiting at once (a bound that keeps a table small): try again later.
    #[error("{0}")]
    Busy(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "the audit was not extended: {0}; run `studyflow audit verify` with the public key and the checkpoint log"
    )]
    AuditTampered(String),
    #[error(
        "the audit was sealed, but its signed checkpoint could not be appended to the checkpoint log {path}: {source}"
    )]
    CheckpointLog {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the checkpoint log {path} cannot be read, so nothing is sealed against it: {source}")]
    CheckpointLogUnreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    target: String,
    /// PostgreSQL: woken by the task that LISTENs for `studyflow_ready`, started on first use
    /// and shared by every worker on this store.
    wake: std::sync::Arc<tokio::sync::OnceCell<std::sync::Arc<tokio::sync::Notify>>>,
    /// Signs a checkpoint of the audit at each seal, and the file outside the database each
    /// signed checkpoint is appended to (issue #12).
    pub(crate) audit_signing: Option<std::sync::Arc<AuditSigning>>,
    /// Why this process's last seal of committed acts failed, until one succeeds
    /// ([`Store::seal_committed`], [`Store::seal_trouble`]).
    pub(crate) seal_trouble: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

/// What signs the audit: the key, and the checkpoint log kept outside the database.
#[derive(Debug)]
pub struct AuditSigning {
    pub signer: tlog::AuditSigner,
    pub log: Option<std::path::PathBuf>,
}

/// Runs `$body` with `$c` bound to the pool of either backend; the body is compiled once per
/// backend, so row and argument types are each backend's own.
macro_rules! on_pool {
    ($store:expr, |$c:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($c) => $body,
            $crate::Pool::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with the open transaction `$tx` and commits it; a body that refuses
/// (`return Err`, `?`) is rolled back here, at once, rather than when the connection is next
/// used (which left a row locked behind a refusal). In a block of its own, so the refusal
/// comes back here first; the enclosing function then returns it.
macro_rules! settle {
    ($tx:ident, $body:expr) => {{
        let out: $crate::Result<_> = async { Ok($body) }.await;
        match out {
            Ok(out) => {
                $tx.commit().await?;
                out
            }
            Err(e) => {
                let _ = $tx.rollback().await;
                return Err(e.into());
            }
        }
    }};
}

/// Runs `$body` in a transaction (`BEGIN IMMEDIATE` on SQLite, so a writer never has to upgrade
/// its lock) with `$tx` bound to it; commits when the body succeeds, rolls back when it returns
/// early with an error.
macro_rules! in_tx {
    ($store:expr, |$tx:ident, $backend:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite(p) => {
                #[allow(unused_variables)]
                let $backend = $crate::Backend::Sqlite;
                let mut $tx = p.begin_with("BEGIN IMMEDIATE").await?;
                $crate::settle!($tx, $body)
            }
            $crate::Pool::Postgres(p) => {
                #[allow(unused_variables)]
                let $backend = $crate::Backend::Postgres;
                let mut $tx = p.begin().await?;
                $crate::settle!($tx, $body)
            }
        }
    };
}

/// Sets `meta.$key` to `$value` inside the transaction `$tx` (the schema version, the audit's
/// head and tree).
macro_rules! put_meta {
    ($tx:expr, $key:expr, $value:expr) => {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind($key)
        .bind($value)
        .execute(&mut *$tx)
        .await?
    };
}

/// The row `$sql` finds with `$key` bound to `$1`, made by the row macro `$from`, if there is
/// one.
macro_rules! optional_row {
    ($store:expr, $sql:expr, $key:expr, $from:ident) => {
        on_pool!($store, |p| {
            match sqlx::query(sqlx::AssertSqlSafe($sql))
                .bind($key)
                .fetch_optional(p)
                .await?
            {
                Some(r) => Some($from!(r)),
                None => None,
            }
        })
    };
}

pub(crate) use {in_tx, on_pool, optional_row, put_meta, settle};

impl Store {
    /// Opens a database that must exist already (an SQLite file that is not there is an
    /// error, not a new empty database): for every command but `submit`.
    pub async fn open_existing(url: &str) -> Result<Store> {
        Store::open_with(url, true).await
    }

    /// Opens (creating if needed) the database at `url` and brings its schema up to date:
    /// `postgres://…`, `sqlite://PATH`, `sqlite::memory:`, or a plain file path.
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, false).await
    }

    async fn open_with(url: &str, existing: bool) -> Result<Store> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // A server that does not answer is said so quickly, not after the pool's own wait.
            const ANSWER_WITHIN: Duration = Duration::from_secs(5);
            let connect = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url);
            let pool = tokio::time::timeout(ANSWER_WITHIN, connect)
                .await
                .map_err(|_| StoreError::Unanswered {
                    target: redact(url),
                    seconds: ANSWER_WITHIN.as_secs(),
                })?
                .map_err(|source| StoreError::Open {
                    target: redact(url),
                    source,
                })?;
            Store {
                pool: Pool::Postgres(pool),
                target: redact(url),
                wake: Default::default(),
                audit_signing: None,
                seal_trouble: Default::default(),
            }
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            if path != ":memory:" {
                sqlite_file_is_ours(path, existing).await?;
            }
            let options = if path == ":memory:" {
                SqliteConnectOptions::new().in_memory(true)
            } else {
                SqliteConnectOptions::new().filename(path)
            }
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            .pragma("secure_delete", "ON");
            let pool = SqlitePoolOptions::new()
                // An in-memory database lives in one connection.
                .max_connections(if path == ":memory:" { 1 } else { 4 })
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await
                .map_err(|source| classify_sqlite(path, source))?;
            Store {
                pool: Pool::Sqlite(pool),
                target: path.to_owned(),
                wake: Default::default(),
                audit_signing: None,
                seal_trouble: Default::default(),
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    /// This store signs a checkpoint of the audit at each seal with `signing`'s key and
    /// appends it to its checkpoint log.
    pub fn with_audit_signing(mut self, signing: AuditSigning) -> Store {
        self.audit_signing = Some(std::sync::Arc::new(signing));
        self
    }

    /// What this store's own audit signing lets a verification trust: the key's public half and
    /// the checkpoint log; nothing without signing.
    pub fn own_audit_trust(&self) -> AuditTrust {
        match &self.audit_signing {
            Some(s) => AuditTrust {
                verifier: Some(s.signer.verifier()),
                log: s.log.clone(),
                witnesses: Vec::new(),
                quorum: None,
            },
            None => AuditTrust::default(),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Hands every cell of every studyflow table to `each`, as bytes: text as UTF-8, blobs as
    /// stored, numbers left out. What a scan for identifiers reads of a database that is no
    /// file of the work folder (PostgreSQL); read a page of rows at a time.
    pub async fn contents(&self, mut each: impl FnMut(&[u8])) -> Result<()> {
        use sqlx::Row;
        const TABLES: &[&str] = &[
            "meta",
            "studies",
            "study_versions",
            "contracts",
            "step_runs",
            "step_deps",
            "audit_outbox",
            "audit",
            "study_keys",
            "datasets",
        ];
        const PAGE: i64 = 500;
        for table in TABLES {
            // The table names are the constants above: nothing from outside reaches the SQL.
            let sql = format!("SELECT * FROM {table} ORDER BY 1 LIMIT $1 OFFSET $2");
            let mut offset = 0;
            loop {
                let n = on_pool!(self, |p| {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(PAGE)
                        .bind(offset)
                        .fetch_all(p)
                        .await?;
                    for row in &rows {
                        for i in 0..row.len() {
                            if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                                each(text.as_bytes());
                            } else if let Ok(Some(blob)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                                each(&blob);
                            }
                        }
                    }
                    rows.len()
                });
                if (n as i64) < PAGE {
                    break;
                }
                offset += PAGE;
            }
        }
        Ok(())
    }

    /// What the store is connected to, without a password.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Waits until a run may have become ready or `timeout` passes. On PostgreSQL a
    /// transaction that readies a run sends `NOTIFY studyflow_ready`, and this LISTENs; on
    /// SQLite (one process's database) it sleeps.
    pub async fn wait_for_work(&self, timeout: Duration) {
        let Pool::Postgres(pool) = &self.pool else {
            tokio::time::sleep(timeout).await;
            return;
        };
        let pool = pool.clone();
        let wake = self
            .wake
            .get_or_init(|| async move {
                let notify = std::sync::Arc::new(tokio::sync::Notify::new());
                let n = notify.clone();
                tokio::spawn(async move {
                    loop {
                        if let Ok(mut l) = sqlx::postgres::PgListener::connect_with(&pool).await
                            && l.listen("studyflow_ready").await.is_ok()
                        {
                            // Every waiting worker wakes; each then claims what it can.
                            while l.recv().await.is_ok() {
                                n.notify_waiters();
                            }
                        }
                        // Lost or refused: the workers fall back on their poll until it is back.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                });
                notify
            })
            .await
            .clone();
        let _ = tokio::time::timeout(timeout, wake.notified()).await;
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }
}

/// A connection string without its password.
pub fn redact(url: &str) -> String {
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    // `?password=…` (or `&password=…`) as well.
    match url.split_once('?') {
        None => url,
        Some((base, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{base}?{}", query.join("&"))
        }
    }
}

/// Whether SQLite said the file is not a database (read when opened, or at the first query).
fn not_a_database(e: &sqlx::Error) -> bool {
    let text = e.to_string();
    text.contains("not a database")
        || text.contains("malformed")
        || text.contains("file is encrypted")
}

fn classify_sqlite(path: &str, source: sqlx::Error) -> StoreError {
    if not_a_database(&source) {
        StoreError::NotADatabase(path.to_owned())
    } else {
        StoreError::Open {
            target: path.to_owned(),
            source,
        }
    }
}

impl StoreError {
    /// Maps an SQLite "not a database" error met after opening (the header is read lazily).
    pub(crate) fn from_sqlx_at(target: &str, e: sqlx::Error) -> StoreError {
        if not_a_database(&e) {
            StoreError::NotADatabase(target.to_owned())
        } else {
            StoreError::Database(e)
        }
    }
}

/// Before SQLite opens `path` (which would switch an existing file to WAL and add studyflow's
/// tables): a new file is created readable by its owner only (the study's data lives in it,
/// MK403 p.25.3); an existing one must be studyflow's — empty, or holding its `meta` table — and,
/// when `existing` is asked for, not empty. Another application's database is left untouched.
async fn sqlite_file_is_ours(path: &str, existing: bool) -> Result<()> {
    use sqlx::ConnectOptions;
    let file = std::path::Path::new(path);
    // `symlink_metadata`: a link to nowhere is a file that is there, not one to create.
    if std::fs::symlink_metadata(file).is_err() {
        if existing {
            return Err(StoreError::NotFound(format!(
                "there is no database at {path} (submit a study first, or give --database)"
            )));
        }
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        match o.open(file) {
            Ok(_) => return Ok(()),
            // Made meanwhile by another process: checked below like any existing file.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::NotFound(format!("cannot create {path}: {e}"))),
        }
    }
    if !file.exists() {
        return Err(StoreError::NotFound(format!(
            "{path} is a link to nothing; give the database's own path"
        )));
    }
    let mut c = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .map_err(|source| classify_sqlite(path, source))?;
    let tables: std::result::Result<Vec<String>, sqlx::Error> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut c)
    .await;
    // studyflow's own: a `meta` table holding its schema version (another application may
    // have a `meta` table too: Chromium's history has one).
    let ours = match &tables {
        Ok(t) if t.iter().any(|n| n == "meta") => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM meta WHERE key = 'schema_version'")
                .fetch_one(&mut c)
                .await
                .is_ok_and(|n| n == 1)
        }
        _ => false,
    };
    let _ = sqlx::Connection::close(c).await;
    let tables = tables.map_err(|source| classify_sqlite(path, source))?;
    if tables.is_empty() {
        return if existing {
            Err(StoreError::NotFound(format!(
                "{path} is not a studyflow database (it is empty; submit a study first, or give --database)"
            )))
        } else {
            Ok(())
        };
    }
    if !ours {
        return Err(StoreError::NotFound(format!(
            "{path} is another application's database ({} table(s), and no studyflow schema); studyflow leaves it untouched: give a database of its own",
            tables.len()
        )));
    }
    // Ours: made private if an earlier studyflow or the umask left it open (SQLite gives its
    // WAL the database's mode).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(file)
            && m.permissions().mode() & 0o077 != 0
        {
            let _ = std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600));
            for side in ["-wal", "-shm"] {
                let p = format!("{path}{side}");
                if std::path::Path::new(&p).exists() {
                    let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://app:secret@db.example:5432/studies"),
            "postgres://app:***@db.example:5432/studies"
        );
        assert_eq!(
            super::redact("postgres://127.0.0.1/test"),
            "postgres://127.0.0.1/test"
        );
        assert_eq!(
            super::redact("postgres://127.0.0.1:5432/x?user=app&password=s3cret&sslmode=require"),
            "postgres://127.0.0.1:5432/x?user=app&password=***&sslmode=require"
        );
    }
}
