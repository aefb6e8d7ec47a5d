//! The API as its users meet it, over real HTTP on loopback: sign-in with a password and a
//! code, sessions with their cookie flags and CSRF token, personal tokens, the step-up the
//! irreversible acts need, and the authorisation matrix — every route × every role × their own
//! study and another — generated from the route table, so a new route without an entry fails.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use studyflow_calendar::Calendar;
use studyflow_identity::{Accounts, Policy, totp};
use studyflow_runtime::clock::riga_midnight;
use studyflow_runtime::{Clock, Engine, ManualClock, Options, PlaceholderDataPlane, Worker};
use studyflow_server::auth::Limiter;
use studyflow_server::{Access, App, routes};
use studyflow_store::Store;

const PASSWORD: &str = "a long enough passphrase";
const RECIDIVISM: &str = "recidivism-2026-cohort";
const SURVEY: &str = "probation-client-survey";

fn spec(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../specs/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

struct Server {
    base: String,
    clock: Arc<ManualClock>,
    engine: Arc<Engine>,
    secrets: HashMap<String, Vec<u8>>,
    http: reqwest::Client,
    /// The work folder the server hands task files out of and puts supplied files in.
    work: std::path::PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

impl Server {
    async fn start(store: Store, logins: &[&str]) -> Server {
        Server::start_with(store, logins, &[]).await
    }

    /// With `externals`: accounts of persons outside the Service.
    async fn start_with(store: Store, logins: &[&str], externals: &[&str]) -> Server {
        Server::start_on(store, logins, externals, |_, _| {
            Arc::new(PlaceholderDataPlane { cohort_size: 3 })
        })
        .await
    }

    /// With the data plane `plane` makes (given the clock and the work folder) for the test's
    /// workers; the server's own engine runs no steps.
    async fn start_on(
        store: Store,
        logins: &[&str],
        externals: &[&str],
        plane: impl FnOnce(Arc<ManualClock>, &std::path::Path) -> Arc<dyn studyflow_runtime::DataPlane>,
    ) -> Server {
        let clock = Arc::new(ManualClock::new(riga_midnight(jiff::civil::date(
            2026, 8, 3,
        ))));
        static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let work = std::env::temp_dir().join(format!(
            "sf-api-work-{}-{}",
            std::process::id(),
            SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let engine = Engine::new(
            store.clone(),
            clock.clone(),
            Arc::new(Calendar::latvia()),
            plane(clock.clone(), &work),
            Options::default(),
        );
        let accounts = Accounts::new(store.clone(), Policy::default());
        let now = engine.now();
        let mut secrets = HashMap::new();
        for (login, external) in logins
            .iter()
            .map(|l| (l, false))
            .chain(externals.iter().map(|l| (l, true)))
        {
            let a = accounts
                .add(login, login, PASSWORD, external, "operator", now)
                .await
                .unwrap();
            secrets.insert((*login).to_owned(), a.totp_secret);
        }
        let app = Arc::new(App {
            engine: Engine::new(
                store.clone(),
                clock.clone(),
                Arc::new(Calendar::latvia()),
                Arc::new(PlaceholderDataPlane { cohort_size: 3 }),
                Options::default(),
            ),
            accounts,
            limiter: Limiter::new(store, 30, 600_000_000),
            master: None,
            trusted_proxies: Vec::new(),
            oidc: None,
            work: Some(work.clone()),
            witnesses: None,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(studyflow_server::serve(app, listener, async {
            let _ = stopped.await;
        }));
        Server {
            base,
            clock,
            engine: Arc::new(engine),
            secrets,
            http: reqwest::Client::new(),
            work,
            _stop: stop,
        }
    }

    /// The id of the open task of `step` that the holder of `token` finds in their list.
    async fn open_task(&self, token: &str, step: &str) -> i64 {
        let (_, open) = self
            .call(Method::GET, "/api/v1/tasks", Some(token), Body::None)
            .await;
        open["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["step"] == step)
            .unwrap_or_else(|| panic!("the task `{step}` is open: {open}"))["id"]
            .as_i64()
            .unwrap()
    }

    fn code(&self, login: &str, steps_ahead: i64) -> String {
        let now = self.clock.now().as_second();
        totp::code_at(&self.secrets[login], totp::step_of(now) + steps_ahead)
    }

    /// A personal token of `login`, signing in with the code `steps_ahead` of now.
    async fn token(&self, login: &str, steps_ahead: i64) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/tokens", self.base))
            .json(&json!({"login": login, "password": PASSWORD, "code": self.code(login, steps_ahead), "label": "test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{login}: {}",
            r.text().await.unwrap()
        );
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Yaml(b) => req.header("content-type", "application/yaml").body(b),
            Body::Csv(b) => req.header("content-type", "text/csv").body(b),
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    Yaml(Vec<u8>),
    Csv(Vec<u8>),
}

/// The roles of the matrix: the Service's researchers, an approver, a supervisor, the
/// external researcher's authorised person — who is also the survey's contact recipient
/// (p.32) — and an account no spec binds. The operator has no role in the API: their
/// commands run on the database itself (`user`, `worker`, `audit`, `status`,
/// `tests/engine_cli.rs`), and an operator's own account, if they have one, is an account no
/// spec binds (`eve.sample`). Anonymous is every route's first cell.
const LOGINS: &[&str] = &[
    "inese.kalnina",   // recidivism: service researcher with identifying data
    "dace.liepina",    // recidivism: service researcher with anonymised data only
    "gatis.krumins",   // both: approver
    "rihards.eglitis", // survey: supervisor
    "liga.ozolina",    // survey: external team, authorised, processes personal data
    "eve.sample",      // an account no spec binds (an operator's own, say)
];

/// Who may pass each route's role check, on a study that involves them (`own`). Every route
/// of the table must be here; the engine decides for the person's role in the spec in force.
fn allowed(route: &str, login: &str, study: &str) -> bool {
    let researcher = matches!(login, "inese.kalnina" | "dace.liepina");
    match route {
        "GET /api/v1/session"
        | "DELETE /api/v1/session"
        | "POST /api/v1/session/reauthenticate"
        // A person's own credentials: refused here for the wrong password (or no second factor
        // begun), after the check that they are signed in (`tests/web.rs` changes them).
        | "POST /api/v1/account/password"
        | "POST /api/v1/account/second-factor"
        | "POST /api/v1/account/second-factor/confirm"
        | "GET /api/v1/tokens"
        | "DELETE /api/v1/tokens/{id}"
        | "GET /api/v1/studies"
        | "GET /api/v1/tasks" => true,
        // The recidivism spec as the body: its service researchers may submit it (refused as
        // existing, after the role check).
        "POST /api/v1/studies" => researcher,
        "GET /api/v1/studies/{id}" | "GET /api/v1/studies/{id}/releases" => true,
        // An internal study's analysis dataset to its service researchers with access to
        // anonymised data (p.22.5, p.24); an external study's to the authorised persons of the
        // external researcher (p.30).
        "GET /api/v1/studies/{id}/releases/{n}/{file}" => match study {
            RECIDIVISM => researcher,
            _ => login == "liga.ozolina",
        },
        "POST /api/v1/studies/{id}/versions" => researcher || login == "liga.ozolina",
        "POST /api/v1/studies/{id}/approve" | "POST /api/v1/studies/{id}/refuse" => {
            login == "gatis.krumins"
        }
        "POST /api/v1/studies/{id}/contract" => {
            matches!(login, "gatis.krumins" | "rihards.eglitis")
        }
        "POST /api/v1/studies/{id}/start" => researcher,
        // The contact list's key: an authorised person of the external researcher who
        // processes personal data, of a study with direct contact (p.32).
        "PUT /api/v1/studies/{id}/contact-key" => login == "liga.ozolina" && study == SURVEY,
        // The Service's persons of the study, not the external team (p.25.3, p.25.5, p.28).
        "GET /api/v1/studies/{id}/audit" => login != "liga.ozolina",
        "POST /api/v1/studies/{id}/terminate" => {
            login == "gatis.krumins" || (login == "rihards.eglitis" && study == SURVEY)
        }
        // The recidivism quality check: a service researcher with identifying data (p.21, p.25.2).
        "POST /api/v1/tasks/{id}/complete"
        | "GET /api/v1/tasks/{id}/note"
        | "GET /api/v1/tasks/{id}/files"
        | "GET /api/v1/tasks/{id}/files/{file}"
        | "PUT /api/v1/tasks/{id}/supply" => login == "inese.kalnina",
        other => panic!("route {other} has no entry in the authorisation matrix"),
    }
}

/// The routes whose act needs a proof of identity no older than five minutes (MK403 p.3,
/// p.30, p.30.2, p.32: approving, refusing, recording a contract, terminating, giving the
/// contact list's key, downloading a release).
const STEP_UP: &[&str] = &[
    "POST /api/v1/studies/{id}/approve",
    "POST /api/v1/studies/{id}/refuse",
    "POST /api/v1/studies/{id}/contract",
    "POST /api/v1/studies/{id}/terminate",
    "PUT /api/v1/studies/{id}/contact-key",
    "GET /api/v1/studies/{id}/releases/{n}/{file}",
];

fn involved(login: &str, study: &str) -> bool {
    match study {
        RECIDIVISM => matches!(login, "inese.kalnina" | "dace.liepina" | "gatis.krumins"),
        SURVEY => matches!(login, "gatis.krumins" | "rihards.eglitis" | "liga.ozolina"),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorisation_matrix_denies_by_default() {
    let dir = std::env::temp_dir().join(format!("sf-api-matrix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = Server::start(
        Store::open(dir.join("db").to_str().unwrap()).await.unwrap(),
        LOGINS,
    )
    .await;
    let mut tokens = HashMap::new();
    for l in LOGINS {
        tokens.insert(*l, s.token(l, 0).await);
    }
    // The recidivism study runs to its first task of a person; the survey waits for approval.
    let call = |m, p: String, t: &str, b| {
        let t = t.to_owned();
        let s = &s;
        async move { s.call(m, &p, Some(&t), b).await }
    };
    let (st, b) = call(
        Method::POST,
        "/api/v1/studies".into(),
        &tokens["inese.kalnina"],
        Body::Yaml(spec(RECIDIVISM)),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let hash = b["plan_hash"].as_str().unwrap().to_owned();
    let (st, b) = call(
        Method::POST,
        "/api/v1/studies".into(),
        &tokens["liga.ozolina"],
        Body::Yaml(spec(SURVEY)),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, b) = call(
        Method::POST,
        format!("/api/v1/studies/{RECIDIVISM}/approve"),
        &tokens["gatis.krumins"],
        Body::Json(json!({"plan_hash": hash})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b) = call(
        Method::POST,
        format!("/api/v1/studies/{RECIDIVISM}/start"),
        &tokens["inese.kalnina"],
        Body::None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    s.clock.set(riga_midnight(jiff::civil::date(2027, 5, 3)));
    Worker::new(s.engine.clone(), "w".into())
        .run_until_idle()
        .await
        .unwrap();
    // Signed in again, now.
    s.clock.advance(jiff::SignedDuration::from_secs(30));
    for l in LOGINS {
        tokens.insert(*l, s.token(l, 0).await);
    }
    let (_, open) = call(
        Method::GET,
        "/api/v1/tasks".into(),
        &tokens["inese.kalnina"],
        Body::None,
    )
    .await;
    let task = open["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["study"] == RECIDIVISM && t["step"] == "quality-check")
        .unwrap_or_else(|| panic!("the quality check is open: {open}"))["id"]
        .as_i64()
        .unwrap();
    // Throwaway tokens for the routes that revoke one, from a second sign-in a step later.
    s.clock.advance(jiff::SignedDuration::from_secs(30));
    let mut spare = HashMap::new();
    for l in LOGINS {
        let t = s.token(l, 0).await;
        let (_, list) = call(Method::GET, "/api/v1/tokens".into(), &t, Body::None).await;
        let id = list.as_array().unwrap()[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        spare.insert(*l, (t, id));
    }
    // Every token is now older than the step-up window: approve, contract and terminate answer
    // "reauthenticate" to those allowed, after the role check — nothing irreversible happens.
    s.clock.advance(jiff::SignedDuration::from_mins(10));

    let mut cells = 0;
    for (doc, _) in routes() {
        let key = format!("{} {}", doc.method, doc.path);
        let method = Method::from_bytes(doc.method.as_bytes()).unwrap();
        let body = match key.as_str() {
            "POST /api/v1/studies" | "POST /api/v1/studies/{id}/versions" => {
                Body::Yaml(spec(RECIDIVISM))
            }
            "POST /api/v1/studies/{id}/contract" => {
                Body::Json(json!({"number": "X", "concluded_on": "2026-08-01"}))
            }
            "POST /api/v1/studies/{id}/approve" => Body::Json(json!({"plan_hash": "sha256:00"})),
            "PUT /api/v1/studies/{id}/contact-key" => Body::Json(json!({"key": "age1notakey"})),
            "POST /api/v1/studies/{id}/refuse" => {
                Body::Json(json!({"plan_hash": "sha256:00", "reason": "not this plan"}))
            }
            "POST /api/v1/session" | "POST /api/v1/tokens" => Body::Json(
                json!({"login": "inese.kalnina", "password": "not the password", "code": "000000"}),
            ),
            "PUT /api/v1/tasks/{id}/supply" => Body::Csv(b"personal_code\n".to_vec()),
            "POST /api/v1/session/reauthenticate" | "POST /api/v1/account/second-factor" => {
                Body::Json(json!({"password": "not the password", "code": "000000"}))
            }
            "POST /api/v1/account/password" => Body::Json(
                json!({"password": "not the password", "code": "000000", "new_password": "a new long passphrase"}),
            ),
            "POST /api/v1/account/second-factor/confirm" => Body::Json(json!({"code": "000000"})),
            _ => Body::None,
        };
        if doc.path.starts_with("/api/v1/oidc/") {
            // Without an identity provider configured, there is none to sign in at
            // (`tests/oidc.rs` signs in at a real one).
            let (st, b) = s.call(method.clone(), doc.path, None, Body::None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{key}: {b}");
            assert!(
                b["detail"].as_str().unwrap().contains("not configured"),
                "{b}"
            );
            cells += 1;
            continue;
        }
        if key == "GET /api/v1/audit/checkpoint" {
            // Public by design; this server seals without an audit key, so there is none
            // (`audit_checkpoint_is_public_and_verifies` reads a signed one).
            let (st, b) = s.call(method.clone(), doc.path, None, Body::None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{key}: {b}");
            cells += 1;
            continue;
        }
        if key == "GET /api/v1/audit/witnesses" || key == "GET /api/v1/audit/checkpoint/cosigned" {
            // Public by design, for monitors; this server names no witnesses
            // (`the_installations_witness_policy_is_used_by_cosign_and_verify` is told of two).
            let (st, b) = s.call(method.clone(), doc.path, None, Body::None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{key}: {b}");
            assert!(
                b["detail"].as_str().unwrap().contains("names no witnesses"),
                "{key}: {b}"
            );
            cells += 1;
            continue;
        }
        if key == "POST /api/v1/device" {
            // Anyone may ask a command line's sign-in through the browser: what it gives is a
            // code that only a signed-in person's approval turns into a token.
            let (st, b) = s
                .call(
                    method.clone(),
                    doc.path,
                    None,
                    Body::Json(json!({"label": "x"})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{key}: {b}");
            assert!(
                b["device_code"].as_str().unwrap().starts_with("sfd_"),
                "{b}"
            );
            cells += 1;
            continue;
        }
        if key == "POST /api/v1/device/token" {
            // A token only for a grant asked for (and approved: `tests/engine_cli.rs`).
            let body = Body::Json(json!({"device_code": "sfd_never-asked-for"}));
            let (st, b) = s.call(method.clone(), doc.path, None, body).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{key}: {b}");
            assert!(
                b["detail"]
                    .as_str()
                    .unwrap()
                    .contains("no sign-in was asked for"),
                "{b}"
            );
            cells += 1;
            continue;
        }
        if doc.access == Access::Public {
            // Anyone may try; wrong credentials are refused as such.
            let (st, b) = s.call(method.clone(), doc.path, None, body.clone()).await;
            assert_eq!(st, StatusCode::UNAUTHORIZED, "{key}: {b}");
            assert!(
                b["detail"].as_str().unwrap().starts_with("sign-in refused"),
                "{key}: {b}"
            );
            cells += 1;
            continue;
        }
        let studies: &[&str] = if doc.path.contains("/studies/{id}") {
            &[RECIDIVISM, SURVEY]
        } else {
            &[""]
        };
        for study in studies {
            // Anonymous: 401, whatever the route.
            let path = doc
                .path
                .replace("{id}", study)
                .replace("{n}", "0")
                .replace("{file}", "subjects.csv");
            let path = if doc.path.starts_with("/api/v1/tasks/{id}") {
                doc.path.replace("{id}", &task.to_string())
            } else if doc.path.starts_with("/api/v1/tokens/{id}") {
                doc.path.replace("{id}", &spare["inese.kalnina"].1)
            } else {
                path
            };
            let (st, b) = s.call(method.clone(), &path, None, body.clone()).await;
            assert_eq!(st, StatusCode::UNAUTHORIZED, "anonymous {key}: {b}");
            cells += 1;
            for login in LOGINS {
                let (token, path) = match key.as_str() {
                    "DELETE /api/v1/session" => (spare[login].0.clone(), path.clone()),
                    "DELETE /api/v1/tokens/{id}" => (
                        tokens[login].clone(),
                        doc.path.replace("{id}", &spare[login].1),
                    ),
                    _ => (tokens[login].clone(), path.clone()),
                };
                let own = match (*study, doc.path.starts_with("/api/v1/tasks/{id}")) {
                    ("", false) => true,
                    ("", true) => involved(login, RECIDIVISM),
                    (st, _) => involved(login, st),
                };
                let expect = own && allowed(&key, login, study);
                let body = match (&body, *study) {
                    (Body::Yaml(_), SURVEY) => Body::Yaml(spec(SURVEY)),
                    _ => body.clone(),
                };
                let (st, b) = s.call(method.clone(), &path, Some(&token), body).await;
                let denied = matches!(st, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
                    || (st == StatusCode::UNAUTHORIZED
                        && b["type"]
                            .as_str()
                            .is_some_and(|t| t.ends_with("unauthenticated"))
                        && !b["detail"]
                            .as_str()
                            .unwrap_or("")
                            .starts_with("sign-in refused"));
                assert_eq!(!denied, expect, "{login} {key} on {study:?}: {st} {b}");
                assert!(
                    !st.is_server_error(),
                    "{login} {key} on {study:?}: {st} {b}"
                );
                // Allowed, an act that needs a recent proof asks for one: every token is
                // older than the window by now, so nothing irreversible happens here.
                if expect && STEP_UP.contains(&key.as_str()) {
                    assert_eq!(st, StatusCode::UNAUTHORIZED, "{login} {key}: {b}");
                    assert!(
                        b["type"]
                            .as_str()
                            .unwrap()
                            .ends_with("problem-reauthenticate"),
                        "{login} {key}: {b}"
                    );
                }
                if !own {
                    // Not involved: as if the study or task did not exist.
                    assert_eq!(st, StatusCode::NOT_FOUND, "{login} {key} on {study:?}: {b}");
                }
                cells += 1;
            }
            // Someone else's token cannot be revoked.
            if key == "DELETE /api/v1/tokens/{id}" {
                let (st, _) = s
                    .call(
                        Method::DELETE,
                        &doc.path.replace("{id}", &spare["inese.kalnina"].1),
                        Some(&tokens["dace.liepina"]),
                        Body::None,
                    )
                    .await;
                assert_eq!(st, StatusCode::NOT_FOUND);
            }
        }
    }
    assert!(cells > 150, "{cells} cells");
    // Lists show only what involves the person.
    let (_, mine) = s
        .call(
            Method::GET,
            "/api/v1/studies",
            Some(&tokens["eve.sample"]),
            Body::None,
        )
        .await;
    assert_eq!(mine["items"], json!([]));
    let (_, mine) = s
        .call(
            Method::GET,
            "/api/v1/studies",
            Some(&tokens["gatis.krumins"]),
            Body::None,
        )
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 2);
    let (_, mine) = s
        .call(
            Method::GET,
            "/api/v1/tasks",
            Some(&tokens["eve.sample"]),
            Body::None,
        )
        .await;
    assert_eq!(mine["items"], json!([]));
    let _ = std::fs::remove_dir_all(&dir);
}

async fn session_flow(store: Store) {
    let s = Server::start(store.clone(), &["inese.kalnina", "gatis.krumins"]).await;
    let http = &s.http;
    let url = |p: &str| format!("{}{p}", s.base);

    // Sign in: a cookie with every flag, a CSRF token in the body, the security headers.
    let r = http
        .post(url("/api/v1/session"))
        .json(&json!({"login": "inese.kalnina", "password": PASSWORD, "code": s.code("inese.kalnina", 0)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let h = r.headers().clone();
    let cookie = h["set-cookie"].to_str().unwrap().to_owned();
    for flag in [
        "__Host-studyflow=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(
        !h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("unsafe-inline")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let csrf = r.json::<Value>().await.unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = cookie.split(';').next().unwrap().to_owned();
    // The same code again is a replay.
    let r = http
        .post(url("/api/v1/session"))
        .json(&json!({"login": "inese.kalnina", "password": PASSWORD, "code": s.code("inese.kalnina", 0)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    // Reads need the cookie only; changes need its CSRF token too.
    let r = http
        .get(url("/api/v1/session"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["login"], "inese.kalnina");
    let submit = |csrf: Option<&str>| {
        let mut req = http
            .post(url("/api/v1/studies"))
            .header("cookie", &session)
            .header("content-type", "application/yaml")
            .body(spec(RECIDIVISM));
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        req.send()
    };
    let r = submit(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("CSRF"));
    assert_eq!(
        submit(Some("forged")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let r = submit(Some(&csrf)).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let hash = r.json::<Value>().await.unwrap()["plan_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    // A forged session cookie is nobody.
    let r = http
        .get(url("/api/v1/session"))
        .header("cookie", "__Host-studyflow=sfs_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A spec that does not validate: 422 with each finding at its line.
    let bad = String::from_utf8(spec(RECIDIVISM))
        .unwrap()
        .replacen("purpose:", "purpse:", 1);
    let r = http
        .post(url("/api/v1/studies"))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/yaml")
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p: Value = r.json().await.unwrap();
    assert!(
        p["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["code"] == "SF010"),
        "{p}"
    );

    // Step-up: the approver's token, ten minutes old, must prove again to approve.
    let approver = s.token("gatis.krumins", 0).await;
    s.clock.advance(jiff::SignedDuration::from_mins(10));
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/api/v1/studies/{RECIDIVISM}/approve"),
            Some(&approver),
            Body::Json(json!({"plan_hash": hash})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
    assert!(
        b["type"].as_str().unwrap().ends_with("reauthenticate"),
        "{b}"
    );
    let (st, b) = s
        .call(
            Method::POST,
            "/api/v1/session/reauthenticate",
            Some(&approver),
            Body::Json(json!({"password": PASSWORD, "code": s.code("gatis.krumins", 0)})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/api/v1/studies/{RECIDIVISM}/approve"),
            Some(&approver),
            Body::Json(json!({"plan_hash": hash})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        s.engine
            .state(RECIDIVISM)
            .await
            .unwrap()
            .map(|s| s.as_str()),
        Some("approved")
    );

    // Sign-out ends the session; a revoked token is refused.
    let r = http
        .delete(url("/api/v1/session"))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = http
        .get(url("/api/v1/session"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (st, _) = s
        .call(
            Method::DELETE,
            "/api/v1/session",
            Some(&approver),
            Body::None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s
        .call(Method::GET, "/api/v1/session", Some(&approver), Body::None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Sign-in attempts from one address are limited (30 in 10 minutes here).
    let mut limited = false;
    for _ in 0..40 {
        let r = http
            .post(url("/api/v1/tokens"))
            .json(&json!({"login": "nobody", "password": "wrong password!!", "code": "000000"}))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "sign-in attempts were never limited");

    // Nothing secret in the audit.
    store.seal_audit().await.unwrap();
    let audit = format!("{:?}", store.audit_rows(0, 100_000).await.unwrap());
    assert!(!audit.contains(PASSWORD) && !audit.contains(&csrf) && !audit.contains(&approver));
    assert!(audit.contains("session.opened") && audit.contains("study.approved"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_tokens_and_step_up_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("sf-api-session-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    session_flow(Store::open(dir.join("db").to_str().unwrap()).await.unwrap()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_tokens_and_step_up_on_postgres() {
    let Some(pg) = studyflow_store::testing::postgres_schema("api").await else {
        return;
    };
    session_flow(Store::open(&pg.url).await.unwrap()).await;
}

/// What an adversarial review found, kept found: a stranger cannot slip a version of a study in
/// through submit, nor learn that it exists; an account outside the Service never acts in a
/// role of the Service, whatever login an applicant writes; the framework's own refusals are
/// problems that echo nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_review_found_stays_fixed() {
    let dir = std::env::temp_dir().join(format!("sf-api-review-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(dir.join("db").to_str().unwrap()).await.unwrap();
    let s = Server::start_with(
        store,
        &["inese.kalnina", "gatis.krumins", "eve.sample"],
        &["liga.ozolina", "eve.external"],
    )
    .await;
    let mut t = HashMap::new();
    for l in [
        "inese.kalnina",
        "gatis.krumins",
        "eve.sample",
        "liga.ozolina",
        "eve.external",
    ] {
        t.insert(l, s.token(l, 0).await);
    }
    let text = String::from_utf8(spec(RECIDIVISM)).unwrap();
    let (st, b) = s
        .call(
            Method::POST,
            "/api/v1/studies",
            Some(&t["inese.kalnina"]),
            Body::Yaml(spec(RECIDIVISM)),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    // A stranger's version 2 naming herself: not through submit; no hint the study exists.
    let hijack = text
        .replacen("\nversion: 1\n", "\nversion: 2\n", 1)
        .replace("login: martins.ozols", "login: eve.sample");
    let (st, b) = s
        .call(
            Method::POST,
            "/api/v1/studies",
            Some(&t["eve.sample"]),
            Body::Yaml(hijack.into_bytes()),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert!(!b["detail"].as_str().unwrap().contains(RECIDIVISM), "{b}");
    let own = text.replace("login: martins.ozols", "login: eve.sample");
    let (st, b) = s
        .call(
            Method::POST,
            "/api/v1/studies",
            Some(&t["eve.sample"]),
            Body::Yaml(own.into_bytes()),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains("cannot be used"),
        "{b}"
    );
    assert!(!b["detail"].as_str().unwrap().contains("version"), "{b}");
    // Its own researcher is told plainly.
    let (st, b) = s
        .call(
            Method::POST,
            "/api/v1/studies",
            Some(&t["inese.kalnina"]),
            Body::Yaml(spec(RECIDIVISM)),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains("exists already"),
        "{b}"
    );
    let (_, v) = s
        .call(
            Method::GET,
            &format!("/api/v1/studies/{RECIDIVISM}"),
            Some(&t["inese.kalnina"]),
            Body::None,
        )
        .await;
    assert_eq!(v["latest_version"], 1, "{v}");

    // An external researcher's team submits a survey that names an outside account as its
    // approver: that account cannot approve it — for it, the study's Service roles are nobody's,
    // so the study does not involve it at all.
    let survey = String::from_utf8(spec(SURVEY))
        .unwrap()
        .replace("login: gatis.krumins", "login: eve.external");
    let (st, b) = s
        .call(
            Method::POST,
            "/api/v1/studies",
            Some(&t["liga.ozolina"]),
            Body::Yaml(survey.into_bytes()),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let hash = b["plan_hash"].as_str().unwrap().to_owned();
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/api/v1/studies/{SURVEY}/approve"),
            Some(&t["eve.external"]),
            Body::Json(json!({"plan_hash": hash})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");

    // The framework's refusals: problems, echoing nothing of the request.
    let secret = "my-secret-passphrase-123";
    let r = s
        .http
        .post(format!("{}/api/v1/tokens", s.base))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"login\": 5, \"password\": \"{secret}\", \"code\": 1}}"
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(!r.text().await.unwrap().contains(secret));
    let r = s
        .http
        .get(format!("{}/api/v1/tasks/not-a-number/note", s.base))
        .bearer_auth(&t["inese.kalnina"])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(!r.text().await.unwrap().contains("not-a-number"));
    // (A client of its own: the server closes a connection whose body it refused.)
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/studies", s.base))
        .bearer_auth(&t["inese.kalnina"])
        .header("content-type", "application/yaml")
        .body(vec![b'#'; (2 << 20) + 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // A token asked for too long a life is refused before the sign-in, so the code still works.
    let code = s.code("gatis.krumins", 1);
    let (st, _) = s
        .call(
            Method::POST,
            "/api/v1/tokens",
            None,
            Body::Json(
                json!({"login": "gatis.krumins", "password": PASSWORD, "code": code, "days": 365}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, b) = s
        .call(
            Method::POST,
            "/api/v1/tokens",
            None,
            Body::Json(json!({"login": "gatis.krumins", "password": PASSWORD, "code": code})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// 50 clients side by side for a minute — ten persons, each on five clients, each client
/// submitting studies of its own between reads — on each backend: nothing is lost (every study
/// submitted stored once, every submission audited once and the chain intact), nobody sees
/// another person's study, and no request fails (no 5xx, no refusal). The loop is bounded by
/// time, on loopback; the latencies are printed, not asserted (the benchmark,
/// `examples/api_bench.rs`, holds the speed).
async fn fifty_clients_for_a_minute(store: Store, label: &str) {
    const PERSONS: usize = 10;
    const CLIENTS: usize = 50;
    const FOR: std::time::Duration = std::time::Duration::from_secs(60);
    let logins: Vec<String> = (0..PERSONS).map(|i| format!("person-{i:02}")).collect();
    let refs: Vec<&str> = logins.iter().map(String::as_str).collect();
    let s = Arc::new(Server::start(store.clone(), &refs).await);
    let mut tokens = Vec::new();
    for l in &logins {
        tokens.push(s.token(l, 0).await);
    }
    let text = String::from_utf8(spec(RECIDIVISM)).unwrap();
    let began = std::time::Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let s = s.clone();
            let person = i % PERSONS;
            let token = tokens[person].clone();
            let text = text.clone();
            tokio::spawn(async move {
                let mut submitted: Vec<String> = Vec::new();
                let mut latencies: Vec<std::time::Duration> = Vec::new();
                let mut round = 0;
                while began.elapsed() < FOR || submitted.is_empty() {
                    let timed = std::time::Instant::now();
                    if round % 4 == 0 {
                        let id = format!("load-{i:02}-{}", submitted.len());
                        let spec = text
                            .replacen(&format!("id: {RECIDIVISM}"), &format!("id: {id}"), 1)
                            .replace(
                                "login: inese.kalnina",
                                &format!("login: person-{person:02}"),
                            );
                        let (st, b) = s
                            .call(
                                Method::POST,
                                "/api/v1/studies",
                                Some(&token),
                                Body::Yaml(spec.into_bytes()),
                            )
                            .await;
                        assert_eq!(st, StatusCode::CREATED, "{b}");
                        submitted.push(id);
                    } else {
                        let id = submitted.last().unwrap();
                        let (st, b) = s
                            .call(
                                Method::GET,
                                &format!("/api/v1/studies/{id}"),
                                Some(&token),
                                Body::None,
                            )
                            .await;
                        assert_eq!((st, b["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
                        let (st, b) = s
                            .call(Method::GET, "/api/v1/studies", Some(&token), Body::None)
                            .await;
                        assert_eq!(st, StatusCode::OK, "{b}");
                        // Its person's studies only: those of the clients i, i ± 10, …
                        for x in b["items"].as_array().unwrap() {
                            let n: usize = x["id"].as_str().unwrap()["load-".len()..][..2]
                                .parse()
                                .unwrap();
                            assert_eq!(n % PERSONS, person, "{x}");
                        }
                        let (st, _) = s
                            .call(Method::GET, "/api/v1/tasks", Some(&token), Body::None)
                            .await;
                        assert_eq!(st, StatusCode::OK);
                    }
                    latencies.push(timed.elapsed());
                    round += 1;
                }
                (submitted, latencies)
            })
        })
        .collect();
    let mut submitted = Vec::new();
    let mut latencies = Vec::new();
    for h in handles {
        let (ids, times) = h.await.unwrap();
        submitted.extend(ids);
        latencies.extend(times);
    }
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "{label}: 50 clients for {:.0?}: {} rounds, {} studies submitted; a round's p50 {:.1?}, p99 {:.1?}",
        began.elapsed(),
        latencies.len(),
        submitted.len(),
        p(0.5),
        p(0.99)
    );
    // Every study submitted is there once, and its submission audited once.
    let stored: std::collections::BTreeSet<String> = store
        .studies()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let asked: std::collections::BTreeSet<String> = submitted.iter().cloned().collect();
    assert_eq!(asked.len(), submitted.len(), "no id submitted twice");
    assert_eq!(stored, asked);
    store.seal_audit().await.unwrap();
    let mut audited: Vec<String> = Vec::new();
    let mut after = 0;
    loop {
        let rows = store.audit_rows(after, 10_000).await.unwrap();
        let Some(last) = rows.last() else { break };
        after = last.seq;
        audited.extend(
            rows.iter()
                .filter(|r| r.event.action == "study.submitted")
                .map(|r| r.event.object.clone()),
        );
    }
    audited.sort();
    assert_eq!(audited, asked.into_iter().collect::<Vec<_>>());
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        studyflow_store::Verification::Intact { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_for_a_minute_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("sf-api-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(dir.join("db").to_str().unwrap()).await.unwrap();
    fifty_clients_for_a_minute(store, "sqlite").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_for_a_minute_on_postgres() {
    let Some(schema) = studyflow_store::testing::postgres_schema("api_load").await else {
        return;
    };
    let store = Store::open(&schema.url).await.unwrap();
    fifty_clients_for_a_minute(store, "postgres").await;
}

/// A study's audit is read by the Service's persons of the study only, narrowed and paged as
/// asked; the signed checkpoint is public and verifies elsewhere with the public key alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_studys_audit_is_the_services_and_its_checkpoint_verifies_elsewhere() {
    use studyflow_store::tlog::AuditSigner;
    let dir = std::env::temp_dir().join(format!("sf-api-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let signer = AuditSigner::generate("studyflow.test/audit").unwrap();
    let verifier = signer.verifier();
    let store = Store::open(dir.join("db").to_str().unwrap())
        .await
        .unwrap()
        .with_audit_signing(studyflow_store::AuditSigning {
            signer,
            log: Some(dir.join("audit.checkpoints")),
        });
    let s = Server::start_with(
        store,
        &["inese.kalnina", "gatis.krumins", "eve.sample"],
        &["liga.ozolina"],
    )
    .await;
    let mut t = HashMap::new();
    for l in [
        "inese.kalnina",
        "gatis.krumins",
        "eve.sample",
        "liga.ozolina",
    ] {
        t.insert(l, s.token(l, 0).await);
    }
    for (who, name) in [("inese.kalnina", RECIDIVISM), ("liga.ozolina", SURVEY)] {
        let (st, b) = s
            .call(
                Method::POST,
                "/api/v1/studies",
                Some(&t[who]),
                Body::Yaml(spec(name)),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
    }
    let (_, v) = s
        .call(
            Method::GET,
            &format!("/api/v1/studies/{RECIDIVISM}"),
            Some(&t["gatis.krumins"]),
            Body::None,
        )
        .await;
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/api/v1/studies/{RECIDIVISM}/approve"),
            Some(&t["gatis.krumins"]),
            Body::Json(json!({"plan_hash": v["plan_hash"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let audit = |who: &'static str, study: &'static str, query: &'static str| {
        let s = &s;
        let token = t[who].clone();
        async move {
            s.call(
                Method::GET,
                &format!("/api/v1/studies/{study}/audit{query}"),
                Some(&token),
                Body::None,
            )
            .await
        }
    };
    let (st, all) = audit("inese.kalnina", RECIDIVISM, "").await;
    assert_eq!(st, StatusCode::OK, "{all}");
    let items = all["items"].as_array().unwrap();
    let submitted: Vec<&Value> = items
        .iter()
        .filter(|e| e["action"] == "study.submitted")
        .collect();
    assert_eq!(submitted.len(), 1, "{all}");
    assert_eq!(submitted[0]["actor"], "inese.kalnina");
    assert_eq!(submitted[0]["object"], RECIDIVISM);
    // Only this study's events: nothing of the survey, nothing of anyone's sign-in.
    assert!(
        items.iter().all(|e| e["object"] == RECIDIVISM
            || e["object"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{RECIDIVISM}/"))),
        "{all}"
    );
    // Narrowed by action and actor, and paged without overlap.
    let (_, only) = audit("inese.kalnina", RECIDIVISM, "?action=study.submitted").await;
    assert_eq!(only["items"].as_array().unwrap().len(), 1, "{only}");
    let (_, approver) = audit("inese.kalnina", RECIDIVISM, "?actor=gatis.krumins").await;
    let approver = approver["items"].as_array().unwrap();
    assert!(!approver.is_empty());
    assert!(approver.iter().all(|e| e["actor"] == "gatis.krumins"));
    assert!(approver.iter().any(|e| e["action"] == "study.approved"));
    let (_, none) = audit("inese.kalnina", RECIDIVISM, "?actor=eve.sample").await;
    assert_eq!(none["items"], json!([]), "{none}");
    let (_, mine) = audit("inese.kalnina", RECIDIVISM, "?actor=inese.kalnina").await;
    assert!(!mine["items"].as_array().unwrap().is_empty(), "{mine}");
    let (_, later) = audit("inese.kalnina", RECIDIVISM, "?from=2030-01-01").await;
    assert_eq!(later["items"], json!([]), "{later}");
    let (_, today) = audit(
        "inese.kalnina",
        RECIDIVISM,
        "?from=2026-08-03&until=2026-08-03",
    )
    .await;
    assert_eq!(today["items"], all["items"], "{today}");
    let (st, bad) = audit("inese.kalnina", RECIDIVISM, "?from=yesterday").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad["detail"].as_str().unwrap().contains("`from`"), "{bad}");
    let (_, p1) = audit("inese.kalnina", RECIDIVISM, "?limit=1").await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 1);
    let next = p1["next"].as_str().expect("a next page").to_owned();
    let (_, p2) = s
        .call(
            Method::GET,
            &format!("/api/v1/studies/{RECIDIVISM}/audit?limit=1&after={next}"),
            Some(&t["inese.kalnina"]),
            Body::None,
        )
        .await;
    assert_eq!(p2["items"][0], items[1], "{p2}");
    // The Service's approver reads the external study's audit; its external team may not; a
    // stranger learns nothing.
    let (st, b) = audit("gatis.krumins", SURVEY, "").await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["items"][0]["actor"], "liga.ozolina");
    let (st, b) = audit("liga.ozolina", SURVEY, "").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("p.25.3"), "{b}");
    let (st, b) = audit("eve.sample", RECIDIVISM, "").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
    // No study may be named as the audit's own records are (`account/<login>`, `audit`), or
    // its audit would hold everyone's sign-ins.
    for reserved in ["account", "audit"] {
        let text = String::from_utf8(spec(RECIDIVISM)).unwrap().replacen(
            &format!("id: {RECIDIVISM}"),
            &format!("id: {reserved}"),
            1,
        );
        let (st, b) = s
            .call(
                Method::POST,
                "/api/v1/studies",
                Some(&t["inese.kalnina"]),
                Body::Yaml(text.into_bytes()),
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{b}");
        assert!(b["detail"].as_str().unwrap().contains("reserved"), "{b}");
    }
    // The checkpoint, without signing in: a signed note that the public key verifies and that
    // covers every sealed event.
    let r = s
        .http
        .get(format!("{}/api/v1/audit/checkpoint", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let note = r.text().await.unwrap();
    let checkpoint = verifier.checkpoint(&note).expect("a genuine signature");
    assert_eq!(checkpoint.origin, "studyflow.test/audit");
    let last_seq = items.last().unwrap()["seq"].as_u64().unwrap();
    assert!(checkpoint.size >= last_seq, "{note}");
    let forged = note.replacen(&checkpoint.size.to_string(), "1", 1);
    assert!(verifier.checkpoint(&forged).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a person supplies for a task goes through the server: the manual Service IS extraction
/// of the survey (MK403 p.22.1) is checked whole as the import will check it — a broken file is
/// refused with its row report and nothing of it kept — then put in the inbox, imported by the
/// worker when the task is completed, and deleted; who supplied what is audited by its digest.
/// A server whose worker moves real data (the registry data plane, no Service IS), with the
/// survey submitted, approved, contracted (Līga's and Artūrs' declarations) and started by
/// its researcher: the server, the study's id, and the folder to remove after.
async fn survey_moving_data(
    label: &str,
    externals: &[&str],
) -> (Server, String, std::path::PathBuf) {
    use studyflow_dataplane::connector::Connector;
    use studyflow_dataplane::registry_plane::{RegistryDataPlane, ServiceIs};
    use studyflow_dataplane::vault::MasterKey;
    use studyflow_identity::Identity;
    let dir = std::env::temp_dir().join(format!("sf-api-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(dir.join("db").to_str().unwrap()).await.unwrap();
    let plane_store = store.clone();
    let s = Server::start_on(
        store,
        &["martins.ozols", "gatis.krumins"],
        externals,
        move |clock, work| {
            Arc::new(RegistryDataPlane::new(
                plane_store,
                MasterKey::from_bytes([7u8; 32]),
                ServiceIs::None,
                Connector::new(""),
                work,
                clock,
            ))
        },
    )
    .await;
    let researcher = Identity::for_tests("martins.ozols");
    let approver = Identity::for_tests("gatis.krumins");
    let (study, _, hash) = s.engine.submit(&spec(SURVEY), &researcher).await.unwrap();
    s.engine
        .approve(&study, &approver, Some(&hash))
        .await
        .unwrap();
    s.engine
        .contract(
            &study,
            &approver,
            &studyflow_runtime::ContractInput {
                number: "L-2026/17".into(),
                concluded_on: jiff::civil::date(2026, 8, 3),
                signatories: vec!["Līga Ozoliņa".into(), "Artūrs Kalniņš".into()],
                measures_checked: true,
            },
        )
        .await
        .unwrap();
    s.engine.start(&study, &researcher).await.unwrap();
    (s, study, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_takes_its_file_through_the_server_checked_whole() {
    // The study approved, contracted and started (the acts themselves are tested above).
    let (s, study, dir) = survey_moving_data("supply", &["liga.ozolina"]).await;
    let parsed = studyflow_spec::check(&spec(SURVEY)).spec.unwrap();
    if let Some(start) =
        studyflow_plan::stage_start(&parsed, studyflow_spec::model::Stage::Acquisition)
    {
        let at = riga_midnight(start);
        if at > s.clock.now() {
            s.clock.set(at);
        }
    }
    let worker = Worker::new(s.engine.clone(), "w".into());
    worker.run_until_idle().await.unwrap();
    let token = s.token("martins.ozols", 0).await;
    let task = s.open_task(&token, "acquire-service-is").await;
    let (st, files) = s
        .call(
            Method::GET,
            &format!("/api/v1/tasks/{task}/files"),
            Some(&token),
            Body::None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{files}");
    assert_eq!(files["supply"]["name"], "service-is.csv", "{files}");
    assert_eq!(files["supply"]["point"], "p.22.1");
    assert_eq!(files["supply"]["supplied"], false);
    let columns: Vec<String> = files["supply"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let clients = studyflow_sim::generate(&studyflow_sim::Config {
        seed: 5,
        clients: 12,
        ..studyflow_sim::Config::default()
    });
    let mut good = columns.join(",") + "\n";
    for c in &clients {
        let cells: Vec<String> = columns
            .iter()
            .map(|k| match c.value(k) {
                Some(Value::String(s)) => s,
                Some(v) => v.to_string(),
                None => String::new(),
            })
            .collect();
        good.push_str(&(cells.join(",") + "\n"));
    }
    let inbox_file = s.work.join("inbox").join(&study).join("service-is.csv");
    let supply = |body: Body| {
        let s = &s;
        let token = token.clone();
        async move {
            s.call(
                Method::PUT,
                &format!("/api/v1/tasks/{task}/supply"),
                Some(&token),
                body,
            )
            .await
        }
    };
    // A column the spec did not ask for (p.3.3), then a row cut short: each refused whole,
    // row by row, nothing kept, no value of the file echoed.
    let header = good.lines().next().unwrap();
    let extra = good.replacen(header, &format!("{header},personal_code"), 1);
    let (st, refused) = supply(Body::Csv(extra.into_bytes())).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused["type"].as_str().unwrap().ends_with("file-refused"));
    assert_eq!(refused["rows"][0]["row"], 1, "{refused}");
    assert!(
        refused["rows"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("not asked for"),
        "{refused}"
    );
    let cut = good.lines().nth(3).unwrap();
    let short = good.replacen(cut, cut.split(',').next().unwrap(), 1);
    let (st, refused) = supply(Body::Csv(short.into_bytes())).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let rows = refused["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{refused}");
    assert_eq!(rows[0]["row"], 4, "{refused}");
    assert!(!refused.to_string().contains(cut), "{refused}");
    assert!(!inbox_file.exists(), "nothing of a refused file is kept");
    // A file of 200,000 bad rows: every row counted, a page of them listed.
    let many = format!("{header}\n{}", "x\n".repeat(200_000));
    let (st, refused) = supply(Body::Csv(many.into_bytes())).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused["rows"].as_array().unwrap().len(),
        100,
        "{}",
        refused["detail"]
    );
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("200000 row(s); the first 100 are listed"),
        "{}",
        refused["detail"]
    );
    // Not CSV: refused before anything is read.
    let (st, _) = s
        .call(
            Method::PUT,
            &format!("/api/v1/tasks/{task}/supply"),
            Some(&token),
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Nobody else supplies it: the approver has no such task.
    let other = s.token("gatis.krumins", 0).await;
    let (st, b) = s
        .call(
            Method::PUT,
            &format!("/api/v1/tasks/{task}/supply"),
            Some(&other),
            Body::Csv(good.clone().into_bytes()),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    assert!(!inbox_file.exists());
    // Completed before any file was kept (only refused ones were sent): the import waits
    // for the file, and the task still takes it.
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{task}/complete"),
            Some(&token),
            // No note: one on a step with personal data is kept only sealed under the study's
            // keys, which its first personal data makes (MK403 p.26).
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    worker.run_until_idle().await.unwrap();
    let waiting = s.engine.store.run(task).await.unwrap().unwrap();
    assert_eq!(
        waiting.wait_reason.as_deref(),
        Some("answer"),
        "{waiting:?}"
    );
    assert!(
        waiting.not_before.unwrap() > s.engine.now(),
        "looked at again later"
    );
    // Two versions sent at once (a double click): each written whole under its own name, the
    // one left in the inbox one of those accepted; no temporary file left beside it.
    let other_version = good.replacen('\n', "\n\n", 1);
    let (a, b) = tokio::join!(
        supply(Body::Csv(good.clone().into_bytes())),
        supply(Body::Csv(other_version.clone().into_bytes()))
    );
    assert_eq!(
        (a.0, b.0),
        (StatusCode::CREATED, StatusCode::CREATED),
        "{} {}",
        a.1,
        b.1
    );
    let kept = std::fs::read_to_string(&inbox_file).unwrap();
    assert!(kept == good || kept == other_version);
    assert_eq!(
        std::fs::read_dir(inbox_file.parent().unwrap())
            .unwrap()
            .count(),
        1
    );
    // The good file: accepted with its row count, kept owner-only until the import.
    let (st, ok) = supply(Body::Csv(good.clone().into_bytes())).await;
    assert_eq!(st, StatusCode::CREATED, "{ok}");
    assert_eq!(ok["rows"], clients.len(), "{ok}");
    assert_eq!(ok["bytes"], good.len());
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(good.as_bytes()));
    assert_eq!(std::fs::read_to_string(&inbox_file).unwrap(), good);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&inbox_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (_, files) = s
        .call(
            Method::GET,
            &format!("/api/v1/tasks/{task}/files"),
            Some(&token),
            Body::None,
        )
        .await;
    assert_eq!(files["supply"]["supplied"], true);
    // Supplied after its task was completed: the waiting import looks at once.
    worker.run_until_idle().await.unwrap();
    assert!(!inbox_file.exists(), "the plaintext export is deleted");
    let run = s.engine.store.run(task).await.unwrap().unwrap();
    let output: Value = serde_json::from_str(run.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["subjects"], clients.len(), "{output}");
    // Who supplied what, by its digest: no value of the file in the audit.
    let audit = s.engine.store.audit_rows(0, 100_000).await.unwrap();
    let supplied: Vec<_> = audit
        .iter()
        .filter(|a| a.event.action == "task.file_supplied")
        .collect();
    // Two at once, then the good one last.
    assert_eq!(supplied.len(), 3);
    let last = supplied[2];
    assert_eq!(last.event.actor, "martins.ozols");
    // By size and rows, not by a digest that would give a short list away.
    assert!(
        last.event
            .detail
            .contains(&format!("\"bytes\":{}", good.len()))
    );
    assert!(supplied.iter().all(|s| !s.event.detail.contains(&digest)));
    assert_eq!(supplied[0].event.point, "p.22.1");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The contact list of a survey goes to its recipients alone (MK403 p.32): the external
/// researcher's authorised persons who process personal data give their age public keys
/// through the server (audited; nobody else may), the list is encrypted to those keys and is
/// a release of the study that only they see the files of and download (with a recent proof,
/// audited with its sha256), and it opens with the key of a person who gave one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contact_list_goes_to_its_recipients_alone() {
    let (s, study, dir) = survey_moving_data(
        "contacts",
        &["liga.ozolina", "arturs.kalnins", "sandra.klavina"],
    )
    .await;
    // The fieldwork phase has begun: the consent task opens (MK403 p.31).
    s.clock.set(riga_midnight(jiff::civil::date(2026, 9, 1)));
    let worker = Worker::new(s.engine.clone(), "w".into());
    worker.run_until_idle().await.unwrap();
    let token = s.token("martins.ozols", 0).await;
    let task = s.open_task(&token, "consent").await;
    let list = "first_name,last_name,email,phone\nAnna,Bērziņa,anna@example.lv,\nJānis,Ozols,,+371 2000 0000\n";
    let (st, b) = s
        .call(
            Method::PUT,
            &format!("/api/v1/tasks/{task}/supply"),
            Some(&token),
            Body::Csv(list.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{task}/complete"),
            Some(&token),
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    worker.run_until_idle().await.unwrap();
    let waiting: Vec<_> = s
        .engine
        .store
        .runs(&study)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.step == "contact-transfer")
        .collect();
    assert!(
        waiting[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("no person who receives the contact list has given"),
        "{waiting:?}"
    );

    // Giving a key: only an authorised person who processes personal data, with a key.
    let liga_key = age::x25519::Identity::generate();
    let arturs_key = age::x25519::Identity::generate();
    let give = |login: &'static str, key: String| {
        let s = &s;
        let study = study.clone();
        async move {
            // A sign-in of its own: a code is taken once.
            s.clock.advance(jiff::SignedDuration::from_secs(31));
            let t = s.token(login, 0).await;
            s.call(
                Method::PUT,
                &format!("/api/v1/studies/{study}/contact-key"),
                Some(&t),
                Body::Json(json!({ "key": key })),
            )
            .await
        }
    };
    let some_key = liga_key.to_public().to_string();
    for (who, status) in [
        ("martins.ozols", StatusCode::FORBIDDEN),
        ("sandra.klavina", StatusCode::FORBIDDEN),
        ("gatis.krumins", StatusCode::FORBIDDEN),
    ] {
        let (st, b) = give(who, some_key.clone()).await;
        assert_eq!(st, status, "{who}: {b}");
    }
    let (st, b) = give("liga.ozolina", "age1notakey".into()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let keys = s.work.join("recipients").join(&study);
    assert!(!keys.exists(), "nothing kept of a refused key");
    let (st, b) = give("liga.ozolina", some_key.clone()).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["recipients"], 1, "{b}");
    let (st, b) = give("arturs.kalnins", arturs_key.to_public().to_string()).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["recipients"], 2, "{b}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(keys.join("liga.ozolina.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A proof of identity older than five minutes is asked for again.
    s.clock.advance(jiff::SignedDuration::from_secs(31));
    let stale = s.token("liga.ozolina", 0).await;
    s.clock.advance(jiff::SignedDuration::from_mins(10));
    let (st, b) = s
        .call(
            Method::PUT,
            &format!("/api/v1/studies/{study}/contact-key"),
            Some(&stale),
            Body::Json(json!({ "key": some_key })),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
    let given = s
        .engine
        .store
        .audit_rows(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.event.action == "contact.key_given")
        .map(|a| (a.event.actor, a.event.point))
        .collect::<Vec<_>>();
    assert_eq!(
        given,
        [
            ("liga.ozolina".to_owned(), "p.32".to_owned()),
            ("arturs.kalnins".to_owned(), "p.32".to_owned())
        ]
    );

    // The list is written, encrypted to both keys, as a release of the study.
    worker.run_until_idle().await.unwrap();
    let releases = |login: &'static str| {
        let s = &s;
        let study = study.clone();
        async move {
            // A sign-in of its own: a code is taken once.
            s.clock.advance(jiff::SignedDuration::from_secs(31));
            let t = s.token(login, 0).await;
            let (st, b) = s
                .call(
                    Method::GET,
                    &format!("/api/v1/studies/{study}/releases"),
                    Some(&t),
                    Body::None,
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{b}");
            let contacts = b
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["contacts"] == true)
                .cloned()
                .unwrap_or_else(|| panic!("the contact list is a release: {b}"));
            (t, contacts)
        }
    };
    // Written once, to the keys given before: a key given now is refused, not silently unused.
    let (st, b) = give("liga.ozolina", arturs_key.to_public().to_string()).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains("written already"),
        "{b}"
    );
    let (liga, listed) = releases("liga.ozolina").await;
    assert_eq!(listed["may_download"], true, "{listed}");
    let names: Vec<&str> = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["contacts.csv.age", "MANIFEST.sha256"]);
    let n = listed["index"].as_u64().unwrap();
    let path = format!("/api/v1/studies/{study}/releases/{n}/contacts.csv.age");
    let r = s
        .http
        .get(format!("{}{path}", s.base))
        .bearer_auth(&liga)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cipher = r.bytes().await.unwrap();
    assert!(!cipher.windows(5).any(|w| w == b"Ozols"), "only ciphertext");
    for key in [&liga_key, &arturs_key] {
        let plain = String::from_utf8(age::decrypt(key, &cipher).unwrap()).unwrap();
        assert_eq!(plain.lines().count(), 3, "{plain}");
        assert!(plain.contains("Bērziņa") && plain.contains("+371 2000 0000"));
    }
    assert!(age::decrypt(&age::x25519::Identity::generate(), &cipher).is_err());
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&cipher));
    let downloaded: Vec<_> = s
        .engine
        .store
        .audit_rows(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.event.action == "release.downloaded")
        .collect();
    assert_eq!(downloaded.len(), 1);
    assert_eq!(downloaded[0].event.actor, "liga.ozolina");
    assert!(
        downloaded[0].event.detail.contains(&sha),
        "{:?}",
        downloaded[0]
    );
    // Nobody else gets its files, nor the file by its address: not the Service's researcher,
    // the approver, nor the team member who processes no personal data.
    for who in ["martins.ozols", "gatis.krumins", "sandra.klavina"] {
        let (t, listed) = releases(who).await;
        assert_eq!(listed["may_download"], false, "{who}: {listed}");
        assert_eq!(listed["files"], json!([]), "{who}: {listed}");
        let (st, b) = s.call(Method::GET, &path, Some(&t), Body::None).await;
        assert!(
            st == StatusCode::FORBIDDEN || st == StatusCode::NOT_FOUND,
            "{who}: {st} {b}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
