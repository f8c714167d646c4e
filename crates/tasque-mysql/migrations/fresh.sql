-- name: versions 1 and 2 at once
-- covers: 2
-- A namespace without any table is created with the tables of versions 1 and 2 in their final
-- shape at once (one CREATE TABLE each), then recorded at version 2; later versions run from
-- their files. Creating tables in their final shape is several times faster than creating and
-- then altering them (each DDL statement syncs to disk), which matters when many namespaces are
-- made (tests, tenants). Never edited: `tests/migrations.rs` checks that it yields exactly the
-- tables of v1.sql and v2.sql applied one after the other.
-- step
CREATE TABLE IF NOT EXISTS @queues@ (
    name VARCHAR(128) NOT NULL PRIMARY KEY,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    concurrency_limit INT NULL,
    blocking BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DATETIME(6) NOT NULL,
    on_exhausted VARCHAR(16) NOT NULL DEFAULT 'continue'
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
    holds_queue BOOLEAN NOT NULL DEFAULT FALSE,
    KEY jobs_claim (state, queue, priority, run_at, id),
    KEY jobs_claim_age (state, queue, run_at, id),
    KEY jobs_lease (state, lease_expires_at),
    KEY jobs_finished (finished_at),
    KEY jobs_cancel_at (cancel_at),
    UNIQUE KEY jobs_idempotency (queue, idempotency_key),
    KEY jobs_wake (wake_at),
    KEY jobs_waiting (wake_event),
    KEY jobs_head (state, queue, id),
    KEY jobs_holding (holds_queue, queue, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
-- step
CREATE TABLE IF NOT EXISTS @checkpoints@ (
    job_id BIGINT NOT NULL,
    step VARCHAR(255) NOT NULL,
    state LONGTEXT NOT NULL,
    run_seq BIGINT NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (job_id, step),
    CONSTRAINT `@stem@_ckpt_job` FOREIGN KEY (job_id) REFERENCES @jobs@ (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
-- step
CREATE TABLE IF NOT EXISTS @events@ (
    name VARCHAR(255) NOT NULL PRIMARY KEY,
    payload LONGTEXT NULL,
    emitted_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
