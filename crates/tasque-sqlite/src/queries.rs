//! Every SQL statement of the SQLite engine, in one place.
//!
//! Conventions: times are INTEGER milliseconds since the Unix epoch from the database's clock
//! ([`NOW`]); every statement filters on `ns` (bound as `?1`) so namespaces never meet; every
//! write by a run is guarded by `id`, `run_seq` and `state = 'running'` ("...IfRunning").
//! The stored state `pending` covers both `available` and `scheduled` (told apart by `run_at`).

use sqlx::{QueryBuilder, Sqlite};
use tasque_durable::{JobFilter, JobState, PollOrder};

/// The database clock in milliseconds. Constant within one statement. The one spelling of the
/// clock in the engine's SQL: `crate::clock` replaces it in test mode (keep it equal to
/// [`DATABASE_CLOCK`](crate::clock::DATABASE_CLOCK)).
macro_rules! now {
    () => {
        "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
    };
}

/// Columns read into a `JobInfo`, plus the clock (`now_ms`) to tell available from scheduled.
macro_rules! job_columns {
    () => {
        concat!(
            "id, run_seq, queue, task, params, headers, state, priority, attempt, max_attempts, ",
            "retry, timeout_ms, max_duration_ms, max_delay_ms, idempotency_key, unique_key, ",
            "result, failure, ",
            "errors, worker_id, created_at, run_at, first_started_at, attempted_at, finished_at, ",
            "lease_expires_at, ",
            now!(),
            " AS now_ms"
        )
    };
}

/// Reads the database clock.
pub const SELECT_NOW: &str = concat!("SELECT ", now!());

/// The schema version, or nothing when the migrations table does not exist.
pub const SCHEMA_VERSION: &str = "SELECT MAX(version) FROM tasque_migrations";
/// Whether the migrations table exists.
pub const HAS_MIGRATIONS_TABLE: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'tasque_migrations'";
/// Creates the migrations table.
pub const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS tasque_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)";
/// Records an applied migration.
pub const RECORD_MIGRATION: &str = concat!(
    "INSERT INTO tasque_migrations (version, name, applied_at) VALUES (?1, ?2, ",
    now!(),
    ")"
);

/// Creates a queue unless it exists.
pub const ENSURE_QUEUE: &str = concat!(
    "INSERT INTO tasque_queues (ns, name, created_at) VALUES (?1, ?2, ",
    now!(),
    ") ON CONFLICT DO NOTHING"
);
/// Sets a queue's paused flag, creating the queue if needed.
pub const SET_QUEUE_PAUSED: &str = concat!(
    "INSERT INTO tasque_queues (ns, name, paused, created_at) VALUES (?1, ?2, ?3, ",
    now!(),
    ") ON CONFLICT (ns, name) DO UPDATE SET paused = excluded.paused"
);
/// Every queue of a namespace.
pub const LIST_QUEUES: &str = "SELECT name, paused, concurrency_limit, blocking, created_at,
    on_exhausted FROM tasque_queues WHERE ns = ?1 ORDER BY name";
/// Job counts by queue and state (pending split by readiness).
pub const QUEUE_COUNTS: &str = concat!(
    "SELECT queue, state, run_at <= ",
    now!(),
    " AS ready, COUNT(*) AS n FROM tasque_jobs WHERE ns = ?1 GROUP BY queue, state, ready"
);

/// Binds per job of [`insert_jobs`] (see there for their order).
pub const INSERT_JOB_BINDS: usize = 17;

