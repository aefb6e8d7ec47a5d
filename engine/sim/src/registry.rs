//! The Information Centre (Punishment Register, MK403 p.13) and the Prison Administration
//! (p.15, p.16) as HTTP servers on loopback, answering from a synthetic population under the
//! contract in `docs/registries-api.md`, and able to misbehave on request so that tests can
//! show the engine copes: slow answers, server errors, malformed or truncated bodies, duplicate
//! rows, rows about subjects nobody asked about.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Map, Value};

use studyflow_spec::catalogue::{self, Source};

use crate::population::Client;

/// How the next answers go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Misbehaviour {
    /// Answer properly.
    None,
    /// Answer after `slow_ms` milliseconds.
    Slow,
    /// 503 Service Unavailable.
    ServerError,
    /// A body that is not JSON.
    Malformed,
    /// Every row twice.
    Duplicates,
    /// An extra row about a subject nobody asked about.
    UnknownSubjects,
    /// The body cut off in the middle.
    Truncated,
}

#[derive(Debug, Clone, Deserialize)]
struct Control {
    mode: Misbehaviour,
    /// For how many requests (then it behaves again).
    #[serde(default = "one")]
    times: u32,
    #[serde(default)]
    slow_ms: u64,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
struct Query {
    fields: Vec<String>,
    subjects: Vec<SubjectQuery>,
    /// The period the request asks about (MK403 p.3.3, p.12); all of the register without it.
    #[serde(default)]
    period: Option<PeriodQuery>,
    /// The day of the request: the register answers as it stood then, nothing later.
    #[serde(default)]
    as_of: Option<jiff::civil::Date>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct PeriodQuery {
    from: jiff::civil::Date,
    to: jiff::civil::Date,
}

/// What a request limits the answer to: the period its events fall in and the day it is made.
#[derive(Debug, Clone, Copy, Default)]
struct Limits {
    period: Option<PeriodQuery>,
    as_of: Option<jiff::civil::Date>,
}

impl Limits {
    fn of(request: &Value) -> Limits {
        Limits {
            period: serde_json::from_value(request["period"].clone()).ok(),
            as_of: serde_json::from_value(request["as_of"].clone()).ok(),
        }
    }

    /// Whether the register holds the proceeding as of the day, with its offence in the period.
    fn holds(&self, p: &crate::population::Proceeding) -> bool {
        self.as_of.is_none_or(|d| p.known_on(d))
            && self
                .period
                .is_none_or(|w| w.from <= p.offence_date && p.offence_date <= w.to)
    }

    /// A proceeding's value as the register knew it on the day.
    fn value(&self, p: &crate::population::Proceeding, key: &str) -> Option<Value> {
        match self.as_of {
            Some(day) => p.value_on(key, day),
            None => p.value(key),
        }
    }
}

#[derive(Debug, Deserialize)]
struct SubjectQuery {
    personal_code: String,
    /// The previous personal code, when it was changed (MK403 p.12.1).
    #[serde(default)]
    previous_personal_code: Option<String>,
}

struct Shared {
    clients: Arc<Vec<Client>>,
    /// Digits of a current or previous personal code → client.
    by_code: HashMap<String, usize>,
    mode: Mutex<(Misbehaviour, u32, u64)>,
    served: Mutex<u64>,
}

fn digits(code: &str) -> String {
    code.chars().filter(char::is_ascii_digit).collect()
}

/// A running pair of registries.
pub struct Registries {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Registries {
    /// Starts both registries on a free loopback port, answering about `clients` (shared, not
    /// copied: a million clients take a gigabyte).
    pub async fn start(clients: impl Into<Arc<Vec<Client>>>) -> std::io::Result<Registries> {
        let clients = clients.into();
        let mut by_code = HashMap::with_capacity(clients.len() * 2);
        for (i, c) in clients.iter().enumerate() {
            by_code.insert(digits(&c.personal_code.expose()), i);
            if let Some(p) = &c.previous_personal_code {
                by_code.insert(digits(&p.expose()), i);
            }
        }
        let shared = Arc::new(Shared {
            clients,
            by_code,
            mode: Mutex::new((Misbehaviour::None, 0, 0)),
            served: Mutex::new(0),
        });
        let app = Router::new()
            .route("/v1/information-centre/query", post(information_centre))
            .route(
                "/v1/prison-administration/query",
                post(prison_administration),
            )
            .route("/v1/control", post(control))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Registries { addr, shared, task })
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes the next `times` answers misbehave.
    pub fn misbehave(&self, mode: Misbehaviour, times: u32, slow_ms: u64) {
        *self.shared.mode.lock().unwrap_or_else(|e| e.into_inner()) = (mode, times, slow_ms);
    }

