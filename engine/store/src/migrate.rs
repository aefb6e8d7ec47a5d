//! Schema migrations: one folder per backend, applied in order on open, each in a
//! transaction with the version bump; a database newer than this build is refused untouched.

use crate::{Backend, Result, SCHEMA_VERSION, Store, StoreError, in_tx, on_pool};

const SQLITE: &[&str] = &[
    include_str!("../migrations/sqlite/0001_initial.sql"),
    include_str!("../migrations/sqlite/0002_note_recipient.sql"),
    include_str!("../migrations/sqlite/0003_audit_checkpoints.sql"),
    include_str!("../migrations/sqlite/0004_accounts.sql"),
    include_str!("../migrations/sqlite/0005_status_index.sql"),
    include_str!("../migrations/sqlite/0006_audit_by_study.sql"),
    include_str!("../migrations/sqlite/0007_preferences.sql"),
    include_str!("../migrations/sqlite/0008_open_tasks.sql"),
    include_str!("../migrations/sqlite/0009_awaiting_files.sql"),
    include_str!("../migrations/sqlite/0010_device_grants.sql"),
    include_str!("../migrations/sqlite/0011_oidc_sign_ins.sql"),
    include_str!("../migrations/sqlite/0012_attempts.sql"),
    include_str!("../migrations/sqlite/0013_enrolment.sql"),
    include_str!("../migrations/sqlite/0014_second_factor.sql"),
    include_str!("../migrations/sqlite/0015_audit_payloads.sql"),
];
const POSTGRES: &[&str] = &[
    include_str!("../migrations/postgres/0001_initial.sql"),
    include_str!("../migrations/postgres/0002_note_recipient.sql"),
    include_str!("../migrations/postgres/0003_audit_checkpoints.sql"),
    include_str!("../migrations/postgres/0004_accounts.sql"),
    include_str!("../migrations/postgres/0005_status_index.sql"),
    include_str!("../migrations/postgres/0006_audit_by_study.sql"),
    include_str!("../migrations/postgres/0007_preferences.sql"),
    include_str!("../migrations/postgres/0008_open_tasks.sql"),
    include_str!("../migrations/postgres/0009_awaiting_files.sql"),
    include_str!("../migrations/postgres/0010_device_grants.sql"),
    include_str!("../migrations/postgres/0011_oidc_sign_ins.sql"),
    include_str!("../migrations/postgres/0012_attempts.sql"),
    include_str!("../migrations/postgres/0013_enrolment.sql"),
    include_str!("../migrations/postgres/0014_second_factor.sql"),
    include_str!("../migrations/postgres/0015_audit_payloads.sql"),
];

// Each backend has a migration for every version this build knows, and no more.
const _: () =
    assert!(SQLITE.len() as i64 == SCHEMA_VERSION && POSTGRES.len() as i64 == SCHEMA_VERSION);

/// Held by a PostgreSQL transaction that migrates, so workers starting together migrate once.
const MIGRATION_LOCK: i64 = 0x5354_5544_594d_4947;

/// Whether the `meta` table exists (a count of 0 or 1).
fn meta_table_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'meta'"
        }
    }
}

const VERSION_SQL: &str = "SELECT value FROM meta WHERE key = 'schema_version'";

impl Store {
    /// The database's schema version: 0 for an empty database.
    pub async fn schema_version(&self) -> Result<i64> {
        let target = self.target().to_owned();
        let exists: i64 = on_pool!(self, |p| {
            sqlx::query_scalar(meta_table_sql(self.backend()))
                .fetch_one(p)
                .await
                .map_err(|e| StoreError::from_sqlx_at(&target, e))?
        });
        if exists == 0 {
            return Ok(0);
        }
        let v: Option<String> = on_pool!(self, |p| {
            sqlx::query_scalar(VERSION_SQL).fetch_optional(p).await?
        });
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    pub(crate) async fn migrate(&self) -> Result<()> {
        let current = self.schema_version().await?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: current,
                known: SCHEMA_VERSION,
            });
        }
        if current == SCHEMA_VERSION {
            return Ok(());
        }
        if current == 0 {
            // No studyflow schema: the database (PostgreSQL: the schema) must be empty, not
            // another application's, whose tables studyflow's would join.
            let sql = match self.backend() {
                Backend::Sqlite => {
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                }
                Backend::Postgres => {
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
                }
            };
            let tables: i64 = on_pool!(self, |p| { sqlx::query_scalar(sql).fetch_one(p).await? });
            // Tables, and still no schema version: not another studyflow migrating meanwhile.
            if tables > 0 && self.schema_version().await? == 0 {
                return Err(StoreError::NotFound(format!(
                    "{} holds {tables} table(s) and no studyflow schema: another application's; studyflow leaves it untouched: give a database (or schema) of its own",
                    self.target
                )));
            }
        }
        let migrations = match self.backend() {
            Backend::Sqlite => SQLITE,
            Backend::Postgres => POSTGRES,
        };
        in_tx!(self, |tx, backend| {
            if backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            // Another process may have migrated while this one waited for the lock.
            let has_meta: i64 = sqlx::query_scalar(meta_table_sql(backend))
                .fetch_one(&mut *tx)
                .await?;
            let now: i64 = if has_meta == 0 {
                0
            } else {
                let v: Option<String> = sqlx::query_scalar(VERSION_SQL)
                    .fetch_optional(&mut *tx)
                    .await?;
                v.and_then(|v| v.parse().ok()).unwrap_or(0)
            };
            for (i, sql) in migrations.iter().enumerate() {
                let version = i as i64 + 1;
                if version <= now {
                    continue;
                }
                sqlx::raw_sql(*sql).execute(&mut *tx).await?;
                crate::put_meta!(tx, "schema_version", version.to_string());
            }
        });
        Ok(())
    }
}