/// Builds the insert of `rows` jobs: one `INSERT ... SELECT` from a multi-row `VALUES` of plain
/// binds, so SQLite reads each value once (no JSON to parse per field). The clock is read once,
/// in a one-row table cross-joined as the outer loop (SQLite keeps the left table of a `CROSS
/// JOIN` outside), so the rows go in in the binds' order (and their ids rise in that order);
/// from it come the defaults that need the clock (run time, deadline, unique bucket). A clock
/// read or any other constant in each row would make preparing the statement quadratic in its
/// rows (SQLite compares each constant with those it factored out already), and so would
/// numbered placeholders when binding (SQLite looks each one up in a list as long as the
/// statement's placeholders): the placeholders are anonymous (`?`). Jobs whose idempotency key
/// or unique slot is taken are skipped.
///
/// Binds: the namespace, then per job [`INSERT_JOB_BINDS`] values: `queue, task, params,
/// headers, priority, max_attempts, retry, timeout_ms, max_duration_ms, max_delay_ms,
/// idempotency_key, run_at, delay_ms, unique_key, unique_period_ms, unique_states,
/// ordering_key`, `run_at` absolute or null (then `delay_ms` from now).
///
/// With `returning`, returns `id, run_seq, attempt, queue, idempotency_key, unique_key,
/// unique_bucket, created_at` of the inserted jobs, in no set order. Without (for jobs none of
/// which has an idempotency or unique key, so none can be skipped), a second statement returns
/// one row: the last id inserted and the number of jobs inserted (the ids are consecutive, in
/// bind order: one statement, AUTOINCREMENT).
pub fn insert_jobs(rows: usize, returning: bool) -> String {
    const ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let mut sql = String::with_capacity(1000 + rows * (3 * INSERT_JOB_BINDS + 2));
    sql.push_str(concat!(
        "INSERT INTO tasque_jobs (ns, queue, task, params, headers, state, priority, ",
        "max_attempts, retry, timeout_ms, max_duration_ms, max_delay_ms, idempotency_key, ",
        "run_at, created_at, cancel_at, unique_key, unique_bucket, unique_states, ordering_key) ",
        "SELECT ?, v.column1, v.column2, v.column3, v.column4, 'pending', v.column5, v.column6, ",
        "v.column7, v.column8, v.column9, v.column10, v.column11, ",
        "COALESCE(v.column12, t.n + v.column13), t.n, ",
        "v.column10 + COALESCE(v.column12, t.n + v.column13), v.column14, ",
        "CASE WHEN v.column15 IS NULL THEN 0 ",
        "ELSE COALESCE(v.column12, t.n + v.column13) / v.column15 END, v.column16, v.column17 ",
        "FROM (SELECT ",
        now!(),
        " AS n) AS t CROSS JOIN (VALUES "
    ));
    push_rows(&mut sql, ROW, rows);
    sql.push_str(") AS v WHERE true ON CONFLICT DO NOTHING");
    if returning {
        sql.push_str(
            " RETURNING id, run_seq, attempt, queue, idempotency_key, unique_key, unique_bucket, \
             created_at",
        );
    } else {
        sql.push_str("; SELECT last_insert_rowid(), changes()");
    }
    sql
}

