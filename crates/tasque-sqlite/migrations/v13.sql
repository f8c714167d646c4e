-- name: inspector index holds finished jobs only
-- Version 13: the index of jobs by queue and state (v7, the inspector's filtered pages) keeps
-- only finished jobs (completed, failed, cancelled: exactly those with a finish time). A job
-- no longer enters it at spawn nor moves in it at its claim, and at its completion it enters
-- it once instead of moving: four index writes fewer per job. The inspector finds unfinished
-- jobs of a queue through `tasque_jobs_unfinished` (v5) instead: its filters on unfinished
-- states say `finished_at IS NULL`, and those on finished states `finished_at IS NOT NULL`.

DROP INDEX tasque_jobs_queue_state;

CREATE INDEX tasque_jobs_queue_state ON tasque_jobs (ns, queue, state, id)
    WHERE finished_at IS NOT NULL;
