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
pub mod monitor;
pub mod problem;
pub mod tls;
mod views;
pub mod web;
pub mod witness;

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
pub use crate::views::SUPPLY_LIMIT;
use crate::views::*;

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
    /// The installation's witnesses (its witness policy), told to monitors with how far each
    /// has cosigned; without them, there are none to tell of.
    pub witnesses: Option<monitor::Witnesses>,
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
    /// A file a task takes: CSV with a header row (`text/csv`) or an institution's answer
    /// (`application/json`).
    TaskFile,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Payload::None => "None",
            Payload::Yaml => "Yaml",
            Payload::Json(_) => "Json",
            Payload::TaskFile => "TaskFile",
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
                "POST",
                "/api/v1/oidc/back-channel-logout",
                Public,
                "The identity provider's back-channel logout (OpenID Connect Back-Channel Logout 1.0): a `logout_token` (form) signed by the provider for this client ends the sessions of that sign-in here at their next request (200), audited then; a token that does not verify, or was seen before, is refused (400). Register this address as the client's `backchannel_logout_uri`.",
                Nothing,
                (200, Nothing),
            ),
            post(oidc_back_channel_logout),
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
                "/api/v1/account/password",
                SignedIn,
                "Change your own password (a local account), proven with the one you have and a current code; at least 12 characters. Your other browser sessions end, and your other personal tokens with `revoke_tokens`; the session or token you change it with stays, and a second factor begun is forgotten. Audited as `account.password_changed`, never the password.",
                json::<ChangePassword>(),
                (200, json::<CredentialsChanged>()),
            ),
            post(change_password),
        ),
        (
            r(
                "POST",
                "/api/v1/account/second-factor",
                SignedIn,
                "Begin replacing your second factor (a new phone; a local account), proven with your password and a current code of the one you have: a new key, shown once. Nothing changes for signing in until a code of it is confirmed from the same session or token within 10 minutes; beginning again forgets it.",
                json::<Reauthenticate>(),
                (201, json::<SecondFactorBegun>()),
            ),
            post(begin_second_factor),
        ),
        (
            r(
                "POST",
                "/api/v1/account/second-factor/confirm",
                SignedIn,
                "Prove the second factor begun with a code of it, from the session or token that began it: it replaces the one you had, and your other browser sessions end (and your other personal tokens with `revoke_tokens`). Each code counts as a sign-in attempt; wrong ones lock the account as wrong passwords do and forget the second factor begun. Audited as `account.second_factor_replaced`, or `account.second_factor_refused` with its reason.",
                json::<SecondFactorCode>(),
                (200, json::<CredentialsChanged>()),
            ),
            post(confirm_second_factor),
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
                "POST",
                "/api/v1/device",
                Public,
                "A command line asks to sign in through a browser (RFC 8628's device authorization grant; `studyflow login --device`): a device code to poll with, and a user code the person enters on the `/device` page, signed in with a recent proof of identity, to approve or deny it. The way a person of the identity provider gets a personal token. Expires in 10 minutes.",
                json::<DeviceAsk>(),
                (201, json::<DeviceGranting>()),
            ),
            post(device_ask),
        ),
        (
            r(
                "POST",
                "/api/v1/device/token",
                Public,
                "The command line's poll: its personal token once the person approved (201, shown once), or a problem of type `authorization_pending`, `slow_down` (polled sooner than the interval), `access_denied` or `expired_token` (RFC 8628 §3.5), each 400.",
                json::<DevicePollRequest>(),
                (201, json::<TokenIssued>()),
            ),
            post(device_token),
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
                "/api/v1/studies/{id}/refuse",
                SignedIn,
                "Refuse the version waiting, pinned to its plan hash, with a reason for its submitter (MK403 p.3); the same approver as for approving, with a recent proof of identity. A changed spec may follow as a new version.",
                json::<Refuse>(),
                (200, json::<Done>()),
            ),
            post(refuse),
        ),
        (
            r(
                "PUT",
                "/api/v1/studies/{id}/contact-key",
                SignedIn,
                "Give the age public key the study's contact list is to be encrypted to for you (MK403 p.32): an authorised person of the external researcher who processes personal data, of a study with direct contact; replaces the key you gave before; needs a recent proof of identity; audited with the key's sha256. The contact list is then a release of the study only those persons download.",
                json::<ContactKey>(),
                (200, json::<ContactKeyGiven>()),
            ),
            put(contact_key),
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
                "/api/v1/audit/witnesses",
                Public,
                "The installation's witnesses of the audit log (their keys and addresses), how many must hold, and how far each has cosigned, for monitors.",
                Nothing,
                (200, json::<monitor::WitnessesView>()),
            ),
            get(audit_witnesses),
        ),
        (
            r(
                "GET",
                "/api/v1/audit/checkpoint/cosigned",
                Public,
                "The latest checkpoint of the audit log that the quorum of the installation's witnesses cosigned (a signed note with the log's signature and the witnesses' C2SP tlog-cosignature lines), for monitors.",
                Nothing,
                (200, Nothing),
            ),
            get(audit_cosigned),
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
                "Supply the file an open task of yours takes — the manual Service IS extraction (MK403 p.22.1, `text/csv`), the consented contacts (p.31, p.32, `text/csv`), an institution's answer to a secure electronic request (p.12.3, p.14.2, `application/json`, checked against the request sent): checked whole as the import will check it; refused whole with its row report (the first 100 problems) and nothing kept, or put in the inbox for the import when you complete the task (at once, for a task completed before it came). Needs a recent proof of identity; audited by size and rows.",
                Payload::TaskFile,
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
                op.insert("requestBody".into(), json!({"required": true, "content": {"application/yaml": {"schema": {"$ref": concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/schemas/study-spec.schema.json")}}}}));
            }
            Payload::Json(schema) => {
                op.insert("requestBody".into(), json!({"required": true, "content": {"application/json": {"schema": schema(&mut generator)}}}));
            }
            Payload::TaskFile => {
                op.insert("requestBody".into(), json!({"required": true, "content": {
                    "text/csv": {"schema": {"type": "string", "description": "UTF-8, a header row naming the columns (a manual extraction, the consented contacts)"}},
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}, "description": "An institution's answer to a secure electronic request: an object per row, naming the subject's `personal_code` and fields asked for"}}
                }}));
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
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            audit_unsealed,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(app)
}

/// The header that says a change was recorded while the audit cannot be sealed.
pub const AUDIT_HEADER: &str = "studyflow-audit";

/// A change by a signed-in person answered while this server's seals of the audit fail (the
/// checkpoint log not writable, the database busy): the act stands, recorded, and waits to be
/// sealed. Said with `Studyflow-Audit: unsealed` on the answer (the CLI prints a warning; the
/// pages say it to the signed-in), never the reason — the operator's `studyflow status` and the
/// log give that — and never to someone who is not signed in.
async fn audit_unsealed(
    State(app): State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::Method;
    let change = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // Who asks is looked at after the answer, and only while seals fail: the change's own seal
    // may be the first to fail.
    let credentials = change.then(|| req.headers().clone());
    let mut r = next.run(req).await;
    let tell = match &credentials {
        Some(headers) if app.engine.audit_unsealed() => auth::signed_in(&app, headers).await,
        _ => false,
    };
    if tell {
        r.headers_mut()
            .insert(AUDIT_HEADER, HeaderValue::from_static("unsealed"));
    }
    r
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

async fn limited(app: &App, client: &Client) -> Result<()> {
    counted(app, auth::Attempt::SignIn(client.0)).await
}

/// An attempt counted in its bucket; too many answered 429 with the seconds to wait.
pub(crate) async fn counted(app: &App, attempt: auth::Attempt) -> Result<()> {
    let what = match attempt {
        auth::Attempt::SignIn(_) => "sign-in attempts from this address",
        auth::Attempt::DeviceAsk(_) => "command-line sign-ins asked for from this address",
        auth::Attempt::DeviceCode(_) => "codes entered",
        auth::Attempt::ProviderSignIn(_) => "sign-ins at the identity provider from this address",
        auth::Attempt::BackChannel(_) => "back-channel logouts from this address",
    };
    app.limiter
        .count(attempt, app.engine.now())
        .await
        .map_err(|limited| match limited {
            auth::Limited::Wait(wait) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!("too many {what}; try again in {wait} s"),
            ),
            auth::Limited::Store(e) => studyflow_identity::IdentityError::Store(e).into(),
        })
}

async fn sign_in(
    State(app): State<Arc<App>>,
    client: Client,
    headers: HeaderMap,
    Json(s): Json<SignIn>,
) -> Result<Response> {
    limited(&app, &client).await?;
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

/// Where the browser goes on after signing in at the identity provider: a page of this server
/// (checked again when it is read), hex-encoded, for as long as the sign-in may take.
const NEXT_COOKIE: &str = "__Host-studyflow-next";

#[derive(Debug, serde::Deserialize)]
struct OidcLoginQuery {
    next: Option<String>,
}

async fn oidc_login(
    State(app): State<Arc<App>>,
    client: Client,
    Query(q): Query<OidcLoginQuery>,
) -> Result<Response> {
    counted(&app, auth::Attempt::ProviderSignIn(client.0)).await?;
    let (url, state) = oidc_of(&app)?.begin(app.engine.now()).await?;
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
    if let Some(next) = q.next.as_deref().and_then(web::local_path) {
        r.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&format!(
                "{NEXT_COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=600",
                hex::encode(next)
            ))
            .map_err(|_| Problem::internal())?,
        );
    }
    Ok(r)
}

#[derive(Debug, serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct LogoutForm {
    logout_token: String,
}

async fn oidc_back_channel_logout(
    State(app): State<Arc<App>>,
    client: Client,
    form: std::result::Result<axum::Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response> {
    let oidc = oidc_of(&app)?;
    counted(&app, auth::Attempt::BackChannel(client.0)).await?;
    let refused = |why: String| {
        tracing::warn!(%why, "a back-channel logout refused");
        let mut r = (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "invalid_request", "error_description": why})),
        )
            .into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    };
    let Ok(axum::Form(form)) = form else {
        return Ok(refused("a form with `logout_token` is expected".into()));
    };
    match oidc
        .back_channel_logout(&form.logout_token, app.engine.now())
        .await
    {
        Ok(ended) => {
            tracing::info!(ended, "sessions signed out at the identity provider");
            let mut r = StatusCode::OK.into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(r)
        }
        Err(e) => Ok(refused(e.to_string())),
    }
}

