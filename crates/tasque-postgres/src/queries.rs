//! Every SQL statement of the PostgreSQL engine, in one place (the schema and its SQL functions
//! are in `sql/*.sql`).
//!
//! Statements are written against `@schema@` (the namespace's quoted schema name) and
//! `@channel@` (its notification channel); [`Sql::new`] renders them once per store, so each
//! store runs plain constant strings that sqlx prepares and caches per connection.
//!
//! Conventions: times come from the database clock (`now()`, the start of the statement's
//! transaction; every statement here is its own transaction); durations are bound as bigint
//! milliseconds; every write by a run is guarded by `id`, `run_seq` and `state = 'running'`
//! ("...IfRunning"). The stored state `pending` covers both `available` and `scheduled`.

use sqlx::{Postgres, QueryBuilder};
use tasque_durable::{JobFilter, JobState, PollOrder};

/// `$n` milliseconds as an interval.
macro_rules! ms {
    ($n:literal) => {
        concat!("($", $n, "::bigint * interval '1 millisecond')")
    };
}

/// Columns read into a `JobInfo`, plus the clock to tell available from scheduled.
macro_rules! job_columns {
    () => {
        "id, run_seq, queue, task, params, headers, state, priority, attempt, max_attempts, \
         retry, timeout_ms, max_duration_ms, max_delay_ms, idempotency_key, unique_key, result, failure, \
         errors, worker_id, created_at, run_at, first_started_at, attempted_at, finished_at, \
         lease_expires_at, now() AS now"
    };
}

/// The guard of every write by a run: binds 1 id, 2 run_seq. The state test is written as in
/// [`running!`], so that the row is found by its key.
macro_rules! if_running {
    () => {
        " WHERE id = $1 AND run_seq = $2 AND coalesce(state = 'running', false)"
    };
}

/// The state test of the statements that write runs by id (`j` is the jobs table); the same as
/// `j.state = 'running'` (`state` is never null). Written so that the planner can neither match
/// it to an index on `state` nor estimate it from the column's statistics: with the plain
/// test, statistics taken while no job ran (an estimate of one running row) made it read every
/// entry of `jobs_lease`, dead ones left by earlier runs included, once per run written,
/// instead of looking the runs up by key.
macro_rules! running {
    () => {
        "coalesce(j.state = 'running', false)"
    };
}

/// Columns a claim returns.
const CLAIM_RETURNING: &str = " RETURNING j.id, j.run_seq, j.queue, j.task, j.params, j.headers, \
    j.attempt, j.max_attempts, j.retry, j.priority, j.timeout_ms, j.lease_expires_at, \
    j.wake_event, j.event_payload, j.run_at";

/// The ready jobs of one queue `queue` (SQL: `$1`, or a lateral column) in `order_by`, at most
/// `$2`, locked with `FOR UPDATE SKIP LOCKED`; none when the queue's row matches `excluded`.
///
/// The exclusion is a one-time filter on the queue (an uncorrelated `NOT EXISTS`), never a
/// filter on each job row: a per-row `queue <> ALL (ARRAY(...))` made the planner estimate one
/// matching row, so it sorted every ready job of the queue at each claim instead of walking the
/// claim index in order (0.5 s a claim with 300,000 ready jobs; see `scripts/bench scale`).
///
/// `window` is the per-key window every keyed job passes (see [`key_window`]), or the keyed
/// guard of the unkeyed claims (see [`NO_KEYED_JOBS`]).
fn pick_ready(queue: &str, columns: &str, order_by: &str, excluded: &str, window: &str) -> String {
    format!(
        "SELECT {columns} FROM @schema@.jobs WHERE queue = {queue} AND state = 'pending' \
           AND run_at <= now() AND (cancel_at IS NULL OR cancel_at > now()) \
           AND NOT EXISTS (SELECT 1 FROM @schema@.queues AS x \
             WHERE x.name = {queue} AND ({excluded})) \
           AND {window} ORDER BY {order_by} LIMIT $2 FOR UPDATE SKIP LOCKED"
    )
}

