//! Studies, their versions (each pinned to a plan hash) and contracts.

use sqlx::Row;

use crate::audit::{AuditEvent, push_audit};
use crate::{Result, Store, StoreError, in_tx, on_pool};

/// A submitted spec version.
#[derive(Debug, Clone)]
pub struct Submission {
    pub study: String,
    pub version: i64,
    pub spec: Vec<u8>,
    pub plan_hash: String,
    pub plan_json: String,
    pub submitted_by: String,
    pub at: i64,
}

/// Where a study is in its life (MK403 p.3, p.5, p.26, p.30).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StudyState {
    /// Its first version waits for the approval.
    Submitted,
    Approved,
    /// An external study's contract, declarations and measures are recorded (p.30.2, p.33).
    Contracted,
    Running,
    Completed,
    /// Stopped before its end; its identifying data destroyed (p.26).
    Terminated,
}

impl StudyState {
    pub const ALL: [StudyState; 6] = [
        StudyState::Submitted,
        StudyState::Approved,
        StudyState::Contracted,
        StudyState::Running,
        StudyState::Completed,
        StudyState::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StudyState::Submitted => "submitted",
            StudyState::Approved => "approved",
            StudyState::Contracted => "contracted",
            StudyState::Running => "running",
            StudyState::Completed => "completed",
            StudyState::Terminated => "terminated",
        }
    }

    pub fn parse(s: &str) -> Option<StudyState> {
        StudyState::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the study has ended, completed or terminated.
    pub fn is_final(self) -> bool {
        matches!(self, StudyState::Completed | StudyState::Terminated)
    }
}

impl std::fmt::Display for StudyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a version of a study's spec is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionState {
    Submitted,
    Approved,
    /// A later approved version replaced it.
    Superseded,
    /// An approver refused it, with a reason (in the audit); a new version may follow.
    Refused,
}

