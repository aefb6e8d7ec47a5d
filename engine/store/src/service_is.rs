//! The Service IS as an SQL source (MK403 p.9, p.10, p.17.1): the sample is read from the
//! Service's own database — SQLite or PostgreSQL — with a query and a mapping from the query's
//! columns to catalogue keys, both from the configuration. Only the mapped columns are read;
//! text and whole numbers come back as JSON values under their catalogue keys. Dates are read as
//! text `YYYY-MM-DD`: on PostgreSQL cast them in the query (`start_date::text`).

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::{Column, Row};

use crate::{Result, StoreError};

/// Where the sample is and how its columns map to catalogue keys.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ServiceIsSource {
    /// `sqlite://PATH`, a file path, or `postgres://…` — the Service IS, read only.
    pub url: String,
    /// The query selecting the sample, e.g. `SELECT … FROM clients WHERE …`.
    pub query: String,
    /// Catalogue key → column of the query's result.
    pub columns: BTreeMap<String, String>,
}

fn cell<R: Row>(row: &R, column: &str) -> std::result::Result<Value, sqlx::Error>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i32>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    if let Ok(v) = row.try_get::<Option<i64>, _>(column) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<i32>, _>(column) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    Ok(row
        .try_get::<Option<String>, _>(column)?
        .map_or(Value::Null, Value::String))
}

/// Reads the sample: one map per row, catalogue key → value, for the mapped keys in `wanted`.
pub async fn read(
    source: &ServiceIsSource,
    wanted: &[&str],
) -> Result<Vec<BTreeMap<String, Value>>> {
    let mapping: Vec<(&str, &str)> = wanted
        .iter()
        .map(|k| {
            source
                .columns
                .get(*k)
                .map(|c| (*k, c.as_str()))
                .ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "the Service IS configuration maps no column to `{k}`"
                    ))
                })
        })
        .collect::<Result<_>>()?;
    let sql = sqlx::AssertSqlSafe(source.query.clone());
    let target = crate::redact(&source.url);
    macro_rules! rows_of {
        ($rows:expr) => {{
            let mut out = Vec::with_capacity($rows.len());
            if let Some(first) = $rows.first() {
                for (_, column) in &mapping {
                    if !first.columns().iter().any(|c| c.name() == *column) {
                        return Err(StoreError::NotFound(format!(
                            "the Service IS query returns no column `{column}`"
                        )));
                    }
                }
            }
            for row in &$rows {
                let mut values = BTreeMap::new();
                for (key, column) in &mapping {
                    values.insert((*key).to_owned(), cell(row, column)?);
                }
                out.push(values);
            }
            out
        }};
    }
    if source.url.starts_with("postgres://") || source.url.starts_with("postgresql://") {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&source.url)
            .await
            .map_err(|e| StoreError::Open {
                target: target.clone(),
                source: e,
            })?;
        let rows = sqlx::query(sql).fetch_all(&pool).await?;
        let out = rows_of!(rows);
        pool.close().await;
        Ok(out)
    } else {
        let path = source
            .url
            .strip_prefix("sqlite://")
            .or_else(|| source.url.strip_prefix("sqlite:"))
            .unwrap_or(&source.url);
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .read_only(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open {
                target: target.clone(),
                source: e,
            })?;
        let rows = sqlx::query(sql).fetch_all(&pool).await?;
        let out = rows_of!(rows);
        pool.close().await;
        Ok(out)
    }
}
