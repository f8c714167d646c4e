-- name: worker registry
-- Version 7: the worker registry. Each worker process records itself (id, host, pid, the queues
-- it serves as a JSON array, when it started, its last heartbeat) and keeps its row alive until
-- `expires_at` by beating; the leader deletes rows dead for long. (The dashboard's job list by
-- state and queue already has its index here: `jobs_head (state, queue, id)`, version 2.)
-- step
CREATE TABLE IF NOT EXISTS `@stem@_workers` (
    id VARCHAR(128) NOT NULL PRIMARY KEY,
    host VARCHAR(255) NOT NULL,
    pid BIGINT NOT NULL,
    queues LONGTEXT NOT NULL,
    started_at DATETIME(6) NOT NULL,
    heartbeat_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
