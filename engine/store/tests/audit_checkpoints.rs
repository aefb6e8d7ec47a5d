//! The signed audit (issue #12) against a database writer, on both backends: a row rewritten
//! with every later hash and the head recomputed passes the chain but not the checkpoints;
//! checkpoints recomputed by the writer are not signed by the audit key; the chain deleted with
//! its head and checkpoints is caught by the checkpoint log outside the database.

use studyflow_store::row_hash;
use studyflow_store::tlog::AuditSigner;
use studyflow_store::{AuditEvent, AuditSigning, AuditTrust, Store, Verification};

fn event(i: i64) -> AuditEvent {
    AuditEvent::new(
        i,
        "operator",
        "study.approved",
        format!("study-{i}"),
        "p.3",
        "{}",
    )
}

fn broken(v: Verification) -> (i64, String) {
    match v {
        Verification::Broken { seq, reason } => (seq, reason),
        other => panic!("not broken: {other:?}"),
    }
}

/// The store signing with a new key (in `dir/key`) and a log (`dir/audit.checkpoints`), nine
/// events sealed in three seals; what `audit verify` trusts.
async fn signed(store: Store, label: &str) -> (Store, std::path::PathBuf, AuditTrust) {
    let dir = std::env::temp_dir().join(format!("sf-audit-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let signer = AuditSigner::generate("studyflow.test/audit").unwrap();
    signer.write_new(&dir.join("key")).unwrap();
    let trust = AuditTrust {
        verifier: Some(signer.verifier()),
        log: Some(dir.join("audit.checkpoints")),
        witnesses: Vec::new(),
        quorum: None,
    };
    let store = store.with_audit_signing(AuditSigning {
        signer,
        log: trust.log.clone(),
    });
    for seal in 0..3 {
        let events: Vec<AuditEvent> = (0..3).map(|i| event(seal * 3 + i)).collect();
        store.append_audit(&events).await.unwrap();
    }
    (store, dir, trust)
}

async fn tampering_is_caught(store: Store, label: &str) {
    let (store, dir, trust) = signed(store, label).await;
    let (verifier, log) = (trust.verifier.clone().unwrap(), trust.log.clone().unwrap());
    assert_eq!(
        store.verify_audit_with(&trust).await.unwrap(),
        Verification::Intact {
            rows: 9,
            pending: 0,
            checkpoints: 6,
            refused: 0,
            uncounted: Vec::new(),
        },
        "three checkpoints in the database, the same three in the log"
    );

    // A writer rewrites row 5 and recomputes every later hash and the head: the chain holds,
    // the signed checkpoints do not.
    store
        .execute_raw_for_tests("UPDATE audit SET actor = 'someone else' WHERE seq = 5")
        .await
        .unwrap();
    let mut prev = store.audit_rows(3, 1).await.unwrap()[0].hash.clone();
    for row in store.audit_rows(4, 100).await.unwrap() {
        let hash = row_hash(&prev, row.seq, &row.event);
        store
            .execute_raw_for_tests(&format!(
                "UPDATE audit SET prev_hash = '{prev}', hash = '{hash}' WHERE seq = {}",
                row.seq
            ))
            .await
            .unwrap();
        prev = hash;
    }
    store
        .execute_raw_for_tests(&format!(
            "UPDATE meta SET value = '9:{prev}' WHERE key = 'audit_head'"
        ))
        .await
        .unwrap();
    let (seq, reason) = broken(store.verify_audit().await.unwrap());
    assert_eq!(seq, 6, "the first checkpoint covering row 5: {reason}");
    assert!(reason.contains("history rewritten"), "{reason}");
    // Nor will a signing sealer extend it once the stored tree is made to match: the log's last
    // checkpoint is not the root of the rows it covers.
    let mut forged = studyflow_store::tlog::Frontier::default();
    for row in store.audit_rows(0, 100).await.unwrap() {
        forged.push(studyflow_store::leaf_hash(row.seq, &row.event));
    }
    store
        .execute_raw_for_tests(&format!(
            "UPDATE meta SET value = '{}' WHERE key = 'audit_frontier'",
            forged.encode()
        ))
        .await
        .unwrap();
    let e = store.append_audit(&[event(100)]).await.unwrap_err();
    assert!(
        matches!(e, studyflow_store::StoreError::AuditTampered(_)),
        "{e}"
    );
    assert_eq!(
        store.audit_rows(9, 10).await.unwrap().len(),
        0,
        "nothing sealed"
    );

    // The writer also replaces the checkpoints with ones of the rewritten tree, signed with a
    // key of its own: the roots match, the audit key's signature is missing.
    let forger = AuditSigner::generate("studyflow.test/audit").unwrap();
    let mut frontier = studyflow_store::tlog::Frontier::default();
    for row in store.audit_rows(0, 100).await.unwrap() {
        frontier.push(studyflow_store::leaf_hash(row.seq, &row.event));
        if row.seq % 3 == 0 {
            let note = forger.checkpoint(frontier.size(), &frontier.root());
            store
                .execute_raw_for_tests(&format!(
                    "UPDATE audit_checkpoints SET note = '{note}' WHERE tree_size = {}",
                    row.seq
                ))
                .await
                .unwrap();
        }
    }
    let database_only = AuditTrust {
        verifier: Some(verifier.clone()),
        log: None,
        witnesses: Vec::new(),
        quorum: None,
    };
    let (_, reason) = broken(store.verify_audit_with(&database_only).await.unwrap());
    assert!(reason.contains("not signed by the audit key"), "{reason}");

    // The writer deletes the whole chain, its head, tree and checkpoints: the database alone
    // looks like an empty log; the log outside it says otherwise.
    for sql in [
        "DELETE FROM audit",
        "DELETE FROM audit_checkpoints",
        "DELETE FROM meta WHERE key IN ('audit_head', 'audit_frontier')",
    ] {
        store.execute_raw_for_tests(sql).await.unwrap();
    }
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        Verification::Intact { rows: 0, .. }
    ));
    let (_, reason) = broken(store.verify_audit_with(&trust).await.unwrap());
    assert!(
        reason.contains("rows, the chain has 0 (rows deleted)"),
        "{reason}"
    );
    // Nor does an empty log pass for a signed one.
    std::fs::write(&log, "").unwrap();
    let (_, reason) = broken(store.verify_audit_with(&trust).await.unwrap());
    assert!(reason.contains("holds no checkpoint"), "{reason}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Events slipped into the outbox or the chain, and the chain cut back to a checkpoint, on a
/// store that signs.
async fn injections_and_cuts_are_caught(store: Store, label: &str) {
    let (store, dir, trust) = signed(store, &format!("inj-{label}")).await;
    // A row slipped into the outbox carries no MAC: the next seal refuses it, keeps it apart
    // and seals that it did.
    store
        .execute_raw_for_tests(
            "INSERT INTO audit_outbox (at, actor, action, object, point, detail) VALUES (50, 'intruder', 'study.approved', 'study-x', 'p.3', '{}')",
        )
        .await
        .unwrap();
    store.append_audit(&[event(9)]).await.unwrap();
    let rows = store.audit_rows(9, 10).await.unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.event.action.as_str()).collect();
    assert_eq!(actions, ["study.approved", "audit.events_refused"]);
    assert_eq!(rows[0].event.actor, "operator");
    assert!(matches!(
        store.verify_audit_with(&trust).await.unwrap(),
        Verification::Intact {
            rows: 11,
            refused: 1,
            ..
        }
    ));
    // A genuine sealed event copied into the outbox, MAC and all, is a replay: refused too.
    store
        .execute_raw_for_tests(
            "INSERT INTO audit_outbox (at, actor, action, object, point, detail, mac) SELECT at, actor, action, object, point, detail, mac FROM audit WHERE seq = 5",
        )
        .await
        .unwrap();
    // A process without the key does not seal a signed log: its event waits, and the next
    // signing seal refuses it (no MAC) instead of the chain taking it unauthenticated.
    let keyless = store.clone().without_audit_signing();
    keyless.append_audit(&[event(70)]).await.unwrap();
    assert_eq!(
        keyless.audit_rows(11, 10).await.unwrap().len(),
        0,
        "not sealed"
    );
    store.seal_audit().await.unwrap();
    let more = store.audit_rows(11, 10).await.unwrap();
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].event.action, "audit.events_refused");
    assert!(
        more[0].event.detail.contains("\"count\":2"),
        "{}",
        more[0].event.detail
    );
    assert!(matches!(
        store.verify_audit_with(&trust).await.unwrap(),
        Verification::Intact {
            rows: 12,
            refused: 3,
            ..
        }
    ));
    // What was refused stays as the refusals list it: one deleted from audit_refused is seen.
    store
        .execute_raw_for_tests(
            "DELETE FROM audit_refused WHERE id = (SELECT MIN(id) FROM audit_refused)",
        )
        .await
        .unwrap();
    let (_, reason) = broken(store.verify_audit_with(&trust).await.unwrap());
    assert!(reason.contains("audit_refused holds 2 events"), "{reason}");
    let rows = store.audit_rows(0, 100).await.unwrap();
    let rows = &rows[9..];
    // A row put straight into the chain after the last checkpoint, hashes and head right:
    // the next signing seal refuses to go on.
    let head = rows[2].clone();
    let planted = AuditEvent::new(60, "intruder", "study.approved", "study-y", "p.3", "{}");
    let hash = row_hash(&head.hash, 13, &planted);
    store
        .execute_raw_for_tests(&format!(
            "INSERT INTO audit (seq, at, actor, action, object, point, detail, prev_hash, hash) VALUES (13, 60, 'intruder', 'study.approved', 'study-y', 'p.3', '{{}}', '{}', '{hash}')",
            head.hash
        ))
        .await
        .unwrap();
    store
        .execute_raw_for_tests(&format!(
            "UPDATE meta SET value = '13:{hash}' WHERE key = 'audit_head'"
        ))
        .await
        .unwrap();
    let e = store.append_audit(&[event(10)]).await.unwrap_err();
    assert!(e.to_string().contains("no valid MAC"), "{e}");
    store
        .execute_raw_for_tests("DELETE FROM audit WHERE seq = 13")
        .await
        .unwrap();
    store
        .execute_raw_for_tests(&format!(
            "UPDATE meta SET value = '12:{}' WHERE key = 'audit_head'",
            head.hash
        ))
        .await
        .unwrap();
    store.seal_audit().await.unwrap();
    // The tail cut back to a checkpoint, with its tree: a signing sealer refuses to sign the
    // shorter chain — by its log, or, one whose log is new (another host), by the newest
    // checkpoint in the database.
    let other_log = dir.join("other-host.checkpoints");
    let other = store.clone().with_audit_signing(AuditSigning {
        signer: AuditSigner::parse(&std::fs::read_to_string(dir.join("key")).unwrap()).unwrap(),
        log: Some(other_log),
    });
    let before = store.audit_rows(0, 100).await.unwrap().len();
    assert_eq!(before, 13);
    for sql in [
        "DELETE FROM audit WHERE seq > 6",
        "DELETE FROM meta WHERE key = 'audit_frontier'",
    ] {
        store.execute_raw_for_tests(sql).await.unwrap();
    }
    let six = store.audit_rows(5, 1).await.unwrap()[0].hash.clone();
    store
        .execute_raw_for_tests(&format!(
            "UPDATE meta SET value = '6:{six}' WHERE key = 'audit_head'"
        ))
        .await
        .unwrap();
    for sealer in [&store, &other] {
        let e = sealer.append_audit(&[event(11)]).await.unwrap_err();
        assert!(
            matches!(e, studyflow_store::StoreError::AuditTampered(_)),
            "{e}"
        );
    }
    // With the database's checkpoints deleted too, the sealer with the log still refuses.
    store
        .execute_raw_for_tests("DELETE FROM audit_checkpoints WHERE tree_size > 6")
        .await
        .unwrap();
    let e = store.append_audit(&[event(12)]).await.unwrap_err();
    assert!(e.to_string().contains("rows deleted"), "{e}");
    let (_, reason) = broken(store.verify_audit_with(&trust).await.unwrap());
    assert!(reason.contains("rows deleted"), "{reason}");

    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_database_writer_cannot_rewrite_the_audit_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("sf-audit-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(dir.join("s.db").to_str().unwrap())
        .await
        .unwrap();
    tampering_is_caught(store, "sqlite").await;
    let store = Store::open(dir.join("t.db").to_str().unwrap())
        .await
        .unwrap();
    injections_and_cuts_are_caught(store, "sqlite").await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_database_writer_cannot_rewrite_the_audit_on_postgres() {
    let Some(schema) = studyflow_store::testing::postgres_schema("audit_tlog").await else {
        return;
    };
    let store = Store::open(&schema.url).await.unwrap();
    tampering_is_caught(store, "postgres").await;
    let Some(schema) = studyflow_store::testing::postgres_schema("audit_inject").await else {
        return;
    };
    let store = Store::open(&schema.url).await.unwrap();
    injections_and_cuts_are_caught(store, "postgres").await;
}

/// A log sealed before the tree existed gets its tree from the whole chain at the next seal.
#[tokio::test]
async fn a_log_sealed_before_checkpoints_is_covered_by_the_next_one() {
    let store = Store::open(":memory:").await.unwrap();
    store.append_audit(&[event(1), event(2)]).await.unwrap();
    store
        .execute_raw_for_tests("DELETE FROM meta WHERE key = 'audit_frontier'")
        .await
        .unwrap();
    let signer = AuditSigner::generate("studyflow.test/audit").unwrap();
    let verifier = signer.verifier();
    let store = store.with_audit_signing(AuditSigning { signer, log: None });
    store.append_audit(&[event(3)]).await.unwrap();
    let trust = AuditTrust {
        verifier: Some(verifier),
        log: None,
        witnesses: Vec::new(),
        quorum: None,
    };
    assert_eq!(
        store.verify_audit_with(&trust).await.unwrap(),
        Verification::Intact {
            rows: 3,
            pending: 0,
            checkpoints: 1,
            refused: 0,
            uncounted: Vec::new(),
        }
    );
}
