//! # studyflow-server
//!
//! `studyflow serve`: every act of a person over HTTP, under `/api/v1`, by a signed-in
//! [`Identity`](studyflow_identity::Identity) — a personal token (`Authorization: Bearer`, the
//! CLI's, `studyflow login`) or a browser session (a `__Host-` cookie, `HttpOnly; Secure;
//! SameSite=Strict`, with a CSRF token on every change). The engine decides who may do what
//! (`studyflow_runtime::people`), for the CLI and the API alike; the server only establishes
//! who is asking. Errors are RFC 9457 problem details.
//!
//! Invariants: every route is in [`routes`] with its access (the authorisation matrix test
//! reads it); a study is visible only to the persons its spec in force binds (a stranger gets
//! 404, as for a study that does not exist); no response, log line or URL carries a password,
//! code, token or data of a data subject.

pub mod api;
pub mod auth;
pub mod problem;
pub mod tls;
pub mod web;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use studyflow_dataplane::vault::{MasterKey, StudyKeys};
use studyflow_identity::{Accounts, Identity};
use studyflow_runtime::clock::{from_micros, riga_date};
use studyflow_runtime::{ContractInput, Engine, TaskNote};

use crate::api::*;
use crate::auth::{Client, Limiter, Person};
use crate::problem::Problem;

/// What the server holds.
pub struct App {
    pub engine: Engine,
    pub accounts: Accounts,
    /// Sign-in attempts per client address.
    pub limiter: Limiter,
    /// Opens the notes sealed under a study's keys for the persons who may read them; without
    /// it they are reported sealed.
    pub master: Option<MasterKey>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for the sign-in limits and
    /// the audit).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The Service's identity provider, when people sign in there (OpenID Connect).
    pub oidc: Option<studyflow_identity::oidc::Oidc>,
    /// The workers' work folder (`outbox/`, `inbox/`): what the engine prepared for a task is
    /// read there and what a person supplies is put there. Without it, tasks take no files
    /// through the server.
    pub work: Option<std::path::PathBuf>,
}

/// Who may call a route before the engine's own role check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: signing in (limited per address and per account).
    Public,
    /// A signed-in person; the engine then checks their role in the study's spec.
    SignedIn,
}

/// What a request or a response carries.
#[derive(Clone, Copy)]
pub enum Payload {
    None,
    /// A study spec, `application/yaml`.
    Yaml,
    /// JSON of a type of [`api`], as its schema.
    Json(fn(&mut schemars::SchemaGenerator) -> schemars::Schema),
    /// A CSV file with a header row, `text/csv`.
    Csv,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Payload::None => "None",
            Payload::Yaml => "Yaml",
            Payload::Json(_) => "Json",
            Payload::Csv => "Csv",
        })
    }
}

fn json<T: schemars::JsonSchema>() -> Payload {
    Payload::Json(|g| g.subschema_for::<T>())
}

/// A route of the API, as documented (`docs/openapi.json`) and tested.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub request: Payload,
    /// The status of success and what it carries.
    pub ok: (u16, Payload),
}

type Handler = MethodRouter<Arc<App>>;

