//! The `workflow` suite: durable workflows on SQLite and PostgreSQL, each against the same
//! engine's raw one-row upsert in the same run.
//!
//! Per engine (`sqlite`, `postgres`):
//! - `ENGINE_raw_upsert_per_s`: the baseline, one `INSERT ... ON CONFLICT DO UPDATE` of one row
//!   per transaction, one after the other, on the same database file settings / server.
//! - `ENGINE_checkpoint_per_s`: `Store::set_checkpoint` by one claimed run, one after the other
//!   (each a guarded write that also extends the lease); `ENGINE_checkpoint_vs_raw` is its ratio
//!   to the baseline.
//! - `ENGINE_workflow_10_steps_jobs_per_s`: jobs whose handler runs 10 checkpointed steps
//!   (`JobContext::step`), spawned first and worked end to end by one worker with 10 slots,
//!   timed from its start to the last completion; `..._steps_per_s` counts the steps.
//! - `ENGINE_blocking_queue_jobs_per_s`: no-op jobs through a blocking queue (strictly one at
//!   a time, in order) worked by one worker with 10 slots.
//!
//! The PostgreSQL server is `TASQUE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); its schemas have a random prefix and are dropped
//! at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgPool, SqliteConnection};
use tasque_durable::{
    BlockingParams, ClaimParams, PollOrder, SetCheckpoint, Spawn, SpawnOptions, Store,
};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_sqlite::{SqliteConfig, SqliteStore};
use tasque_worker::{Handlers, JobContext, Worker};

use crate::postgres_suite::{self, drop_schemas};
use crate::report::{figure, per_s, ratio};

/// Sizes of one run.
struct Sizes {
    writes: usize,
    workflows: usize,
    blocking: usize,
}

/// Runs the suite.
pub fn run(quick: bool) -> Result<()> {
    let sizes = if quick {
        Sizes {
            writes: 500,
            workflows: 200,
            blocking: 200,
        }
    } else {
        Sizes {
            writes: 3_000,
            workflows: 1_000,
            blocking: 1_000,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        sqlite(&sizes).await?;
        postgres(&sizes).await
    })
}

async fn sqlite(sizes: &Sizes) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let raw = sqlite_raw_upserts(&dir.path().join("raw.db"), sizes.writes).await?;
    let open = |name: &str| {
        let path = dir.path().join(name);
        async move {
            let store = SqliteStore::connect(SqliteConfig::file(path)).await?;
            store.migrate().await?;
            Ok::<_, anyhow::Error>(Arc::new(store) as Arc<dyn Store>)
        }
    };
    engine("sqlite", raw, sizes, |name| open(name)).await
}

async fn postgres(sizes: &Sizes) -> Result<()> {
    let url = postgres_suite::url();
    let admin = PgPool::connect(&url)
        .await
        .with_context(|| format!("PostgreSQL at {url} (set TASQUE_TEST_POSTGRES_URL)"))?;
    let prefix = format!("tqwfbench{:08x}_", rand::random::<u32>());
    let outcome = async {
        let raw = postgres_raw_upserts(&admin, &prefix, sizes.writes).await?;
        let open = |name: &str| {
            let config = PostgresConfig::new(url.clone())
                .with_schema_prefix(prefix.clone())
                .with_namespace(name.replace('.', "_"));
            async move {
                let store = PostgresStore::connect(config).await?;
                store.migrate().await?;
                Ok::<_, anyhow::Error>(Arc::new(store) as Arc<dyn Store>)
            }
        };
        engine("postgres", raw, sizes, |name| open(name)).await
    }
    .await;
    drop_schemas(&admin, &prefix).await?;
    outcome
}

/// The engine's figures; `open(name)` gives a fresh migrated store per measurement.
async fn engine<F, Fut>(engine: &str, raw: f64, sizes: &Sizes, open: F) -> Result<()>
where
    F: Fn(&str) -> Fut,
    Fut: std::future::Future<Output = Result<Arc<dyn Store>>>,
{
    figure(&format!("{engine}_raw_upsert_per_s"), raw, "rows/s");
    let checkpoints = checkpoint_writes(open("checkpoints").await?, sizes.writes).await?;
    figure(
        &format!("{engine}_checkpoint_per_s"),
        checkpoints,
        "writes/s",
    );
    ratio(&format!("{engine}_checkpoint_vs_raw"), checkpoints, raw);

    let jobs = ten_step_workflows(open("workflows").await?, sizes.workflows).await?;
    figure(
        &format!("{engine}_workflow_10_steps_jobs_per_s"),
        jobs,
        "jobs/s",
    );
    figure(
        &format!("{engine}_workflow_10_steps_steps_per_s"),
        jobs * 10.0,
        "steps/s",
    );
    ratio(
        &format!("{engine}_workflow_10_steps_vs_raw"),
        jobs * 10.0,
        raw,
    );

    let blocking = blocking_queue(open("blocking").await?, sizes.blocking).await?;
    figure(
        &format!("{engine}_blocking_queue_jobs_per_s"),
        blocking,
        "jobs/s",
    );
    ratio(&format!("{engine}_blocking_queue_vs_raw"), blocking, raw);
    Ok(())
}

