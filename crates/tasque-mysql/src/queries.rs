//! Every SQL statement of the MySQL/MariaDB engine, in one place (the schema is in `migrations/*.sql`).
//!
//! Statements are written against `@jobs@`, `@queues@`, ... (the namespace's quoted table
//! names); [`Sql::new`] renders the fixed ones once per store, and the methods render those
//! whose shape depends on a count (`IN (?, ?, ...)` lists, multi-row `VALUES`).
//!
//! Conventions: every time is `DATETIME(6)` in UTC from the server clock (`UTC_TIMESTAMP(6)`, constant
//! within a statement); durations are bound as microseconds (`INTERVAL ? MICROSECOND`); JSON is
//! stored as `LONGTEXT` written and read verbatim. The stored state `pending` covers both
//! `available` and `scheduled` (told apart by `run_at`). Writes by a run lock the run's row
//! first (`FOR UPDATE`), judge it in Rust, then update it, inside one transaction; the UPDATE
//! repeats the `state = 'running'` guard.

use sqlx::{MySql, QueryBuilder};
use tasque_durable::{JobFilter, JobState, PollOrder};

/// The server clock ([`crate::clock::DATABASE_CLOCK`]; rendered as the virtual clock in test
/// mode).
macro_rules! now {
    () => {
        "UTC_TIMESTAMP(6)"
    };
}

/// A job's unique bucket: its first run time in ms since the epoch divided by the period, 0
/// without one. Binds: 1 period ms (or NULL), 2 run_at (or NULL), 3 delay µs, 4 period ms.
macro_rules! unique_bucket {
    () => {
        concat!(
            "CASE WHEN ? IS NULL THEN 0 ELSE TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ",
            "COALESCE(?, ",
            now!(),
            " + INTERVAL ? MICROSECOND)) DIV 1000 DIV ? END"
        )
    };
}

/// Columns read into a `JobInfo`, plus the clock to tell available from scheduled.
macro_rules! job_columns {
    () => {
        concat!(
            "id, run_seq, queue, task, params, headers, state, priority, attempt, max_attempts, ",
            "retry, timeout_ms, max_duration_ms, max_delay_ms, idempotency_key, unique_key, ",
            "result, failure, errors, worker_id, created_at, run_at, first_started_at, attempted_at, finished_at, ",
            "lease_expires_at, ",
            now!(),
            " AS now"
        )
    };
}

/// Appends one attempt error to the `errors` JSON text (binds 1: the reason, encoded JSON).
/// Must come first in a SET list: it reads `attempt` and `run_seq` before they change.
macro_rules! append_error {
    () => {
        concat!(
            "errors = CONCAT(LEFT(errors, CHAR_LENGTH(errors) - 1), ",
            "IF(errors = '[]', '', ','), '{\"attempt\":', attempt, ',\"run\":', run_seq, ",
            "',\"at_ms\":', TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ",
            now!(),
            ") DIV 1000, ',\"reason\":', ?, '}]')"
        )
    };
}

/// A job's automatic cancellation time: its run time plus the bound max delay in µs (NULL: none),
/// held at the end of the `DATETIME` range (a run time near year 9999 plus a long delay would
/// overflow it).
macro_rules! cancel_at {
    () => {
        "run_at + INTERVAL LEAST(?, TIMESTAMPDIFF(MICROSECOND, run_at, \
         '9999-12-31 23:59:59.999999')) MICROSECOND"
    };
}

/// Drops the namespace's stored procedures (each sent as text).
pub const DROP_ROUTINES: [&str; 3] = [
    "DROP PROCEDURE IF EXISTS `@stem@_spawn`",
    "DROP PROCEDURE IF EXISTS `@stem@_spawn_check`",
    "DROP PROCEDURE IF EXISTS `@stem@_retry_check`",
];

/// Run every time a pooled connection opens: locking reads lock only the rows they return.
pub const SESSION_SETUP: &str = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";
/// The server's version string.
pub const SERVER_VERSION: &str = "SELECT VERSION()";