async fn oidc_callback(
    State(app): State<Arc<App>>,
    client: Client,
    headers: HeaderMap,
    Query(c): Query<Callback>,
) -> Result<Response> {
    counted(&app, auth::Attempt::ProviderSignIn(client.0)).await?;
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
    // The refresh token that came with the sign-in is kept for the session, sealed, for
    // whichever server confirms it.
    oidc.hold(&session, verified, now).await?;
    // A browser (the pages' sign-in link) goes on to the pages; the API's client reads JSON.
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut r = if browser {
        // Back to the page that sent the person to sign in (a proof asked for on it), if it
        // is still one of this server's.
        let next = auth::cookie(&headers, NEXT_COOKIE)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| String::from_utf8(b).ok());
        let next = next
            .as_deref()
            .and_then(web::local_path)
            .unwrap_or("/studies");
        web::continue_to(next, web::Chosen::of_headers(&headers))
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
    h.append(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{NEXT_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0"
        ))
        .map_err(|_| Problem::internal())?,
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
    limited(&app, &client).await?;
    let now = app.engine.now();
    let who = app
        .accounts
        .step_up(&p.held, &r.password, &r.code, &client.0.to_string(), now)
        .await?;
    Ok(me_of(&who))
}

async fn change_password(
    State(app): State<Arc<App>>,
    client: Client,
    p: Person,
    Json(c): Json<ChangePassword>,
) -> Result<Json<CredentialsChanged>> {
    limited(&app, &client).await?;
    let ended = app
        .accounts
        .change_password(
            &p.held,
            &c.password,
            &c.code,
            &c.new_password,
            c.revoke_tokens,
            &client.0.to_string(),
            app.engine.now(),
        )
        .await?;
    Ok(Json(changed(ended)))
}

