//! The `sql` group of the `postgres` suite: the schema's SQL functions (`spawn`, `spawn_batch`),
//! called as a producer in another language would, against raw inserts into a table of the
//! same shape (a copy of the namespace's `jobs` table with all its indexes and defaults) on the
//! same server, in the same run. Ours and the baseline alternate in rounds, so a noisy neighbour
//! slows both.
//!
//! - `postgres_sql_spawn_per_s` / `postgres_sql_spawn_vs_raw_insert`: one `spawn(...)` call per
//!   transaction on one connection, against one-row `INSERT` commits.
//! - `postgres_sql_spawn_8_connections_per_s` / `..._vs_raw_insert`: the same from 8
//!   connections at once, against 8 connections inserting; and `..._vs_raw_insert_notify`
//!   against 8 connections whose one-row inserts also `NOTIFY` (as `spawn` does to wake
//!   workers): PostgreSQL serialises the commits of notifying transactions, which bounds both.
//!   `postgres_sql_spawn_8_connections_quiet_per_s` / `..._quiet_vs_raw_insert`: the same into a
//!   quiet queue (`queues.notify = false`: its spawns do not notify; workers poll).
//! - `postgres_sql_spawn_batch_jobs_per_s` / `postgres_sql_spawn_batch_vs_raw_insert`: one
//!   `spawn_batch` of 10,000 jobs, against one multi-row `INSERT ... SELECT FROM unnest(...)`
//!   of the same rows.

use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::future::try_join_all;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

use crate::report::{figure, per_s, ratio};

/// The options every benchmarked job carries (the raw insert writes the same values).
const OPTIONS: &str = r#"{"priority": 1, "max_attempts": 5, "timeout_ms": 30000}"#;
/// Jobs in one `spawn_batch` call.
const BATCH: usize = 10_000;
/// The quiet queue (`notify = false`) of the parallel comparison.
const QUIET: &str = "quiet";
/// Concurrent connections of the parallel comparison.
const CONNECTIONS: usize = 8;

/// Sizes of one run.
pub struct Sizes {
    /// Calls per round on one connection.
    pub single: usize,
    /// Calls per connection per round with 8 connections.
    pub parallel: usize,
    /// Rounds of each comparison.
    pub rounds: usize,
}

/// The sizes of a `--quick` run or a full one.
pub fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            single: 300,
            parallel: 100,
            rounds: 3,
        }
    } else {
        Sizes {
            single: 1_000,
            parallel: 300,
            rounds: 5,
        }
    }
}

/// The two targets: the namespace schema `ours` (migrated) and the raw copy of its jobs table.
struct Targets {
    spawn: String,
    spawn_batch: String,
    raw_insert: String,
    raw_insert_notify: String,
    raw_insert_many: String,
}

impl Targets {
    async fn create(admin: &PgPool, ours: &str, raw: &str) -> Result<Targets> {
        admin
            .execute(
                format!(
                    "CREATE SCHEMA \"{raw}\"; \
                     CREATE TABLE \"{raw}\".jobs (LIKE \"{ours}\".jobs INCLUDING ALL)"
                )
                .as_str(),
            )
            .await?;
        let retry = r#"'{"kind": "exponential", "base": 1000, "factor": 2.0, "cap": 3600000}'"#;
        Ok(Targets {
            spawn: format!("SELECT * FROM \"{ours}\".spawn($1, $2, $3::jsonb, $4::jsonb)"),
            spawn_batch: format!(
                "SELECT * FROM \"{ours}\".spawn_batch($1::text[], $2::text[], $3::jsonb[], \
                 $4::jsonb[])"
            ),
            raw_insert: format!(
                "INSERT INTO \"{raw}\".jobs (queue, task, params, state, priority, max_attempts, \
                 retry, timeout_ms, run_at, created_at) \
                 VALUES ($1, $2, $3::jsonb, 'pending', 1, 5, {retry}, 30000, now(), now()) \
                 RETURNING id"
            ),
            raw_insert_notify: format!(
                "WITH i AS (INSERT INTO \"{raw}\".jobs (queue, task, params, state, priority, \
                 max_attempts, retry, timeout_ms, run_at, created_at) \
                 VALUES ($1, $2, $3::jsonb, 'pending', 1, 5, {retry}, 30000, now(), now()) \
                 RETURNING id) SELECT id, pg_notify('{raw}', 'default') FROM i"
            ),
            raw_insert_many: format!(
                "INSERT INTO \"{raw}\".jobs (queue, task, params, state, priority, max_attempts, \
                 retry, timeout_ms, run_at, created_at) \
                 SELECT q, t, p, 'pending', 1, 5, {retry}, 30000, now(), now() \
                 FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(q, t, p) RETURNING id"
            ),
        })
    }
}

