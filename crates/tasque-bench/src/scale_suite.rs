//! The `scale` suite: does the durable queue stay flat as its tables grow? On SQLite and
//! PostgreSQL, each comparison works the same number of ready no-op jobs out of a small table
//! and out of a large one, in the same run:
//!
//! - `ENGINE_backlog_1m_vs_10k`: a worker works 9,000 jobs out of a backlog of 1,000,000 ready
//!   jobs, against 9,000 out of a backlog of 10,000 (jobs/s ratio; neither drains its queue).
//! - `ENGINE_history_5m_vs_empty`: the same with 10,000 ready jobs and 5,000,000 finished jobs
//!   kept in the table, against a table holding nothing else (jobs/s ratio); and single claims
//!   (`ENGINE_claim_p50_ms_history_5m` / `..._empty`, one job per claim, each completed).
//!
//! The worker runs with its cleaner on (finished jobs older than 7 days, so it scans and keeps
//! the history), and the worker's resident memory is sampled during each burn-down and printed
//! (`ENGINE_..._rss_start_mib` / `..._rss_max_mib`). Tables are filled by set-based SQL
//! (`generate_series` on PostgreSQL, a recursive CTE on SQLite), not through the API, then
//! brought to a steady state (statistics, vacuum or WAL checkpoint) before the clock starts; each
//! comparison alternates small and large over two rounds. `--quick` uses 100,000 for the
//! backlog, 5,000 for the small one and 200,000 for the history, with 4,000 jobs worked.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use sqlx::{Connection, Executor, PgPool, SqliteConnection};
use tasque_durable::{ClaimParams, CompleteParams, PollOrder, Store};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_sqlite::{SqliteConfig, SqliteStore};
use tasque_worker::{Handlers, JobContext, Worker};

use crate::postgres_suite::{drop_schemas, url};
use crate::report::{figure, per_s, ratio, resident_bytes};

/// Sizes of one run.
struct Sizes {
    /// Jobs worked in every burn-down.
    work: usize,
    /// Ready jobs of the small backlog (and of each round of the history comparison): more
    /// than `work`, so no burn-down ends by draining its queue (the tail of a drain, when
    /// fewer jobs are left than slots, would count against the small table only).
    small: usize,
    /// Ready jobs of the large backlog.
    backlog: usize,
    /// Finished jobs kept in the large history.
    history: usize,
    /// Single claims timed per table.
    claims: usize,
}

/// Rounds of each comparison (small and large alternate).
const ROUNDS: usize = 2;
/// The retry column every filled job carries (the default strategy).
const RETRY: &str = r#"{"kind": "exponential", "base": 1000, "factor": 2.0, "cap": 3600000}"#;