/// Appends `rows` copies of the row of placeholders `row`, comma-separated (a multi-row
/// `VALUES`).
fn push_rows(sql: &mut String, row: &str, rows: usize) {
    for n in 0..rows {
        if n > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
}

/// Binds per job of [`insert_plain_jobs`] (see there for their order).
pub const INSERT_PLAIN_JOB_BINDS: usize = 7;

/// [`insert_jobs`] without `RETURNING`, for plain jobs: no headers, timeouts, deadlines,
/// idempotency or unique key, ordering key or absolute run time (those columns keep their
/// defaults), so a job is [`INSERT_PLAIN_JOB_BINDS`] binds instead of [`INSERT_JOB_BINDS`].
/// Binds: the namespace, then per job `queue, task, params, priority, max_attempts, retry,
/// delay_ms`. Returns the last id inserted and the number of jobs inserted, as there.
pub fn insert_plain_jobs(rows: usize) -> String {
    const ROW: &str = "(?, ?, ?, ?, ?, ?, ?)";
    let mut sql = String::with_capacity(600 + rows * (3 * INSERT_PLAIN_JOB_BINDS + 2));
    sql.push_str(concat!(
        "INSERT INTO tasque_jobs (ns, queue, task, params, state, priority, max_attempts, ",
        "retry, run_at, created_at) ",
        "SELECT ?, v.column1, v.column2, v.column3, 'pending', v.column4, v.column5, ",
        "v.column6, t.n + v.column7, t.n FROM (SELECT ",
        now!(),
        " AS n) AS t CROSS JOIN (VALUES "
    ));
    push_rows(&mut sql, ROW, rows);
    sql.push_str(") AS v WHERE true; SELECT last_insert_rowid(), changes()");
    sql
}

/// The job holding an idempotency key.
pub const FIND_BY_IDEMPOTENCY_KEY: &str = "SELECT id, run_seq, attempt FROM tasque_jobs
    WHERE ns = ?1 AND queue = ?2 AND idempotency_key = ?3";
/// The job holding a unique slot: its key, its bucket, and a state in its unique states.
/// Binds: 1 ns, 2 unique key, 3 bucket.
pub const FIND_BY_UNIQUE_KEY: &str = "SELECT id, run_seq, attempt FROM tasque_jobs
    WHERE ns = ?1 AND unique_key = ?2 AND unique_bucket = ?3 AND unique_key IS NOT NULL
    AND (unique_states & (CASE state WHEN 'pending' THEN 1 WHEN 'running' THEN 2
        WHEN 'sleeping' THEN 4 WHEN 'waiting' THEN 8 WHEN 'completed' THEN 16
        WHEN 'failed' THEN 32 WHEN 'cancelled' THEN 64 ELSE 0 END)) <> 0";

/// Builds the claim statement for `queue_count` queues: one atomic UPDATE whose subquery picks
/// the ready jobs, so concurrent claimers (threads or processes) never share a job. Queues with
/// a concurrency limit or in blocking mode are left out: [`claim_gated`] and [`CLAIM_HEAD`]
/// claim those, inside a transaction that counts what runs.
/// Binds: 1 ns, 2 worker_id, 3 lease_ms, 4 limit, 5.. queues.
pub fn claim(queue_count: usize, order: PollOrder) -> String {
    let placeholders: Vec<String> = (0..queue_count).map(|i| format!("?{}", i + 5)).collect();
    pick_and_claim(
        &placeholders.join(", "),
        order,
        "q.paused = 1 OR q.concurrency_limit IS NOT NULL OR q.blocking = 1 OR q.keyed = 1 \
         OR q.rate_limit IS NOT NULL",
    )
}

/// The claim statement for one gated queue (the caller computed how many may start),
/// honouring the per-key window ([`KEY_WINDOW`]). Binds: 1 ns, 2 worker_id, 3 lease_ms,
/// 4 limit, 5 queue, 6 key concurrency.
pub fn claim_gated(order: PollOrder) -> String {
    pick_and_claim("?5", order, "q.paused = 1").replacen(
        "ORDER BY",
        &format!("AND {KEY_WINDOW} ORDER BY"),
        1,
    )
}

/// The claim statement for one rate-limited gated queue ([`pick_rated`]'s binds and 2
/// worker_id, 3 lease_ms).
pub fn claim_rated(order: PollOrder) -> String {
    claim_update(&pick_rated(order))
}

fn pick_and_claim(queues: &str, order: PollOrder, excluded: &str) -> String {
    // Pin the index whose order is the poll order: without statistics the planner may pick
    // the other one and sort every pending job on each claim.
    let (index, order_by) = match order {
        PollOrder::PriorityThenAge => ("tasque_jobs_claim", "priority, run_at, id"),
        PollOrder::Age => ("tasque_jobs_age", "run_at, id"),
    };
    claim_update(&format!(
        "SELECT id FROM tasque_jobs AS j INDEXED BY {index} WHERE ns = ?1 AND queue IN ({queues}) \
           AND state = 'pending' AND run_at <= {now} AND (cancel_at IS NULL OR cancel_at > {now}) \
           AND NOT EXISTS (SELECT 1 FROM tasque_queues AS q \
             WHERE q.ns = ?1 AND q.name = j.queue AND ({excluded})) \
           ORDER BY {order_by} LIMIT ?4",
        now = now!(),
    ))
}

/// Builds the fast claim of the ungated queues, two statements sent as one: like [`claim`], the
/// UPDATE stamps the claimed jobs with a claim token (bind `?{5 + queue_count}`) and returns
/// nothing; then a SELECT reads them back as one row (see [`CLAIMED_BY_TOKEN`]). SQLite runs
/// both in one visit to sqlx's worker thread, and hands over one row however many jobs were
/// claimed (sqlx hands rows over from its thread one at a time).
pub fn claim_with_token(queue_count: usize, order: PollOrder) -> String {
    let claim = claim(queue_count, order);
    let returning = claim.find(" RETURNING ").unwrap_or(claim.len());
    let token = format!("?{}", queue_count + 5);
    let update = claim[..returning].replacen(
        " WHERE id IN (",
        &format!(", claim_token = {token} WHERE id IN ("),
        1,
    );
    format!(
        "{update}; {}",
        CLAIMED_BY_TOKEN.replace("claim_token = ?3", &format!("claim_token = {token}"))
    )
}

/// The jobs one claim took, as one JSON array of arrays in the column order of [`claim`]'s
/// RETURNING (JSON columns embedded as JSON; the event payload wrapped in a one-element array
/// when present, so a payload of JSON `null` differs from none); `[]` when it took none.
/// Binds: 1 ns, 2 worker_id, 3 claim token.
pub const CLAIMED_BY_TOKEN: &str = "SELECT json_group_array(json_array(id, run_seq, queue, task, \
    json(params), json(headers), attempt, max_attempts, json(retry), priority, timeout_ms, \
    lease_expires_at, wake_event, \
    CASE WHEN event_payload IS NULL THEN NULL ELSE json_array(json(event_payload)) END, run_at)) \
    FROM tasque_jobs INDEXED BY tasque_jobs_lease \
    WHERE ns = ?1 AND state = 'running' AND worker_id = ?2 AND claim_token = ?3";

/// The jobs one claim took, as plain rows (for decoding one by one when
/// [`CLAIMED_BY_TOKEN`] fails on a corrupt JSON column). Binds: 1 ns, 2 worker_id, 3 claim token.
pub const CLAIMED_ROWS_BY_TOKEN: &str = "SELECT id, run_seq, queue, task, params, headers, \
    attempt, max_attempts, retry, priority, timeout_ms, lease_expires_at, wake_event, \
    event_payload, run_at FROM tasque_jobs INDEXED BY tasque_jobs_lease \
    WHERE ns = ?1 AND state = 'running' AND worker_id = ?2 AND claim_token = ?3";

/// The claim UPDATE of the jobs whose ids `pick` selects.
fn claim_update(pick: &str) -> String {
    format!(
        "UPDATE tasque_jobs SET state = 'running', worker_id = ?2, lease_expires_at = {now} + ?3, \
         attempted_at = {now}, first_started_at = COALESCE(first_started_at, {now}), \
         cancel_at = CASE WHEN first_started_at IS NOT NULL THEN cancel_at \
           WHEN max_duration_ms IS NULL THEN NULL ELSE {now} + max_duration_ms END \
         WHERE id IN ({pick}) \
         RETURNING id, run_seq, queue, task, params, headers, attempt, max_attempts, retry, \
           priority, timeout_ms, lease_expires_at, wake_event, event_payload, run_at",
        now = now!(),
    )
}

/// Claims the head of a blocking queue by id (the caller checked that it is ready).
/// Binds: 1 ns, 2 worker_id, 3 lease_ms, 4 id.
pub fn claim_head() -> String {
    claim_update("SELECT ?4 WHERE EXISTS (SELECT 1 FROM tasque_jobs WHERE ns = ?1 AND id = ?4 AND state = 'pending')")
}

/// The guard of every write by a run: binds 1 ns, 2 job id, 3 run_seq.
macro_rules! if_running {
    () => {
        " WHERE ns = ?1 AND id = ?2 AND run_seq = ?3 AND state = 'running'"
    };
}

mod workflow;
pub use workflow::*;
mod cron;
pub use cron::*;
mod registry;
pub use registry::*;
mod flow;
pub use flow::*;
mod deps;
pub use deps::*;

/// Ends a transaction begun inside a request that failed part way.
pub const ROLLBACK: &str = "ROLLBACK";

/// What a rejected run write ran into: the job's state and run.
pub const RUN_STATUS: &str = "SELECT state, run_seq FROM tasque_jobs WHERE ns = ?1 AND id = ?2";
/// Run statuses for a JSON array of job ids (binds 1 ns, 2 ids).
pub const RUN_STATUSES: &str = "SELECT id, state, run_seq FROM tasque_jobs
    WHERE +ns = ?1 AND id IN (SELECT value FROM json_each(?2))";

/// Extends one lease. Binds 1 ns, 2 id, 3 seq, 4 lease_ms.
pub const EXTEND_LEASE: &str = concat!(
    "UPDATE tasque_jobs SET lease_expires_at = ",
    now!(),
    " + ?4",
    if_running!(),
    " RETURNING lease_expires_at"
);
/// Extends many leases: binds 1 ns, 2 JSON `[[id, seq], ...]`, 3 lease_ms.
pub const EXTEND_LEASES: &str = concat!(
    "UPDATE tasque_jobs SET lease_expires_at = ",
    now!(),
    " + ?3 FROM (SELECT value ->> 0 AS id, value ->> 1 AS seq FROM json_each(?2)) AS x ",
    "WHERE +tasque_jobs.ns = ?1 AND tasque_jobs.id = x.id AND tasque_jobs.run_seq = x.seq ",
    "AND +tasque_jobs.state = 'running' RETURNING tasque_jobs.id, tasque_jobs.run_seq, tasque_jobs.lease_expires_at"
);

/// Completes many runs, stamping the jobs it completes with a token (the claim token's
/// counter: unique to this call), so that when it did not apply to all of them
/// [`COMPLETED_BY_TOKEN`] tells which it did. Binds 1 ns, 2 JSON `[{"id", "seq", "result"},
/// ...]`, 3 the token. One pass over the runs, no rows back: the common case (every run still
/// owns its job) is told by the count of changed rows alone.
pub const COMPLETE_MANY: &str = concat!(
    "UPDATE tasque_jobs SET state = 'completed', result = x.result, finished_at = ",
    now!(),
    ", lease_expires_at = NULL, cancel_at = NULL, claim_token = ?3 ",
    "FROM (SELECT value ->> '$.id' AS id, value ->> '$.seq' AS seq, value -> '$.result' AS result ",
    "FROM json_each(?2)) AS x WHERE +tasque_jobs.ns = ?1 AND tasque_jobs.id = x.id ",
    "AND tasque_jobs.run_seq = x.seq AND +tasque_jobs.state = 'running'"
);
/// The runs of a [`COMPLETE_MANY`] batch that it completed. Binds 1 ns, 2 its JSON, 3 its token.
pub const COMPLETED_BY_TOKEN: &str = "SELECT id, run_seq FROM tasque_jobs
    WHERE +ns = ?1 AND id IN (SELECT value ->> '$.id' FROM json_each(?2))
    AND +claim_token = ?3 AND +state = 'completed'";
/// Deletes many completed runs (delete on success): binds 1 ns, 2 JSON `[[id, seq], ...]`.
pub const DELETE_RUNS: &str = "DELETE FROM tasque_jobs WHERE id IN (
    SELECT j.id FROM json_each(?2) AS x CROSS JOIN tasque_jobs AS j
    ON j.id = (x.value ->> 0) AND j.run_seq = (x.value ->> 1)
    WHERE +j.ns = ?1 AND +j.state = 'running') RETURNING id, run_seq";