    /// Plays the registries' clerks for the secure electronic exchange (MK403 p.12.3, p.14.2):
    /// answers every request folder in `outbox` (`<id>/request.json`, the registry named by
    /// the id) that has no answer yet, writing `inbox/<id>/answer.json` and its
    /// `MANIFEST.sha256`, staged and renamed whole as a real exchange would deliver it.
    /// Returns how many requests it answered.
    pub fn answer_outbox(&self, outbox: &Path, inbox: &Path) -> std::io::Result<usize> {
        let Ok(entries) = std::fs::read_dir(outbox) else {
            return Ok(0);
        };
        let mut answered = 0;
        for entry in entries {
            let folder = entry?.path();
            let Some(id) = folder
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned)
            else {
                continue;
            };
            let registry = if id.contains("information-centre") {
                Registry::InformationCentre
            } else if id.contains("prison-administration") {
                Registry::PrisonAdministration
            } else {
                continue;
            };
            let target = inbox.join(&id);
            let Ok(request) = std::fs::read(folder.join("request.json")) else {
                continue;
            };
            if id.starts_with('.') || target.exists() {
                continue;
            }
            let body = self.answer(registry, &request)?;
            let staging = inbox.join(format!(".{id}.partial"));
            let _ = std::fs::remove_dir_all(&staging);
            std::fs::create_dir_all(&staging)?;
            std::fs::write(staging.join("answer.json"), &body)?;
            std::fs::write(
                staging.join("MANIFEST.sha256"),
                format!("{}  answer.json\n", sha256_hex(&body)),
            )?;
            std::fs::rename(&staging, &target)?;
            answered += 1;
        }
        Ok(answered)
    }