/// `?, ?, ...` with `n` placeholders.
fn marks(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

/// The columns a claim reads, with the lease end it takes computed by the same statement
/// (binds 1: the lease in µs), so a claim needs no read-back after it takes its jobs.
macro_rules! pick_columns {
    () => {
        concat!(
            "id, run_seq, queue, task, params, headers, attempt, max_attempts, retry, priority, ",
            "timeout_ms, ",
            now!(),
            " + INTERVAL ? MICROSECOND AS lease_expires_at, wake_event, event_payload, run_at"
        )
    };
}

/// The per-key window over jobs aliased `j`: no K-th unfinished job of its key before it
/// (binds 1: the key concurrency minus one; a scalar subquery, as MariaDB does not let a
/// derived table see the outer row).
macro_rules! key_window {
    () => {
        "(j.ordering_key IS NULL OR (SELECT p.id FROM @jobs@ AS p \
         WHERE p.queue = j.queue AND p.ordering_key = j.ordering_key AND p.id < j.id \
         AND (p.state IN ('pending', 'running', 'sleeping', 'waiting') OR p.holds_queue) \
         ORDER BY p.id LIMIT 1 OFFSET ?) IS NULL)"
    };
}

/// The start (epoch ms) of the current window (binds 2: the window ms, twice).
macro_rules! epoch_window {
    () => {
        concat!(
            "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ",
            now!(),
            ") DIV 1000 DIV ?) * ?"
        )
    };
}

/// A job's rate key (alias `j`; binds 2: the key kind, the JSON path).
macro_rules! rate_key {
    () => {
        "LEFT(CASE ? WHEN 'ordering_key' THEN COALESCE(j.ordering_key, '') \
         WHEN 'arg' THEN COALESCE(JSON_UNQUOTE(JSON_EXTRACT(j.params, ?)), '') ELSE '' END, 600)"
    };
}

/// The ids a rate-limited gated queue may start, in `order_by`.
macro_rules! pick_rated {
    ($order_by:literal) => {
        concat!(
            "SELECT id FROM (SELECT c.id, c.priority, c.run_at, ROW_NUMBER() OVER \
             (PARTITION BY c.rkey ORDER BY ",
            $order_by,
            ") + COALESCE((SELECT w.starts \
             FROM `@stem@_rate_windows` AS w WHERE w.queue = c.queue AND w.`key` = c.rkey \
             AND w.window_start_ms = c.cur), 0) AS nth FROM (SELECT j.id, j.queue, j.priority, \
             j.run_at, ",
            epoch_window!(),
            " AS cur, ",
            rate_key!(),
            " AS rkey FROM @jobs@ AS j \
             WHERE j.state = 'pending' AND j.queue = ? AND j.run_at <= ",
            now!(),
            " \
             AND (j.cancel_at IS NULL OR j.cancel_at > ",
            now!(),
            ") AND ",
            key_window!(),
            ") AS c) AS r WHERE r.nth <= ? ORDER BY ",
            $order_by,
            " LIMIT ?"
        )
    };
}

/// The plain claim's condition: the queue (bound) is neither paused nor gated.
macro_rules! ungated {
    () => {
        "NOT EXISTS (SELECT 1 FROM @queues@ AS q WHERE q.name = ? \
         AND (q.paused OR q.concurrency_limit IS NOT NULL OR q.blocking OR q.keyed \
         OR q.rate_limit IS NOT NULL))"
    };
}

/// `CASE id WHEN ? THEN ? ... END` for `n` jobs (binds n (id, value) pairs).
fn case_id(n: usize) -> String {
    format!("CASE id {} END", vec!["WHEN ? THEN ?"; n.max(1)].join(" "))
}

/// The placeholders of a list of `n` ids, filled up to [`shape`]`(n)` (see
/// [`bind_ids`](crate::ops::bind_ids)).
fn id_marks(n: usize) -> String {
    marks(shape(n))
}

/// `(?, ?), (?, ?), ...` with `n` pairs.
fn pairs(n: usize) -> String {
    vec!["(?, ?)"; n.max(1)].join(", ")
}

/// The row count a statement whose shape depends on a count is written for: `n` rounded up to
/// a power of two. The caller fills the rows beyond `n` by repeating its last one (harmless in
/// `IN` lists and `CASE`), so such statements come in a few shapes that stay in each
/// connection's statement cache: a new shape costs a prepare round trip and a parse on the
/// server, which for a batch of hundreds of rows costs about as much as running it.
pub fn shape(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $sql:expr;)*) => {
        /// The statements of one store, rendered for its tables.
        #[derive(Debug)]
        pub struct Sql {
            /// `(placeholder, quoted table name)` pairs.
            tables: Vec<(&'static str, String)>,
            /// Test mode: what the server clock is rendered as (the virtual clock).
            clock: Option<String>,
            $($(#[$doc])* pub $name: String,)*
        }

        impl Sql {
            /// Renders every fixed statement for the tables of `stem`, reading the virtual
            /// clock in test mode (`virtual_clock`).
            pub fn new(stem: &str, virtual_clock: bool) -> Sql {
                let mut tables: Vec<(&'static str, String)> =
                    ["jobs", "queues", "migrations", "checkpoints", "events"]
                        .iter()
                        .map(|t| (placeholder(t), format!("`{stem}_{t}`")))
                        .collect();
                // The bare stem, for names that must be unique in the database (constraints).
                tables.push(("@stem@", stem.to_string()));
                let clock = virtual_clock.then(|| crate::clock::virtual_clock(stem));
                let mut sql = Sql { tables, clock, $($name: String::new(),)* };
                $(sql.$name = sql.render($sql);)*
                sql
            }
        }
    };
}

fn placeholder(table: &str) -> &'static str {
    match table {
        "jobs" => "@jobs@",
        "queues" => "@queues@",
        "migrations" => "@migrations@",
        "checkpoints" => "@checkpoints@",
        _ => "@events@",
    }
}

statements! {
    /// Reads the server clock.
    now = concat!("SELECT ", now!());
    /// Sets the virtual clock of test mode (schema version 10). Binds the time.
    set_clock = "INSERT INTO `@stem@_clock` (id, at) VALUES (1, ?) ON DUPLICATE KEY UPDATE at = VALUES(at)";
    /// Clears the virtual clock (back to the server clock).
    clear_clock = "DELETE FROM `@stem@_clock`";

    /// Whether the migration history table exists. Binds 1 table name (unquoted).
    has_table = "SELECT COUNT(*) FROM information_schema.TABLES \
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?";
    /// How many of 4 tables exist. Binds 4 table names (unquoted).
    count_tables = "SELECT COUNT(*) FROM information_schema.TABLES \
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?, ?, ?, ?)";
    /// Whether a table has a column. Binds 1 table name (unquoted), 2 column.
    has_column = "SELECT COUNT(*) FROM information_schema.COLUMNS \
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?";
    /// Whether a table has a constraint. Binds 1 table name (unquoted), 2 constraint name.
    has_constraint = "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS \
        WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CONSTRAINT_NAME = ?";
    /// Whether a table has an index. Binds 1 table name (unquoted), 2 index name.
    has_index = "SELECT COUNT(*) FROM information_schema.STATISTICS \
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?";
    /// Creates the migration history.
    create_migrations = concat!("CREATE TABLE IF NOT EXISTS @migrations@ (",
        "version BIGINT NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, ",
        "applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
    /// The schema version.
    version = "SELECT MAX(version) FROM @migrations@";
    /// Records an applied migration. Binds 1 version, 2 name.
    record_migration = concat!("INSERT INTO @migrations@ (version, name, applied_at) VALUES (?, ?, ",
        now!(), ")");
    /// Serialises migrators of a namespace across processes (binds 1 lock name): 1 when taken.
    lock = "SELECT GET_LOCK(?, 300)";
    /// Releases the migration lock (binds 1 lock name).
    unlock = "SELECT RELEASE_LOCK(?)";
    /// Drops every table of the namespace (checkpoints and edges first: they reference jobs).
    drop_tables = "DROP TABLE IF EXISTS @checkpoints@, `@stem@_job_deps`, @jobs@, @queues@, @events@, @migrations@, `@stem@_schedules`, `@stem@_leases`, `@stem@_workers`, `@stem@_clock`, `@stem@_rate_windows`";

    /// Sets a queue's paused flag, creating it if needed. Binds 1 name, 2 paused, 3 paused.
    set_queue_paused = concat!("INSERT INTO @queues@ (name, paused, created_at) VALUES (?, ?, ",
        now!(), ") ON DUPLICATE KEY UPDATE paused = ?");
    /// Every queue.
    list_queues = "SELECT name, paused, concurrency_limit, blocking, created_at, on_exhausted \
        FROM @queues@ ORDER BY name";
    /// Job counts by queue and state (pending split by readiness, NULL for the other states).
    /// (Scans of the narrow `jobs_head` and `jobs_pending_age` indexes, which hold every
    /// column they read.)
    queue_counts = concat!("SELECT queue, state, NULL AS ready, COUNT(*) FROM @jobs@ \
        FORCE INDEX (jobs_head) WHERE state <> 'pending' GROUP BY queue, state \
        UNION ALL SELECT ready_queue, 'pending', CAST(run_at <= ", now!(), " AS SIGNED) AS ready, \
        COUNT(*) FROM @jobs@ FORCE INDEX (jobs_pending_age) WHERE ready_queue IS NOT NULL \
        GROUP BY ready_queue, ready");

    /// The rows a multi-row insert wrote, by their batch token. Binds 1 first id, 2 token.
    inserted = "SELECT id, batch_ord FROM @jobs@ WHERE id >= ? AND batch_token = ?";

    /// Picks ready jobs of one queue by priority, locking them and reading what their claims
    /// carry; rows other claimers hold are skipped, never waited for. Binds 1 lease µs,
    /// 2 queue, 3 limit.
    pick_by_priority = concat!("SELECT ", pick_columns!(), " FROM @jobs@ FORCE INDEX (jobs_pending) \
        WHERE state = 'pending' AND ready_queue = ? AND run_at <= ", now!(), " \
        AND (cancel_at IS NULL OR cancel_at > ", now!(), ") \
        ORDER BY priority, run_at, id LIMIT ? FOR UPDATE SKIP LOCKED");
    /// Like `pick_by_priority`, oldest first.
    pick_by_age = concat!("SELECT ", pick_columns!(), " FROM @jobs@ FORCE INDEX (jobs_pending_age) \
        WHERE state = 'pending' AND ready_queue = ? AND run_at <= ", now!(), " \
        AND (cancel_at IS NULL OR cancel_at > ", now!(), ") \
        ORDER BY run_at, id LIMIT ? FOR UPDATE SKIP LOCKED");
    /// Like `pick_by_priority`, for a gated queue: honours the per-key window (a keyed job
    /// is picked only while fewer than the queue's key concurrency jobs of its key created
    /// before it are unfinished). Binds 1 lease µs, 2 queue, 3 key concurrency minus one, 4 limit.
    pick_keyed_by_priority = concat!("SELECT ", pick_columns!(), " FROM @jobs@ AS j \
        FORCE INDEX (jobs_pending) WHERE state = 'pending' AND ready_queue = ? AND run_at <= ", now!(), " \
        AND (cancel_at IS NULL OR cancel_at > ", now!(), ") AND ", key_window!(), " \
        ORDER BY priority, run_at, id LIMIT ? FOR UPDATE SKIP LOCKED");
    /// Like `pick_keyed_by_priority`, oldest first.
    pick_keyed_by_age = concat!("SELECT ", pick_columns!(), " FROM @jobs@ AS j \
        FORCE INDEX (jobs_pending_age) WHERE state = 'pending' AND ready_queue = ? AND run_at <= ", now!(), " \
        AND (cancel_at IS NULL OR cancel_at > ", now!(), ") AND ", key_window!(), " \
        ORDER BY run_at, id LIMIT ? FOR UPDATE SKIP LOCKED");
    /// The ids a rate-limited gated queue may start (unlocked: the caller locks each), by
    /// priority: the per-key window, then at most the limit per rate key in the current
    /// window. Binds 1 window ms, 2 window ms, 3 key kind, 4 JSON path, 5 queue, 6 key
    /// concurrency minus one, 7 rate limit, 8 limit.
    pick_rated_by_priority = pick_rated!("priority, run_at, id");
    /// Like `pick_rated_by_priority`, oldest first.
    pick_rated_by_age = pick_rated!("run_at, id");
    /// Counts the starts of claimed jobs in their rate keys' windows: the window of their start
    /// (`attempted_at`; `@ids@`: the claimed ids, written in). Binds 1 queue, 2 key kind,
    /// 3 JSON path, 4 window ms, 5 window ms.
    count_starts = concat!("INSERT INTO `@stem@_rate_windows` (queue, `key`, window_start_ms, \
        starts) SELECT ?, k.rkey, MAX(k.w), COUNT(*) FROM (SELECT ", rate_key!(), " AS rkey, \
        (TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', j.attempted_at) DIV 1000 DIV ?) * ? AS w \
        FROM @jobs@ AS j WHERE j.id IN (@ids@)) AS k GROUP BY k.rkey \
        ON DUPLICATE KEY UPDATE starts = CASE WHEN window_start_ms = VALUES(window_start_ms) \
        THEN starts + VALUES(starts) WHEN window_start_ms > VALUES(window_start_ms) THEN starts \
        ELSE VALUES(starts) END, \
        window_start_ms = GREATEST(window_start_ms, VALUES(window_start_ms))");
    /// Flags a queue as keyed. Binds 1 name.
    mark_keyed = "UPDATE @queues@ SET keyed = TRUE WHERE name = ? AND NOT keyed";
    /// Sets a queue's key policy (creating it). Binds 1 name, 2 concurrency, 3 policy.
    set_key_policy = concat!("INSERT INTO @queues@ (name, key_concurrency, key_on_exhausted, \
        created_at) VALUES (?, ?, ?, ", now!(), ") ON DUPLICATE KEY UPDATE \
        key_concurrency = VALUES(key_concurrency), key_on_exhausted = VALUES(key_on_exhausted)");
    /// Sets or removes a queue's rate limit (creating it). Binds 1 name, 2 limit (or NULL),
    /// 3 window ms, 4 key.
    set_rate_limit = concat!("INSERT INTO @queues@ (name, rate_limit, rate_window_ms, rate_key, \
        created_at) VALUES (?, ?, ?, ?, ", now!(), ") ON DUPLICATE KEY UPDATE \
        rate_limit = VALUES(rate_limit), rate_window_ms = VALUES(rate_window_ms), \
        rate_key = VALUES(rate_key)");
    /// A queue's flow settings. Binds 1 name.
    queue_flow = "SELECT key_concurrency, key_on_exhausted, rate_limit, rate_window_ms, rate_key \
        FROM @queues@ WHERE name = ?";
    /// A job's queue, ordering key, whether it is ready now, and the clock. Binds 1 id.
    job_flow = concat!("SELECT queue, ordering_key, CAST(state = 'pending' AND run_at <= ", now!(), " \
        AND (cancel_at IS NULL OR cancel_at > ", now!(), ") AS SIGNED), ", now!(), " \
        FROM @jobs@ WHERE id = ?");
    /// The unfinished jobs of a key created before a job. Binds 1 queue, 2 key, 3 id, 4 limit.
    key_ahead = "SELECT id, CAST(holds_queue AS SIGNED) FROM @jobs@ WHERE queue = ? \
        AND ordering_key = ? AND id < ? \
        AND (state IN ('pending', 'running', 'sleeping', 'waiting') OR holds_queue) \
        ORDER BY id LIMIT ?";
    /// A job's rate key and the starts counted in its current window. Binds 1 window ms,
    /// 2 window ms, 3 key kind, 4 JSON path, 5 id.
    job_rate = concat!("SELECT k.rkey, CAST(COALESCE((SELECT w.starts FROM `@stem@_rate_windows` AS w \
        WHERE w.queue = k.queue AND w.`key` = k.rkey AND w.window_start_ms = k.cur), 0) AS SIGNED) \
        FROM (SELECT j.queue, ", epoch_window!(), " AS cur, ", rate_key!(), " AS rkey \
        FROM @jobs@ AS j WHERE j.id = ?) AS k");
    /// Like `pick_by_priority`, for the plain claim: picks nothing in a queue that is paused
    /// or gated (a concurrency limit or blocking mode), which the gated claim serves. (The
    /// queue's row is read, not locked: a locking clause does not reach a subquery.) Binds 1
    /// lease µs, 2 queue, 3 queue, 4 limit.
    pick_ungated_by_priority = concat!("SELECT ", pick_columns!(), " FROM @jobs@ \
        FORCE INDEX (jobs_pending) WHERE state = 'pending' AND ready_queue = ? AND ", ungated!(), " \
        AND run_at <= ", now!(), " AND (cancel_at IS NULL OR cancel_at > ", now!(), ") \
        ORDER BY priority, run_at, id LIMIT ? FOR UPDATE SKIP LOCKED");
    /// Like `pick_ungated_by_priority`, oldest first.
    pick_ungated_by_age = concat!("SELECT ", pick_columns!(), " FROM @jobs@ \
        FORCE INDEX (jobs_pending_age) WHERE state = 'pending' AND ready_queue = ? AND ", ungated!(), " \
        AND run_at <= ", now!(), " AND (cancel_at IS NULL OR cancel_at > ", now!(), ") \
        ORDER BY run_at, id LIMIT ? FOR UPDATE SKIP LOCKED");

    /// Records a failed attempt with another to come. Binds 1 reason, 2 next attempt,
    /// 3 run_at (or NULL), 4 delay µs, 5 id, 6 seq.
    fail_retry = concat!("UPDATE @jobs@ SET ", append_error!(), ", attempt = ?, \
        state = 'pending', run_seq = run_seq + 1, lease_expires_at = NULL, finished_at = NULL, \
        run_at = COALESCE(?, ", now!(), " + INTERVAL ? MICROSECOND) \
        WHERE id = ? AND run_seq = ? AND state = 'running'");
    /// Records the last failed attempt. Binds 1 reason, 2 reason, 3 id, 4 seq.
    fail_final = concat!("UPDATE @jobs@ SET ", append_error!(), ", state = 'failed', \
        failure = ?, lease_expires_at = NULL, cancel_at = NULL, finished_at = ", now!(), ", \
        holds_queue = EXISTS (SELECT 1 FROM @queues@ AS q WHERE q.name = @jobs@.queue \
          AND ((q.blocking AND q.on_exhausted = 'stay_blocked') \
          OR (@jobs@.ordering_key IS NOT NULL AND q.key_on_exhausted = 'stay_blocked'))) \
        WHERE id = ? AND run_seq = ? AND state = 'running'");
    /// A job's run time. Binds 1 id.
    run_at = "SELECT run_at FROM @jobs@ WHERE id = ?";
    /// Gives a run back until a time, attempt not counted. Binds 1 run_at (or NULL), 2 delay µs,
    /// 3 id, 4 seq.
    schedule_run = concat!("UPDATE @jobs@ SET state = 'pending', run_seq = run_seq + 1, \
        lease_expires_at = NULL, run_at = COALESCE(?, ", now!(), " + INTERVAL ? MICROSECOND) \
        WHERE id = ? AND run_seq = ? AND state = 'running'");

    /// Runs whose lease expired. Binds 1 limit.
    expired_runs = concat!("SELECT id, run_seq FROM @jobs@ FORCE INDEX (jobs_lease) \
        WHERE state = 'running' AND lease_expires_at <= ", now!(), " \
        ORDER BY lease_expires_at LIMIT ?");
    /// Cancels unfinished jobs past their cancellation policy.
    cancel_by_policy = concat!("UPDATE @jobs@ SET state = 'cancelled', finished_at = ", now!(), ", \
        lease_expires_at = NULL, wake_at = NULL, failure = CONCAT('{\"error\":\"', \
        IF(first_started_at IS NULL, 'max delay exceeded', 'max duration exceeded'), '\"}'), \
        cancel_at = NULL WHERE cancel_at <= ", now!(), " \
        AND state IN ('pending', 'running', 'sleeping', 'waiting')");
    /// Locks one job for cancel or retry. Binds 1 id.
    lock_job = concat!("SELECT state, run_seq, run_at, ", now!(), ", holds_queue FROM @jobs@ \
        WHERE id = ? FOR UPDATE");
    /// Cancels one unfinished job. Binds 1 id.
    cancel_job = concat!("UPDATE @jobs@ SET state = 'cancelled', finished_at = ", now!(), ", \
        lease_expires_at = NULL, cancel_at = NULL, wake_at = NULL, failure = '{\"error\":\"cancelled\"}' \
        WHERE id = ? AND state IN ('pending', 'running', 'sleeping', 'waiting', 'on_hold')");
    /// The job holding the unique slot of another job (its key and period). Binds 1 id,
    /// 2 id, 3 id.
    unique_holder = "SELECT h.id FROM @jobs@ AS h WHERE h.unique_slot = \
        (SELECT j.unique_key FROM @jobs@ AS j WHERE j.id = ?) AND h.unique_bucket = \
        (SELECT j.unique_bucket FROM @jobs@ AS j WHERE j.id = ?) AND h.id <> ? LIMIT 1";
    /// Revives a failed or cancelled job as attempt 1 of a new run. Binds 1 max_attempts,
    /// 2 retry, 3 priority, 4 timeout ms, 5 max_duration ms, 6 max_delay ms, 7 headers,
    /// 8 run_at (or NULL), 9 delay µs, 10 max_delay µs, 11 id.
    retry_job = concat!("UPDATE @jobs@ SET state = 'pending', run_seq = run_seq + 1, attempt = 1, \
        max_attempts = ?, retry = ?, priority = ?, timeout_ms = ?, max_duration_ms = ?, \
        max_delay_ms = ?, headers = ?, run_at = COALESCE(?, ", now!(), " + INTERVAL ? MICROSECOND), \
        cancel_at = ", cancel_at!(), ", first_started_at = NULL, \
        attempted_at = NULL, finished_at = NULL, lease_expires_at = NULL, result = NULL, \
        failure = NULL, worker_id = NULL, holds_queue = FALSE \
        WHERE id = ? AND state IN ('failed', 'cancelled')");

    /// One job's full record. Binds 1 id.
    get_job = concat!("SELECT ", job_columns!(), " FROM @jobs@ WHERE id = ?");
    /// Deletes a job unless it is running. Binds 1 id.
    delete_job = "DELETE FROM @jobs@ WHERE id = ? AND state <> 'running'";
    /// The cleaner: one batch of jobs finished before a cutoff. Binds 1 age µs, 2 limit.
    clean = concat!("DELETE FROM @jobs@ WHERE finished_at <= ", now!(), " - INTERVAL ? MICROSECOND \
        AND state IN ('completed', 'failed', 'cancelled') ORDER BY finished_at LIMIT ?");

    /// Every checkpoint of a job. Binds 1 job id.
    get_checkpoints = "SELECT step, state, run_seq, updated_at FROM @checkpoints@ \
        WHERE job_id = ? ORDER BY step";
    /// Stores (or replaces) a checkpoint. Binds 1 job id, 2 step, 3 state (JSON text),
    /// 4 run_seq, 5 state, 6 run_seq.
    set_checkpoint = concat!("INSERT INTO @checkpoints@ (job_id, step, state, run_seq, updated_at) \
        VALUES (?, ?, ?, ?, ", now!(), ") ON DUPLICATE KEY UPDATE state = ?, run_seq = ?, \
        updated_at = ", now!());
    /// Ends a run by suspending its job until a time (SET items apply in order: `run_at`
    /// takes the new `wake_at`). Binds 1 wake time (or NULL), 2 delay µs, 3 id, 4 seq.
    sleep_run = concat!("UPDATE @jobs@ SET state = 'sleeping', run_seq = run_seq + 1, \
        lease_expires_at = NULL, wake_at = COALESCE(?, ", now!(), " + INTERVAL ? MICROSECOND), \
        run_at = wake_at, wake_event = NULL, event_payload = NULL \
        WHERE id = ? AND run_seq = ? AND state = 'running'");
    /// Locks an event's row for the transaction, creating it as "not emitted yet" (payload
    /// NULL; an emitted payload is never NULL) when missing, so a wait and an emit of one event
    /// serialise. Binds 1 name.
    lock_event = concat!("INSERT INTO @events@ (name, payload, emitted_at) VALUES (?, NULL, ",
        now!(), ") ON DUPLICATE KEY UPDATE name = name");
    /// A stored event's payload (NULL: not emitted). Binds 1 name.
    get_event = "SELECT payload FROM @events@ WHERE name = ?";
    /// Ends a run by making its job wait for an event. Binds 1 name, 2 timeout µs (or NULL: no
    /// timeout), 3 id, 4 seq.
    wait_run = concat!("UPDATE @jobs@ SET state = 'waiting', run_seq = run_seq + 1, \
        lease_expires_at = NULL, wake_event = ?, event_payload = NULL, \
        wake_at = ", now!(), " + INTERVAL ? MICROSECOND \
        WHERE id = ? AND run_seq = ? AND state = 'running'");
    /// Stores an event's payload. Binds 1 name, 2 payload, 3 payload (JSON text).
    store_event = concat!("INSERT INTO @events@ (name, payload, emitted_at) VALUES (?, ?, ",
        now!(), ") ON DUPLICATE KEY UPDATE payload = ?, emitted_at = ", now!());
    /// Wakes an event's waiters: claimable now, carrying the payload. Binds 1 payload, 2 name.
    wake_waiters = concat!("UPDATE @jobs@ SET state = 'pending', run_at = ", now!(), ", \
        wake_at = NULL, event_payload = ? WHERE state = 'waiting' AND wake_event = ?");
    /// Makes due sleepers and timed-out waiters claimable (a timed-out waiter keeps its
    /// `wake_event` with no payload; `run_at` takes `wake_at` before it is cleared).
    wake_due = concat!("UPDATE @jobs@ SET state = 'pending', run_at = wake_at, wake_at = NULL \
        WHERE state IN ('sleeping', 'waiting') AND wake_at <= ", now!());
    /// Microseconds until the next sleeper or timed waiter is due (no row: none).
    next_wake = concat!("SELECT TIMESTAMPDIFF(MICROSECOND, ", now!(), ", wake_at) FROM @jobs@ \
        WHERE wake_at IS NOT NULL AND state IN ('sleeping', 'waiting') ORDER BY wake_at LIMIT 1");

    /// Sets a queue's concurrency limit, creating it if needed. Binds 1 name, 2 limit, 3 limit.
    set_queue_limit = concat!("INSERT INTO @queues@ (name, concurrency_limit, created_at) \
        VALUES (?, ?, ", now!(), ") ON DUPLICATE KEY UPDATE concurrency_limit = ?");
    /// Sets a queue's blocking mode and policy, creating it if needed. Binds 1 name,
    /// 2 blocking, 3 policy, 4 blocking, 5 policy.
    set_queue_blocking = concat!("INSERT INTO @queues@ (name, blocking, on_exhausted, created_at) \
        VALUES (?, ?, ?, ", now!(), ") ON DUPLICATE KEY UPDATE blocking = ?, on_exhausted = ?");
    /// How many jobs of a queue run. Binds 1 queue.
    running_in_queue = "SELECT COUNT(*) FROM @jobs@ WHERE state = 'running' AND queue = ?";
    /// A failed job holding its blocking queue. Binds 1 queue.
    holding_job = "SELECT id FROM @jobs@ WHERE holds_queue AND queue = ? ORDER BY id LIMIT 1";
    /// A blocking queue's head (its oldest unfinished job, each state's oldest found through
    /// `jobs_head`): id, stored state, ready now. Binds the queue 4 times.
    queue_head = concat!("SELECT id, state, CAST(state = 'pending' AND run_at <= ", now!(), " \
        AND (cancel_at IS NULL OR cancel_at > ", now!(), ") AS SIGNED) FROM @jobs@ \
        WHERE id = (SELECT MIN(h) FROM (\
          SELECT MIN(id) AS h FROM @jobs@ WHERE state = 'pending' AND queue = ? \
          UNION ALL SELECT MIN(id) FROM @jobs@ WHERE state = 'running' AND queue = ? \
          UNION ALL SELECT MIN(id) FROM @jobs@ WHERE state = 'sleeping' AND queue = ? \
          UNION ALL SELECT MIN(id) FROM @jobs@ WHERE state = 'waiting' AND queue = ?) AS heads)");
    /// Locks one pending job for a claim (a blocking queue's head), as the picks read it.
    /// Binds 1 lease µs, 2 id.
    lock_pending = concat!("SELECT ", pick_columns!(), " FROM @jobs@ \
        WHERE id = ? AND state = 'pending' FOR UPDATE");
    /// Cancels a failed job that holds its blocking queue. Binds 1 id.
    cancel_holding = concat!("UPDATE @jobs@ SET state = 'cancelled', holds_queue = FALSE, \
        finished_at = ", now!(), ", failure = '{\"error\":\"cancelled\"}' \
        WHERE id = ? AND state = 'failed' AND holds_queue");
}

impl Sql {
    /// The one renderer of the engine's statements: replaces the table placeholders of `sql`
    /// and, in test mode, its reads of the server clock by the virtual clock (see
    /// [`crate::clock`]).
    pub fn render(&self, sql: &str) -> String {
        let mut out = sql.to_string();
        for (placeholder, table) in &self.tables {
            out = out.replace(placeholder, table);
        }
        if let Some(clock) = &self.clock {
            out = out.replace(crate::clock::DATABASE_CLOCK, clock);
        }
        out
    }

    /// Whether statements read the virtual clock (test mode).
    pub fn clocked(&self) -> bool {
        self.clock.is_some()
    }

    /// Creates `n` queues unless they exist. Binds n names.
    pub fn ensure_queues(&self, n: usize) -> String {
        let rows = vec![concat!("(?, ", now!(), ")"); n.max(1)].join(", ");
        self.render(&format!(
            "INSERT INTO @queues@ (name, created_at) VALUES {rows} ON DUPLICATE KEY UPDATE name = name"
        ))
    }

    /// Inserts `n` jobs; a job whose idempotency key is taken in its queue is skipped. Binds per
    /// job: 1 queue, 2 task, 3 params, 4 headers, 5 priority, 6 max_attempts, 7 retry,
    /// 8 timeout ms, 9 max_duration ms, 10 max_delay ms, 11 idempotency key, 12 run_at (or
    /// NULL), 13 delay µs, 14 max_delay µs, 15 batch token, 16 batch position, 17 unique key,
    /// 18 unique states, then the bucket's binds (see [`unique_bucket!`]), and when `ordered`
    /// the ordering key.
    pub fn insert_jobs(&self, n: usize, ordered: bool) -> String {
        let row = concat!(
            "(?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, COALESCE(?, ",
            now!(),
            " + INTERVAL ? MICROSECOND), ",
            cancel_at!(),
            ", ",
            now!(),
            ", '[]', ?, ?, ?, ?, ",
            unique_bucket!()
        );
        // The ordering key only when a job has one: plain batches keep their statement.
        let row = if ordered {
            format!("{row}, ?)")
        } else {
            format!("{row})")
        };
        let rows = vec![row; n.max(1)].join(", ");
        let key_column = if ordered { ", ordering_key" } else { "" };
        self.render(&format!(
            "INSERT INTO @jobs@ (queue, task, params, headers, state, priority, max_attempts, \
             retry, timeout_ms, max_duration_ms, max_delay_ms, idempotency_key, run_at, \
             cancel_at, created_at, errors, batch_token, batch_ord, unique_key, unique_states, \
             unique_bucket{key_column}) VALUES {rows} \
             ON DUPLICATE KEY UPDATE id = id"
        ))
    }

    /// Inserts `n` plain jobs: no idempotency key, unique key nor ordering key, ready at once
    /// and without a max delay (what most batches are). Without those, no row can meet a
    /// unique key and every column the general [`insert_jobs`](Self::insert_jobs) computes
    /// per row is a constant or its default (no unique bucket, no cancellation time), so the
    /// statement binds half as much and the server evaluates no expression per row. Binds
    /// per job: 1 queue, 2 task, 3 params, 4 headers, 5 priority, 6 max_attempts, 7 retry,
    /// 8 timeout ms, 9 max_duration ms, 10 batch token, 11 batch position.
    pub fn insert_plain_jobs(&self, n: usize) -> String {
        let row = concat!(
            "(?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ",
            now!(),
            ", ",
            now!(),
            ", '[]', ?, ?)"
        );
        let rows = vec![row; n.max(1)].join(", ");
        self.render(&format!(
            "INSERT INTO @jobs@ (queue, task, params, headers, state, priority, max_attempts, \
             retry, timeout_ms, max_duration_ms, run_at, created_at, errors, batch_token, \
             batch_ord) VALUES {rows}"
        ))
    }

    /// The job holding a unique slot, read with a shared lock. Binds 1 unique key, then the
    /// bucket's binds (see [`unique_bucket!`]).
    pub fn find_unique(&self) -> String {
        self.render(concat!(
            "SELECT id, run_seq, attempt FROM @jobs@ WHERE unique_slot = ? AND unique_bucket = ",
            unique_bucket!(),
            " LOCK IN SHARE MODE"
        ))
    }

    /// The jobs holding `n` idempotency keys, read with a shared lock so a key committed by
    /// another transaction meanwhile is seen. Binds per key: queue, key.
    pub fn find_keys(&self, n: usize) -> String {
        let any = vec!["(queue = ? AND idempotency_key = ?)"; n.max(1)].join(" OR ");
        self.render(&format!(
            "SELECT id, run_seq, attempt, queue, idempotency_key FROM @jobs@ WHERE {any} \
             LOCK IN SHARE MODE"
        ))
    }

    /// Takes `n` picked jobs under a lease. Binds 1 worker id, 2 lease end, then n ids. (By
    /// primary key, forced: right after a bulk insert the optimizer's statistics may prefer a
    /// range over every pending job.)
    /// (`cancel_at` is set before `first_started_at`: MySQL applies SET items in order.)
    /// The row's `claim_room` (schema version 11) is given up for the columns the claim fills.
    pub fn take(&self, n: usize) -> String {
        self.render(&format!(
            concat!(
                "UPDATE @jobs@ FORCE INDEX (PRIMARY) SET claim_room = NULL, state = 'running', ",
                "worker_id = ?, ",
                "lease_expires_at = ?, attempted_at = ",
                now!(),
                ", ",
                "cancel_at = CASE WHEN first_started_at IS NOT NULL THEN cancel_at ",
                "WHEN max_duration_ms IS NULL THEN NULL ",
                "ELSE ",
                now!(),
                " + INTERVAL max_duration_ms * 1000 MICROSECOND END, ",
                "first_started_at = COALESCE(first_started_at, ",
                now!(),
                ") ",
                "WHERE id IN ({}) AND state = 'pending'"
            ),
            id_marks(n)
        ))
    }

    /// The unpaused gated queues among `n` (unlocked: the gated claim locks them). Binds n
    /// names.
    pub fn gated_among(&self, n: usize) -> String {
        self.render(&format!(
            "SELECT name FROM @queues@ WHERE name IN ({}) \
             AND NOT paused AND (concurrency_limit IS NOT NULL OR blocking OR keyed \
             OR rate_limit IS NOT NULL)",
            marks(n)
        ))
    }

    /// The unpaused gated queues among `n`, locked for the claim's transaction (by name, so
    /// concurrent claimers lock in one order). Binds n names.
    pub fn lock_gated_queues(&self, n: usize) -> String {
        self.render(&format!(
            "SELECT name, concurrency_limit, blocking, key_concurrency, rate_limit, \
             rate_window_ms, rate_key FROM @queues@ WHERE name IN ({}) \
             AND NOT paused AND (concurrency_limit IS NOT NULL OR blocking OR keyed \
             OR rate_limit IS NOT NULL) \
             ORDER BY name FOR UPDATE",
            marks(n)
        ))
    }

    /// The state, run and last batch token of `n` jobs (to tell which guarded writes applied).
    /// Binds n ids.
    pub fn run_states(&self, n: usize) -> String {
        self.render(&format!(
            "SELECT id, state, run_seq, batch_token FROM @jobs@ WHERE id IN ({})",
            id_marks(n)
        ))
    }

    /// Locks `n` jobs (by id, ascending: concurrent lockers never deadlock on order) and reads
    /// what judging a run write needs, with the lease end a write would set and whether
    /// the current lease has run out.
    /// Binds 1 lease µs, then n ids.
    pub fn lock_runs(&self, n: usize) -> String {
        self.render(&format!(
            concat!(
                "SELECT id, state, run_seq, attempt, max_attempts, retry, ",
                now!(),
                " + INTERVAL ? MICROSECOND, CAST(COALESCE(lease_expires_at <= ",
                now!(),
                ", 1) AS SIGNED) FROM @jobs@ WHERE id IN ({}) ORDER BY id FOR UPDATE"
            ),
            id_marks(n)
        ))
    }

    /// Sets the lease end of `n` running jobs. Binds 1 lease end, then n ids.
    pub fn extend(&self, n: usize) -> String {
        self.render(&format!(
            "UPDATE @jobs@ SET lease_expires_at = ? WHERE id IN ({}) AND state = 'running'",
            id_marks(n)
        ))
    }

    /// Completes `n` runs, each only if it still owns its job (guarded in the statement: one
    /// round trip, no lock held across it), marking the rows it changes with a token so that a
    /// partial success can tell which. `one_result`: every run stores the same result, bound
    /// once (a `CASE` over the ids costs the server a comparison per id for every row).
    /// Binds 1 token, then the result (`one_result`) or n (id, result) pairs, n ids, then n
    /// (id, run_seq) pairs, each list filled up to [`shape`]`(n)` rows.
    pub fn complete(&self, n: usize, one_result: bool) -> String {
        let result = if one_result {
            "?".to_string()
        } else {
            case_id(shape(n))
        };
        self.render(&format!(
            concat!(
                "UPDATE @jobs@ FORCE INDEX (PRIMARY) SET state = 'completed', batch_token = ?, ",
                "result = {}, ",
                "finished_at = ",
                now!(),
                ", lease_expires_at = NULL, cancel_at = NULL ",
                "WHERE id IN ({}) AND (id, run_seq) IN ({}) AND state = 'running'"
            ),
            result,
            id_marks(n),
            pairs(shape(n))
        ))
    }

    /// Deletes `n` jobs just completed by the write marked with a token (delete on success).
    /// Binds 1 token, then n ids.
    pub fn delete_completed(&self, n: usize) -> String {
        self.render(&format!(
            "DELETE FROM @jobs@ WHERE batch_token = ? AND id IN ({}) AND state = 'completed'",
            id_marks(n)
        ))
    }

    /// Gives `n` running jobs back, claimable at once, attempt not counted. Binds n ids.
    pub fn release(&self, n: usize) -> String {
        self.render(&format!(
            "UPDATE @jobs@ SET state = 'pending', run_seq = run_seq + 1, \
             lease_expires_at = NULL WHERE id IN ({}) AND state = 'running'",
            id_marks(n)
        ))
    }

    /// `SELECT COUNT(*)` of matching jobs.
    pub fn count(&self, filter: &JobFilter) -> QueryBuilder<'static, MySql> {
        let mut qb = QueryBuilder::new(self.render("SELECT COUNT(*) FROM @jobs@ WHERE TRUE"));
        push_filter(&mut qb, self, filter);
        qb
    }

    /// One page of matching jobs by id; fetches `limit + 1` rows to tell whether more follow.
    pub fn scan(
        &self,
        filter: &JobFilter,
        after: Option<i64>,
        offset: u64,
        limit: u32,
    ) -> QueryBuilder<'static, MySql> {
        let mut qb = QueryBuilder::new(self.render(concat!(
            "SELECT ",
            job_columns!(),
            " FROM @jobs@ WHERE TRUE"
        )));
        push_filter(&mut qb, self, filter);
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
    pub fn purge(&self, filter: &JobFilter) -> QueryBuilder<'static, MySql> {
        let mut qb = QueryBuilder::new(self.render("DELETE FROM @jobs@ WHERE state <> 'running'"));
        push_filter(&mut qb, self, filter);
        qb
    }
}

/// Appends ` AND (filter)` for an inspector filter to a statement whose WHERE has begun.
fn push_filter(qb: &mut QueryBuilder<'_, MySql>, sql: &Sql, filter: &JobFilter) {
    if !filter.states.is_empty() {
        // `state IN (...)` first, so the scan is a range on a state-leading index; available
        // and scheduled (both stored `pending`) are then told apart by the run time.
        let mut stored: Vec<&str> = filter
            .states
            .iter()
            .map(|s| match s {
                JobState::Available | JobState::Scheduled => "pending",
                other => other.as_str(),
            })
            .collect();
        stored.sort_unstable();
        stored.dedup();
        push_in(qb, "state", &stored);
        let available = filter.states.contains(&JobState::Available);
        let scheduled = filter.states.contains(&JobState::Scheduled);
        if available != scheduled {
            qb.push(" AND (state <> 'pending' OR run_at ");
            qb.push(if available { "<= " } else { "> " });
            qb.push(sql.render(concat!(now!(), ")")));
        }
    }
    push_in(qb, "task", &filter.tasks);
    push_in(qb, "queue", &filter.queues);
}

fn push_in<S: AsRef<str>>(qb: &mut QueryBuilder<'_, MySql>, column: &str, values: &[S]) {
    if values.is_empty() {
        return;
    }
    qb.push(format!(" AND {column} IN ("));
    let mut list = qb.separated(", ");
    for value in values {
        list.push_bind(value.as_ref().to_string());
    }
    qb.push(")");
}

/// A gated queue's statement picking ready jobs in `order` under the per-key window.
pub fn pick_keyed(sql: &Sql, order: PollOrder) -> &str {
    match order {
        PollOrder::PriorityThenAge => &sql.pick_keyed_by_priority,
        PollOrder::Age => &sql.pick_keyed_by_age,
    }
}

/// A rate-limited gated queue's statement picking the ids it may start, in `order`.
pub fn pick_rated(sql: &Sql, order: PollOrder) -> &str {
    match order {
        PollOrder::PriorityThenAge => &sql.pick_rated_by_priority,
        PollOrder::Age => &sql.pick_rated_by_age,
    }
}

/// The plain claim's statement picking ready jobs of one queue in `order`, unless the queue is
/// paused or gated.
pub fn pick_ungated(sql: &Sql, order: PollOrder) -> &str {
    match order {
        PollOrder::PriorityThenAge => &sql.pick_ungated_by_priority,
        PollOrder::Age => &sql.pick_ungated_by_age,
    }
}

pub mod cron;
pub mod deps;
pub mod registry;
