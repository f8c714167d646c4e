//! Statements of checkpoints, sleeps, events, queue limits and blocking queues.

/// Every checkpoint of a job. Binds 1 ns, 2 job id.
pub const GET_CHECKPOINTS: &str = "SELECT step, state, run_seq, updated_at FROM tasque_checkpoints
    WHERE ns = ?1 AND job_id = ?2 ORDER BY step";
/// Stores a checkpoint if the run still owns its job, and extends the run's lease. Binds
/// 1 ns, 2 job id, 3 run_seq, 4 step, 5 state JSON, 6 lease ms.
///
/// One write transaction sent as one request (one hand-off to the connection's thread, one
/// commit): the insert is guarded by the run, so a stale run stores nothing; the update
/// extends the lease only while the run still owns the job, and the read after it returns the
/// new lease only when the update changed the job. Both apply, or neither. Run it to the end
/// (every row fetched, so the COMMIT runs) and roll back when it fails. (A read rather than
/// `RETURNING`, which makes SQLite build a temporary table for its one row.)
pub const WRITE_CHECKPOINT: &str = concat!(
    "BEGIN IMMEDIATE; INSERT INTO tasque_checkpoints (ns, job_id, step, state, run_seq, updated_at) ",
    "SELECT ?1, ?2, ?4, ?5, ?3, ",
    now!(),
    " FROM tasque_jobs",
    if_running!(),
    " ON CONFLICT (ns, job_id, step) DO UPDATE SET state = excluded.state, ",
    "run_seq = excluded.run_seq, updated_at = excluded.updated_at; ",
    "UPDATE tasque_jobs SET lease_expires_at = ",
    now!(),
    " + ?6",
    if_running!(),
    "; SELECT lease_expires_at FROM tasque_jobs WHERE id = ?2 AND changes() = 1; COMMIT"
);

/// Ends a run by suspending its job until a time, attempt not counted. Binds 1 ns, 2 id,
/// 3 seq, 4 wake time absolute (or NULL), 5 delay ms.
pub const SLEEP_RUN: &str = concat!(
    "UPDATE tasque_jobs SET state = 'sleeping', run_seq = run_seq + 1, lease_expires_at = NULL, ",
    "wake_at = w.at, run_at = w.at, wake_event = NULL, event_payload = NULL ",
    "FROM (SELECT COALESCE(?4, ",
    now!(),
    " + ?5) AS at) AS w",
    if_running!()
);

/// Whether a run still owns its job. Binds 1 ns, 2 id, 3 seq.
pub const RUN_OWNS: &str = concat!("SELECT 1 FROM tasque_jobs", if_running!());
/// A stored event's payload. Binds 1 ns, 2 name.
pub const GET_EVENT: &str = "SELECT payload FROM tasque_events WHERE ns = ?1 AND name = ?2";
/// Ends a run by making its job wait for an event. Binds 1 ns, 2 id, 3 seq, 4 event name,
/// 5 timeout ms (or NULL: no timeout).
pub const WAIT_RUN: &str = concat!(
    "UPDATE tasque_jobs SET state = 'waiting', run_seq = run_seq + 1, lease_expires_at = NULL, ",
    "wake_event = ?4, event_payload = NULL, wake_at = ",
    now!(),
    " + ?5",
    if_running!()
);
/// Stores an event, replacing an earlier payload. Binds 1 ns, 2 name, 3 payload JSON.
pub const STORE_EVENT: &str = concat!(
    "INSERT INTO tasque_events (ns, name, payload, emitted_at) VALUES (?1, ?2, ?3, ",
    now!(),
    ") ON CONFLICT (ns, name) DO UPDATE SET payload = excluded.payload, ",
    "emitted_at = excluded.emitted_at"
);
/// Wakes every job waiting for an event: claimable now, carrying the payload. Binds 1 ns,
/// 2 name, 3 payload JSON.
pub const WAKE_WAITERS: &str = concat!(
    "UPDATE tasque_jobs SET state = 'pending', run_at = ",
    now!(),
    ", wake_at = NULL, event_payload = ?3 ",
    "WHERE ns = ?1 AND state = 'waiting' AND wake_event = ?2"
);
/// Whether a sleeping or waiting job is due. Binds 1 ns.
pub const ANY_DUE: &str = concat!(
    "SELECT EXISTS (SELECT 1 FROM tasque_jobs INDEXED BY tasque_jobs_wake WHERE ns = ?1 ",
    "AND state IN ('sleeping', 'waiting') AND wake_at <= ",
    now!(),
    ")"
);
/// Makes due sleepers and timed-out waiters claimable (a timed-out waiter keeps its
/// `wake_event` with no payload: its claim says it timed out); returns their queues. Binds 1 ns.
pub const WAKE_DUE: &str = concat!(
    "UPDATE tasque_jobs SET state = 'pending', run_at = wake_at, wake_at = NULL ",
    "WHERE ns = ?1 AND state IN ('sleeping', 'waiting') AND wake_at <= ",
    now!(),
    " RETURNING queue"
);
/// Milliseconds until the next sleeper or timed waiter is due (NULL: none). Binds 1 ns.
pub const NEXT_WAKE: &str = concat!(
    "SELECT MIN(wake_at) - ",
    now!(),
    " FROM tasque_jobs INDEXED BY tasque_jobs_wake WHERE ns = ?1 ",
    "AND state IN ('sleeping', 'waiting')"
);

