//! The `mysql` suite: the MySQL/MariaDB engine against raw one-row insert commits on the same
//! server, in the same run.
//!
//! - `mysql_raw_insert_commits_per_s`: the baseline, one `INSERT` per (autocommitted)
//!   transaction into an InnoDB table.
//! - `mysql_spawn_per_s` (one job per call) and `mysql_spawn_many_jobs_per_s` (batches of
//!   5,000), each with its ratio to the baseline.
//! - Burn-down: jobs inserted by batch spawn first, then one worker works them all, timed from
//!   its start to the last completion: `mysql_work_jobs_per_s` with 50 slots (claims of up to
//!   50, completions written in batches), `mysql_work_10_slots_jobs_per_s`, and
//!   `mysql_work_500_slots_jobs_per_s` (the configuration of the postgres suite's headline).
//! - Latency: two idle workers polling every 10 s share the store that spawns, so they are
//!   woken in-process (MySQL has no LISTEN/NOTIFY); jobs are spawned one at a time; the time
//!   from the spawn's commit (its call returning) to the handler's start, p50 and p99.
//!
//! - With `--vs-postgres`, the engines side by side on this machine: [`ROUNDS`] rounds, each a
//!   500-slot burn-down of the same number of jobs on MySQL and on PostgreSQL back to back
//!   (which goes first alternates), then `mysql_work_500_slots_median_jobs_per_s` and
//!   `postgres_work_500_slots_jobs_per_s` (medians over the rounds) and
//!   `mysql_work_500_slots_vs_postgres`, the median of the rounds' MySQL/PostgreSQL ratios
//!   (1 is parity; the goal is at least 0.667, within 1.5x of PostgreSQL).
//!
//! The server is `TASQUE_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`);
//! everything lives in tables with a random prefix, dropped at the end. PostgreSQL (for
//! `--vs-postgres`) is `TASQUE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), in schemas with the same random prefix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use sqlx::{MySqlPool, PgPool};
use tasque_durable::{Spawn, Store};
use tasque_mysql::{MySqlConfig, MySqlStore};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_worker::{Handlers, JobContext, Worker};
use tokio::sync::mpsc;

use crate::burn::{burn_down, spawn_batches};
use crate::postgres_suite::{self, drop_schemas};
use crate::report::{figure, per_s, ratio};

/// Sizes of one run.
struct Sizes {
    raw: usize,
    single: usize,
    burn_down: usize,
    burn_down_10: usize,
    burn_down_500: usize,
    latency: usize,
}

/// Slots of the headline burn-down.
const SLOTS: usize = 50;

/// Rounds of the `--vs-postgres` comparison.
const ROUNDS: usize = 3;

/// Runs the suite; `vs_postgres` adds the side-by-side comparison with PostgreSQL.
pub fn run(quick: bool, vs_postgres: bool) -> Result<()> {
    let sizes = if quick {
        Sizes {
            raw: 500,
            single: 500,
            burn_down: 10_000,
            burn_down_10: 3_000,
            burn_down_500: 10_000,
            latency: 50,
        }
    } else {
        Sizes {
            raw: 2_000,
            single: 2_000,
            burn_down: 60_000,
            burn_down_10: 20_000,
            burn_down_500: 60_000,
            latency: 300,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        suite(&sizes).await?;
        if vs_postgres {
            versus_postgres(sizes.burn_down_500).await?;
        }
        Ok(())
    })
}

