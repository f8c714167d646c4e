//! The `postgres` suite: the PostgreSQL engine against raw one-row insert commits on the same
//! server, in the same run.
//!
//! - `postgres_raw_insert_commits_per_s`: the baseline, one `INSERT` per transaction.
//! - `postgres_spawn_per_s` (one job per call) and `postgres_spawn_many_jobs_per_s` (batches of
//!   5,000), each with its ratio to the baseline.
//! - Burn-down: jobs inserted by batch spawn first, then one worker works them all, timed from
//!   its start to the last completion: `postgres_work_jobs_per_s` with the best configuration
//!   (500 slots, claims of up to 500, completions written in batches of up to 1,000) and
//!   `postgres_work_10_slots_jobs_per_s`; `postgres_work_delete_on_success_jobs_per_s`: the
//!   best configuration with the worker's `delete_on_success` (each job deleted when it
//!   succeeds, as Graphile Worker does, instead of kept completed); and `postgres_work_4_processes_jobs_per_s`: four worker
//!   processes (this binary run as `bench postgres-worker ...`, each in the one-process figure's
//!   configuration: 500 slots, claims of up to 500) share the work,
//!   timed from their launch to the last one's exit once no job is left, and its ratio to the
//!   one-process figure (`postgres_work_4_processes_vs_one_process`).
//! - Latency: two idle workers polling every 10 s wait on LISTEN/NOTIFY; jobs are spawned one at
//!   a time; the time from the spawn's commit (its call returning) to the handler's start,
//!   p50 and p99.
//! - The `sql` group ([`postgres_sql`](crate::postgres_sql)): the schema's `spawn` and
//!   `spawn_batch` functions called from SQL, against raw inserts into a same-shaped table.
//!   `bench postgres --only sql` runs that group alone.
//!
//! The server is `TASQUE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! everything lives in schemas with a random prefix, dropped at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use sqlx::{Executor, PgPool};
use tasque_durable::{JobFilter, JobState, Spawn, Store};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_worker::{Handlers, JobContext, Worker};
use tokio::sync::mpsc;

use crate::burn::{burn_down, burn_down_with, spawn_batches};
use crate::postgres_sql;
use crate::report::{figure, per_s, ratio};

/// Sizes of one run.
struct Sizes {
    raw: usize,
    single: usize,
    burn_down: usize,
    burn_down_10: usize,
    burn_down_processes: usize,
    latency: usize,
}

/// Worker processes of the multi-process burn-down, and slots in each: the configuration of the
/// one-process figure, so that the two figures differ only in the number of processes.
const PROCESSES: usize = 4;
const PROCESS_SLOTS: usize = 500;