async fn begin_second_factor(
    State(app): State<Arc<App>>,
    client: Client,
    p: Person,
    Json(r): Json<Reauthenticate>,
) -> Result<(StatusCode, Json<SecondFactorBegun>)> {
    limited(&app, &client).await?;
    let secret = app
        .accounts
        .begin_second_factor(
            &p.held,
            &r.password,
            &r.code,
            &client.0.to_string(),
            app.engine.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(second_factor_begun(&p.who, &secret)),
    ))
}

/// A second factor begun for `who`, as it is shown to them.
pub(crate) fn second_factor_begun(who: &Identity, secret: &[u8]) -> SecondFactorBegun {
    use studyflow_identity::totp;
    SecondFactorBegun {
        secret: totp::base32(secret),
        otpauth: totp::uri(secret, who.login(), totp::ISSUER),
    }
}

async fn confirm_second_factor(
    State(app): State<Arc<App>>,
    client: Client,
    p: Person,
    Json(c): Json<SecondFactorCode>,
) -> Result<Json<CredentialsChanged>> {
    limited(&app, &client).await?;
    let ended = app
        .accounts
        .confirm_second_factor(
            &p.held,
            &c.code,
            c.revoke_tokens,
            &client.0.to_string(),
            app.engine.now(),
        )
        .await?;
    Ok(Json(changed(ended)))
}