/// Runs the suite.
pub fn run(quick: bool) -> Result<()> {
    let sizes = if quick {
        Sizes {
            work: 4_000,
            small: 5_000,
            backlog: 100_000,
            history: 200_000,
            claims: 50,
        }
    } else {
        Sizes {
            work: 9_000,
            small: 10_000,
            backlog: 1_000_000,
            history: 5_000_000,
            claims: 200,
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
    let engine = Engine::Sqlite {
        dir: dir.path().to_path_buf(),
    };
    compare(&engine, sizes).await
}

async fn postgres(sizes: &Sizes) -> Result<()> {
    let prefix = format!("tqscale{:08x}_", rand::random::<u32>());
    let admin = PgPool::connect(&url())
        .await
        .with_context(|| format!("PostgreSQL at {} (set TASQUE_TEST_POSTGRES_URL)", url()))?;
    let engine = Engine::Postgres {
        admin: admin.clone(),
        prefix: prefix.clone(),
    };
    let outcome = compare(&engine, sizes).await;
    drop_schemas(&admin, &prefix).await?;
    outcome
}

/// Both comparisons on one engine.
async fn compare(engine: &Engine, sizes: &Sizes) -> Result<()> {
    let name = engine.name();
    let started = Instant::now();

    // Backlog: the large namespace keeps its backlog across rounds (each round takes `work`
    // jobs of it); the small one is emptied and refilled with `small` jobs each round.
    let large = engine.fresh("backlog_large").await?;
    engine.fill_ready(&*large, sizes.backlog).await?;
    println!(
        "# {name}: {} ready jobs filled in {:.1} s",
        sizes.backlog,
        started.elapsed().as_secs_f64()
    );
    let small = engine.fresh("backlog_small").await?;
    let (mut small_time, mut large_time) = (Duration::ZERO, Duration::ZERO);
    for round in 0..ROUNDS {
        engine.empty(&*small).await?;
        engine.fill_ready(&*small, sizes.small).await?;
        small_time += work(
            engine,
            &small,
            sizes.work,
            &format!("{name}_backlog_10k_{round}"),
        )
        .await?;
        large_time += work(
            engine,
            &large,
            sizes.work,
            &format!("{name}_backlog_1m_{round}"),
        )
        .await?;
    }
    let (small_rate, large_rate) = (
        per_s(sizes.work * ROUNDS, small_time),
        per_s(sizes.work * ROUNDS, large_time),
    );
    figure(
        &format!("{name}_backlog_10k_jobs_per_s"),
        small_rate,
        "jobs/s",
    );
    figure(
        &format!("{name}_backlog_1m_jobs_per_s"),
        large_rate,
        "jobs/s",
    );
    ratio(&format!("{name}_backlog_1m_vs_10k"), large_rate, small_rate);

    // History: finished jobs kept, ready jobs added each round.
    let fill = Instant::now();
    let kept = engine.fresh("history_large").await?;
    engine.fill_finished(&*kept, sizes.history).await?;
    println!(
        "# {name}: {} finished jobs filled in {:.1} s",
        sizes.history,
        fill.elapsed().as_secs_f64()
    );
    let empty = engine.fresh("history_empty").await?;
    let (mut empty_time, mut kept_time) = (Duration::ZERO, Duration::ZERO);
    let (mut empty_claims, mut kept_claims) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        for (store, time, claims, label) in [
            (&empty, &mut empty_time, &mut empty_claims, "empty"),
            (&kept, &mut kept_time, &mut kept_claims, "5m"),
        ] {
            engine
                .fill_ready(&**store, sizes.small + sizes.claims)
                .await?;
            // Single claims first: the burn-down's worker may finish more than its share.
            claims.extend(single_claims(&**store, sizes.claims).await?);
            *time += work(
                engine,
                store,
                sizes.work,
                &format!("{name}_history_{label}_{round}"),
            )
            .await?;
        }
    }
    let (empty_rate, kept_rate) = (
        per_s(sizes.work * ROUNDS, empty_time),
        per_s(sizes.work * ROUNDS, kept_time),
    );
    figure(
        &format!("{name}_history_empty_jobs_per_s"),
        empty_rate,
        "jobs/s",
    );
    figure(
        &format!("{name}_history_5m_jobs_per_s"),
        kept_rate,
        "jobs/s",
    );
    ratio(
        &format!("{name}_history_5m_vs_empty"),
        kept_rate,
        empty_rate,
    );
    figure(
        &format!("{name}_claim_p50_ms_empty"),
        median(&mut empty_claims),
        "ms",
    );
    figure(
        &format!("{name}_claim_p50_ms_history_5m"),
        median(&mut kept_claims),
        "ms",
    );
    println!(
        "# {name}: suite took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One worker (the engine's slots, the cleaner on) works `n` ready jobs of `store`; the time
/// from its start to the `n`th completion. Prints its RSS at the start and the most seen.
async fn work(engine: &Engine, store: &Arc<dyn Store>, n: usize, label: &str) -> Result<Duration> {
    let done = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new();
    let counter = done.clone();
    handlers.learn("noop", move |_ctx: JobContext, _n: Value| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok::<_, std::io::Error>(())
        }
    });
    let slots = engine.slots();
    let rss_start = resident_bytes();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut most = resident_bytes();
            while sampling.load(Ordering::Relaxed) {
                most = most.max(resident_bytes());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            most
        })
    };
    let start = Instant::now();
    let worker = Worker::builder(store.clone())
        .handlers(handlers)
        .concurrency(slots)
        .poll_limit(slots.min(500))
        .poll_interval(Duration::from_millis(5))
        .clean_after(Duration::from_secs(7 * 24 * 3600))
        .build()?
        .start()?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while (worker.stats().completed as usize) < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{label}: {} of {n} jobs done in 300 s",
            worker.stats().completed
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed();
    worker.shutdown(Duration::from_secs(10)).await;
    sampling.store(false, Ordering::Relaxed);
    let most = sampler.await?;
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    figure(&format!("{label}_rss_start_mib"), mib(rss_start), "MiB");
    figure(&format!("{label}_rss_max_mib"), mib(most), "MiB");
    Ok(elapsed)
}

