//! Reading a study's audit (`Store::audit_of`) on both backends: the study's own events and its
//! runs', never a study whose id merely begins the same; an actor by login, signed in locally
//! or at the identity provider; a time window; pages by sequence number.

use studyflow_store::{AuditEvent, AuditFilter, Store};

async fn reads(store: Store) {
    let events = [
        (10, "alice", "study.submitted", "a"),
        (
            20,
            "alice (https://idp.example sub-1)",
            "task.completed",
            "a/quality-check",
        ),
        (30, "engine", "run.done", "a/follow-up/S-1"),
        (40, "alice", "study.submitted", "ab"),
        (50, "alicex", "study.approved", "a"),
        (60, "bob", "study.submitted", "b/a"),
    ]
    .map(|(at, actor, action, object)| AuditEvent::new(at, actor, action, object, "p.3", "{}"));
    store.append_audit(&events).await.unwrap();
    store.seal_audit().await.unwrap();
    let objects = |rows: Vec<studyflow_store::AuditRow>| {
        rows.into_iter()
            .map(|r| (r.event.at, r.event.object))
            .collect::<Vec<_>>()
    };
    let all = store
        .audit_of("a", &AuditFilter::default(), 0, 100)
        .await
        .unwrap();
    assert_eq!(
        objects(all.clone()),
        [
            (10, "a".to_owned()),
            (20, "a/quality-check".to_owned()),
            (30, "a/follow-up/S-1".to_owned()),
            (50, "a".to_owned())
        ]
    );
    let alice = AuditFilter {
        actor: Some("alice".into()),
        ..AuditFilter::default()
    };
    let got = store.audit_of("a", &alice, 0, 100).await.unwrap();
    assert_eq!(got.iter().map(|r| r.event.at).collect::<Vec<_>>(), [10, 20]);
    let window = AuditFilter {
        action: Some("run.done".into()),
        from: Some(30),
        until: Some(31),
        ..AuditFilter::default()
    };
    let got = store.audit_of("a", &window, 0, 100).await.unwrap();
    assert_eq!(objects(got), [(30, "a/follow-up/S-1".to_owned())]);
    let closed = AuditFilter {
        from: Some(31),
        until: Some(50),
        ..AuditFilter::default()
    };
    assert!(
        store
            .audit_of("a", &closed, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Pages: the second starts after the first's last sequence number.
    let first = store
        .audit_of("a", &AuditFilter::default(), 0, 2)
        .await
        .unwrap();
    let second = store
        .audit_of("a", &AuditFilter::default(), first[1].seq, 2)
        .await
        .unwrap();
    assert_eq!([first, second].concat(), all);
}

#[tokio::test]
async fn a_studys_audit_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("sf-audit-reads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    reads(Store::open(dir.join("db").to_str().unwrap()).await.unwrap()).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_studys_audit_on_postgres() {
    let Some(schema) = studyflow_store::testing::postgres_schema("audit_reads").await else {
        return;
    };
    reads(Store::open(&schema.url).await.unwrap()).await;
}
