//! The `sqlite` suite: the durable queue on a SQLite file in WAL mode versus
//! raw SQL on the same file settings, in the same run.
//!
//! * `spawn_single`: one `spawn` per job, vs one-row `INSERT` transactions;
//! * `spawn_batch`: `spawn_many` in chunks of 1,000, vs multi-row inserts;
//! * `work`: a burn-down of jobs inserted first, worked by one worker with 10
//!   slots (and with 100), timed from the worker's start to the last
//!   completion written, vs one-row transactions;
//! * `latency`: p50/p99 from a job becoming ready to its handler starting,
//!   with an idle worker polling every 10 ms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde_json::{json, Value};
use sqlx::{Connection, SqliteConnection};
use tasque_durable::{Spawn, Store};
use tasque_sqlite::{SqliteConfig, SqliteStore};
use tasque_worker::{Handlers, JobContext, Worker};

use crate::report::{figure, ratio};

/// Runs the suite.
pub fn run(quick: bool) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(suite(quick))
}

async fn suite(quick: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (singles, batch, burn) = if quick {
        (1_000, 20_000, 20_000)
    } else {
        (5_000, 100_000, 100_000)
    };

    let raw_single = raw_single_commits(&dir.path().join("raw.db"), singles).await?;
    figure("sqlite_raw_single_commits_per_s", raw_single, "rows/s");
    let raw_batch = raw_batch_inserts(&dir.path().join("raw-batch.db"), batch).await?;
    figure("sqlite_raw_batch_rows_per_s", raw_batch, "rows/s");

    let store = open(&dir.path().join("spawn.db")).await?;
    let single = spawn_single(&*store, singles).await?;
    figure("sqlite_spawn_single_jobs_per_s", single, "jobs/s");
    ratio("sqlite_spawn_single_vs_raw_commit", single, raw_single);
    let batched = spawn_batch(&*store, batch).await?;
    figure("sqlite_spawn_batch_jobs_per_s", batched, "jobs/s");
    ratio("sqlite_spawn_batch_vs_raw_batch", batched, raw_batch);

    for slots in [10, 100] {
        let store = open(&dir.path().join(format!("work-{slots}.db"))).await?;
        let rate = burn_down(store, burn, slots).await?;
        let name = if slots == 10 {
            "sqlite_work_jobs_per_s".to_owned()
        } else {
            format!("sqlite_work_c{slots}_jobs_per_s")
        };
        figure(&name, rate, "jobs/s");
        ratio(
            &format!("{}_vs_raw_commit", name.trim_end_matches("_jobs_per_s")),
            rate,
            raw_single,
        );
    }

    let store = open(&dir.path().join("latency.db")).await?;
    let (p50, p99) = latency(store, if quick { 100 } else { 300 }).await?;
    figure("sqlite_latency_p50_ms", p50, "ms");
    figure("sqlite_latency_p99_ms", p99, "ms");
    Ok(())
}

async fn open(path: &std::path::Path) -> Result<Arc<dyn Store>> {
    let store = SqliteStore::connect(SqliteConfig::file(path)).await?;
    store.migrate().await?;
    Ok(Arc::new(store))
}

async fn raw_connection(path: &std::path::Path) -> Result<SqliteConnection> {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut connection = SqliteConnection::connect(&url).await?;
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut connection)
        .await?;
    sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(&mut connection)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, queue TEXT, task TEXT, params TEXT)")
        .execute(&mut connection)
        .await?;
    Ok(connection)
}

/// One-row transactions: the baseline of single spawns and of work.
async fn raw_single_commits(path: &std::path::Path, n: usize) -> Result<f64> {
    let mut connection = raw_connection(path).await?;
    let started = Instant::now();
    for i in 0..n {
        sqlx::query("INSERT INTO raw (queue, task, params) VALUES ('default', 'noop', ?)")
            .bind(format!("{{\"i\":{i}}}"))
            .execute(&mut connection)
            .await?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Multi-row inserts, 1,000 rows a transaction: the baseline of batch spawns.
async fn raw_batch_inserts(path: &std::path::Path, n: usize) -> Result<f64> {
    let mut connection = raw_connection(path).await?;
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let mut tx = connection.begin().await?;
        let mut builder = sqlx::QueryBuilder::new("INSERT INTO raw (queue, task, params) ");
        builder.push_values(chunk, |mut row, i| {
            row.push_bind("default")
                .push_bind("noop")
                .push_bind(format!("{{\"i\":{i}}}"));
        });
        builder.build().execute(&mut *tx).await?;
        tx.commit().await?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

async fn spawn_single(store: &dyn Store, n: usize) -> Result<f64> {
    let started = Instant::now();
    for i in 0..n {
        store
            .spawn(Spawn::new("default", "noop", json!({ "i": i })))
            .await?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

async fn spawn_batch(store: &dyn Store, n: usize) -> Result<f64> {
    let started = Instant::now();
    insert_jobs(store, n, "batch").await?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

async fn insert_jobs(store: &dyn Store, n: usize, queue: &str) -> Result<()> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let spawns = chunk
            .iter()
            .map(|i| Spawn::new(queue, "noop", json!({ "i": i })))
            .collect();
        store.spawn_many(spawns).await?;
    }
    Ok(())
}

/// Inserts `n` jobs, then one worker with `slots` works them all.
async fn burn_down(store: Arc<dyn Store>, n: usize, slots: usize) -> Result<f64> {
    insert_jobs(&*store, n, "default").await?;
    let handlers = Handlers::new();
    handlers.learn("noop", |_ctx: JobContext, _params: Value| async {
        Ok::<_, String>(Value::Null)
    });
    let started = Instant::now();
    let worker = Worker::builder(store)
        .handlers(handlers)
        .concurrency(slots)
        .poll_interval(Duration::from_millis(5))
        .build()?
        .start()?;
    let emptied = worker
        .wait_until_empty(false, Duration::from_secs(600))
        .await;
    let elapsed = started.elapsed();
    let completed = worker.stats().completed;
    worker.shutdown(Duration::from_secs(5)).await;
    anyhow::ensure!(
        emptied && completed == n as u64,
        "burn-down incomplete: {completed} of {n}"
    );
    Ok(n as f64 / elapsed.as_secs_f64())
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Ready-to-start latency: jobs spawned one by one while a worker idles.
async fn latency(store: Arc<dyn Store>, samples: usize) -> Result<(f64, f64)> {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let handlers = Handlers::new();
    handlers.learn("stamp", move |_ctx: JobContext, params: Value| {
        let sender = sender.clone();
        async move {
            let spawned = params["spawned_us"].as_u64().unwrap_or(0);
            let _ = sender.send(now_micros().saturating_sub(spawned));
            Ok::<_, String>(Value::Null)
        }
    });
    let worker = Worker::builder(store.clone())
        .handlers(handlers)
        .poll_interval(Duration::from_millis(10))
        .build()?
        .start()?;
    let waited = Arc::new(AtomicU64::new(0));
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        store
            .spawn(Spawn::new(
                "default",
                "stamp",
                json!({ "spawned_us": now_micros() }),
            ))
            .await?;
        let micros = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
            .await?
            .unwrap_or(0);
        waited.fetch_add(micros, Ordering::Relaxed);
        latencies.push(micros as f64 / 1000.0);
        // Spread the samples over the poll cycle.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    worker.shutdown(Duration::from_secs(5)).await;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}
