//! The engine's commands end to end, in-process, on a fresh SQLite database: exit codes,
//! refusals that change nothing, and what each command says. A person's commands go through
//! `studyflow serve` with the personal token `studyflow login` keeps; the operator's run on the
//! database.

#[path = "../engine/server/tests/browser/mod.rs"]
mod browser;

use studyflow_tests::{TempDir, add_user, background, code, serve, start, studyflow};

const SPEC: &str = "specs/recidivism-2026-cohort.yaml";
const STUDY: &str = "recidivism-2026-cohort";

/// The plan hash `submit` printed.
fn plan_hash(said: &str) -> String {
    said.split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .map(|w| w.trim_end_matches([',', ';']).to_owned())
        .unwrap_or_else(|| panic!("no plan hash in {said}"))
}

#[test]
fn a_study_from_submission_to_its_first_task_and_the_audit() {
    let dir = TempDir::new("engine-cli");
    let db = format!("{}/studyflow.db", dir.path());
    // The audit signed (issue #12): a key made once, given to every command.
    let key = format!("{}/audit.key", dir.path());
    let keygen = studyflow(&["audit", "keygen", "--name", "test.lv/audit", "--out", &key]);
    assert_eq!(keygen.code, 0, "{}", keygen.transcript());
    let public = keygen.stdout.trim().to_owned();
    assert!(public.starts_with("test.lv/audit+"), "{public}");
    assert!(!public.contains("PRIVATE"), "{public}");
    let run = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend(["--database", db.as_str(), "--audit-key-file", key.as_str()]);
        studyflow(&v)
    };
    // The operator makes the people's accounts (the first makes the database) and serves.
    let password = dir.file("password", "a long enough passphrase\n");
    let secrets: Vec<(&str, Vec<u8>)> = ["inese.kalnina", "gatis.krumins", "dace.liepina"]
        .into_iter()
        .map(|l| (l, add_user(&db, l, &password, &["--audit-key-file", &key])))
        .collect();
    let served = serve(&["--database", &db, "--audit-key-file", &key]);
    // Each signs in once (a code is good once), keeping a token of their own.
    let token = |login: &str| format!("{}/{login}.token", dir.path());
    for (login, secret) in &secrets {
        let r = studyflow(&[
            "login",
            "--server",
            &served.url,
            "--login",
            login,
            "--password-file",
            &password,
            "--code",
            &code(secret, 0),
            "--token-file",
            &token(login),
        ]);
        assert_eq!(r.code, 0, "{}", r.transcript());
        assert!(
            r.stdout
                .starts_with(&format!("signed in to {} as {login}", served.url))
        );
        #[cfg(unix)]
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(token(login)).unwrap().permissions()
            ) & 0o777,
            0o600
        );
    }
    // The same code again is refused: a replay.
    let r = studyflow(&[
        "login",
        "--server",
        &served.url,
        "--login",
        "inese.kalnina",
        "--password-file",
        &password,
        "--code",
        &code(&secrets[0].1, 0),
        "--token-file",
        &token("again"),
    ]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(r.stderr.contains("sign-in refused"), "{}", r.stderr);
    let person = |login: &str, args: &[&str]| {
        let mut v = args.to_vec();
        let t = token(login);
        v.extend(["--server", served.url.as_str(), "--token-file", t.as_str()]);
        studyflow(&v)
    };
    // Without a token, a person's command says how to sign in.
    let r = studyflow(&[
        "tasks",
        "--server",
        &served.url,
        "--token-file",
        &token("nobody"),
    ]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    assert!(r.stderr.contains("studyflow login"), "{}", r.stderr);
    // An invalid spec is refused with its diagnostics, and nothing is stored.
    let bad = dir.file(
        "bad.yaml",
        &std::fs::read_to_string(studyflow_tests::root().join(SPEC))
            .unwrap()
            .replace("purpose:", "porpose:"),
    );
    let r = person("inese.kalnina", &["submit", &bad]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stderr.contains("error[SF010]") && r.stderr.contains("nothing was stored"),
        "{}",
        r.stderr
    );
    assert!(run(&["status"]).stdout.starts_with("no studies"));

    let r = person("inese.kalnina", &["submit", SPEC]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout
            .contains("submitted recidivism-2026-cohort version 1, plan sha256:")
    );
    let hash = plan_hash(&r.stdout);
    let r = person("inese.kalnina", &["approve", STUDY, "--plan-hash", &hash]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("not bound to an approver"),
        "{}",
        r.stderr
    );
    let r = person("inese.kalnina", &["start", STUDY]);
    assert_eq!(r.code, 1, "unapproved: {}", r.transcript());
    // Only the plan reviewed is approved.
    let r = person(
        "gatis.krumins",
        &["approve", STUDY, "--plan-hash", "sha256:0000"],
    );
    assert_eq!(r.code, 1, "{}", r.transcript());
    let r = person("gatis.krumins", &["approve", STUDY, "--plan-hash", &hash]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(r.stdout.contains("as gatis.krumins"), "{}", r.stdout);
    let r = person("inese.kalnina", &["start", STUDY]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let r = run(&["worker", "--once", "--unsigned-audit", "--placeholder"]);
    assert_eq!(
        r.stdout,
        "worker: 6 step runs executed\n",
        // (the last of them prepares the quality check's report before its task opens)
        "{}",
        r.transcript()
    );
    assert!(
        person("dace.liepina", &["tasks"])
            .stdout
            .starts_with("no open tasks for you")
    );
    let tasks = person("inese.kalnina", &["tasks"]).stdout;
    assert!(tasks.contains("quality-check"), "{tasks}");
    // What to do, in words; never the engine's raw record.
    assert!(
        tasks.contains("Check the study dataset's quality and correct it")
            && tasks.contains("complete this task with a note"),
        "{tasks}"
    );
    assert!(!tasks.contains('{') && !tasks.contains('"'), "{tasks}");
    let id = tasks.split_whitespace().next().unwrap().to_owned();
    let r = person("dace.liepina", &["task", "complete", &id]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("p.25.2"), "{}", r.stderr);
    // A note on a step with personal data is kept only sealed under the study's keys
    // (MK403 p.26); the placeholder worker made none, so it is refused and the task stays open.
    let r = person(
        "inese.kalnina",
        &["task", "complete", "--note", "two duplicates merged", &id],
    );
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(r.stderr.contains("p.26"), "{}", r.stderr);
    // The same from a file (a note about a person stays out of the process list).
    let note = std::env::temp_dir().join(format!("sf-note-{}.txt", std::process::id()));
    std::fs::write(&note, "Anna called back; two duplicates merged").unwrap();
    let r = person(
        "inese.kalnina",
        &[
            "task",
            "complete",
            "--note-file",
            note.to_str().unwrap(),
            &id,
        ],
    );
    std::fs::remove_file(&note).unwrap();
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(r.stderr.contains("p.26"), "{}", r.stderr);
    assert_eq!(person("inese.kalnina", &["task", "complete", &id]).code, 0);
    let r = person("inese.kalnina", &["task", "note", &id]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            "task {id} (quality-check) has no note\n"
                .replace("{id}", &id)
                .as_str()
        ),
        "{}",
        r.transcript()
    );
    let status = run(&["status", STUDY]).stdout;
    assert!(
        status.contains("study recidivism-2026-cohort — running"),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("quality-check") && l.contains("done")),
        "{status}"
    );
    let r = run(&["audit", "verify"]);
    assert_eq!(
        (r.code, r.stdout.starts_with("audit intact: ")),
        (0, true),
        "{}",
        r.transcript()
    );
    assert!(
        r.stdout.contains("each signed by the audit key") && !r.stdout.contains("; 0 checkpoints"),
        "{}",
        r.stdout
    );
    // With the public key alone (what an auditor holds), and against another key.
    let r = studyflow(&[
        "audit",
        "verify",
        "--database",
        &db,
        "--public-key",
        &public,
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let other = format!("{}/other.key", dir.path());
    let other = studyflow(&[
        "audit",
        "keygen",
        "--name",
        "test.lv/audit",
        "--out",
        &other,
    ]);
    let r = studyflow(&[
        "audit",
        "verify",
        "--database",
        &db,
        "--public-key",
        other.stdout.trim(),
    ]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stdout.contains("not signed by the audit key"),
        "{}",
        r.stdout
    );
    let export = run(&["audit", "export"]).stdout;
    let first: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    // The accounts came first; every act names the login that did it.
    assert_eq!(first["action"], "account.added");
    assert_eq!(first["seq"], 1);
    assert!(
        export.contains("\"actor\":\"inese.kalnina\",\"action\":\"study.submitted\""),
        "{export}"
    );
    assert!(!export.contains("a long enough passphrase"));
    assert!(
        export
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    // The export carries its checkpoints: a copy verifies elsewhere with the public key alone,
    // and an edited copy does not.
    assert!(export.contains("{\"checkpoint\":"), "{export}");
    let copy = dir.file("audit.jsonl", &export);
    let r = studyflow(&[
        "audit",
        "verify",
        "--export",
        &copy,
        "--public-key",
        &public,
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout.contains("each signed by the audit key"),
        "{}",
        r.stdout
    );
    let edited = dir.file(
        "edited.jsonl",
        &export.replacen(
            "\"actor\":\"inese.kalnina\"",
            "\"actor\":\"someone.else\"",
            1,
        ),
    );
    let r = studyflow(&[
        "audit",
        "verify",
        "--export",
        &edited,
        "--public-key",
        &public,
    ]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert_eq!(run(&["status", "no-such-study"]).code, 1);
}

/// `studyflow login --device` (RFC 8628): the command line shows a code, the person enters it
/// on the server's `/device` page in a browser where they are signed in, sees what asks (its
/// label and address), and approves; the command line receives the person's personal token
/// and their commands work. A mistyped or spent code finds nothing; a grant denied in the
/// browser gives no token; a command line that polls too fast is told to slow down.
#[test]
fn a_command_line_signs_in_through_the_browser() {
    let dir = TempDir::new("device");
    let db = format!("{}/studyflow.db", dir.path());
    let password = dir.file("password", "a long enough passphrase\n");
    let secret = add_user(&db, "inese.kalnina", &password, &[]);
    let served = serve(&["--database", &db]);
    let token = format!("{}/inese.token", dir.path());
    let mut cli = start(&[
        "login",
        "--device",
        "--server",
        &served.url,
        "--token-file",
        &token,
        "--label",
        "laptop of Inese",
    ]);
    let said = cli.said_until("waiting");
    let user_code = said
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 9 && l.as_bytes()[4] == b'-')
        .unwrap_or_else(|| panic!("no code in {said}"))
        .to_owned();
    assert!(said.contains(&format!("{}/device", served.url)), "{said}");
    // The browser, signed in with the password and a code of the second factor; its requests
    // each awaited here (the commands run their own runtime).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = browser::client();
    let cookie = rt.block_on(browser::session_cookie(
        &http,
        &served.url,
        "inese.kalnina",
        "a long enough passphrase",
        &code(&secret, 0),
    ));
    // The page takes the code typed, in a form of the session's: no link fills it in.
    let html = rt.block_on(async {
        let r = http
            .get(format!("{}/device?code={user_code}", served.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        r.text().await.unwrap()
    });
    assert!(
        html.contains("id=\"code\"") && !html.contains(&format!("value=\"{user_code}\"")),
        "{html}"
    );
    let csrf = browser::form_token(&html);
    let decide = |code: &str, decision: &str| {
        rt.block_on(async {
            let r = http
                .post(format!("{}/device", served.url))
                .header("cookie", &cookie)
                .header("sec-fetch-site", "same-origin")
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("code", code),
                    ("decision", decision),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    // Typed in small letters, without the hyphen: the same code, and what asks is shown.
    let (status, html) = decide(&user_code.replace('-', "").to_lowercase(), "");
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&user_code)
            && html.contains("laptop of Inese")
            && html.contains("127.0.0.1")
            && html.contains("id=\"approve\""),
        "{html}"
    );
    let (status, html) = decide("BCDF-GHJK", "");
    assert_eq!(status, 404, "{html}");
    assert!(html.contains("id=\"problem\""), "{html}");
    let (status, html) = decide(&user_code, "approve");
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"decided\""), "{html}");
    let (code_, said) = cli.ended();
    assert_eq!(code_, 0, "{said}");
    assert!(
        said.contains(&format!("signed in to {} as inese.kalnina", served.url)),
        "{said}"
    );
    // The token is the person's: their commands work with it.
    let r = studyflow(&["tasks", "--server", &served.url, "--token-file", &token]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    // `studyflow tokens` lists it; an id that is none is refused.
    let r = studyflow(&["tokens", "--server", &served.url, "--token-file", &token]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout.contains("laptop of Inese") && r.stdout.contains("valid until"),
        "{}",
        r.transcript()
    );
    let r = studyflow(&[
        "tokens",
        "--server",
        &served.url,
        "--token-file",
        &token,
        "--revoke",
        "laptop",
    ]);
    assert_ne!(r.code, 0, "{}", r.transcript());
    assert!(r.stderr.contains("is not a token id"), "{}", r.transcript());
    // The person sees it among their command lines in the browser, and revokes it there (a
    // lost laptop): the command line can act no more.
    let (status, html) = rt.block_on(async {
        let r = http
            .get(format!("{}/tokens", served.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("laptop of Inese"), "{html}");
    let id = html
        .split("action=\"/tokens/")
        .nth(1)
        .and_then(|t| t.split('/').next())
        .unwrap()
        .to_owned();
    let status = rt.block_on(async {
        http.post(format!("{}/tokens/{id}/revoke", served.url))
            .header("cookie", &cookie)
            .header("sec-fetch-site", "same-origin")
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 303);
    let r = studyflow(&["tasks", "--server", &served.url, "--token-file", &token]);
    assert_ne!(r.code, 0, "{}", r.transcript());
    assert!(r.stderr.contains("not signed in"), "{}", r.transcript());
    // A decided code finds nothing any more.
    assert_eq!(decide(&user_code, "").0, 404);
    assert_eq!(decide(&user_code, "approve").0, 404);

    // Through the API: polled too fast, then denied in the browser.
    let api = |path: &str, body: serde_json::Value| {
        rt.block_on(async {
            let r = http
                .post(format!("{}{path}", served.url))
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        })
    };
    let (status, asked) = api("/api/v1/device", serde_json::json!({"label": "other"}));
    assert_eq!(status, 201, "{asked}");
    assert_eq!(asked["interval"], 5);
    let device_code = serde_json::json!({"device_code": asked["device_code"]});
    let kind = |v: &serde_json::Value| {
        v["type"]
            .as_str()
            .unwrap_or("")
            .rsplit("problem-")
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let (status, p) = api("/api/v1/device/token", device_code.clone());
    assert_eq!(
        (status, kind(&p)),
        (400, "authorization_pending".into()),
        "{p}"
    );
    let (status, p) = api("/api/v1/device/token", device_code.clone());
    assert_eq!((status, kind(&p)), (400, "slow_down".into()), "{p}");
    let (status, html) = decide(asked["user_code"].as_str().unwrap(), "deny");
    assert_eq!(status, 200, "{html}");
    std::thread::sleep(std::time::Duration::from_secs(5));
    let (status, p) = api("/api/v1/device/token", device_code);
    assert_eq!((status, kind(&p)), (400, "access_denied".into()), "{p}");
    let (status, p) = api(
        "/api/v1/device/token",
        serde_json::json!({"device_code": "sfd_never-asked-for"}),
    );
    assert_eq!(status, 400, "{p}");
    // A grant gives its token once: the next poll finds it spent.
    let (_, once) = api("/api/v1/device", serde_json::json!({"label": "once"}));
    assert_eq!(
        decide(once["user_code"].as_str().unwrap(), "approve").0,
        200
    );
    let polled = serde_json::json!({"device_code": once["device_code"]});
    let (status, issued) = api("/api/v1/device/token", polled.clone());
    assert_eq!(status, 201, "{issued}");
    let (status, p) = api("/api/v1/device/token", polled);
    assert_eq!((status, kind(&p)), (400, "expired_token".into()), "{p}");
    // That token revoked with `studyflow tokens --revoke` and the start of its id, by the
    // command line that holds it.
    let once_file = format!("{}/once.token", dir.path());
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&once_file)
            .unwrap();
        let kept = serde_json::json!({"server": served.url, "token": issued["token"]});
        f.write_all(kept.to_string().as_bytes()).unwrap();
    }
    let id = issued["id"].as_str().unwrap();
    let r = studyflow(&[
        "tokens",
        "--server",
        &served.url,
        "--token-file",
        &once_file,
        "--revoke",
        &id[..10],
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout.contains("revoked the token `once`"),
        "{}",
        r.transcript()
    );
    let r = studyflow(&["tasks", "--server", &served.url, "--token-file", &once_file]);
    assert_ne!(r.code, 0, "{}", r.transcript());
    // An approved grant not collected yet gives nothing once the operator disables the
    // account (its revocation covers it), not even after the account is enabled again.
    let (_, late) = api("/api/v1/device", serde_json::json!({"label": "late"}));
    assert_eq!(
        decide(late["user_code"].as_str().unwrap(), "approve").0,
        200
    );
    for act in ["disable", "enable"] {
        let r = studyflow(&["user", act, "inese.kalnina", "--database", &db]);
        assert_eq!(r.code, 0, "{}", r.transcript());
    }
    let (status, p) = api(
        "/api/v1/device/token",
        serde_json::json!({"device_code": late["device_code"]}),
    );
    assert_eq!((status, kind(&p)), (400, "access_denied".into()), "{p}");
}

/// `user add --enrol`: the operator gets a one-time code and never the password; `user list`
/// says the person has not enrolled; on the server's `/enrol` page the person chooses their
/// password and gets their second factor, with which they sign in; `user reset --enrol` takes
/// both away again. A password and an enrolment at once are refused.
#[test]
fn a_person_chooses_their_own_password_with_the_operators_code() {
    let dir = TempDir::new("enrol");
    let db = format!("{}/studyflow.db", dir.path());
    let r = studyflow(&[
        "user",
        "add",
        "janis.berzins",
        "--name",
        "Jānis Bērziņš",
        "--enrol",
        "--database",
        &db,
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let said_code = |stdout: &str| {
        stdout
            .lines()
            .skip_while(|l| !l.ends_with("the code"))
            .nth(1)
            .unwrap_or_else(|| panic!("no code in {stdout}"))
            .trim()
            .to_owned()
    };
    let enrol_code = said_code(&r.stdout);
    assert_eq!(enrol_code.len(), 29, "{}", r.stdout);
    assert!(r.stdout.contains("/enrol page"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("otpauth"),
        "no second factor yet: {}",
        r.stdout
    );
    let r = studyflow(&["user", "list", "--database", &db]);
    assert!(r.stdout.contains("not enrolled yet"), "{}", r.transcript());
    let password = dir.file("password", "a long enough passphrase\n");
    let r = studyflow(&[
        "user",
        "reset",
        "janis.berzins",
        "--enrol",
        "--password-file",
        &password,
        "--database",
        &db,
    ]);
    assert_eq!(r.code, 2, "{}", r.transcript());

    let served = serve(&["--database", &db]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = browser::client();
    let enrol = |code: &str| {
        rt.block_on(async {
            let r = http
                .post(format!("{}/enrol", served.url))
                .header("sec-fetch-site", "same-origin")
                .form(&[
                    ("login", "janis.berzins"),
                    ("code", code),
                    ("password", "a long enough passphrase"),
                    ("again", "a long enough passphrase"),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let (status, html) = enrol(&enrol_code);
    assert_eq!(status, 200, "{html}");
    let key = html
        .split("<code id=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no key in {html}"));
    let secret = studyflow_identity::totp::from_base32(key).expect("base32");
    // Proven with a code of the app: then on to sign in.
    let status = rt.block_on(async {
        http.post(format!("{}/enrol/confirm", served.url))
            .header("sec-fetch-site", "same-origin")
            .form(&[
                ("login", "janis.berzins"),
                ("code", enrol_code.as_str()),
                ("app_code", code(&secret, 0).as_str()),
            ])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 303);
    assert_eq!(enrol(&enrol_code).0, 401, "the code is spent");
    let r = studyflow(&["user", "list", "--database", &db]);
    assert!(!r.stdout.contains("not enrolled"), "{}", r.transcript());
    // Signed in with what the person chose.
    let token = |ahead: i64| {
        rt.block_on(async {
            http.post(format!("{}/api/v1/tokens", served.url))
                .json(&serde_json::json!({
                    "login": "janis.berzins",
                    "password": "a long enough passphrase",
                    "code": code(&secret, ahead),
                }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    assert_eq!(token(1), 201);
    // A reset takes the password and the second factor away: a new code.
    let r = studyflow(&[
        "user",
        "reset",
        "janis.berzins",
        "--enrol",
        "--database",
        &db,
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert_ne!(said_code(&r.stdout), enrol_code);
    assert_eq!(token(2), 401);
}

/// A person changes their own password and second factor from the command line, through the
/// server with their personal token: each proven with what they have; the new key shown once,
/// and confirmed in a second command when no terminal asks for its code; then only the new
/// ones sign in, and the token they acted with stays.
#[test]
fn a_person_changes_their_own_password_and_second_factor_from_the_command_line() {
    let dir = TempDir::new("own-credentials");
    let db = format!("{}/studyflow.db", dir.path());
    let old = dir.file("old", "a long enough passphrase\n");
    let new = dir.file("new", "another long passphrase\n");
    let short = dir.file("short", "too short\n");
    let secret = add_user(&db, "dace.liepina", &old, &[]);
    let served = serve(&["--database", &db]);
    let token = format!("{}/dace.token", dir.path());
    let with_token = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend([
            "--server",
            served.url.as_str(),
            "--token-file",
            token.as_str(),
        ]);
        studyflow(&v)
    };
    let login = |password: &str, code: &str| {
        with_token(&[
            "login",
            "--login",
            "dace.liepina",
            "--password-file",
            password,
            "--code",
            code,
        ])
    };
    // The tests' clock stands still: a code a step before now, now and a step after.
    let r = login(&old, &code(&secret, -1));
    assert_eq!(r.code, 0, "{}", r.transcript());

    let r = with_token(&[
        "password",
        "--password-file",
        &old,
        "--new-password-file",
        &short,
        "--code",
        &code(&secret, 0),
    ]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(r.stderr.contains("at least 12 characters"), "{}", r.stderr);
    let r = with_token(&[
        "password",
        "--password-file",
        &old,
        "--new-password-file",
        &new,
        "--code",
        &code(&secret, 0),
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(r.stdout.contains("password changed"), "{}", r.stdout);

    let r = with_token(&[
        "second-factor",
        "--password-file",
        &new,
        "--code",
        &code(&secret, 1),
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let key = r
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("key:"))
        .unwrap_or_else(|| panic!("no key in {}", r.stdout))
        .trim()
        .to_owned();
    assert!(r.stdout.contains("otpauth://totp/"), "{}", r.stdout);
    assert!(r.stdout.contains("--confirm"), "{}", r.stdout);
    let replaced = studyflow_identity::totp::from_base32(&key).expect("base32");
    let r = with_token(&["second-factor", "--confirm", "000000"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stderr.contains("not a code of the new second factor"),
        "{}",
        r.stderr
    );
    let r = with_token(&["second-factor", "--confirm", &code(&replaced, 0)]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(r.stdout.contains("second factor replaced"), "{}", r.stdout);

    // The token acted throughout and stays; the old password or second factor no longer
    // signs in, the new ones do.
    let r = with_token(&["tokens"]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let r = login(&old, &code(&replaced, 1));
    assert_eq!(r.code, 1, "{}", r.transcript());
    let r = login(&new, &code(&secret, 1));
    assert_eq!(r.code, 1, "{}", r.transcript());
    let r = login(&new, &code(&replaced, 1));
    assert_eq!(r.code, 0, "{}", r.transcript());
}

#[test]
fn a_file_that_is_not_a_database_is_an_error_and_stays_as_it_was() {
    let dir = TempDir::new("engine-cli-corrupt");
    let text = "name,value\nthis,is a spreadsheet export\n".repeat(200);
    let path = dir.file("studyflow.db", &text);
    let r = studyflow(&["status", "--database", &path]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    assert!(
        r.stderr.contains("is not a studyflow database"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

/// A seal that keeps failing — here the checkpoint log cannot be read — leaves the events
/// recorded and pending, and the act itself stands and is reported done (an account added,
/// its secret given); the operator's `status` says what is wrong, with the reason, not only
/// the log of each act that met it. Once the log is back, the next seal takes them and the
/// audit verifies; a log that lags behind the database's checkpoints is said too.
#[test]
fn a_seal_that_keeps_failing_is_said_by_status() {
    let dir = TempDir::new("seal-fails");
    let Signed {
        db,
        key,
        public,
        password,
    } = signed_audit(&dir);
    let log = format!("{key}.checkpoints");
    let kept = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    add_user(&db, "gatis.krumins", &password, &["--audit-key-file", &key]);
    let status = |args: &[&str]| {
        let mut v = vec!["status", "--database", db.as_str()];
        v.extend(args);
        studyflow(&v)
    };
    let r = status(&["--audit-key-file", &key]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stderr
            .contains("sealing the audit failed: the checkpoint log")
            && r.stderr.contains("cannot be read")
            && r.stderr.contains(&log),
        "{}",
        r.transcript()
    );
    // Without the key nothing is sealed, and nothing fails: the events wait for a holder of
    // the key, and `status` says how many.
    let r = status(&[]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stderr
            .contains("1 recorded audit event(s) wait to be sealed")
            && !r.stderr.contains("failed"),
        "{}",
        r.transcript()
    );
    std::fs::remove_dir(&log).unwrap();
    std::fs::write(&log, &kept).unwrap();
    let r = status(&["--audit-key-file", &key]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(!r.stderr.contains("warning"), "{}", r.transcript());
    let r = studyflow(&[
        "audit",
        "verify",
        "--database",
        &db,
        "--public-key",
        &public,
        "--checkpoint-log",
        &log,
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout.starts_with("audit intact: 2 rows chained;"),
        "{}",
        r.stdout
    );
    // The log without its latest checkpoint (an append that failed after its seal):
    // `status` says how far each reaches.
    let whole = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, &kept).unwrap();
    let r = status(&["--audit-key-file", &key]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stderr.contains(
            "the checkpoint log lacks the latest signed checkpoint: the database's covers rows 1–2, the log's rows 1–1"
        ),
        "{}",
        r.transcript()
    );
    // A log ahead of the database (its last rows and checkpoints deleted, or an older
    // database put back) is no warning: the audit is tampered with, and `status` fails.
    std::fs::write(&log, &whole).unwrap();
    // The database as it stands on disk, its write-ahead log with it.
    let older = format!("{}/older.db", dir.path());
    for part in ["", "-wal", "-shm"] {
        let from = format!("{db}{part}");
        if std::path::Path::new(&from).exists() {
            std::fs::copy(&from, format!("{older}{part}")).unwrap();
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = studyflow_store::Store::open_existing(&older).await.unwrap();
        store
            .execute_raw_for_tests("DELETE FROM audit_checkpoints WHERE tree_size = 2")
            .await
            .unwrap();
        store.close().await;
    });
    let r = studyflow(&["status", "--database", &older, "--audit-key-file", &key]);
    assert_ne!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stderr.contains(
            "the checkpoint log covers rows 1–2, the database's checkpoints only rows 1–1"
        ),
        "{}",
        r.transcript()
    );
}

/// A person acting through the server while its seals of the audit fail is told so: the act
/// stands, and the CLI warns beside what it did (`Studyflow-Audit: unsealed`); the pages say it
/// to whoever is signed in. Once a seal succeeds again, neither does.
#[test]
fn a_person_is_told_when_the_audit_cannot_be_sealed() {
    let dir = TempDir::new("unsealed");
    let Signed {
        db, key, password, ..
    } = signed_audit(&dir);
    let log = format!("{key}.checkpoints");
    let secret = add_user(&db, "dace.liepina", &password, &["--audit-key-file", &key]);
    let served = serve(&["--database", &db, "--audit-key-file", &key]);
    let token = format!("{}/dace.token", dir.path());
    let r = studyflow(&[
        "login",
        "--server",
        &served.url,
        "--login",
        "dace.liepina",
        "--password-file",
        &password,
        "--code",
        &code(&secret, 0),
        "--token-file",
        &token,
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    // The checkpoint log cannot be read from now on: the submission's own seal is the first
    // of this server's to fail, and it is said.
    let kept = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    let spec = studyflow_tests::root().join(SPEC);
    let r = studyflow(&[
        "submit",
        spec.to_str().unwrap(),
        "--server",
        &served.url,
        "--token-file",
        &token,
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stderr
            .contains("warning: done, but the server cannot seal its audit")
            && !r.stderr.contains(&log),
        "{}",
        r.transcript()
    );
    // The pages, to the signed-in: the warning, without the reason.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = browser::client();
    let cookie = rt.block_on(browser::session_cookie(
        &http,
        &served.url,
        "dace.liepina",
        "a long enough passphrase",
        &code(&secret, 1),
    ));
    let studies = || {
        rt.block_on(async {
            let r = http
                .get(format!("{}/studies", served.url))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        })
    };
    let html = studies();
    assert!(
        html.contains("id=\"audit-unsealed\"") && !html.contains(&log),
        "{html}"
    );
    // The log writable again: the next act (signing out the CLI's token) seals everything, and
    // no one is warned.
    std::fs::remove_dir(&log).unwrap();
    std::fs::write(&log, &kept).unwrap();
    let r = studyflow(&["logout", "--server", &served.url, "--token-file", &token]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let html = studies();
    assert!(
        html.contains("id=\"me\"") && !html.contains("audit-unsealed"),
        "{html}"
    );
    let r = studyflow(&["status", "--database", &db, "--audit-key-file", &key]);
    assert!(!r.stderr.contains("warning"), "{}", r.transcript());
}

/// A database whose audit is signed: an audit key made beside it and one account added with
/// it (its first checkpoint in the log `{key}.checkpoints`); the password file for more.
struct Signed {
    db: String,
    key: String,
    /// The audit key's public key.
    public: String,
    password: String,
}

fn signed_audit(dir: &TempDir) -> Signed {
    let db = format!("{}/studyflow.db", dir.path());
    let key = format!("{}/audit.key", dir.path());
    let public = studyflow(&["audit", "keygen", "--name", "test.lv/audit", "--out", &key])
        .stdout
        .trim()
        .to_owned();
    let password = dir.file("password", "a long enough passphrase\n");
    add_user(&db, "inese.kalnina", &password, &["--audit-key-file", &key]);
    Signed {
        db,
        key,
        public,
        password,
    }
}

/// `audit witness` serving on loopback with the witness key `key`, for the log of the audit
/// key `public`, keeping its state in `state`.
fn witness_serving(key: &str, public: &str, state: &str) -> studyflow_tests::Served {
    background(&[
        "audit",
        "witness",
        "--key",
        key,
        "--log-key",
        public,
        "--state",
        state,
        "--listen",
        "127.0.0.1:0",
        "--init",
    ])
    .0
}

/// The installation's witness policy (a file beside the audit key): `audit cosign` asks its
/// witnesses and `audit verify` checks them with its quorum, with no witness on the command
/// line; a policy others may change, or with a line that is not one, is refused at its line.
#[test]
fn the_installations_witness_policy_is_used_by_cosign_and_verify() {
    let dir = TempDir::new("witness-policy");
    let Signed {
        db, key, public, ..
    } = signed_audit(&dir);
    let mut witnesses = Vec::new();
    let mut served = Vec::new();
    for n in ["w1", "w2"] {
        let wkey = format!("{}/{n}.key", dir.path());
        let made = studyflow(&[
            "audit",
            "witness-keygen",
            "--name",
            &format!("witness.test/{n}"),
            "--out",
            &wkey,
        ]);
        assert_eq!(made.code, 0, "{}", made.transcript());
        witnesses.push(made.stdout.trim().to_owned());
        served.push(witness_serving(
            &wkey,
            &public,
            &format!("{}/{n}.state", dir.path()),
        ));
    }
    let policy = format!("{key}.witnesses");
    let write = |text: &str| std::fs::write(&policy, text).unwrap();
    let on_db = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend(["--database", db.as_str(), "--audit-key-file", key.as_str()]);
        studyflow(&v)
    };
    // Only the first is the installation's witness: it cosigns, and verifies.
    write(&format!(
        "# the Service's witnesses\nwitness {} {}\n",
        witnesses[0], served[0].url
    ));
    let r = on_db(&["audit", "cosign"]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout.starts_with("cosigned by witness.test/w1"),
        "{}",
        r.stdout
    );
    let r = on_db(&["audit", "verify"]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout.contains(&format!(
            "witnesses: the policy {policy} (1 of 1 must hold)"
        )) && r.stdout.contains("cosigned by the witness witness.test/w1"),
        "{}",
        r.stdout
    );
    // Both, all needed: the second has not cosigned, so the audit does not verify — the
    // operator did not have to remember to name it.
    let both = format!(
        "witness {} {}\nwitness {} {}\n",
        witnesses[0], served[0].url, witnesses[1], served[1].url
    );
    write(&both);
    let r = on_db(&["audit", "verify"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    // With a quorum of one it does, saying which did not count; after both cosign, both hold.
    write(&format!("{both}quorum 1\n"));
    let r = on_db(&["audit", "verify"]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(r.stdout.contains("NOT counted"), "{}", r.stdout);
    let r = on_db(&["audit", "cosign"]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    write(&both);
    let r = on_db(&["audit", "verify"]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout.contains("cosigned by the witness witness.test/w2"),
        "{}",
        r.stdout
    );
    // A monitor is told of the installation's witnesses, how far each cosigned, and the
    // checkpoint they both cosigned: a note that holds against the public keys alone.
    let server = serve(&["--database", &db, "--audit-key-file", &key]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = browser::client();
    let get = |path: &str| {
        rt.block_on(async {
            let r = http
                .get(format!("{}{path}", server.url))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let (status, body) = get("/api/v1/audit/witnesses");
    assert_eq!(status, 200, "{body}");
    let told: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(told["quorum"], 2, "{told}");
    let told = told["witnesses"].as_array().unwrap();
    assert_eq!(told.len(), 2);
    for (i, w) in told.iter().enumerate() {
        assert_eq!(w["key"], witnesses[i].as_str(), "{w}");
        assert_eq!(w["url"], served[i].url.as_str(), "{w}");
        assert!(w["cosigned_size"].as_u64().unwrap() > 0, "{w}");
        assert!(w["cosigned_at"].as_str().unwrap().ends_with('Z'), "{w}");
    }
    let (status, note) = get("/api/v1/audit/checkpoint/cosigned");
    assert_eq!(status, 200, "{note}");
    let checkpoint = studyflow_store::tlog::AuditVerifier::parse(&public)
        .unwrap()
        .checkpoint(&note)
        .expect("signed with the audit key");
    assert_eq!(
        Some(checkpoint.size),
        told[1]["cosigned_size"].as_u64(),
        "{note}"
    );
    for w in &witnesses {
        let w = studyflow_store::witness::WitnessVerifier::parse(w).unwrap();
        assert!(w.cosigned(&note).is_some(), "{note}");
    }
    // The command line's own witnesses instead of the policy; not both.
    let r = on_db(&["audit", "verify", "--witness", &witnesses[1]]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(!r.stdout.contains("the policy"), "{}", r.stdout);
    let r = on_db(&[
        "audit",
        "verify",
        "--witness",
        &witnesses[1],
        "--witnesses",
        &policy,
    ]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    // Refused: a line that is not one (named by its line), a quorum beyond the witnesses, and
    // a policy others may change.
    write(&format!("{both}quorum two\n"));
    let r = on_db(&["audit", "verify"]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    assert!(
        r.stderr.contains(&format!("{policy}:3:")),
        "{}",
        r.transcript()
    );
    write(&format!("{both}quorum 3\n"));
    assert_eq!(on_db(&["audit", "verify"]).code, 2);
    write(&both);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o666)).unwrap();
        let r = on_db(&["audit", "verify"]);
        assert_eq!(r.code, 2, "{}", r.transcript());
        assert!(r.stderr.contains("chmod go-w"), "{}", r.transcript());
    }
}

#[test]
fn the_demo_runs_the_recidivism_study_end_to_end() {
    let dir = TempDir::new("demo");
    // With `--serve`, the study is left on a running server, its people's accounts printed.
    let (served, stdout) = background(&[
        "demo",
        "--clients",
        "1500",
        "--dir",
        &dir.path(),
        "--serve",
        "--listen",
        "127.0.0.1:0",
    ]);
    let r = studyflow_tests::Outcome {
        code: 0,
        stdout,
        stderr: String::new(),
    };
    for line in [
        "the 2026 cohort has",
        "linked (p.17.2):",
        "deleted right after linkage (p.17.3):",
        "anonymised (p.7):",
        "follow-ups (p.19-20):",
        "Prison Administration notice (p.8): none due",
        "deadlines:",
        "analysis dataset: 7 versions in the study workspace; the latest, with every wave:",
        "identifying data and the study's keys destroyed (p.26): yes",
        "audit verify: passed",
    ] {
        assert!(r.stdout.contains(line), "missing `{line}` in\n{}", r.stdout);
    }
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("identifier scan of") && l.ends_with(": clean")),
        "{}",
        r.stdout
    );
    // The Service's researchers find the analysis dataset with `studyflow release`: the
    // latest version, written after the last wave, whole with its manifest.
    let db = std::path::Path::new(&dir.path()).join("run-1/studyflow.db");
    let release = studyflow(&[
        "release",
        "recidivism-2026-cohort",
        "--database",
        db.to_str().unwrap(),
    ]);
    assert_eq!(release.code, 0, "{}", release.transcript());
    let folder = release
        .stdout
        .lines()
        .next()
        .and_then(|l| l.split_once(": "))
        .map(|(_, f)| std::path::PathBuf::from(f.trim()))
        .unwrap_or_default();
    assert!(
        folder.to_string_lossy().ends_with("/v1-5y_after_end"),
        "{}",
        release.stdout
    );
    for file in [
        "MANIFEST.sha256",
        "codebook.csv",
        "subjects.csv",
        "follow_up_observation.csv",
    ] {
        assert!(folder.join(file).exists(), "{file} in {}", folder.display());
    }
    assert!(
        release.stdout.contains("earlier versions:"),
        "{}",
        release.stdout
    );
    // The Service's researchers download it through the server, as themselves: each file as
    // its manifest says; the approver, who is no researcher, gets nothing (MK403 p.22.5, p.24).
    let account = |login: &str| -> (String, Vec<u8>) {
        let line = r
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{login} ")))
            .unwrap_or_else(|| panic!("no account {login} in\n{}", r.stdout));
        let word_after = |w: &str| {
            line.split_whitespace()
                .skip_while(|x| *x != w)
                .nth(1)
                .unwrap()
                .to_owned()
        };
        let secret = studyflow_identity::totp::from_base32(&word_after("secret")).unwrap();
        (word_after("password"), secret)
    };
    let sign_in = |login: &str| -> String {
        let (password, secret) = account(login);
        let file = dir.file(&format!("{login}.password"), &password);
        let token = format!("{}/{login}.token", dir.path());
        let r = studyflow(&[
            "login",
            "--server",
            &served.url,
            "--login",
            login,
            "--password-file",
            &file,
            "--code",
            &code(&secret, 0),
            "--token-file",
            &token,
        ]);
        assert_eq!(r.code, 0, "{}", r.transcript());
        token
    };
    let out = format!("{}/analysis", dir.path());
    let inese = sign_in("inese.kalnina");
    let got = studyflow(&[
        "download",
        "recidivism-2026-cohort",
        "--out",
        &out,
        "--server",
        &served.url,
        "--token-file",
        &inese,
    ]);
    assert_eq!(got.code, 0, "{}", got.transcript());
    assert!(
        got.stdout.contains("each checked against its manifest"),
        "{}",
        got.stdout
    );
    for file in [
        "subjects.csv",
        "follow_up_observation.csv",
        "codebook.csv",
        "MANIFEST.sha256",
    ] {
        assert_eq!(
            std::fs::read(format!("{out}/{file}")).unwrap(),
            std::fs::read(folder.join(file)).unwrap(),
            "{file} as released"
        );
    }
    let subjects = std::fs::read_to_string(format!("{out}/subjects.csv")).unwrap();
    assert!(
        subjects.starts_with("study_id,"),
        "{}",
        &subjects[..80.min(subjects.len())]
    );
    // Every subject of the cohort the demo formed, bar those k-anonymity suppressed (p.7).
    let cohort: usize = r
        .stdout
        .split("the 2026 cohort has ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the demo says its cohort");
    let rows = subjects.lines().count() - 1;
    assert!(rows > 0 && rows <= cohort, "{rows} of {cohort} subjects");
    let gatis = sign_in("gatis.krumins");
    let refused = studyflow(&[
        "download",
        "recidivism-2026-cohort",
        "--out",
        &format!("{}/approver", dir.path()),
        "--server",
        &served.url,
        "--token-file",
        &gatis,
    ]);
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert!(refused.stderr.contains("p.22.5"), "{}", refused.stderr);
    assert!(!std::path::Path::new(&format!("{}/approver/subjects.csv", dir.path())).exists());
    // The same in a browser: the researcher signs in on the pages, finds the study's released
    // datasets and downloads the analysis dataset from its link, as released; the approver sees
    // the releases listed with no file of them and is refused the file (MK403 p.22.5, p.24).
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let Some(b) = browser::Browser::start().await else {
            return;
        };
        let released = |who: &'static str, ahead: i64| {
            let b = &b;
            let served = &served;
            let (password, secret) = account(who);
            async move {
                b.go(&format!("{}/sign-in", served.url)).await;
                b.type_into("#login", who).await;
                b.type_into("#password", &password).await;
                b.type_into("#code", &code(&secret, ahead)).await;
                b.click("form.stack button[type=submit]").await;
                assert_eq!(b.text("#me").await, who);
                b.go(&format!("{}/studies/recidivism-2026-cohort", served.url))
                    .await;
                // The link the page gives, or the address a person would type.
                let listed = b.link("#releases a", "subjects.csv").await;
                let href = listed.clone().unwrap_or_else(|| {
                    format!(
                        "{}/studies/recidivism-2026-cohort/releases/0/subjects.csv",
                        served.url
                    )
                });
                let (status, body) = b.download(&href, "__Host-studyflow").await;
                b.click("#sign-out button").await;
                (listed.is_some(), status, body)
            }
        };
        let (listed, status, body) = released("inese.kalnina", 1).await;
        assert!(listed, "a link to subjects.csv");
        assert_eq!(status, 200);
        assert_eq!(
            body.as_ref(),
            std::fs::read(folder.join("subjects.csv")).unwrap()
        );
        // The approver sees the release listed, for its recipients only, without a link; the
        // address typed is refused.
        let (listed, status, body) = released("gatis.krumins", 1).await;
        assert!(!listed, "no link for the approver");
        assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
        // In the approver's language (Latvian, the pages' own), with its MK403 point.
        let said = String::from_utf8_lossy(&body);
        assert!(said.contains("MK403 22.5., 24., 25.1. p."), "{said}");
    });
    // Each download is in the audit: who, which file, its sha256.
    let export = studyflow(&["audit", "export", "--database", db.to_str().unwrap()]).stdout;
    let manifest = std::fs::read_to_string(folder.join("MANIFEST.sha256")).unwrap();
    let subjects_hash = manifest
        .lines()
        .find_map(|l| l.strip_suffix("  subjects.csv"))
        .unwrap();
    assert!(
        export
            .lines()
            .any(|l| l.contains("\"actor\":\"inese.kalnina\"")
                && l.contains("release.downloaded")
                && l.contains(subjects_hash)),
        "no download of subjects.csv by inese.kalnina in the audit"
    );
    // A second run gets its own folder; nothing of the first is touched. Its follow-ups go in
    // one request per week of due days (p.19: a configured batch window).
    let again = studyflow(&[
        "demo",
        "--clients",
        "100",
        "--dir",
        &dir.path(),
        "--batch-window",
        "7",
    ]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert!(std::path::Path::new(&dir.path()).join("run-2").exists());
    assert!(
        again.stdout.contains(
            "requests to the Information Centre (one per wave and 7-day window of due days)"
        ),
        "{}",
        again.stdout
    );
}

#[test]
fn the_worker_moves_data_only_when_configured_and_says_what_is_missing() {
    let dir = TempDir::new("engine-cli-plane");
    let db = format!("{}/studyflow.db", dir.path());
    let run = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend(["--database", db.as_str()]);
        studyflow(&v)
    };
    let password = dir.file("password", "a long enough passphrase\n");
    let inese = add_user(&db, "inese.kalnina", &password, &[]);
    let gatis = add_user(&db, "gatis.krumins", &password, &[]);
    let served = serve(&["--database", &db]);
    let person = |login: &str, secret: &[u8], args: &[&str]| {
        let t = format!("{}/{login}.token", dir.path());
        if !std::path::Path::new(&t).exists() {
            let r = studyflow(&[
                "login",
                "--server",
                &served.url,
                "--login",
                login,
                "--password-file",
                &password,
                "--code",
                &code(secret, 0),
                "--token-file",
                &t,
            ]);
            assert_eq!(r.code, 0, "{}", r.transcript());
        }
        let mut v = args.to_vec();
        v.extend(["--server", served.url.as_str(), "--token-file", t.as_str()]);
        studyflow(&v)
    };
    let submitted = person("inese.kalnina", &inese, &["submit", SPEC]);
    assert_eq!(submitted.code, 0, "{}", submitted.transcript());
    let hash = plan_hash(&submitted.stdout);
    assert_eq!(
        person(
            "gatis.krumins",
            &gatis,
            &["approve", STUDY, "--plan-hash", &hash]
        )
        .code,
        0
    );
    assert_eq!(person("inese.kalnina", &inese, &["start", STUDY]).code, 0);
    // Never a silent fallback to the placeholder, which would mark steps done doing nothing.
    let r = run(&["worker", "--once", "--unsigned-audit"]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    assert!(
        r.stderr.contains("--master-key-file") && r.stderr.contains("--placeholder"),
        "{}",
        r.stderr
    );
    assert!(run(&["status", STUDY]).stdout.contains("ready"));
    // Nor does a worker or a server run with an audit no key signs, unless asked for a trial;
    // an audit key that other accounts can read is refused, naming the cure.
    for command in [&["worker", "--placeholder"][..], &["serve"]] {
        let r = run(command);
        assert_eq!(r.code, 2, "{}", r.transcript());
        assert!(
            r.stderr.contains("--audit-key-file") && r.stderr.contains("--unsigned-audit"),
            "{}",
            r.stderr
        );
    }
    let audit_key = format!("{}/open-audit.key", dir.path());
    let made = studyflow(&[
        "audit",
        "keygen",
        "--name",
        "test.lv/audit",
        "--out",
        &audit_key,
    ]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    #[cfg(unix)]
    std::fs::set_permissions(
        &audit_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let r = run(&[
        "worker",
        "--once",
        "--placeholder",
        "--audit-key-file",
        &audit_key,
    ]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    assert!(
        r.stderr.contains("open-audit.key") && r.stderr.contains("chmod 600"),
        "{}",
        r.stderr
    );
    // Configured: the extraction comes from the Service IS export; with no registry address
    // the request to the Information Centre fails for good, saying so, and nothing else runs.
    let key = dir.file("master.key", &"ab".repeat(32));
    // A key file every account can read is refused, naming the cure.
    let r = run(&[
        "worker",
        "--once",
        "--unsigned-audit",
        "--master-key-file",
        &key,
        "--work-dir",
        "unused",
    ]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    #[cfg(unix)]
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let work = format!("{}/work", dir.path());
    let export = dir.file(
        "service-is.csv",
        "personal_code,sex\n290758-10403,male\n325035-11782,female\n",
    );
    let r = run(&[
        "worker",
        "--once",
        "--unsigned-audit",
        "--master-key-file",
        &key,
        "--work-dir",
        &work,
        "--service-is",
        &export,
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let status = run(&["status", STUDY]).stdout;
    assert!(
        status.contains("no registry address is configured"),
        "{status}"
    );
    assert!(
        !status.contains("290758"),
        "no identifier in the status: {status}"
    );
    let bad_key = dir.file("bad.key", "not a key");
    let r = run(&[
        "worker",
        "--once",
        "--unsigned-audit",
        "--master-key-file",
        &bad_key,
        "--work-dir",
        &work,
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.key"), "{}", r.stderr);
}

/// A witness of the audit (issue #12; C2SP tlog-witness and tlog-cosignature): `audit witness`
/// serves one, `audit cosign` has it cosign the latest checkpoint with a consistency proof, and
/// `audit verify --witness` holds the chain against what it cosigned. A database writer who
/// also holds the audit key rewrites a row, recomputes every hash and signs every checkpoint
/// afresh: the key's signatures all check, but the witness's cosignature does not match the
/// rewritten history, and the witness refuses to cosign it.
#[test]
fn a_witness_cosigns_the_audit_and_a_history_rewritten_with_the_audit_key_is_caught() {
    let dir = TempDir::new("witness");
    let Signed {
        db,
        key,
        public,
        password,
    } = signed_audit(&dir);
    let wkey = format!("{}/witness.key", dir.path());
    let made = studyflow(&[
        "audit",
        "witness-keygen",
        "--name",
        "witness.test/w1",
        "--out",
        &wkey,
    ]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let witness = made.stdout.trim().to_owned();
    assert!(witness.starts_with("witness.test/w1+"), "{witness}");
    let w = witness_serving(&wkey, &public, &format!("{}/witness.state", dir.path()));
    let on_db = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend(["--database", db.as_str(), "--audit-key-file", key.as_str()]);
        studyflow(&v)
    };
    let cosign = || on_db(&["audit", "cosign", "--url", &w.url, "--witness", &witness]);
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify", "--witness", witness.as_str()];
        args.extend(extra);
        on_db(&args)
    };
    let r = cosign();
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout.starts_with("cosigned by witness.test/w1: rows 1–"),
        "{}",
        r.stdout
    );
    // The cosignature as C2SP specifies it, checked by a second implementation (Python's
    // `cryptography`, written from the specification).
    let log_path = format!("{key}.checkpoints");
    let notes = studyflow_store::tlog::notes_in(&std::fs::read_to_string(&log_path).unwrap());
    let note = dir.file("cosigned.note", notes.last().unwrap());
    let checked = std::process::Command::new("python3")
        .arg(format!(
            "{}/tests/witness/verify_cosignature.py",
            studyflow_tests::root().display()
        ))
        .args([witness.as_str(), note.as_str()])
        .output();
    match checked {
        Ok(out) if !String::from_utf8_lossy(&out.stderr).contains("No module named") => {
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && said.starts_with("cosigned 1 "),
                "{said}"
            );
            // And a note whose checkpoint was changed after the cosignature is refused.
            let changed = dir.file(
                "changed.note",
                &notes.last().unwrap().replacen("\n1\n", "\n7\n", 1),
            );
            let out = std::process::Command::new("python3")
                .arg(format!(
                    "{}/tests/witness/verify_cosignature.py",
                    studyflow_tests::root().display()
                ))
                .args([witness.as_str(), changed.as_str()])
                .output()
                .unwrap();
            assert!(
                !out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        other => {
            assert!(
                std::env::var_os("CI").is_none(),
                "python3 with `cryptography` is needed under CI: {other:?}"
            );
            eprintln!("skipped the second implementation's check: no python3 with cryptography");
        }
    }
    // More rows, a new checkpoint: cosigned again from the size the witness holds.
    add_user(&db, "gatis.krumins", &password, &["--audit-key-file", &key]);
    let r = cosign();
    assert_eq!(r.code, 0, "{}", r.transcript());
    let r = verify(&[]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let rows: u64 = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("cosigned by the witness witness.test/w1: rows 1–"))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert_eq!(rows, 2, "an account added, then another: {}", r.stdout);
    // Asked, the witness says it has cosigned what the log holds.
    let r = verify(&["--witness-url", &w.url]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    // A witness nobody configured: its cosignature is missing.
    let other = format!("{}/other.key", dir.path());
    let other = studyflow(&[
        "audit",
        "witness-keygen",
        "--name",
        "witness.test/w2",
        "--out",
        &other,
    ]);
    let r = on_db(&["audit", "verify", "--witness", other.stdout.trim()]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stdout
            .contains("no checkpoint is cosigned by the witness witness.test/w2"),
        "{}",
        r.stdout
    );
    // Two witnesses, one of which holds: all of them are needed unless a quorum is given;
    // with one of two, the audit verifies and says which did not count, and why. A witness
    // that cannot be asked does not count either.
    let w2 = other.stdout.trim();
    let both = |extra: &[&str]| {
        let mut args = vec!["--witness", w2];
        args.extend(extra);
        verify(&args)
    };
    let r = both(&[]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    let r = both(&["--witness-quorum", "1"]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout.contains("cosigned by the witness witness.test/w1")
            && r.stdout
                .contains("NOT counted: no checkpoint is cosigned by the witness witness.test/w2"),
        "{}",
        r.stdout
    );
    let gone = "http://127.0.0.1:9/";
    let r = both(&[
        "--witness-quorum",
        "1",
        "--witness-url",
        &w.url,
        "--witness-url",
        gone,
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout
            .contains("NOT counted: the witness witness.test/w2 could not be asked"),
        "{}",
        r.stdout
    );
    let r = both(&["--witness-quorum", "2"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stdout.contains("1 of 2 witnesses hold, 2 are needed"),
        "{}",
        r.stdout
    );
    let r = both(&["--witness-quorum", "3"]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    // Without a quorum, a witness that cannot be reached is this run's error, not a broken
    // audit; one witness given twice counts once.
    let r = both(&["--witness-url", &w.url, "--witness-url", gone]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    assert!(
        r.stderr.contains("could not be asked"),
        "{}",
        r.transcript()
    );
    let r = verify(&["--witness", &witness, "--witness-quorum", "2"]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    assert!(r.stderr.contains("given twice"), "{}", r.transcript());
    // The second witness cosigns too; then the first cannot be asked: the second counts, and
    // the first is reported as not counted only — not also as having cosigned.
    let w2_server = witness_serving(
        &format!("{}/other.key", dir.path()),
        &public,
        &format!("{}/witness2.state", dir.path()),
    );
    let r = on_db(&["audit", "cosign", "--url", &w2_server.url, "--witness", w2]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let r = both(&[
        "--witness-quorum",
        "1",
        "--witness-url",
        gone,
        "--witness-url",
        &w2_server.url,
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout.contains("cosigned by the witness witness.test/w2")
            && !r.stdout.contains("cosigned by the witness witness.test/w1")
            && r.stdout
                .contains("NOT counted: the witness witness.test/w1 could not be asked"),
        "{}",
        r.stdout
    );

    // The rewrite, with the audit key: row 2's actor changed, every hash, the head, the tree
    // and every checkpoint recomputed and signed; the checkpoint log written afresh.
    let cosigned_log = std::fs::read_to_string(&log_path).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use studyflow_store::tlog::{AuditSigner, Frontier};
        let store = studyflow_store::Store::open_existing(&db).await.unwrap();
        let signer = AuditSigner::from_file(std::path::Path::new(&key)).unwrap();
        store
            .execute_raw_for_tests("UPDATE audit SET actor = 'someone.else' WHERE seq = 2")
            .await
            .unwrap();
        // With the digest that stands for the payload in the hashes.
        let second = store.audit_rows(1, 1).await.unwrap().remove(0);
        let digest =
            studyflow_store::payload_digest(&second.event, second.payload_salt.as_deref().unwrap());
        store
            .execute_raw_for_tests(&format!(
                "UPDATE audit SET payload_hash = '{digest}' WHERE seq = 2"
            ))
            .await
            .unwrap();
        let mut prev = store.audit_rows(0, 1).await.unwrap()[0].hash.clone();
        let mut frontier = Frontier::default();
        let first = &store.audit_rows(0, 1).await.unwrap()[0];
        frontier.push(first.leaf());
        let sizes: Vec<u64> = store
            .audit_checkpoints()
            .await
            .unwrap()
            .0
            .iter()
            .map(|n| studyflow_store::tlog::unsigned_checkpoint(n).unwrap().size)
            .collect();
        let mut log = String::new();
        if sizes.contains(&1) {
            log.push_str(&(signer.checkpoint(1, &frontier.root()) + "\n"));
        }
        for row in store.audit_rows(1, 100_000).await.unwrap() {
            let hash = row.hash_after(&prev);
            store
                .execute_raw_for_tests(&format!(
                    "UPDATE audit SET prev_hash = '{prev}', hash = '{hash}' WHERE seq = {}",
                    row.seq
                ))
                .await
                .unwrap();
            prev = hash;
            frontier.push(row.leaf());
            if sizes.contains(&frontier.size()) {
                let note = signer.checkpoint(frontier.size(), &frontier.root());
                store
                    .execute_raw_for_tests(&format!(
                        "UPDATE audit_checkpoints SET note = '{note}' WHERE tree_size = {}",
                        frontier.size()
                    ))
                    .await
                    .unwrap();
                log.push_str(&(note + "\n"));
            }
        }
        for (k, v) in [
            ("audit_head", format!("{}:{prev}", frontier.size())),
            ("audit_frontier", frontier.encode()),
        ] {
            store
                .execute_raw_for_tests(&format!("UPDATE meta SET value = '{v}' WHERE key = '{k}'"))
                .await
                .unwrap();
        }
        std::fs::write(&log_path, log).unwrap();
        store.close().await;
    });
    // Everything the audit key can check holds…
    let r = on_db(&["audit", "verify"]);
    assert_eq!(r.code, 0, "the key alone cannot tell: {}", r.transcript());
    // …but no checkpoint of the rewritten log is cosigned, and the witness holds another
    // tree of that size.
    let r = verify(&[]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stdout
            .contains("no checkpoint is cosigned by the witness witness.test/w1"),
        "{}",
        r.stdout
    );
    // The writer keeps the cosignature of row 1, which the rewrite did not touch, and drops the
    // later one: the log alone cannot tell, the witness asked says how far it cosigned.
    let rewritten = std::fs::read_to_string(&log_path).unwrap();
    let first = studyflow_store::tlog::notes_in(&cosigned_log)
        .into_iter()
        .find(|n| n.contains("\n1\n") && n.matches('\u{2014}').count() == 2)
        .expect("the cosigned checkpoint of row 1");
    std::fs::write(&log_path, format!("{rewritten}{first}\n")).unwrap();
    let r = verify(&[]);
    assert_eq!(
        r.code,
        0,
        "the log's own cosignatures only: {}",
        r.transcript()
    );
    let r = verify(&["--witness-url", &w.url]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stdout.contains(
            "the witness witness.test/w1 has cosigned rows 1–2, the checkpoint log holds its cosignature only up to row 1"
        ),
        "{}",
        r.stdout
    );
    // A witness's cosignature without the audit's public key proves nothing.
    let r = studyflow(&["audit", "verify", "--database", &db, "--witness", &witness]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    std::fs::write(&log_path, &rewritten).unwrap();
    let r = cosign();
    assert_ne!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stderr.contains("holds another tree of 2 rows"),
        "{}",
        r.transcript()
    );
    // The rewritten log grows, sealed with the audit key: the witness finds no consistency
    // proof from what it cosigned, and refuses.
    add_user(&db, "dace.liepina", &password, &["--audit-key-file", &key]);
    let r = cosign();
    assert_ne!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stderr.contains("refused to cosign") && r.stderr.contains("422"),
        "{}",
        r.transcript()
    );
    // The cosigned checkpoints, as an auditor kept them, held against the rewritten chain.
    let rewritten = std::fs::read_to_string(&log_path).unwrap();
    std::fs::write(&log_path, format!("{cosigned_log}{rewritten}")).unwrap();
    let r = verify(&[]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(r.stdout.contains("history rewritten"), "{}", r.stdout);
}

/// `audit prove` and `audit verify --proof`: a row is proved to be in the signed log with the
/// public key alone, and an edited proof is refused. `audit erase` takes what the audit says
/// of a person once the Service's retention period has passed (MK403 p.25.4) while the log
/// still verifies, and the proof of an erased row still holds.
#[test]
fn a_row_is_proved_in_the_signed_log_and_a_person_erased_from_it() {
    let dir = TempDir::new("audit-proof");
    let Signed {
        db,
        key,
        public,
        password,
    } = signed_audit(&dir);
    add_user(&db, "gatis.krumins", &password, &["--audit-key-file", &key]);
    let on_db = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend(["--database", db.as_str(), "--audit-key-file", key.as_str()]);
        studyflow(&v)
    };
    // A trial's keyless worker or server is refused on a signed audit: its events would wait
    // unsealed and be refused as unauthenticated.
    for command in [&["worker", "--once", "--placeholder"][..], &["serve"]] {
        let mut args = command.to_vec();
        args.extend(["--unsigned-audit", "--database", db.as_str()]);
        let r = studyflow(&args);
        assert_eq!(r.code, 2, "{}", r.transcript());
        assert!(r.stderr.contains("is signed"), "{}", r.stderr);
    }
    let rows = on_db(&["audit", "export"]).stdout;
    let first = rows
        .lines()
        .position(|l| l.contains("inese.kalnina"))
        .expect("inese's account in the audit")
        + 1;
    let first = first.to_string();
    let proved = on_db(&["audit", "prove", "--seq", &first]);
    assert_eq!(proved.code, 0, "{}", proved.transcript());
    let proof = dir.file("proof.json", &proved.stdout);
    let check =
        |file: &str| studyflow(&["audit", "verify", "--proof", file, "--public-key", &public]);
    let r = check(&proof);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout
            .starts_with(&format!("row {first} (account.added at ")),
        "{}",
        r.stdout
    );
    let edited = dir.file(
        "edited.json",
        &proved.stdout.replace("inese.kalnina", "ilze.kalnina"),
    );
    let r = check(&edited);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(r.stdout.starts_with("proof REFUSED: "), "{}", r.stdout);
    let r = studyflow(&["audit", "verify", "--proof", &proof]);
    assert_eq!(r.code, 2, "no key given: {}", r.transcript());

    // A dry run lists what would go and changes nothing.
    let r = on_db(&[
        "audit",
        "erase",
        "--person",
        "inese.kalnina",
        "--before",
        "2027-01-05",
        "--dry-run",
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout
            .lines()
            .next()
            .unwrap_or_default()
            .starts_with(&format!("{first}\t"))
            && r.stdout.contains("nothing was changed"),
        "{}",
        r.stdout
    );
    assert_eq!(on_db(&["audit", "export"]).stdout, rows);
    // Erased: a day after tomorrow is refused; then every row naming inese goes.
    let r = on_db(&[
        "audit",
        "erase",
        "--person",
        "inese.kalnina",
        "--before",
        "2027-01-09",
    ]);
    assert_eq!(r.code, 2, "{}", r.transcript());
    let r = on_db(&[
        "audit",
        "erase",
        "--person",
        "inese.kalnina",
        "--before",
        "2027-01-05",
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let erased: u64 = r
        .stdout
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(erased >= 1, "{}", r.stdout);
    let after = on_db(&["audit", "export"]).stdout;
    let naming: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("inese.kalnina"))
        .collect();
    assert!(naming.is_empty(), "{naming:?}");
    assert!(after.contains("gatis.krumins"), "others stay");
    assert!(after.contains("audit.payloads_erased"));
    let r = on_db(&["audit", "verify"]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout
            .contains(&format!("{erased} rows' payloads erased by `audit erase`")),
        "{}",
        r.stdout
    );
    let copy = dir.file("export.jsonl", &after);
    let r = studyflow(&[
        "audit",
        "verify",
        "--export",
        &copy,
        "--public-key",
        &public,
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
    // The erased row is still proved in the log, by the digest of what it held.
    let proved = on_db(&["audit", "prove", "--seq", &first]);
    assert_eq!(proved.code, 0, "{}", proved.transcript());
    assert!(!proved.stdout.contains("inese.kalnina"));
    let r = check(&dir.file("erased-proof.json", &proved.stdout));
    assert_eq!(r.code, 0, "{}", r.transcript());
    assert!(
        r.stdout.contains("what it said of a person was erased"),
        "{}",
        r.stdout
    );
}
