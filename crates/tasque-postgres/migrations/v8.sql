-- name: worker registry and jobs by state and queue
-- Version 8: the worker registry, and jobs by state and queue in id order.
--
-- Each worker process records itself in `workers` (id, host, pid, the queues it serves as a
-- JSON array, when it started, its last heartbeat) and keeps its row alive until `expires_at`
-- by beating; the leader deletes rows dead for long.
--
-- The dashboard's job list filtered by state and one queue (`queue = $n`) reads that queue's
-- jobs of the state in id order from `jobs_state_queue_id`, instead of walking every job of the
-- state (`jobs_state_id`) and fetching each from the heap to test its queue.
CREATE TABLE @schema@.workers (
    id text PRIMARY KEY,
    host text NOT NULL,
    pid bigint NOT NULL,
    queues jsonb NOT NULL,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX jobs_state_queue_id ON @schema@.jobs (state, queue, id);