fn changed(ended: studyflow_store::Ended) -> CredentialsChanged {
    CredentialsChanged {
        sessions_ended: ended.sessions,
        tokens_revoked: ended.tokens,
    }
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
    limited(&app, &client).await?;
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

/// Where the person enters a command line's user code (`/device`, a page).
pub(crate) const DEVICE_PAGE: &str = "/device";

async fn device_ask(
    State(app): State<Arc<App>>,
    client: Client,
    Json(d): Json<DeviceAsk>,
) -> Result<(StatusCode, Json<DeviceGranting>)> {
    counted(&app, auth::Attempt::DeviceAsk(client.0)).await?;
    let now = app.engine.now();
    let asked = app
        .accounts
        .request_device(
            d.label.as_deref().unwrap_or("cli"),
            d.days,
            &client.0.to_string(),
            now,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(DeviceGranting {
            device_code: asked.device_code.expose().to_owned(),
            verification_path: DEVICE_PAGE.to_owned(),
            user_code: asked.user_code,
            expires_in: (asked.expires_at - now) / 1_000_000,
            interval: studyflow_identity::devices::POLL_EVERY_SECONDS,
        }),
    ))
}

async fn device_token(
    State(app): State<Arc<App>>,
    Json(d): Json<DevicePollRequest>,
) -> Result<(StatusCode, Json<TokenIssued>)> {
    use studyflow_identity::devices::DevicePoll;
    // Not a device code at all: refused before the database is asked.
    if !studyflow_identity::devices::is_device_code(&d.device_code) {
        return Err(Problem::bad_request(
            "no sign-in was asked for with this device code",
        ));
    }
    // RFC 8628 §3.5's answers, as problems of these types.
    let waiting = |kind: &str, detail: &str| Problem::new(StatusCode::BAD_REQUEST, kind, detail);
    match app
        .accounts
        .poll_device(&d.device_code, app.engine.now())
        .await?
    {
        DevicePoll::Issued(token, row) => Ok((
            StatusCode::CREATED,
            Json(TokenIssued {
                token: token.expose().to_owned(),
                id: hex::encode(&row.hash),
                expires_at: instant(row.expires_at),
            }),
        )),
        DevicePoll::Pending => Err(waiting(
            "authorization_pending",
            "waiting for the person to enter the code and approve",
        )),
        DevicePoll::SlowDown => Err(waiting(
            "slow_down",
            "polled sooner than the interval: wait longer between polls",
        )),
        DevicePoll::Denied => Err(waiting(
            "access_denied",
            "the sign-in was denied in the browser",
        )),
        DevicePoll::Expired => Err(waiting(
            "expired_token",
            "the sign-in expired or its token was given already; ask again",
        )),
    }
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
    revoke_own_token(&app, &p.who, &id).await?;
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

async fn study(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
) -> Result<Json<StudyView>> {
    Ok(Json(study_view(&app, &p.who, &id).await?))
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

async fn refuse(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
    Json(r): Json<Refuse>,
) -> Result<Json<Done>> {
    visible(&app, &p.who, &id).await?;
    let v = app
        .engine
        .refuse(&id, &p.who, Some(&r.plan_hash), &r.reason)
        .await?;
    Ok(Json(Done {
        message: format!(
            "refused {id} version {v} as {}; its submitter reads the reason in the study's audit",
            p.who.login()
        ),
        study: Some(id),
        version: Some(v),
        plan_hash: None,
    }))
}

async fn contact_key(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
    Json(k): Json<ContactKey>,
) -> Result<Json<ContactKeyGiven>> {
    visible(&app, &p.who, &id).await?;
    let given = views::give_contact_key(&app, &p.who, &id, &k.key).await?;
    Ok(Json(given))
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

async fn download(
    State(app): State<Arc<App>>,
    p: Person,
    method: axum::http::Method,
    headers: HeaderMap,
    Path((id, n, file)): Path<(String, usize, String)>,
) -> Result<Response> {
    browser_navigation(&p, &headers)?;
    release_file(
        &app,
        &p.who,
        &id,
        n,
        &file,
        method == axum::http::Method::HEAD,
    )
    .await
}

async fn study_audit(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Page<AuditEventView>>> {
    Ok(Json(audit_view(&app, &p.who, &id, q).await?))
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

/// What `read` finds of the installation's witnesses in the checkpoint log, off the async
/// threads; 404 when the installation names none, 500 (the reason in the log) when the log
/// cannot be read.
async fn of_witnesses<T: Send + 'static>(
    app: Arc<App>,
    read: fn(&monitor::Witnesses) -> std::io::Result<T>,
) -> Result<T> {
    if app.witnesses.is_none() {
        return Err(Problem::not_found(
            "this installation names no witnesses of its audit (a witness policy beside the audit key: docs/serve.md, \"Witnesses\")",
        ));
    }
    tokio::task::spawn_blocking(move || app.witnesses.as_ref().map(read))
        .await
        .map_err(|_| Problem::internal())?
        .ok_or_else(Problem::internal)?
        .map_err(|e| {
            tracing::error!(error = %e, "the checkpoint log cannot be read");
            Problem::internal()
        })
}

async fn audit_witnesses(State(app): State<Arc<App>>) -> Result<Json<monitor::WitnessesView>> {
    Ok(Json(of_witnesses(app, monitor::Witnesses::view).await?))
}

async fn audit_cosigned(State(app): State<Arc<App>>) -> Result<Response> {
    let note = of_witnesses(app, monitor::Witnesses::cosigned_note)
        .await?
        .ok_or_else(|| {
            Problem::not_found(
                "no checkpoint is cosigned by the quorum of the witnesses yet (`studyflow audit cosign`)",
            )
        })?;
    let mut r = note.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

async fn task_files(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<i64>,
) -> Result<Json<TaskFiles>> {
    Ok(Json(task_files_view(&app, &p.who, id).await?))
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
    method: axum::http::Method,
    headers: HeaderMap,
    Path((id, file)): Path<(i64, String)>,
) -> Result<Response> {
    browser_navigation(&p, &headers)?;
    prepared_file(&app, &p.who, id, &file, method == axum::http::Method::HEAD).await
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
    let expected = target.media();
    let fits = match expected {
        "application/json" => mime == "application/json",
        _ => matches!(mime, "text/csv" | "application/csv" | "text/plain"),
    };
    if !fits {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("send the file as {expected}"),
        ));
    }
    let checking = SUPPLY_CHECKS
        .acquire()
        .await
        .map_err(|_| Problem::internal())?;
    let body = tokio::time::timeout(SUPPLY_TIMEOUT, axum::body::to_bytes(body, SUPPLY_LIMIT))
        .await
        .map_err(|_| supply_timed_out())?
        .map_err(|_| supply_too_large())?;
    Ok((
        StatusCode::CREATED,
        Json(supply_bytes(&app, &p.who, id, target, body, checking).await?),
    ))
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

async fn complete(
    State(app): State<Arc<App>>,
    p: Person,
    Path(id): Path<i64>,
    body: Option<Json<Complete>>,
) -> Result<Json<Done>> {
    let c = body.map(|b| b.0).unwrap_or_default();
    views::complete_task(&app, id, &p.who, c.note.as_deref()).await?;
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
