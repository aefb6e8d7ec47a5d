//! The pages: each a thin handler over the engine's calls the API makes too (the views of
//! `lib.rs`), rendered by a template.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::context;
use serde::{Deserialize, Serialize};
use studyflow_calendar::Day;
use studyflow_runtime::clock::{from_micros, riga_date};

use super::i18n::{self, Lang};
use super::{Acting, Chosen, Frame, Signed, Viewer, render, render_status, see_other};
use crate::App;
use crate::auth::Client;
use crate::problem::Problem;

type Result<T> = std::result::Result<T, Problem>;

/// Who may ask for a page before the engine's own checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageAccess {
    /// Anyone: the sign-in page, the style sheet.
    Public,
    /// A signed-in person (a browser session); pages about nothing of a study's.
    SignedIn,
    /// A signed-in person the study (`{id}`) involves; not found for anyone else.
    Study,
    /// The signed-in person whose open task (`{id}`) it is.
    Task,
}

/// A page route, as the router is built from it and the tests walk it.
#[derive(Debug, Clone, Copy)]
pub struct PageDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub access: PageAccess,
}

/// Every page route with its handler: the router is built from this list and the pages'
/// authorisation test walks it, so a page cannot be added without its entry.
pub fn pages() -> Vec<(PageDoc, axum::routing::MethodRouter<Arc<App>>)> {
    use PageAccess::*;
    let p = |method, path, access| PageDoc {
        method,
        path,
        access,
    };
    vec![
        (
            p("GET", "/", Public),
            get(|| async { see_other("/studies") }),
        ),
        (p("GET", "/static/style.css", Public), get(style)),
        (
            p("GET", "/favicon.ico", Public),
            get(|| async { StatusCode::NO_CONTENT }),
        ),
        (p("GET", "/sign-in", Public), get(sign_in_page)),
        (p("POST", "/sign-in", Public), post(sign_in)),
        (p("GET", "/enrol", Public), get(enrol_page)),
        (p("POST", "/enrol", Public), post(enrol)),
        (p("POST", "/enrol/confirm", Public), post(confirm_enrolment)),
        (p("POST", "/sign-out", SignedIn), post(sign_out)),
        (p("POST", "/language", SignedIn), post(language)),
        (p("GET", "/studies", SignedIn), get(studies)),
        (p("GET", "/studies/{id}", Study), get(study)),
        (p("GET", "/studies/{id}/approve", Study), get(review)),
        (
            p("GET", "/studies/{id}/versions/{n}", Study),
            get(version_page),
        ),
        (p("POST", "/studies/{id}/approve", Study), post(approve)),
        (p("POST", "/studies/{id}/refuse", Study), post(refuse)),
        (p("POST", "/studies/{id}/start", Study), post(start)),
        (p("POST", "/studies/{id}/contract", Study), post(contract)),
        (
            p("POST", "/studies/{id}/contact-key", Study),
            post(contact_key),
        ),
        (p("POST", "/studies/{id}/terminate", Study), post(terminate)),
        (p("GET", "/studies/{id}/audit", Study), get(audit)),
        (
            p("GET", "/studies/{id}/audit/export", Study),
            get(audit_export),
        ),
        (
            p("GET", "/studies/{id}/releases/{n}/{file}", Study),
            get(release_file),
        ),
        (p("GET", "/submit", SignedIn), get(submit_page)),
        (p("POST", "/submit", SignedIn), post(submit)),
        (p("GET", "/tasks", SignedIn), get(tasks)),
        (p("GET", "/tasks/{id}", Task), get(task)),
        (p("GET", "/tasks/{id}/files/{file}", Task), get(task_file)),
        (
            p("POST", "/tasks/{id}/supply", Task),
            post(supply).layer(axum::extract::DefaultBodyLimit::max(
                crate::SUPPLY_LIMIT + (1 << 20),
            )),
        ),
        (p("POST", "/tasks/{id}/complete", Task), post(complete)),
        (p("GET", "/reauthenticate", SignedIn), get(reauth_page)),
        (p("POST", "/reauthenticate", SignedIn), post(reauthenticate)),
        (p("GET", "/validate", SignedIn), get(validate_page)),
        (
            p("POST", "/validate", SignedIn),
            post(validate).layer(axum::extract::DefaultBodyLimit::max(VALIDATE_BODY_LIMIT)),
        ),
        (p("GET", "/calendar", SignedIn), get(calendar)),
        (p("GET", "/device", SignedIn), get(device_page)),
        (p("POST", "/device", SignedIn), post(device_decide)),
        (p("GET", "/account", SignedIn), get(account)),
        (
            p("POST", "/account/password", SignedIn),
            post(change_password),
        ),
        (
            p("POST", "/account/second-factor", SignedIn),
            post(begin_second_factor),
        ),
        (
            p("POST", "/account/second-factor/confirm", SignedIn),
            post(confirm_second_factor),
        ),
        (p("GET", "/tokens", SignedIn), get(tokens)),
        (
            p("POST", "/tokens/{id}/revoke", SignedIn),
            post(revoke_token),
        ),
    ]
}

pub(super) fn routes() -> Router<Arc<App>> {
    let mut router = Router::new();
    for (doc, handler) in pages() {
        router = router.route(doc.path, handler);
    }
    router
}

/// Forms whose `csrf` field carries the session's form token.
macro_rules! signed {
    ($($form:ty),* $(,)?) => {
        $(impl Signed for $form {
            fn token(&self) -> &str {
                &self.csrf
            }
        })*
    };
}

signed!(
    TokenOnly,
    LanguageForm,
    ApproveForm,
    ContractForm,
    ContactKeyForm,
    TerminateForm,
    RefuseForm,
    ReauthForm,
    CompleteForm,
    SpecForm,
    DeviceForm,
    PasswordForm,
    SecondFactorForm,
    SecondFactorConfirmForm
);

async fn style() -> Response {
    let mut r = super::STYLE.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r
}

/// A form with nothing but the session's form token.
#[derive(Debug, Deserialize)]
struct TokenOnly {
    csrf: String,
}

/// A person's choice of language, and the page to go back to.
#[derive(Debug, Deserialize)]
struct LanguageForm {
    csrf: String,
    lang: String,
    #[serde(default)]
    next: String,
}

#[derive(Debug, Deserialize)]
struct SignInQuery {
    next: Option<String>,
    /// Come from a finished enrolment.
    #[serde(default)]
    enrolled: Option<String>,
}

fn anonymous(chosen: Chosen) -> Frame<'static> {
    Frame::anonymous(chosen)
}

async fn sign_in_page(
    State(app): State<Arc<App>>,
    chosen: Chosen,
    Query(q): Query<SignInQuery>,
) -> Response {
    let next = q
        .next
        .as_deref()
        .and_then(super::local_path)
        .unwrap_or("/studies");
    render(
        &anonymous(chosen),
        "sign_in.html",
        context! {
            provider => app.oidc.is_some(),
            provider_href => provider_href(next),
            next,
            enrolled => q.enrolled.is_some(),
        },
    )
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    login: String,
    password: String,
    code: String,
    #[serde(default)]
    next: String,
}

/// A local account's sign-in from the page: a new session (its cookie set), then where the
/// person was going. A refusal is the page again with why, in the person's language.
async fn sign_in(
    State(app): State<Arc<App>>,
    client: Client,
    chosen: Chosen,
    headers: HeaderMap,
    axum::Form(f): axum::Form<SignInForm>,
) -> Result<Response> {
    super::same_origin(&headers)?;
    crate::limited(&app, &client).await?;
    let now = app.engine.now();
    let next = super::local_path(&f.next).unwrap_or("/studies").to_owned();
    let who = match app
        .accounts
        .sign_in(&f.login, &f.password, &f.code, &client.0.to_string(), now)
        .await
    {
        Ok(who) => who,
        Err(e) => {
            let problem = Problem::from(e);
            return Ok(render_status(
                &anonymous(chosen),
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNAUTHORIZED),
                "sign_in.html",
                context! {
                    provider => app.oidc.is_some(),
                    next,
                    problem => i18n::text(chosen.lang, "sign_in.refused"),
                },
            ));
        }
    };
    crate::end_presented(&app, &headers).await;
    let (_, cookie, _) = crate::open_browser_session(&app, &who, "browser (pages)", now).await?;
    let mut r = see_other(&next);
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(r)
}

#[derive(Debug, Deserialize)]
struct EnrolQuery {
    #[serde(default)]
    login: String,
}

fn enrol_form(chosen: Chosen, status: StatusCode, login: &str, problem: Option<&str>) -> Response {
    render_status(
        &anonymous(chosen),
        status,
        "enrol.html",
        context! {
            login,
            problem,
            min_length => studyflow_identity::password::MIN_LENGTH,
        },
    )
}

/// The first sign-in of a local account made with `studyflow user add --enrol`: the form for
/// the operator's one-time code and the person's own password.
async fn enrol_page(chosen: Chosen, Query(q): Query<EnrolQuery>) -> Response {
    enrol_form(chosen, StatusCode::OK, &q.login, None)
}