/// Measures the group in the schemas `<prefix>sql_ours` (a migrated namespace, made by
/// `migrate`) and `<prefix>sql_raw`.
pub async fn measure(
    admin: &PgPool,
    url: &str,
    ours: &str,
    prefix: &str,
    quick: bool,
) -> Result<()> {
    let sizes = sizes(quick);
    let targets = Targets::create(admin, ours, &format!("{prefix}sql_raw")).await?;
    let pool = PgPoolOptions::new()
        .max_connections(CONNECTIONS as u32)
        .connect(url)
        .await?;

    admin
        .execute(
            format!(
                "INSERT INTO \"{ours}\".queues (name, notify) VALUES ('{QUIET}', false) \
                 ON CONFLICT (name) DO UPDATE SET notify = false"
            )
            .as_str(),
        )
        .await?;
    // Warm both paths (plans, caches) before timing.
    single_calls(&pool, &targets.spawn, 50, true).await?;
    single_calls(&pool, &targets.raw_insert, 50, false).await?;

    let (mut ours_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..sizes.rounds {
        raw_time += single_calls(&pool, &targets.raw_insert, sizes.single, false).await?;
        ours_time += single_calls(&pool, &targets.spawn, sizes.single, true).await?;
    }
    let calls = sizes.single * sizes.rounds;
    let (ours, raw) = (per_s(calls, ours_time), per_s(calls, raw_time));
    figure("postgres_sql_raw_insert_commits_per_s", raw, "rows/s");
    figure("postgres_sql_spawn_per_s", ours, "jobs/s");
    ratio("postgres_sql_spawn_vs_raw_insert", ours, raw);

    let (mut ours_time, mut raw_time, mut notify_time, mut quiet_time) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    let n = sizes.parallel;
    for _ in 0..sizes.rounds {
        raw_time += parallel_calls(&pool, &targets.raw_insert, "default", n, false).await?;
        notify_time +=
            parallel_calls(&pool, &targets.raw_insert_notify, "default", n, false).await?;
        ours_time += parallel_calls(&pool, &targets.spawn, "default", n, true).await?;
        quiet_time += parallel_calls(&pool, &targets.spawn, QUIET, n, true).await?;
    }
    let calls = sizes.parallel * CONNECTIONS * sizes.rounds;
    let (ours, raw) = (per_s(calls, ours_time), per_s(calls, raw_time));
    let (notify, quiet) = (per_s(calls, notify_time), per_s(calls, quiet_time));
    figure("postgres_sql_raw_insert_8_connections_per_s", raw, "rows/s");
    figure(
        "postgres_sql_raw_insert_notify_8_connections_per_s",
        notify,
        "rows/s",
    );
    figure("postgres_sql_spawn_8_connections_per_s", ours, "jobs/s");
    ratio("postgres_sql_spawn_8_connections_vs_raw_insert", ours, raw);
    ratio(
        "postgres_sql_spawn_8_connections_vs_raw_insert_notify",
        ours,
        notify,
    );
    figure(
        "postgres_sql_spawn_8_connections_quiet_per_s",
        quiet,
        "jobs/s",
    );
    ratio(
        "postgres_sql_spawn_8_connections_quiet_vs_raw_insert",
        quiet,
        raw,
    );

    let (mut ours_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..sizes.rounds {
        raw_time += batch_call(&pool, &targets.raw_insert_many, false).await?;
        ours_time += batch_call(&pool, &targets.spawn_batch, true).await?;
    }
    let jobs = BATCH * sizes.rounds;
    let (ours, raw) = (per_s(jobs, ours_time), per_s(jobs, raw_time));
    figure("postgres_sql_raw_insert_many_rows_per_s", raw, "rows/s");
    figure("postgres_sql_spawn_batch_jobs_per_s", ours, "jobs/s");
    ratio("postgres_sql_spawn_batch_vs_raw_insert", ours, raw);
    pool.close().await;
    Ok(())
}

/// `n` calls one after the other on one connection, each its own transaction.
async fn single_calls(pool: &PgPool, sql: &str, n: usize, with_options: bool) -> Result<Duration> {
    let mut conn = pool.acquire().await?;
    let start = Instant::now();
    for i in 0..n {
        let query = sqlx::query(sql)
            .bind("default")
            .bind("noop")
            .bind(json!({ "n": i }).to_string());
        let query = if with_options {
            query.bind(OPTIONS)
        } else {
            query
        };
        query.fetch_one(&mut *conn).await?;
    }
    Ok(start.elapsed())
}

/// [`CONNECTIONS`] connections each making `n` calls at once into `queue`; the time until the
/// last is done.
async fn parallel_calls(
    pool: &PgPool,
    sql: &str,
    queue: &str,
    n: usize,
    with_options: bool,
) -> Result<Duration> {
    // Every connection is open before the clock starts.
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        conns.push(pool.acquire().await?);
    }
    let start = Instant::now();
    try_join_all(conns.into_iter().map(|mut conn| async move {
        for i in 0..n {
            let query = sqlx::query(sql)
                .bind(queue)
                .bind("noop")
                .bind(json!({ "n": i }).to_string());
            let query = if with_options {
                query.bind(OPTIONS)
            } else {
                query
            };
            query.fetch_one(&mut *conn).await?;
        }
        anyhow::Ok(())
    }))
    .await?;
    Ok(start.elapsed())
}

/// One call writing [`BATCH`] jobs (`spawn_batch`, or the raw multi-row insert).
async fn batch_call(pool: &PgPool, sql: &str, with_options: bool) -> Result<Duration> {
    let queues = vec!["default"; BATCH];
    let tasks = vec!["noop"; BATCH];
    let params: Vec<String> = (0..BATCH).map(|i| json!({ "n": i }).to_string()).collect();
    let options = vec![OPTIONS; BATCH];
    let start = Instant::now();
    let query = sqlx::query(sql).bind(queues).bind(tasks).bind(params);
    let query = if with_options {
        query.bind(options)
    } else {
        query
    };
    let rows = query.fetch_all(pool).await?;
    let elapsed = start.elapsed();
    anyhow::ensure!(rows.len() == BATCH, "a batch wrote {} rows", rows.len());
    Ok(elapsed)
}
