-- The open tasks (Store::open_tasks: the task list, the studies page): a study of 100,000 runs
-- keeps most of them waiting on their timers, so the tasks among them are found by an index
-- of their own rather than by reading every waiting run (issue #13: a page under 50 ms).
CREATE INDEX step_runs_open_tasks ON step_runs (id) WHERE state = 'waiting' AND wait_reason = 'task';