/// Every route of the API with its handler: the router is built from this list, the OpenAPI
/// document is generated from it, and the authorisation matrix test walks it, so a route
/// cannot be added without its entry in each.
pub fn routes() -> Vec<(RouteDoc, Handler)> {
    use Access::*;
    use Payload::{None as Nothing, Yaml};
    #[allow(clippy::too_many_arguments)]
    fn r(
        method: &'static str,
        path: &'static str,
        access: Access,
        summary: &'static str,
        request: Payload,
        ok: (u16, Payload),
    ) -> RouteDoc {
        RouteDoc {
            method,
            path,
            access,
            summary,
            request,
            ok,
        }
    }
    vec![
        (
            r(
                "POST",
                "/api/v1/session",
                Public,
                "Sign in with a password and a code: opens a browser session (cookie) and returns its CSRF token.",
                json::<SignIn>(),
                (201, json::<SessionOpened>()),
            ),
            post(sign_in),
        ),
        (
            r(
                "GET",
                "/api/v1/oidc/login",
                Public,
                "Sign in at the Service's identity provider (OpenID Connect, code flow with PKCE): a redirect there.",
                Nothing,
                (303, Nothing),
            ),
            get(oidc_login),
        ),
        (
            r(
                "GET",
                "/api/v1/oidc/callback",
                Public,
                "The identity provider's answer: a browser session for the person it names, by `preferred_username`, and its CSRF token.",
                Nothing,
                (201, json::<SessionOpened>()),
            ),
            get(oidc_callback),
        ),
        (
            r(
                "GET",
                "/api/v1/session",
                SignedIn,
                "Who is signed in, and when they last proved it.",
                Nothing,
                (200, json::<Me>()),
            ),
            get(me),
        ),
        (
            r(
                "DELETE",
                "/api/v1/session",
                SignedIn,
                "Sign out: the session (or the token used) is revoked (204). A session of the identity provider's person is answered 200 with the provider's sign-out page, to end the session there too; the refresh token held for it is revoked at the provider.",
                Nothing,
                (200, json::<SignedOut>()),
            ),
            delete(sign_out),
        ),
        (
            r(
                "POST",
                "/api/v1/session/reauthenticate",
                SignedIn,
                "Prove who you are again (password and code), for approve, contract and terminate.",
                json::<Reauthenticate>(),
                (200, json::<Me>()),
            ),
            post(reauthenticate),
        ),
        (
            r(
                "POST",
                "/api/v1/tokens",
                Public,
                "A personal token for the CLI, for a password and a code; shown once.",
                json::<TokenRequest>(),
                (201, json::<TokenIssued>()),
            ),
            post(issue_token),
        ),
        (
            r(
                "GET",
                "/api/v1/tokens",
                SignedIn,
                "Your personal tokens (never the tokens themselves).",
                Nothing,
                (200, json::<Vec<TokenView>>()),
            ),
            get(list_tokens),
        ),
        (
            r(
                "DELETE",
                "/api/v1/tokens/{id}",
                SignedIn,
                "Revoke one of your tokens.",
                Nothing,
                (204, Nothing),
            ),
            delete(revoke_token),
        ),
        (
            r(
                "GET",
                "/api/v1/studies",
                SignedIn,
                "The studies whose spec in force binds you to one of its persons (MK403 p.25.1).",
                Nothing,
                (200, json::<Page<StudySummary>>()),
            ),
            get(list_studies),
        ),
        (
            r(
                "POST",
                "/api/v1/studies",
                SignedIn,
                "Submit a study: its spec (MK403 p.3, p.4).",
                Yaml,
                (201, json::<Done>()),
            ),
            post(submit),
        ),
        (
            r(
                "GET",
                "/api/v1/studies/{id}",
                SignedIn,
                "A study's status: steps, deadlines missed, releases.",
                Nothing,
                (200, json::<StudyView>()),
            ),
            get(study),
        ),
        (
            r(
                "POST",
                "/api/v1/studies/{id}/versions",
                SignedIn,
                "Submit an amendment: the changed spec with `version` raised (MK403 p.3).",
                Yaml,
                (201, json::<Done>()),
            ),
            post(amend),
        ),
        (
            r(
                "POST",
                "/api/v1/studies/{id}/approve",
                SignedIn,
                "Approve the version waiting, pinned to its plan hash (MK403 p.3, p.30.1); needs a recent proof of identity.",
                json::<Approve>(),
                (200, json::<Done>()),
            ),
            post(approve),
        ),
        (
            r(
                "POST",
                "/api/v1/studies/{id}/contract",
                SignedIn,
                "Record an external study's contract, declarations and security measures (MK403 p.5, p.30.2, p.33); needs a recent proof of identity.",
                json::<Contract>(),
                (200, json::<Done>()),
            ),
            post(contract),
        ),
        (
            r(
                "POST",
                "/api/v1/studies/{id}/start",
                SignedIn,
                "Start an approved study (MK403 p.21, p.22).",
                Nothing,
                (200, json::<Done>()),
            ),
            post(start),
        ),
        (
            r(
                "POST",
                "/api/v1/studies/{id}/terminate",
                SignedIn,
                "End a study early; its identifying data is destroyed (MK403 p.26); needs a recent proof of identity.",
                Nothing,
                (200, json::<Done>()),
            ),
            post(terminate),
        ),
        (
            r(
                "GET",
                "/api/v1/studies/{id}/releases",
                SignedIn,
                "The releases of the study's anonymised dataset, with their files.",
                Nothing,
                (200, json::<Vec<ReleaseFiles>>()),
            ),
            get(releases),
        ),
        (
            r(
                "GET",
                "/api/v1/studies/{id}/releases/{n}/{file}",
                SignedIn,
                "Download a file of a release: an external study's to its external researcher's authorised persons (MK403 p.30, p.30.2), an internal study's to its service researchers with access to anonymised data (p.22.5, p.24); needs a recent proof of identity; audited with the file's sha256.",
                Nothing,
                (200, Nothing),
            ),
            get(download),
        ),
        (
            r(
                "GET",
                "/api/v1/studies/{id}/audit",
                SignedIn,
                "The study's audit, oldest first, to the Service's persons of the study (MK403 p.25.3, p.25.5, p.28); `?actor=`, `?action=`, `?from=` and `?until=` (days, inclusive) narrow it.",
                Nothing,
                (200, json::<Page<AuditEventView>>()),
            ),
            get(study_audit),
        ),
        (
            r(
                "GET",
                "/api/v1/audit/checkpoint",
                Public,
                "The audit log's latest signed checkpoint (C2SP tlog-checkpoint in a signed note), for witnesses and for copies verified elsewhere with the public key alone.",
                Nothing,
                (200, Nothing),
            ),
            get(audit_checkpoint),
        ),
        (
            r(
                "GET",
                "/api/v1/tasks",
                SignedIn,
                "Your open tasks, with what each asks of you.",
                Nothing,
                (200, json::<Page<TaskView>>()),
            ),
            get(tasks),
        ),
        (
            r(
                "POST",
                "/api/v1/tasks/{id}/complete",
                SignedIn,
                "Complete a task of yours, with a note (MK403 p.21, p.25.2, p.30.2).",
                json::<Complete>(),
                (200, json::<Done>()),
            ),
            post(complete),
        ),
        (
            r(
                "GET",
                "/api/v1/tasks/{id}/files",
                SignedIn,
                "What the engine prepared for an open task of yours (a request and its cover letter, MK403 p.12.3, p.14.2; the p.8 notice), and the file the task takes from you, with its columns.",
                Nothing,
                (200, json::<TaskFiles>()),
            ),
            get(task_files),
        ),
        (
            r(
                "GET",
                "/api/v1/tasks/{id}/files/{file}",
                SignedIn,
                "Download a file prepared for an open task of yours; a file of a step that handles personal data needs a recent proof of identity (MK403 p.25.3); audited with its sha256.",
                Nothing,
                (200, Nothing),
            ),
            get(task_file),
        ),
        (
            r(
                "PUT",
                "/api/v1/tasks/{id}/supply",
                SignedIn,
                "Supply the file an open task of yours takes — the manual Service IS extraction (MK403 p.22.1), the consented contacts (p.31, p.32): checked whole as the import will check it; refused whole with its row report (the first 100 problems) and nothing kept, or put in the inbox for the import when you complete the task (at once, for a task completed before it came). Needs a recent proof of identity; audited by size and rows.",
                Payload::Csv,
                (201, json::<Supplied>()),
            ),
            put(supply),
        ),
        (
            r(
                "GET",
                "/api/v1/tasks/{id}/note",
                SignedIn,
                "The note of a completed task you may do; a sealed note's reading is audited (MK403 p.25.1, p.26).",
                Nothing,
                (200, json::<NoteView>()),
            ),
            get(note),
        ),
    ]
}

