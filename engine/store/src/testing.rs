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