/// Sets a queue's concurrency limit, creating the queue if needed. Binds 1 ns, 2 name, 3 limit.
pub const SET_QUEUE_LIMIT: &str = concat!(
    "INSERT INTO tasque_queues (ns, name, concurrency_limit, created_at) VALUES (?1, ?2, ?3, ",
    now!(),
    ") ON CONFLICT (ns, name) DO UPDATE SET concurrency_limit = excluded.concurrency_limit"
);
/// Sets a queue's blocking mode and policy, creating the queue if needed. Binds 1 ns, 2 name,
/// 3 blocking, 4 policy.
pub const SET_QUEUE_BLOCKING: &str = concat!(
    "INSERT INTO tasque_queues (ns, name, blocking, on_exhausted, created_at) ",
    "VALUES (?1, ?2, ?3, ?4, ",
    now!(),
    ") ON CONFLICT (ns, name) DO UPDATE SET blocking = excluded.blocking, ",
    "on_exhausted = excluded.on_exhausted"
);
/// The unpaused queues among a JSON list that have a limit or are blocking. Binds 1 ns,
/// 2 JSON names.
pub const GATED_QUEUES: &str = "SELECT name, concurrency_limit, blocking, key_concurrency,
    rate_limit, rate_window_ms, rate_key FROM tasque_queues
    WHERE ns = ?1 AND paused = 0 AND (concurrency_limit IS NOT NULL OR blocking = 1 OR keyed = 1
    OR rate_limit IS NOT NULL)
    AND name IN (SELECT value FROM json_each(?2)) ORDER BY name";
/// How many jobs of a queue are running. Binds 1 ns, 2 queue.
pub const RUNNING_IN_QUEUE: &str =
    "SELECT COUNT(*) FROM tasque_jobs WHERE ns = ?1 AND queue = ?2 AND state = 'running'";
/// A failed job holding its blocking queue. Binds 1 ns, 2 queue.
pub const HOLDING_JOB: &str =
    "SELECT id FROM tasque_jobs WHERE ns = ?1 AND queue = ?2 AND holds_queue = 1 ORDER BY id LIMIT 1";
/// The head of a blocking queue (its oldest unfinished job), whether it is running, and
/// whether it may start now. Binds 1 ns, 2 queue.
pub const QUEUE_HEAD: &str = concat!(
    "SELECT id, state = 'running', state = 'pending' AND run_at <= ",
    now!(),
    " AND (cancel_at IS NULL OR cancel_at > ",
    now!(),
    ") FROM tasque_jobs INDEXED BY tasque_jobs_unfinished WHERE ns = ?1 AND queue = ?2 ",
    "AND finished_at IS NULL AND state IN ('pending', 'running', 'sleeping', 'waiting') ",
    "ORDER BY id LIMIT 1"
);
/// Cancels a failed job that holds its blocking queue. Binds 1 ns, 2 id.
pub const CANCEL_HOLDING: &str = concat!(
    "UPDATE tasque_jobs SET state = 'cancelled', holds_queue = 0, finished_at = ",
    now!(),
    ", failure = json_object('error', 'cancelled') ",
    "WHERE ns = ?1 AND id = ?2 AND state = 'failed' AND holds_queue = 1"
);