impl VersionState {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Submitted => "submitted",
            VersionState::Approved => "approved",
            VersionState::Superseded => "superseded",
            VersionState::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<VersionState> {
        [
            VersionState::Submitted,
            VersionState::Approved,
            VersionState::Superseded,
            VersionState::Refused,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for VersionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A state column the store does not know: a damaged or foreign row, refused.
fn state_of<T>(column: &str, text: String, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(&text).ok_or_else(|| {
        crate::StoreError::Conflict(format!(
            "the database holds a {column} this studyflow does not know (`{text}`)"
        ))
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudyRow {
    pub id: String,
    pub state: StudyState,
    /// The approved version the engine runs.
    pub active_version: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    pub study: String,
    pub version: i64,
    pub spec: Vec<u8>,
    pub plan_hash: String,
    pub plan_json: String,
    pub state: VersionState,
    pub submitted_by: String,
    pub submitted_at: i64,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractRow {
    pub study: String,
    pub number: String,
    pub concluded_on: String,
    /// JSON list of the signatories of non-disclosure declarations.
    pub declarations: String,
    pub measures_recorded: bool,
    pub recorded_by: String,
    pub recorded_at: i64,
}

impl ContractRow {
    /// The signatories of non-disclosure declarations recorded with it (MK403 p.30.2).
    pub fn signatories(&self) -> Vec<String> {
        serde_json::from_str(&self.declarations).unwrap_or_default()
    }
}

macro_rules! study_from {
    ($r:expr) => {
        StudyRow {
            id: $r.try_get("id")?,
            state: state_of("study state", $r.try_get("state")?, StudyState::parse)?,
            active_version: $r.try_get("active_version")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    };
}

macro_rules! version_from {
    ($r:expr) => {
        VersionRow {
            study: $r.try_get("study")?,
            version: $r.try_get("version")?,
            spec: $r.try_get("spec")?,
            plan_hash: $r.try_get("plan_hash")?,
            plan_json: $r.try_get("plan_json")?,
            state: state_of("version state", $r.try_get("state")?, VersionState::parse)?,
            submitted_by: $r.try_get("submitted_by")?,
            submitted_at: $r.try_get("submitted_at")?,
            approved_by: $r.try_get("approved_by")?,
            approved_at: $r.try_get("approved_at")?,
        }
    };
}

impl Store {
    /// Records a submitted version. Version 1 creates the study (refused if it exists); a later
    /// version is an amendment of an existing study and must be the next number.
    pub async fn submit(&self, s: &Submission, audit: &[AuditEvent]) -> Result<()> {
        in_tx!(self, |tx, _b| {
            let existing =
                sqlx::query("SELECT MAX(version) AS v FROM study_versions WHERE study = $1")
                    .bind(&s.study)
                    .fetch_one(&mut *tx)
                    .await?;
            let latest: Option<i64> = existing.try_get("v")?;
            match (latest, s.version) {
                (None, 1) => {
                    sqlx::query(
                        "INSERT INTO studies (id, state, active_version, created_at, updated_at)
                         VALUES ($1, 'submitted', NULL, $2, $2)",
                    )
                    .bind(&s.study)
                    .bind(s.at)
                    .execute(&mut *tx)
                    .await?;
                }
                (None, v) => {
                    return Err(StoreError::Conflict(format!(
                        "study `{}` does not exist yet, so its first version must be 1, not {v}",
                        s.study
                    )));
                }
                (Some(_), 1) => {
                    return Err(StoreError::Conflict(format!(
                        "study `{}` already exists; submit a changed spec with `amend`",
                        s.study
                    )));
                }
                (Some(l), v) if v != l + 1 => {
                    return Err(StoreError::Conflict(format!(
                        "study `{}` is at version {l}; the amendment must be version {}, not {v} (raise `version` in the spec)",
                        s.study,
                        l + 1
                    )));
                }
                _ => {}
            }
            sqlx::query(
                "INSERT INTO study_versions (study, version, spec, plan_hash, plan_json, state, submitted_by, submitted_at)
                 VALUES ($1, $2, $3, $4, $5, 'submitted', $6, $7)",
            )
            .bind(&s.study)
            .bind(s.version)
            .bind(&s.spec)
            .bind(&s.plan_hash)
            .bind(&s.plan_json)
            .bind(&s.submitted_by)
            .bind(s.at)
            .execute(&mut *tx)
            .await?;
            push_audit!(self, tx, audit);
        });
        Ok(())
    }

    pub async fn study(&self, id: &str) -> Result<Option<StudyRow>> {
        Ok(on_pool!(self, |p| {
            match sqlx::query("SELECT id, state, active_version, created_at, updated_at FROM studies WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
            {
                Some(r) => Some(study_from!(r)),
                None => None,
            }
        }))
    }

    pub async fn studies(&self) -> Result<Vec<StudyRow>> {
        Ok(on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, state, active_version, created_at, updated_at FROM studies ORDER BY id",
            )
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(study_from!(r));
            }
            out
        }))
    }

    /// One version, or the latest when `version` is `None`.
    pub async fn version(&self, study: &str, version: Option<i64>) -> Result<Option<VersionRow>> {
        Ok(on_pool!(self, |p| {
            let q = match version {
                Some(v) => sqlx::query(
                    "SELECT study, version, spec, plan_hash, plan_json, state, submitted_by, submitted_at, approved_by, approved_at
                     FROM study_versions WHERE study = $1 AND version = $2",
                )
                .bind(study)
                .bind(v),
                None => sqlx::query(
                    "SELECT study, version, spec, plan_hash, plan_json, state, submitted_by, submitted_at, approved_by, approved_at
                     FROM study_versions WHERE study = $1 AND version = (SELECT MAX(version) FROM study_versions WHERE study = $1)",
                )
                .bind(study),
            };
            match q.fetch_optional(p).await? {
                Some(r) => Some(version_from!(r)),
                None => None,
            }
        }))
    }

    /// Approves a submitted version, pinned to its plan hash: refused unless the version is
    /// still submitted and its hash is `plan_hash`. A study still waiting for its first
    /// approval becomes `approved`.
    pub async fn approve(
        &self,
        study: &str,
        version: i64,
        plan_hash: &str,
        by: &str,
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<()> {
        in_tx!(self, |tx, _b| {
            let n = sqlx::query(
                "UPDATE study_versions SET state = 'approved', approved_by = $1, approved_at = $2
                 WHERE study = $3 AND version = $4 AND state = 'submitted' AND plan_hash = $5",
            )
            .bind(by)
            .bind(at)
            .bind(study)
            .bind(version)
            .bind(plan_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict(format!(
                    "version {version} of `{study}` is not waiting for approval with plan {plan_hash}"
                )));
            }
            // The versions approved before are superseded by this one.
            sqlx::query(
                "UPDATE study_versions SET state = 'superseded' WHERE study = $1 AND state = 'approved' AND version < $2",
            )
            .bind(study)
            .bind(version)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE studies SET state = 'approved', updated_at = $1 WHERE id = $2 AND state = 'submitted'")
                .bind(at)
                .bind(study)
                .execute(&mut *tx)
                .await?;
            push_audit!(self, tx, audit);
        });
        Ok(())
    }

    /// Refuses the version waiting for approval with `plan_hash` (the refusal and its reason are
    /// `audit`); the study stays as it was, the version in force too.
    pub async fn refuse(
        &self,
        study: &str,
        version: i64,
        plan_hash: &str,
        audit: &[AuditEvent],
    ) -> Result<()> {
        in_tx!(self, |tx, _b| {
            let n = sqlx::query(
                "UPDATE study_versions SET state = 'refused'
                 WHERE study = $1 AND version = $2 AND state = 'submitted' AND plan_hash = $3",
            )
            .bind(study)
            .bind(version)
            .bind(plan_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict(format!(
                    "version {version} of `{study}` is not waiting for approval with plan {plan_hash}"
                )));
            }
            push_audit!(self, tx, audit);
        });
        Ok(())
    }

    /// Stores a study's wrapped keys, with the public key its task notes are sealed to, unless
    /// it has some; returns the wrapped keys in force.
    pub async fn put_study_keys(
        &self,
        study: &str,
        wrapped: &[u8],
        note_recipient: &str,
        at: i64,
    ) -> Result<Vec<u8>> {
        Ok(in_tx!(self, |tx, _b| {
            sqlx::query("INSERT INTO study_keys (study, wrapped, note_recipient, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (study) DO NOTHING")
                .bind(study)
                .bind(wrapped)
                .bind(note_recipient)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            sqlx::query_scalar::<_, Vec<u8>>("SELECT wrapped FROM study_keys WHERE study = $1")
                .bind(study)
                .fetch_one(&mut *tx)
                .await?
        }))
    }

    /// A study's wrapped keys; `None` once destroyed.
    pub async fn study_keys(&self, study: &str) -> Result<Option<Vec<u8>>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT wrapped FROM study_keys WHERE study = $1")
                .bind(study)
                .fetch_optional(p)
                .await?
        }))
    }

