-- name: jobs by queue and state
-- Version 7: an index of jobs by queue and state in id order, so that the inspector's filtered
-- pages (the dashboard's job list: failed jobs of one queue, say) read only matching jobs
-- instead of walking every job before them.

CREATE INDEX tasque_jobs_queue_state ON tasque_jobs (ns, queue, state, id);
