//! The `cron` suite: periodic jobs on PostgreSQL.
//!
//! - `cron_ticks_fired_per_s`, `cron_fire_delay_p50_ms`, `cron_fire_delay_p99_ms` and
//!   `cron_ticks_missed`: 1,000 schedules (200 with `--quick`) firing every second, three
//!   worker processes (this binary run as `bench cron-worker ...`) sharing the namespace, one
//!   of them elected leader. The delay of a tick is its job's insert time (the database clock
//!   of the fire's transaction) minus the tick; ticks of the first 3 s (election, first
//!   registration) and of the last second are left out of the window.
//! - `cron_fire_capacity_per_s`: one scheduler pass firing a backlog (every schedule five ticks
//!   behind, policy `catch_up`), timed; with its ratio to the baseline
//!   `postgres_raw_insert_commits_per_s` (one-row INSERT commits on the same server, same run):
//!   a fire is a transaction with a compare-and-swap, the job insert and its record.
//!
//! The server is `TASQUE_TEST_POSTGRES_URL`; everything lives in schemas with a random
//! prefix, dropped at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use tasque_durable::schedule::{fire_due, Fire, FireOutcome, MissedTicks, Schedule, HEADER_TICK};
use tasque_durable::{JobFilter, PageRequest, Store};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_worker::Worker;

use crate::postgres_suite::{drop_schemas, raw_inserts, url};
use crate::report::{figure, per_s, ratio};

/// Worker processes of the live run.
const PROCESSES: usize = 3;
/// Ticks behind in the capacity run.
const BACKLOG: u32 = 5;

struct Sizes {
    schedules: usize,
    seconds: u64,
    raw: usize,
}

