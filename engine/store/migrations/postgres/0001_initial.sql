-- studyflow schema 1 (PostgreSQL). Times are microseconds since the Unix epoch, UTC.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE studies (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    active_version BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE study_versions (
    study TEXT NOT NULL REFERENCES studies (id),
    version BIGINT NOT NULL,
    spec BYTEA NOT NULL,
    plan_hash TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    approved_by TEXT,
    approved_at BIGINT,
    PRIMARY KEY (study, version)
);
CREATE TABLE contracts (
    study TEXT PRIMARY KEY REFERENCES studies (id),
    number TEXT NOT NULL,
    concluded_on TEXT NOT NULL,
    declarations TEXT NOT NULL,
    measures_recorded BIGINT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE TABLE step_runs (
    id BIGSERIAL PRIMARY KEY,
    run_key TEXT NOT NULL UNIQUE,
    study TEXT NOT NULL REFERENCES studies (id),
    version BIGINT NOT NULL,
    step TEXT NOT NULL,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    human BIGINT NOT NULL,
    state TEXT NOT NULL,
    wait_reason TEXT,
    claimable_at BIGINT,
    not_before BIGINT,
    timer_rule TEXT,
    calendar_version TEXT,
    due_at BIGINT,
    deadline_rule TEXT,
    deadline_point TEXT,
    overdue_flagged BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    fence BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    output TEXT,
    completed_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX step_runs_claimable ON step_runs (claimable_at) WHERE claimable_at IS NOT NULL;
CREATE INDEX step_runs_study ON step_runs (study, state);
CREATE INDEX step_runs_due ON step_runs (due_at) WHERE due_at IS NOT NULL AND overdue_flagged = 0;
CREATE TABLE step_deps (
    run BIGINT NOT NULL REFERENCES step_runs (id),
    dep BIGINT NOT NULL REFERENCES step_runs (id),
    PRIMARY KEY (run, dep)
);
CREATE INDEX step_deps_dep ON step_deps (dep);
CREATE TABLE audit_outbox (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    point TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    point TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- Per-study keys, wrapped by the master key (which never enters the database); deleted to
-- make the study's identifiers unreadable for good (MK403 p.17.3, p.26, p.34).
CREATE TABLE study_keys (
    study TEXT PRIMARY KEY REFERENCES studies (id),
    wrapped BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
-- The data plane's datasets between steps, each sealed under the study's keys; those holding
-- identifying data are deleted by the destruction step with the keys (MK403 p.26).
CREATE TABLE datasets (
    study TEXT NOT NULL REFERENCES studies (id),
    name TEXT NOT NULL,
    identifying BIGINT NOT NULL,
    sealed BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (study, name)
);