/// Releases many runs, claimable at once, attempt not counted: binds 1 ns, 2 JSON `[[id, seq]]`.
pub const RELEASE_RUNS: &str = "UPDATE tasque_jobs SET state = 'pending', run_seq = run_seq + 1,
    lease_expires_at = NULL FROM (SELECT value ->> 0 AS id, value ->> 1 AS seq FROM json_each(?2)) AS x
    WHERE +tasque_jobs.ns = ?1 AND tasque_jobs.id = x.id AND tasque_jobs.run_seq = x.seq
    AND +tasque_jobs.state = 'running'";

/// Reads what failure policy needs. Binds 1 ns, 2 id, 3 seq.
pub const FAILURE_INPUTS: &str = concat!(
    "SELECT attempt, max_attempts, retry FROM tasque_jobs",
    if_running!()
);

/// Records a failed attempt. Binds 1 ns, 2 id, 3 seq, 4 new state ('pending' or 'failed'),
/// 5 next attempt, 6 run_at absolute (or NULL), 7 delay_ms, 8 reason JSON.
pub const FAIL_RUN: &str = concat!(
    "UPDATE tasque_jobs SET state = ?4, attempt = ?5, lease_expires_at = NULL, ",
    "errors = json_insert(errors, '$[#]', json_object('attempt', attempt, 'run', run_seq, 'at_ms', ",
    now!(),
    ", 'reason', json(?8))), ",
    "run_seq = run_seq + (CASE WHEN ?4 = 'pending' THEN 1 ELSE 0 END), ",
    "run_at = CASE WHEN ?4 = 'pending' THEN COALESCE(?6, ",
    now!(),
    " + ?7) ELSE run_at END, ",
    "failure = CASE WHEN ?4 = 'failed' THEN json(?8) ELSE failure END, ",
    "cancel_at = CASE WHEN ?4 = 'failed' THEN NULL ELSE cancel_at END, ",
    "finished_at = CASE WHEN ?4 = 'failed' THEN ",
    now!(),
    " ELSE NULL END, ",
    "holds_queue = CASE WHEN ?4 = 'failed' AND EXISTS (SELECT 1 FROM tasque_queues AS q ",
    "WHERE q.ns = tasque_jobs.ns AND q.name = tasque_jobs.queue AND ((q.blocking = 1 ",
    "AND q.on_exhausted = 'stay_blocked') OR (tasque_jobs.ordering_key IS NOT NULL ",
    "AND q.key_on_exhausted = 'stay_blocked'))) THEN 1 ELSE 0 END",
    if_running!(),
    " RETURNING run_at"
);

