//! Flow control statements: the per-key window and the rate limit of gated claims, the
//! queues' flow settings and the facts behind a job's wait.

use tasque_durable::PollOrder;

/// The per-key window of a gated claim over jobs aliased `j`: a keyed job is claimable only
/// while fewer than `?6` (the queue's key concurrency) jobs of its key created before it are
/// unfinished. Matches the predicate of `tasque_jobs_key_unfinished`.
pub const KEY_WINDOW: &str = "(j.ordering_key IS NULL OR (SELECT COUNT(*) FROM \
    (SELECT 1 FROM tasque_jobs AS p WHERE p.ns = j.ns AND p.queue = j.queue \
    AND p.ordering_key = j.ordering_key AND p.id < j.id AND p.ordering_key IS NOT NULL \
    AND (p.state IN ('pending', 'running', 'sleeping', 'waiting') OR p.holds_queue = 1) \
    LIMIT ?6)) < ?6)";

/// A job's rate key (alias `j`): binds `kind` ('queue', 'ordering_key' or 'arg') and `path`
/// (a JSON path).
pub fn rate_key(kind: &str, path: &str) -> String {
    format!(
        "CASE {kind} WHEN 'ordering_key' THEN COALESCE(j.ordering_key, '') \
         WHEN 'arg' THEN COALESCE(CAST(json_extract(j.params, {path}) AS TEXT), '') ELSE '' END"
    )
}

/// Picks the jobs a rate-limited gated queue may start: the per-key window, then at most `?7`
/// starts per rate key in the current window of `?8` ms, the key being `?9` ('queue',
/// 'ordering_key' or 'arg' with the JSON path `?10`). Binds 1 ns, 4 limit, 5 queue, 6 key
/// concurrency, 7 to 10 as said.
pub fn pick_rated(order: PollOrder) -> String {
    let order_by = match order {
        PollOrder::PriorityThenAge => "priority, run_at, id",
        PollOrder::Age => "run_at, id",
    };
    format!(
        "WITH cur AS (SELECT ({now} / ?8) * ?8 AS w), \
         cand AS (SELECT j.id, j.priority, j.run_at, {rkey} AS rkey FROM tasque_jobs AS j \
           WHERE j.ns = ?1 AND j.queue = ?5 AND j.state = 'pending' AND j.run_at <= {now} \
           AND (j.cancel_at IS NULL OR j.cancel_at > {now}) AND {KEY_WINDOW}), \
         ranked AS (SELECT c.id, c.priority, c.run_at, row_number() OVER \
             (PARTITION BY c.rkey ORDER BY {order_by}) + COALESCE((SELECT w.starts \
             FROM tasque_rate_windows AS w, cur WHERE w.ns = ?1 AND w.queue = ?5 \
             AND w.key = c.rkey AND w.window_start_ms = cur.w), 0) AS nth FROM cand AS c) \
         SELECT id FROM ranked WHERE nth <= ?7 ORDER BY {order_by} LIMIT ?4",
        now = now!(),
        rkey = rate_key("?9", "?10"),
    )
}

/// Counts the starts of claimed jobs in their rate keys' windows: the window of their start
/// (`attempted_at`, the clock of the claim that ranked them). Binds 1 ns, 2 queue, 3 window
/// ms, 4 key kind, 5 JSON path, 6 JSON array of the claimed ids.
pub fn count_starts() -> String {
    format!(
        "INSERT INTO tasque_rate_windows (ns, queue, key, window_start_ms, starts) \
         SELECT ?1, ?2, k.rkey, MAX(k.w), COUNT(*) FROM (SELECT {rkey} AS rkey, \
           (j.attempted_at / ?3) * ?3 AS w \
           FROM tasque_jobs AS j WHERE j.ns = ?1 AND j.id IN (SELECT value FROM json_each(?6))) \
           AS k WHERE true GROUP BY k.rkey \
         ON CONFLICT (ns, queue, key) DO UPDATE SET \
           starts = CASE WHEN window_start_ms = excluded.window_start_ms \
             THEN starts + excluded.starts WHEN window_start_ms > excluded.window_start_ms \
             THEN starts ELSE excluded.starts END, \
           window_start_ms = MAX(window_start_ms, excluded.window_start_ms)",
        rkey = rate_key("?4", "?5"),
    )
}

