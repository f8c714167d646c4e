-- name: jobs, queues, checkpoints, events
-- Version 1: queues, jobs and their indexes; the tables and columns of checkpoints, sleeps,
-- events, per-queue concurrency limits and blocking mode. Times are DATETIME(6) in UTC,
-- durations BIGINT milliseconds, JSON LONGTEXT (utf8mb4, binary collation) so params, headers
-- and results come back byte for byte. `batch_token` and `batch_ord` tell which rows a
-- multi-row insert wrote (MySQL has no INSERT ... RETURNING).
-- step
CREATE TABLE IF NOT EXISTS @queues@ (
    name VARCHAR(128) NOT NULL PRIMARY KEY,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    concurrency_limit INT NULL,
    blocking BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
-- step
CREATE TABLE IF NOT EXISTS @jobs@ (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    queue VARCHAR(128) NOT NULL,
    task VARCHAR(128) NOT NULL,
    params LONGTEXT NOT NULL,
    headers LONGTEXT NULL,
    state VARCHAR(16) NOT NULL,
    priority INT NOT NULL DEFAULT 0,
    run_seq BIGINT NOT NULL DEFAULT 1,
    attempt INT NOT NULL DEFAULT 1,
    max_attempts INT NOT NULL,
    retry TEXT NOT NULL,
    timeout_ms BIGINT NULL,
    max_duration_ms BIGINT NULL,
    max_delay_ms BIGINT NULL,
    cancel_at DATETIME(6) NULL,
    idempotency_key VARCHAR(255) NULL,
    worker_id VARCHAR(128) NULL,
    run_at DATETIME(6) NOT NULL,
    lease_expires_at DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL,
    first_started_at DATETIME(6) NULL,
    attempted_at DATETIME(6) NULL,
    finished_at DATETIME(6) NULL,
    result LONGTEXT NULL,
    failure LONGTEXT NULL,
    errors LONGTEXT NOT NULL,
    wake_at DATETIME(6) NULL,
    wake_event VARCHAR(255) NULL,
    event_payload LONGTEXT NULL,
    batch_token BIGINT NULL,
    batch_ord INT NULL,
    KEY jobs_claim (state, queue, priority, run_at, id),
    KEY jobs_claim_age (state, queue, run_at, id),
    KEY jobs_lease (state, lease_expires_at),
    KEY jobs_finished (finished_at),
    KEY jobs_cancel_at (cancel_at),
    UNIQUE KEY jobs_idempotency (queue, idempotency_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
-- step
CREATE TABLE IF NOT EXISTS @checkpoints@ (
    job_id BIGINT NOT NULL,
    step VARCHAR(255) NOT NULL,
    state LONGTEXT NOT NULL,
    run_seq BIGINT NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (job_id, step)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
-- step
CREATE TABLE IF NOT EXISTS @events@ (
    name VARCHAR(255) NOT NULL PRIMARY KEY,
    payload LONGTEXT NULL,
    emitted_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
