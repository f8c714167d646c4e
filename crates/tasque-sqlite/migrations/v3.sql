-- name: workflows and blocking queues
-- Version 3: blocking-queue policy and holding flag, wake-time and event indexes, the index of
-- each queue's unfinished jobs, and checkpoints deleted with their job.

ALTER TABLE tasque_queues ADD COLUMN on_exhausted TEXT NOT NULL DEFAULT 'continue';

ALTER TABLE tasque_jobs ADD COLUMN holds_queue INTEGER NOT NULL DEFAULT 0;

CREATE INDEX tasque_jobs_wake ON tasque_jobs (ns, wake_at)
    WHERE state IN ('sleeping', 'waiting');

CREATE INDEX tasque_jobs_waiting ON tasque_jobs (ns, wake_event) WHERE state = 'waiting';

CREATE INDEX tasque_jobs_unfinished ON tasque_jobs (ns, queue, id)
    WHERE state IN ('pending', 'running', 'sleeping', 'waiting');

CREATE INDEX tasque_jobs_holding ON tasque_jobs (ns, queue) WHERE holds_queue = 1;

CREATE TRIGGER tasque_jobs_drop_checkpoints AFTER DELETE ON tasque_jobs BEGIN
    DELETE FROM tasque_checkpoints WHERE ns = old.ns AND job_id = old.id;
END;
