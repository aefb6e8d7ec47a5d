//! The web application (issue #13): server-rendered pages, in Latvian and English, over the
//! engine's own acts — the same calls, role checks and audit as the JSON API — for the
//! Service's people who are not at a terminal.
//!
//! Plain HTML forms that work without JavaScript (the server's CSP allows no script at all);
//! templates with minijinja, compiled into the binary (`engine/server/web/templates/`), with
//! every text looked up in [`i18n`]. A page is served only to a browser session (the
//! `__Host-studyflow` cookie, `SameSite=Strict`); every form that changes something carries a
//! token derived from the session's secret, and its `Origin` must be this server. An error
//! answered by a page's handler (a [`Problem`]) is shown as an error page in the person's
//! language; "not signed in" becomes the sign-in page.

mod i18n;
mod pages;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};
use sha2::{Digest, Sha256};
use studyflow_identity::{Authenticated, Identity};
use studyflow_store::CredentialKind;

pub use i18n::Lang;
pub use pages::{PageAccess, PageDoc, pages};

use crate::App;
use crate::auth;
use crate::problem::Problem;

/// The pages' routes (the API's are under `/api/v1`).
pub(crate) fn router() -> Router<Arc<App>> {
    pages::routes()
        .fallback(|| async { Problem::not_found("there is no such page") })
        .layer(axum::middleware::from_fn(problems_as_pages))
}

/// A page that goes on to `to` (a link, and a refresh without script): where a sign-in at the
/// identity provider lands, so that the next page is asked for from this site and the
/// `SameSite=Strict` session cookie goes with it.
pub(crate) fn continue_to(to: &str, chosen: Chosen) -> Response {
    let frame = Frame::anonymous(chosen);
    render(&frame, "continue.html", context! { to, refresh_to => to })
}

/// The templates, compiled in; `.html` names are auto-escaped.
fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, text) in TEMPLATES {
            env.add_template(name, text)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        env.add_function("t", |state: &minijinja::State, key: &str| -> String {
            let lang = state
                .lookup("lang")
                .and_then(|l| l.as_str().and_then(Lang::from_code))
                .unwrap_or(Lang::Lv);
            i18n::text(lang, key).to_owned()
        });
        env
    })
}

/// Every template, by name.
pub(crate) const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../web/templates/base.html")),
    (
        "account.html",
        include_str!("../../web/templates/account.html"),
    ),
    (
        "second_factor.html",
        include_str!("../../web/templates/second_factor.html"),
    ),
    (
        "new_key.html",
        include_str!("../../web/templates/new_key.html"),
    ),
    (
        "device.html",
        include_str!("../../web/templates/device.html"),
    ),
    (
        "tokens.html",
        include_str!("../../web/templates/tokens.html"),
    ),
    ("error.html", include_str!("../../web/templates/error.html")),
    (
        "sign_in.html",
        include_str!("../../web/templates/sign_in.html"),
    ),
    ("enrol.html", include_str!("../../web/templates/enrol.html")),
    (
        "enrolled.html",
        include_str!("../../web/templates/enrolled.html"),
    ),
    (
        "studies.html",
        include_str!("../../web/templates/studies.html"),
    ),
    ("study.html", include_str!("../../web/templates/study.html")),
    (
        "approve.html",
        include_str!("../../web/templates/approve.html"),
    ),
    (
        "amendment.html",
        include_str!("../../web/templates/amendment.html"),
    ),
    (
        "version.html",
        include_str!("../../web/templates/version.html"),
    ),
    ("tasks.html", include_str!("../../web/templates/tasks.html")),
    (
        "submit.html",
        include_str!("../../web/templates/submit.html"),
    ),
    (
        "validate.html",
        include_str!("../../web/templates/validate.html"),
    ),
    (
        "calendar.html",
        include_str!("../../web/templates/calendar.html"),
    ),
    (
        "signed_out.html",
        include_str!("../../web/templates/signed_out.html"),
    ),
    ("task.html", include_str!("../../web/templates/task.html")),
    ("audit.html", include_str!("../../web/templates/audit.html")),
    (
        "reauthenticate.html",
        include_str!("../../web/templates/reauthenticate.html"),
    ),
    (
        "continue.html",
        include_str!("../../web/templates/continue.html"),
    ),
];

