//! Local accounts on both backends: sign-in needs the password and a fresh code, a code is
//! good once, failures lock the account, a reset or disable revokes every credential, sessions
//! end when idle or old, tokens expire and are revoked, and no secret is stored or audited.

use studyflow_identity::totp;
use studyflow_identity::{Accounts, IdentityError, Policy};
use studyflow_store::{CredentialKind, Store};

const S: i64 = 1_000_000;
const T0: i64 = 1_800_000_000 * S;
const PASSWORD: &str = "a long enough passphrase";

fn code(secret: &[u8], now: i64) -> String {
    totp::code_at(secret, totp::step_of(now / S))
}

async fn scenario(store: Store) {
    let accounts = Accounts::new(store.clone(), Policy::default());
    let added = accounts
        .add(
            "inese.kalnina",
            "Inese Kalniņa",
            PASSWORD,
            false,
            "operator",
            T0,
        )
        .await
        .unwrap();
    assert!(matches!(
        accounts
            .add("inese.kalnina", "Again", PASSWORD, false, "operator", T0)
            .await,
        Err(IdentityError::Store(_))
    ));
    assert!(matches!(
        accounts
            .add("Inese", "Caps", PASSWORD, false, "operator", T0)
            .await,
        Err(IdentityError::Invalid(_))
    ));
    let secret = added.totp_secret.clone();

    // Password and code; each alone is refused, and so is an unknown login.
    let now = T0 + 60 * S;
    let c = code(&secret, now);
    assert!(matches!(
        accounts
            .sign_in("inese.kalnina", "wrong password!!", &c, "test", now)
            .await,
        Err(IdentityError::Refused)
    ));
    assert!(matches!(
        accounts
            .sign_in("inese.kalnina", PASSWORD, "000000", "test", now)
            .await,
        Err(IdentityError::Refused)
    ));
    assert!(matches!(
        accounts.sign_in("nobody", PASSWORD, &c, "test", now).await,
        Err(IdentityError::Refused)
    ));
    let me = accounts
        .sign_in("inese.kalnina", PASSWORD, &c, "test", now)
        .await
        .unwrap();
    assert_eq!((me.login(), me.auth_at()), ("inese.kalnina", now));
    // The same code again: a replay.
    assert!(matches!(
        accounts
            .sign_in("inese.kalnina", PASSWORD, &c, "test", now + S)
            .await,
        Err(IdentityError::Refused)
    ));

    // A session: good until idle for 30 minutes; its CSRF token matches it only.
    let (session, csrf) = accounts.open_session(&me, "browser", now).await.unwrap();
    let held = accounts
        .authenticate(CredentialKind::Session, session.expose(), now + 29 * 60 * S)
        .await
        .unwrap();
    assert_eq!(held.identity.login(), "inese.kalnina");
    assert!(Accounts::csrf_matches(&held.credential, csrf.expose()));
    assert!(!Accounts::csrf_matches(&held.credential, session.expose()));
    // A session is not a token.
    assert!(
        accounts
            .authenticate(CredentialKind::Token, session.expose(), now)
            .await
            .is_err()
    );
    let later = now + 29 * 60 * S + 31 * 60 * S;
    assert!(matches!(
        accounts
            .authenticate(CredentialKind::Session, session.expose(), later)
            .await,
        Err(IdentityError::Unauthenticated)
    ));

    // A session kept busy still ends 12 hours after its sign-in (the absolute timeout): used
    // every 20 minutes, it holds until then and not a request after.
    let (busy, _) = accounts.open_session(&me, "browser", now).await.unwrap();
    let mut t = now;
    while t + 20 * 60 * S < now + 12 * 3600 * S {
        t += 20 * 60 * S;
        assert!(
            accounts
                .authenticate(CredentialKind::Session, busy.expose(), t)
                .await
                .is_ok(),
            "in use, {} min after the sign-in",
            (t - now) / (60 * S)
        );
    }
    assert!(matches!(
        accounts
            .authenticate(CredentialKind::Session, busy.expose(), now + 12 * 3600 * S)
            .await,
        Err(IdentityError::Unauthenticated)
    ));

    // A token: lives its days, is revoked by its holder only.
    let (token, _) = accounts
        .issue_token(&me, "laptop", Some(7), now)
        .await
        .unwrap();
    assert!(
        accounts
            .issue_token(&me, "too long", Some(91), now)
            .await
            .is_err()
    );
    let held = accounts
        .authenticate(CredentialKind::Token, token.expose(), now + 6 * 86_400 * S)
        .await
        .unwrap();
    assert!(
        accounts
            .authenticate(CredentialKind::Token, token.expose(), now + 7 * 86_400 * S)
            .await
            .is_err()
    );
    assert_eq!(accounts.tokens(&me).await.unwrap().len(), 1);
    accounts
        .revoke(&me, &held.credential.hash, now + S)
        .await
        .unwrap();
    assert!(
        accounts
            .authenticate(CredentialKind::Token, token.expose(), now + 2 * S)
            .await
            .is_err()
    );

    // Step-up: a fresh proof moves auth_at.
    let (token, _) = accounts.issue_token(&me, "cli", None, now).await.unwrap();
    let held = accounts
        .authenticate(CredentialKind::Token, token.expose(), now + 600 * S)
        .await
        .unwrap();
    assert!(!held.identity.recently_authenticated(now + 600 * S, 300 * S));
    let t = now + 600 * S;
    let fresh = accounts
        .step_up(&held, PASSWORD, &code(&secret, t), "test", t)
        .await
        .unwrap();
    assert!(fresh.recently_authenticated(t, 300 * S));
    let again = accounts
        .authenticate(CredentialKind::Token, token.expose(), t + S)
        .await
        .unwrap();
    assert_eq!(again.identity.auth_at(), t);

    // Disabling revokes; enabling does not bring credentials back.
    accounts
        .set_disabled("inese.kalnina", true, "operator", t + 2 * S)
        .await
        .unwrap();
    assert!(
        accounts
            .authenticate(CredentialKind::Token, token.expose(), t + 3 * S)
            .await
            .is_err()
    );
    let t2 = t + 90 * S;
    assert!(
        accounts
            .sign_in("inese.kalnina", PASSWORD, &code(&secret, t2), "test", t2)
            .await
            .is_err()
    );
    accounts
        .set_disabled("inese.kalnina", false, "operator", t2)
        .await
        .unwrap();
    assert!(
        accounts
            .authenticate(CredentialKind::Token, token.expose(), t2 + S)
            .await
            .is_err()
    );

    // Five failures lock the account for 15 minutes, even against the right password; the
    // refusal reads as any other. Attempts made side by side are each counted.
    let t3 = t2 + 120 * S;
    let attempts = (0..8).map(|i| {
        let accounts = accounts.clone();
        let c = code(&secret, t3);
        tokio::spawn(async move {
            accounts
                .sign_in("inese.kalnina", "wrong password!!", &c, "test", t3 + i)
                .await
        })
    });
    for a in attempts.collect::<Vec<_>>() {
        assert!(a.await.unwrap().is_err());
    }
    let locked = accounts
        .sign_in(
            "inese.kalnina",
            PASSWORD,
            &code(&secret, t3),
            "test",
            t3 + 10,
        )
        .await
        .unwrap_err();
    assert!(matches!(locked, IdentityError::Refused), "{locked}");
    let unknown = accounts
        .sign_in(
            "nobody.at.all",
            PASSWORD,
            &code(&secret, t3),
            "test",
            t3 + 10,
        )
        .await
        .unwrap_err();
    assert_eq!(locked.to_string(), unknown.to_string());
    // Once the lock runs out, one failure does not lock it again.
    let t4 = t3 + 16 * 60 * S;
    assert!(
        accounts
            .sign_in("inese.kalnina", "wrong password!!", "000000", "test", t4)
            .await
            .is_err()
    );
    accounts
        .sign_in(
            "inese.kalnina",
            PASSWORD,
            &code(&secret, t4),
            "test",
            t4 + S,
        )
        .await
        .unwrap();
    // An operator unlocks an account without changing its secrets.
    for i in 0..5 {
        let _ = accounts
            .sign_in(
                "inese.kalnina",
                "wrong password!!",
                "000000",
                "test",
                t4 + 2 * S + i,
            )
            .await;
    }
    let t45 = t4 + 60 * S;
    assert!(
        accounts
            .sign_in("inese.kalnina", PASSWORD, &code(&secret, t45), "test", t45)
            .await
            .is_err()
    );
    accounts
        .unlock("inese.kalnina", "operator", t45)
        .await
        .unwrap();
    let t46 = t45 + 30 * S;
    accounts
        .sign_in("inese.kalnina", PASSWORD, &code(&secret, t46), "test", t46)
        .await
        .unwrap();

    // A reset gives a new secret: the old one's codes no longer sign in.
    let (token, _) = accounts.issue_token(&me, "cli", None, t4).await.unwrap();
    let new_secret = accounts
        .reset(
            "inese.kalnina",
            "another long passphrase",
            "operator",
            t4 + S,
        )
        .await
        .unwrap();
    assert_ne!(new_secret, secret);
    assert!(
        accounts
            .authenticate(CredentialKind::Token, token.expose(), t4 + 2 * S)
            .await
            .is_err()
    );
    let t5 = t4 + 60 * S;
    assert!(
        accounts
            .sign_in(
                "inese.kalnina",
                "another long passphrase",
                &code(&secret, t5),
                "test",
                t5
            )
            .await
            .is_err()
    );
    accounts
        .sign_in(
            "inese.kalnina",
            "another long passphrase",
            &code(&new_secret, t5 + 30 * S),
            "test",
            t5 + 30 * S,
        )
        .await
        .unwrap();

    // Nothing secret in the audit: no password, code, session or token.
    store.seal_audit().await.unwrap();
    let audit = format!("{:?}", store.audit_rows(0, 10_000).await.unwrap());
    for secret in [PASSWORD, session.expose(), token.expose(), csrf.expose()] {
        assert!(!audit.contains(secret), "{secret} in the audit");
    }
    assert!(audit.contains("account.sign_in_refused") && audit.contains("token.revoked"));
    // The store keeps hashes only.
    let row = store.account("inese.kalnina").await.unwrap().unwrap();
    assert!(row.password_hash.starts_with("$argon2id$") && !row.password_hash.contains(PASSWORD));
}