#[derive(Debug, Deserialize)]
struct EnrolForm {
    login: String,
    code: String,
    password: String,
    again: String,
}

/// The start of a person's enrolment: with the operator's code they choose their password and
/// are shown their new second factor, with a form for a code of it, which ends the enrolment
/// ([`confirm_enrolment`]). Counted against the address's sign-in attempts and the account's
/// lock, as a sign-in is; a refusal is the form again with why. Sent again (a reload), it
/// shows another second factor, the one before forgotten.
async fn enrol(
    State(app): State<Arc<App>>,
    client: Client,
    chosen: Chosen,
    headers: HeaderMap,
    axum::Form(f): axum::Form<EnrolForm>,
) -> Result<Response> {
    super::same_origin(&headers)?;
    crate::limited(&app, &client).await?;
    let again = |key: &str, status| {
        Ok(enrol_form(
            chosen,
            status,
            &f.login,
            Some(i18n::text(chosen.lang, key)),
        ))
    };
    if f.password != f.again {
        return again("enrol.differ", StatusCode::UNPROCESSABLE_ENTITY);
    }
    if f.password.chars().count() < studyflow_identity::password::MIN_LENGTH {
        return again("enrol.short", StatusCode::UNPROCESSABLE_ENTITY);
    }
    let now = app.engine.now();
    match app
        .accounts
        .begin_enrolment(&f.login, &f.code, &f.password, &client.0.to_string(), now)
        .await
    {
        Ok(secret) => Ok(render(
            &anonymous(chosen),
            "enrolled.html",
            context! {
                login => f.login,
                code => f.code,
                secret => studyflow_identity::totp::base32(&secret),
                uri => studyflow_identity::totp::uri(&secret, &f.login, studyflow_identity::totp::ISSUER),
            },
        )),
        Err(studyflow_identity::IdentityError::Refused) => {
            again("enrol.refused", StatusCode::UNAUTHORIZED)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct ConfirmEnrolmentForm {
    login: String,
    code: String,
    app_code: String,
}

/// The end of a person's enrolment: a code of the second factor they were just shown proves
/// they keep it, and their password and second factor stand; then on to sign in with both. A
/// wrong code of the app (or an enrolment begun again meanwhile) is the form again, to begin
/// again with another second factor.
async fn confirm_enrolment(
    State(app): State<Arc<App>>,
    client: Client,
    chosen: Chosen,
    headers: HeaderMap,
    axum::Form(f): axum::Form<ConfirmEnrolmentForm>,
) -> Result<Response> {
    super::same_origin(&headers)?;
    crate::limited(&app, &client).await?;
    let now = app.engine.now();
    match app
        .accounts
        .confirm_enrolment(&f.login, &f.code, &f.app_code, &client.0.to_string(), now)
        .await
    {
        Ok(()) => Ok(see_other("/sign-in?enrolled=1")),
        Err(studyflow_identity::IdentityError::Refused) => Ok(enrol_form(
            chosen,
            StatusCode::UNAUTHORIZED,
            &f.login,
            Some(i18n::text(chosen.lang, "enrol.confirm_refused")),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Signs out: the session ends here; a person of the identity provider is offered its sign-out
/// page (a link: a form's answer may not lead to another site under the CSP's `form-action`).
async fn sign_out(State(app): State<Arc<App>>, a: Acting<TokenOnly>) -> Result<Response> {
    let v = a.viewer;
    let provider = crate::end_session(&app, &v.who, &v.held).await?;
    let mut r = render(
        &anonymous(v.chosen),
        "signed_out.html",
        context! { provider_sign_out => provider },
    );
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&crate::auth::set_cookie(None, 0))
            .map_err(|_| Problem::internal())?,
    );
    Ok(r)
}

/// Keeps the signed-in person's language with them (their next sign-in, in any browser, shows
/// it) and in this browser, then back to the page they were on (one of this site's pages only).
async fn language(State(app): State<Arc<App>>, a: Acting<LanguageForm>) -> Result<Response> {
    let lang =
        Lang::from_code(&a.form.lang).ok_or_else(|| Problem::bad_request("choose `lv` or `en`"))?;
    app.engine
        .choose_language(&a.viewer.who, lang.into())
        .await?;
    let back = super::local_path(&a.form.next).unwrap_or("/studies");
    let mut r = see_other(back);
    if let Ok(v) = HeaderValue::from_str(&super::lang_cookie(lang)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

#[derive(Debug, Deserialize)]
struct StudiesQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    mine: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

#[derive(Debug, Serialize)]
struct StudyLine {
    id: String,
    state: String,
    version: Option<i64>,
    next_deadline: Option<String>,
    overdue: usize,
    my_tasks: usize,
}

/// What the study's persons see of it in a list: its state, version, next deadline of work not
/// done, overdue deadlines, and the person's own open tasks in it.
async fn studies(
    State(app): State<Arc<App>>,
    v: Viewer,
    Query(q): Query<StudiesQuery>,
) -> Result<Response> {
    // Only how many: the tasks themselves, without what each asks (`tasks_view`).
    let tasks = app.engine.tasks(Some(&v.who)).await?;
    let mut lines = Vec::new();
    for s in crate::studies_view(&app, &v.who).await? {
        if !q.state.is_empty() && s.state != q.state {
            continue;
        }
        let my_tasks = tasks.iter().filter(|t| t.study == s.id).count();
        if q.mine.is_some() && my_tasks == 0 {
            continue;
        }
        let view = crate::study_view(&app, &v.who, &s.id).await?;
        let next_deadline = view
            .steps
            .iter()
            .filter(|st| {
                st.activities
                    .iter()
                    .any(|(a, n)| *n > 0 && a != "done" && a != "cancelled")
            })
            .filter_map(|st| st.due.clone())
            .min();
        lines.push(StudyLine {
            id: s.id,
            state: s.state,
            version: s.active_version,
            next_deadline,
            overdue: view.overdue.len(),
            my_tasks,
        });
    }
    let states: Vec<&str> = studyflow_store::StudyState::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let mut frame = v.frame("studies");
    frame.notice = notice(q.done.as_deref());
    Ok(render(
        &frame,
        "studies.html",
        context! { studies => lines, states, state => q.state, mine => q.mine.is_some() },
    ))
}

/// The line of what was just done (`?done=`), by its key.
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "approved" => Some("done.approved"),
        "refused" => Some("done.refused"),
        "started" => Some("done.started"),
        "contracted" => Some("done.contracted"),
        "contact_key" => Some("done.contact_key"),
        "terminated" => Some("done.terminated"),
        "completed" => Some("done.completed"),
        "submitted" => Some("done.submitted"),
        "supplied" => Some("done.supplied"),
        "revoked" => Some("done.revoked"),
        "password" => Some("done.password"),
        "second_factor" => Some("done.second_factor"),
        _ => None,
    }
}

/// Steps per page of a study's page.
const STEPS_PER_PAGE: usize = 50;

#[derive(Debug, Deserialize)]
struct StudyQuery {
    page: Option<usize>,
    done: Option<String>,
}

async fn study(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<StudyQuery>,
) -> Result<Response> {
    let s = crate::study_view(&app, &v.who, &id).await?;
    let releases = crate::releases_view(&app, &v.who, &id).await?;
    let pages = s.steps.len().div_ceil(STEPS_PER_PAGE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let steps: Vec<_> = s
        .steps
        .iter()
        .skip((page - 1) * STEPS_PER_PAGE)
        .take(STEPS_PER_PAGE)
        .collect();
    let history = app.engine.history(&id, &v.who).await?;
    let awaiting_approval = history
        .versions
        .last()
        .is_some_and(|v| v.state == studyflow_store::VersionState::Submitted);
    let versions: Vec<_> = history
        .versions
        .iter()
        .rev()
        .map(|r| {
            context! {
                version => r.version,
                state => r.state.as_str(),
                submitted_by => r.submitted_by,
                submitted_at => crate::day(r.submitted_at),
                approved_by => r.approved_by,
                approved_at => r.approved_at.map(crate::day),
                plan_hash => r.plan_hash,
            }
        })
        .collect();
    let contract = history.contract.map(|c| {
        let signatories = c.signatories();
        context! {
            number => c.number,
            concluded_on => c.concluded_on,
            signatories,
            measures => c.measures_recorded,
            recorded_by => c.recorded_by,
            recorded_at => crate::day(c.recorded_at),
        }
    });
    let acts = app.engine.acts(&id, &v.who).await?;
    // The plan drawn and its deadlines: of the version in force (running, or approved last),
    // or before any approval of the version submitted.
    let shown = in_force(s.running_version, &history.versions);
    let lang = v.chosen.lang;
    let (timeline, graph) = match shown {
        Some(version) => {
            let loaded = app.engine.load(&id, version.version).await?;
            (
                timeline(&app, &loaded.plan),
                Some(plan_graph(&loaded.plan, &id, lang)),
            )
        }
        None => (Vec::new(), None),
    };
    let shown = shown.map(|r| context! { version => r.version, state => r.state.as_str() });
    // A missed deadline's rule in Latvian, from the plan (the runs keep it in English), where
    // the plan's English is the run's: a run of an earlier version, or one due under another
    // calendar, keeps its own words.
    let rules_lv: std::collections::BTreeMap<&str, &str> = s
        .overdue
        .iter()
        .filter_map(|o| {
            let m = timeline
                .iter()
                .find(|m| m.step == o.step && m.rule == o.rule)?;
            Some((o.step.as_str(), m.rule_lv.as_str()))
        })
        .collect();
    let mut frame = v.frame("studies");
    frame.notice = notice(q.done.as_deref());
    Ok(render(
        &frame,
        "study.html",
        context! {
            s,
            steps,
            page,
            pages,
            releases,
            awaiting_approval,
            timeline,
            rules_lv,
            versions,
            contract,
            acts,
            shown,
            graph => graph.map(minijinja::Value::from_safe_string),
            local => v.who.issuer() == studyflow_identity::LOCAL_ISSUER,
            today => today(&app).to_string(),
        },
    ))
}

#[derive(Debug, Serialize)]
struct Moment {
    /// The day, or `None` for a deadline per subject (a follow-up wave: its days are each
    /// subject's).
    date: Option<String>,
    past: bool,
    step: String,
    title: String,
    title_lv: String,
    rule: String,
    rule_lv: String,
}

/// The version whose plan a study's page shows: the one running, else the one approved last
/// (in force once started), else — before any approval — the latest submitted.
fn in_force(
    running: Option<i64>,
    versions: &[studyflow_store::VersionRow],
) -> Option<&studyflow_store::VersionRow> {
    use studyflow_store::VersionState;
    running
        .and_then(|n| versions.iter().find(|r| r.version == n))
        .or_else(|| {
            versions
                .iter()
                .rev()
                .find(|r| r.state == VersionState::Approved)
        })
        .or_else(|| versions.last())
}

/// The plan drawn for the pages (`studyflow_plan::svg`): each step below the steps it waits
/// for, filled and named by the class of data it gives, with its legend, in `lang`.
fn plan_graph(plan: &studyflow_plan::Plan, id: &str, lang: Lang) -> String {
    studyflow_plan::svg::svg(
        plan,
        &studyflow_plan::svg::Words {
            title: &format!("{} {id}", i18n::text(lang, "approve.graph")),
            legend: i18n::text(lang, "approve.legend"),
            task: i18n::text(lang, "approve.task"),
            class: &|c| i18n::text(lang, &format!("class.{}", c.as_str())).to_owned(),
            latvian: lang == Lang::Lv,
        },
    )
}

/// The study's dated steps in order — the phases' ends, the follow-up waves, the p.8 notice,
/// publication — and the deadlines per subject after them, from `plan`.
fn timeline(app: &App, plan: &studyflow_plan::Plan) -> Vec<Moment> {
    let today = today(app);
    let order = plan
        .topological()
        .unwrap_or_else(|| plan.graph.node_indices().collect());
    let mut out: Vec<Moment> = order
        .into_iter()
        .map(|n| &plan.graph[n])
        .filter_map(|s| {
            let d = s.deadline.as_ref()?;
            Some(Moment {
                date: d.date.map(|x| x.to_string()),
                past: d.date.is_some_and(|x| x < today),
                step: s.id.clone(),
                title: s.title.clone(),
                title_lv: s.title_lv.clone(),
                rule: d.rule.clone(),
                rule_lv: d.rule_lv.clone(),
            })
        })
        .collect();
    // Dated first, by day; per-subject ones after, in the plan's order.
    out.sort_by(|a, b| match (&a.date, &b.date) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    out
}

#[derive(Debug, Serialize)]
struct PlanStep {
    id: String,
    title: String,
    title_lv: String,
    data_in: &'static str,
    data_out: &'static str,
    regulation: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
struct Finding {
    line: usize,
    column: usize,
    severity: &'static str,
    code: &'static str,
    name: &'static str,
    /// The message in the page's language (every layer of the checker says each finding in
    /// Latvian and English).
    message: String,
    /// The message is English on a page that is not (a finding without its Latvian): marked
    /// `lang="en"` (WCAG 3.1.2).
    english: bool,
    regulation: Vec<String>,
}

fn today(app: &App) -> jiff::civil::Date {
    riga_date(from_micros(app.engine.now()))
}

/// A spec's findings through every layer (YAML, schema, rules, plan), where they are, said in
/// `lang`, and the plan when it compiled.
fn check(app: &App, spec: &[u8], lang: Lang) -> (Vec<Finding>, Option<studyflow_plan::Plan>) {
    let checked = studyflow_plan::check(spec, &app.engine.calendar, Some(today(app)));
    let findings = checked
        .checked
        .diagnostics
        .iter()
        .map(|d| {
            let (message, english) = said_in(d, lang);
            Finding {
                line: d.span.map_or(1, |s| s.line),
                column: d.span.map_or(1, |s| s.column),
                severity: d.severity.as_str(),
                code: d.code,
                name: d.name,
                message,
                english,
                regulation: d.regulation.clone(),
            }
        })
        .collect();
    (findings, checked.plan)
}

/// A finding's message in `lang`, and whether it is English on a page that is not.
fn said_in(d: &studyflow_spec::Diagnostic, lang: Lang) -> (String, bool) {
    match (lang, &d.message_lv) {
        (Lang::Lv, Some(latvian)) => (latvian.clone(), false),
        (Lang::Lv, None) => (d.message.clone(), true),
        (Lang::En, _) => (d.message.clone(), false),
    }
}

/// What an approver reads before approving: the version, its plan hash, each step's data
/// classes and MK403 points, the warnings; the decision for the approver who may take it
/// (MK403 p.3, p.30.1), with a new proof of identity.
async fn review(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    // Back from a proof of identity a refusal asked for: the reason typed before it, once.
    let draft = crate::auth::cookie(&headers, DRAFT_COOKIE).and_then(|c| draft_of(c, &id));
    let mut r = review_page(&app, &v, &id, StatusCode::OK, None, draft.as_deref()).await?;
    if draft.is_some()
        && let Some(gone) = draft_header("", 0)
    {
        r.headers_mut().append(header::SET_COOKIE, gone);
    }
    Ok(r)
}

/// What a refusal's reason is kept in while its person proves who they are (a proof asked for
/// by the engine, at the identity provider or on the proof page), so that the form comes back
/// filled in: the study and the reason, base64url, for 15 minutes, in that browser only.
const DRAFT_COOKIE: &str = "__Host-studyflow-draft";

/// The most of a reason the draft keeps (bytes; a cookie holds about 4 KiB): a longer one is
/// kept up to there.
const DRAFT_AT_MOST: usize = 2_800;

/// The `Set-Cookie` value that keeps `reason` for study `id`.
fn draft_cookie(id: &str, reason: &str) -> Option<HeaderValue> {
    use base64::Engine as _;
    let mut end = reason.len().min(DRAFT_AT_MOST);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{id}\n{}", &reason[..end]));
    draft_header(&value, 900)
}

/// The draft cookie with `value`, for `max_age` seconds (0: gone).
fn draft_header(value: &str, max_age: u32) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{DRAFT_COOKIE}={value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}"
    ))
    .ok()
}

/// The reason a draft cookie keeps, when it is for study `id`.
fn draft_of(cookie: &str, id: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cookie)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (study, reason) = text.split_once('\n')?;
    (study == id).then(|| reason.to_owned())
}

async fn review_page(
    app: &App,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    problem: Option<String>,
    reason: Option<&str>,
) -> Result<Response> {
    let r = app.engine.review(id, &v.who).await?;
    let (findings, plan) = check(app, &r.version.spec, v.chosen.lang);
    let steps: Vec<PlanStep> = plan
        .as_ref()
        .and_then(|p| {
            p.topological().map(|order| {
                order
                    .into_iter()
                    .map(|n| {
                        let s = &p.graph[n];
                        PlanStep {
                            id: s.id.clone(),
                            title: s.title.clone(),
                            title_lv: s.title_lv.clone(),
                            data_in: s.data_in.as_str(),
                            data_out: s.data_out.as_str(),
                            regulation: s.regulation.clone(),
                        }
                    })
                    .collect()
            })
        })
        .unwrap_or_default();
    // An amendment: what it changes against the version in force.
    let amendment = match (&r.in_force, &plan) {
        (Some(before), Some(after)) => Some(amendment(app, before, &r.version.spec, after, true)),
        _ => None,
    };
    let graph = plan.as_ref().map(|p| plan_graph(p, id, v.chosen.lang));
    Ok(render_status(
        &v.frame("studies"),
        status,
        "approve.html",
        context! {
            study => id,
            version => r.version.version,
            submitted_by => r.version.submitted_by,
            plan_hash => r.version.plan_hash,
            version_state => r.version.state.as_str(),
            steps,
            warnings => findings,
            can_approve => r.may_approve,
            graph => graph.map(minijinja::Value::from_safe_string),
            amendment,
            local => v.who.issuer() == studyflow_identity::LOCAL_ISSUER,
            problem,
            reason,
        },
    ))
}

/// What a version changes against `before`, the version approved before it (`amendment.html`):
/// the plan's steps added, removed and changed — data classes, deadlines, MK403 points,
/// catalogue fields, who acts — and the spec's text line by line with three lines of context.
/// `in_force`: `before` is the version in force (the approval page), not only the one approved
/// before it (a version's page).
fn amendment(
    app: &App,
    before: &studyflow_store::VersionRow,
    spec: &[u8],
    plan: &studyflow_plan::Plan,
    in_force: bool,
) -> minijinja::Value {
    // (The plan before, as its findings are not shown, in either language.)
    let (_, old_plan) = check(app, &before.spec, Lang::En);
    let plan_diff = old_plan.map(|old| studyflow_plan::diff::plans(&old, plan));
    let text = studyflow_plan::diff::lines(
        &String::from_utf8_lossy(&before.spec),
        &String::from_utf8_lossy(spec),
        3,
    );
    context! {
        version => before.version,
        plan_hash => before.plan_hash,
        plan => plan_diff,
        text,
        in_force,
    }
}

/// A version of a study (MK403 p.3: each amendment is approved on its own): its state, who
/// submitted and approved it, its plan hash, and what it changes against the version approved
/// before it — the plan's steps, data classes and deadlines, and the spec's text — whether it
/// waits, was approved, refused or superseded since. To the persons of the study only.
async fn version_page(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path((id, n)): Path<(String, i64)>,
) -> Result<Response> {
    let history = app.engine.history(&id, &v.who).await?;
    let Some(row) = history.versions.iter().find(|r| r.version == n) else {
        return Err(Problem::not_found(format!("`{id}` has no version {n}"))
            .in_latvian(format!("pētījumam `{id}` nav versijas {n}")));
    };
    let before = history
        .versions
        .iter()
        .rev()
        .find(|r| r.version < n && r.approved_by.is_some());
    let (_, plan) = check(&app, &row.spec, v.chosen.lang);
    let amendment = match (before, &plan) {
        (Some(before), Some(plan)) => Some(amendment(&app, before, &row.spec, plan, false)),
        _ => None,
    };
    let latest = history.versions.last().map(|r| r.version) == Some(n);
    Ok(render(
        &v.frame("studies"),
        "version.html",
        context! {
            study => id,
            version => row.version,
            version_state => row.state.as_str(),
            submitted_by => row.submitted_by,
            submitted_at => crate::day(row.submitted_at),
            approved_by => row.approved_by,
            approved_at => row.approved_at.map(crate::day),
            plan_hash => row.plan_hash,
            amendment,
            first => n == history.versions.first().map_or(n, |r| r.version),
            awaiting => latest && row.state == studyflow_store::VersionState::Submitted,
        },
    ))
}

#[derive(Debug, Deserialize)]
struct ApproveForm {
    csrf: String,
    plan_hash: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// The approver deciding on study `id`, proven again ([`proven`]); a wrong password or code
/// is the review page again, saying so, with the refusal's `reason` as it was typed.
async fn decider(
    app: &App,
    client: &Client,
    v: &Viewer,
    id: &str,
    password: &str,
    code: &str,
    reason: Option<&str>,
) -> Result<std::result::Result<studyflow_identity::Identity, Response>> {
    match proven(app, client, v, id, password, code).await {
        Ok(who) => Ok(Ok(who)),
        Err(p) if p.status == StatusCode::FORBIDDEN.as_u16() => {
            let why = i18n::text(v.chosen.lang, "sign_in.refused").to_owned();
            Ok(Err(review_page(
                app,
                v,
                id,
                StatusCode::UNAUTHORIZED,
                Some(why),
                reason,
            )
            .await?))
        }
        Err(p) => Err(p),
    }
}

/// Approves the plan the approver reviewed (its hash; MK403 p.3, p.30.1).
async fn approve(
    State(app): State<Arc<App>>,
    client: Client,
    Path(id): Path<String>,
    a: Acting<ApproveForm>,
) -> Result<Response> {
    let who = match decider(
        &app,
        &client,
        &a.viewer,
        &id,
        &a.form.password,
        &a.form.code,
        None,
    )
    .await?
    {
        Ok(who) => who,
        Err(page) => return Ok(page),
    };
    app.engine
        .approve(&id, &who, Some(&a.form.plan_hash))
        .await?;
    Ok(see_other(&format!("/studies/{id}?done=approved")))
}

/// `who` proven again for an act on a study page that needs a recent proof (approving,
/// refusing, the contract, terminating): a
/// local person by password and code; a person of the identity provider by their sign-in
/// there, which the engine checks is recent. A study that does not involve them is not found
/// first, as in the API.
async fn proven(
    app: &App,
    client: &Client,
    v: &Viewer,
    id: &str,
    password: &str,
    code: &str,
) -> Result<studyflow_identity::Identity> {
    crate::visible(app, &v.who, id).await?;
    if v.who.issuer() != studyflow_identity::LOCAL_ISSUER {
        return Ok(v.who.clone());
    }
    crate::limited(app, client).await?;
    app.accounts
        .step_up(
            &v.held,
            password,
            code,
            &client.0.to_string(),
            app.engine.now(),
        )
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::FORBIDDEN,
                "refused",
                i18n::text(v.chosen.lang, "act.proof_refused"),
            )
        })
}

/// Starts the approved study (MK403 p.21, p.22): its service researcher.
async fn start(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    a: Acting<TokenOnly>,
) -> Result<Response> {
    crate::visible(&app, &a.viewer.who, &id).await?;
    app.engine.start(&id, &a.viewer.who).await?;
    Ok(see_other(&format!("/studies/{id}?done=started")))
}

#[derive(Debug, Deserialize)]
struct ContractForm {
    csrf: String,
    // Defaults: a form short of a field is answered by the engine's checks, after who asks.
    #[serde(default)]
    number: String,
    #[serde(default)]
    concluded_on: String,
    /// One signatory of a non-disclosure declaration a line.
    #[serde(default)]
    signatories: String,
    #[serde(default)]
    measures_checked: Option<String>,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// Records the contract of an approved external study, its non-disclosure declarations and
/// the security measures checked (MK403 p.5, p.30.2, p.33): its approver or supervisor,
/// proven again.
async fn contract(
    State(app): State<Arc<App>>,
    client: Client,
    Path(id): Path<String>,
    a: Acting<ContractForm>,
) -> Result<Response> {
    let f = &a.form;
    let who = proven(&app, &client, &a.viewer, &id, &f.password, &f.code).await?;
    let concluded_on: jiff::civil::Date = f
        .concluded_on
        .parse()
        .map_err(|_| Problem::bad_request("the contract's date is a day (YYYY-MM-DD)"))?;
    let input = studyflow_runtime::ContractInput {
        number: f.number.trim().to_owned(),
        concluded_on,
        signatories: f
            .signatories
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        measures_checked: f.measures_checked.is_some(),
    };
    app.engine.contract(&id, &who, &input).await?;
    Ok(see_other(&format!("/studies/{id}?done=contracted")))
}

#[derive(Debug, Deserialize)]
struct ContactKeyForm {
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// Takes the age public key the study's contact list is to be encrypted to for the person
/// giving it (MK403 p.32), proven again: as the API's `PUT …/contact-key`.
async fn contact_key(
    State(app): State<Arc<App>>,
    client: Client,
    Path(id): Path<String>,
    a: Acting<ContactKeyForm>,
) -> Result<Response> {
    let f = &a.form;
    let who = proven(&app, &client, &a.viewer, &id, &f.password, &f.code).await?;
    crate::views::give_contact_key(&app, &who, &id, &f.key).await?;
    Ok(see_other(&format!("/studies/{id}?done=contact_key")))
}

#[derive(Debug, Deserialize)]
struct TerminateForm {
    csrf: String,
    #[serde(default)]
    understood: Option<String>,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// Ends the study early: what was not done is cancelled and its identifying data destroyed
/// (MK403 p.26) — its approver (or an external study's supervisor), proven again, having said
/// they understand.
async fn terminate(
    State(app): State<Arc<App>>,
    client: Client,
    Path(id): Path<String>,
    a: Acting<TerminateForm>,
) -> Result<Response> {
    // Who asks first: a stranger learns nothing of the study from the form's check.
    crate::visible(&app, &a.viewer.who, &id).await?;
    if a.form.understood.is_none() {
        return Err(Problem::bad_request(i18n::text(
            a.viewer.chosen.lang,
            "act.terminate_understood_missing",
        )));
    }
    let who = proven(
        &app,
        &client,
        &a.viewer,
        &id,
        &a.form.password,
        &a.form.code,
    )
    .await?;
    app.engine.terminate(&id, &who).await?;
    Ok(see_other(&format!("/studies/{id}?done=terminated")))
}

#[derive(Debug, Deserialize)]
struct RefuseForm {
    csrf: String,
    plan_hash: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// Refuses the plan the approver reviewed, with a reason for its submitter (MK403 p.3).
async fn refuse(
    State(app): State<Arc<App>>,
    client: Client,
    Path(id): Path<String>,
    a: Acting<RefuseForm>,
) -> Result<Response> {
    let who = match decider(
        &app,
        &client,
        &a.viewer,
        &id,
        &a.form.password,
        &a.form.code,
        Some(&a.form.reason),
    )
    .await?
    {
        Ok(who) => who,
        Err(page) => return Ok(page),
    };
    match app
        .engine
        .refuse(&id, &who, Some(&a.form.plan_hash), &a.form.reason)
        .await
    {
        Ok(_) => Ok(see_other(&format!("/studies/{id}?done=refused"))),
        Err(e) => {
            let p = Problem::from(e);
            // A proof of identity to give first (a person of the identity provider): the
            // reason waits in this browser for the form to come back with it.
            let draft = (p.short() == "reauthenticate")
                .then(|| draft_cookie(&id, &a.form.reason))
                .flatten();
            let mut r = p.into_response();
            if let Some(cookie) = draft {
                r.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Ok(r)
        }
    }
}

async fn tasks(
    State(app): State<Arc<App>>,
    v: Viewer,
    Query(q): Query<StudyQuery>,
) -> Result<Response> {
    let tasks = crate::tasks_view(&app, &v.who).await?;
    let mut frame = v.frame("tasks");
    frame.notice = notice(q.done.as_deref());
    Ok(render(&frame, "tasks.html", context! { tasks }))
}

/// An open task of the person's, with what the engine prepared for it and the file it takes.
async fn task(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<StudyQuery>,
) -> Result<Response> {
    task_page(&app, &v, id, StatusCode::OK, None, q.done.as_deref()).await
}

async fn task_page(
    app: &App,
    v: &Viewer,
    id: i64,
    status: StatusCode,
    refused: Option<minijinja::Value>,
    done: Option<&str>,
) -> Result<Response> {
    let task = crate::tasks_view(app, &v.who)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| Problem::not_found(format!("no open task {id} of yours")))?;
    // Without the work folder the server exchanges no files; the task is still done here.
    let files = match crate::task_files_view(app, &v.who, id).await {
        Ok(f) => Some(f),
        Err(p) if p.status == 404 => None,
        Err(p) => return Err(p),
    };
    // A run waiting for its file has nothing to report or complete.
    let quality = if task.awaiting_file {
        None
    } else {
        app.engine
            .quality_report(id, &v.who)
            .await?
            .map(|q| quality_tables(&q))
    };
    let mut frame = v.frame("tasks");
    frame.notice = notice(done);
    Ok(render_status(
        &frame,
        status,
        "task.html",
        context! { task, files, refused, quality },
    ))
}

/// The quality report as tables: per table its rows and duplicates, and a line per column
/// with a finding — counts only.
fn quality_tables(report: &serde_json::Value) -> Vec<minijinja::Value> {
    const KINDS: [&str; 4] = ["missing", "date_order", "impossible", "out_of_domain"];
    let Some(tables) = report.as_object() else {
        return Vec::new();
    };
    tables
        .iter()
        .map(|(name, r)| {
            let mut columns: std::collections::BTreeMap<String, [u64; 4]> = Default::default();
            for (k, kind) in KINDS.iter().enumerate() {
                if let Some(m) = r.get(*kind).and_then(|m| m.as_object()) {
                    for (column, n) in m {
                        let n = n.as_u64().unwrap_or(0);
                        if n > 0 {
                            columns.entry(column.clone()).or_default()[k] = n;
                        }
                    }
                }
            }
            let lines: Vec<_> = columns
                .into_iter()
                .map(|(column, n)| context! { column, counts => n.to_vec() })
                .collect();
            context! {
                name,
                rows => r.get("rows").and_then(|x| x.as_u64()).unwrap_or(0),
                duplicates => r.get("duplicates").and_then(|x| x.as_u64()).unwrap_or(0),
                lines,
            }
        })
        .collect()
}

async fn task_file(
    State(app): State<Arc<App>>,
    v: Viewer,
    method: axum::http::Method,
    headers: HeaderMap,
    Path((id, file)): Path<(i64, String)>,
) -> Result<Response> {
    super::own_navigation(&headers)?;
    crate::prepared_file(&app, &v.who, id, &file, method == axum::http::Method::HEAD).await
}

async fn release_file(
    State(app): State<Arc<App>>,
    v: Viewer,
    method: axum::http::Method,
    headers: HeaderMap,
    Path((id, n, file)): Path<(String, usize, String)>,
) -> Result<Response> {
    super::own_navigation(&headers)?;
    crate::release_file(
        &app,
        &v.who,
        &id,
        n,
        &file,
        method == axum::http::Method::HEAD,
    )
    .await
}

/// A page's multipart form (a file's upload) from this server's own page, its first field the
/// session's form token (`csrf`): checked before anything else of it is read.
async fn signed_multipart(
    headers: &HeaderMap,
    v: &Viewer,
    form: &mut axum::extract::Multipart,
) -> Result<()> {
    super::same_origin(headers)?;
    let forged = || {
        Problem::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "this form is not of your session (sign in again and send it from its page)",
        )
    };
    let first = form.next_field().await.map_err(|_| forged())?;
    let token = match first {
        Some(f) if f.name() == Some("csrf") => f.text().await.map_err(|_| forged())?,
        _ => return Err(forged()),
    };
    if !studyflow_identity::secret_eq(token.as_bytes(), v.token.as_bytes()) {
        return Err(forged());
    }
    Ok(())
}

/// A file a task takes, from the page's upload (multipart: the form token first, then the
/// file): the same checks as the API's — who, which task, a recent proof before a byte of the
/// file is read; checked whole; refused with its row report on the task's page, nothing kept.
async fn supply(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(id): Path<i64>,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Result<Response> {
    signed_multipart(&headers, &v, &mut form).await?;
    let target = crate::supply_target(&app, &v.who, id).await?;
    let checking = crate::SUPPLY_CHECKS
        .acquire()
        .await
        .map_err(|_| Problem::internal())?;
    let read = async {
        let mut file = None;
        while let Some(mut field) = form
            .next_field()
            .await
            .map_err(|_| crate::supply_too_large())?
        {
            if field.name() != Some("file") {
                continue;
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|_| crate::supply_too_large())? {
                if bytes.len() + chunk.len() > crate::SUPPLY_LIMIT {
                    return Err(crate::supply_too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            file = Some(bytes);
        }
        file.ok_or_else(|| Problem::bad_request("choose the file to send"))
    };
    let bytes = tokio::time::timeout(crate::SUPPLY_TIMEOUT, read)
        .await
        .map_err(|_| crate::supply_timed_out())??;
    match crate::supply_bytes(&app, &v.who, id, target, bytes.into(), checking).await {
        Ok(_) => Ok(see_other(&format!("/tasks/{id}?done=supplied"))),
        Err(p) if p.short() == "file-refused" => {
            // Its summary in the page's language; each row's problem is the import's, in
            // English (marked so on a Latvian page).
            let (detail, english) = match (v.chosen.lang, &p.detail_lv) {
                (Lang::Lv, Some(lv)) => (lv.to_string(), false),
                (Lang::Lv, None) => (p.detail.clone(), true),
                (Lang::En, _) => (p.detail.clone(), false),
            };
            let refused = context! { detail, english, rows => p.rows.to_vec() };
            task_page(
                &app,
                &v,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(refused),
                None,
            )
            .await
        }
        Err(p) => Err(p),
    }
}

/// The audit page's query: the API's filters (not flattened: a flattened number does not
/// read from a query string) and `verify`.
#[derive(Debug, Deserialize)]
struct AuditPageQuery {
    actor: Option<String>,
    action: Option<String>,
    from: Option<String>,
    until: Option<String>,
    after: Option<i64>,
    verify: Option<String>,
}

/// A query string of the audit's filters (and `after`), for the next page's and the export's
/// links.
fn audit_query(q: &crate::AuditQuery, after: Option<&str>) -> String {
    let mut out = Vec::new();
    for (k, v) in [
        ("actor", q.actor.as_deref()),
        ("action", q.action.as_deref()),
        ("from", q.from.as_deref()),
        ("until", q.until.as_deref()),
        ("after", after),
    ] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            out.push(format!("{k}={}", super::url_escape(v)));
        }
    }
    out.join("&")
}

/// The reads of a whole log or a study's whole audit: one at a time in this server.
static HEAVY_READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The most events one export holds.
const EXPORT_MOST: usize = 200_000;

fn busy() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "another verification or export of the audit is running; try again in a moment",
    )
}

#[derive(Debug, Serialize)]
struct Verified {
    intact: bool,
    rows: i64,
    checkpoints: u64,
    /// Events recorded and not sealed into the chain yet (a seal failing, or a row slipped
    /// into the outbox that the next seal refuses).
    pending: i64,
    signed: bool,
    seq: i64,
    reason: String,
}

/// A study's audit for the Service's persons of the study (MK403 p.25.3, p.25.5): its events
/// narrowed by actor, action and days, a page at a time; the whole log verified on request
/// with what the installation's signing trusts; the latest signed checkpoint, to compare with
/// a copy held elsewhere.
async fn audit(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(id): Path<String>,
    Query(aq): Query<AuditPageQuery>,
) -> Result<Response> {
    let q = crate::AuditQuery {
        limit: Some(100),
        after: aq.after,
        actor: aq.actor,
        action: aq.action,
        from: aq.from,
        until: aq.until,
    };
    let page = crate::audit_view(&app, &v.who, &id, q.clone()).await?;
    let next = page
        .next
        .as_deref()
        .map(|n| format!("/studies/{id}/audit?{}", audit_query(&q, Some(n))));
    let verified = match aq.verify {
        Some(_) => {
            // The whole log is read: one verification at a time.
            let _one = HEAVY_READS.try_acquire().map_err(|_| busy())?;
            let (result, signed) = app.engine.verify_audit_for(&id, &v.who).await?;
            Some(match result {
                studyflow_store::Verification::Intact {
                    rows,
                    checkpoints,
                    pending,
                    ..
                } => Verified {
                    intact: true,
                    rows,
                    checkpoints,
                    pending,
                    signed,
                    seq: 0,
                    reason: String::new(),
                },
                studyflow_store::Verification::Broken { seq, reason } => Verified {
                    intact: false,
                    rows: 0,
                    checkpoints: 0,
                    pending: 0,
                    signed,
                    seq,
                    reason,
                },
            })
        }
        None => None,
    };
    let checkpoint = app.engine.latest_checkpoint().await?;
    let export = format!("/studies/{id}/audit/export?{}", audit_query(&q, None));
    let verify_link = format!(
        "/studies/{id}/audit?{}&verify=1",
        audit_query(&q, q.after.map(|a| a.to_string()).as_deref())
    );
    Ok(render(
        &v.frame("studies"),
        "audit.html",
        context! {
            study => id,
            events => page
                .items
                .iter()
                .map(|e| {
                    let mut v = serde_json::to_value(e).unwrap_or_default();
                    v["detail_text"] = e.detail.to_string().into();
                    v
                })
                .collect::<Vec<_>>(),
            next,
            q,
            verified,
            checkpoint,
            export,
            verify_link,
        },
    ))
}

/// The study's audit events the filters select, every page of them, as JSON Lines (one event a
/// line, oldest first), for the person's own records; the export itself is audited.
async fn audit_export(
    State(app): State<Arc<App>>,
    v: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<crate::AuditQuery>,
) -> Result<Response> {
    super::own_navigation(&headers)?;
    // One export at a time, of at most EXPORT_MOST events: a study of 100,000 runs has many.
    let _one = HEAVY_READS.try_acquire().map_err(|_| busy())?;
    let mut out = String::new();
    let mut q = crate::AuditQuery {
        limit: Some(500),
        after: None,
        ..q
    };
    let mut events = 0usize;
    loop {
        let page = crate::audit_view(&app, &v.who, &id, q.clone()).await?;
        for e in &page.items {
            out.push_str(&serde_json::to_string(e).map_err(|_| Problem::internal())?);
            out.push('\n');
        }
        events += page.items.len();
        if events >= EXPORT_MOST {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!(
                    "the export holds more than {EXPORT_MOST} events: narrow it by days, who or action"
                ),
            ));
        }
        match page.next.and_then(|n| n.parse::<i64>().ok()) {
            Some(after) => q.after = Some(after),
            None => break,
        }
    }
    app.engine
        .record_read(
            &v.who,
            "audit.exported",
            &id,
            "p.25.3",
            serde_json::json!({
                "events": events,
                "actor": q.actor,
                "action": q.action,
                "from": q.from,
                "until": q.until,
            }),
        )
        .await?;
    let mut r = out.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jsonl; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{id}-audit.jsonl\""))
            .map_err(|_| Problem::internal())?,
    );
    Ok(r)
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Proving who you are again, for the acts and reads that need a recent proof (MK403 p.25.3),
/// then on to where you were going.
async fn reauth_page(v: Viewer, Query(q): Query<NextQuery>) -> Response {
    reauth_form(&v, q.next.as_deref(), StatusCode::OK, None)
}

/// The sign-in at the identity provider, coming back to `next`.
fn provider_href(next: &str) -> String {
    format!("/api/v1/oidc/login?next={}", super::url_escape(next))
}

fn reauth_form(
    v: &Viewer,
    next: Option<&str>,
    status: StatusCode,
    problem: Option<&str>,
) -> Response {
    let next = next.and_then(super::local_path).unwrap_or("/studies");
    render_status(
        &v.frame(""),
        status,
        "reauthenticate.html",
        context! {
            next,
            provider_href => provider_href(next),
            problem,
            local => v.who.issuer() == studyflow_identity::LOCAL_ISSUER,
        },
    )
}

#[derive(Debug, Deserialize)]
struct ReauthForm {
    csrf: String,
    password: String,
    code: String,
    #[serde(default)]
    next: String,
}

async fn reauthenticate(
    State(app): State<Arc<App>>,
    client: Client,
    a: Acting<ReauthForm>,
) -> Result<Response> {
    crate::limited(&app, &client).await?;
    let v = &a.viewer;
    let next = super::local_path(&a.form.next).unwrap_or("/studies");
    match app
        .accounts
        .step_up(
            &v.held,
            &a.form.password,
            &a.form.code,
            &client.0.to_string(),
            app.engine.now(),
        )
        .await
    {
        Ok(_) => Ok(see_other(next)),
        Err(_) => Ok(reauth_form(
            v,
            Some(next),
            StatusCode::UNAUTHORIZED,
            Some(i18n::text(v.chosen.lang, "sign_in.refused")),
        )),
    }
}

#[derive(Debug, Deserialize)]
struct DeviceForm {
    csrf: String,
    #[serde(default)]
    code: String,
    /// `approve` or `deny`; none to look the code up.
    #[serde(default)]
    decision: String,
}

/// A command line's sign-in through the browser (RFC 8628; `studyflow login --device`): the
/// person types the code their own command line shows — no link fills it in, so a code sent by
/// someone else is not approved at a click (§5.4) — and sees what asks before deciding.
async fn device_page(v: Viewer) -> Response {
    render(&v.frame("tokens"), "device.html", context! {})
}

/// The grant waiting under `typed` with its approve and deny buttons, or the code form again
/// saying no sign-in waits for it.
async fn device_shown(app: &App, v: &Viewer, typed: &str, status: StatusCode) -> Result<Response> {
    let frame = v.frame("tokens");
    let now = app.engine.now();
    Ok(match app.accounts.pending_device(typed, now).await? {
        Some(g) => render_status(
            &frame,
            status,
            "device.html",
            context! {
                grant => context! {
                    code => g.user_code,
                    label => g.label,
                    client => g.client,
                    requested => riga_clock(g.requested_at),
                    expires => riga_clock(g.expires_at),
                    // About: the token's life counts from when the command line collects it.
                    token_until => app
                        .accounts
                        .device_token_life(g.days, v.who.issuer())
                        .map_or_else(|_| "—".to_owned(), |life| riga_clock(now + life)),
                },
            },
        ),
        None => render_status(
            &frame,
            StatusCode::NOT_FOUND,
            "device.html",
            context! {
                code => typed.chars().take(20).collect::<String>(),
                problem => i18n::text(v.chosen.lang, "device.unknown"),
            },
        ),
    })
}

/// The person's personal tokens — the command lines that act as them — with when each was
/// made, last used and ends, and a button to revoke one (a lost laptop's, say), and the way to
/// connect another (`/device`).
async fn tokens(
    State(app): State<Arc<App>>,
    v: Viewer,
    Query(q): Query<StudyQuery>,
) -> Result<Response> {
    let now = app.engine.now();
    let tokens: Vec<minijinja::Value> = app
        .accounts
        .tokens(&v.who)
        .await?
        .into_iter()
        .map(|t| {
            let state = if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= now {
                "expired"
            } else {
                "active"
            };
            context! {
                id => hex::encode(&t.hash),
                label => t.label,
                created => riga_clock(t.created_at),
                last_used => riga_clock(t.last_used_at),
                expires => riga_clock(t.expires_at),
                state,
            }
        })
        .collect();
    let mut frame = v.frame("tokens");
    frame.notice = notice(q.done.as_deref());
    Ok(render(&frame, "tokens.html", context! { tokens }))
}

/// Revokes one of the person's own tokens; another's is not found.
async fn revoke_token(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    a: Acting<TokenOnly>,
) -> Result<Response> {
    crate::views::revoke_own_token(&app, &a.viewer.who, &id).await?;
    Ok(see_other("/tokens?done=revoked"))
}

/// The signed-in person's account: who they are signed in as, and — for a local account —
/// the forms to change their own password and replace their second factor (a person of the
/// identity provider changes them there).
async fn account(v: Viewer, Query(q): Query<StudyQuery>) -> Response {
    let mut frame = v.frame("account");
    frame.notice = notice(q.done.as_deref());
    account_page(&v, frame, StatusCode::OK, None)
}

fn account_page(
    v: &Viewer,
    frame: Frame<'_>,
    status: StatusCode,
    problem: Option<&str>,
) -> Response {
    let local = v.who.issuer() == studyflow_identity::LOCAL_ISSUER;
    render_status(
        &frame,
        status,
        "account.html",
        context! {
            login => v.who.login(),
            issuer => (!local).then(|| v.who.issuer()),
            subject => (!local).then(|| v.who.subject()),
            proven => riga_clock(v.who.auth_at()),
            local,
            problem,
            min_length => studyflow_identity::password::MIN_LENGTH,
        },
    )
}

/// The account page again with why an act on it was refused (`key`, in the person's
/// language).
fn account_refused(v: &Viewer, status: StatusCode, key: &str) -> Response {
    account_page(
        v,
        v.frame("account"),
        status,
        Some(i18n::text(v.chosen.lang, key)),
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    password: String,
    code: String,
    new_password: String,
    again: String,
    /// The box "revoke my command lines' tokens too", ticked.
    #[serde(default)]
    revoke_tokens: Option<String>,
}

/// A person's own new password, proven with the one they have and a code; their other browser
/// sessions end ([`studyflow_identity::Accounts::change_password`]). Counted against the
/// address's sign-in attempts, and a wrong password against the account's lock, as a sign-in.
async fn change_password(
    State(app): State<Arc<App>>,
    client: Client,
    a: Acting<PasswordForm>,
) -> Result<Response> {
    crate::limited(&app, &client).await?;
    let (v, f) = (&a.viewer, &a.form);
    let check = if f.new_password != f.again {
        Some("enrol.differ")
    } else if f.new_password.chars().count() < studyflow_identity::password::MIN_LENGTH {
        Some("enrol.short")
    } else if f.new_password == f.password {
        Some("account.same")
    } else {
        None
    };
    if let Some(key) = check {
        return Ok(account_refused(v, StatusCode::UNPROCESSABLE_ENTITY, key));
    }
    match app
        .accounts
        .change_password(
            &v.held,
            &f.password,
            &f.code,
            &f.new_password,
            f.revoke_tokens.is_some(),
            &client.0.to_string(),
            app.engine.now(),
        )
        .await
    {
        Ok(_) => renewed(&app, v, "/account?done=password").await,
        Err(studyflow_identity::IdentityError::Refused) => Ok(account_refused(
            v,
            StatusCode::UNAUTHORIZED,
            "account.refused",
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct SecondFactorForm {
    csrf: String,
    password: String,
    code: String,
}

/// The start of replacing a person's second factor: proven with their password and a code of
/// the one they have, they are shown a new key with a form for a code of it, which ends the
/// replacement ([`confirm_second_factor`]) from this session within 10 minutes. Until then the
/// one they have signs in. Sent again (a reload), its code has been used and it is refused as
/// a wrong proof; begun again with the app's next code, another key is shown and the one
/// before forgotten.
async fn begin_second_factor(
    State(app): State<Arc<App>>,
    client: Client,
    a: Acting<SecondFactorForm>,
) -> Result<Response> {
    crate::limited(&app, &client).await?;
    let v = &a.viewer;
    match app
        .accounts
        .begin_second_factor(
            &v.held,
            &a.form.password,
            &a.form.code,
            &client.0.to_string(),
            app.engine.now(),
        )
        .await
    {
        Ok(secret) => {
            let begun = crate::second_factor_begun(&v.who, &secret);
            Ok(render(
                &v.frame("account"),
                "second_factor.html",
                context! { secret => begun.secret, uri => begun.otpauth },
            ))
        }
        Err(studyflow_identity::IdentityError::Refused) => Ok(account_refused(
            v,
            StatusCode::UNAUTHORIZED,
            "account.refused",
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct SecondFactorConfirmForm {
    csrf: String,
    app_code: String,
    /// The box "revoke my command lines' tokens too", ticked.
    #[serde(default)]
    revoke_tokens: Option<String>,
}

/// The end of replacing a person's second factor: a code of the key just shown proves they
/// keep it, and it replaces the one they had; their other browser sessions end. A wrong code
/// is the account page again, to begin again.
async fn confirm_second_factor(
    State(app): State<Arc<App>>,
    client: Client,
    a: Acting<SecondFactorConfirmForm>,
) -> Result<Response> {
    crate::limited(&app, &client).await?;
    let v = &a.viewer;
    match app
        .accounts
        .confirm_second_factor(
            &v.held,
            &a.form.app_code,
            a.form.revoke_tokens.is_some(),
            &client.0.to_string(),
            app.engine.now(),
        )
        .await
    {
        Ok(_) => renewed(&app, v, "/account?done=second_factor").await,
        // A wrong code: the form again, to type the app's next one (the key was shown once).
        Err(studyflow_identity::IdentityError::Invalid(m))
            if m == studyflow_identity::NOT_THE_NEW_CODE =>
        {
            Ok(render_status(
                &v.frame("account"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "second_factor.html",
                context! { problem => i18n::text(v.chosen.lang, "account.wrong_code") },
            ))
        }
        Err(
            studyflow_identity::IdentityError::Invalid(_)
            | studyflow_identity::IdentityError::Refused,
        ) => Ok(account_refused(
            v,
            StatusCode::UNPROCESSABLE_ENTITY,
            "account.confirm_refused",
        )),
        Err(e) => Err(e.into()),
    }
}

/// After a change of the person's credentials: a new session in place of the one the browser
/// holds (a copy of its cookie is worth nothing now), then on to `to`.
async fn renewed(app: &App, v: &Viewer, to: &str) -> Result<Response> {
    let now = app.engine.now();
    let (session, _, until) = app
        .accounts
        .renew_session(&v.held, "browser (pages)", now)
        .await?;
    let cookie = HeaderValue::from_str(&crate::auth::set_cookie(
        Some(session.expose()),
        (until - now) / 1_000_000,
    ))
    .map_err(|_| Problem::internal())?;
    let mut r = see_other(to);
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(r)
}

/// An instant as the clock in Riga shows it (`2026-12-01 08:15`).
fn riga_clock(us: i64) -> String {
    studyflow_runtime::clock::riga_time(from_micros(us))
}

/// A code typed (looked up) or a grant decided. Each needs a recent proof of identity (asked
/// for first, then back to the page), and each counts against the person's codes (at most 20
/// in 10 minutes, RFC 8628 §5.1: a code cannot be guessed by trying).
async fn device_decide(State(app): State<Arc<App>>, a: Acting<DeviceForm>) -> Result<Response> {
    let v = &a.viewer;
    app.engine
        .require_recent_proof(&v.who, studyflow_runtime::ProvenAct::ApproveSignIn)?;
    crate::counted(
        &app,
        crate::auth::Attempt::DeviceCode(format!("{} {}", v.who.issuer(), v.who.login())),
    )
    .await?;
    let approve = match a.form.decision.as_str() {
        "" => return device_shown(&app, v, &a.form.code, StatusCode::OK).await,
        "approve" => true,
        "deny" => false,
        _ => return Err(Problem::bad_request("approve or deny")),
    };
    let now = app.engine.now();
    match app
        .accounts
        .decide_device(&a.form.code, &v.who, approve, now)
        .await
    {
        Ok(()) => Ok(render(
            &v.frame("tokens"),
            "device.html",
            context! { decided => if approve { "approved" } else { "denied" } },
        )),
        Err(studyflow_identity::IdentityError::Invalid(_)) => {
            device_shown(&app, v, &a.form.code, StatusCode::NOT_FOUND).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct CompleteForm {
    csrf: String,
    #[serde(default)]
    note: String,
}

async fn complete(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    a: Acting<CompleteForm>,
) -> Result<Response> {
    let note = Some(a.form.note.trim()).filter(|n| !n.is_empty());
    crate::views::complete_task(&app, id, &a.viewer.who, note).await?;
    Ok(see_other("/tasks?done=completed"))
}

#[derive(Debug, Deserialize)]
struct SpecForm {
    csrf: String,
    spec: String,
}

async fn submit_page(v: Viewer) -> Response {
    render(&v.frame("submit"), "submit.html", context! { spec => "" })
}

/// Submits a spec for approval (MK403 p.3) — or, for a study the person takes part in, an
/// amendment of it, which needs its own approval; refused whole with every finding at its line,
/// the text kept in the form.
async fn submit(State(app): State<Arc<App>>, a: Acting<SpecForm>) -> Result<Response> {
    let bytes = a.form.spec.as_bytes();
    let existing = match studyflow_spec::check(bytes).spec {
        Some(spec) if app.engine.involved(&spec.id, &a.viewer.who).await? => Some(spec.id),
        _ => None,
    };
    let done = match &existing {
        Some(id) => app.engine.amend(id, bytes, &a.viewer.who).await,
        None => app.engine.submit(bytes, &a.viewer.who).await,
    };
    match done {
        Ok((study, _, _)) => Ok(see_other(&format!("/studies/{study}?done=submitted"))),
        Err(studyflow_runtime::EngineError::Invalid(_)) => {
            let (findings, _) = check(&app, a.form.spec.as_bytes(), a.viewer.chosen.lang);
            let errors: Vec<_> = findings
                .into_iter()
                .filter(|f| f.severity == "error")
                .collect();
            Ok(render_status(
                &a.viewer.frame("submit"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "submit.html",
                context! { spec => a.form.spec, diagnostics => errors },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn validate_page(v: Viewer) -> Response {
    render(
        &v.frame("validate"),
        "validate.html",
        context! { spec => "" },
    )
}

/// The most of a spec's file the validate page takes: the checker's own limit (1 MiB, SF003).
const SPEC_FILE_LIMIT: usize = 1 << 20;

/// The validate form's body at most: a pasted spec and a file, each up to the checker's limit,
/// and the form around them. A larger body is cut off unread.
const VALIDATE_BODY_LIMIT: usize = 3 * SPEC_FILE_LIMIT;

/// What the validate form brought: the pasted text, and the file chosen beside it.
#[derive(Default)]
struct SpecUpload {
    pasted: String,
    /// The file's name and bytes; `None` when none was chosen.
    file: Option<(String, Vec<u8>)>,
    /// A file, or the whole form, over the limit: nothing of it is checked.
    too_large: bool,
}

/// Reads the validate form's fields after its token: a file over [`SPEC_FILE_LIMIT`] is read
/// to its end (so the browser gets the answer, not a broken connection) and not kept; a form
/// over [`VALIDATE_BODY_LIMIT`] is read no further.
async fn spec_upload(form: &mut axum::extract::Multipart) -> Result<SpecUpload> {
    let mut got = SpecUpload::default();
    let failed = |e: axum::extract::multipart::MultipartError, got: &mut SpecUpload| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            got.too_large = true;
            Ok(())
        } else {
            Err(Problem::bad_request(
                "the form is not one of this server's pages",
            ))
        }
    };
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                failed(e, &mut got)?;
                break;
            }
        };
        match field.name() {
            Some("spec") => match field.text().await {
                Ok(text) => got.pasted = text,
                Err(e) => {
                    failed(e, &mut got)?;
                    break;
                }
            },
            Some("file") => {
                let name: String = field.file_name().unwrap_or("").chars().take(200).collect();
                let mut bytes = Vec::new();
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            if bytes.len() + chunk.len() > SPEC_FILE_LIMIT {
                                got.too_large = true;
                                bytes = Vec::new();
                            } else if !got.too_large {
                                bytes.extend_from_slice(&chunk);
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            failed(e, &mut got)?;
                            break;
                        }
                    }
                }
                if !name.is_empty() || !bytes.is_empty() {
                    got.file = Some((name, bytes));
                }
            }
            _ => {}
        }
    }
    Ok(got)
}

/// Every finding of a spec — pasted, or its file uploaded beside the text — at its line, as
/// `studyflow validate` reports them. A file over the checker's 1 MiB is refused unread, saying
/// so.
async fn validate(
    State(app): State<Arc<App>>,
    v: Viewer,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Result<Response> {
    signed_multipart(&headers, &v, &mut form).await?;
    let got = spec_upload(&mut form).await?;
    let frame = v.frame("validate");
    let refused = |status, problem: &str| {
        render_status(
            &frame,
            status,
            "validate.html",
            context! {
                spec => got.pasted,
                problem => i18n::text(v.chosen.lang, problem),
            },
        )
    };
    if got.too_large {
        return Ok(refused(StatusCode::PAYLOAD_TOO_LARGE, "validate.too_large"));
    }
    let (bytes, file_name) = match &got.file {
        Some((name, bytes)) => (bytes.as_slice(), Some(name.as_str())),
        None if got.pasted.trim().is_empty() => {
            return Ok(refused(StatusCode::BAD_REQUEST, "validate.empty"));
        }
        None => (got.pasted.as_bytes(), None),
    };
    let (findings, _) = check(&app, bytes, v.chosen.lang);
    let errors = findings.iter().filter(|f| f.severity == "error").count();
    let warnings = findings.iter().filter(|f| f.severity == "warning").count();
    Ok(render(
        &frame,
        "validate.html",
        context! {
            spec => got.pasted,
            file_name,
            checked => true,
            diagnostics => findings,
            errors,
            warnings,
        },
    ))
}

#[derive(Debug, Deserialize)]
struct CalendarQuery {
    publish: Option<String>,
}

#[derive(Debug, Serialize)]
struct DayLine {
    date: String,
    weekday: String,
    count: Option<usize>,
    why: String,
}

fn weekday(d: jiff::civil::Date) -> String {
    format!("{:?}", d.weekday()).to_lowercase()
}

/// Why a day is or is not counted, in the person's language.
fn why(lang: Lang, day: &Day) -> String {
    match (lang, day) {
        (_, Day::Working) => String::new(),
        (Lang::Lv, d) => d.describe_lv(),
        (Lang::En, d) => d.describe(),
    }
}

/// "If we publish on D, the Prison Administration must have the results by …" (MK403 p.8),
/// with each day from D backwards: counted, or why not.
async fn calendar(
    State(app): State<Arc<App>>,
    v: Viewer,
    Query(q): Query<CalendarQuery>,
) -> Response {
    let lang = v.chosen.lang;
    let frame = v.frame("calendar");
    let Some(publish) = q.publish.filter(|p| !p.is_empty()) else {
        return render(&frame, "calendar.html", context! {});
    };
    let answer = publish
        .parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| studyflow_plan::prison_notice_day(&app.engine.calendar, d).ok());
    let Some(deadline) = answer else {
        return render_status(
            &frame,
            StatusCode::BAD_REQUEST,
            "calendar.html",
            context! { publish, problem => i18n::text(lang, "calendar.bad_date") },
        );
    };
    let calendar = &app.engine.calendar;
    let mut days: Vec<DayLine> = deadline
        .counted
        .iter()
        .enumerate()
        .map(|(i, d)| DayLine {
            date: d.to_string(),
            weekday: weekday(*d),
            count: Some(i + 1),
            why: calendar
                .day(*d)
                .map(|day| why(lang, day))
                .unwrap_or_default(),
        })
        .chain(deadline.skipped.iter().map(|(d, day)| DayLine {
            date: d.to_string(),
            weekday: weekday(*d),
            count: None,
            why: why(lang, day),
        }))
        .collect();
    days.sort_by(|a, b| b.date.cmp(&a.date));
    render(
        &frame,
        "calendar.html",
        context! {
            publish,
            deadline => deadline.date.to_string(),
            deadline_weekday => weekday(deadline.date),
            days,
            calendar_version => calendar.version(),
        },
    )
}

/// A finding of a refused spec as a line of an error page.
pub(super) fn diagnostic_line(d: &serde_json::Value) -> String {
    let line = d
        .pointer("/span/line")
        .and_then(|l| l.as_u64())
        .map_or(String::new(), |l| format!("{l}: "));
    format!(
        "{line}{} {}",
        d.get("code").and_then(|c| c.as_str()).unwrap_or(""),
        d.get("message").and_then(|m| m.as_str()).unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal's reason is kept for its study only, and a long one up to where a cookie can
    /// hold it, at a character's boundary.
    #[test]
    fn a_draft_is_kept_for_its_study() {
        let cookie = |id: &str, reason: &str| {
            let header = draft_cookie(id, reason).unwrap();
            let header = header.to_str().unwrap().to_owned();
            assert!(
                header.contains("HttpOnly; Secure; SameSite=Strict; Max-Age=900"),
                "{header}"
            );
            let value = header
                .strip_prefix("__Host-studyflow-draft=")
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            assert!(value.len() < 4000, "{}", value.len());
            value
        };
        let c = cookie("study-1", "Par vēlu ministrijai.\nOtrā rinda.");
        assert_eq!(
            draft_of(&c, "study-1").as_deref(),
            Some("Par vēlu ministrijai.\nOtrā rinda.")
        );
        assert_eq!(draft_of(&c, "study-2"), None);
        assert_eq!(draft_of("not base64!", "study-1"), None);
        let long = "ā".repeat(2_000);
        let kept = draft_of(&cookie("study-1", &long), "study-1").unwrap();
        assert!(kept.len() <= DRAFT_AT_MOST && long.starts_with(&kept) && !kept.is_empty());
    }

    /// A Latvian page says the checker's Latvian; only a finding without it is English there,
    /// and marked so.
    #[test]
    fn a_finding_is_said_in_the_pages_language() {
        let checked = studyflow_spec::check(b"id: [a, list]\n");
        let d = &checked.diagnostics[0];
        let latvian = d.message_lv.clone().unwrap();
        assert_eq!(said_in(d, Lang::Lv), (latvian, false));
        assert_eq!(said_in(d, Lang::En), (d.message.clone(), false));
        let mut english_only = d.clone();
        english_only.message_lv = None;
        assert_eq!(said_in(&english_only, Lang::Lv), (d.message.clone(), true));
    }
}
