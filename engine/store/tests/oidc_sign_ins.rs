//! What sign-ins at the identity provider need kept, as the store keeps it for several servers,
//! on both backends: a pending sign-in is taken once, by either server, and the oldest go when
//! too many wait; a session's confirmation is claimed by one server at a time, released when
//! the provider cannot be asked, and not claimed before it is due; a logout token is taken
//! once and ends exactly the sessions it names; sign-ins begun together by both servers are
//! all kept (no deadlock on PostgreSQL) within the cap.

use studyflow_store::{OidcSessionRow, OidcSignInRow, Store};

const MINUTE: i64 = 60_000_000;

fn sign_in(hash: u8, at: i64) -> OidcSignInRow {
    OidcSignInRow {
        state_hash: vec![hash; 32],
        nonce: format!("nonce-{hash}"),
        verifier: format!("verifier-{hash}"),
        begun_at: at,
    }
}

fn session(hash: u8, subject: &str, sid: Option<&str>, at: i64) -> OidcSessionRow {
    OidcSessionRow {
        session_hash: vec![hash; 32],
        subject: subject.into(),
        provider_session: sid.map(str::to_owned),
        signed_in_at: at,
        refresh: Some(vec![hash, 1, 2, 3]),
        confirmed_at: at,
        confirming_until: None,
        logged_out_at: None,
    }
}