/// Runs the suite.
pub fn run(quick: bool) -> Result<()> {
    let sizes = if quick {
        Sizes {
            schedules: 200,
            seconds: 12,
            raw: 500,
        }
    } else {
        Sizes {
            schedules: 1_000,
            seconds: 40,
            raw: 2_000,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(suite(sizes))
}

async fn suite(sizes: Sizes) -> Result<()> {
    let prefix = format!("tqbcron{:08x}_", rand::random::<u32>());
    let admin = PgPool::connect(&url())
        .await
        .with_context(|| format!("PostgreSQL at {} (set TASQUE_TEST_POSTGRES_URL)", url()))?;
    let outcome = measure(&sizes, &prefix, &admin).await;
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

fn schedules(n: usize, policy: MissedTicks) -> Vec<Schedule> {
    (0..n)
        .map(|i| {
            Schedule::every(format!("s{i}"), Duration::from_secs(1))
                .task("tick", json!({ "schedule": i }))
                .queue("ticks")
                .missed(policy)
        })
        .collect()
}

async fn measure(sizes: &Sizes, prefix: &str, admin: &PgPool) -> Result<()> {
    let raw = raw_inserts(admin, prefix, sizes.raw).await?;
    figure("postgres_raw_insert_commits_per_s", raw, "rows/s");
    let capacity = capacity(&store(prefix, "capacity").await?, sizes.schedules).await?;
    figure("cron_fire_capacity_per_s", capacity, "ticks/s");
    ratio("cron_fire_capacity_vs_raw_insert", capacity, raw);
    let live = store(prefix, "live").await?;
    let engine = live.schedules().context("schedules")?;
    engine
        .upsert_schedules(&schedules(sizes.schedules, MissedTicks::CatchUp(1000)))
        .await?;
    let started = live.now().await?;
    run_processes(&live, prefix, sizes.seconds).await?;
    let ended = started + chrono::Duration::seconds(sizes.seconds as i64);
    report_live(&live, sizes.schedules, started, ended).await
}

/// One pass firing [`BACKLOG`] ticks of each of `n` schedules: ticks fired per second.
async fn capacity(store: &PostgresStore, n: usize) -> Result<f64> {
    let engine = store.schedules().context("schedules")?;
    let all = schedules(n, MissedTicks::CatchUp(BACKLOG));
    engine.upsert_schedules(&all).await?;
    let now = store.now().await?;
    let behind = now - chrono::Duration::seconds(i64::from(BACKLOG));
    for schedule in &all {
        let outcome = engine
            .fire(Fire {
                id: schedule.id.clone(),
                expected: None,
                tick: behind,
                spawn: None,
                skip_if_running: false,
            })
            .await?;
        anyhow::ensure!(outcome == FireOutcome::Passed, "setting the backlog up");
    }
    let start = Instant::now();
    let report = fire_due(engine, now).await?;
    let elapsed = start.elapsed();
    let fired = usize::try_from(report.created)?;
    anyhow::ensure!(
        fired >= n * BACKLOG as usize,
        "backlog not fired: {report:?}"
    );
    Ok(per_s(fired, elapsed))
}

/// Runs [`PROCESSES`] worker processes on the namespace for `seconds`.
async fn run_processes(store: &PostgresStore, prefix: &str, seconds: u64) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for _ in 0..PROCESSES {
        let child = tokio::process::Command::new(&exe)
            .args([
                "cron-worker",
                prefix,
                store.namespace(),
                &seconds.to_string(),
            ])
            .env("TASQUE_TEST_POSTGRES_URL", url())
            .kill_on_drop(true)
            .spawn()
            .context("launch a worker process")?;
        children.push(child);
    }
    for mut child in children {
        let status = tokio::time::timeout(Duration::from_secs(seconds + 60), child.wait())
            .await
            .context("a worker process did not finish")??;
        anyhow::ensure!(status.success(), "a worker process failed: {status}");
    }
    Ok(())
}

/// A worker process of the live run: `bench cron-worker PREFIX NAMESPACE SECONDS` runs a
/// worker (leader candidate; it claims nothing of the fired jobs' queue) for SECONDS.
pub fn worker_process(args: &[String]) -> Result<()> {
    let [prefix, namespace, seconds] = args else {
        anyhow::bail!("usage: bench cron-worker PREFIX NAMESPACE SECONDS");
    };
    let seconds: u64 = seconds.parse().context("SECONDS")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = PostgresConfig::new(url())
            .with_schema_prefix(prefix.as_str())
            .with_namespace(namespace.as_str());
        let store = PostgresStore::connect(config).await?;
        let worker = Worker::builder(Arc::new(store)).build()?.start()?;
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        worker.shutdown(Duration::from_secs(5)).await;
        Ok(())
    })
}

/// Prints the live run's figures from the fired jobs.
async fn report_live(
    store: &PostgresStore,
    schedules: usize,
    started: DateTime<Utc>,
    ended: DateTime<Utc>,
) -> Result<()> {
    let from = started + chrono::Duration::seconds(3);
    let until = ended - chrono::Duration::seconds(1);
    let mut delays = Vec::new();
    let mut page = PageRequest::first(5000);
    loop {
        let found = store.scan(JobFilter::all().queues(["ticks"]), page).await?;
        for job in &found.jobs {
            let tick = job.headers[HEADER_TICK].as_str().context("tick header")?;
            let tick = DateTime::parse_from_rfc3339(tick)?.with_timezone(&Utc);
            if tick >= from && tick < until {
                delays.push((job.created_at - tick).num_microseconds().unwrap_or(0) as f64 / 1e3);
            }
        }
        match found.next {
            Some(next) => page = PageRequest::after(next, 5000),
            None => break,
        }
    }
    let window = (until - from).num_seconds().max(1);
    let expected = schedules * usize::try_from(window)?;
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    anyhow::ensure!(!delays.is_empty(), "no tick fired in the window");
    figure("cron_schedules", schedules as f64, "schedules");
    figure(
        "cron_ticks_fired_per_s",
        delays.len() as f64 / window as f64,
        "ticks/s",
    );
    figure(
        "cron_ticks_missed",
        expected.saturating_sub(delays.len()) as f64,
        "ticks",
    );
    figure("cron_fire_delay_p50_ms", at(0.50), "ms");
    figure("cron_fire_delay_p99_ms", at(0.99), "ms");
    Ok(())
}
