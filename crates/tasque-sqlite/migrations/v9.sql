-- name: flow control: ordering keys and rate limits
-- Version 9: per-key order and concurrency, and rate limits, enforced by the claim (see
-- tasque-durable's `flow` module for the model). A job's `ordering_key` puts it in a key of its
-- queue; a queue with keyed jobs is flagged `keyed` at spawn, which makes its claims gated
-- (taken inside the claim's write transaction), where a keyed job starts only while fewer than
-- `key_concurrency` jobs of its key created before it are unfinished
-- (`tasque_jobs_key_unfinished` serves that count). `key_on_exhausted` = 'stay_blocked' keeps
-- an exhausted keyed job holding its key (`holds_queue`). `rate_limit` starts per
-- `rate_window_ms` (epoch-aligned windows) are counted per `rate_key` ('queue',
-- 'ordering_key' or 'arg:PATH') in `tasque_rate_windows`, one row per (queue, key).

ALTER TABLE tasque_jobs ADD COLUMN ordering_key TEXT;
CREATE INDEX tasque_jobs_key_unfinished ON tasque_jobs (ns, queue, ordering_key, id)
    WHERE ordering_key IS NOT NULL
        AND (state IN ('pending', 'running', 'sleeping', 'waiting') OR holds_queue = 1);
ALTER TABLE tasque_queues ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasque_queues ADD COLUMN key_concurrency INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tasque_queues ADD COLUMN key_on_exhausted TEXT NOT NULL DEFAULT 'continue';
ALTER TABLE tasque_queues ADD COLUMN rate_limit INTEGER;
ALTER TABLE tasque_queues ADD COLUMN rate_window_ms INTEGER;
ALTER TABLE tasque_queues ADD COLUMN rate_key TEXT NOT NULL DEFAULT 'queue';
CREATE TABLE tasque_rate_windows (
        ns TEXT NOT NULL,
        queue TEXT NOT NULL,
        key TEXT NOT NULL,
        window_start_ms INTEGER NOT NULL,
        starts INTEGER NOT NULL,
        PRIMARY KEY (ns, queue, key)
    ) WITHOUT ROWID;
