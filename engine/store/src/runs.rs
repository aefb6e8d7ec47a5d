//! Step runs: the engine's state machine in rows.
//!
//! `pending → ready → running → waiting → done | failed | cancelled`. A run is *claimable* when
//! its `claimable_at` instant has passed: a ready run (from when it became ready), a run
//! waiting on a timer or a retry (its `not_before`), a running run whose lease expired (its
//! `lease_until`). Human tasks are never claimable: a person completes them. Every claim bumps
//! the run's fencing token, and every write by a worker names the token it holds, so a worker
//! whose lease was taken over cannot write late.

use sqlx::Row;

use crate::audit::{AuditEvent, push_audit};
use crate::{Backend, Result, Store, StoreError, in_tx, on_pool};

/// The states of a step run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunState {
    Pending,
    Ready,
    Running,
    Waiting,
    Done,
    Failed,
    Cancelled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Ready => "ready",
            RunState::Running => "running",
            RunState::Waiting => "waiting",
            RunState::Done => "done",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        Some(match s {
            "pending" => RunState::Pending,
            "ready" => RunState::Ready,
            "running" => RunState::Running,
            "waiting" => RunState::Waiting,
            "done" => RunState::Done,
            "failed" => RunState::Failed,
            "cancelled" => RunState::Cancelled,
            _ => return None,
        })
    }

    /// Not finished: the study is not complete while one of its runs is in such a state.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RunState::Pending | RunState::Ready | RunState::Running | RunState::Waiting
        )
    }
}

/// Who executes a run: the engine, a person, or both in turn. Stored as the `human` column
/// (0–3); a run's mode never changes, its state says which part is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskMode {
    /// A worker executes the body.
    Engine,
    /// A person completes it; there is no body.
    Task,
    /// A worker executes the body first (it prepares), then the run waits for a person, whose
    /// completion finishes it.
    PrepareThenTask,
    /// A person completes it first, then a worker executes the body (it imports what the
    /// person supplied), which finishes it.
    TaskThenApply,
}

impl TaskMode {
    pub fn code(self) -> i64 {
        match self {
            TaskMode::Engine => 0,
            TaskMode::Task => 1,
            TaskMode::PrepareThenTask => 2,
            TaskMode::TaskThenApply => 3,
        }
    }

    pub fn from_code(code: i64) -> TaskMode {
        match code {
            1 => TaskMode::Task,
            2 => TaskMode::PrepareThenTask,
            3 => TaskMode::TaskThenApply,
            _ => TaskMode::Engine,
        }
    }

    /// Whether a person takes part.
    pub fn is_human(self) -> bool {
        self != TaskMode::Engine
    }
}

/// A run to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// The idempotency key: study, version, step and, per subject, the subject.
    pub key: String,
    pub study: String,
    pub version: i64,
    pub step: String,
    /// The study pseudonym of the subject, or empty for a study-level run.
    pub subject: String,
    pub kind: String,
    pub actor: String,
    pub mode: TaskMode,
    /// Timer: not before this instant (µs), with the rule and calendar version behind it.
    pub not_before: Option<i64>,
    pub timer_rule: Option<String>,
    pub calendar_version: Option<String>,
    /// Deadline instant (µs) and its rule.
    pub due_at: Option<i64>,
    pub deadline_rule: Option<String>,
    /// The MK403 point the deadline rests on (raised with an overdue event).
    pub deadline_point: Option<String>,
    pub max_attempts: i64,
    /// Created already done (the approval and the contract gate, recorded by their commands).
    pub done_by: Option<String>,
    /// Keys of the runs it waits for.
    pub deps: Vec<String>,
}

/// A claimed run: what the worker needs to execute it and to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub key: String,
    pub study: String,
    pub version: i64,
    pub step: String,
    pub subject: String,
    pub kind: String,
    /// `PrepareThenTask`: the body prepares what the task shows; `TaskThenApply`: the person
    /// has completed the task and the body imports what they supplied.
    pub mode: TaskMode,
    pub fence: i64,
    pub attempts: i64,
    pub max_attempts: i64,
}

/// The runs of one step, version, state and wait reason, summed by the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunGroup {
    pub step: String,
    pub version: i64,
    pub state: RunState,
    pub wait_reason: Option<String>,
    pub runs: i64,
    /// The first run's id: steps are shown in the order their runs were made.
    pub first_id: i64,
    pub per_subject: bool,
    pub next_at: Option<i64>,
    pub due_max: Option<i64>,
    /// Runs with a deadline before `now`, and the earliest of those deadlines.
    pub past_due: i64,
    pub past_due_min: Option<i64>,
    /// Runs finished after their deadline, the earliest such deadline and the latest finish.
    pub done_late: i64,
    pub done_late_due: Option<i64>,
    pub done_late_at: Option<i64>,
    pub rule: Option<String>,
    pub last_error: Option<String>,
}

/// A run as `status` and `tasks` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    pub key: String,
    pub study: String,
    pub version: i64,
    pub step: String,
    pub subject: String,
    pub kind: String,
    pub actor: String,
    pub human: bool,
    pub mode: TaskMode,
    pub state: RunState,
    pub wait_reason: Option<String>,
    pub not_before: Option<i64>,
    pub timer_rule: Option<String>,
    pub due_at: Option<i64>,
    pub deadline_rule: Option<String>,
    pub overdue_flagged: bool,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub output: Option<String>,
    pub completed_by: Option<String>,
    pub updated_at: i64,
}

/// Who may finish a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The worker holding this fencing token.
    Running { fence: i64 },
    /// A person completing a human task.
    Task,
}

/// A study started, or re-planned after an amendment (see [`Store::activate`]).
#[derive(Debug, Clone, Copy)]
pub struct Activation<'a> {
    pub study: &'a str,
    pub version: i64,
    /// The study states it may be in.
    pub from_states: &'a [crate::StudyState],
    /// Cancel the runs not started yet: they follow the new plan.
    pub replace_unstarted: bool,
    pub runs: &'a [NewRun],
    pub now: i64,
    pub audit: &'a [AuditEvent],
}