/// A job's rate key and the starts counted in its current window. Binds 1 ns, 2 id, 3 window
/// ms, 4 key kind, 5 JSON path.
pub fn job_rate() -> String {
    format!(
        "SELECT k.rkey, COALESCE((SELECT w.starts FROM tasque_rate_windows AS w \
           WHERE w.ns = ?1 AND w.queue = k.queue AND w.key = k.rkey \
           AND w.window_start_ms = ({now} / ?3) * ?3), 0) \
         FROM (SELECT j.queue, {rkey} AS rkey FROM tasque_jobs AS j \
           WHERE j.ns = ?1 AND j.id = ?2) AS k",
        now = now!(),
        rkey = rate_key("?4", "?5"),
    )
}

/// Flags queues as keyed (creating them). Binds 1 ns, 2 JSON array of names.
pub const MARK_KEYED: &str = concat!(
    "INSERT INTO tasque_queues (ns, name, keyed, created_at) SELECT ?1, value, 1, ",
    now!(),
    " FROM json_each(?2) WHERE true ON CONFLICT (ns, name) DO UPDATE SET keyed = 1 ",
    "WHERE keyed = 0"
);
/// Sets a queue's key policy (creating it). Binds 1 ns, 2 name, 3 concurrency, 4 policy.
pub const SET_KEY_POLICY: &str = concat!(
    "INSERT INTO tasque_queues (ns, name, key_concurrency, key_on_exhausted, created_at) ",
    "VALUES (?1, ?2, ?3, ?4, ",
    now!(),
    ") ON CONFLICT (ns, name) DO UPDATE SET key_concurrency = excluded.key_concurrency, ",
    "key_on_exhausted = excluded.key_on_exhausted"
);
/// Sets or removes a queue's rate limit (creating it). Binds 1 ns, 2 name, 3 limit (or NULL),
/// 4 window ms, 5 key.
pub const SET_RATE_LIMIT: &str = concat!(
    "INSERT INTO tasque_queues (ns, name, rate_limit, rate_window_ms, rate_key, created_at) ",
    "VALUES (?1, ?2, ?3, ?4, ?5, ",
    now!(),
    ") ON CONFLICT (ns, name) DO UPDATE SET rate_limit = excluded.rate_limit, ",
    "rate_window_ms = excluded.rate_window_ms, rate_key = excluded.rate_key"
);
/// A queue's flow settings. Binds 1 ns, 2 name.
pub const QUEUE_FLOW: &str = "SELECT key_concurrency, key_on_exhausted, rate_limit, \
    rate_window_ms, rate_key FROM tasque_queues WHERE ns = ?1 AND name = ?2";
/// A job's queue, ordering key, whether it is ready now, and the clock. Binds 1 ns, 2 id.
pub const JOB_FLOW: &str = concat!(
    "SELECT queue, ordering_key, state = 'pending' AND run_at <= ",
    now!(),
    " AND (cancel_at IS NULL OR cancel_at > ",
    now!(),
    "), ",
    now!(),
    " FROM tasque_jobs WHERE ns = ?1 AND id = ?2"
);
/// The unfinished jobs of a key created before a job. Binds 1 ns, 2 queue, 3 key, 4 id,
/// 5 limit.
pub const KEY_AHEAD: &str = "SELECT id, holds_queue FROM tasque_jobs WHERE ns = ?1 \
    AND queue = ?2 AND ordering_key = ?3 AND id < ?4 AND ordering_key IS NOT NULL \
    AND (state IN ('pending', 'running', 'sleeping', 'waiting') OR holds_queue = 1) \
    ORDER BY id LIMIT ?5";

/// A JSON path (`$."a"."b"`) of validated argument path segments.
pub fn json_path(segments: &[String]) -> String {
    let mut path = String::from("$");
    for s in segments {
        path.push_str(&format!(".\"{s}\""));
    }
    path
}