/// Fails a run for good with a reason, reading nothing of the job (its row may not decode: the
/// retry strategy, or the errors list itself, may be the corrupt part). Binds 1 ns, 2 id,
/// 3 seq, 4 reason JSON.
pub const FAIL_FOR_GOOD: &str = concat!(
    "UPDATE tasque_jobs SET state = 'failed', lease_expires_at = NULL, ",
    "errors = CASE WHEN json_valid(errors) AND json_type(errors) = 'array' ",
    "THEN json_insert(errors, '$[#]', json_object('attempt', attempt, 'run', run_seq, ",
    "'at_ms', ",
    now!(),
    ", 'reason', json(?4))) ELSE json_array(json_object('attempt', attempt, 'run', run_seq, ",
    "'at_ms', ",
    now!(),
    ", 'reason', json(?4))) END, ",
    "failure = json(?4), cancel_at = NULL, finished_at = ",
    now!(),
    ", holds_queue = CASE WHEN EXISTS (SELECT 1 FROM tasque_queues AS q ",
    "WHERE q.ns = tasque_jobs.ns AND q.name = tasque_jobs.queue AND ((q.blocking = 1 ",
    "AND q.on_exhausted = 'stay_blocked') OR (tasque_jobs.ordering_key IS NOT NULL ",
    "AND q.key_on_exhausted = 'stay_blocked'))) THEN 1 ELSE 0 END",
    if_running!()
);

