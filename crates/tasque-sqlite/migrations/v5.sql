-- name: unfinished index on finish time
-- Version 5: the index of each queue's unfinished jobs keys on `finished_at IS NULL` instead of
-- the state. Every unfinished state (pending, running, sleeping, waiting) has no finish time and
-- every finished one has one, so it holds the same jobs; but a claim (pending to running)
-- no longer moves the job out of the index and back in, which cost more than any other index
-- a claim touches.

DROP INDEX tasque_jobs_unfinished;

CREATE INDEX tasque_jobs_unfinished ON tasque_jobs (ns, queue, id)
    WHERE finished_at IS NULL;