/// The ids a claim takes: from queue `$1`, or, when `many`, from the `text[]` `$1`: each queue
/// walks its own claim index in order (a lateral pick per distinct queue, as for one), then the
/// first `$2` of them all in `order_by` are kept. (One `queue = ANY($1)` scan cannot use the
/// index order and sorted every ready job of the queues at each claim.) Rows picked but not
/// kept are locked only until the claim statement ends, so other claimers skip them briefly.
fn claim_pick(many: bool, order_by: &str, excluded: &str, keys: Keys) -> String {
    let queue = if many { "u.q" } else { "$1" };
    let window = match keys {
        Keys::Windowed => key_window("@schema@.jobs", &key_concurrency(queue)),
        // Of all the queues: a claim of several takes nothing when any of them holds keyed
        // jobs, or it could fill its limit from the others past an older keyed job.
        Keys::Absent => {
            NO_KEYED_JOBS.replace("{queue}", if many { "ANY($1::text[])" } else { "$1" })
        }
    };
    if many {
        format!(
            "SELECT p.id FROM (SELECT DISTINCT v.q FROM unnest($1::text[]) AS v(q)) AS u \
             CROSS JOIN LATERAL ({}) AS p ORDER BY {} LIMIT $2",
            pick_ready("u.q", "id, priority, run_at", order_by, excluded, &window),
            order_by
                .split(", ")
                .map(|c| format!("p.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        pick_ready("$1", "id", order_by, excluded, &window)
    }
}

/// The unfinished keyed jobs (the predicate of the `jobs_key_unfinished` index), in the
/// columns of the innermost `jobs` of the statement it stands in.
macro_rules! unfinished_keyed {
    () => {
        "ordering_key IS NOT NULL \
         AND (state IN ('pending', 'running', 'sleeping', 'waiting') OR holds_queue)"
    };
}

/// Which jobs a plain claim's pick tests against the per-key window.
#[derive(Clone, Copy)]
enum Keys {
    /// Every keyed candidate passes the window ([`key_window`]).
    Windowed,
    /// The queue holds no unfinished keyed job ([`NO_KEYED_JOBS`]), so no candidate is tested.
    Absent,
}

/// The guard of the unkeyed claims: a one-time test that the claimed queues (`= {queue}`)
/// hold no unfinished keyed job (one probe of `jobs_key_unfinished`). When one does, the
/// unkeyed claim takes nothing and the windowed claim ([`ClaimSql::get`]) runs instead.
///
/// Why two claims: the planner charges the window's probe (a correlated subquery) to every
/// candidate it may test, keyed or not. Beside a large history of finished jobs that charge
/// made it collect and sort every ready job of the queue at each claim of a few hundred jobs
/// (a bitmap scan and a sort, 10 ms) instead of walking the claim index to its limit (under
/// 1 ms). Without the window, the walk is the cheaper plan at every limit
/// (`tests/history_plan.rs`).
const NO_KEYED_JOBS: &str = concat!(
    "NOT EXISTS (SELECT 1 FROM @schema@.jobs AS kj WHERE kj.queue = {queue} AND ",
    unfinished_keyed!(),
    ")"
);

/// The claim statement: one UPDATE whose CTE locks the ready jobs with `FOR UPDATE SKIP
/// LOCKED`, so concurrent claimers on any number of machines skip each other's rows instead of
/// waiting, and never share a job. `pick` comes from [`claim_pick`]. Binds: 1 queue (or
/// `text[]` of queues), 2 limit, 3 worker id, 4 lease ms.
///
/// The UPDATE finds the picked rows with `id = ANY(ARRAY(...))`, a primary-key lookup of each.
/// Joined to the CTE instead (`FROM picked WHERE j.id = picked.id`), the planner hashed the
/// picked ids and read the whole table to find them whenever the table was small enough for a
/// sequential scan to look cheaper than the lookups: two thirds of a 500-job claim's time on a
/// table of 20,000 jobs.
fn claim(pick: &str) -> String {
    format!(
        "WITH picked AS ({pick}) \
         UPDATE @schema@.jobs AS j SET state = 'running', worker_id = $3, \
           lease_expires_at = now() + {lease}, attempted_at = now(), \
           first_started_at = coalesce(j.first_started_at, now()), \
           cancel_at = CASE WHEN j.first_started_at IS NOT NULL THEN j.cancel_at \
             WHEN j.max_duration_ms IS NULL THEN NULL \
             ELSE now() + j.max_duration_ms * interval '1 millisecond' END \
         WHERE j.id = ANY(ARRAY(SELECT id FROM picked)){CLAIM_RETURNING}",
        lease = ms!(4),
    )
}

/// The claim statements of a store, by queue count and poll order; each queue's scan walks its
/// claim index in order (see [`claim_pick`]).
#[derive(Debug)]
pub struct ClaimSql {
    /// The plain claims with the per-key window.
    windowed: PlainClaims,
    /// The plain claims that take nothing from queues holding keyed jobs.
    unkeyed: PlainClaims,
    gated_by_priority: String,
    gated_by_age: String,
    rated_by_priority: String,
    rated_by_age: String,
}

/// The plain claim statements of one key mode ([`Keys`]), by queue count and poll order.
#[derive(Debug)]
struct PlainClaims {
    one_by_priority: String,
    one_by_age: String,
    many_by_priority: String,
    many_by_age: String,
}

impl PlainClaims {
    /// The statements of `keys`, rendered by `render`.
    fn new(keys: Keys, render: impl Fn(&str) -> String) -> Self {
        let build = |many, order_by| render(&claim(&claim_pick(many, order_by, UNGATED, keys)));
        PlainClaims {
            one_by_priority: build(false, "priority, run_at, id"),
            one_by_age: build(false, "run_at, id"),
            many_by_priority: build(true, "priority, run_at, id"),
            many_by_age: build(true, "run_at, id"),
        }
    }

    /// The statement for `queues` queues in `order`.
    fn get(&self, queues: usize, order: PollOrder) -> &str {
        match (queues == 1, order) {
            (true, PollOrder::PriorityThenAge) => &self.one_by_priority,
            (true, PollOrder::Age) => &self.one_by_age,
            (false, PollOrder::PriorityThenAge) => &self.many_by_priority,
            (false, PollOrder::Age) => &self.many_by_age,
        }
    }
}

/// Queues the plain claim leaves out: paused ones, and those whose claims are gated (a
/// concurrency limit, blocking mode or a rate limit), which [`ClaimSql::gated`] claims from
/// under the queue's row lock.
///
/// Keyed queues are not gated: the per-key window ([`key_window`]) counts unfinished jobs, and
/// a claim finishes none, so two claimers cannot both pass a job the window holds. Their
/// claims are the plain one statement, with no queue-row lock.
const UNGATED: &str =
    "paused OR concurrency_limit IS NOT NULL OR blocking OR rate_limit IS NOT NULL";

/// The states in which a keyed job holds a place in its key's window (with `OR holds_queue`:
/// failed and kept by the key's policy). Matches the predicate of `jobs_key_unfinished`.
const KEY_UNFINISHED: &str =
    "state IN ('pending', 'running', 'sleeping', 'waiting') OR holds_queue";

/// The per-key window of a claim: a keyed job is claimable only while fewer than `k` (the
/// queue's key concurrency, an SQL expression) jobs of its key created before it are
/// unfinished. One probe of `jobs_key_unfinished` per keyed candidate; unkeyed jobs pass at
/// the first test.
fn key_window(alias: &str, k: &str) -> String {
    format!(
        "({alias}.ordering_key IS NULL OR (SELECT count(*) FROM (SELECT 1 FROM @schema@.jobs AS p \
           WHERE p.queue = {alias}.queue AND p.ordering_key = {alias}.ordering_key \
           AND p.id < {alias}.id AND p.ordering_key IS NOT NULL AND ({KEY_UNFINISHED}) \
           LIMIT {k}) AS ahead) < {k})"
    )
}

/// The key concurrency of queue `queue` (SQL), read once per claim and queue (an init plan).
fn key_concurrency(queue: &str) -> String {
    format!(
        "(SELECT coalesce(max(k.key_concurrency), 1) FROM @schema@.queues AS k \
           WHERE k.name = {queue})"
    )
}

/// The claim of one gated queue under its row lock, honouring the per-key window. Binds as
/// [`claim`] plus 5 key concurrency.
fn claim_gated(order_by: &str) -> String {
    claim(&pick_ready(
        "$1",
        "id",
        order_by,
        "paused",
        &key_window("@schema@.jobs", "$5"),
    ))
}

/// The claim of one rate-limited queue under its row lock (its clock is the statement's start,
/// after the lock was taken, so windows only move forward): the per-key window, then at most
/// `$6` starts per rate key in the current window of `$7` ms (epoch-aligned), the key being
/// `$8` ('queue', 'ordering_key' or 'arg' with the path `$9`); the window counts are updated
/// in the same statement. Binds as [`claim_gated`] plus 6 limit, 7 window ms, 8 key kind,
/// 9 path.
fn claim_rated(order_by: &str) -> String {
    format!(
        "WITH cur AS (SELECT (floor(extract(epoch FROM statement_timestamp()) * 1000 / $7::bigint))::bigint \
           * $7::bigint AS w), \
         cand AS (SELECT j.id, j.priority, j.run_at, CASE $8::text \
             WHEN 'ordering_key' THEN coalesce(j.ordering_key, '') \
             WHEN 'arg' THEN coalesce(j.params #>> $9::text[], '') ELSE '' END AS rkey \
           FROM @schema@.jobs AS j WHERE j.queue = $1 AND j.state = 'pending' \
           AND j.run_at <= statement_timestamp() AND (j.cancel_at IS NULL OR j.cancel_at > statement_timestamp()) AND {window}), \
         ranked AS (SELECT c.id, c.priority, c.run_at, c.rkey, \
             row_number() OVER (PARTITION BY c.rkey ORDER BY {order_by}) \
             + coalesce((SELECT w.starts FROM @schema@.rate_windows AS w, cur \
               WHERE w.queue = $1 AND w.key = c.rkey AND w.window_start_ms = cur.w), 0) AS nth \
           FROM cand AS c), \
         picked AS (SELECT id, rkey FROM ranked WHERE nth <= $6 ORDER BY {order_by} LIMIT $2), \
         claimed AS (UPDATE @schema@.jobs AS j SET state = 'running', worker_id = $3, \
           lease_expires_at = statement_timestamp() + {lease}, attempted_at = statement_timestamp(), \
           first_started_at = coalesce(j.first_started_at, statement_timestamp()), \
           cancel_at = CASE WHEN j.first_started_at IS NOT NULL THEN j.cancel_at \
             WHEN j.max_duration_ms IS NULL THEN NULL \
             ELSE statement_timestamp() + j.max_duration_ms * interval '1 millisecond' END \
           FROM picked WHERE j.id = picked.id AND j.state = 'pending'{CLAIM_RETURNING}, picked.rkey), \
         counted AS (INSERT INTO @schema@.rate_windows (queue, key, window_start_ms, starts) \
           SELECT $1, c.rkey, cur.w, count(*) FROM claimed AS c, cur GROUP BY c.rkey, cur.w \
           ON CONFLICT (queue, key) DO UPDATE SET \
             starts = CASE WHEN rate_windows.window_start_ms = excluded.window_start_ms \
               THEN rate_windows.starts + excluded.starts \
               WHEN rate_windows.window_start_ms > excluded.window_start_ms \
               THEN rate_windows.starts ELSE excluded.starts END, \
             window_start_ms = greatest(rate_windows.window_start_ms, excluded.window_start_ms)) \
         SELECT id, run_seq, queue, task, params, headers, attempt, max_attempts, retry, \
           priority, timeout_ms, lease_expires_at, wake_event, event_payload, run_at FROM claimed",
        window = key_window("j", "$5"),
        lease = ms!(4),
    )
}

impl ClaimSql {
    /// The statement for one gated queue (binds as the others; the caller computed the limit
    /// while holding the queue row's lock).
    pub fn gated(&self, order: PollOrder) -> &str {
        match order {
            PollOrder::PriorityThenAge => &self.gated_by_priority,
            PollOrder::Age => &self.gated_by_age,
        }
    }

    /// The statement for one rate-limited queue (see [`claim_rated`]).
    pub fn rated(&self, order: PollOrder) -> &str {
        match order {
            PollOrder::PriorityThenAge => &self.rated_by_priority,
            PollOrder::Age => &self.rated_by_age,
        }
    }

    /// The windowed statement for `queues` queues in `order`: correct for every queue.
    pub fn get(&self, queues: usize, order: PollOrder) -> &str {
        self.windowed.get(queues, order)
    }

    /// The unkeyed statement for `queues` queues in `order`: it claims nothing when any of
    /// the queues holds an unfinished keyed job (see [`NO_KEYED_JOBS`]).
    pub fn unkeyed(&self, queues: usize, order: PollOrder) -> &str {
        self.unkeyed.get(queues, order)
    }
}

macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $sql:expr;)*) => {
        /// The statements of one store, rendered for its schema and channel.
        #[derive(Debug)]
        pub struct Sql {
            /// Claims, by queue count and order.
            pub claim: ClaimSql,
            /// The quoted schema name, for the dynamic inspector statements.
            pub schema: String,
            $($(#[$doc])* pub $name: String,)*
        }

        impl Sql {
            /// Renders every statement for `schema` (quoted) and `channel`.
            pub fn new(schema: &str, channel: &str) -> Sql {
                let render = |sql: &str| sql.replace("@schema@", schema).replace("@channel@", channel);
                Sql {
                    claim: ClaimSql {
                        windowed: PlainClaims::new(Keys::Windowed, render),
                        unkeyed: PlainClaims::new(Keys::Absent, render),
                        gated_by_priority: render(&claim_gated("priority, run_at, id")),
                        gated_by_age: render(&claim_gated("run_at, id")),
                        rated_by_priority: render(&claim_rated("priority, run_at, id")),
                        rated_by_age: render(&claim_rated("run_at, id")),
                    },
                    schema: schema.to_string(),
                    $($name: render($sql),)*
                }
            }
        }
    };
}

statements! {
    /// Reads the database clock.
    now = "SELECT now()";

    /// Every checkpoint of a job. Binds 1 job id.
    get_checkpoints = "SELECT step, state, run_seq, updated_at FROM @schema@.checkpoints \
        WHERE job_id = $1 ORDER BY step";
    /// Extends the run's lease and stores a checkpoint, guarded, in one statement. Binds 1 id,
    /// 2 seq, 3 lease ms, 4 step, 5 state (JSON text).
    set_checkpoint = concat!("WITH j AS (UPDATE @schema@.jobs SET lease_expires_at = now() + ",
        ms!(3), if_running!(), " RETURNING id, run_seq, lease_expires_at), \
        c AS (INSERT INTO @schema@.checkpoints (job_id, step, state, run_seq, updated_at) \
        SELECT id, $4, $5::text::jsonb, run_seq, now() FROM j ON CONFLICT (job_id, step) \
        DO UPDATE SET state = excluded.state, run_seq = excluded.run_seq, \
        updated_at = excluded.updated_at) SELECT lease_expires_at FROM j");
    /// Ends a run by suspending its job until a time. Binds 1 id, 2 seq, 3 wake time (or
    /// NULL), 4 delay ms.
    sleep_run = concat!("UPDATE @schema@.jobs SET state = 'sleeping', run_seq = run_seq + 1, \
        lease_expires_at = NULL, wake_at = t.at, run_at = t.at, wake_event = NULL, \
        event_payload = NULL FROM (SELECT coalesce($3::timestamptz, now() + ", ms!(4), ") AS at) AS t",
        if_running!());
    /// Serialises waits and emits of one event for the rest of the transaction. Binds 1 key.
    lock_event = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
    /// Whether a run owns its job (locking the row). Binds 1 id, 2 seq.
    run_owns = concat!("SELECT 1 FROM @schema@.jobs", if_running!(), " FOR UPDATE");
    /// A stored event's payload. Binds 1 name.
    get_event = "SELECT payload FROM @schema@.events WHERE name = $1";
    /// Ends a run by making its job wait for an event. Binds 1 id, 2 seq, 3 name, 4 timeout
    /// ms (or NULL).
    wait_run = concat!("UPDATE @schema@.jobs SET state = 'waiting', run_seq = run_seq + 1, \
        lease_expires_at = NULL, wake_event = $3, event_payload = NULL, \
        wake_at = now() + ", ms!(4), if_running!());
    /// Stores an event. Binds 1 name, 2 payload (JSON text).
    store_event = "INSERT INTO @schema@.events (name, payload, emitted_at) \
        VALUES ($1, $2::text::jsonb, now()) ON CONFLICT (name) DO UPDATE \
        SET payload = excluded.payload, emitted_at = excluded.emitted_at";
    /// Wakes an event's waiters (claimable now, carrying the payload) and announces their
    /// queues. Binds 1 name, 2 payload (JSON text).
    wake_waiters = "WITH w AS (UPDATE @schema@.jobs SET state = 'pending', run_at = now(), \
        wake_at = NULL, event_payload = $2::text::jsonb \
        WHERE state = 'waiting' AND wake_event = $1 RETURNING queue), \
        n AS (SELECT pg_notify('@channel@', q) FROM (SELECT DISTINCT queue AS q FROM w) AS d) \
        SELECT (SELECT count(*) FROM w), (SELECT count(*) FROM n)";
    /// Makes due sleepers and timed-out waiters claimable (a timed-out waiter keeps its
    /// `wake_event` with no payload) and announces their queues; returns how many.
    wake_due = "WITH w AS (UPDATE @schema@.jobs SET state = 'pending', run_at = wake_at, \
        wake_at = NULL WHERE state IN ('sleeping', 'waiting') AND wake_at <= now() RETURNING queue), \
        n AS (SELECT pg_notify('@channel@', q) FROM (SELECT DISTINCT queue AS q FROM w) AS d) \
        SELECT (SELECT count(*) FROM w), (SELECT count(*) FROM n)";
    /// Milliseconds until the next sleeper or timed waiter is due (NULL: none).
    next_wake = "SELECT (extract(epoch FROM (min(wake_at) - now())) * 1000)::bigint \
        FROM @schema@.jobs WHERE state IN ('sleeping', 'waiting')";

    /// Sets a queue's limit (creating it) and announces it. Binds 1 name, 2 limit.
    set_queue_limit = "WITH q AS (INSERT INTO @schema@.queues (name, concurrency_limit) \
        VALUES ($1, $2) ON CONFLICT (name) DO UPDATE \
        SET concurrency_limit = excluded.concurrency_limit RETURNING name) \
        SELECT pg_notify('@channel@', name) FROM q";
    /// Sets a queue's blocking mode and policy (creating it) and announces it. Binds 1 name,
    /// 2 blocking, 3 policy.
    set_queue_blocking = "WITH q AS (INSERT INTO @schema@.queues (name, blocking, on_exhausted) \
        VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET blocking = excluded.blocking, \
        on_exhausted = excluded.on_exhausted RETURNING name) \
        SELECT pg_notify('@channel@', name) FROM q";
    /// The unpaused gated queues among some, locked for the claim's transaction. Binds 1 names.
    lock_gated_queues = "SELECT name, concurrency_limit, blocking, key_concurrency, rate_limit, \
        rate_window_ms, rate_key FROM @schema@.queues \
        WHERE name = ANY($1::text[]) AND NOT paused \
        AND (concurrency_limit IS NOT NULL OR blocking OR rate_limit IS NOT NULL) \
        ORDER BY name FOR UPDATE";
    /// After a claim that took fewer jobs than it could: whether any of some queues is gated
    /// (unlocked), and whether any holds an unfinished keyed job (the predicate of
    /// `jobs_key_unfinished`). Binds 1 names.
    claim_probe = concat!(
        "SELECT EXISTS (SELECT 1 FROM @schema@.queues WHERE name = ANY($1::text[]) \
        AND NOT paused AND (concurrency_limit IS NOT NULL OR blocking \
        OR rate_limit IS NOT NULL)), \
        EXISTS (SELECT 1 FROM @schema@.jobs WHERE queue = ANY($1::text[]) AND ",
        unfinished_keyed!(),
        ")"
    );
    /// Sets a queue's key policy (creating it). Binds 1 name, 2 concurrency, 3 policy.
    set_key_policy = "INSERT INTO @schema@.queues (name, key_concurrency, key_on_exhausted) \
        VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET \
        key_concurrency = excluded.key_concurrency, key_on_exhausted = excluded.key_on_exhausted";
    /// Sets or removes a queue's rate limit (creating it). Binds 1 name, 2 limit (or NULL),
    /// 3 window ms, 4 key.
    set_rate_limit = "INSERT INTO @schema@.queues (name, rate_limit, rate_window_ms, rate_key) \
        VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET \
        rate_limit = excluded.rate_limit, rate_window_ms = excluded.rate_window_ms, \
        rate_key = excluded.rate_key";
    /// A queue's flow settings. Binds 1 name.
    queue_flow = "SELECT key_concurrency, key_on_exhausted, rate_limit, rate_window_ms, rate_key \
        FROM @schema@.queues WHERE name = $1";
    /// A job's flow facts: queue, ordering key, ready now, the clock. Binds 1 id.
    job_flow = "SELECT queue, ordering_key, state = 'pending' AND run_at <= now() \
        AND (cancel_at IS NULL OR cancel_at > now()), now() FROM @schema@.jobs WHERE id = $1";
    /// The unfinished jobs of a key created before a job. Binds 1 queue, 2 key, 3 id, 4 limit.
    key_ahead = "SELECT id, holds_queue FROM @schema@.jobs WHERE queue = $1 \
        AND ordering_key = $2 AND id < $3 AND ordering_key IS NOT NULL \
        AND (state IN ('pending', 'running', 'sleeping', 'waiting') OR holds_queue) \
        ORDER BY id LIMIT $4";
    /// A job's rate key and the starts counted in its current window. Binds 1 id, 2 window
    /// ms, 3 key kind, 4 path.
    job_rate = "SELECT k.rkey, coalesce((SELECT w.starts FROM @schema@.rate_windows AS w \
        WHERE w.queue = k.queue AND w.key = k.rkey AND w.window_start_ms = \
        (floor(extract(epoch FROM now()) * 1000 / $2::bigint))::bigint * $2::bigint), 0) \
        FROM (SELECT j.queue, CASE $3::text WHEN 'ordering_key' THEN coalesce(j.ordering_key, '') \
          WHEN 'arg' THEN coalesce(j.params #>> $4::text[], '') ELSE '' END AS rkey \
          FROM @schema@.jobs AS j WHERE j.id = $1) AS k";
    /// Counts a start of a job in its rate key's current window (the statement's clock, after
    /// the queue row's lock was taken) unless the window is full; a row when counted. Binds
    /// 1 id, 2 limit, 3 window ms, 4 key kind, 5 path.
    count_head_start = "INSERT INTO @schema@.rate_windows AS w (queue, key, window_start_ms, starts) \
        SELECT j.queue, CASE $4::text WHEN 'ordering_key' THEN coalesce(j.ordering_key, '') \
          WHEN 'arg' THEN coalesce(j.params #>> $5::text[], '') ELSE '' END, \
          (floor(extract(epoch FROM statement_timestamp()) * 1000 / $3::bigint))::bigint \
          * $3::bigint, 1 FROM @schema@.jobs AS j WHERE j.id = $1 \
        ON CONFLICT (queue, key) DO UPDATE SET \
          starts = CASE WHEN w.window_start_ms >= excluded.window_start_ms \
            THEN w.starts + 1 ELSE 1 END, \
          window_start_ms = greatest(w.window_start_ms, excluded.window_start_ms) \
        WHERE w.window_start_ms < excluded.window_start_ms OR w.starts < $2 \
        RETURNING 1";
    /// How many jobs of a queue run. Binds 1 queue.
    running_in_queue = "SELECT count(*) FROM @schema@.jobs WHERE queue = $1 AND state = 'running'";
    /// A failed job holding its blocking queue. Binds 1 queue.
    holding_job = "SELECT id FROM @schema@.jobs WHERE queue = $1 AND holds_queue ORDER BY id LIMIT 1";
    /// A blocking queue's head: id, running, ready now. Binds 1 queue.
    queue_head = "SELECT id, state = 'running', state = 'pending' AND run_at <= now() \
        AND (cancel_at IS NULL OR cancel_at > now()) FROM @schema@.jobs WHERE queue = $1 \
        AND state IN ('pending', 'running', 'sleeping', 'waiting') ORDER BY id LIMIT 1";
    /// Claims a blocking queue's head. Binds 1 id, 2 (unused limit), 3 worker id, 4 lease ms.
    claim_head = concat!("UPDATE @schema@.jobs AS j SET state = 'running', worker_id = $3, \
        lease_expires_at = now() + ", ms!(4), ", attempted_at = now(), \
        first_started_at = coalesce(j.first_started_at, now()), \
        cancel_at = CASE WHEN j.first_started_at IS NOT NULL THEN j.cancel_at \
          WHEN j.max_duration_ms IS NULL THEN NULL \
          ELSE now() + j.max_duration_ms * interval '1 millisecond' END \
        WHERE j.id = $1 AND j.state = 'pending' AND $2::bigint > 0 \
        RETURNING j.id, j.run_seq, j.queue, j.task, j.params, j.headers, \
        j.attempt, j.max_attempts, j.retry, j.priority, j.timeout_ms, j.lease_expires_at, \
        j.wake_event, j.event_payload, j.run_at");
    /// Cancels a failed job that holds its blocking queue. Binds 1 id.
    cancel_holding = "UPDATE @schema@.jobs SET state = 'cancelled', holds_queue = false, \
        finished_at = now(), failure = '{\"error\": \"cancelled\"}' \
        WHERE id = $1 AND state = 'failed' AND holds_queue";

    /// Spawns a batch through the schema's SQL function (the same one other languages call).
    /// Binds: 1 queues, 2 tasks, 3 params (JSON text), 4 options (JSON text).
    spawn = "SELECT job_id, run_seq, attempt, created FROM @schema@.spawn_batch($1::text[], \
        $2::text[], $3::text[]::jsonb[], $4::text[]::jsonb[])";
    /// Spawns one job through the schema's SQL function. Binds: 1 queue, 2 task, 3 params
    /// (JSON text), 4 options (JSON text).
    spawn_one = "SELECT job_id, run_seq, attempt, created FROM @schema@.spawn($1, $2, \
        $3::text::jsonb, $4::text::jsonb)";

    /// Creates a queue unless it exists. Binds 1 name.
    ensure_queue = "INSERT INTO @schema@.queues (name) VALUES ($1) ON CONFLICT DO NOTHING";
    /// Sets a queue's paused flag, creating it if needed. Binds 1 name, 2 paused.
    set_queue_paused = "INSERT INTO @schema@.queues (name, paused) VALUES ($1, $2) \
        ON CONFLICT (name) DO UPDATE SET paused = excluded.paused";
    /// Sets whether spawns into a queue notify (`queues.notify`), creating it if needed.
    /// Binds 1 name, 2 notify.
    set_queue_notify = "INSERT INTO @schema@.queues (name, notify) VALUES ($1, $2) \
        ON CONFLICT (name) DO UPDATE SET notify = excluded.notify";
    /// Every queue.
    list_queues = "SELECT name, paused, concurrency_limit, blocking, created_at, on_exhausted \
        FROM @schema@.queues ORDER BY name";
    /// Job counts by queue and state (pending split by readiness).
    queue_counts = "SELECT queue, state, run_at <= now() AS ready, count(*) \
        FROM @schema@.jobs GROUP BY 1, 2, 3";

    /// Withdraws every waiter of the given finished jobs, returning the jobs that had one (the
    /// ones to announce). Binds 1 ids.
    take_waiters = "DELETE FROM @schema@.waiters WHERE job_id = ANY($1::bigint[]) RETURNING job_id";
    /// Records a waiter of a job; returns its token. Binds 1 job id.
    add_waiter = "INSERT INTO @schema@.waiters (job_id) VALUES ($1) RETURNING token";
    /// Withdraws one waiter. Binds 1 job id, 2 token.
    remove_waiter = "DELETE FROM @schema@.waiters WHERE job_id = $1 AND token = $2";

    /// What rejected run writes ran into. Binds 1 ids.
    run_statuses = "SELECT id, state, run_seq FROM @schema@.jobs WHERE id = ANY($1::bigint[])";

    /// Extends one lease. Binds 1 id, 2 seq, 3 lease ms.
    extend_lease = concat!("UPDATE @schema@.jobs SET lease_expires_at = now() + ", ms!(3),
        if_running!(), " RETURNING lease_expires_at");
    /// Extends many leases. Binds 1 ids, 2 seqs, 3 lease ms.
    extend_leases = concat!("UPDATE @schema@.jobs AS j SET lease_expires_at = now() + ", ms!(3),
        " FROM unnest($1::bigint[], $2::bigint[]) AS x(id, seq) \
        WHERE j.id = x.id AND j.run_seq = x.seq AND ", running!(),
        " RETURNING j.id, j.run_seq, j.lease_expires_at");

    /// Completes many runs. Binds 1 ids, 2 seqs, 3 results (JSON text).
    complete_many = concat!("UPDATE @schema@.jobs AS j SET state = 'completed', \
        result = x.result::jsonb, finished_at = now(), lease_expires_at = NULL, cancel_at = NULL \
        FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS x(id, seq, result) \
        WHERE j.id = x.id AND j.run_seq = x.seq AND ", running!(), " RETURNING j.id, j.run_seq");
    /// Deletes many completed runs (delete on success). Binds 1 ids, 2 seqs.
    delete_runs = concat!("DELETE FROM @schema@.jobs AS j \
        USING unnest($1::bigint[], $2::bigint[]) AS x(id, seq) \
        WHERE j.id = x.id AND j.run_seq = x.seq AND ", running!(), " RETURNING j.id, j.run_seq");
    /// Releases many runs, claimable at once, attempt not counted, and announces their queues.
    /// Binds 1 ids, 2 seqs.
    release_runs = concat!("WITH r AS (UPDATE @schema@.jobs AS j SET state = 'pending', \
        run_seq = j.run_seq + 1, lease_expires_at = NULL \
        FROM unnest($1::bigint[], $2::bigint[]) AS x(id, seq) \
        WHERE j.id = x.id AND j.run_seq = x.seq AND ", running!(), " RETURNING j.queue), \
        n AS (SELECT pg_notify('@channel@', q) FROM (SELECT DISTINCT queue AS q FROM r) AS d) \
        SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM n)");

    /// Reads what the failure policy needs. Binds 1 id, 2 seq.
    failure_inputs = concat!("SELECT attempt, max_attempts, retry FROM @schema@.jobs", if_running!());
    /// Records a failed attempt. Binds 1 id, 2 seq, 3 new state ('pending' or 'failed'),
    /// 4 next attempt, 5 run_at (or NULL), 6 delay ms, 7 reason (JSON text).
    fail_run = concat!("UPDATE @schema@.jobs SET state = $3::text, attempt = $4, \
        lease_expires_at = NULL, \
        errors = errors || jsonb_build_array(jsonb_build_object('attempt', attempt, \
          'run', run_seq, 'at_ms', (extract(epoch FROM now()) * 1000)::bigint, \
          'reason', $7::text::jsonb)), \
        run_seq = run_seq + CASE WHEN $3::text = 'pending' THEN 1 ELSE 0 END, \
        run_at = CASE WHEN $3::text = 'pending' \
          THEN coalesce($5::timestamptz, now() + ", ms!(6), ") ELSE run_at END, \
        failure = CASE WHEN $3::text = 'failed' THEN $7::text::jsonb ELSE failure END, \
        cancel_at = CASE WHEN $3::text = 'failed' THEN NULL ELSE cancel_at END, \
        finished_at = CASE WHEN $3::text = 'failed' THEN now() ELSE NULL END, \
        holds_queue = ($3::text = 'failed' AND EXISTS (SELECT 1 FROM @schema@.queues AS q \
          WHERE q.name = queue AND ((q.blocking AND q.on_exhausted = 'stay_blocked') \
          OR (ordering_key IS NOT NULL AND q.key_on_exhausted = 'stay_blocked'))))",
        if_running!(), " RETURNING run_at");
    /// Fails a run for good with a reason, reading nothing of the job (its row may not decode:
    /// the retry strategy may be the corrupt part). Binds 1 id, 2 seq, 3 reason (JSON text).
    fail_for_good = concat!("UPDATE @schema@.jobs SET state = 'failed', lease_expires_at = NULL, \
        errors = coalesce(errors, '[]'::jsonb) || jsonb_build_array(jsonb_build_object( \
          'attempt', attempt, 'run', run_seq, \
          'at_ms', (extract(epoch FROM now()) * 1000)::bigint, 'reason', $3::text::jsonb)), \
        failure = $3::text::jsonb, cancel_at = NULL, finished_at = now(), \
        holds_queue = EXISTS (SELECT 1 FROM @schema@.queues AS q \
          WHERE q.name = queue AND ((q.blocking AND q.on_exhausted = 'stay_blocked') \
          OR (ordering_key IS NOT NULL AND q.key_on_exhausted = 'stay_blocked')))",
        if_running!());
    /// Gives a run back until a time, attempt not counted. Binds 1 id, 2 seq, 3 run_at (or
    /// NULL), 4 delay ms.
    schedule_run = concat!("UPDATE @schema@.jobs SET state = 'pending', run_seq = run_seq + 1, \
        lease_expires_at = NULL, run_at = coalesce($3::timestamptz, now() + ", ms!(4), ")",
        if_running!());

    /// Runs whose lease expired. Binds 1 limit.
    expired_runs = "SELECT id, run_seq FROM @schema@.jobs WHERE state = 'running' \
        AND lease_expires_at <= now() ORDER BY lease_expires_at LIMIT $1";
    /// Cancels unfinished jobs past their cancellation policy.
    cancel_by_policy = "UPDATE @schema@.jobs SET state = 'cancelled', finished_at = now(), \
        lease_expires_at = NULL, cancel_at = NULL, failure = jsonb_build_object('error', \
        CASE WHEN first_started_at IS NULL THEN 'max delay exceeded' \
        ELSE 'max duration exceeded' END) \
        WHERE cancel_at <= now() AND state IN ('pending', 'running', 'sleeping', 'waiting')";
    /// Cancels one unfinished job. Binds 1 id.
    cancel_job = "UPDATE @schema@.jobs SET state = 'cancelled', finished_at = now(), \
        lease_expires_at = NULL, cancel_at = NULL, failure = '{\"error\": \"cancelled\"}' \
        WHERE id = $1 AND state IN ('pending', 'running', 'sleeping', 'waiting', 'on_hold')";
    /// Revives a failed or cancelled job as attempt 1 of a new run. Binds 1 id, 2 max_attempts,
    /// 3 retry (JSON text), 4 priority, 5 timeout ms, 6 max_duration ms, 7 max_delay ms,
    /// 8 headers (JSON text), 9 run_at (or NULL), 10 delay ms.
    retry_job = concat!("UPDATE @schema@.jobs SET state = 'pending', run_seq = run_seq + 1, \
        attempt = 1, max_attempts = $2, retry = $3::text::jsonb, priority = $4, timeout_ms = $5, \
        max_duration_ms = $6, max_delay_ms = $7, headers = $8::text::jsonb, run_at = t.at, \
        cancel_at = t.at + ", ms!(7), ", first_started_at = NULL, attempted_at = NULL, \
        finished_at = NULL, lease_expires_at = NULL, result = NULL, failure = NULL, \
        worker_id = NULL, holds_queue = false \
        FROM (SELECT coalesce($9::timestamptz, now() + ", ms!(10), ") AS at) AS t \
        WHERE id = $1 AND state IN ('failed', 'cancelled') RETURNING run_seq");

    /// The job holding the unique slot of another job (its key and period). Binds 1 id.
    unique_holder = "SELECT h.id FROM @schema@.jobs AS j JOIN @schema@.jobs AS h \
        ON h.unique_key = j.unique_key AND h.unique_bucket = j.unique_bucket \
        AND (h.unique_states & @schema@.unique_bit(h.state)) <> 0 \
        WHERE j.id = $1 AND h.id <> j.id LIMIT 1";
    /// One job's full record. Binds 1 id.
    get_job = concat!("SELECT ", job_columns!(), " FROM @schema@.jobs WHERE id = $1");
    /// Deletes a job unless it is running. Binds 1 id.
    delete_job = "DELETE FROM @schema@.jobs WHERE id = $1 AND state <> 'running'";
    /// The cleaner: one batch of jobs finished before a cutoff. Binds 1 age ms, 2 limit.
    clean = concat!("DELETE FROM @schema@.jobs WHERE id IN (SELECT id FROM @schema@.jobs \
        WHERE finished_at <= now() - ", ms!(1), " AND state IN ('completed', 'failed', 'cancelled') \
        ORDER BY finished_at LIMIT $2)");
}

/// Appends ` AND (filter)` for an inspector filter to a statement whose WHERE has begun.
fn push_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &JobFilter) {
    if !filter.states.is_empty() {
        qb.push(" AND (");
        for (i, state) in filter.states.iter().enumerate() {
            if i > 0 {
                qb.push(" OR ");
            }
            match state {
                JobState::Available => qb.push("(state = 'pending' AND run_at <= now())"),
                JobState::Scheduled => qb.push("(state = 'pending' AND run_at > now())"),
                // A literal, not a bind: the planner then knows which state's index entries
                // to read (with a bind, a cached generic plan may walk every job by id).
                other => qb.push(format!("state = '{}'", other.as_str())),
            };
        }
        qb.push(")");
    }
    if !filter.tasks.is_empty() {
        qb.push(" AND task = ANY(")
            .push_bind(filter.tasks.clone())
            .push(")");
    }
    match filter.queues.as_slice() {
        [] => {}
        // One queue by equality: the (state, queue, id) index then reads that queue's jobs of
        // a state in id order, where `= ANY` would walk every job of the state.
        [queue] => {
            qb.push(" AND queue = ").push_bind(queue.clone());
        }
        queues => {
            qb.push(" AND queue = ANY(")
                .push_bind(queues.to_vec())
                .push(")");
        }
    }
}

impl Sql {
    /// `SELECT count(*)` of matching jobs.
    pub fn count(&self, filter: &JobFilter) -> QueryBuilder<'static, Postgres> {
        let mut qb = QueryBuilder::new(format!(
            "SELECT count(*) FROM {}.jobs WHERE true",
            self.schema
        ));
        push_filter(&mut qb, filter);
        qb
    }

    /// One page of matching jobs by id; fetches `limit + 1` rows to tell whether more follow.
    pub fn scan(
        &self,
        filter: &JobFilter,
        after: Option<i64>,
        offset: u64,
        limit: u32,
    ) -> QueryBuilder<'static, Postgres> {
        let mut qb = QueryBuilder::new(format!(
            concat!("SELECT ", job_columns!(), " FROM {}.jobs WHERE true"),
            self.schema
        ));
        push_filter(&mut qb, filter);
        if let Some(after) = after {
            qb.push(" AND id > ").push_bind(after);
        }
        // Limit and offset as literals (integers, so nothing to escape): a bound LIMIT makes a
        // cached generic plan guess the page size, and at millions of jobs it may choose to
        // walk the primary key instead of the (state, id) index.
        qb.push(format!(
            " ORDER BY id LIMIT {} OFFSET {}",
            i64::from(limit) + 1,
            i64::try_from(offset).unwrap_or(i64::MAX)
        ));
        qb
    }

    /// Deletes every matching job that is not running.
    pub fn purge(&self, filter: &JobFilter) -> QueryBuilder<'static, Postgres> {
        let mut qb = QueryBuilder::new(format!(
            "DELETE FROM {}.jobs WHERE state <> 'running'",
            self.schema
        ));
        push_filter(&mut qb, filter);
        qb
    }
}

pub mod cron;
pub mod deps;
pub mod registry;

/// Statements of the migrator, which run before a store's statements exist.
pub mod migrate {
    /// The schema's migration history exists (binds 1: `schema.migrations` as text).
    pub const HAS_MIGRATIONS: &str = "SELECT to_regclass($1) IS NOT NULL";
    /// Serialises migrators of one namespace for the rest of the transaction (binds 1 key).
    pub const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
    /// Creates the schema and its migration history (`@schema@` rendered).
    pub const PREPARE: &str = "CREATE SCHEMA IF NOT EXISTS @schema@; \
        CREATE TABLE IF NOT EXISTS @schema@.migrations (version bigint PRIMARY KEY, \
        name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());";
    /// The schema version (`@schema@` rendered).
    pub const VERSION: &str = "SELECT max(version) FROM @schema@.migrations";
    /// Records an applied migration (`@schema@` rendered). Binds 1 version, 2 name.
    pub const RECORD: &str = "INSERT INTO @schema@.migrations (version, name) VALUES ($1, $2)";
}