/// A run finished, with what it produced: new runs (the subjects' runs a cohort step
/// creates), new dependencies, and the audit events of the finish.
#[derive(Debug, Clone)]
pub struct Finish {
    pub run: i64,
    pub expect: Expect,
    pub output: String,
    pub completed_by: String,
    pub now: i64,
    pub new_runs: Vec<NewRun>,
    /// (dependency key, dependent key) pairs between existing or new runs.
    pub new_edges: Vec<(String, String)>,
    pub audit: Vec<AuditEvent>,
    /// What the finished run tells the store to do beyond its own bookkeeping, in the same
    /// transaction. The store acts on these alone; it never infers them from a step's kind or
    /// from what a run recorded.
    pub effects: Vec<Effect>,
}

/// An explicit effect of a finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The destruction of everything identifying of the run's study (MK403 p.26): its
    /// identifying datasets, its keys, the per-subject timers derived from anchor dates and
    /// the per-subject runs' outputs, and the recorded outputs that held the cohort's
    /// pseudonyms with their anchor dates, each replaced by the given text (run id, output
    /// without them).
    DestroyIdentifying { rewrite_outputs: Vec<(i64, String)> },
}

/// Runs an amendment leaves be: running or done, and the half-done tasks with bodies — prepared
/// and waiting for their person (mode 2: the request may have been sent), or completed by their
/// person and waiting for the body (mode 3: the person's part is not thrown away).
macro_rules! started {
    () => {
        "(state IN ('running', 'done') OR (human = 2 AND state = 'waiting' AND wait_reason = 'task') OR (human = 3 AND state = 'ready'))"
    };
}

const RUN_COLUMNS: &str = "id, run_key, study, version, step, subject, kind, actor, human, state, wait_reason, not_before, timer_rule, due_at, deadline_rule, overdue_flagged, attempts, last_error, output, completed_by, updated_at";

macro_rules! run_from {
    ($r:expr) => {{
        let state: String = $r.try_get("state")?;
        RunRow {
            id: $r.try_get("id")?,
            key: $r.try_get("run_key")?,
            study: $r.try_get("study")?,
            version: $r.try_get("version")?,
            step: $r.try_get("step")?,
            subject: $r.try_get("subject")?,
            kind: $r.try_get("kind")?,
            actor: $r.try_get("actor")?,
            human: $r.try_get::<i64, _>("human")? != 0,
            mode: TaskMode::from_code($r.try_get::<i64, _>("human")?),
            state: RunState::parse(&state).ok_or_else(|| {
                StoreError::Conflict(format!("unknown run state `{state}` in the database"))
            })?,
            wait_reason: $r.try_get("wait_reason")?,
            not_before: $r.try_get("not_before")?,
            timer_rule: $r.try_get("timer_rule")?,
            due_at: $r.try_get("due_at")?,
            deadline_rule: $r.try_get("deadline_rule")?,
            overdue_flagged: $r.try_get::<i64, _>("overdue_flagged")? != 0,
            attempts: $r.try_get("attempts")?,
            last_error: $r.try_get("last_error")?,
            output: $r.try_get("output")?,
            completed_by: $r.try_get("completed_by")?,
            updated_at: $r.try_get("updated_at")?,
        }
    }};
}

/// `IN (…)` of integer ids (formatted, never user text).
fn id_list(ids: &[i64]) -> String {
    let v: Vec<String> = ids.iter().map(i64::to_string).collect();
    v.join(",")
}

