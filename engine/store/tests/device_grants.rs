//! A command line's sign-in through the browser (RFC 8628) as the store keeps it, on both
//! backends: a grant is decided once, only while pending and unexpired; it gives one token at
//! most, even to two servers polling side by side; an account disabled after approving denies
//! the grant it has not collected yet.

use studyflow_store::{
    AccountRow, CredentialKind, CredentialRow, DeviceGrantRow, DeviceState, Store,
};

fn grant(hash: u8, code: &str, now: i64) -> DeviceGrantRow {
    DeviceGrantRow {
        device_hash: vec![hash; 32],
        user_code: code.into(),
        label: "laptop".into(),
        client: "127.0.0.1".into(),
        days: None,
        requested_at: now,
        expires_at: now + 600_000_000,
        polled_at: 0,
        state: DeviceState::Pending,
        login: None,
        issuer: None,
        subject: None,
        auth_at: None,
        decided_at: None,
    }
}

fn token(hash: u8, now: i64) -> CredentialRow {
    CredentialRow {
        hash: vec![hash; 32],
        kind: CredentialKind::Token,
        login: "inese.kalnina".into(),
        issuer: "studyflow:local".into(),
        subject: "inese.kalnina".into(),
        label: "laptop".into(),
        csrf_hash: None,
        created_at: now,
        auth_at: now,
        last_used_at: now,
        expires_at: now + 1_000_000_000,
        revoked_at: None,
    }
}

async fn approve(store: &Store, code: &str, at: i64) -> bool {
    store
        .decide_device_grant(
            code,
            true,
            "inese.kalnina",
            "studyflow:local",
            "inese.kalnina",
            at,
            at,
            &[],
        )
        .await
        .unwrap()
}

async fn check(url: &str, second: Store) {
    let store = Store::open(url).await.expect("open");
    let now = 1_000_000_000;
    store
        .add_account(
            &AccountRow {
                login: "inese.kalnina".into(),
                display_name: "Inese".into(),
                password_hash: "x".into(),
                totp_secret: vec![1; 20],
                totp_last_step: 0,
                disabled: false,
                external: false,
                oidc_subject: None,
                failed_attempts: 0,
                locked_until: 0,
                enrolling_until: 0,
                pending_totp_secret: None,
                pending_by: None,
                pending_until: 0,
                credentials_epoch: 0,
                created_at: now,
                updated_at: now,
            },
            &[],
        )
        .await
        .unwrap();
    // Decided once, while pending; a code taken by a live grant is not drawn twice.
    store
        .put_device_grant(&grant(1, "BCDFGHJK", now), now)
        .await
        .unwrap();
    assert!(
        store
            .put_device_grant(&grant(2, "BCDFGHJK", now), now)
            .await
            .is_err()
    );
    assert!(approve(&store, "BCDFGHJK", now + 1).await);
    assert!(!approve(&store, "BCDFGHJK", now + 2).await);
    // Polled: found, then found too soon.
    let (g, soon) = store
        .poll_device_grant(&[1; 32], 10, 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((g.state, soon), (DeviceState::Approved, false));
    let (_, soon) = store
        .poll_device_grant(&[1; 32], 12, 5)
        .await
        .unwrap()
        .unwrap();
    assert!(soon);
    assert!(
        store
            .poll_device_grant(&[9; 32], 12, 5)
            .await
            .unwrap()
            .is_none()
    );
    // One token, whoever polls: two servers side by side.
    let (t11, t12) = (token(11, now), token(12, now));
    let (a, b) = tokio::join!(
        store.issue_device_token(&[1; 32], &t11, now + 3, &[]),
        second.issue_device_token(&[1; 32], &t12, now + 3, &[]),
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(),
        1,
        "one token per grant"
    );
    assert!(
        !store
            .issue_device_token(&[1; 32], &token(13, now), now + 4, &[])
            .await
            .unwrap()
    );
    // An account disabled after approving: the grant not collected yet is denied with it.
    store
        .put_device_grant(&grant(3, "CDFGHJKL", now), now)
        .await
        .unwrap();
    assert!(approve(&store, "CDFGHJKL", now + 5).await);
    store
        .set_account_disabled("inese.kalnina", true, now + 6, &[])
        .await
        .unwrap();
    assert_eq!(
        store.device_grant("CDFGHJKL").await.unwrap().unwrap().state,
        DeviceState::Denied
    );
    assert!(
        !store
            .issue_device_token(&[3; 32], &token(14, now), now + 7, &[])
            .await
            .unwrap()
    );
    // Expired: no decision, no token; and the next grant asked for clears it away.
    store
        .put_device_grant(&grant(4, "DFGHJKLM", now), now)
        .await
        .unwrap();
    let late = now + 600_000_001;
    assert!(!approve(&store, "DFGHJKLM", late).await);
    store
        .put_device_grant(&grant(5, "FGHJKLMN", late), late)
        .await
        .unwrap();
    assert!(store.device_grant("DFGHJKLM").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_decided_once_and_gives_one_token_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("sf-device-grants-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db");
    let url = path.to_str().unwrap();
    // The second server's store: created by the first, opened again.
    Store::open(url).await.unwrap();
    let second = Store::open_existing(url).await.unwrap();
    check(url, second).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_decided_once_and_gives_one_token_on_postgres() {
    let Some(pg) = studyflow_store::testing::postgres_schema("device_grants").await else {
        return;
    };
    Store::open(&pg.url).await.unwrap();
    let second = Store::open(&pg.url).await.unwrap();
    check(&pg.url, second).await;
}
