//! The soak run behind `scripts/soak [--minutes N] [--rate JOBS_PER_S] [--concurrency N]`.
//!
//! Runs a worker process against PostgreSQL (`TASQUE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`) for the given time (default 10 minutes) while
//! this process enqueues a steady mix of jobs: 80 % succeed at once, 10 % always fail (three
//! attempts, then failed for good), 10 % are slow (200 to 800 ms). The worker cleans finished
//! jobs older than a minute, as a long-running deployment would. Every minute it prints the
//! throughput of that minute, the worker process's resident memory (RSS) and the namespace's
//! table sizes (live and dead rows); at the end, a summary of how flat they stayed. The run
//! works in a schema of its own, dropped at the end.
//!
//! A server with `autovacuum = off` (as CI's is, for speed) never reclaims the dead rows that
//! every update and delete leaves, so a table's size would grow with the jobs ever run even
//! though its live rows stay flat. On such a server the soak stands in for autovacuum: after
//! each minute's figures it runs a plain `VACUUM` of its schema's tables, and says so.
//!
//! The worker is this binary again, started with `--worker`; it reports its counters on
//! stdout once a second and stops when its stdin closes (so it never outlives the run).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tasque_durable::{RetryStrategy, Spawn, SpawnOptions, Store};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_worker::{Handlers, JobContext, Worker};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const NAMESPACE: &str = "soak";

struct Options {
    minutes: u64,
    rate: u64,
    concurrency: usize,
}

fn url() -> String {
    std::env::var("TASQUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn config(prefix: &str) -> PostgresConfig {
    PostgresConfig::new(url())
        .with_schema_prefix(prefix)
        .with_namespace(NAMESPACE)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Runtime::new()?;
    if args.first().map(String::as_str) == Some("--worker") {
        let prefix = args.get(1).context("--worker PREFIX CONCURRENCY")?.clone();
        let concurrency = args
            .get(2)
            .context("--worker PREFIX CONCURRENCY")?
            .parse()?;
        return runtime.block_on(worker(prefix, concurrency));
    }
    let options = parse(&args)?;
    runtime.block_on(drive(options))
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        minutes: 10,
        rate: 200,
        concurrency: 50,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--minutes" => options.minutes = value.parse()?,
            "--rate" => options.rate = value.parse()?,
            "--concurrency" => options.concurrency = value.parse()?,
            other => bail!("unknown flag {other}; usage: soak [--minutes N] [--rate JOBS_PER_S] [--concurrency N]"),
        }
    }
    if options.minutes == 0 || options.rate == 0 || options.concurrency == 0 {
        bail!("--minutes, --rate and --concurrency must be positive");
    }
    Ok(options)
}

/// The worker process: handlers `ok`, `fail` and `slow`; counters on stdout every second.
async fn worker(prefix: String, concurrency: usize) -> Result<()> {
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(config(&prefix)).await?);
    let handlers = Handlers::new();
    handlers.learn("ok", |_ctx: JobContext, _: Value| async {
        Ok::<_, String>(json!("ok"))
    });
    handlers.learn("fail", |ctx: JobContext, _: Value| async move {
        Err::<(), _>(format!("planned failure, attempt {}", ctx.attempt()))
    });
    handlers.learn("slow", |_ctx: JobContext, ms: u64| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, String>(ms)
    });
    let worker = Worker::builder(store)
        .handlers(handlers)
        .concurrency(concurrency)
        .clean_after(Duration::from_secs(60))
        .build()?
        .start()?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let stats = worker.stats();
                println!("{}", json!({ "completed": stats.completed, "failed": stats.failed, "store_errors": stats.store_errors }));
            }
            line = stdin.next_line() => {
                if !matches!(line, Ok(Some(_))) {
                    break;
                }
            }
        }
    }
    worker.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

/// The job mix for one tick of production: `n` jobs, by job number.
fn mix(first: u64, n: u64) -> Vec<Spawn> {
    let failing = SpawnOptions::new()
        .with_max_attempts(3)
        .with_retry(RetryStrategy::Fixed {
            delay: Duration::from_millis(100),
        });
    (first..first + n)
        .map(|i| match i % 10 {
            0 => Spawn::new("default", "fail", json!(i)).with_options(failing.clone()),
            5 => Spawn::new("default", "slow", json!(200 + (i * 37) % 600)),
            _ => Spawn::new("default", "ok", json!(i)),
        })
        .collect()
}

/// The worker process's resident memory in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Per table of the schema: name, total size in bytes, live rows, dead rows.
async fn table_sizes(store: &PostgresStore) -> Result<Vec<(String, i64, i64, i64)>> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT c.relname::text, pg_total_relation_size(c.oid), \
                COALESCE(s.n_live_tup, 0), COALESCE(s.n_dead_tup, 0) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
         WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 2 DESC",
    )
    .bind(store.schema())
    .fetch_all(store.pool())
    .await?;
    Ok(rows)
}