/// Inserts runs and their dependencies inside a transaction, a few hundred rows per statement;
/// returns the new runs' ids (a run whose key exists already is left as it is and not returned)
/// and the ids of the dependents of `$edges`.
macro_rules! insert_runs {
    ($tx:expr, $backend:expr, $runs:expr, $edges:expr, $now:expr) => {{
        let runs: &[NewRun] = $runs;
        let extra: &[(String, String)] = $edges;
        let mut ids: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        let mut created: Vec<i64> = Vec::new();
        for chunk in runs.chunks($crate::audit::rows_at_once($backend, 19, 400)) {
            let sql = $crate::audit::multi_insert(
                "INSERT INTO step_runs (run_key, study, version, step, subject, kind, actor, human, state,
                    not_before, timer_rule, calendar_version, due_at, deadline_rule, deadline_point,
                    max_attempts, completed_by, created_at, updated_at)",
                19,
                chunk.len(),
                " ON CONFLICT (run_key) DO NOTHING RETURNING id, run_key",
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(&r.key)
                    .bind(&r.study)
                    .bind(r.version)
                    .bind(&r.step)
                    .bind(&r.subject)
                    .bind(&r.kind)
                    .bind(&r.actor)
                    .bind(r.mode.code())
                    .bind(if r.done_by.is_some() { "done" } else { "pending" })
                    .bind(r.not_before)
                    .bind(&r.timer_rule)
                    .bind(&r.calendar_version)
                    .bind(r.due_at)
                    .bind(&r.deadline_rule)
                    .bind(&r.deadline_point)
                    .bind(r.max_attempts)
                    .bind(&r.done_by)
                    .bind($now)
                    .bind($now);
            }
            for row in q.fetch_all(&mut *$tx).await? {
                let id: i64 = row.try_get("id")?;
                created.push(id);
                ids.insert(row.try_get("run_key")?, id);
            }
        }
        let mut edges: Vec<(&str, &str)> = Vec::new();
        for r in runs {
            for d in &r.deps {
                edges.push((d.as_str(), r.key.as_str()));
            }
        }
        for (d, r) in extra {
            edges.push((d.as_str(), r.as_str()));
        }
        // Resolve the keys not created here (runs that existed before).
        let mut unknown: Vec<&str> = edges
            .iter()
            .flat_map(|(d, r)| [*d, *r])
            .filter(|k| !ids.contains_key(*k))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        for chunk in unknown.chunks($crate::audit::rows_at_once($backend, 1, 500)) {
            let mut sql = String::from("SELECT id, run_key FROM step_runs WHERE run_key IN (");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", i + 1));
            }
            sql.push(')');
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for k in chunk {
                q = q.bind(*k);
            }
            for row in q.fetch_all(&mut *$tx).await? {
                ids.insert(row.try_get("run_key")?, row.try_get("id")?);
            }
        }
        let mut pairs: Vec<(i64, i64)> = Vec::with_capacity(edges.len());
        for (dep, run) in &edges {
            match (ids.get(*run), ids.get(*dep)) {
                (Some(r), Some(d)) => pairs.push((*r, *d)),
                _ => {
                    return Err(StoreError::NotFound(format!(
                        "a dependency names a run that does not exist: {dep} → {run}"
                    )));
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        for chunk in pairs.chunks($crate::audit::rows_at_once($backend, 2, 1000)) {
            let sql = $crate::audit::multi_insert("INSERT INTO step_deps (run, dep)", 2, chunk.len(), " ON CONFLICT DO NOTHING");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (r, d) in chunk {
                q = q.bind(*r).bind(*d);
            }
            q.execute(&mut *$tx).await?;
        }
        let targets: Vec<i64> = extra.iter().filter_map(|(_, r)| ids.get(r.as_str()).copied()).collect();
        (created, targets)
    }};
}

/// Makes every candidate run whose dependencies are all done ready (or waiting: for its timer,
/// or for a person), a thousand at a time; pushes an audit event per change.
macro_rules! promote {
    ($tx:expr, $backend:expr, $candidates:expr, $now:expr, $audit:expr) => {{
        let mut ids: Vec<i64> = $candidates;
        let mut woken = false;
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(1000) {
            let list = id_list(chunk);
            if $backend == Backend::Postgres {
                // Lock the dependents (in id order) before reading their dependencies: two
                // workers finishing a run's last two dependencies then see each other's commit.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT id FROM step_runs WHERE id IN ({list}) AND state = 'pending' ORDER BY id FOR UPDATE"
                )))
                .execute(&mut *$tx)
                .await?;
            }
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE step_runs SET
                    state = CASE WHEN human IN (1, 3) OR (not_before IS NOT NULL AND not_before > $1) THEN 'waiting' ELSE 'ready' END,
                    wait_reason = CASE WHEN human IN (1, 3) THEN 'task' WHEN not_before IS NOT NULL AND not_before > $1 THEN 'timer' ELSE NULL END,
                    claimable_at = CASE WHEN human IN (1, 3) THEN NULL WHEN not_before IS NOT NULL AND not_before > $1 THEN not_before ELSE $1 END,
                    updated_at = $1
                 WHERE id IN ({list}) AND state = 'pending'
                   AND NOT EXISTS (SELECT 1 FROM step_deps d JOIN step_runs x ON x.id = d.dep
                                   WHERE d.run = step_runs.id AND x.state <> 'done')
                 RETURNING study, step, subject, state, wait_reason"
            )))
            .bind($now)
            .fetch_all(&mut *$tx)
            .await?;
            for r in rows {
                let state: String = r.try_get("state")?;
                if $backend == Backend::Postgres && state == "ready" && !woken {
                    // Delivered at commit: idle workers LISTENing wake at once.
                    sqlx::query("SELECT pg_notify('studyflow_ready', '')")
                        .execute(&mut *$tx)
                        .await?;
                    woken = true;
                }
                let reason: Option<String> = r.try_get("wait_reason")?;
                $audit.push(AuditEvent {
                    at: $now,
                    actor: "engine".into(),
                    action: format!("step.{state}"),
                    object: object(&r.try_get::<String, _>("study")?, &r.try_get::<String, _>("step")?, &r.try_get::<String, _>("subject")?),
                    point: String::new(),
                    detail: match reason {
                        Some(w) => format!("{{\"waiting_for\":\"{w}\"}}"),
                        None => "{}".into(),
                    },
                });
            }
        }
    }};
}

/// Locks study rows (PostgreSQL) in id order and returns their states. Every transaction that
/// changes a study's runs takes its study's lock first: studies, then runs by id, then their
/// dependents by id — one order, so no deadlock; and a transaction that checks whether a study
/// is complete sees the commits of the others.
macro_rules! lock_studies {
    ($tx:expr, $backend:expr, $studies:expr) => {
        lock_studies!($tx, $backend, $studies, "FOR UPDATE")
    };
    ($tx:expr, $backend:expr, $studies:expr, $mode:literal) => {{
        let mut ids: Vec<String> = $studies;
        ids.sort();
        ids.dedup();
        let mut states: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        for id in &ids {
            let sql = match $backend {
                Backend::Postgres => concat!("SELECT state FROM studies WHERE id = $1 ", $mode),
                Backend::Sqlite => "SELECT state FROM studies WHERE id = $1",
            };
            if let Some(state) = sqlx::query_scalar::<_, String>(sql)
                .bind(id)
                .fetch_optional(&mut *$tx)
                .await?
            {
                states.insert(id.clone(), state);
            }
        }
        states
    }};
}

/// The audit object of a run: `study/step` or `study/step/subject`.
pub fn object(study: &str, step: &str, subject: &str) -> String {
    if subject.is_empty() {
        format!("{study}/{step}")
    } else {
        format!("{study}/{step}/{subject}")
    }
}

/// Marks the study completed when none of its runs is active. On PostgreSQL two transactions
/// finishing a study's last runs at once would each see the other's run still running; when
/// only running runs and open tasks are left, the check is therefore made under a per-study
/// advisory lock, after which each sees the other's commit.
macro_rules! complete_study_if_done {
    ($tx:expr, $backend:expr, $study:expr, $now:expr, $audit:expr) => {{
        let study: String = $study.to_owned();
        // Runs nobody can be finishing right now: they keep the study open for sure.
        let settled: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM step_runs WHERE study = $1
               AND (state IN ('pending', 'ready') OR (state = 'waiting' AND wait_reason <> 'task')) LIMIT 1",
        )
        .bind(&study)
        .fetch_optional(&mut *$tx)
        .await?;
        if settled.is_none() {
            if $backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1)::bigint)")
                    .bind(&study)
                    .execute(&mut *$tx)
                    .await?;
            }
            let active: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM step_runs WHERE study = $1 AND state IN ('pending', 'ready', 'running', 'waiting') LIMIT 1",
            )
            .bind(&study)
            .fetch_optional(&mut *$tx)
            .await?;
            if active.is_none() {
                let n = sqlx::query("UPDATE studies SET state = 'completed', updated_at = $1 WHERE id = $2 AND state = 'running'")
                    .bind($now)
                    .bind(&study)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected();
                if n == 1 {
                    $audit.push(AuditEvent::new($now, "engine", "study.completed", study.clone(), "p.26", "{}"));
                }
            }
        }
    }};
}