/// Gives a run back until a time, attempt not counted. Binds 1 ns, 2 id, 3 seq, 4 run_at
/// absolute (or NULL), 5 delay_ms.
pub const SCHEDULE_RUN: &str = concat!(
    "UPDATE tasque_jobs SET state = 'pending', run_seq = run_seq + 1, lease_expires_at = NULL, ",
    "run_at = COALESCE(?4, ",
    now!(),
    " + ?5)",
    if_running!()
);

/// Runs whose lease expired. Binds 1 ns, 2 limit.
pub const EXPIRED_RUNS: &str = concat!(
    "SELECT id, run_seq, attempt, max_attempts, retry FROM tasque_jobs ",
    "WHERE ns = ?1 AND state = 'running' AND lease_expires_at <= ",
    now!(),
    " ORDER BY lease_expires_at LIMIT ?2"
);
/// Cancels unfinished jobs past their cancellation policy. Binds 1 ns.
pub const CANCEL_BY_POLICY: &str = concat!(
    "UPDATE tasque_jobs SET state = 'cancelled', finished_at = ",
    now!(),
    ", lease_expires_at = NULL, cancel_at = NULL, failure = json_object('error', ",
    "CASE WHEN first_started_at IS NULL THEN 'max delay exceeded' ELSE 'max duration exceeded' END) ",
    "WHERE ns = ?1 AND cancel_at <= ",
    now!(),
    " AND state IN ('pending', 'running', 'sleeping', 'waiting')"
);