/// Whether the server runs autovacuum.
async fn autovacuum_on(store: &PostgresStore) -> Result<bool> {
    let setting: String = sqlx::query_scalar("SHOW autovacuum")
        .fetch_one(store.pool())
        .await?;
    Ok(setting == "on")
}

/// A plain `VACUUM` of the schema's tables (what autovacuum would do).
async fn vacuum(store: &PostgresStore, tables: &[(String, i64, i64, i64)]) -> Result<()> {
    for (name, ..) in tables {
        let statement = format!("VACUUM \"{}\".\"{name}\"", store.schema());
        sqlx::query(&statement).execute(store.pool()).await?;
    }
    Ok(())
}

async fn drive(options: Options) -> Result<()> {
    let prefix = format!("tqsoak{:08x}_", rand::random::<u32>());
    let store = PostgresStore::connect(config(&prefix))
        .await
        .with_context(|| format!("PostgreSQL at {} (run scripts/services)", url()))?;
    store.migrate().await?;
    let result = soak(&store, &prefix, &options).await;
    store.drop_schema().await?;
    result
}

async fn soak(store: &PostgresStore, prefix: &str, options: &Options) -> Result<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--worker", prefix, &options.concurrency.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("worker pid")?;
    let mut reports = BufReader::new(child.stdout.take().context("worker stdout")?).lines();
    let (latest, mut latest_rx) = tokio::sync::watch::channel(json!({}));
    tokio::spawn(async move {
        while let Ok(Some(line)) = reports.next_line().await {
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                latest.send_replace(value);
            }
        }
    });
    println!(
        "soak: {} minutes against {} (schema {}), {} jobs/s (80% ok, 10% failing, 10% slow), worker pid {pid}, {} slots",
        options.minutes,
        url().split('@').next_back().unwrap_or_default(),
        store.schema(),
        options.rate,
        options.concurrency
    );
    let stand_in = !autovacuum_on(store).await?;
    if stand_in {
        println!("soak: this server runs with autovacuum off; the soak VACUUMs its tables after each minute's figures, as autovacuum would");
    }
    let per_tick = (options.rate / 10).max(1);
    let mut produce = tokio::time::interval(Duration::from_millis(100));
    let mut minute = tokio::time::interval(Duration::from_secs(60));
    minute.tick().await;
    let mut spawned = 0u64;
    let mut last = (0u64, 0u64);
    let mut minutes = Vec::new();
    while minutes.len() < options.minutes as usize {
        tokio::select! {
            _ = produce.tick() => {
                if let Err(error) = store.spawn_many(mix(spawned, per_tick)).await {
                    eprintln!("soak: enqueue failed: {error}");
                } else {
                    spawned += per_tick;
                }
            }
            _ = minute.tick() => {
                let stats = latest_rx.borrow_and_update().clone();
                let completed = stats["completed"].as_u64().unwrap_or(0);
                let failed = stats["failed"].as_u64().unwrap_or(0);
                let rss = rss_mib(pid).unwrap_or(f64::NAN);
                let tables = table_sizes(store).await?;
                let total_mib = tables.iter().map(|t| t.1).sum::<i64>() as f64 / 1_048_576.0;
                let (jobs_rows, jobs_dead) = tables
                    .iter()
                    .find(|t| t.0 == "jobs")
                    .map_or((0, 0), |t| (t.2, t.3));
                let n = minutes.len() + 1;
                let done = completed - last.0;
                println!(
                    "soak: minute {n}: {done} jobs completed ({:.0}/s), {} failed attempts; worker RSS {rss:.1} MiB; tables {total_mib:.1} MiB, jobs table {jobs_rows} rows ({jobs_dead} dead); {spawned} enqueued in all",
                    done as f64 / 60.0,
                    failed - last.1,
                );
                for (name, bytes, rows, dead) in &tables {
                    println!("soak:   table {name}: {:.2} MiB, {rows} rows, {dead} dead", *bytes as f64 / 1_048_576.0);
                }
                if stand_in {
                    vacuum(store, &tables).await?;
                }
                minutes.push((done, rss, total_mib));
                last = (completed, failed);
            }
        }
    }
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.shutdown().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    // Flatness, leaving out the first minute (warm-up).
    let steady = if minutes.len() > 1 {
        &minutes[1..]
    } else {
        &minutes[..]
    };
    let range = |values: Vec<f64>| {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    };
    let (t_min, t_max) = range(steady.iter().map(|m| m.0 as f64).collect());
    let (r_min, r_max) = range(steady.iter().map(|m| m.1).collect());
    let (s_min, s_max) = range(steady.iter().map(|m| m.2).collect());
    println!("soak: summary after the first minute: throughput {t_min:.0} to {t_max:.0} jobs/min; worker RSS {r_min:.1} to {r_max:.1} MiB; tables {s_min:.1} to {s_max:.1} MiB");
    Ok(())
}