    /// The public key a study's task notes are sealed to (MK403 p.26): `None` before the
    /// study's keys are made, after they are destroyed, or for keys made before notes were
    /// sealed.
    pub async fn note_recipient(&self, study: &str) -> Result<Option<String>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT note_recipient FROM study_keys WHERE study = $1",
            )
            .bind(study)
            .fetch_optional(p)
            .await?
            .flatten()
        }))
    }

    /// Stores (or replaces) a sealed dataset of a study.
    pub async fn put_dataset(
        &self,
        study: &str,
        name: &str,
        identifying: bool,
        sealed: &[u8],
        at: i64,
    ) -> Result<()> {
        let backend = self.backend();
        on_pool!(self, |p| {
            let mut c = p.acquire().await?;
            // Before the write, so the connection goes however it ends (an error, a cancel).
            retire_if_large(backend, &mut c, sealed.len());
            sqlx::query(
                "INSERT INTO datasets (study, name, identifying, sealed, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (study, name) DO UPDATE SET identifying = excluded.identifying, sealed = excluded.sealed, updated_at = excluded.updated_at",
            )
            .bind(study)
            .bind(name)
            .bind(i64::from(identifying))
            .bind(sealed)
            .bind(at)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// A sealed dataset, if it exists.
    pub async fn dataset(&self, study: &str, name: &str) -> Result<Option<Vec<u8>>> {
        let backend = self.backend();
        Ok(on_pool!(self, |p| {
            let mut c = p.acquire().await?;
            let found: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT sealed FROM datasets WHERE study = $1 AND name = $2")
                    .bind(study)
                    .bind(name)
                    .fetch_optional(&mut *c)
                    .await?;
            retire_if_large(backend, &mut c, found.as_ref().map_or(0, Vec::len));
            found
        }))
    }

    /// Whether a dataset exists, without reading it.
    pub async fn dataset_exists(&self, study: &str, name: &str) -> Result<bool> {
        let n: i64 = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM datasets WHERE study = $1 AND name = $2")
                .bind(study)
                .bind(name)
                .fetch_one(p)
                .await?
        });
        Ok(n > 0)
    }

    /// The names of a study's datasets starting with `prefix`.
    pub async fn dataset_names(&self, study: &str, prefix: &str) -> Result<Vec<String>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT name FROM datasets WHERE study = $1 AND substr(name, 1, length($2)) = $2 ORDER BY name")
                .bind(study)
                .bind(prefix)
                .fetch_all(p)
                .await?
        }))
    }

    /// Deletes datasets of a study by name; returns how many.
    pub async fn delete_datasets(&self, study: &str, names: &[&str]) -> Result<u64> {
        let mut n = 0;
        for name in names {
            n += on_pool!(self, |p| {
                sqlx::query("DELETE FROM datasets WHERE study = $1 AND name = $2")
                    .bind(study)
                    .bind(*name)
                    .execute(p)
                    .await?
                    .rows_affected()
            });
        }
        Ok(n)
    }

    /// The newest approved version, if any.
    pub async fn latest_approved_version(&self, study: &str) -> Result<Option<i64>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(version) FROM study_versions WHERE study = $1 AND state = 'approved'",
            )
            .bind(study)
            .fetch_one(p)
            .await?
        }))
    }

    /// Records the contract of an external study; the study moves from `approved` to
    /// `contracted`.
    pub async fn record_contract(&self, c: &ContractRow, audit: &[AuditEvent]) -> Result<()> {
        in_tx!(self, |tx, _b| {
            let n = sqlx::query("UPDATE studies SET state = 'contracted', updated_at = $1 WHERE id = $2 AND state = 'approved'")
                .bind(c.recorded_at)
                .bind(&c.study)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict(format!(
                    "study `{}` is not approved and waiting for its contract",
                    c.study
                )));
            }
            sqlx::query(
                "INSERT INTO contracts (study, number, concluded_on, declarations, measures_recorded, recorded_by, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&c.study)
            .bind(&c.number)
            .bind(&c.concluded_on)
            .bind(&c.declarations)
            .bind(i64::from(c.measures_recorded))
            .bind(&c.recorded_by)
            .bind(c.recorded_at)
            .execute(&mut *tx)
            .await?;
            push_audit!(self, tx, audit);
        });
        Ok(())
    }

    pub async fn contract(&self, study: &str) -> Result<Option<ContractRow>> {
        Ok(on_pool!(self, |p| {
            match sqlx::query(
                "SELECT study, number, concluded_on, declarations, measures_recorded, recorded_by, recorded_at FROM contracts WHERE study = $1",
            )
            .bind(study)
            .fetch_optional(p)
            .await?
            {
                Some(r) => Some(ContractRow {
                    study: r.try_get("study")?,
                    number: r.try_get("number")?,
                    concluded_on: r.try_get("concluded_on")?,
                    declarations: r.try_get("declarations")?,
                    measures_recorded: r.try_get::<i64, _>("measures_recorded")? != 0,
                    recorded_by: r.try_get("recorded_by")?,
                    recorded_at: r.try_get("recorded_at")?,
                }),
                None => None,
            }
        }))
    }
}

/// A PostgreSQL connection keeps buffers as large as the largest message it has sent or read,
/// for as long as it lives in the pool: after a dataset of hundreds of megabytes, one such
/// connection per worker would hold as much again. Above this size the connection is closed
/// instead of returned (the pool opens a fresh one when it needs it). SQLite keeps no such
/// buffers: its connections stay pooled.
const RETIRE_AFTER: usize = 8 << 20;

fn retire_if_large<DB: sqlx::Database>(
    backend: crate::Backend,
    c: &mut sqlx::pool::PoolConnection<DB>,
    bytes: usize,
) {
    if backend == crate::Backend::Postgres && bytes > RETIRE_AFTER {
        c.close_on_drop();
    }
}