impl Store {
    /// Starts (or, after an amendment, re-plans) a study: cancels the runs not yet started
    /// when `replace_unstarted` (they follow the newly approved plan instead), inserts `runs`,
    /// makes the study `running` at `version`, and readies what can run.
    pub async fn activate(&self, a: &Activation<'_>) -> Result<usize> {
        let Activation {
            study,
            version,
            from_states,
            replace_unstarted,
            runs,
            now,
            audit,
        } = *a;
        Ok(in_tx!(self, |tx, backend| {
            let states = lock_studies!(tx, backend, vec![study.to_owned()]);
            match states.get(study) {
                Some(s) if from_states.iter().any(|f| f.as_str() == s.as_str()) => {}
                Some(s) => {
                    let expected: Vec<&str> = from_states.iter().map(|f| f.as_str()).collect();
                    return Err(StoreError::Conflict(format!(
                        "study `{study}` is {s}; expected {}",
                        expected.join(" or ")
                    )));
                }
                None => return Err(StoreError::NotFound(format!("no study `{study}`"))),
            }
            // What ran or runs now stays: a new run for the same step and subject is not made,
            // and whoever depends on it depends on the run that did it (read under the study's
            // lock, so no worker finishes or claims for this study in between unseen).
            let started = sqlx::query(concat!(
                "SELECT run_key, step, subject FROM step_runs WHERE study = $1 AND ",
                started!()
            ))
            .bind(study)
            .fetch_all(&mut *tx)
            .await?;
            let mut existing: std::collections::HashMap<(String, String), String> =
                std::collections::HashMap::new();
            for r in started {
                existing.insert(
                    (r.try_get("step")?, r.try_get("subject")?),
                    r.try_get("run_key")?,
                );
            }
            let mut remap: std::collections::HashMap<String, String> =
                std::collections::HashMap::new();
            for r in runs {
                if let Some(k) = existing.get(&(r.step.clone(), r.subject.clone())) {
                    remap.insert(r.key.clone(), k.clone());
                }
            }
            let runs: Vec<NewRun> = runs
                .iter()
                .filter(|r| !remap.contains_key(&r.key))
                .map(|r| {
                    let mut r = r.clone();
                    for d in &mut r.deps {
                        if let Some(k) = remap.get(d) {
                            *d = k.clone();
                        }
                    }
                    r
                })
                .collect();
            let mut events: Vec<AuditEvent> = audit.to_vec();
            if replace_unstarted {
                // Not started: follows the new plan — unless a new run depends on it.
                let needed: std::collections::HashSet<&str> = runs
                    .iter()
                    .flat_map(|r| r.deps.iter().map(String::as_str))
                    .collect();
                let candidates = sqlx::query(
                    concat!(
                        "SELECT id, run_key, step, subject FROM step_runs WHERE study = $1 AND state IN ('pending', 'ready', 'waiting') AND NOT ",
                        started!()
                    ),
                )
                .bind(study)
                .fetch_all(&mut *tx)
                .await?;
                let mut ids = Vec::new();
                for r in candidates {
                    let key: String = r.try_get("run_key")?;
                    if needed.contains(key.as_str()) {
                        continue;
                    }
                    ids.push(r.try_get::<i64, _>("id")?);
                    events.push(AuditEvent::new(
                        now,
                        "engine",
                        "step.cancelled",
                        object(
                            study,
                            &r.try_get::<String, _>("step")?,
                            &r.try_get::<String, _>("subject")?,
                        ),
                        "p.3",
                        format!("{{\"replaced_by_version\":{version}}}"),
                    ));
                }
                for chunk in ids.chunks(1000) {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE step_runs SET state = 'cancelled', claimable_at = NULL, updated_at = $1 WHERE id IN ({})",
                        id_list(chunk)
                    )))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let no_edges: Vec<(String, String)> = Vec::new();
            let (created, _) = insert_runs!(tx, backend, &runs, &no_edges, now);
            sqlx::query("UPDATE studies SET state = 'running', active_version = $1, updated_at = $2 WHERE id = $3")
                .bind(version)
                .bind(now)
                .bind(study)
                .execute(&mut *tx)
                .await?;
            promote!(tx, backend, created.clone(), now, events);
            push_audit!(self, tx, &events);
            created.len()
        }))
    }

    /// Claims up to `limit` claimable runs for `owner` until `lease_until`.
    pub async fn claim(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>> {
        Ok(in_tx!(self, |tx, backend| {
            // A run claimed `max_attempts` times without finishing (its workers crashed or
            // hung each time) fails for good instead of taking workers down again.
            let poisoned = sqlx::query(
                "UPDATE step_runs SET state = 'failed', claimable_at = NULL, lease_owner = NULL, lease_until = NULL,
                    last_error = 'claimed the maximum number of times without finishing', updated_at = $1
                 WHERE claimable_at <= $1 AND attempts >= max_attempts RETURNING study, step, subject",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            let mut events = Vec::new();
            for r in poisoned {
                events.push(AuditEvent::new(
                    now,
                    owner,
                    "step.failed",
                    object(
                        &r.try_get::<String, _>("study")?,
                        &r.try_get::<String, _>("step")?,
                        &r.try_get::<String, _>("subject")?,
                    ),
                    "",
                    "{\"because\":\"attempts exhausted\"}",
                ));
            }
            let sql = match backend {
                Backend::Postgres => {
                    "UPDATE step_runs SET state = 'running', wait_reason = NULL, lease_owner = $1, lease_until = $2,
                        claimable_at = $2, fence = fence + 1, attempts = attempts + 1, updated_at = $3
                     WHERE id IN (SELECT id FROM step_runs WHERE claimable_at <= $3 AND attempts < max_attempts
                                  ORDER BY claimable_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
                     RETURNING id, run_key, study, version, step, subject, kind, human, fence, attempts, max_attempts"
                }
                Backend::Sqlite => {
                    "UPDATE step_runs SET state = 'running', wait_reason = NULL, lease_owner = $1, lease_until = $2,
                        claimable_at = $2, fence = fence + 1, attempts = attempts + 1, updated_at = $3
                     WHERE id IN (SELECT id FROM step_runs WHERE claimable_at <= $3 AND attempts < max_attempts
                                  ORDER BY claimable_at, id LIMIT $4)
                     RETURNING id, run_key, study, version, step, subject, kind, human, fence, attempts, max_attempts"
                }
            };
            let rows = sqlx::query(sql)
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let c = Claimed {
                    id: r.try_get("id")?,
                    key: r.try_get("run_key")?,
                    study: r.try_get("study")?,
                    version: r.try_get("version")?,
                    step: r.try_get("step")?,
                    subject: r.try_get("subject")?,
                    kind: r.try_get("kind")?,
                    mode: TaskMode::from_code(r.try_get("human")?),
                    fence: r.try_get("fence")?,
                    attempts: r.try_get("attempts")?,
                    max_attempts: r.try_get("max_attempts")?,
                };
                events.push(AuditEvent {
                    at: now,
                    actor: owner.to_owned(),
                    action: "step.running".into(),
                    object: object(&c.study, &c.step, &c.subject),
                    point: String::new(),
                    detail: format!(
                        "{{\"attempt\":{},\"fence\":{},\"version\":{}}}",
                        c.attempts, c.fence, c.version
                    ),
                });
                out.push(c);
            }
            out.sort_by_key(|c| c.id);
            push_audit!(self, tx, &events);
            if !out.is_empty() {
                crate::failpoint::hit("claim").await;
            }
            out
        }))
    }

    /// Extends the leases of a worker's batch, runs already finished in it included (they
    /// stay `running` until the batch commits); returns how many are still the worker's.
    pub async fn heartbeat_many(&self, owner: &str, runs: &[i64], lease_until: i64) -> Result<u64> {
        if runs.is_empty() {
            return Ok(0);
        }
        Ok(on_pool!(self, |p| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE step_runs SET lease_until = $1, claimable_at = $1
                 WHERE state = 'running' AND lease_owner = $2 AND id IN ({})",
                id_list(runs)
            )))
            .bind(lease_until)
            .bind(owner)
            .execute(p)
            .await?
            .rows_affected()
        }))
    }

    /// Extends a lease; `false` when the run is no longer this worker's (taken over).
    pub async fn heartbeat(&self, run: i64, fence: i64, lease_until: i64) -> Result<bool> {
        Ok(on_pool!(self, |p| {
            sqlx::query(
                "UPDATE step_runs SET lease_until = $1, claimable_at = $1
                 WHERE id = $2 AND fence = $3 AND state = 'running'",
            )
            .bind(lease_until)
            .bind(run)
            .bind(fence)
            .execute(p)
            .await?
            .rows_affected()
                == 1
        }))
    }

    /// Finishes a run, atomically with what it produced. `Ok(false)` when the run is not in
    /// the expected state (a stale fencing token, a task already completed): nothing changes.
    pub async fn finish(&self, f: &Finish) -> Result<bool> {
        Ok(self
            .finish_many(std::slice::from_ref(f))
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// Finishes several runs in one transaction (a worker's batch: one commit instead of one
    /// per run). Each finish is checked on its own (`false` for a stale one, which changes
    /// nothing); the rest commit together. Rows are locked in one global order — the finished
    /// runs by id, then their dependents by id — so concurrent batches cannot deadlock.
    pub async fn finish_many(&self, fs: &[Finish]) -> Result<Vec<bool>> {
        let mut order: Vec<usize> = (0..fs.len()).collect();
        order.sort_by_key(|&i| fs[i].run);
        let mut results = vec![false; fs.len()];
        in_tx!(self, |tx, backend| {
            let ids: Vec<i64> = fs.iter().map(|f| f.run).collect();
            let studies: Vec<String> = if ids.is_empty() {
                Vec::new()
            } else {
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT DISTINCT study FROM step_runs WHERE id IN ({})",
                    id_list(&ids)
                )))
                .fetch_all(&mut *tx)
                .await?
            };
            // Shared: finishers of one study do not wait for each other, but `terminate` and
            // `activate` (exclusive) do not run in between.
            let states = lock_studies!(tx, backend, studies, "FOR SHARE");
            let mut events: Vec<AuditEvent> = Vec::new();
            let mut candidates: Vec<i64> = Vec::new();
            let mut touched: Vec<String> = Vec::new();
            let mut woken = false;
            let mut now = 0;
            for &i in &order {
                let f = &fs[i];
                let (sql, fence) = match f.expect {
                    Expect::Running { fence } => (
                        // A prepared run (mode 2) now waits for its person.
                        "UPDATE step_runs SET state = CASE WHEN human = 2 THEN 'waiting' ELSE 'done' END,
                            wait_reason = CASE WHEN human = 2 THEN 'task' ELSE NULL END, claimable_at = NULL, lease_owner = NULL,
                            lease_until = NULL, output = $1,
                            completed_by = CASE WHEN human = 3 THEN completed_by ELSE $2 END, updated_at = $3
                         WHERE id = $4 AND state = 'running' AND fence = $5 RETURNING study, step, subject, kind, actor, state",
                        fence,
                    ),
                    Expect::Task => (
                        // A task with a body after it (mode 3) becomes claimable for that body.
                        "UPDATE step_runs SET state = CASE WHEN human = 3 THEN 'ready' ELSE 'done' END, wait_reason = NULL,
                            claimable_at = CASE WHEN human = 3 THEN $3 ELSE NULL END, output = $1,
                            completed_by = $2, updated_at = $3
                         WHERE id = $4 AND state = 'waiting' AND wait_reason = 'task' AND fence >= $5
                           AND (not_before IS NULL OR not_before <= $3) RETURNING study, step, subject, kind, actor, state",
                        0,
                    ),
                };
                let Some(row) = sqlx::query(sql)
                    .bind(&f.output)
                    .bind(&f.completed_by)
                    .bind(f.now)
                    .bind(f.run)
                    .bind(fence)
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    continue;
                };
                let study: String = row.try_get("study")?;
                let state: String = row.try_get("state")?;
                results[i] = true;
                now = now.max(f.now);
                events.extend(f.audit.iter().cloned());
                if state != "done" {
                    // Half of a task-with-body is done; the other half follows. Nothing else
                    // changes until the run is done.
                    let object = object(
                        &study,
                        &row.try_get::<String, _>("step")?,
                        &row.try_get::<String, _>("subject")?,
                    );
                    if state == "ready" && backend == Backend::Postgres && !woken {
                        sqlx::query("SELECT pg_notify('studyflow_ready', '')")
                            .execute(&mut *tx)
                            .await?;
                        woken = true;
                    }
                    let reason = if state == "ready" {
                        "{}"
                    } else {
                        "{\"waiting_for\":\"task\"}"
                    };
                    events.push(AuditEvent::new(
                        f.now,
                        "engine",
                        format!("step.{state}"),
                        object,
                        "",
                        reason,
                    ));
                    continue;
                }
                // A terminated study grows no new runs (a cohort finishing after `terminate`).
                if states.get(&study).map(String::as_str) != Some("terminated") {
                    let (created, targets) =
                        insert_runs!(tx, backend, &f.new_runs, &f.new_edges, f.now);
                    candidates.extend(created);
                    candidates.extend(targets);
                }
                let deps: Vec<i64> = sqlx::query_scalar("SELECT run FROM step_deps WHERE dep = $1")
                    .bind(f.run)
                    .fetch_all(&mut *tx)
                    .await?;
                candidates.extend(deps);
                for Effect::DestroyIdentifying { rewrite_outputs } in &f.effects {
                    // What the engine itself kept about subjects goes with the rest (MK403 p.26):
                    // the cohort's pseudonyms with their anchor dates, and the timers derived
                    // from those dates.
                    for (run, output) in rewrite_outputs {
                        sqlx::query(
                            "UPDATE step_runs SET output = $1 WHERE study = $2 AND id = $3",
                        )
                        .bind(output)
                        .bind(&study)
                        .bind(run)
                        .execute(&mut *tx)
                        .await?;
                    }
                    // The per-subject runs' recorded outputs go too: a count of one subject's
                    // rows could single out its released row.
                    sqlx::query(
                        "UPDATE step_runs SET output = NULL WHERE study = $1 AND subject <> ''",
                    )
                    .bind(&study)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE step_runs SET not_before = NULL, timer_rule = NULL WHERE study = $1 AND subject <> '' AND state IN ('done', 'cancelled', 'failed')")
                        .bind(&study)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM datasets WHERE study = $1 AND identifying = 1")
                        .bind(&study)
                        .execute(&mut *tx)
                        .await?;
                    // The study's keys: every identifier encrypted under them is unreadable from
                    // now on, in this database and in any backup of it.
                    let destroyed = sqlx::query("DELETE FROM study_keys WHERE study = $1")
                        .bind(&study)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if destroyed > 0 {
                        events.push(AuditEvent::new(
                            now.max(f.now),
                            "engine",
                            "keys.destroyed",
                            study.clone(),
                            "p.26",
                            "{}",
                        ));
                    }
                }
                if !touched.contains(&study) {
                    touched.push(study);
                }
            }
            if !touched.is_empty() {
                promote!(tx, backend, candidates, now, events);
                for study in &touched {
                    complete_study_if_done!(tx, backend, study, now, events);
                }
            }
            // Half-finished runs (a task opened, a task handed to its body) have events too.
            if !events.is_empty() {
                push_audit!(self, tx, &events);
                if fs
                    .iter()
                    .any(|f| matches!(f.expect, Expect::Running { .. }))
                {
                    crate::failpoint::hit("commit").await;
                }
            }
        });
        Ok(results)
    }

    /// A run waiting for an external answer is looked at now (it was supplied); whether it
    /// was waiting.
    pub async fn wake_waiting(&self, run: i64, now: i64) -> Result<bool> {
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE step_runs SET not_before = $1, claimable_at = $1, updated_at = $1
                 WHERE id = $2 AND state = 'waiting' AND wait_reason = 'answer'",
            )
            .bind(now)
            .bind(run)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// A run waiting for an external answer: looked at again at `until`, the claim's attempt
    /// given back (waiting is not failing). `why` (nothing identifying) is shown as its last
    /// message.
    pub async fn wait_external(
        &self,
        run: i64,
        fence: i64,
        until: i64,
        now: i64,
        why: &str,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        Ok(in_tx!(self, |tx, _b| {
            let n = sqlx::query(
                "UPDATE step_runs SET state = 'waiting', wait_reason = 'answer', not_before = $1, claimable_at = $1,
                    attempts = attempts - 1, lease_owner = NULL, lease_until = NULL, updated_at = $2, last_error = $5
                 WHERE id = $3 AND state = 'running' AND fence = $4",
            )
            .bind(until)
            .bind(now)
            .bind(run)
            .bind(fence)
            .bind(why)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                push_audit!(self, tx, audit);
            }
            n == 1
        }))
    }

    /// Records a failed attempt: retried at `retry_at`, or failed for good when `None`.
    pub async fn fail(
        &self,
        run: i64,
        fence: i64,
        error: &str,
        now: i64,
        retry_at: Option<i64>,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        Ok(in_tx!(self, |tx, _b| {
            // No retry: failed for good; a retry: waiting until `retry_at`.
            let (state, reason) = match retry_at {
                Some(_) => ("waiting", Some("retry")),
                None => ("failed", None),
            };
            let n = sqlx::query(
                "UPDATE step_runs SET state = $1, wait_reason = $2, not_before = COALESCE($3, not_before),
                    claimable_at = $3, lease_owner = NULL, lease_until = NULL, last_error = $4, updated_at = $5
                 WHERE id = $6 AND state = 'running' AND fence = $7",
            )
            .bind(state)
            .bind(reason)
            .bind(retry_at)
            .bind(error)
            .bind(now)
            .bind(run)
            .bind(fence)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                push_audit!(self, tx, audit);
            }
            n == 1
        }))
    }

    /// Makes the failed runs of `step` of the running `version` of a study ready again, their attempts counted
    /// from zero (an operator's act once the input that failed them is fixed); returns how many.
    /// Their audit events commit with them.
    pub async fn retry_failed(
        &self,
        study: &str,
        version: i64,
        step: &str,
        now: i64,
        audit: &[AuditEvent],
    ) -> Result<u64> {
        Ok(in_tx!(self, |tx, backend| {
            let states = lock_studies!(tx, backend, vec![study.to_owned()]);
            match states.get(study).map(String::as_str) {
                Some("running") => {}
                Some(s) => {
                    return Err(StoreError::Conflict(format!(
                        "study `{study}` is {s}; only a running study's steps are retried"
                    )));
                }
                None => return Err(StoreError::NotFound(format!("no study `{study}`"))),
            }
            let n = sqlx::query(
                "UPDATE step_runs SET state = 'ready', wait_reason = NULL, attempts = 0, claimable_at = $1,
                    lease_owner = NULL, lease_until = NULL, fence = fence + 1, updated_at = $1
                 WHERE study = $2 AND step = $3 AND state = 'failed' AND version = $4",
            )
            .bind(now)
            .bind(study)
            .bind(step)
            .bind(version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                push_audit!(self, tx, audit);
                if backend == Backend::Postgres {
                    sqlx::query("SELECT pg_notify('studyflow_ready', '')")
                        .execute(&mut *tx)
                        .await?;
                }
            }
            n
        }))
    }

    /// Every run of a study, in creation order.
    pub async fn runs(&self, study: &str) -> Result<Vec<RunRow>> {
        Ok(on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM step_runs WHERE study = $1 ORDER BY id"
            )))
            .bind(study)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(run_from!(r));
            }
            out
        }))
    }

    /// A study's runs summed per step, version, state and wait reason, on the database: what a
    /// status shows, without reading every run (a study has up to 100,000 and more).
    pub async fn run_groups(&self, study: &str, now: i64) -> Result<Vec<RunGroup>> {
        const SQL: &str = "SELECT step, version, state, wait_reason,
                COUNT(*) AS runs, MIN(id) AS first_id,
                CAST(MAX(CASE WHEN subject <> '' THEN 1 ELSE 0 END) AS BIGINT) AS per_subject,
                MIN(not_before) AS next_at, MAX(due_at) AS due_max,
                SUM(CASE WHEN due_at IS NOT NULL AND due_at < $2 THEN 1 ELSE 0 END) AS past_due,
                MIN(CASE WHEN due_at IS NOT NULL AND due_at < $2 THEN due_at END) AS past_due_min,
                SUM(CASE WHEN due_at IS NOT NULL AND updated_at > due_at THEN 1 ELSE 0 END) AS done_late,
                MIN(CASE WHEN due_at IS NOT NULL AND updated_at > due_at THEN due_at END) AS done_late_due,
                MAX(CASE WHEN due_at IS NOT NULL AND updated_at > due_at THEN updated_at END) AS done_late_at,
                MAX(deadline_rule) AS rule, MAX(last_error) AS last_error
             FROM step_runs WHERE study = $1
             GROUP BY step, version, state, wait_reason
             ORDER BY first_id";
        Ok(on_pool!(self, |p| {
            let rows = sqlx::query(SQL).bind(study).bind(now).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let state: String = r.try_get("state")?;
                let wait: Option<String> = r.try_get("wait_reason")?;
                out.push(RunGroup {
                    step: r.try_get("step")?,
                    version: r.try_get("version")?,
                    state: RunState::parse(&state).ok_or_else(|| {
                        StoreError::Conflict(format!("a run in an unknown state `{state}`"))
                    })?,
                    wait_reason: wait.filter(|w| !w.is_empty()),
                    runs: r.try_get("runs")?,
                    first_id: r.try_get("first_id")?,
                    per_subject: r.try_get::<i64, _>("per_subject")? != 0,
                    next_at: r.try_get("next_at")?,
                    due_max: r.try_get("due_max")?,
                    past_due: r.try_get::<Option<i64>, _>("past_due")?.unwrap_or(0),
                    past_due_min: r.try_get("past_due_min")?,
                    done_late: r.try_get::<Option<i64>, _>("done_late")?.unwrap_or(0),
                    done_late_due: r.try_get("done_late_due")?,
                    done_late_at: r.try_get("done_late_at")?,
                    rule: r.try_get("rule")?,
                    last_error: r.try_get("last_error")?,
                });
            }
            out
        }))
    }

    /// The done release, transfer and contact-transfer runs of a study, oldest first (few: one
    /// per release).
    pub async fn release_runs(&self, study: &str) -> Result<Vec<RunRow>> {
        Ok(on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM step_runs
                 WHERE study = $1 AND kind IN ('release', 'transfer', 'contact_transfer') ORDER BY id"
            )))
            .bind(study)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let run: RunRow = run_from!(r);
                if run.state == RunState::Done {
                    out.push(run);
                }
            }
            out
        }))
    }

    pub async fn run(&self, id: i64) -> Result<Option<RunRow>> {
        Ok(on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM step_runs WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(p)
            .await?
            {
                Some(r) => Some(run_from!(r)),
                None => None,
            }
        }))
    }

    /// Open human tasks (waiting for a person, their date reached), oldest first.
    pub async fn open_tasks(&self, now: i64) -> Result<Vec<RunRow>> {
        Ok(on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM step_runs
                 WHERE state = 'waiting' AND wait_reason = 'task' AND (not_before IS NULL OR not_before <= $1)
                 ORDER BY id"
            )))
            .bind(now)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(run_from!(r));
            }
            out
        }))
    }

    /// Runs waiting for a file from outside that a person may supply (MK403 p.12.3, p.14.2,
    /// p.22.1, p.31): a person's task completed before its file came, and an institution's
    /// answer to a secure electronic request; oldest first.
    pub async fn awaiting_files(&self) -> Result<Vec<RunRow>> {
        Ok(on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM step_runs
                 WHERE state = 'waiting' AND wait_reason = 'answer' AND (human <> 0 OR kind = 'answer')
                 ORDER BY id"
            )))
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(run_from!(r));
            }
            out
        }))
    }

    /// The earliest instant a waiting run's timer, retry or task date falls due, if any.
    pub async fn next_timer(&self) -> Result<Option<i64>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar::<_, Option<i64>>(
                                "SELECT MIN(not_before) FROM step_runs WHERE state = 'waiting' AND not_before IS NOT NULL",
            )
            .fetch_one(p)
            .await?
        }))
    }

    /// The earliest deadline at or after `now` of a run not yet done.
    pub async fn next_due(&self, now: i64) -> Result<Option<i64>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MIN(due_at) FROM step_runs WHERE due_at IS NOT NULL AND due_at >= $1
                   AND state IN ('pending', 'ready', 'running', 'waiting')",
            )
            .bind(now)
            .fetch_one(p)
            .await?
        }))
    }

    /// Flags deadlines passed at `now` on runs not yet done, once each; the events say which.
    pub async fn flag_overdue(&self, now: i64) -> Result<Vec<AuditEvent>> {
        // A read first: an idle worker must not take the write lock for nothing.
        let any: Option<i64> = on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT id FROM step_runs WHERE due_at IS NOT NULL AND due_at < $1 AND overdue_flagged = 0
                   AND state IN ('pending', 'ready', 'running', 'waiting') LIMIT 1",
            )
            .bind(now)
            .fetch_optional(p)
            .await?
        });
        if any.is_none() {
            return Ok(Vec::new());
        }
        Ok(in_tx!(self, |tx, _b| {
            let rows = sqlx::query(
                "UPDATE step_runs SET overdue_flagged = 1
                 WHERE due_at IS NOT NULL AND due_at < $1 AND overdue_flagged = 0
                   AND state IN ('pending', 'ready', 'running', 'waiting')
                 RETURNING study, step, subject, due_at, deadline_rule, deadline_point",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            let mut events = Vec::with_capacity(rows.len());
            for r in rows {
                let rule: Option<String> = r.try_get("deadline_rule")?;
                let due: i64 = r.try_get("due_at")?;
                events.push(AuditEvent {
                    at: now,
                    actor: "engine".into(),
                    action: "deadline.overdue".into(),
                    object: object(
                        &r.try_get::<String, _>("study")?,
                        &r.try_get::<String, _>("step")?,
                        &r.try_get::<String, _>("subject")?,
                    ),
                    point: r
                        .try_get::<Option<String>, _>("deadline_point")?
                        .unwrap_or_default(),
                    detail: serde_json::json!({"due_at": due, "rule": rule}).to_string(),
                });
            }
            push_audit!(self, tx, &events);
            events
        }))
    }

    /// Terminates a study: every run not done is cancelled except `keep` (the destruction
    /// steps), which lose their dependencies and become ready (or tasks) at once (MK403 p.26).
    pub async fn terminate(
        &self,
        study: &str,
        keep: &[String],
        now: i64,
        audit: &[AuditEvent],
    ) -> Result<()> {
        in_tx!(self, |tx, backend| {
            let states = lock_studies!(tx, backend, vec![study.to_owned()]);
            match states.get(study).map(String::as_str) {
                Some("submitted" | "approved" | "contracted" | "running") => {}
                _ => {
                    return Err(StoreError::Conflict(format!(
                        "study `{study}` cannot be terminated: it does not exist, or it is already completed or terminated"
                    )));
                }
            }
            sqlx::query("UPDATE studies SET state = 'terminated', updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(study)
                .execute(&mut *tx)
                .await?;
            let mut events = audit.to_vec();
            let kept_steps: Vec<String> = keep
                .iter()
                .map(|k| format!("'{}'", k.replace('\'', "''")))
                .collect();
            let kept_list = if kept_steps.is_empty() {
                "''".to_owned()
            } else {
                kept_steps.join(",")
            };
            // Set-wise and by state, so a run a worker finished a moment ago stays done.
            let cancelled = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE step_runs SET state = 'cancelled', claimable_at = NULL, lease_owner = NULL, lease_until = NULL,
                    fence = fence + 1, updated_at = $1
                 WHERE study = $2 AND state IN ('pending', 'ready', 'running', 'waiting') AND step NOT IN ({kept_list})
                 RETURNING step, subject"
            )))
            .bind(now)
            .bind(study)
            .fetch_all(&mut *tx)
            .await?;
            for r in cancelled {
                events.push(AuditEvent::new(
                    now,
                    "engine",
                    "step.cancelled",
                    object(
                        study,
                        &r.try_get::<String, _>("step")?,
                        &r.try_get::<String, _>("subject")?,
                    ),
                    "",
                    "{\"because\":\"terminated\"}",
                ));
            }
            // The destruction steps not started yet run at once: no dependency, no timer.
            let kept: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM step_runs WHERE study = $1 AND state IN ('pending', 'ready', 'waiting') AND step IN ({kept_list})"
            )))
            .bind(study)
            .fetch_all(&mut *tx)
            .await?;
            if !kept.is_empty() {
                let list = id_list(&kept);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM step_deps WHERE run IN ({list})"
                )))
                .execute(&mut *tx)
                .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE step_runs SET state = 'pending', not_before = NULL, claimable_at = NULL WHERE id IN ({list})"
                )))
                .execute(&mut *tx)
                .await?;
            }
            promote!(tx, backend, kept, now, events);
            push_audit!(self, tx, &events);
        });
        Ok(())
    }
}