/// Cancels one unfinished job. Binds 1 ns, 2 id.
pub const CANCEL_JOB: &str = concat!(
    "UPDATE tasque_jobs SET state = 'cancelled', finished_at = ",
    now!(),
    ", lease_expires_at = NULL, cancel_at = NULL, failure = json_object('error', 'cancelled') ",
    "WHERE ns = ?1 AND id = ?2 AND state IN ('pending', 'running', 'sleeping', 'waiting', 'on_hold')"
);

/// Revives a failed or cancelled job as attempt 1 of a new run. Binds 1 ns, 2 id,
/// 3 max_attempts, 4 retry, 5 priority, 6 timeout_ms, 7 max_duration_ms, 8 max_delay_ms,
/// 9 headers, 10 run_at absolute (or NULL), 11 delay_ms.
pub const RETRY_JOB: &str = concat!(
    "UPDATE tasque_jobs SET state = 'pending', run_seq = run_seq + 1, attempt = 1, ",
    "max_attempts = ?3, retry = ?4, priority = ?5, timeout_ms = ?6, max_duration_ms = ?7, ",
    "max_delay_ms = ?8, headers = ?9, run_at = t.run_at, ",
    "cancel_at = CASE WHEN ?8 IS NULL THEN NULL ELSE t.run_at + ?8 END, ",
    "first_started_at = NULL, attempted_at = NULL, finished_at = NULL, lease_expires_at = NULL, ",
    "result = NULL, failure = NULL, worker_id = NULL, holds_queue = 0 ",
    "FROM (SELECT COALESCE(?10, n + ?11) AS run_at FROM (SELECT ",
    now!(),
    " AS n)) AS t WHERE ns = ?1 AND id = ?2 AND state IN ('failed', 'cancelled') ",
    "RETURNING run_seq"
);

/// The job holding the unique slot of another job (its key and period). Binds 1 ns, 2 id.
pub const UNIQUE_HOLDER: &str = "SELECT h.id FROM tasque_jobs AS j JOIN tasque_jobs AS h \
    ON h.ns = j.ns AND h.unique_key = j.unique_key AND h.unique_bucket = j.unique_bucket \
    AND (h.unique_states & (CASE h.state WHEN 'pending' THEN 1 WHEN 'running' THEN 2 \
    WHEN 'sleeping' THEN 4 WHEN 'waiting' THEN 8 WHEN 'completed' THEN 16 \
    WHEN 'failed' THEN 32 WHEN 'cancelled' THEN 64 ELSE 0 END)) <> 0 \
    WHERE j.ns = ?1 AND j.id = ?2 AND h.id <> j.id LIMIT 1";