/// The SQLite baseline: one-row upserts, one per transaction, on a WAL file with
/// `synchronous = NORMAL` (the store's own settings).
async fn sqlite_raw_upserts(path: &std::path::Path, n: usize) -> Result<f64> {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut connection = SqliteConnection::connect(&url).await?;
    for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"] {
        sqlx::query(pragma).execute(&mut connection).await?;
    }
    sqlx::query(
        "CREATE TABLE raw (job INTEGER NOT NULL, step TEXT NOT NULL, value TEXT NOT NULL, \
         PRIMARY KEY (job, step))",
    )
    .execute(&mut connection)
    .await?;
    let start = Instant::now();
    for i in 0..n {
        sqlx::query(
            "INSERT INTO raw (job, step, value) VALUES (1, ?1, ?2) \
             ON CONFLICT (job, step) DO UPDATE SET value = excluded.value",
        )
        .bind(format!("step-{i}"))
        .bind(json!({ "i": i }).to_string())
        .execute(&mut connection)
        .await?;
    }
    Ok(per_s(n, start.elapsed()))
}

/// The PostgreSQL baseline: one-row upserts, one per transaction, on the same server.
async fn postgres_raw_upserts(admin: &PgPool, prefix: &str, n: usize) -> Result<f64> {
    let schema = format!("{prefix}raw");
    admin
        .execute(
            format!(
                "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".raw \
                 (job bigint NOT NULL, step text NOT NULL, value jsonb NOT NULL, \
                 PRIMARY KEY (job, step))"
            )
            .as_str(),
        )
        .await?;
    let upsert = format!(
        "INSERT INTO \"{schema}\".raw (job, step, value) VALUES (1, $1, $2::jsonb) \
         ON CONFLICT (job, step) DO UPDATE SET value = excluded.value"
    );
    let start = Instant::now();
    for i in 0..n {
        sqlx::query(&upsert)
            .bind(format!("step-{i}"))
            .bind(json!({ "i": i }).to_string())
            .execute(admin)
            .await?;
    }
    Ok(per_s(n, start.elapsed()))
}

/// One claimed run writes `n` checkpoints, one after the other.
async fn checkpoint_writes(store: Arc<dyn Store>, n: usize) -> Result<f64> {
    store
        .spawn(Spawn::new("default", "bench", Value::Null))
        .await?;
    let claim = store
        .claim(ClaimParams {
            queues: vec!["default".to_owned()],
            limit: 1,
            lease: Duration::from_secs(600),
            worker_id: "bench".to_owned(),
            order: PollOrder::PriorityThenAge,
        })
        .await?
        .pop()
        .context("the job was not claimed")?;
    let start = Instant::now();
    for i in 0..n {
        store
            .set_checkpoint(SetCheckpoint {
                run: claim.run_id,
                name: format!("step-{i}"),
                value: json!({ "i": i }),
                extend_lease: Duration::from_secs(600),
            })
            .await?;
    }
    Ok(per_s(n, start.elapsed()))
}

/// Jobs of 10 checkpointed steps worked end to end by one worker with 10 slots.
async fn ten_step_workflows(store: Arc<dyn Store>, n: usize) -> Result<f64> {
    let spawns = (0..n)
        .map(|i| Spawn::new("default", "ten_steps", json!(i)))
        .collect();
    store.spawn_many(spawns).await?;
    let handlers = Handlers::new();
    handlers.learn("ten_steps", |ctx: JobContext, n: i64| async move {
        let mut total = 0;
        for step in 0..10 {
            total += ctx
                .step(&format!("step-{step}"), || async move {
                    Ok::<_, tasque_worker::Error>(n + step)
                })
                .await?;
        }
        Ok::<_, tasque_worker::Error>(total)
    });
    work(store, handlers, "default", n).await
}

/// No-op jobs through a blocking queue, worked by one worker with 10 slots.
async fn blocking_queue(store: Arc<dyn Store>, n: usize) -> Result<f64> {
    let params = BlockingParams {
        blocking: true,
        ..BlockingParams::default()
    };
    store.set_queue_blocking("serial", params).await?;
    let spawns = (0..n)
        .map(|i| Spawn::new("serial", "noop", json!(i)).with_options(SpawnOptions::new()))
        .collect();
    store.spawn_many(spawns).await?;
    let handlers = Handlers::new();
    handlers.learn("noop", |_ctx: JobContext, _n: i64| async {
        Ok::<_, std::io::Error>(())
    });
    work(store, handlers, "serial", n).await
}

/// One worker with 10 slots works the `n` ready jobs of `queue`; jobs/s from its start to the
/// last completion written.
async fn work(store: Arc<dyn Store>, handlers: Handlers, queue: &str, n: usize) -> Result<f64> {
    let start = Instant::now();
    let worker = Worker::builder(store)
        .handlers(handlers)
        .queues([queue])
        .concurrency(10)
        .poll_interval(Duration::from_millis(50))
        .build()?
        .start()?;
    let emptied = worker
        .wait_until_empty(false, Duration::from_secs(240))
        .await;
    let elapsed = start.elapsed();
    let completed = worker.stats().completed;
    worker.shutdown(Duration::from_secs(5)).await;
    anyhow::ensure!(
        emptied && completed as usize == n,
        "{queue}: only {completed} of {n} jobs completed"
    );
    Ok(per_s(n, elapsed))
}
