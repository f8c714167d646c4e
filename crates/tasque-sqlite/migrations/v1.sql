-- name: jobs, queues, checkpoints, events
-- Version 1: queues, jobs and their indexes; the tables and columns of checkpoints, sleeps,
-- events, per-queue concurrency limits and blocking mode exist already, unused for now.

CREATE TABLE tasque_queues (
        ns TEXT NOT NULL,
        name TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        concurrency_limit INTEGER,
        blocking INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (ns, name)
    ) WITHOUT ROWID;

CREATE TABLE tasque_jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ns TEXT NOT NULL,
        queue TEXT NOT NULL,
        task TEXT NOT NULL,
        params TEXT NOT NULL,
        headers TEXT,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        run_seq INTEGER NOT NULL DEFAULT 1,
        attempt INTEGER NOT NULL DEFAULT 1,
        max_attempts INTEGER NOT NULL,
        retry TEXT NOT NULL,
        timeout_ms INTEGER,
        max_duration_ms INTEGER,
        max_delay_ms INTEGER,
        cancel_at INTEGER,
        idempotency_key TEXT,
        worker_id TEXT,
        run_at INTEGER NOT NULL,
        lease_expires_at INTEGER,
        created_at INTEGER NOT NULL,
        first_started_at INTEGER,
        attempted_at INTEGER,
        finished_at INTEGER,
        result TEXT,
        failure TEXT,
        errors TEXT NOT NULL DEFAULT '[]',
        wake_at INTEGER,
        wake_event TEXT,
        event_payload TEXT
    );

CREATE INDEX tasque_jobs_claim ON tasque_jobs (ns, queue, state, priority, run_at, id);

CREATE INDEX tasque_jobs_age ON tasque_jobs (ns, queue, state, run_at, id);

CREATE INDEX tasque_jobs_lease ON tasque_jobs (ns, state, lease_expires_at);

CREATE INDEX tasque_jobs_finished ON tasque_jobs (ns, finished_at)
    WHERE finished_at IS NOT NULL;

CREATE INDEX tasque_jobs_cancel_at ON tasque_jobs (ns, cancel_at)
    WHERE cancel_at IS NOT NULL;

CREATE UNIQUE INDEX tasque_jobs_idempotency ON tasque_jobs (ns, queue, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE tasque_checkpoints (
        ns TEXT NOT NULL,
        job_id INTEGER NOT NULL,
        step TEXT NOT NULL,
        state TEXT NOT NULL,
        run_seq INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (ns, job_id, step)
    ) WITHOUT ROWID;

CREATE TABLE tasque_events (
        ns TEXT NOT NULL,
        name TEXT NOT NULL,
        payload TEXT,
        emitted_at INTEGER NOT NULL,
        PRIMARY KEY (ns, name)
    ) WITHOUT ROWID;