fn url() -> String {
    std::env::var("TASQUE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_string())
}

async fn suite(sizes: &Sizes) -> Result<()> {
    let prefix = format!("tqbench{:08x}_", rand::random::<u32>());
    let admin = MySqlPool::connect(&url())
        .await
        .with_context(|| format!("MySQL/MariaDB at {} (set TASQUE_TEST_MYSQL_URL)", url()))?;
    let mut stores = Vec::new();
    let outcome = measure(sizes, &prefix, &admin, &mut stores).await;
    for store in stores {
        store.drop_tables().await?;
        store.close().await;
    }
    sqlx::query(&format!("DROP TABLE IF EXISTS `{prefix}raw`"))
        .execute(&admin)
        .await?;
    outcome
}

async fn store(prefix: &str, namespace: &str, stores: &mut Vec<MySqlStore>) -> Result<MySqlStore> {
    let config = MySqlConfig::new(url())
        .with_table_prefix(prefix)
        .with_namespace(namespace);
    let store = MySqlStore::connect(config).await?;
    stores.push(store.clone());
    store.migrate().await?;
    Ok(store)
}

async fn measure(
    sizes: &Sizes,
    prefix: &str,
    admin: &MySqlPool,
    stores: &mut Vec<MySqlStore>,
) -> Result<()> {
    let raw = raw_inserts(admin, prefix, sizes.raw).await?;
    figure("mysql_raw_insert_commits_per_s", raw, "rows/s");

    let singles = store(prefix, "single", stores).await?;
    let start = Instant::now();
    for n in 0..sizes.single {
        singles
            .spawn(Spawn::new("default", "noop", json!(n)))
            .await?;
    }
    let single = per_s(sizes.single, start.elapsed());
    figure("mysql_spawn_per_s", single, "jobs/s");
    ratio("mysql_spawn_vs_raw_insert", single, raw);

    let best = store(prefix, "burn", stores).await?;
    let batch = spawn_batches(&best, sizes.burn_down).await?;
    figure("mysql_spawn_many_jobs_per_s", batch, "jobs/s");
    ratio("mysql_spawn_many_vs_raw_insert", batch, raw);
    let work = burn_down(&best, sizes.burn_down, SLOTS).await?;
    figure("mysql_work_jobs_per_s", work, "jobs/s");
    ratio("mysql_work_vs_raw_insert", work, raw);

    let ten = store(prefix, "burn10", stores).await?;
    spawn_batches(&ten, sizes.burn_down_10).await?;
    let work10 = burn_down(&ten, sizes.burn_down_10, 10).await?;
    figure("mysql_work_10_slots_jobs_per_s", work10, "jobs/s");
    ratio("mysql_work_10_slots_vs_raw_insert", work10, raw);

    let wide = store(prefix, "burn500", stores).await?;
    spawn_batches(&wide, sizes.burn_down_500).await?;
    let work500 = burn_down(&wide, sizes.burn_down_500, 500).await?;
    figure("mysql_work_500_slots_jobs_per_s", work500, "jobs/s");
    ratio("mysql_work_500_slots_vs_raw_insert", work500, raw);

    let (p50, p99) = latency(&store(prefix, "latency", stores).await?, sizes.latency).await?;
    figure("mysql_latency_p50_ms", p50, "ms");
    figure("mysql_latency_p99_ms", p99, "ms");
    Ok(())
}

/// The baseline: one-row INSERT commits, one after the other.
async fn raw_inserts(admin: &MySqlPool, prefix: &str, n: usize) -> Result<f64> {
    let table = format!("`{prefix}raw`");
    sqlx::query(&format!(
        "CREATE TABLE {table} (id BIGINT AUTO_INCREMENT PRIMARY KEY, payload LONGTEXT NOT NULL) \
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    ))
    .execute(admin)
    .await?;
    let insert = format!("INSERT INTO {table} (payload) VALUES (?)");
    let start = Instant::now();
    for i in 0..n {
        sqlx::query(&insert)
            .bind(json!({ "n": i }).to_string())
            .execute(admin)
            .await?;
    }
    Ok(per_s(n, start.elapsed()))
}

/// Spawn-to-start latency with idle workers woken in-process: (p50, p99) in ms.
async fn latency(store: &MySqlStore, n: usize) -> Result<(f64, f64)> {
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
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        // Let the workers go idle (waiting for a wake-up) before the next job.
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

/// The `--vs-postgres` comparison: [`ROUNDS`] rounds of back-to-back 500-slot burn-downs of
/// `n` jobs on each engine, each in a fresh namespace.
async fn versus_postgres(n: usize) -> Result<()> {
    let prefix = format!("tqvs{:08x}_", rand::random::<u32>());
    let postgres = PgPool::connect(&postgres_suite::url())
        .await
        .with_context(|| {
            format!(
                "PostgreSQL at {} (set TASQUE_TEST_POSTGRES_URL)",
                postgres_suite::url()
            )
        })?;
    let mut stores = Vec::new();
    let outcome = rounds(n, &prefix, &mut stores).await;
    for store in stores {
        store.drop_tables().await?;
        store.close().await;
    }
    drop_schemas(&postgres, &prefix).await?;
    postgres.close().await;
    let (mysql, postgres, ratios) = outcome?;
    figure(
        "mysql_work_500_slots_median_jobs_per_s",
        median(mysql),
        "jobs/s",
    );
    figure(
        "postgres_work_500_slots_jobs_per_s",
        median(postgres),
        "jobs/s",
    );
    println!(
        "bench: mysql_work_500_slots_vs_postgres {:.3} x",
        median(ratios)
    );
    Ok(())
}

/// Runs the rounds: (MySQL figures, PostgreSQL figures, per-round MySQL/PostgreSQL ratios).
async fn rounds(
    n: usize,
    prefix: &str,
    stores: &mut Vec<MySqlStore>,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let (mut mysql, mut postgres, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (my, pg) = if round % 2 == 0 {
            let my = mysql_500(prefix, round, n, stores).await?;
            (my, postgres_500(prefix, round, n).await?)
        } else {
            let pg = postgres_500(prefix, round, n).await?;
            (mysql_500(prefix, round, n, stores).await?, pg)
        };
        mysql.push(my);
        postgres.push(pg);
        ratios.push(my / pg);
    }
    Ok((mysql, postgres, ratios))
}

async fn mysql_500(
    prefix: &str,
    round: usize,
    n: usize,
    stores: &mut Vec<MySqlStore>,
) -> Result<f64> {
    let engine = store(prefix, &format!("vs{round}"), stores).await?;
    spawn_batches(&engine, n).await?;
    burn_down(&engine, n, 500).await
}

async fn postgres_500(prefix: &str, round: usize, n: usize) -> Result<f64> {
    let config = PostgresConfig::new(postgres_suite::url())
        .with_schema_prefix(prefix)
        .with_namespace(format!("vs{round}"));
    let engine = PostgresStore::connect(config).await?;
    engine.migrate().await?;
    spawn_batches(&engine, n).await?;
    let work = burn_down(&engine, n, 500).await;
    engine.close().await;
    work
}

/// The median of some figures.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