/// The OpenAPI 3.1 document of the API, generated from [`routes`] and the types of [`api`]
/// (checked in as `docs/openapi.json`; a test keeps it fresh).
pub fn openapi() -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas/".into())
        .into_generator();
    let problem = generator.subschema_for::<Problem>();
    let mut paths = Map::new();
    for (doc, _) in routes() {
        let mut op = Map::new();
        op.insert("summary".into(), json!(doc.summary));
        op.insert(
            "operationId".into(),
            json!(format!(
                "{}{}",
                doc.method.to_ascii_lowercase(),
                doc.path
                    .trim_start_matches("/api/v1")
                    .replace(['/', '{', '}'], "_")
                    .trim_end_matches('_')
            )),
        );
        op.insert(
            "security".into(),
            match doc.access {
                Access::Public => json!([]),
                Access::SignedIn => json!([{"token": []}, {"session": []}]),
            },
        );
        let mut params = Vec::new();
        if doc.path.contains("{id}") {
            params.push(
                json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}),
            );
        }
        if doc.method == "GET"
            && matches!(
                doc.path,
                "/api/v1/studies" | "/api/v1/tasks" | "/api/v1/studies/{id}/audit"
            )
        {
            params.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}}));
            params.push(json!({"name": "after", "in": "query", "description": "the `next` of the page before", "schema": {"type": "string"}}));
        }
        if doc.path == "/api/v1/studies/{id}/audit" {
            for (name, what) in [
                ("actor", "the login that acted"),
                ("action", "the action, e.g. `study.approved`"),
                ("from", "the first day (YYYY-MM-DD, Riga time)"),
                ("until", "the last day (YYYY-MM-DD, Riga time)"),
            ] {
                params.push(json!({"name": name, "in": "query", "description": what, "schema": {"type": "string"}}));
            }
        }
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        match doc.request {
            Payload::None => {}
            Payload::Yaml => {
                op.insert("requestBody".into(), json!({"required": true, "content": {"application/yaml": {"schema": {"$ref": "https://example.invalid/studyflow/schemas/study-spec.schema.json"}}}}));
            }
            Payload::Json(schema) => {
                op.insert("requestBody".into(), json!({"required": true, "content": {"application/json": {"schema": schema(&mut generator)}}}));
            }
            Payload::Csv => {
                op.insert("requestBody".into(), json!({"required": true, "content": {"text/csv": {"schema": {"type": "string", "description": "UTF-8, a header row naming the columns"}}}}));
            }
        }
        let (status, payload) = doc.ok;
        let ok = match payload {
            Payload::Json(schema) => {
                json!({"description": "done", "content": {"application/json": {"schema": schema(&mut generator)}}})
            }
            _ => json!({"description": "done"}),
        };
        op.insert(
            "responses".into(),
            json!({
                status.to_string(): ok,
                "default": {"description": "a problem (RFC 9457)", "content": {"application/problem+json": {"schema": problem}}},
            }),
        );
        let entry = paths
            .entry(doc.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[doc.method.to_ascii_lowercase()] = Value::Object(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "studyflow",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every act of a person on a study under MK403, by a signed-in identity: a personal token (`Authorization: Bearer`, from `studyflow login`) or a browser session (the `__Host-studyflow` cookie, with the session's CSRF token in `X-CSRF-Token` on every change). The engine decides who may do what by the person's role in the study's spec in force; a study that does not involve the person answers 404.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": auth::COOKIE},
            },
            "schemas": generator.take_definitions(true),
        },
    })
}

/// [`openapi`] as the checked-in text.
pub fn openapi_text() -> String {
    let mut s = serde_json::to_string_pretty(&openapi()).unwrap_or_default();
    s.push('\n');
    s
}

/// The API and the pages, with their security headers and limits.
pub fn router(app: Arc<App>) -> Router {
    let mut api = Router::new();
    for (doc, handler) in routes() {
        debug_assert!(doc.path.starts_with("/api/v1/"));
        api = api.route(doc.path, handler);
    }
    let api = api
        .route(
            "/api/{*rest}",
            axum::routing::any(|| async { Problem::not_found("no such route") }),
        )
        .layer(axum::middleware::from_fn(problems_only));
    Router::new()
        .merge(api)
        .merge(web::router())
        .layer(axum::extract::DefaultBodyLimit::max(2 << 20))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(app)
}

/// Over TLS: browsers come back over https only, for a year.
async fn strict_transport(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    r.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    r
}

/// Headers on every response: nothing framed, sniffed, cached or referred; no script.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    for (k, v) in [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

/// Every error as a problem (RFC 9457): the framework's own refusals (a malformed body or path,
/// a body too large, a wrong method) become problems of their status, without echoing the
/// request — a secret pasted into the wrong field is not sent back.
async fn problems_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let r = next.run(req).await;
    let status = r.status();
    let is_problem = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return r;
    }
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request's body is larger than the route takes (2 MiB; a task's file 64 MiB)"
        }
        StatusCode::METHOD_NOT_ALLOWED => "this route does not take that method",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "send JSON as application/json",
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
            "the request is not what this route takes (see docs/openapi.json)"
        }
        _ => "the request could not be served",
    };
    let kind = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        _ => "bad-request",
    };
    let mut p = Problem::new(status, kind, detail).into_response();
    for (k, v) in r.headers() {
        if k == header::ALLOW {
            p.headers_mut().insert(k, v.clone());
        }
    }
    p
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<auth::Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The engine's options for a server: the defaults, and a study's status computed at most once
/// in 2 seconds and shared by the requests meanwhile — many people may look at a study of
/// 100,000 runs; an act through this server shows at once, the workers' progress within 2 s.
pub fn engine_options() -> studyflow_runtime::Options {
    studyflow_runtime::Options {
        status_cache: Some(std::time::Duration::from_secs(2)),
        ..studyflow_runtime::Options::default()
    }
}

/// [`serve`] over TLS ([`tls::config`]): only connections whose handshake completed reach
/// the API.
pub async fn serve_tls(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        tls::TlsListener::new(listener, config)?,
        router(app)
            .layer(axum::middleware::from_fn(strict_transport))
            .into_make_service_with_connect_info::<auth::Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

type Result<T> = std::result::Result<T, Problem>;

fn instant(us: i64) -> String {
    from_micros(us).to_string()
}

pub(crate) fn day(us: i64) -> String {
    riga_date(from_micros(us)).to_string()
}

/// A deadline's last day (deadlines are the instant after it).
fn last_day(us: i64) -> String {
    day(us - 1)
}

fn limited(app: &App, client: &Client) -> Result<()> {
    app.limiter
        .attempt(client.0, app.engine.now())
        .map_err(|wait| {
            Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!("too many sign-in attempts from this address; try again in {wait} s"),
            )
        })
}

async fn sign_in(
    State(app): State<Arc<App>>,
    client: Client,
    headers: HeaderMap,
    Json(s): Json<SignIn>,
) -> Result<Response> {
    limited(&app, &client)?;
    let now = app.engine.now();
    let who = app
        .accounts
        .sign_in(&s.login, &s.password, &s.code, &client.0.to_string(), now)
        .await?;
    end_presented(&app, &headers).await;
    let (body, cookie, _) = open_browser_session(&app, &who, "browser", now).await?;
    let mut r = (StatusCode::CREATED, Json(body)).into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(r)
}