/// One job's full record. Binds 1 ns, 2 id.
pub const GET_JOB: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM tasque_jobs WHERE ns = ?1 AND id = ?2"
);
/// Deletes a job unless it is running. Binds 1 ns, 2 id.
pub const DELETE_JOB: &str =
    "DELETE FROM tasque_jobs WHERE ns = ?1 AND id = ?2 AND state <> 'running'";
/// The cleaner: deletes one batch of jobs finished before a cutoff. Binds 1 ns, 2 age_ms, 3 limit.
pub const CLEAN: &str = concat!(
    "DELETE FROM tasque_jobs WHERE id IN (SELECT id FROM tasque_jobs WHERE ns = ?1 ",
    "AND finished_at <= ",
    now!(),
    " - ?2 AND state IN ('completed', 'failed', 'cancelled') ORDER BY finished_at LIMIT ?3)"
);

/// Appends ` AND (filter)` for an inspector filter to a statement whose WHERE has begun.
pub fn push_filter(qb: &mut QueryBuilder<'_, Sqlite>, filter: &JobFilter) {
    if !filter.states.is_empty() {
        qb.push(" AND (");
        for (i, state) in filter.states.iter().enumerate() {
            if i > 0 {
                qb.push(" OR ");
            }
            match state {
                JobState::Available => qb.push(crate::clock::clocked(concat!(
                    "(state = 'pending' AND run_at <= ",
                    now!(),
                    ")"
                ))),
                JobState::Scheduled => qb.push(crate::clock::clocked(concat!(
                    "(state = 'pending' AND run_at > ",
                    now!(),
                    ")"
                ))),
                other => qb.push("state = ").push_bind(other.as_str()),
            };
        }
        qb.push(")");
        // Says which of the two indexes by queue holds the matching jobs: the unfinished
        // jobs' (`finished_at IS NULL`) or the finished jobs' by state (migration v13).
        if filter.states.iter().all(|s| !s.is_finished()) {
            qb.push(" AND finished_at IS NULL");
        } else if filter.states.iter().all(|s| s.is_finished()) {
            qb.push(" AND finished_at IS NOT NULL");
        }
    }
    push_in(qb, "task", &filter.tasks);
    push_in(qb, "queue", &filter.queues);
}

fn push_in(qb: &mut QueryBuilder<'_, Sqlite>, column: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    qb.push(format!(" AND {column} IN ("));
    let mut list = qb.separated(", ");
    for value in values {
        list.push_bind(value.clone());
    }
    qb.push(")");
}

/// `SELECT COUNT(*)` of matching jobs.
pub fn count(ns: &str, filter: &JobFilter) -> QueryBuilder<'static, Sqlite> {
    let mut qb = QueryBuilder::new("SELECT COUNT(*) FROM tasque_jobs WHERE ns = ");
    qb.push_bind(ns.to_string());
    push_filter(&mut qb, filter);
    qb
}

/// One page of matching jobs by id; fetches `limit + 1` rows to tell whether more follow.
pub fn scan(
    ns: &str,
    filter: &JobFilter,
    after: Option<i64>,
    offset: u64,
    limit: u32,
) -> QueryBuilder<'static, Sqlite> {
    let mut qb = QueryBuilder::new(crate::clock::clocked(concat!(
        "SELECT ",
        job_columns!(),
        " FROM tasque_jobs WHERE ns = "
    )));
    qb.push_bind(ns.to_string());
    push_filter(&mut qb, filter);
    if let Some(after) = after {
        qb.push(" AND id > ").push_bind(after);
    }
    qb.push(" ORDER BY id LIMIT ")
        .push_bind(i64::from(limit) + 1);
    qb.push(" OFFSET ")
        .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
    qb
}

/// Deletes every matching job that is not running.
pub fn purge(ns: &str, filter: &JobFilter) -> QueryBuilder<'static, Sqlite> {
    let mut qb = QueryBuilder::new("DELETE FROM tasque_jobs WHERE state <> 'running' AND ns = ");
    qb.push_bind(ns.to_string());
    push_filter(&mut qb, filter);
    qb
}
