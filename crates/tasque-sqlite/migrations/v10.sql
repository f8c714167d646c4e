-- name: worker registry
-- Version 10: the worker registry. Each worker process records itself (id, host, pid, the
-- queues it serves as a JSON array, when it started, its last heartbeat) and keeps its row
-- alive until `expires_at` by beating; the leader deletes rows dead for long. Times in ms since
-- the Unix epoch, as everywhere in this schema.

CREATE TABLE tasque_workers (
    ns TEXT NOT NULL,
    id TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (ns, id)
);