async fn check(one: Store, two: Store) {
    let now = 100 * MINUTE;

    // Begun at one server, taken at the other, once.
    one.put_oidc_sign_in(&sign_in(1, now), now - 10 * MINUTE, 3)
        .await
        .unwrap();
    let taken = two.take_oidc_sign_in(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(taken, sign_in(1, now));
    assert!(one.take_oidc_sign_in(&[1; 32]).await.unwrap().is_none());
    assert!(two.take_oidc_sign_in(&[9; 32]).await.unwrap().is_none());
    // Expired ones go when another is begun; beyond the most waiting, the oldest go.
    one.put_oidc_sign_in(&sign_in(2, now - 11 * MINUTE), 0, 3)
        .await
        .unwrap();
    for (hash, at) in [(3, now), (4, now + 1), (5, now + 2)] {
        one.put_oidc_sign_in(&sign_in(hash, at), now - 10 * MINUTE, 3)
            .await
            .unwrap();
    }
    assert!(two.take_oidc_sign_in(&[2; 32]).await.unwrap().is_none());
    one.put_oidc_sign_in(&sign_in(6, now + 3), now - 10 * MINUTE, 3)
        .await
        .unwrap();
    assert!(two.take_oidc_sign_in(&[3; 32]).await.unwrap().is_none());
    for hash in [4, 5, 6] {
        assert!(two.take_oidc_sign_in(&[hash; 32]).await.unwrap().is_some());
    }

    // Sign-ins begun together at both servers: none refused, and no more kept than the cap.
    let begun: Vec<_> = (0..60u8)
        .map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                store
                    .put_oidc_sign_in(&sign_in(100 + i, now + i64::from(i)), now - 10 * MINUTE, 20)
                    .await
            })
        })
        .collect();
    for b in begun {
        b.await.unwrap().unwrap();
    }
    let mut kept = 0;
    for i in 0..60u8 {
        kept += usize::from(
            one.take_oidc_sign_in(&[100 + i; 32])
                .await
                .unwrap()
                .is_some(),
        );
    }
    assert!((1..=20).contains(&kept), "{kept} kept");

    // A session kept by one server; the other claims its confirmation once due, one at a time.
    one.put_oidc_session(&session(7, "sub-inese", Some("sid-1"), now), 0)
        .await
        .unwrap();
    assert_eq!(
        two.oidc_session(&[7; 32]).await.unwrap(),
        Some(session(7, "sub-inese", Some("sid-1"), now))
    );
    let due = now + 5 * MINUTE;
    let ahead = |at: i64| at + MINUTE;
    assert!(
        two.claim_oidc_confirmation(
            &[7; 32],
            due - 5 * MINUTE - 1,
            ahead(due),
            due,
            due + MINUTE / 2
        )
        .await
        .unwrap()
        .is_none(),
        "not due yet"
    );
    let claimed = two
        .claim_oidc_confirmation(
            &[7; 32],
            due - 5 * MINUTE,
            ahead(due),
            due,
            due + MINUTE / 2,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.confirming_until, Some(due + MINUTE / 2));
    assert!(
        one.claim_oidc_confirmation(
            &[7; 32],
            due - 5 * MINUTE,
            ahead(due),
            due + 1,
            due + MINUTE
        )
        .await
        .unwrap()
        .is_none(),
        "claimed by the other"
    );
    // The provider could not be asked: released, and claimed again; a claim no longer held
    // ends nothing.
    assert!(
        two.end_oidc_confirmation(&[7; 32], due + MINUTE / 2, None)
            .await
            .unwrap()
    );
    assert!(
        !two.end_oidc_confirmation(&[7; 32], due + MINUTE / 2, Some((due, &[9])))
            .await
            .unwrap()
    );
    assert!(
        one.claim_oidc_confirmation(
            &[7; 32],
            due - 5 * MINUTE,
            ahead(due),
            due + 1,
            due + MINUTE
        )
        .await
        .unwrap()
        .is_some()
    );
    // Vouched for, with a new seal: no longer due, the claim gone.
    assert!(
        one.end_oidc_confirmation(&[7; 32], due + MINUTE, Some((due + 2, &[7, 7])))
            .await
            .unwrap()
    );
    let kept = two.oidc_session(&[7; 32]).await.unwrap().unwrap();
    assert_eq!(
        (kept.confirmed_at, kept.confirming_until, kept.refresh),
        (due + 2, None, Some(vec![7, 7]))
    );
    // A claim that outlived its time (its server stopped) is taken over, and the late server's
    // word is then not taken.
    two.claim_oidc_confirmation(&[7; 32], due + 2, ahead(due + 3), due + 3, due + 4)
        .await
        .unwrap()
        .unwrap();
    assert!(
        one.claim_oidc_confirmation(&[7; 32], due + 2, ahead(due + 4), due + 4, due + MINUTE)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        !two.end_oidc_confirmation(&[7; 32], due + 4, Some((due + 5, &[8])))
            .await
            .unwrap()
    );
    assert!(
        one.end_oidc_confirmation(&[7; 32], due + MINUTE, None)
            .await
            .unwrap()
    );
    // A confirmation dated implausibly ahead (a clock that ran ahead) is due at once.
    one.put_oidc_session(&session(11, "sub-inese", None, now), 0)
        .await
        .unwrap();
    assert!(
        two.claim_oidc_confirmation(&[11; 32], now - 5 * MINUTE, ahead(now), now, now + 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        two.claim_oidc_confirmation(
            &[11; 32],
            now - 15 * MINUTE,
            ahead(now - 10 * MINUTE),
            now - 10 * MINUTE,
            now
        )
        .await
        .unwrap()
        .is_some(),
        "10 minutes ahead of this server's clock"
    );

    // A logout token ends the sessions of the person and provider session it names, once.
    one.put_oidc_session(&session(8, "sub-inese", Some("sid-2"), now), 0)
        .await
        .unwrap();
    one.put_oidc_session(&session(9, "sub-gatis", Some("sid-1"), now), 0)
        .await
        .unwrap();
    assert_eq!(
        two.oidc_logout("jti-1", Some("sub-inese"), Some("sid-1"), now, 0)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        one.oidc_logout("jti-1", Some("sub-inese"), None, now, 0)
            .await
            .unwrap(),
        None,
        "taken before"
    );
    for (hash, ended) in [(7, true), (8, false), (9, false)] {
        let kept = one.oidc_session(&[hash; 32]).await.unwrap().unwrap();
        assert_eq!(kept.logged_out_at.is_some(), ended, "session {hash}");
    }
    // An ended session's confirmation is never claimed.
    assert!(
        two.claim_oidc_confirmation(&[7; 32], i64::MAX, i64::MAX, i64::MAX - 1, i64::MAX)
            .await
            .unwrap()
            .is_none()
    );
    // A token naming only the person ends all of theirs; tokens seen long ago are forgotten.
    assert_eq!(
        two.oidc_logout("jti-2", Some("sub-inese"), None, now + 1, 0)
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(
        two.oidc_logout(
            "jti-1",
            Some("sub-gatis"),
            None,
            now + 20 * MINUTE,
            now + MINUTE
        )
        .await
        .unwrap(),
        Some(1)
    );

    // Forgotten: returned once, then gone; sessions older than a session's life go when
    // another is kept.
    assert!(one.forget_oidc_session(&[8; 32]).await.unwrap().is_some());
    assert!(two.forget_oidc_session(&[8; 32]).await.unwrap().is_none());
    one.put_oidc_session(&session(10, "sub-inese", None, now + MINUTE), now + 1)
        .await
        .unwrap();
    assert!(two.oidc_session(&[9; 32]).await.unwrap().is_none());
    assert!(two.oidc_session(&[11; 32]).await.unwrap().is_none());
    assert!(two.oidc_session(&[10; 32]).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_and_sessions_are_shared_by_two_servers_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("sf-oidc-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db");
    let url = path.to_str().unwrap();
    let one = Store::open(url).await.unwrap();
    let two = Store::open_existing(url).await.unwrap();
    check(one, two).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_and_sessions_are_shared_by_two_servers_on_postgres() {
    let Some(pg) = studyflow_store::testing::postgres_schema("oidc_sign_ins").await else {
        return;
    };
    let one = Store::open(&pg.url).await.unwrap();
    let two = Store::open(&pg.url).await.unwrap();
    check(one, two).await;
}
