-- A study's status sums its runs per step, version, state and wait reason (Store::run_groups),
-- in the index's order. (Not covering, as SQLite's is: an error text may exceed what a
-- PostgreSQL index entry holds.)
CREATE INDEX step_runs_status ON step_runs (study, step, version, state, wait_reason)
    INCLUDE (subject, not_before, due_at, updated_at);
