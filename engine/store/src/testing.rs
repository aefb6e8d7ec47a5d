//! For the tests of every crate: a fresh PostgreSQL schema on the test server
//! (`STUDYFLOW_TEST_POSTGRES`, by default 127.0.0.1:5432, database `test`), dropped when done.
//! Without a server the caller is told loudly and skips; with `CI` set that is a failure.

/// The test server, unless `STUDYFLOW_TEST_POSTGRES` names another.
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of its own; dropped (best effort) when this goes out of scope.
pub struct PgSchema {
    /// A URL whose connections use the schema.
    pub url: String,
    base: String,
    schema: String,
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A fresh schema named after `label`, or `None` (said on stderr) when no server answers;
/// under `CI` a missing server panics.
pub async fn postgres_schema(label: &str) -> Option<PgSchema> {
    let base = std::env::var("STUDYFLOW_TEST_POSTGRES").unwrap_or_else(|_| POSTGRES.to_owned());
    let pool = match sqlx::PgPool::connect(&base).await {
        Ok(p) => p,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is required in CI and did not answer at {base}: {e}");
            }
            eprintln!(
                "\n*** SKIPPED the PostgreSQL part of {label}: no server at {base} ({e}) ***\n"
            );
            return None;
        }
    };
    let schema = format!(
        "{label}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    for sql in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect("create the test schema");
    }
    pool.close().await;
    Some(PgSchema {
        url: format!("{base}?options=-c%20search_path%3D{schema}"),
        base,
        schema,
    })
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.schema.clone());
        // Drop cannot await: a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&base).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP SCHEMA IF EXISTS {schema} CASCADE"
                        )))
                        .execute(&pool)
                        .await;
                    }
                });
            }
        })
        .join();
    }
}

use crate::{Result, on_pool};

/// What only tests and benchmarks do with a store: tamper with it, play a newer schema, time raw
/// commits. Built with the `testing` feature alone, never into the production binary.
impl crate::Store {
    /// This store as a process without the audit key sees it.
    pub fn without_audit_signing(mut self) -> crate::Store {
        self.audit_signing = None;
        self
    }

    /// Sets the recorded schema version (tests use it to play a newer database).
    pub async fn force_schema_version(&self, version: i64) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("UPDATE meta SET value = $1 WHERE key = 'schema_version'")
                .bind(version.to_string())
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// The baseline of the engine benchmark: `n` single-row insert-and-commit transactions
    /// into a scratch table, on `connections` connections at once; returns the elapsed time.
    pub async fn raw_commit_benchmark(
        &self,
        n: usize,
        connections: usize,
    ) -> Result<std::time::Duration> {
        on_pool!(self, |p| {
            sqlx::query("DROP TABLE IF EXISTS bench_raw")
                .execute(p)
                .await?;
            sqlx::query("CREATE TABLE bench_raw (id BIGINT PRIMARY KEY, payload TEXT NOT NULL)")
                .execute(p)
                .await?;
        });
        let start = std::time::Instant::now();
        let per = n.div_ceil(connections.max(1));
        let mut handles = Vec::new();
        for c in 0..connections.max(1) {
            let store = self.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..per {
                    let id = (c * per + i) as i64;
                    on_pool!(store, |p| {
                        sqlx::query("INSERT INTO bench_raw (id, payload) VALUES ($1, $2)")
                            .bind(id)
                            .bind("step transition")
                            .execute(p)
                            .await?;
                    });
                }
                Ok::<(), crate::StoreError>(())
            }));
        }
        for h in handles {
            h.await
                .map_err(|e| crate::StoreError::Conflict(format!("benchmark task: {e}")))??;
        }
        let elapsed = start.elapsed();
        on_pool!(self, |p| {
            sqlx::query("DROP TABLE bench_raw").execute(p).await?;
        });
        Ok(elapsed)
    }

    /// Runs one raw statement: for tests that tamper with the database on purpose.
    pub async fn execute_raw_for_tests(&self, sql: &str) -> Result<u64> {
        Ok(on_pool!(self, |p| {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(p)
                .await?
                .rows_affected()
        }))
    }
}