/// The style sheet, the one asset.
pub(crate) const STYLE: &str = include_str!("../../web/static/style.css");

/// The cookie that keeps a browser's language.
const LANG_COOKIE: &str = "__Host-studyflow-lang";

/// The cookie that keeps `lang` in this browser for a year.
pub(crate) fn lang_cookie(lang: Lang) -> String {
    format!(
        "{LANG_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=31536000",
        lang.code()
    )
}

/// The language of a request: `?lang=` (then kept in a cookie), the cookie, or the browser's
/// `Accept-Language`; Latvian unless English is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Chosen {
    pub lang: Lang,
    /// Chosen by this request's `?lang=`: the answer keeps it.
    set: bool,
}

impl Chosen {
    fn of(parts: &Parts) -> Chosen {
        let asked = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "lang")
                .and_then(|(_, v)| Lang::from_code(v))
        });
        if let Some(lang) = asked {
            return Chosen { lang, set: true };
        }
        Chosen::of_headers(&parts.headers)
    }

    /// The language kept in the cookie, or the browser's.
    pub fn of_headers(headers: &HeaderMap) -> Chosen {
        let kept = auth::cookie(headers, LANG_COOKIE).and_then(Lang::from_code);
        let browser = || {
            let accept = headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let first = accept.split(',').next().unwrap_or("").trim();
            if first.starts_with("en") {
                Lang::En
            } else {
                Lang::Lv
            }
        };
        Chosen {
            lang: kept.unwrap_or_else(browser),
            set: false,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Chosen {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Chosen, Self::Rejection> {
        Ok(Chosen::of(parts))
    }
}

/// A person looking at pages through a browser session.
pub struct Viewer {
    pub who: Identity,
    pub held: Authenticated,
    /// The token this session's forms carry.
    pub token: String,
    pub chosen: Chosen,
    /// The address asked for (path and query), for the forms that come back to it.
    pub here: String,
    /// This server's seals of the audit fail: acts are recorded and wait to be sealed.
    pub unsealed: bool,
}

/// The token a session's forms carry: derived from the session's secret, which only its
/// browser holds (a page of another site can neither read the cookie nor this).
fn form_token(session: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"studyflow form token\0");
    h.update(session.as_bytes());
    hex::encode(h.finalize())
}

impl FromRequestParts<Arc<App>> for Viewer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Viewer, Problem> {
        let chosen = Chosen::of(parts);
        let Some(session) = auth::session_cookie(&parts.headers) else {
            return Err(Problem::unauthenticated("sign in"));
        };
        let now = app.engine.now();
        let held = app
            .accounts
            .authenticate(CredentialKind::Session, session, now)
            .await?;
        auth::vouched_for(app, &held, now).await?;
        // The person's own choice of language, unless this request asks for one (MK403 names
        // no language; the Service works in Latvian and its partners may not).
        // A preference that cannot be read now is no reason to refuse the page: the browser's
        // language serves meanwhile.
        let mut chosen = chosen;
        if !chosen.set {
            match app.engine.language_of(&held.identity).await {
                Ok(Some(language)) => chosen.lang = Lang::from(language),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "a person's language could not be read"),
            }
        }
        Ok(Viewer {
            who: held.identity.clone(),
            token: form_token(session),
            held,
            chosen,
            here: page_address(parts),
            unsealed: app.engine.audit_unsealed(),
        })
    }
}

/// The page a form of this one comes back to: its address without `?lang=` (the choice the
/// form makes would be undone by it); for a form's answer (a refused approval, a refused
/// file), the page the form is on — its address less the act (`/studies/x/refuse` →
/// `/studies/x`), since the act's address takes no GET.
fn page_address(parts: &Parts) -> String {
    let path = parts.uri.path();
    if parts.method != axum::http::Method::GET {
        return match path.rsplit_once('/') {
            Some((page, _)) if !page.is_empty() => page.to_owned(),
            _ => "/studies".to_owned(),
        };
    }
    let query: Vec<&str> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("lang="))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// A form's fields with the session's form token.
pub(crate) trait Signed {
    fn token(&self) -> &str;
}

