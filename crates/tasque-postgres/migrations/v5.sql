-- name: jobs by state in id order
-- Version 5: jobs by state in id order, so that the inspector's filtered pages (the dashboard's
-- job list: the failed jobs, or the failed jobs of one queue) read the jobs of that state in id
-- order instead of walking every job before them. Keyed by state alone because the inspector
-- matches queues with `queue = ANY($n)`, which cannot keep an index's id order.
CREATE INDEX jobs_state_id ON @schema@.jobs (state, id);
