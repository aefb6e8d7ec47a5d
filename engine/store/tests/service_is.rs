//! The Service IS read as an SQL source with a column mapping, on SQLite and PostgreSQL.

use std::collections::BTreeMap;

use serde_json::json;
use studyflow_store::service_is::{ServiceIsSource, read};

const TABLE: &str = "CREATE TABLE klienti (kods TEXT, iepr_kods TEXT, dzimums TEXT, dzim_gads INTEGER, sakums TEXT, aktivs INTEGER)";
const ROWS: &str = "INSERT INTO klienti VALUES
    ('290758-10403', NULL, 'male', 1958, '2026-03-02', 1),
    ('325035-11782', '010180-10006', 'female', 1990, '2026-04-15', 1),
    ('111111-11111', NULL, 'male', 1970, '2019-01-01', 0)";

fn source(url: String) -> ServiceIsSource {
    ServiceIsSource {
        url,
        query: "SELECT kods, iepr_kods, dzimums, dzim_gads, sakums FROM klienti WHERE aktivs = 1 ORDER BY sakums".into(),
        columns: BTreeMap::from([
            ("personal_code".into(), "kods".into()),
            ("previous_personal_code".into(), "iepr_kods".into()),
            ("sex".into(), "dzimums".into()),
            ("birth_year".into(), "dzim_gads".into()),
            ("supervision_start_date".into(), "sakums".into()),
            ("region".into(), "novads".into()),
        ]),
    }
}

async fn check(url: String) {
    let src = source(url);
    let rows = read(
        &src,
        &[
            "personal_code",
            "previous_personal_code",
            "birth_year",
            "supervision_start_date",
        ],
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["personal_code"], json!("290758-10403"));
    assert_eq!(rows[0]["previous_personal_code"], json!(null));
    assert_eq!(rows[1]["birth_year"], json!(1990));
    assert_eq!(rows[1]["supervision_start_date"], json!("2026-04-15"));
    assert!(!rows[0].contains_key("sex"), "only what is wanted");
    let e = read(&src, &["case_number"]).await.unwrap_err();
    assert!(
        e.to_string().contains("maps no column to `case_number`"),
        "{e}"
    );
    let e = read(&src, &["region"]).await.unwrap_err();
    assert!(e.to_string().contains("returns no column `novads`"), "{e}");
}

#[tokio::test]
async fn sqlite_service_is() {
    let dir = std::env::temp_dir().join(format!("studyflow-service-is-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("service-is.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query(TABLE).execute(&pool).await.unwrap();
    sqlx::query(ROWS).execute(&pool).await.unwrap();
    pool.close().await;
    check(path.to_string_lossy().into_owned()).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn postgres_service_is() {
    let Some(schema) = studyflow_store::testing::postgres_schema("service_is").await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&schema.url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(TABLE.replace("INTEGER", "BIGINT")))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(ROWS).execute(&pool).await.unwrap();
    pool.close().await;
    check(schema.url.clone()).await;
}
