-- The runs waiting for a file a person may send (Store::awaiting_files: the task list): a
-- study of 100,000 runs keeps most of them waiting, so these are found by an index of their
-- own, as the open tasks are (0008), not by reading every waiting run on each task list.
CREATE INDEX step_runs_awaiting_files ON step_runs (id)
    WHERE state = 'waiting' AND wait_reason = 'answer' AND (human <> 0 OR kind = 'answer');