/// A change by a person through a page: a signed-in viewer, a form from this server (its
/// `Origin`) carrying the session's form token, and the form's fields.
pub struct Acting<T> {
    pub viewer: Viewer,
    pub form: T,
}

/// A form posted from another site is refused, whoever is signed in: the browser's
/// `Sec-Fetch-Site` must say `same-origin`; a browser that does not send it must send an
/// `Origin` of this host. (Under `Referrer-Policy: no-referrer` browsers send `Origin: null`
/// even from this server's own pages, so `null` is decided by `Sec-Fetch-Site`.) A client that
/// sends neither is no browser; the form token still guards it.
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), Problem> {
    let refused = || {
        Problem::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "this form was not sent from this server's pages",
        )
    };
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return if site == "same-origin" {
            Ok(())
        } else {
            Err(refused())
        };
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
    if origin_host == host && !host.is_empty() {
        Ok(())
    } else {
        Err(refused())
    }
}

impl<T> FromRequest<Arc<App>> for Acting<T>
where
    T: serde::de::DeserializeOwned + Signed + Send,
{
    type Rejection = Problem;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Acting<T>, Problem> {
        if req.method() != Method::POST {
            return Err(Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "a page's form is posted",
            ));
        }
        let (mut parts, body) = req.into_parts();
        same_origin(&parts.headers)?;
        let viewer = Viewer::from_request_parts(&mut parts, app).await?;
        let req = Request::from_parts(parts, body);
        let axum::Form(form) = axum::Form::<T>::from_request(req, app)
            .await
            .map_err(|_| Problem::bad_request("the form is not one of this server's pages"))?;
        if !studyflow_identity::secret_eq(form.token().as_bytes(), viewer.token.as_bytes()) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "this form is not of your session (sign in again and send it from its page)",
            ));
        }
        Ok(Acting { viewer, form })
    }
}

/// What every page shows: the language, who is signed in, the form token, the menu entry.
pub(crate) struct Frame<'a> {
    pub chosen: Chosen,
    pub me: Option<&'a str>,
    pub token: Option<&'a str>,
    pub nav: &'static str,
    /// A line of what was just done, by its key in [`i18n`].
    pub notice: Option<&'a str>,
    /// The page's own address (path and query), where the language form comes back to.
    pub here: Option<&'a str>,
    /// Say that the audit cannot be sealed now (to the signed-in only).
    pub unsealed: bool,
}

impl Frame<'static> {
    /// The frame of a page for no one signed in.
    pub(crate) fn anonymous(chosen: Chosen) -> Frame<'static> {
        Frame {
            chosen,
            me: None,
            token: None,
            nav: "",
            notice: None,
            here: None,
            unsealed: false,
        }
    }
}