/// `scenario` on a new SQLite database of its own (`name`).
async fn on_sqlite<F: std::future::Future<Output = ()>>(
    name: &str,
    scenario: impl FnOnce(Store) -> F,
) {
    let dir = std::env::temp_dir().join(format!("sf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(dir.join("db").to_str().unwrap()).await.unwrap();
    scenario(store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `scenario` on a PostgreSQL schema of its own (`name`), when the server answers.
async fn on_postgres<F: std::future::Future<Output = ()>>(
    name: &str,
    scenario: impl FnOnce(Store) -> F,
) {
    let Some(pg) = studyflow_store::testing::postgres_schema(name).await else {
        return;
    };
    scenario(Store::open(&pg.url).await.unwrap()).await;
}

#[tokio::test]
async fn accounts_on_sqlite() {
    on_sqlite("identity", scenario).await;
}

#[tokio::test]
async fn accounts_on_postgres() {
    on_postgres("identity", scenario).await;
}

/// A person chooses their own password and second factor with the operator's one-time code:
/// nothing signs in before, what they chose stands only once a code of the new second factor
/// proves they keep it, a new start forgets the one before, the code is good once, for a week,
/// whatever the case, hyphens or look-alike digits the person types; wrong codes count towards
/// the lock; a reset starts a new enrolment and revokes every credential, and is refused for a
/// person of the identity provider; neither the code nor the password reaches the audit.
async fn enrolment(store: Store) {
    let accounts = Accounts::new(store.clone(), Policy::default());
    let enrolment = accounts
        .add_enrolling("janis.berzins", "Jānis Bērziņš", false, "operator", T0)
        .await
        .unwrap();
    let code_text = enrolment.code.expose().to_owned();
    assert_eq!(enrolment.until, T0 + 7 * 24 * 3600 * S);
    assert_eq!(code_text.len(), 29, "six groups of four: {code_text}");
    let row = store.account("janis.berzins").await.unwrap().unwrap();
    assert!(row.password_hash.starts_with("$argon2id$") && !row.password_hash.contains(&code_text));
    assert_eq!(row.enrolling_until, enrolment.until);

    // Before enrolment nothing signs in: not the code as a password, whatever the code.
    let now = T0 + 60 * S;
    assert!(matches!(
        accounts
            .sign_in(
                "janis.berzins",
                &code_text,
                &code(&row.totp_secret, now),
                "test",
                now
            )
            .await,
        Err(IdentityError::Refused)
    ));
    // A password too short is refused before the code is tried (no attempt counted).
    assert!(matches!(
        accounts
            .begin_enrolment("janis.berzins", &code_text, "short", "test", now)
            .await,
        Err(IdentityError::Invalid(_))
    ));
    // A wrong code is refused and counted.
    assert!(matches!(
        accounts
            .begin_enrolment(
                "janis.berzins",
                "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA",
                PASSWORD,
                "test",
                now
            )
            .await,
        Err(IdentityError::Refused)
    ));
    assert_eq!(
        store
            .account("janis.berzins")
            .await
            .unwrap()
            .unwrap()
            .failed_attempts,
        2,
        "the sign-in and the wrong code"
    );
    // Begun twice (a reload): the second factor shown first is forgotten.
    let first = accounts
        .begin_enrolment("janis.berzins", &code_text, PASSWORD, "test", now)
        .await
        .unwrap();
    // The code as typed by hand: lower case, spaces for hyphens, a look-alike digit.
    let typed = code_text
        .to_lowercase()
        .replace('-', " ")
        .replace('o', "0")
        .replace('i', "1");
    let secret = accounts
        .begin_enrolment("janis.berzins", &typed, PASSWORD, "test", now)
        .await
        .unwrap();
    assert_ne!(secret, first);
    assert_ne!(secret, row.totp_secret, "a second factor nobody saw before");
    // Nothing stands yet: not the password, not the new second factor.
    assert!(matches!(
        accounts
            .sign_in("janis.berzins", PASSWORD, &code(&secret, now), "test", now)
            .await,
        Err(IdentityError::Refused)
    ));
    // Proven with the second factor shown last only.
    for (app, why) in [
        (code(&first, now), "the one forgotten"),
        ("000000".into(), "a wrong code"),
    ] {
        assert!(
            matches!(
                accounts
                    .confirm_enrolment("janis.berzins", &code_text, &app, "test", now)
                    .await,
                Err(IdentityError::Refused)
            ),
            "{why}"
        );
    }
    accounts
        .confirm_enrolment(
            "janis.berzins",
            &code_text,
            &code(&secret, now),
            "test",
            now,
        )
        .await
        .unwrap();
    // Spent.
    for result in [
        accounts
            .begin_enrolment(
                "janis.berzins",
                &code_text,
                "another long passphrase",
                "test",
                now,
            )
            .await
            .map(drop),
        accounts
            .confirm_enrolment(
                "janis.berzins",
                &code_text,
                &code(&secret, now),
                "test",
                now,
            )
            .await,
    ] {
        assert!(matches!(result, Err(IdentityError::Refused)));
    }
    // The code that proved the enrolment is not good for a sign-in too (a code is good once).
    assert!(matches!(
        accounts
            .sign_in("janis.berzins", PASSWORD, &code(&secret, now), "test", now)
            .await,
        Err(IdentityError::Refused)
    ));
    let me = accounts
        .sign_in(
            "janis.berzins",
            PASSWORD,
            &code(&secret, now + 30 * S),
            "test",
            now + 30 * S,
        )
        .await
        .unwrap();
    assert_eq!(me.login(), "janis.berzins");
    let (session, _) = accounts
        .open_session(&me, "browser", now + 30 * S)
        .await
        .unwrap();

    // A reset: a new enrolment, the session revoked, the old password gone.
    let again = accounts
        .reset_enrolling("janis.berzins", "operator", now + 60 * S)
        .await
        .unwrap();
    assert!(
        accounts
            .authenticate(CredentialKind::Session, session.expose(), now + 61 * S)
            .await
            .is_err()
    );
    let later = now + 120 * S;
    assert!(matches!(
        accounts
            .sign_in(
                "janis.berzins",
                PASSWORD,
                &code(&secret, later),
                "test",
                later
            )
            .await,
        Err(IdentityError::Refused)
    ));
    // The code runs out after a week.
    let late = again.until + S;
    assert!(matches!(
        accounts
            .begin_enrolment("janis.berzins", again.code.expose(), PASSWORD, "test", late)
            .await,
        Err(IdentityError::Refused)
    ));
    // An account the operator gave a password has no enrolment to take.
    accounts
        .add("anna.liepa", "Anna Liepa", PASSWORD, false, "operator", T0)
        .await
        .unwrap();
    assert!(matches!(
        accounts
            .begin_enrolment("anna.liepa", PASSWORD, "a new long passphrase", "test", now)
            .await,
        Err(IdentityError::Refused)
    ));
    // A person of the identity provider has no password here to reset, disabled or not.
    accounts
        .add_oidc(
            "karlis.ozols",
            "Kārlis Ozols",
            "sub-1",
            false,
            "operator",
            T0,
        )
        .await
        .unwrap();
    accounts
        .set_disabled("karlis.ozols", true, "operator", T0)
        .await
        .unwrap();
    assert!(
        accounts
            .reset_enrolling("karlis.ozols", "operator", now)
            .await
            .is_err()
    );
    assert!(
        accounts
            .reset("karlis.ozols", PASSWORD, "operator", now)
            .await
            .is_err()
    );
    let karlis = store.account("karlis.ozols").await.unwrap().unwrap();
    assert!(karlis.disabled && karlis.enrolling_until == 0 && karlis.password_hash == "!");

    store.seal_audit().await.unwrap();
    let audit = format!("{:?}", store.audit_rows(0, 10_000).await.unwrap());
    for secret in [PASSWORD, &code_text, again.code.expose()] {
        assert!(!audit.contains(secret), "{secret} in the audit");
    }
    for action in [
        "account.enrolment_begun",
        "account.enrolled",
        "account.enrol_refused",
        "enrolment code expired",
        "wrong enrolment code",
        "wrong code of the app",
        "enrolled already",
        "not enrolled yet",
    ] {
        assert!(audit.contains(action), "{action} not audited");
    }
}

#[tokio::test]
async fn enrolment_on_sqlite() {
    on_sqlite("enrol", enrolment).await;
}

#[tokio::test]
async fn enrolment_on_postgres() {
    on_postgres("enrolment", enrolment).await;
}

/// A signed-in person changes their own password and replaces their second factor, each
/// proven with the password and a code of the moment; their other browser sessions end (and
/// their other tokens when asked), the credential they act from stays; nothing changes for
/// signing in until a new second factor is proven, only from the session that began it, in
/// time; a new password, a disabling or a reset forgets a second factor begun, and wrong codes
/// of it count towards the lock and forget it.
async fn own_credentials(store: Store) {
    use studyflow_store::Ended;
    const NEW: &str = "another long passphrase";
    let accounts = Accounts::new(store.clone(), Policy::default());
    let secret = accounts
        .add(
            "dace.liepina",
            "Dace Liepiņa",
            PASSWORD,
            false,
            "operator",
            T0,
        )
        .await
        .unwrap()
        .totp_secret;
    // A step (30 s) per proof: a code is good once.
    let at = |n: i64| T0 + n * 30 * S;
    let who = accounts
        .sign_in(
            "dace.liepina",
            PASSWORD,
            &code(&secret, at(1)),
            "test",
            at(1),
        )
        .await
        .unwrap();
    let (here, _) = accounts.open_session(&who, "here", at(1)).await.unwrap();
    let (elsewhere, _) = accounts
        .open_session(&who, "elsewhere", at(1))
        .await
        .unwrap();
    let (token, _) = accounts
        .issue_token(&who, "laptop", None, at(1))
        .await
        .unwrap();
    let session = |s: String, n| {
        let accounts = accounts.clone();
        async move {
            accounts
                .authenticate(CredentialKind::Session, &s, at(n))
                .await
        }
    };
    let held = session(here.expose().to_owned(), 2).await.unwrap();

    // Refused before any proof: too short, or the password they have.
    for new in ["short", PASSWORD] {
        assert!(matches!(
            accounts
                .change_password(
                    &held,
                    PASSWORD,
                    &code(&secret, at(2)),
                    new,
                    false,
                    "test",
                    at(2)
                )
                .await,
            Err(IdentityError::Invalid(_))
        ));
    }
    // Refused without the password they have, or without a code: audited as the person's.
    for (password, c) in [
        ("not the password", code(&secret, at(2))),
        (PASSWORD, "000000".to_owned()),
    ] {
        assert!(matches!(
            accounts
                .change_password(&held, password, &c, NEW, false, "test", at(2))
                .await,
            Err(IdentityError::Refused)
        ));
    }
    // A second factor begun, then the password changed: the key begun is forgotten.
    let forgotten = accounts
        .begin_second_factor(&held, PASSWORD, &code(&secret, at(3)), "test", at(3))
        .await
        .unwrap();
    let ended = accounts
        .change_password(
            &held,
            PASSWORD,
            &code(&secret, at(4)),
            NEW,
            false,
            "test",
            at(4),
        )
        .await
        .unwrap();
    assert_eq!(
        ended,
        Ended {
            sessions: 1,
            tokens: 0
        },
        "the other browser's session"
    );
    assert!(matches!(
        accounts
            .confirm_second_factor(&held, &code(&forgotten, at(4)), false, "test", at(4))
            .await,
        Err(IdentityError::Invalid(_))
    ));
    assert!(matches!(
        session(elsewhere.expose().to_owned(), 5).await,
        Err(IdentityError::Unauthenticated)
    ));
    assert!(session(here.expose().to_owned(), 5).await.is_ok());
    assert!(
        accounts
            .authenticate(CredentialKind::Token, token.expose(), at(5))
            .await
            .is_ok(),
        "a personal token stays unless asked"
    );
    assert!(matches!(
        accounts
            .sign_in(
                "dace.liepina",
                PASSWORD,
                &code(&secret, at(5)),
                "test",
                at(5)
            )
            .await,
        Err(IdentityError::Refused)
    ));
    // (A sign-in proven since: the one before the change is issued nothing more.)
    let who = accounts
        .sign_in("dace.liepina", NEW, &code(&secret, at(6)), "test", at(6))
        .await
        .unwrap();

    // A new second factor: the old one signs in until the new one is proven; only the key
    // shown last, only from the session that began it.
    let first = accounts
        .begin_second_factor(&held, NEW, &code(&secret, at(7)), "test", at(7))
        .await
        .unwrap();
    let (again, _) = accounts.open_session(&who, "again", at(7)).await.unwrap();
    let other = session(again.expose().to_owned(), 7).await.unwrap();
    let second = accounts
        .begin_second_factor(&held, NEW, &code(&secret, at(8)), "test", at(8))
        .await
        .unwrap();
    assert_ne!(first, second);
    assert_ne!(second, secret);
    accounts
        .sign_in("dace.liepina", NEW, &code(&secret, at(9)), "test", at(9))
        .await
        .unwrap();
    for (from, app, why) in [
        (&held, code(&first, at(9)), "the one begun before"),
        (&held, "000000".into(), "a wrong code"),
        (&other, code(&second, at(9)), "another session"),
    ] {
        assert!(
            matches!(
                accounts
                    .confirm_second_factor(from, &app, false, "test", at(9))
                    .await,
                Err(IdentityError::Invalid(_))
            ),
            "{why}"
        );
    }
    let ended = accounts
        .confirm_second_factor(&held, &code(&second, at(10)), true, "test", at(10))
        .await
        .unwrap();
    assert_eq!(
        ended,
        Ended {
            sessions: 1,
            tokens: 1
        },
        "asked to revoke the tokens"
    );
    assert!(session(again.expose().to_owned(), 11).await.is_err());
    assert!(session(here.expose().to_owned(), 11).await.is_ok());
    assert!(
        accounts
            .authenticate(CredentialKind::Token, token.expose(), at(11))
            .await
            .is_err()
    );
    assert!(matches!(
        accounts
            .sign_in("dace.liepina", NEW, &code(&secret, at(11)), "test", at(11))
            .await,
        Err(IdentityError::Refused)
    ));
    // The code that proved it is spent; the next one signs in.
    assert!(matches!(
        accounts
            .sign_in("dace.liepina", NEW, &code(&second, at(10)), "test", at(10))
            .await,
        Err(IdentityError::Refused)
    ));
    accounts
        .sign_in("dace.liepina", NEW, &code(&second, at(12)), "test", at(12))
        .await
        .unwrap();

    // Ten minutes to prove it: then it is gone.
    let late = accounts
        .begin_second_factor(&held, NEW, &code(&second, at(13)), "test", at(13))
        .await
        .unwrap();
    assert!(matches!(
        accounts
            .confirm_second_factor(&held, &code(&late, at(34)), false, "test", at(34))
            .await,
        Err(IdentityError::Invalid(_))
    ));

    // Wrong codes count towards the lock: the fifth in a row locks the account and forgets
    // the key begun (a right code after it finds nothing).
    let guessed = accounts
        .begin_second_factor(&held, NEW, &code(&second, at(35)), "test", at(35))
        .await
        .unwrap();
    let mut refusals = Vec::new();
    for _ in 0..5 {
        refusals.push(
            accounts
                .confirm_second_factor(&held, "000000", false, "test", at(35))
                .await
                .unwrap_err(),
        );
    }
    assert!(
        matches!(refusals[3], IdentityError::Invalid(_)),
        "{refusals:?}"
    );
    assert!(
        matches!(refusals[4], IdentityError::Refused),
        "{refusals:?}"
    );
    let row = store.account("dace.liepina").await.unwrap().unwrap();
    assert!(row.locked_until > at(35) && row.pending_totp_secret.is_none());
    assert!(matches!(
        accounts
            .confirm_second_factor(&held, &code(&guessed, at(35)), false, "test", at(35))
            .await,
        Err(IdentityError::Refused)
    ));
    accounts
        .unlock("dace.liepina", "operator", at(36))
        .await
        .unwrap();

    // Begun, then the account disabled and enabled again, or reset: nothing left to prove.
    let disabled = accounts
        .begin_second_factor(&held, NEW, &code(&second, at(37)), "test", at(37))
        .await
        .unwrap();
    accounts
        .set_disabled("dace.liepina", true, "operator", at(38))
        .await
        .unwrap();
    accounts
        .set_disabled("dace.liepina", false, "operator", at(38))
        .await
        .unwrap();
    assert!(
        store
            .account("dace.liepina")
            .await
            .unwrap()
            .unwrap()
            .pending_totp_secret
            .is_none()
    );
    assert!(matches!(
        accounts
            .confirm_second_factor(&held, &code(&disabled, at(38)), false, "test", at(38))
            .await,
        Err(IdentityError::Invalid(_))
    ));
    let secret = accounts
        .reset("dace.liepina", PASSWORD, "operator", at(39))
        .await
        .unwrap();
    assert!(session(here.expose().to_owned(), 39).await.is_err());

    // A sign-in under way while the credentials change — a reset, or the person's own change
    // from another session — gets no session or token: it was proven with what is gone.
    let racing = accounts
        .sign_in(
            "dace.liepina",
            PASSWORD,
            &code(&secret, at(40)),
            "test",
            at(40),
        )
        .await
        .unwrap();
    let secret = accounts
        .reset("dace.liepina", PASSWORD, "operator", at(41))
        .await
        .unwrap();
    assert!(matches!(
        accounts.open_session(&racing, "racing", at(41)).await,
        Err(IdentityError::Refused)
    ));
    assert!(matches!(
        accounts.issue_token(&racing, "racing", None, at(41)).await,
        Err(IdentityError::Refused)
    ));
    let who = accounts
        .sign_in(
            "dace.liepina",
            PASSWORD,
            &code(&secret, at(42)),
            "test",
            at(42),
        )
        .await
        .unwrap();
    let (mine, _) = accounts.open_session(&who, "mine", at(42)).await.unwrap();
    let racing = accounts
        .sign_in(
            "dace.liepina",
            PASSWORD,
            &code(&secret, at(43)),
            "test",
            at(43),
        )
        .await
        .unwrap();
    let held = session(mine.expose().to_owned(), 44).await.unwrap();
    accounts
        .change_password(
            &held,
            PASSWORD,
            &code(&secret, at(44)),
            NEW,
            false,
            "test",
            at(44),
        )
        .await
        .unwrap();
    assert!(matches!(
        accounts.open_session(&racing, "racing", at(44)).await,
        Err(IdentityError::Refused)
    ));
    // A sign-in proven since is issued its session as ever.
    let who = accounts
        .sign_in("dace.liepina", NEW, &code(&secret, at(45)), "test", at(45))
        .await
        .unwrap();
    let (after, _) = accounts.open_session(&who, "after", at(45)).await.unwrap();

    // A command line's sign-in approved in the browser and not yet collected gives no token
    // once the person changed their credentials (a phished approval waiting for its poll).
    let asked = accounts
        .request_device("laptop", None, "test", at(45))
        .await
        .unwrap();
    accounts
        .decide_device(&asked.user_code, &who, true, at(45))
        .await
        .unwrap();
    let held = session(after.expose().to_owned(), 46).await.unwrap();
    accounts
        .change_password(
            &held,
            NEW,
            &code(&secret, at(46)),
            PASSWORD,
            true,
            "test",
            at(46),
        )
        .await
        .unwrap();
    assert!(matches!(
        accounts
            .poll_device(asked.device_code.expose(), at(46))
            .await
            .unwrap(),
        studyflow_identity::devices::DevicePoll::Denied
    ));

    // A sign-in under way while the account is disabled gets nothing, even once enabled again.
    let racing = accounts
        .sign_in(
            "dace.liepina",
            PASSWORD,
            &code(&secret, at(47)),
            "test",
            at(47),
        )
        .await
        .unwrap();
    accounts
        .set_disabled("dace.liepina", true, "operator", at(47))
        .await
        .unwrap();
    assert!(matches!(
        accounts.issue_token(&racing, "racing", None, at(47)).await,
        Err(IdentityError::Refused)
    ));
    accounts
        .set_disabled("dace.liepina", false, "operator", at(47))
        .await
        .unwrap();
    assert!(
        accounts
            .tokens(&racing)
            .await
            .unwrap()
            .iter()
            .all(|t| t.label != "racing")
    );

    // Audited as the person's, with what ended, never a password or a key.
    store.seal_audit().await.unwrap();
    let rows = store.audit_rows(0, 10_000).await.unwrap();
    let audit = format!("{rows:?}");
    for key in [&forgotten, &first, &second, &late, &guessed, &disabled] {
        assert!(!audit.contains(&totp::base32(key)), "a key in the audit");
    }
    for secret in [PASSWORD, NEW, here.expose(), elsewhere.expose()] {
        assert!(!audit.contains(secret), "{secret} in the audit");
    }
    for action in [
        "account.proven",
        "account.proof_refused",
        "account.password_changed",
        "account.second_factor_begun",
        "account.second_factor_refused",
        "account.second_factor_replaced",
    ] {
        assert!(audit.contains(action), "{action} not audited");
    }
    assert!(
        rows.iter()
            .filter(|r| r.event.action == "account.proof_refused")
            .all(|r| r.event.actor == "dace.liepina"),
        "a signed-in person's failed proof is theirs, not an unauthenticated sign-in"
    );
    assert!(
        audit.contains(r#"\"sessions_ended\":1,\"tokens_revoked\":1"#),
        "{audit}"
    );
}

#[tokio::test]
async fn own_credentials_on_sqlite() {
    on_sqlite("own", own_credentials).await;
}

#[tokio::test]
async fn own_credentials_on_postgres() {
    on_postgres("own_credentials", own_credentials).await;
}
