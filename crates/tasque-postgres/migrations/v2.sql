-- name: workflows and blocking queues
-- Tasque schema, version 2: durable workflows and blocking queues, for one namespace.
-- `on_exhausted` is a blocking queue's policy for a head job that fails for good
-- ('continue' or 'stay_blocked'); `holds_queue` marks such a failed job that keeps holding its
-- queue. Sleepers and waiters are found by their wake time, waiters by their event; the head of
-- a blocking queue is its oldest unfinished job. Checkpoints go with their job.

ALTER TABLE @schema@.queues ADD COLUMN on_exhausted text NOT NULL DEFAULT 'continue';
ALTER TABLE @schema@.jobs ADD COLUMN holds_queue boolean NOT NULL DEFAULT false;

CREATE INDEX jobs_wake ON @schema@.jobs (wake_at) WHERE state IN ('sleeping', 'waiting');
CREATE INDEX jobs_waiting ON @schema@.jobs (wake_event) WHERE state = 'waiting';
CREATE INDEX jobs_unfinished ON @schema@.jobs (queue, id)
    WHERE state IN ('pending', 'running', 'sleeping', 'waiting');
CREATE INDEX jobs_holding ON @schema@.jobs (queue) WHERE holds_queue;

ALTER TABLE @schema@.checkpoints ADD FOREIGN KEY (job_id) REFERENCES @schema@.jobs (id)
    ON DELETE CASCADE;