/// Runs the suite, or only its group `only` (`sql`).
pub fn run(quick: bool, only: Option<&str>) -> Result<()> {
    let sql_only = match only {
        None => false,
        Some("sql") => true,
        Some(other) => anyhow::bail!("unknown group {other:?} of the postgres suite; groups: sql"),
    };
    let sizes = if quick {
        Sizes {
            raw: 500,
            single: 500,
            burn_down: 20_000,
            burn_down_10: 5_000,
            burn_down_processes: 20_000,
            latency: 50,
        }
    } else {
        Sizes {
            raw: 2_000,
            single: 2_000,
            burn_down: 100_000,
            burn_down_10: 20_000,
            burn_down_processes: 100_000,
            latency: 300,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(suite(sizes, quick, sql_only))
}

/// The PostgreSQL server the benchmarks use: `TASQUE_TEST_POSTGRES_URL`, or the local default.
pub(crate) fn url() -> String {
    std::env::var("TASQUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Drops every schema whose name starts with `prefix` (a benchmark's namespaces).
pub(crate) async fn drop_schemas(admin: &PgPool, prefix: &str) -> Result<()> {
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)")
            .bind(prefix)
            .fetch_all(admin)
            .await?;
    for schema in schemas {
        admin
            .execute(format!("DROP SCHEMA \"{schema}\" CASCADE").as_str())
            .await?;
    }
    Ok(())
}

async fn suite(sizes: Sizes, quick: bool, sql_only: bool) -> Result<()> {
    let prefix = format!("tqbench{:08x}_", rand::random::<u32>());
    let admin = PgPool::connect(&url())
        .await
        .with_context(|| format!("PostgreSQL at {} (set TASQUE_TEST_POSTGRES_URL)", url()))?;
    let outcome = async {
        if !sql_only {
            measure(&sizes, &prefix, &admin).await?;
        }
        let ours = store(&prefix, "sql_ours").await?;
        postgres_sql::measure(&admin, &url(), ours.schema(), &prefix, quick).await
    }
    .await;
    drop_schemas(&admin, &prefix).await?;
    outcome
}

async fn store(prefix: &str, namespace: &str) -> Result<PostgresStore> {
    let config = PostgresConfig::new(url())
        .with_schema_prefix(prefix)
        .with_namespace(namespace);
    let store = PostgresStore::connect(config).await?;
    store.migrate().await?;
    Ok(store)
}

async fn measure(sizes: &Sizes, prefix: &str, admin: &PgPool) -> Result<()> {
    let raw = raw_inserts(admin, prefix, sizes.raw).await?;
    figure("postgres_raw_insert_commits_per_s", raw, "rows/s");

    let singles = store(prefix, "single").await?;
    let start = Instant::now();
    for n in 0..sizes.single {
        singles
            .spawn(Spawn::new("default", "noop", json!(n)))
            .await?;
    }
    let single = per_s(sizes.single, start.elapsed());
    figure("postgres_spawn_per_s", single, "jobs/s");
    ratio("postgres_spawn_vs_raw_insert", single, raw);

    let best = store(prefix, "burn").await?;
    let batch = spawn_batches(&best, sizes.burn_down).await?;
    figure("postgres_spawn_many_jobs_per_s", batch, "jobs/s");
    ratio("postgres_spawn_many_vs_raw_insert", batch, raw);
    let work = burn_down(&best, sizes.burn_down, 500).await?;
    figure("postgres_work_jobs_per_s", work, "jobs/s");
    ratio("postgres_work_vs_raw_insert", work, raw);

    let gone = store(prefix, "burn_delete").await?;
    spawn_batches(&gone, sizes.burn_down).await?;
    let work_delete = burn_down_with(&gone, sizes.burn_down, 500, true).await?;
    figure(
        "postgres_work_delete_on_success_jobs_per_s",
        work_delete,
        "jobs/s",
    );

    let ten = store(prefix, "burn10").await?;
    spawn_batches(&ten, sizes.burn_down_10).await?;
    let work10 = burn_down(&ten, sizes.burn_down_10, 10).await?;
    figure("postgres_work_10_slots_jobs_per_s", work10, "jobs/s");

    let shared = store(prefix, "burn4").await?;
    spawn_batches(&shared, sizes.burn_down_processes).await?;
    let work4 = burn_down_processes(&shared, prefix, sizes.burn_down_processes).await?;
    figure("postgres_work_4_processes_jobs_per_s", work4, "jobs/s");
    ratio("postgres_work_4_processes_vs_raw_insert", work4, raw);
    ratio("postgres_work_4_processes_vs_one_process", work4, work);

    let (p50, p99) = latency(&store(prefix, "latency").await?, sizes.latency).await?;
    figure("postgres_latency_p50_ms", p50, "ms");
    figure("postgres_latency_p99_ms", p99, "ms");
    Ok(())
}

/// The baseline: one-row INSERT commits, one after the other.
pub(crate) async fn raw_inserts(admin: &PgPool, prefix: &str, n: usize) -> Result<f64> {
    let schema = format!("{prefix}raw");
    admin
        .execute(
            format!(
                "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".rows \
                 (id bigserial PRIMARY KEY, payload jsonb NOT NULL)"
            )
            .as_str(),
        )
        .await?;
    let insert = format!("INSERT INTO \"{schema}\".rows (payload) VALUES ($1::jsonb)");
    let start = Instant::now();
    for i in 0..n {
        sqlx::query(&insert)
            .bind(json!({ "n": i }).to_string())
            .execute(admin)
            .await?;
    }
    Ok(per_s(n, start.elapsed()))
}

/// [`PROCESSES`] worker processes work `n` ready no-op jobs of `store`'s namespace; jobs/s from
/// their launch to the last one's exit.
async fn burn_down_processes(store: &PostgresStore, prefix: &str, n: usize) -> Result<f64> {
    let exe = std::env::current_exe()?;
    let slots = PROCESS_SLOTS.to_string();
    let start = Instant::now();
    let mut children = Vec::new();
    for _ in 0..PROCESSES {
        let child = tokio::process::Command::new(&exe)
            .args(["postgres-worker", prefix, store.namespace(), slots.as_str()])
            .env("TASQUE_TEST_POSTGRES_URL", url())
            .kill_on_drop(true)
            .spawn()
            .context("launch a worker process")?;
        children.push(child);
    }
    for mut child in children {
        let status = tokio::time::timeout(Duration::from_secs(240), child.wait())
            .await
            .context("a worker process did not finish in 240 s")??;
        anyhow::ensure!(status.success(), "a worker process failed: {status}");
    }
    let elapsed = start.elapsed();
    let completed = store
        .count(JobFilter::all().states([JobState::Completed]))
        .await?;
    anyhow::ensure!(
        completed as usize == n,
        "multi-process burn-down incomplete: {completed}/{n}"
    );
    Ok(per_s(n, elapsed))
}

/// A worker process of the multi-process burn-down: `bench postgres-worker PREFIX NAMESPACE
/// SLOTS` works no-op jobs until none is ready or running, then exits.
pub fn worker_process(args: &[String]) -> Result<()> {
    let [prefix, namespace, slots] = args else {
        anyhow::bail!("usage: bench postgres-worker PREFIX NAMESPACE SLOTS");
    };
    let slots: usize = slots.parse().context("SLOTS")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = PostgresConfig::new(url())
            .with_schema_prefix(prefix.as_str())
            .with_namespace(namespace.as_str());
        let store = PostgresStore::connect(config).await?;
        let handlers = Handlers::new();
        handlers.learn("noop", |_ctx: JobContext, _n: i64| async {
            Ok::<_, std::io::Error>(())
        });
        let worker = Worker::builder(Arc::new(store))
            .handlers(handlers)
            .concurrency(slots)
            .poll_limit(slots.min(500))
            // Only an idle worker polls: a process whose claims come back empty learns that the
            // others' last jobs finished at its next poll, and the figure's clock runs until
            // the last process exits. 20 ms instead of the default 200 ms keeps that wait
            // small against a run of a few seconds; while jobs are ready no claim waits on it.
            .poll_interval(Duration::from_millis(20))
            .build()?
            .start()?;
        let emptied = worker
            .wait_until_empty(false, Duration::from_secs(240))
            .await;
        worker.shutdown(Duration::from_secs(5)).await;
        anyhow::ensure!(emptied, "the worker process timed out");
        Ok(())
    })
}

/// Spawn-to-start latency with idle workers woken by LISTEN/NOTIFY: (p50, p99) in ms.
async fn latency(store: &PostgresStore, n: usize) -> Result<(f64, f64)> {
    let (started, mut starts) = mpsc::unbounded_channel::<Instant>();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let handlers = Handlers::new();
        let started = started.clone();
        handlers.learn("ping", move |_ctx: JobContext, _n: i64| {
            let started = started.clone();
            async move {
                let _ = started.send(Instant::now());
                Ok::<_, std::io::Error>(())
            }
        });
        workers.push(
            Worker::builder(Arc::new(store.clone()))
                .handlers(handlers)
                .poll_interval(Duration::from_secs(10))
                .build()?
                .start()?,
        );
    }
    tokio::time::timeout(Duration::from_secs(10), store.wait_listener_generation(1)).await?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        // Let the workers go idle (waiting on LISTEN) before the next job.
        tokio::time::sleep(Duration::from_millis(10)).await;
        store.spawn(Spawn::new("default", "ping", json!(i))).await?;
        // The job is ready once its spawn committed, which is when the call returns.
        let at = Instant::now();
        let began: Instant = tokio::time::timeout(Duration::from_secs(15), starts.recv())
            .await?
            .context("workers stopped")?;
        samples.push(began.saturating_duration_since(at).as_secs_f64() * 1000.0);
    }
    for worker in workers {
        worker.shutdown(Duration::from_secs(5)).await;
    }
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Ok((pick(0.5), pick(0.99)))
}