    /// A registry clerk's answer (`answer.json`) to a request file of the secure electronic
    /// exchange (`request.json`, as the Service's outbox holds it): the rows the registry
    /// holds about the subjects named, within the period asked about.
    pub fn answer(&self, registry: Registry, request: &[u8]) -> std::io::Result<Vec<u8>> {
        let request: Value = serde_json::from_slice(request)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let fields: Vec<String> = request["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let codes: Vec<(&str, Option<&str>)> = request["subjects"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        Some((
                            x["personal_code"].as_str()?,
                            x["previous_personal_code"].as_str(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rows = rows_for(
            &self.shared,
            registry,
            &fields,
            &codes,
            Limits::of(&request),
        );
        serde_json::to_vec(&rows).map_err(std::io::Error::other)
    }

    /// Queries answered so far.
    pub fn served(&self) -> u64 {
        *self.shared.served.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Registries {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn control(State(s): State<Arc<Shared>>, Json(c): Json<Control>) -> StatusCode {
    *s.mode.lock().unwrap_or_else(|e| e.into_inner()) = (c.mode, c.times, c.slow_ms);
    StatusCode::NO_CONTENT
}

/// The misbehaviour for this request, counting it down.
fn take(s: &Shared) -> (Misbehaviour, u64) {
    *s.served.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    let mut m = s.mode.lock().unwrap_or_else(|e| e.into_inner());
    if m.1 == 0 {
        return (Misbehaviour::None, 0);
    }
    m.1 -= 1;
    (m.0, m.2)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({"error": message}))).into_response()
}

/// The rows answering `codes` for `fields`, as a registry holds them, each with the personal
/// code it was asked by.
/// The rows answering each subject asked about — found by its personal code, or by the
/// previous one (MK403 p.12.1) — each row naming the subject by the code it was asked by.
fn rows_for(
    s: &Shared,
    registry: Registry,
    fields: &[String],
    subjects: &[(&str, Option<&str>)],
    limits: Limits,
) -> Vec<Value> {
    let mut rows: Vec<Value> = Vec::new();
    for (code, previous) in subjects {
        let Some(&i) = s
            .by_code
            .get(&digits(code))
            .or_else(|| previous.and_then(|p| s.by_code.get(&digits(p))))
        else {
            continue;
        };
        for mut values in registry.rows_of(&s.clients[i], fields, &limits) {
            values.insert("personal_code".into(), Value::String((*code).to_owned()));
            rows.push(Value::Object(values));
        }
    }
    rows
}

async fn answer(s: Arc<Shared>, q: Query, registry: Registry) -> Response {
    let limits = Limits {
        period: q.period,
        as_of: q.as_of,
    };
    let rows_of = |c: &Client| registry.rows_of(c, &q.fields, &limits);
    let (mode, slow_ms) = take(&s);
    if let Some(f) = q.fields.iter().find(|f| !registry.knows(f)) {
        return error(StatusCode::BAD_REQUEST, format!("unknown field `{f}`"));
    }
    if mode == Misbehaviour::ServerError {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the register is being maintained".into(),
        );
    }
    if mode == Misbehaviour::Slow {
        tokio::time::sleep(Duration::from_millis(slow_ms.max(1))).await;
    }
    let codes: Vec<(&str, Option<&str>)> = q
        .subjects
        .iter()
        .map(|x| {
            (
                x.personal_code.as_str(),
                x.previous_personal_code.as_deref(),
            )
        })
        .collect();
    let mut rows = rows_for(&s, registry, &q.fields, &codes, limits);
    match mode {
        Misbehaviour::Duplicates => {
            let copy = rows.clone();
            rows.extend(copy);
        }
        Misbehaviour::UnknownSubjects => {
            // Someone nobody asked about who has at least one row.
            let other = s.clients.iter().find(|c| {
                !rows_of(c).is_empty()
                    && !q
                        .subjects
                        .iter()
                        .any(|x| digits(&x.personal_code) == digits(&c.personal_code.expose()))
            });
            if let Some(other) = other
                && let Some(mut v) = rows_of(other).into_iter().next()
            {
                v.insert(
                    "personal_code".into(),
                    Value::String(other.personal_code.expose()),
                );
                rows.push(Value::Object(v));
            }
        }
        _ => {}
    }
    let body = serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into());
    let body = match mode {
        Misbehaviour::Malformed => format!("<html>{}", &body[..body.len().min(40)]),
        Misbehaviour::Truncated => body[..body.len() / 2].to_owned(),
        _ => body,
    };
    ([("content-type", "application/json")], body).into_response()
}

fn object(pairs: impl IntoIterator<Item = (String, Value)>) -> Map<String, Value> {
    pairs.into_iter().collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Which of the two registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    /// The Punishment Register, through the Information Centre: a row per proceeding (p.13).
    InformationCentre,
    /// The Prison Administration: a row per ruling, with resocialisation (p.15, p.16).
    PrisonAdministration,
}

impl Registry {
    fn knows(self, key: &str) -> bool {
        match self {
            Registry::InformationCentre => probe_proceeding(key),
            Registry::PrisonAdministration => probe_ruling(key),
        }
    }

    /// A client's rows with the asked fields that the registry holds.
    fn rows_of(self, c: &Client, fields: &[String], limits: &Limits) -> Vec<Map<String, Value>> {
        match self {
            Registry::InformationCentre => c
                .proceedings
                .iter()
                .filter(|p| limits.holds(p))
                .map(|p| {
                    object(
                        fields
                            .iter()
                            .filter_map(|k| Some((k.clone(), limits.value(p, k)?))),
                    )
                })
                .collect(),
            Registry::PrisonAdministration => c
                .rulings
                .iter()
                .map(|r| {
                    object(fields.iter().filter_map(|k| {
                        let v = r
                            .value(k)
                            .or_else(|| c.resocialisation.as_ref().and_then(|x| x.value(k)))?;
                        Some((k.clone(), v))
                    }))
                })
                .collect(),
        }
    }
}

async fn information_centre(State(s): State<Arc<Shared>>, Json(q): Json<Query>) -> Response {
    answer(s, q, Registry::InformationCentre).await
}

async fn prison_administration(State(s): State<Arc<Shared>>, Json(q): Json<Query>) -> Response {
    answer(s, q, Registry::PrisonAdministration).await
}

/// Whether `key` is a Punishment Register field (what a proceeding answers, p.13).
fn probe_proceeding(key: &str) -> bool {
    catalogue::lookup(Source::InformationCentre, key).is_some()
}

/// Whether `key` is a Prison Administration field (p.15 or p.16).
fn probe_ruling(key: &str) -> bool {
    catalogue::lookup(Source::PrisonRulings, key).is_some()
        || catalogue::lookup(Source::PrisonResocialisation, key).is_some()
}