/// A new browser session for `who` (`client` says where it was opened): what the API answers,
/// the cookie, and the hash of the session's secret. A new secret at every sign-in: a session
/// cookie planted before it is worth nothing.
pub(crate) async fn open_browser_session(
    app: &App,
    who: &Identity,
    client: &str,
    now: i64,
) -> Result<(SessionOpened, HeaderValue, Vec<u8>)> {
    let (session, csrf) = app.accounts.open_session(who, client, now).await?;
    let policy = app.accounts.policy();
    let cookie = HeaderValue::from_str(&auth::set_cookie(
        Some(session.expose()),
        policy.session_absolute / 1_000_000,
    ))
    .map_err(|_| Problem::internal())?;
    Ok((
        SessionOpened {
            login: who.login().to_owned(),
            csrf: csrf.expose().to_owned(),
            expires_at: instant(now + policy.session_absolute),
        },
        cookie,
        session.hash(),
    ))
}

/// At a sign-in, the session the browser held before, if it is still good, ends (with its
/// refresh token at the provider): a new sign-in does not leave the old one behind.
pub(crate) async fn end_presented(app: &App, headers: &HeaderMap) {
    let Some(secret) = auth::session_cookie(headers) else {
        return;
    };
    let now = app.engine.now();
    if let Ok(held) = app
        .accounts
        .authenticate(studyflow_store::CredentialKind::Session, secret, now)
        .await
        && let Err(e) = end_session(app, &held.identity, &held).await
    {
        tracing::warn!(error = %e.detail, "the session held before a sign-in could not be ended");
    }
}

/// Ends the session or token `held` (sign-out); for a session of the identity provider's
/// person, its refresh token is revoked there and the provider's sign-out page returned.
pub(crate) async fn end_session(
    app: &App,
    who: &Identity,
    held: &studyflow_identity::Authenticated,
) -> Result<Option<String>> {
    app.accounts
        .revoke(who, &held.credential.hash, app.engine.now())
        .await?;
    Ok(match (&app.oidc, held.credential.kind) {
        (Some(oidc), studyflow_store::CredentialKind::Session) if who.issuer() == oidc.issuer() => {
            oidc.sign_out(&held.credential.hash).await
        }
        _ => None,
    })
}

/// The cookie that ties the provider's answer to the browser that was sent there.
const OIDC_COOKIE: &str = "__Host-studyflow-oidc";

fn oidc_of(app: &App) -> Result<&studyflow_identity::oidc::Oidc> {
    app.oidc.as_ref().ok_or_else(|| {
        Problem::not_found("sign-in through an identity provider is not configured here")
    })
}

async fn oidc_login(State(app): State<Arc<App>>, client: Client) -> Result<Response> {
    limited(&app, &client)?;
    let (url, state) = oidc_of(&app)?.begin(app.engine.now());
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&url).map_err(|_| Problem::internal())?,
    );
    // Lax: the provider's answer is a top-level navigation from its site.
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{OIDC_COOKIE}={state}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=600"
        ))
        .map_err(|_| Problem::internal())?,
    );
    Ok(r)
}

#[derive(Debug, serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn oidc_callback(
    State(app): State<Arc<App>>,
    client: Client,
    headers: HeaderMap,
    Query(c): Query<Callback>,
) -> Result<Response> {
    limited(&app, &client)?;
    let oidc = oidc_of(&app)?;
    if let Some(e) = &c.error {
        return Err(Problem::unauthenticated(format!(
            "the identity provider did not sign you in ({})",
            e.chars().take(60).collect::<String>()
        )));
    }
    let (Some(code), Some(state)) = (&c.code, &c.state) else {
        return Err(Problem::bad_request(
            "the identity provider's answer has no code and state",
        ));
    };
    // Only in the browser that was sent to the provider (no sign-in planted in another's).
    let sent = auth::cookie(&headers, OIDC_COOKIE);
    if sent.is_none_or(|s| !studyflow_identity::secret_eq(s.as_bytes(), state.as_bytes())) {
        return Err(Problem::unauthenticated(
            "this sign-in did not start in this browser; sign in again",
        ));
    }
    let now = app.engine.now();
    let verified = oidc.finish(state, code, now).await?;
    let who = app
        .accounts
        .sign_in_oidc(&verified, &client.0.to_string(), now)
        .await?;
    end_presented(&app, &headers).await;
    let (opened, cookie, session) =
        open_browser_session(&app, &who, "browser (identity provider)", now).await?;
    // The refresh token that came with the sign-in stays in this process, for the session.
    oidc.hold(&session, verified, now);
    // A browser (the pages' sign-in link) goes on to the pages; the API's client reads JSON.
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut r = if browser {
        web::continue_to("/studies", web::Chosen::of_headers(&headers))
    } else {
        (StatusCode::CREATED, Json(opened)).into_response()
    };
    let h = r.headers_mut();
    h.append(header::SET_COOKIE, cookie);
    h.append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-studyflow-oidc=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0",
        ),
    );
    Ok(r)
}

async fn me(p: Person) -> Json<Me> {
    me_of(&p.who)
}

async fn sign_out(State(app): State<Arc<App>>, p: Person) -> Result<Response> {
    // A person of the identity provider: their refresh token revoked there, and the provider's
    // sign-out page named, to end their session at the provider too.
    let provider = end_session(&app, &p.who, &p.held).await?;
    let mut r = match provider {
        Some(url) => Json(SignedOut {
            provider_sign_out: url,
        })
        .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    };
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&auth::set_cookie(None, 0)).map_err(|_| Problem::internal())?,
    );
    Ok(r)
}

async fn reauthenticate(
    State(app): State<Arc<App>>,
    client: Client,
    p: Person,
    Json(r): Json<Reauthenticate>,
) -> Result<Json<Me>> {
    limited(&app, &client)?;
    let now = app.engine.now();
    let who = app
        .accounts
        .step_up(&p.held, &r.password, &r.code, &client.0.to_string(), now)
        .await?;
    Ok(me_of(&who))
}

fn me_of(who: &Identity) -> Json<Me> {
    Json(Me {
        login: who.login().to_owned(),
        issuer: who.issuer().to_owned(),
        subject: who.subject().to_owned(),
        authenticated_at: instant(who.auth_at()),
    })
}