impl Viewer {
    pub(crate) fn frame(&self, nav: &'static str) -> Frame<'_> {
        Frame {
            chosen: self.chosen,
            me: Some(self.who.login()),
            token: Some(&self.token),
            nav,
            notice: None,
            here: Some(&self.here),
            unsealed: self.unsealed,
        }
    }
}

/// A page rendered from `template` with `page`'s values and the frame's.
pub(crate) fn render(frame: &Frame<'_>, template: &str, page: Value) -> Response {
    render_status(frame, StatusCode::OK, template, page)
}

pub(crate) fn render_status(
    frame: &Frame<'_>,
    status: StatusCode,
    template: &str,
    page: Value,
) -> Response {
    let lang = frame.chosen.lang;
    let base = context! {
        lang => lang.code(),
        me => frame.me,
        form_token => frame.token,
        nav => frame.nav,
        notice => frame.notice.map(|k| i18n::text(lang, k)),
        here => frame.here,
        unsealed => frame.unsealed,
    };
    let html = templates()
        .get_template(template)
        .and_then(|t| t.render(context! { ..page, ..base }));
    let mut r = match html {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template, error = %e, "a page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be shown",
            )
                .into_response()
        }
    };
    if frame.chosen.set
        && let Ok(v) = HeaderValue::from_str(&lang_cookie(lang))
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// A page handler's error (a [`Problem`], as the API answers it) shown as a page: "not signed
/// in" as the sign-in page (303, back here afterwards), anything else as an error page in the
/// person's language with the problem's words (they name no data subject).
async fn problems_as_pages(req: Request, next: axum::middleware::Next) -> Response {
    let (parts, body) = req.into_parts();
    let chosen = Chosen::of(&parts);
    let back = parts.uri.path().to_owned();
    let method = parts.method.clone();
    let r = next.run(Request::from_parts(parts, body)).await;
    let is_problem = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    let status = r.status();
    let is_page = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    // A page (a refused sign-in shown again, 401) is already what the person sees.
    if is_page || !(is_problem || status.is_client_error() || status.is_server_error()) {
        return r;
    }
    // What the handler set (a form's draft kept across a proof of identity) goes with the
    // redirect that stands for its problem.
    let cookies: Vec<HeaderValue> = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let problem: Option<Problem> = serde_json::from_slice(&bytes).ok();
    if status == StatusCode::UNAUTHORIZED
        && problem
            .as_ref()
            .is_none_or(|p| p.short() == "unauthenticated")
    {
        let next = if method == Method::GET {
            back
        } else {
            "/studies".into()
        };
        return sign_in_redirect(&next);
    }
    // An act or read that needs a recent proof of identity: prove it, then on (a page asked
    // for again; after a form, the page it came from is not known: the studies).
    if status == StatusCode::UNAUTHORIZED
        && problem
            .as_ref()
            .is_some_and(|p| p.short() == "reauthenticate")
    {
        // The page the person was on: a download's or a form's page, a page itself.
        let next = page_of(&back);
        let mut r = see_other(&format!("/reauthenticate?next={}", url_escape(&next)));
        for c in cookies {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
        return r;
    }
    let lang = chosen.lang;
    // The engine's refusals are said in Latvian too; other words of the server are English,
    // marked so on a Latvian page (WCAG 3.1.2).
    let latvian = problem
        .as_ref()
        .and_then(|p| p.detail_lv.as_deref().map(str::to_owned))
        .filter(|_| lang == Lang::Lv);
    let detail_en = problem.is_some() && latvian.is_none();
    let (title, detail, diagnostics) = match &problem {
        Some(p) => (
            i18n::problem_title(lang, status),
            latvian.unwrap_or_else(|| p.detail.clone()),
            p.diagnostics
                .iter()
                .map(pages::diagnostic_line)
                .collect::<Vec<_>>(),
        ),
        None => (
            i18n::problem_title(lang, status),
            i18n::text(lang, "error.generic").to_owned(),
            Vec::new(),
        ),
    };
    let frame = Frame::anonymous(chosen);
    render_status(
        &frame,
        status,
        "error.html",
        context! { title, detail, detail_en, diagnostics, back => "/studies" },
    )
}

/// The page `path` is of: a task's page for its files, upload and completion, a study's for
/// its releases' files, its audit's export and its forms (start, contract, terminate), the
/// approval page for a refusal; a page itself; the studies otherwise.
fn page_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    if let Some(study) = path.strip_suffix("/refuse") {
        return page_of(&format!("{study}/approve"));
    }
    if let Some(study) = ["/start", "/contract", "/terminate"]
        .iter()
        .find_map(|form| path.strip_suffix(form))
    {
        return page_of(study);
    }
    for cut in ["/files/", "/releases/", "/audit/export"] {
        if let Some(i) = path.find(cut) {
            return page_of(&path[..i]);
        }
    }
    if let Some(page) = path
        .strip_suffix("/supply")
        .or_else(|| path.strip_suffix("/complete"))
    {
        return page_of(page);
    }
    match local_path(path) {
        Some(p) if p != "/sign-out" && p != "/reauthenticate" => p.to_owned(),
        _ => "/studies".into(),
    }
}

