//! `Store::contents` hands a scan every text and blob cell of every table, on both backends:
//! what the demo's identifier scan reads of a PostgreSQL database, which is no file.

use studyflow_store::{Store, Submission};

async fn check(url: &str, label: &str) {
    let store = Store::open(url).await.expect("open");
    store
        .submit(
            &Submission {
                study: "scan-me".into(),
                version: 1,
                spec: b"title: a spec that names 010190-12345 by mistake".to_vec(),
                plan_hash: "sha256:00".into(),
                plan_json: "{}".into(),
                submitted_by: "Submitting Researcher".into(),
                at: 1,
            },
            &[],
        )
        .await
        .expect("submit");
    // More rows than a page, so the paging is read through.
    for i in 0..1_203 {
        store
            .put_dataset("scan-me", &format!("d{i:05}"), false, b"plain cell", 1)
            .await
            .expect("dataset");
    }
    store
        .put_dataset("scan-me", "zz-last", true, b"\x00blob 32123456789\x01", 1)
        .await
        .expect("dataset");
    // Datasets larger than a pooled PostgreSQL connection keeps (its connection is closed after
    // them) go in and come back whole, one after another, and the pool goes on serving.
    let big: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 251) as u8).collect();
    for round in 0..3 {
        let name = format!("big-{round}");
        store
            .put_dataset("scan-me", &name, true, &big, 2)
            .await
            .expect("big dataset");
        let back = store.dataset("scan-me", &name).await.expect("read back");
        assert!(back.as_deref() == Some(&big[..]), "{label}: {name} whole");
        store
            .delete_datasets("scan-me", &[name.as_str()])
            .await
            .expect("delete");
    }
    let mut cells: Vec<Vec<u8>> = Vec::new();
    store
        .contents(|c| cells.push(c.to_vec()))
        .await
        .expect("contents");
    let has = |needle: &[u8]| {
        cells
            .iter()
            .any(|c| c.windows(needle.len()).any(|w| w == needle))
    };
    assert!(
        has(b"010190-12345"),
        "{label}: the spec's text (a blob column)"
    );
    assert!(
        has(b"32123456789"),
        "{label}: the last dataset, past the first pages"
    );
    assert!(has(b"Submitting Researcher"), "{label}: text columns");
    assert_eq!(
        cells
            .iter()
            .filter(|c| c.as_slice() == b"plain cell")
            .count(),
        1_203,
        "{label}: every row once"
    );
    store.close().await;
}

#[tokio::test]
async fn every_cell_of_every_table_reaches_the_scan() {
    let dir = std::env::temp_dir().join(format!("sf-contents-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scan.db");
    check(&format!("sqlite://{}", path.display()), "sqlite").await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(schema) = studyflow_store::testing::postgres_schema("contents").await {
        check(&schema.url, "postgres").await;
    }
}

/// Another application's SQLite database is left untouched (no studyflow tables, no WAL);
/// an empty file is no studyflow database to read; a new one is its owner's alone.
#[tokio::test]
async fn another_applications_database_is_left_untouched() {
    let dir = std::env::temp_dir().join(format!("sf-foreign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let foreign = dir.join("notes.db");
    {
        use sqlx::{ConnectOptions, Connection};
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&foreign)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE notes (x TEXT)")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    // Chromium's history has a `meta (key, value)` table of its own.
    let chromium = dir.join("History");
    {
        use sqlx::{ConnectOptions, Connection};
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&chromium)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        for sql in [
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
            "INSERT INTO meta VALUES ('version', '42')",
            "CREATE TABLE urls (url TEXT)",
        ] {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        c.close().await.unwrap();
    }
    let chromium_before = std::fs::read(&chromium).unwrap();
    let Err(e) = Store::open(&chromium.display().to_string()).await else {
        panic!("a browser's history opened as a studyflow database");
    };
    assert!(e.to_string().contains("another application's"), "{e}");
    assert_eq!(std::fs::read(&chromium).unwrap(), chromium_before);
    // A link to nothing is not a file to create (nor a loop).
    #[cfg(unix)]
    {
        let dangling = dir.join("dangling.db");
        std::os::unix::fs::symlink(dir.join("nowhere/x.db"), &dangling).unwrap();
        let Err(e) = Store::open(&dangling.display().to_string()).await else {
            panic!("a dangling link opened");
        };
        assert!(e.to_string().contains("link to nothing"), "{e}");
    }
    let before = std::fs::read(&foreign).unwrap();
    let url = foreign.display().to_string();
    for open in [Store::open(&url).await, Store::open_existing(&url).await] {
        let Err(e) = open else {
            panic!("another application's database opened");
        };
        assert!(
            e.to_string().contains("another application's database"),
            "{e}"
        );
    }
    assert_eq!(
        std::fs::read(&foreign).unwrap(),
        before,
        "not a byte changed"
    );
    assert!(!dir.join("notes.db-wal").exists(), "no WAL made");
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let Err(e) = Store::open_existing(&empty.display().to_string()).await else {
        panic!("an empty file opened as a database");
    };
    assert!(e.to_string().contains("not a studyflow database"), "{e}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    let fresh = dir.join("fresh.db");
    let store = Store::open(&fresh.display().to_string()).await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    }
    store.close().await;
    // And it is studyflow's now: opened again as an existing database.
    Store::open_existing(&fresh.display().to_string())
        .await
        .unwrap()
        .close()
        .await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A PostgreSQL server that accepts the connection and never answers is reported as such, with
/// its address and no password, instead of hanging.
#[tokio::test]
async fn a_postgres_server_that_does_not_answer_is_reported() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://studyflow:secret-password@127.0.0.1:{port}/nothing");
    let Err(e) = Store::open(&url).await else {
        panic!("a silent server opened");
    };
    let text = e.to_string();
    assert!(
        matches!(e, studyflow_store::StoreError::Unanswered { .. }),
        "{text}"
    );
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("secret-password"), "{text}");
    drop(silent);
}

/// On PostgreSQL, a schema holding another application's tables is refused untouched.
#[tokio::test]
async fn another_applications_postgres_schema_is_left_untouched() {
    let Some(schema) = studyflow_store::testing::postgres_schema("foreign").await else {
        return;
    };
    {
        let pool = sqlx::PgPool::connect(&schema.url).await.unwrap();
        sqlx::query("CREATE TABLE invoices (n INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let Err(e) = Store::open(&schema.url).await else {
        panic!("another application's schema opened");
    };
    assert!(e.to_string().contains("another application's"), "{e}");
    let pool = sqlx::PgPool::connect(&schema.url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 1, "nothing added");
    pool.close().await;
}