async fn issue_token(
    State(app): State<Arc<App>>,
    client: Client,
    Json(t): Json<TokenRequest>,
) -> Result<(StatusCode, Json<TokenIssued>)> {
    limited(&app, &client)?;
    // Checked before the sign-in, which uses up the code.
    let days = app.accounts.token_days(t.days)?;
    let now = app.engine.now();
    let who = app
        .accounts
        .sign_in(&t.login, &t.password, &t.code, &client.0.to_string(), now)
        .await?;
    let label = t.label.as_deref().unwrap_or("cli");
    let (token, row) = app
        .accounts
        .issue_token(&who, label, Some(days), now)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenIssued {
            token: token.expose().to_owned(),
            id: hex::encode(&row.hash),
            expires_at: instant(row.expires_at),
        }),
    ))
}

async fn list_tokens(State(app): State<Arc<App>>, p: Person) -> Result<Json<Vec<TokenView>>> {
    Ok(Json(
        app.accounts
            .tokens(&p.who)
            .await?
            .into_iter()
            .map(|t| TokenView {
                id: hex::encode(&t.hash),
                label: t.label,
                created_at: instant(t.created_at),
                expires_at: instant(t.expires_at),
                last_used_at: instant(t.last_used_at),
                revoked: t.revoked_at.is_some(),
            })
            .collect(),
    ))
}

