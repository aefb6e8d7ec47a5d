//! The signed audit (issue #12) against a database writer, on both backends: a row rewritten
//! with every later hash and the head recomputed passes the chain but not the checkpoints;
//! checkpoints recomputed by the writer are not signed by the audit key; the chain deleted with
//! its head and checkpoints is caught by the checkpoint log outside the database.

use studyflow_store::row_hash;
use studyflow_store::tlog::AuditSigner;
use studyflow_store::{
    AuditEvent, AuditSigning, AuditTrust, Erasure, Store, Verification, verify_inclusion,
};

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
            erased: 0,
            checkpoints: 6,
            refused: 0,
            uncounted: Vec::new(),
        },
        "three checkpoints in the database, the same three in the log"
    );

    // A writer rewrites row 5 — its payload and the payload's digest — and recomputes every
    // later hash and the head: the chain holds, the signed checkpoints do not.
    store
        .execute_raw_for_tests("UPDATE audit SET actor = 'someone else' WHERE seq = 5")
        .await
        .unwrap();
    let (_, reason) = broken(store.verify_audit().await.unwrap());
    assert!(reason.contains("does not match its digest"), "{reason}");
    let mut prev = store.audit_rows(3, 1).await.unwrap()[0].hash.clone();
    for mut row in store.audit_rows(4, 100).await.unwrap() {
        if row.seq == 5 {
            let digest =
                studyflow_store::payload_digest(&row.event, row.payload_salt.as_deref().unwrap());
            store
                .execute_raw_for_tests(&format!(
                    "UPDATE audit SET payload_hash = '{digest}' WHERE seq = 5"
                ))
                .await
                .unwrap();
            row.payload_hash = Some(digest);
        }
        let hash = row.hash_after(&prev);
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
        forged.push(row.leaf());
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
        frontier.push(row.leaf());
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
    let hash = row_hash(&head.hash, 13, &planted, None);
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

/// The export `studyflow audit export` writes: a row per line, then the checkpoints and head.
async fn export(store: &Store) -> String {
    let mut out = String::new();
    for row in store.audit_rows(0, 1_000).await.unwrap() {
        out += &(serde_json::to_string(&row).unwrap() + "\n");
    }
    let (notes, head) = store.audit_checkpoints().await.unwrap();
    for note in notes {
        out += &(serde_json::json!({ "checkpoint": note }).to_string() + "\n");
    }
    out += &(serde_json::json!({ "head": head.unwrap() }).to_string() + "\n");
    out
}

/// A person's name erased from the audit once the Service's retention period for it has
/// passed (MK403 p.25.4): the rows keep their place, time and action; the chain, the tree and
/// every signed checkpoint still verify, in the database and in an export with only the
/// public key; an erasure made in the database instead of by `audit erase` is caught.
async fn payloads_are_erased_and_the_log_still_verifies(store: Store, label: &str) {
    let (store, dir, trust) = signed(store, &format!("erase-{label}")).await;
    let events = [
        AuditEvent::new(
            100,
            "alice",
            "study.approved",
            "rec-1",
            "p.3",
            r#"{"version":1}"#,
        ),
        AuditEvent::new(
            101,
            "alice (https://idp.example sub-1)",
            "task.completed",
            "rec-1/quality",
            "p.18",
            "{}",
        ),
        AuditEvent::new(
            102,
            "admin",
            "account.reset",
            "account/alice",
            "p.25.1",
            r#"{"login":"alice"}"#,
        ),
        AuditEvent::new(
            103,
            "bob",
            "study.contract_recorded",
            "rec-1",
            "p.30.1",
            r#"{"signed_by":"Alice Ābele"}"#,
        ),
        AuditEvent::new(
            104,
            "bob",
            "study.started",
            "rec-1",
            "p.3",
            r#"{"by":"alice2"}"#,
        ),
        // Her login as a key, not a value; in capitals: neither is her.
        AuditEvent::new(105, "bob", "study.noted", "rec-1", "", r#"{"alice":"x"}"#),
        AuditEvent::new(106, "bob", "study.noted", "rec-1", "", r#"{"by":"ALICE"}"#),
        AuditEvent::new(200, "alice", "study.amended", "rec-1", "p.3", "{}"),
    ];
    store.append_audit(&events).await.unwrap();
    let names = vec!["Alice Ābele".to_owned()];

    // A login with a LIKE wildcard in it matches itself only.
    let none = store
        .erase_audit_payloads("alic_", &[], 150, "operator:root", 300, false)
        .await
        .unwrap();
    assert_eq!(
        none,
        Erasure {
            erased: 0,
            rows: vec![],
            kept: 0
        }
    );
    // A process without the key does not erase a signed audit.
    let e = store
        .clone()
        .without_audit_signing()
        .erase_audit_payloads("alice", &names, 150, "operator:root", 300, false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("needs the audit key"), "{e}");

    // A copy of row 10 as it was written, MAC and all, kept aside by a database writer.
    store
        .execute_raw_for_tests("CREATE TABLE kept_copy AS SELECT * FROM audit WHERE seq = 10")
        .await
        .unwrap();
    // A dry run says which rows, and changes nothing.
    let before = store.audit_rows(0, 100).await.unwrap();
    let dry = store
        .erase_audit_payloads("alice", &names, 150, "operator:root", 300, true)
        .await
        .unwrap();
    assert_eq!(
        dry,
        Erasure {
            erased: 0,
            rows: vec![10, 11, 12, 13],
            kept: 0
        }
    );
    assert_eq!(store.audit_rows(0, 100).await.unwrap(), before);
    let erasure = store
        .erase_audit_payloads("alice", &names, 150, "operator:root", 300, false)
        .await
        .unwrap();
    assert_eq!(
        erasure,
        Erasure {
            erased: 4,
            rows: vec![10, 11, 12, 13],
            kept: 0
        }
    );
    let rows = store.audit_rows(9, 100).await.unwrap();
    let kept: Vec<(&str, &str, &str, Option<i64>)> = rows
        .iter()
        .map(|r| {
            (
                r.event.actor.as_str(),
                r.event.action.as_str(),
                r.event.object.as_str(),
                r.erased_at,
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            ("", "study.approved", "rec-1", Some(300)),
            ("", "task.completed", "rec-1", Some(300)),
            ("", "account.reset", "account", Some(300)),
            ("", "study.contract_recorded", "rec-1", Some(300)),
            ("bob", "study.started", "rec-1", None),
            ("bob", "study.noted", "rec-1", None),
            ("bob", "study.noted", "rec-1", None),
            ("alice", "study.amended", "rec-1", None),
            ("operator:root", "audit.payloads_erased", "audit", None),
        ],
        "the four rows before the day that name alice or her name, nothing else"
    );
    assert!(rows[..4].iter().all(|r| r.event.detail.is_empty()));
    assert_eq!(rows[4].event.detail, r#"{"by":"alice2"}"#);
    let record = &rows[8].event;
    assert_eq!(record.point, "p.25.4");
    let detail: serde_json::Value = serde_json::from_str(&record.detail).unwrap();
    assert_eq!(detail["rows"], serde_json::json!([[10, 13]]));
    assert_eq!(detail["count"], 4);
    assert!(!record.detail.contains("alice") && !record.detail.contains("Ābele"));
    let everything = format!("{:?}", &rows[..4]);
    assert!(
        !everything.contains("alice")
            && !everything.contains("Ābele")
            && !everything.contains("sub-1"),
        "{everything}"
    );

    // The log still verifies — in the database and in a copy, with only the public key.
    assert!(matches!(
        store.verify_audit_with(&trust).await.unwrap(),
        Verification::Intact {
            rows: 18,
            erased: 4,
            ..
        }
    ));
    let copy = export(&store).await;
    assert!(!copy.contains("Ābele"), "the copy holds no erased payload");
    let public = AuditTrust {
        verifier: trust.verifier.clone(),
        ..AuditTrust::default()
    };
    assert!(matches!(
        studyflow_store::verify_export(&copy, &public),
        Verification::Intact {
            rows: 18,
            erased: 4,
            ..
        }
    ));
    // Each row is proved to be in the signed log, erased or not, with the public key alone.
    let verifier = trust.verifier.clone().unwrap();
    for seq in [1, 10, 13, 14, 18] {
        let proof = store.audit_inclusion(seq).await.unwrap();
        let text = serde_json::to_string(&proof).unwrap();
        assert_eq!(
            verify_inclusion(&text, &verifier).map(|(r, n)| (r.seq, n)),
            Ok((seq, 18)),
            "row {seq}"
        );
    }
    // An erased row's proof is not someone's: an object written back into it is refused.
    let erased = store.audit_inclusion(12).await.unwrap();
    assert!(erased.row.payload_salt.is_none() && erased.row.erased_at.is_some());
    let mut named = erased.clone();
    named.row.event.object = "account/bob".into();
    let why = verify_inclusion(&serde_json::to_string(&named).unwrap(), &verifier).unwrap_err();
    assert!(why.contains("holds one"), "{why}");
    let proof = store.audit_inclusion(14).await.unwrap();
    let refused = |edit: &dyn Fn(&mut studyflow_store::InclusionProof)| {
        let mut p = proof.clone();
        edit(&mut p);
        verify_inclusion(&serde_json::to_string(&p).unwrap(), &verifier).unwrap_err()
    };
    let why = refused(&|p| p.row.event.action = "study.terminated".into());
    assert!(why.contains("not the event at row 14"), "{why}");
    let why = refused(&|p| p.row.event.detail = "{}".into());
    assert!(why.contains("does not match its digest"), "{why}");
    let why = refused(&|p| p.row.seq = 15);
    assert!(why.contains("not the event at row 15"), "{why}");
    let why = refused(&|p| p.proof[0] = "00".repeat(32));
    assert!(why.contains("not the event"), "{why}");
    let other = AuditSigner::generate("studyflow.test/audit")
        .unwrap()
        .verifier();
    let why = verify_inclusion(&serde_json::to_string(&proof).unwrap(), &other).unwrap_err();
    assert!(why.contains("not one of the audit key"), "{why}");
    let e = store.audit_inclusion(99).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("not in the latest signed checkpoint (rows 1–18)"),
        "{e}"
    );

    // The writer puts the erased event back at the end of the chain, hashes and head right
    // (its MAC is genuine, its payload hashed itself): the next signing seal knows it for a
    // copy of an event written once, by the hash its erased row keeps, and refuses to sign.
    let last = store.audit_rows(0, 100).await.unwrap().pop().unwrap();
    let copy = events[0].clone();
    let seq = last.seq + 1;
    let hash = row_hash(&last.hash, seq, &copy, None);
    for sql in [
        format!(
            "INSERT INTO audit (seq, at, actor, action, object, point, detail, mac, prev_hash, hash)
             SELECT {seq}, at, actor, action, object, point, detail, mac, '{}', '{hash}' FROM kept_copy",
            last.hash
        ),
        format!("UPDATE meta SET value = '{seq}:{hash}' WHERE key = 'audit_head'"),
    ] {
        store.execute_raw_for_tests(&sql).await.unwrap();
    }
    let e = store.append_audit(&[event(450)]).await.unwrap_err();
    assert!(e.to_string().contains("a copy"), "{e}");
    for sql in [
        format!("DELETE FROM audit WHERE seq = {seq}"),
        format!(
            "UPDATE meta SET value = '{}:{}' WHERE key = 'audit_head'",
            last.seq, last.hash
        ),
        "DELETE FROM audit_outbox".to_owned(),
    ] {
        store.execute_raw_for_tests(&sql).await.unwrap();
    }
    // Erasing again finds nothing more; the next seal goes on from the erased rows.
    assert_eq!(
        store
            .erase_audit_payloads("alice", &names, 150, "operator:root", 400, false)
            .await
            .unwrap(),
        Erasure {
            erased: 0,
            rows: vec![],
            kept: 0
        }
    );
    store.append_audit(&[event(500)]).await.unwrap();

    // A name written back into an erased row is an edit.
    store
        .execute_raw_for_tests("UPDATE audit SET actor = 'mallory' WHERE seq = 10")
        .await
        .unwrap();
    let (seq, reason) = broken(store.verify_audit_with(&trust).await.unwrap());
    assert_eq!(seq, 10);
    assert!(
        reason.contains("marked erased, but it holds one"),
        "{reason}"
    );
    store
        .execute_raw_for_tests("UPDATE audit SET actor = '' WHERE seq = 10")
        .await
        .unwrap();
    // A payload erased in the database, not by `audit erase`: its row verifies by its digest,
    // but no sealed record lists it.
    store
        .execute_raw_for_tests(
            "UPDATE audit SET actor = '', detail = '', erased_at = 1 WHERE seq = 14",
        )
        .await
        .unwrap();
    let (seq, reason) = broken(store.verify_audit_with(&trust).await.unwrap());
    assert_eq!(seq, 14);
    assert!(reason.contains("keeps the salt"), "{reason}");
    store
        .execute_raw_for_tests("UPDATE audit SET payload_salt = NULL WHERE seq = 14")
        .await
        .unwrap();
    let (seq, reason) = broken(store.verify_audit_with(&trust).await.unwrap());
    assert_eq!(seq, 14);
    assert!(reason.contains("no `audit erase`"), "{reason}");
    // Nor does a record of an erasure the writer puts after the last signed checkpoint,
    // listing that row, hashes and head right: no signed checkpoint covers it.
    let last = store.audit_rows(0, 100).await.unwrap().pop().unwrap();
    let forged = AuditEvent::new(
        600,
        "operator:root",
        "audit.payloads_erased",
        "audit",
        "p.25.4",
        r#"{"rows":[[14,14]],"count":1}"#,
    );
    let seq = last.seq + 1;
    let hash = row_hash(&last.hash, seq, &forged, None);
    for sql in [
        format!(
            "INSERT INTO audit (seq, at, actor, action, object, point, detail, prev_hash, hash) VALUES ({seq}, 600, 'operator:root', 'audit.payloads_erased', 'audit', 'p.25.4', '{}', '{}', '{hash}')",
            forged.detail, last.hash
        ),
        format!("UPDATE meta SET value = '{seq}:{hash}' WHERE key = 'audit_head'"),
    ] {
        store.execute_raw_for_tests(&sql).await.unwrap();
    }
    let (_, reason) = broken(store.verify_audit_with(&trust).await.unwrap());
    assert!(reason.contains("under no signed checkpoint"), "{reason}");
    // The same in a copy, checked elsewhere with the public key alone.
    let (_, reason) = broken(studyflow_store::verify_export(
        &export(&store).await,
        &public,
    ));
    assert!(reason.contains("under no signed checkpoint"), "{reason}");
    for sql in [
        format!("DELETE FROM audit WHERE seq = {seq}"),
        format!(
            "UPDATE meta SET value = '{}:{}' WHERE key = 'audit_head'",
            last.seq, last.hash
        ),
    ] {
        store.execute_raw_for_tests(&sql).await.unwrap();
    }
    // Nor does a row stand erased without the digest that stands for its payload.
    store
        .execute_raw_for_tests("UPDATE audit SET payload_hash = NULL WHERE seq = 14")
        .await
        .unwrap();
    let (seq, reason) = broken(store.verify_audit_with(&trust).await.unwrap());
    assert_eq!(seq, 14);
    assert!(reason.contains("no digest stands for it"), "{reason}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A row sealed before schema 15 has no digest: its hashes take its payload, which stays.
#[tokio::test]
async fn a_row_sealed_before_payload_digests_keeps_its_payload() {
    let dir = std::env::temp_dir().join(format!("sf-audit-old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(dir.join("s.db").to_str().unwrap())
        .await
        .unwrap();
    store
        .append_audit(&[AuditEvent::new(
            1,
            "alice",
            "study.approved",
            "rec-1",
            "p.3",
            "{}",
        )])
        .await
        .unwrap();
    // As it was sealed then: no digest, the hash over the payload itself.
    let row = store.audit_rows(0, 1).await.unwrap().remove(0);
    let hash = row_hash(studyflow_store::GENESIS, 1, &row.event, None);
    for sql in [
        format!(
            "UPDATE audit SET payload_hash = NULL, payload_salt = NULL, hash = '{hash}' WHERE seq = 1"
        ),
        format!("UPDATE meta SET value = '1:{hash}' WHERE key = 'audit_head'"),
        "DELETE FROM meta WHERE key = 'audit_frontier'".to_owned(),
    ] {
        store.execute_raw_for_tests(&sql).await.unwrap();
    }
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        Verification::Intact { rows: 1, .. }
    ));
    store
        .append_audit(&[AuditEvent::new(
            2,
            "alice",
            "study.started",
            "rec-1",
            "p.3",
            "{}",
        )])
        .await
        .unwrap();
    let erasure = store
        .erase_audit_payloads("alice", &[], 10, "operator:root", 20, false)
        .await
        .unwrap();
    assert_eq!(
        erasure,
        Erasure {
            erased: 1,
            rows: vec![2],
            kept: 1
        }
    );
    let rows = store.audit_rows(0, 10).await.unwrap();
    assert_eq!(rows[0].event.actor, "alice");
    assert_eq!(rows[1].event.actor, "");
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        Verification::Intact {
            rows: 3,
            erased: 1,
            ..
        }
    ));
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
    let store = Store::open(dir.join("e.db").to_str().unwrap())
        .await
        .unwrap();
    payloads_are_erased_and_the_log_still_verifies(store, "sqlite").await;
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
    let Some(schema) = studyflow_store::testing::postgres_schema("audit_erase").await else {
        return;
    };
    let store = Store::open(&schema.url).await.unwrap();
    payloads_are_erased_and_the_log_still_verifies(store, "postgres").await;
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
            erased: 0,
            checkpoints: 1,
            refused: 0,
            uncounted: Vec::new(),
        }
    );
}