/// To the sign-in page, coming back to `next` (a path of this server only).
pub(crate) fn sign_in_redirect(next: &str) -> Response {
    let next = local_path(next).unwrap_or("/studies");
    let mut r = StatusCode::SEE_OTHER.into_response();
    let to = format!("/sign-in?next={}", url_escape(next));
    if let Ok(v) = HeaderValue::from_str(&to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// `next` if it is a page of this server (`/…`, not `//host/…` nor `/\host`): never the API,
/// a download or an export, which are audited reads — a link that signs a person in and then
/// reads a release in their name is refused.
pub(crate) fn local_path(next: &str) -> Option<&str> {
    let path = next.split(['?', '#']).next().unwrap_or("");
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && !path.starts_with("/api/")
        && !path.contains("/releases/")
        && !path.contains("/files/")
        && !path.ends_with("/export");
    ok.then_some(next)
}

/// An audited read (a download, an export) only as a person's own navigation: from this
/// server's page, or typed or bookmarked (`Sec-Fetch-Site` `same-origin` or `none`), not an
/// image or a link on another site — a sibling subdomain is the same site for the cookie.
pub(crate) fn own_navigation(headers: &HeaderMap) -> Result<(), Problem> {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin" | "none") => Ok(()),
        Some(_) => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "a download or an export is started from this server's pages",
        )),
    }
}

pub(crate) fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A 303 to `to` (after a form's change: the browser shows the page, a reload sends nothing
/// again).
pub(crate) fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A form's act that needs a proof of identity first goes to the proof page and then back
    /// to the form's page (never to the act's address, which takes no GET), and what the
    /// handler set — the draft of what was typed — goes with the redirect.
    #[tokio::test]
    async fn a_proof_asked_for_by_a_form_keeps_what_the_handler_set() {
        async fn refuse() -> Response {
            let mut r = Problem::new(StatusCode::UNAUTHORIZED, "reauthenticate", "prove it")
                .into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static("__Host-studyflow-draft=abc; Path=/"),
            );
            r
        }
        let app = Router::new()
            .route("/studies/x/refuse", axum::routing::post(refuse))
            .layer(axum::middleware::from_fn(problems_as_pages));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("http://{at}/studies/x/refuse"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers()[header::LOCATION],
            "/reauthenticate?next=/studies/x/approve"
        );
        assert_eq!(
            r.headers()[header::SET_COOKIE],
            "__Host-studyflow-draft=abc; Path=/"
        );
    }

    /// The language form comes back to the page it is on: never with `?lang=` (which would
    /// undo the choice), never to an act's address (which takes no GET).
    #[test]
    fn the_language_form_comes_back_to_its_page() {
        let at = |method: &str, uri: &str| {
            let (parts, _) = axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .body(())
                .unwrap()
                .into_parts();
            page_address(&parts)
        };
        assert_eq!(at("GET", "/studies?lang=en"), "/studies");
        assert_eq!(
            at("GET", "/studies?state=running&lang=en&mine=1"),
            "/studies?state=running&mine=1"
        );
        assert_eq!(at("GET", "/studies/x?page=3"), "/studies/x?page=3");
        assert_eq!(at("POST", "/studies/x/refuse"), "/studies/x");
        assert_eq!(at("POST", "/tasks/5/supply"), "/tasks/5");
        assert_eq!(at("POST", "/submit"), "/studies");
    }

    /// Every template in the folder is compiled in, and parses.
    #[test]
    fn every_template_is_compiled_in() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/templates");
        let mut on_disk: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut compiled: Vec<String> = TEMPLATES.iter().map(|(n, _)| (*n).to_owned()).collect();
        compiled.sort();
        assert_eq!(on_disk, compiled);
        for (name, _) in TEMPLATES {
            assert!(templates().get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn a_proof_asked_for_returns_to_the_page_it_was_asked_on() {
        for (asked, page) in [
            ("/tasks/3/files/request.json", "/tasks/3"),
            ("/tasks/3/supply", "/tasks/3"),
            ("/studies/x/releases/0/data.csv", "/studies/x"),
            ("/studies/x/audit/export", "/studies/x"),
            ("/studies/x/approve", "/studies/x/approve"),
            ("/studies/x/refuse", "/studies/x/approve"),
            ("/studies/x/terminate", "/studies/x"),
            ("/studies/x/contract", "/studies/x"),
            ("/sign-out", "/studies"),
        ] {
            assert_eq!(page_of(asked), page, "{asked}");
        }
    }

    #[test]
    fn only_a_path_of_this_server_is_where_sign_in_returns() {
        assert_eq!(local_path("/studies/x"), Some("/studies/x"));
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "studies",
            "/a b",
            "/api/v1/studies/x/releases/0/data.csv",
            "/studies/x/releases/0/data.csv",
            "/tasks/3/files/request.json",
            "/studies/x/audit/export?actor=a",
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
    }
}