async fn revoke_token(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let hash = hex::decode(&id).map_err(|_| Problem::not_found("no such token of yours"))?;
    app.accounts
        .revoke(&p.who, &hash, app.engine.now())
        .await
        .map_err(|_| Problem::not_found("no such token of yours"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?limit=` (1–500, default 100) and `?after=` (the `next` of the page before).
#[derive(Debug, serde::Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    after: Option<String>,
}

fn page<T>(items: Vec<T>, q: &PageQuery, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let start = match &q.after {
        Some(a) => items.iter().position(|i| key(i) == *a).map_or(0, |p| p + 1),
        None => 0,
    };
    let mut items: Vec<T> = items.into_iter().skip(start).collect();
    let next = (items.len() > limit).then(|| key(&items[limit - 1]));
    items.truncate(limit);
    Page { items, next }
}

async fn list_studies(
    State(app): State<Arc<App>>,
    p: Person,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<StudySummary>>> {
    Ok(Json(page(studies_view(&app, &p.who).await?, &q, |s| {
        s.id.clone()
    })))
}

/// The studies `who` is involved in (the API's list and the studies page alike).
pub(crate) async fn studies_view(app: &App, who: &Identity) -> Result<Vec<StudySummary>> {
    Ok(app
        .engine
        .studies_of(who)
        .await?
        .into_iter()
        .map(|s| StudySummary {
            id: s.id,
            state: s.state.as_str().to_owned(),
            active_version: s.active_version,
        })
        .collect())
}

fn yaml_body(headers: &HeaderMap, body: &Bytes) -> Result<()> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !matches!(
        mime,
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/plain"
    ) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the spec as application/yaml",
        ));
    }
    if body.is_empty() {
        return Err(Problem::bad_request("the spec is empty"));
    }
    Ok(())
}

async fn submit(
    State(app): State<Arc<App>>,
    p: Person,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Done>)> {
    yaml_body(&headers, &body)?;
    let (study, version, hash) = app.engine.submit(&body, &p.who).await?;
    Ok((
        StatusCode::CREATED,
        Json(Done {
            message: format!(
                "submitted {study} version {version}, plan {hash}; it waits for approval by an approver named in the spec"
            ),
            study: Some(study),
            version: Some(version),
            plan_hash: Some(hash),
        }),
    ))
}

/// A study the person may see, or 404 as for one that does not exist.
async fn visible(app: &App, who: &Identity, study: &str) -> Result<()> {
    if app.engine.involved(study, who).await? {
        Ok(())
    } else {
        Err(Problem::not_found(format!("no study `{study}` of yours")))
    }
}

async fn study(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
) -> Result<Json<StudyView>> {
    Ok(Json(study_view(&app, &p.who, &id).await?))
}

/// A study as its persons see it (the API's study and the study page alike); 404 to others.
pub(crate) async fn study_view(app: &App, who: &Identity, id: &str) -> Result<StudyView> {
    visible(app, who, id).await?;
    let s = app
        .engine
        .status(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no study `{id}` of yours")))?;
    Ok(StudyView {
        id: s.study,
        state: s.state.as_str().to_owned(),
        since: instant(s.since),
        latest_version: s.latest.as_ref().map(|v| v.version),
        plan_hash: s.latest.as_ref().map(|v| v.plan_hash.clone()),
        approved_by: s
            .latest
            .as_ref()
            .and_then(|v| v.approved.as_ref().map(|a| a.0.clone())),
        running_version: s.running_version,
        steps: s
            .steps
            .into_iter()
            .map(|st| StepView {
                step: st.step,
                per_subject: st.per_subject,
                runs: st.runs,
                activities: st
                    .activities
                    .into_iter()
                    .map(|(a, n)| (a.as_str().to_owned(), n))
                    .collect(),
                next: st.next.map(day),
                due: st.due.map(last_day),
                late: st.late,
                reason: st.reason,
            })
            .collect(),
        overdue: s
            .overdue
            .into_iter()
            .map(|o| OverdueView {
                step: o.step,
                runs: o.runs,
                open: o.open,
                due: last_day(o.due),
                rule: o.rule,
            })
            .collect(),
        releases: s
            .releases
            .into_iter()
            .map(|r| ReleaseView {
                step: r.step,
                recipient: r.recipient,
                written_at: instant(r.written_at),
                follow_up_events: r.follow_up_events,
            })
            .collect(),
    })
}

async fn amend(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Done>)> {
    yaml_body(&headers, &body)?;
    visible(&app, &p.who, &id).await?;
    let (study, version, hash) = app.engine.amend(&id, &body, &p.who).await?;
    Ok((
        StatusCode::CREATED,
        Json(Done {
            message: format!(
                "submitted amendment {study} version {version}, plan {hash}; the approved version runs until this one is approved"
            ),
            study: Some(study),
            version: Some(version),
            plan_hash: Some(hash),
        }),
    ))
}

async fn approve(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
    Json(a): Json<Approve>,
) -> Result<Json<Done>> {
    visible(&app, &p.who, &id).await?;
    let v = app.engine.approve(&id, &p.who, Some(&a.plan_hash)).await?;
    Ok(Json(Done {
        message: format!("approved {id} version {v} as {}", p.who.login()),
        study: Some(id),
        version: Some(v),
        plan_hash: None,
    }))
}

async fn contract(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
    Json(c): Json<Contract>,
) -> Result<Json<Done>> {
    visible(&app, &p.who, &id).await?;
    let concluded_on: jiff::civil::Date = c
        .concluded_on
        .parse()
        .map_err(|_| Problem::bad_request("`concluded_on` is a date, YYYY-MM-DD"))?;
    let input = ContractInput {
        number: c.number.clone(),
        concluded_on,
        signatories: c.signatories.clone(),
        measures_checked: c.measures_checked,
    };
    app.engine.contract(&id, &p.who, &input).await?;
    Ok(Json(Done {
        message: format!(
            "recorded contract {} of {id} with {} non-disclosure declaration(s)",
            c.number,
            c.signatories.len()
        ),
        study: Some(id),
        ..Done::default()
    }))
}

async fn start(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
) -> Result<Json<Done>> {
    visible(&app, &p.who, &id).await?;
    let n = app.engine.start(&id, &p.who).await?;
    Ok(Json(Done {
        message: format!("started {id}: {n} step runs"),
        study: Some(id),
        ..Done::default()
    }))
}

async fn terminate(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
) -> Result<Json<Done>> {
    visible(&app, &p.who, &id).await?;
    app.engine.terminate(&id, &p.who).await?;
    Ok(Json(Done {
        message: format!(
            "terminated {id}: what was not done is cancelled; identifying data is destroyed by the next worker (MK403 p.26)"
        ),
        study: Some(id),
        ..Done::default()
    }))
}

async fn releases(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
) -> Result<Json<Vec<ReleaseFiles>>> {
    Ok(Json(releases_view(&app, &p.who, &id).await?))
}

/// A study's releases with their files (the API's list and the study page alike).
pub(crate) async fn releases_view(
    app: &App,
    who: &Identity,
    id: &str,
) -> Result<Vec<ReleaseFiles>> {
    visible(app, who, id).await?;
    Ok(app
        .engine
        .releases(id)
        .await?
        .into_iter()
        .enumerate()
        .map(|(index, r)| ReleaseFiles {
            index,
            files: release_files(&r.folder).unwrap_or_default(),
            step: r.step,
            recipient: r.recipient,
            written_at: instant(r.written_at),
            follow_up_events: r.follow_up_events,
        })
        .collect())
}

/// The manifest's name in a release.
const MANIFEST: &str = "MANIFEST.sha256";

/// A release's files as its manifest lists them, and the manifest itself.
fn release_files(folder: &std::path::Path) -> Option<Vec<FileView>> {
    let mut files: Vec<FileView> = studyflow_dataplane::release::manifest(folder)
        .ok()?
        .into_iter()
        .map(|(name, sha256)| FileView { name, sha256 })
        .collect();
    let manifest = std::fs::read(folder.join(MANIFEST)).ok()?;
    files.push(FileView {
        name: MANIFEST.to_owned(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&manifest)),
    });
    Some(files)
}

async fn download(
    State(app): State<Arc<App>>,
    p: Person,
    headers: HeaderMap,
    Path((id, n, file)): Path<(String, usize, String)>,
) -> Result<Response> {
    browser_navigation(&p, &headers)?;
    release_file(&app, &p.who, &id, n, &file).await
}

/// A file of release `n` of study `id` for `who`, as its manifest lists it and only after its
/// sha256 matched, the download audited (the API and the study page alike; MK403 p.24, p.30).
pub(crate) async fn release_file(
    app: &App,
    who: &Identity,
    id: &str,
    n: usize,
    file: &str,
) -> Result<Response> {
    let release = app.engine.release_for(id, n, who).await?;
    let files = release_files(&release.folder).ok_or_else(|| {
        Problem::new(
            StatusCode::GONE,
            "gone",
            format!("the files of release {n} of `{id}` are not there any more"),
        )
    })?;
    // Only a file the manifest names, or the manifest (no path of the client's reaches the
    // disk), and only as the manifest says it is.
    // A plain file name only, whatever a manifest on disk says: nothing outside the folder.
    let plain = |n: &str| !n.is_empty() && !n.starts_with('.') && !n.contains(['/', '\\', '\0']);
    let Some(FileView { name, sha256: hash }) =
        files.into_iter().find(|f| f.name == file && plain(&f.name))
    else {
        return Err(Problem::not_found(format!(
            "release {n} of `{id}` has no file `{}`",
            file.chars().take(80).collect::<String>()
        )));
    };
    let bytes = tokio::fs::read(release.folder.join(&name))
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::GONE,
                "gone",
                format!("`{name}` of release {n} is not there any more"),
            )
        })?;
    let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    if actual != hash {
        tracing::error!(study = %id, release = n, file = %name, "a release file does not match its manifest");
        return Err(Problem::internal());
    }
    app.engine
        .record_read(
            who,
            "release.downloaded",
            id,
            if release.to_external { "p.30" } else { "p.24" },
            serde_json::json!({"release": n, "step": release.step, "file": name, "sha256": hash}),
        )
        .await?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .map_err(|_| Problem::internal())?,
    );
    h.insert(
        "x-content-sha256",
        HeaderValue::from_str(&hash).map_err(|_| Problem::internal())?,
    );
    Ok(r)
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub(crate) struct AuditQuery {
    pub limit: Option<i64>,
    pub after: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<String>,
    pub until: Option<String>,
}

async fn study_audit(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Page<AuditEventView>>> {
    Ok(Json(audit_view(&app, &p.who, &id, q).await?))
}

/// A page of a study's audit for `who` (the API and the audit page alike): narrowed by actor,
/// action and days (Riga time), paged by sequence number.
pub(crate) async fn audit_view(
    app: &App,
    who: &Identity,
    id: &str,
    q: AuditQuery,
) -> Result<Page<AuditEventView>> {
    let midnight = |name: &str, text: &Option<String>, next: bool| -> Result<Option<i64>> {
        let Some(text) = text.as_ref().filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let d: jiff::civil::Date = text
            .parse()
            .map_err(|_| Problem::bad_request(format!("`{name}` is a day (YYYY-MM-DD)")))?;
        let d = if next {
            d.tomorrow()
                .map_err(|_| Problem::bad_request(format!("`{name}` is out of range")))?
        } else {
            d
        };
        Ok(Some(
            studyflow_runtime::clock::riga_midnight(d).as_microsecond(),
        ))
    };
    let filter = studyflow_store::AuditFilter {
        actor: q.actor.filter(|a| !a.is_empty()),
        action: q.action.filter(|a| !a.is_empty()),
        from: midnight("from", &q.from, false)?,
        until: midnight("until", &q.until, true)?,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let rows = app
        .engine
        .audit_of(id, who, &filter, q.after.unwrap_or(0), limit + 1)
        .await?;
    let next = (rows.len() as i64 > limit).then(|| rows[limit as usize - 1].seq.to_string());
    let items = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| AuditEventView {
            seq: r.seq,
            at: instant(r.event.at),
            actor: r.event.actor,
            action: r.event.action,
            object: r.event.object,
            point: r.event.point,
            detail: serde_json::from_str(&r.event.detail)
                .unwrap_or(serde_json::Value::String(r.event.detail)),
        })
        .collect();
    Ok(Page { items, next })
}

async fn audit_checkpoint(State(app): State<Arc<App>>) -> Result<Response> {
    let note = app.engine.latest_checkpoint().await?.ok_or_else(|| {
        Problem::not_found(
            "the audit has no signed checkpoint (the server seals without an audit key)",
        )
    })?;
    let mut r = note.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

/// The largest file a person supplies for a task: a manual extraction of 100,000 clients with
/// twenty columns is about 20 MiB.
pub const SUPPLY_LIMIT: usize = 64 << 20;

fn work_folder(app: &App) -> Result<&std::path::Path> {
    app.work.as_deref().ok_or_else(|| {
        Problem::not_found(
            "this server is not configured with the work folder (studyflow serve --work-dir): tasks take no files through it",
        )
    })
}

/// The files the engine prepared for task `run` of `step`, in the work folder's outbox.
fn prepared_files(
    work: &std::path::Path,
    run: &studyflow_store::RunRow,
    step: &studyflow_plan::Step,
) -> Vec<studyflow_dataplane::supply::Prepared> {
    let output: Option<serde_json::Value> = run
        .output
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok());
    studyflow_dataplane::supply::prepared(&work.join("outbox"), &run.study, step, output.as_ref())
}

async fn task_files(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<i64>,
) -> Result<Json<TaskFiles>> {
    Ok(Json(task_files_view(&app, &p.who, id).await?))
}

/// What the engine prepared for task `id` and what it takes (the API and the task page alike).
pub(crate) async fn task_files_view(app: &App, who: &Identity, id: i64) -> Result<TaskFiles> {
    let (run, loaded, step) = app.engine.task_taking_files(id, who, None).await?;
    let work = work_folder(app)?;
    let files = prepared_files(work, &run, &step);
    let mut prepared = Vec::new();
    for f in files {
        let bytes = tokio::fs::read(&f.path)
            .await
            .map_err(|_| Problem::internal())?;
        prepared.push(FileView {
            name: f.name,
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        });
    }
    let supply = studyflow_dataplane::supply::Supply::of(&step, run.human).map(|s| SupplyView {
        name: s.file_name().to_owned(),
        point: s.point().to_owned(),
        columns: s
            .columns(&loaded.spec, &step)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        supplied: s.path(&work.join("inbox"), &run.study).exists(),
    });
    Ok(TaskFiles { prepared, supply })
}

/// A browser session's audited read only as the person's own navigation
/// ([`web::own_navigation`]); a personal token's is the CLI's own.
fn browser_navigation(p: &Person, headers: &HeaderMap) -> Result<()> {
    if p.held.credential.kind == studyflow_store::CredentialKind::Session {
        web::own_navigation(headers)?;
    }
    Ok(())
}

async fn task_file(
    State(app): State<Arc<App>>,
    p: Person,
    headers: HeaderMap,
    Path((id, file)): Path<(i64, String)>,
) -> Result<Response> {
    browser_navigation(&p, &headers)?;
    prepared_file(&app, &p.who, id, &file).await
}

/// A file prepared for task `id`, as a download, its reading audited (the API and the task
/// page alike).
pub(crate) async fn prepared_file(
    app: &App,
    who: &Identity,
    id: i64,
    file: &str,
) -> Result<Response> {
    let (run, _, step) = app
        .engine
        .task_taking_files(id, who, Some("read what was prepared for the task"))
        .await?;
    let work = work_folder(app)?;
    let found = prepared_files(work, &run, &step)
        .into_iter()
        .find(|f| f.name == file)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "task {id} has no prepared file `{}`",
                file.chars().take(80).collect::<String>()
            ))
        })?;
    let bytes = tokio::fs::read(&found.path).await.map_err(|_| {
        Problem::new(
            StatusCode::GONE,
            "gone",
            format!("`{}` of task {id} is not there any more", found.name),
        )
    })?;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    // A request naming subjects is audited by its size, not its digest, which would give a
    // short list of personal codes away to whoever reads the audit.
    let detail = if step.handles_personal_data() {
        serde_json::json!({"run": id, "file": found.name, "bytes": bytes.len()})
    } else {
        serde_json::json!({"run": id, "file": found.name, "sha256": hash})
    };
    app.engine
        .record_read(
            who,
            "task.file_read",
            &studyflow_store::run_object(&run.study, &run.step, &run.subject),
            &step.regulation.join(" "),
            detail,
        )
        .await?;
    let kind = if found.name.ends_with(".json") {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", found.name))
            .map_err(|_| Problem::internal())?,
    );
    h.insert(
        "x-content-sha256",
        HeaderValue::from_str(&hash).map_err(|_| Problem::internal())?,
    );
    Ok(r)
}

/// A task that takes a file, and where: everything checked before a byte of the file is read.
pub(crate) struct SupplyTarget {
    run: studyflow_store::RunRow,
    loaded: Arc<studyflow_runtime::engine::Loaded>,
    step: studyflow_plan::Step,
    kind: studyflow_dataplane::supply::Supply,
    work: std::path::PathBuf,
}

/// Who, which task, a recent proof, and that it takes a file: nothing of a file is read for
/// someone who may not send it.
pub(crate) async fn supply_target(app: &App, who: &Identity, id: i64) -> Result<SupplyTarget> {
    let (run, loaded, step) = app
        .engine
        .task_taking_files(id, who, Some("supply a file for the task"))
        .await?;
    let work = work_folder(app)?.to_path_buf();
    let Some(kind) = studyflow_dataplane::supply::Supply::of(&step, run.human) else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "refused",
            format!("task {id} ({}) takes no file", run.step),
        ));
    };
    Ok(SupplyTarget {
        run,
        loaded,
        step,
        kind,
        work,
    })
}

/// A few files checked at once: each is held whole in memory while it is.
pub(crate) static SUPPLY_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A slow sender does not hold a place for long.
pub(crate) const SUPPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

pub(crate) fn supply_timed_out() -> Problem {
    Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        "the file did not arrive within 2 minutes",
    )
}

pub(crate) fn supply_too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        format!("a task's file is at most {} MiB", SUPPLY_LIMIT >> 20),
    )
}

async fn supply(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Supplied>)> {
    let target = supply_target(&app, &p.who, id).await?;
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if !matches!(mime, "text/csv" | "application/csv" | "text/plain") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the file as text/csv",
        ));
    }
    let _checking = SUPPLY_CHECKS
        .acquire()
        .await
        .map_err(|_| Problem::internal())?;
    let body = tokio::time::timeout(SUPPLY_TIMEOUT, axum::body::to_bytes(body, SUPPLY_LIMIT))
        .await
        .map_err(|_| supply_timed_out())?
        .map_err(|_| supply_too_large())?;
    Ok((
        StatusCode::CREATED,
        Json(supply_bytes(&app, &p.who, id, target, body).await?),
    ))
}

/// Checks a task's file whole and, if good and the task still takes it, puts it where the
/// import looks; audited by size and rows; the task's waiting import woken. Refused whole with
/// its row report (`file-refused`, the first 100 problems) and nothing kept.
pub(crate) async fn supply_bytes(
    app: &App,
    who: &Identity,
    id: i64,
    target: SupplyTarget,
    body: Bytes,
) -> Result<Supplied> {
    let SupplyTarget {
        run,
        loaded,
        step,
        kind,
        work,
    } = target;
    let size = body.len();
    let study = run.study.clone();
    let inbox = work.join("inbox");
    let put = {
        let inbox = inbox.clone();
        tokio::task::spawn_blocking(move || kind.stage(&loaded.spec, &step, &inbox, &study, &body))
            .await
            .map_err(|_| Problem::internal())?
            .map_err(|e| {
                tracing::error!(error = %e, "cannot put a supplied file in the inbox");
                Problem::internal()
            })?
    };
    let staged = match put {
        Ok(s) => s,
        Err(rejected) => {
            let shown = if rejected.problems.len() < rejected.rows {
                format!("; the first {} are listed", rejected.problems.len())
            } else {
                String::new()
            };
            let mut problem = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "file-refused",
                format!(
                    "`{}` was refused whole and nothing of it kept: problems in {} row(s){shown}; correct them and send it again",
                    kind.file_name(),
                    rejected.rows
                ),
            );
            problem.rows = rejected
                .problems
                .iter()
                .map(|p| serde_json::to_value(p).unwrap_or_default())
                .collect();
            return Err(problem);
        }
    };
    // The task may have been completed, and its import begun, while the file was checked:
    // then the staged file is discarded, never placed where the import looks.
    app.engine.task_taking_files(id, who, None).await?;
    let accepted = tokio::task::spawn_blocking(move || staged.place())
        .await
        .map_err(|_| Problem::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot put a supplied file in the inbox");
            Problem::internal()
        })?;
    let withdraw = || {
        if let Err(e) = kind.withdraw(&inbox, &run.study) {
            tracing::error!(error = %e, "cannot withdraw a supplied file from the inbox");
        }
    };
    // Who supplied what: its size and rows. Not its digest: the hash of a short list of
    // personal codes or contacts would give them away to whoever reads the audit.
    if let Err(e) = app
        .engine
        .record_read(
            who,
            "task.file_supplied",
            &studyflow_store::run_object(&run.study, &run.step, &run.subject),
            kind.point(),
            serde_json::json!({"run": id, "file": kind.file_name(), "bytes": size, "rows": accepted.rows}),
        )
        .await
    {
        withdraw();
        return Err(e.into());
    }
    // Completed before the file came: its import waits for it, and now looks at once.
    app.engine.wake(id).await?;
    Ok(Supplied {
        name: kind.file_name().to_owned(),
        bytes: size,
        rows: accepted.rows,
    })
}

async fn tasks(
    State(app): State<Arc<App>>,
    p: Person,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<TaskView>>> {
    Ok(Json(page(tasks_view(&app, &p.who).await?, &q, |t| {
        t.id.to_string()
    })))
}

/// The open tasks of `who` with their guides (the API's list and the tasks page alike).
pub(crate) async fn tasks_view(app: &App, who: &Identity) -> Result<Vec<TaskView>> {
    let mut out = Vec::new();
    for t in app.engine.tasks(Some(who)).await? {
        let guide = app.engine.task_guide(&t).await?;
        out.push(TaskView {
            id: t.id,
            study: t.study,
            step: t.step,
            subject: t.subject,
            actor: t.actor.replace('_', " "),
            due: t.due_at.map(last_day),
            title: guide.title,
            points: guide.points.iter().map(|p| (*p).to_owned()).collect(),
            steps: guide.steps,
        });
    }
    Ok(out)
}

async fn complete(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<i64>,
    body: Option<Json<Complete>>,
) -> Result<Json<Done>> {
    let c = body.map(|b| b.0).unwrap_or_default();
    app.engine
        .complete_task(id, &p.who, c.note.as_deref())
        .await?;
    Ok(Json(Done {
        message: format!("completed task {id} as {}", p.who.login()),
        ..Done::default()
    }))
}

async fn note(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<i64>,
) -> Result<Json<NoteView>> {
    let (run, note) = app.engine.task_note(id, &p.who).await?;
    let text = match note {
        None => None,
        Some(TaskNote::Plain(t)) => Some(t),
        Some(TaskNote::Sealed(sealed)) => {
            let Some(master) = &app.master else {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "sealed",
                    format!(
                        "the note of task {id} is sealed under the study's keys (MK403 p.26); this server holds no master key to open it"
                    ),
                ));
            };
            let opened = match app.engine.wrapped_study_keys(&run.study).await? {
                None => None,
                Some(wrapped) => StudyKeys::unwrap(&run.study, &wrapped, master)
                    .ok()
                    .zip(hex::decode(&sealed).ok())
                    .and_then(|(keys, sealed)| keys.open_note(&sealed).ok()),
            };
            let Some(text) = opened else {
                return Err(Problem::new(
                    StatusCode::GONE,
                    "destroyed",
                    format!(
                        "the note of task {id} does not open: the study's keys were destroyed (MK403 p.26)"
                    ),
                ));
            };
            app.engine
                .record_read(
                    &p.who,
                    "task.note_read",
                    &studyflow_store::run_object(&run.study, &run.step, &run.subject),
                    "p.25.1",
                    serde_json::json!({"task": id}),
                )
                .await?;
            Some(text)
        }
    };
    Ok(Json(NoteView {
        id,
        step: run.step,
        note: text,
    }))
}