/// `n` single claims (one job each, completed at once): each claim's time in ms.
async fn single_claims(store: &dyn Store, n: usize) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let claims = store
            .claim(ClaimParams {
                queues: vec!["default".to_owned()],
                limit: 1,
                lease: Duration::from_secs(30),
                worker_id: "scale-bench".to_owned(),
                order: PollOrder::PriorityThenAge,
            })
            .await?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        let claim = claims.into_iter().next().context("no job to claim")?;
        store
            .complete(CompleteParams::new(claim.run_id, Value::Null))
            .await?;
    }
    Ok(times)
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(0.0)
}

/// An engine under test: makes empty namespaces and fills them with set-based SQL.
enum Engine {
    /// Each namespace its own file in a temporary directory (WAL mode).
    Sqlite { dir: PathBuf },
    /// Each namespace a schema with the run's random prefix.
    Postgres { admin: PgPool, prefix: String },
}

impl Engine {
    /// The prefix of its figures.
    fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite { .. } => "sqlite",
            Engine::Postgres { .. } => "postgres",
        }
    }

    /// Slots of its burn-down worker (its own suite's configuration).
    fn slots(&self) -> usize {
        match self {
            Engine::Sqlite { .. } => 10,
            Engine::Postgres { .. } => 500,
        }
    }

    /// A new, migrated, empty namespace.
    async fn fresh(&self, label: &str) -> Result<Arc<dyn Store>> {
        Ok(match self {
            Engine::Sqlite { dir } => {
                let config =
                    SqliteConfig::file(dir.join(format!("{label}.db"))).with_namespace(label);
                let store = SqliteStore::connect(config).await?;
                store.migrate().await?;
                Arc::new(store)
            }
            Engine::Postgres { prefix, .. } => {
                let config = PostgresConfig::new(url())
                    .with_schema_prefix(prefix.as_str())
                    .with_namespace(label);
                let store = PostgresStore::connect(config).await?;
                store.migrate().await?;
                Arc::new(store)
            }
        })
    }

    /// Deletes every job of the namespace of `store`.
    async fn empty(&self, store: &dyn Store) -> Result<()> {
        match self {
            Engine::Sqlite { .. } => {
                self.sqlite_fill(
                    store,
                    0,
                    "DELETE FROM tasque_jobs WHERE ns = ?2 AND ?3 = ?3",
                )
                .await
            }
            Engine::Postgres { admin, prefix } => {
                let schema = format!("\"{prefix}{}\"", store.namespace());
                admin
                    .execute(format!("DELETE FROM {schema}.jobs").as_str())
                    .await?;
                admin
                    .execute(format!("VACUUM (ANALYZE) {schema}.jobs").as_str())
                    .await?;
                Ok(())
            }
        }
    }

    /// Adds `n` ready jobs (`noop`, queue `default`) to the namespace of `store`.
    async fn fill_ready(&self, store: &dyn Store, n: usize) -> Result<()> {
        match self {
            Engine::Sqlite { .. } => {
                self.sqlite_fill(
                    store,
                    n,
                    "INSERT INTO tasque_jobs (ns, queue, task, params, state, priority, \
                     max_attempts, retry, run_at, created_at) \
                     SELECT ?2, 'default', 'noop', n, 'pending', 0, 20, ?3, t.now, t.now \
                     FROM c, (SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS now) AS t",
                )
                .await
            }
            Engine::Postgres { .. } => {
                self.postgres_fill(
                    store,
                    n,
                    "queue, task, params, state, priority, max_attempts, retry, run_at, \
                     created_at",
                    "'default', 'noop', to_jsonb(g), 'pending', 0, 20, $2::jsonb, now(), now()",
                )
                .await
            }
        }
    }

    /// Adds `n` jobs completed an hour ago to the namespace of `store`.
    async fn fill_finished(&self, store: &dyn Store, n: usize) -> Result<()> {
        match self {
            Engine::Sqlite { .. } => {
                self.sqlite_fill(
                    store,
                    n,
                    "INSERT INTO tasque_jobs (ns, queue, task, params, state, priority, \
                     max_attempts, retry, run_at, created_at, first_started_at, attempted_at, \
                     finished_at, result, worker_id) \
                     SELECT ?2, 'default', 'noop', n, 'completed', 0, 20, ?3, t.at, t.at, t.at, \
                     t.at, t.at, 'null', 'filler' \
                     FROM c, (SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) - 3600000 \
                     AS at) AS t",
                )
                .await
            }
            Engine::Postgres { .. } => {
                self.postgres_fill(
                    store,
                    n,
                    "queue, task, params, state, priority, max_attempts, retry, run_at, \
                     created_at, first_started_at, attempted_at, finished_at, result, worker_id",
                    "'default', 'noop', to_jsonb(g), 'completed', 0, 20, $2::jsonb, \
                     now() - interval '1 hour', now() - interval '1 hour', \
                     now() - interval '1 hour', now() - interval '1 hour', \
                     now() - interval '1 hour', 'null'::jsonb, 'filler'",
                )
                .await
            }
        }
    }

    /// Runs `insert` (a statement reading the CTE `c(n)` of 1..=`n`; binds 2 namespace,
    /// 3 retry) on the namespace's SQLite file.
    async fn sqlite_fill(&self, store: &dyn Store, n: usize, insert: &str) -> Result<()> {
        let Engine::Sqlite { dir } = self else {
            anyhow::bail!("not a SQLite engine");
        };
        let path = dir.join(format!("{}.db", store.namespace()));
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
        // A page cache big enough that filling millions of rows does not thrash the indexes.
        conn.execute("PRAGMA busy_timeout = 30000; PRAGMA cache_size = -262144")
            .await?;
        let sql = format!(
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?1) \
             {insert}"
        );
        sqlx::query(&sql)
            .bind(n as i64)
            .bind(store.namespace())
            .bind(RETRY)
            .execute(&mut conn)
            .await?;
        // A steady state, not the moment after a bulk write: statistics taken, and the write
        // ahead log folded into the database (else the first checkpoint of the timed run
        // copies the whole fill).
        conn.execute("ANALYZE").await?;
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
        conn.close().await?;
        Ok(())
    }

    /// Inserts `n` rows of `values` (over `g` in 1..=`n`; binds 2 retry) into the namespace's
    /// PostgreSQL jobs table, then analyzes it.
    async fn postgres_fill(
        &self,
        store: &dyn Store,
        n: usize,
        columns: &str,
        values: &str,
    ) -> Result<()> {
        let Engine::Postgres { admin, prefix } = self else {
            anyhow::bail!("not a PostgreSQL engine");
        };
        let schema = format!("\"{prefix}{}\"", store.namespace());
        sqlx::query(&format!(
            "INSERT INTO {schema}.jobs ({columns}) SELECT {values} \
             FROM generate_series(1, $1::bigint) AS g"
        ))
        .bind(n as i64)
        .bind(RETRY)
        .execute(admin)
        .await?;
        // A steady state, not the moment after a bulk write: statistics taken and the
        // visibility map set (else autovacuum does both during the timed run).
        admin
            .execute(format!("VACUUM (ANALYZE) {schema}.jobs").as_str())
            .await?;
        Ok(())
    }
}
