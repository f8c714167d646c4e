//! The `flow` suite: flow control (unique jobs; keyed order and concurrency join later), one
//! function per group.
//!
//! - `unique_enqueue_per_s` and `plain_enqueue_per_s` on PostgreSQL: single-job enqueues by
//!   four concurrent producers, each job unique by its own key with a one-hour period (so
//!   every enqueue inserts, and every one goes through the unique index), against the same
//!   enqueues without uniqueness, in alternating rounds of the same run;
//!   `unique_enqueue_vs_plain` is their ratio (goal: at least 0.7). `unique_duplicate_per_s`
//!   measures enqueues that all conflict with one existing job (each returns that job).
//! - The same three on SQLite (`sqlite_` prefix), on a temporary file.
//! - keyed order ([`flow_keyed`](crate::flow_keyed)): `keyed_vs_plain` on PostgreSQL.
//!
//! The PostgreSQL server is `TASQUE_TEST_POSTGRES_URL`; its namespaces live in schemas with a
//! random prefix, dropped at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use sqlx::PgPool;
use tasque_durable::unique::Uniqueness;
use tasque_durable::{Spawn, SpawnOptions, Store};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_sqlite::{SqliteConfig, SqliteStore};

use crate::postgres_suite::{drop_schemas, url};
use crate::report::{figure, per_s, ratio};

/// Concurrent producers of the enqueue groups.
const PRODUCERS: usize = 4;
/// Alternating rounds of each kind of enqueue.
const ROUNDS: usize = 4;

/// Runs the suite.
pub fn run(quick: bool) -> Result<()> {
    let per_round = if quick { 500 } else { 2_500 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let prefix = format!("tqbflow{:08x}_", rand::random::<u32>());
        let admin = PgPool::connect(&url())
            .await
            .with_context(|| format!("PostgreSQL at {} (set TASQUE_TEST_POSTGRES_URL)", url()))?;
        let mut outcome = postgres_unique(&prefix, per_round).await;
        if outcome.is_ok() {
            outcome = crate::flow_keyed::postgres_keyed(&prefix, quick).await;
        }
        drop_schemas(&admin, &prefix).await?;
        outcome?;
        sqlite_unique(per_round).await
    })
}

/// Group `unique_enqueue_vs_plain` on PostgreSQL.
async fn postgres_unique(prefix: &str, per_round: usize) -> Result<()> {
    let config = PostgresConfig::new(url())
        .with_schema_prefix(prefix)
        .with_namespace("unique");
    let store = PostgresStore::connect(config).await?;
    store.migrate().await?;
    unique_group("", Arc::new(store), per_round).await
}

/// Group `unique_enqueue_vs_plain` on SQLite.
async fn sqlite_unique(per_round: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::connect(SqliteConfig::file(dir.path().join("flow.db"))).await?;
    store.migrate().await?;
    unique_group("sqlite_", Arc::new(store), per_round).await
}

/// Plain and unique enqueues in alternating rounds, then duplicates; prints the figures with
/// `prefix`.
async fn unique_group(prefix: &str, store: Arc<dyn Store>, per_round: usize) -> Result<()> {
    // Warm-up: the queue exists and connections are open.
    enqueue_round(&store, per_round / 5, None).await?;
    let (mut plain, mut unique) = (Duration::ZERO, Duration::ZERO);
    for round in 0..ROUNDS {
        plain += enqueue_round(&store, per_round, None).await?;
        unique += enqueue_round(&store, per_round, Some(format!("r{round}"))).await?;
    }
    let plain_rate = per_s(per_round * ROUNDS, plain);
    let unique_rate = per_s(per_round * ROUNDS, unique);
    figure(
        &format!("{prefix}plain_enqueue_per_s"),
        plain_rate,
        "jobs/s",
    );
    figure(
        &format!("{prefix}unique_enqueue_per_s"),
        unique_rate,
        "jobs/s",
    );
    ratio(
        &format!("{prefix}unique_enqueue_vs_plain"),
        unique_rate,
        plain_rate,
    );
    let duplicates = duplicate_round(&store, per_round).await?;
    figure(
        &format!("{prefix}unique_duplicate_per_s"),
        duplicates,
        "enqueues/s",
    );
    Ok(())
}

fn spawn(n: usize, unique: Option<Uniqueness>) -> Spawn {
    let mut options = SpawnOptions::new();
    options.unique = unique;
    Spawn::new("flow", "work", json!({ "n": n })).with_options(options)
}

/// `n` single-job enqueues by [`PRODUCERS`] producers, unique by their own key (under
/// `round`) when given: how long they took.
async fn enqueue_round(
    store: &Arc<dyn Store>,
    n: usize,
    round: Option<String>,
) -> Result<Duration> {
    let started = Instant::now();
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let store = Arc::clone(store);
        let round = round.clone();
        producers.push(tokio::spawn(async move {
            for i in (p..n).step_by(PRODUCERS) {
                let unique = round.as_ref().map(|r| {
                    Uniqueness::key(format!("work|{r}|{i}")).period(Duration::from_secs(3600))
                });
                store.spawn(spawn(i, unique)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for producer in producers {
        producer.await??;
    }
    Ok(started.elapsed())
}

/// `n` enqueues all conflicting with one job: enqueues per second.
async fn duplicate_round(store: &Arc<dyn Store>, n: usize) -> Result<f64> {
    let key = || Some(Uniqueness::key("work|dup").period(Duration::from_secs(3600)));
    store.spawn(spawn(0, key())).await?;
    let started = Instant::now();
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let store = Arc::clone(store);
        producers.push(tokio::spawn(async move {
            for i in (p..n).step_by(PRODUCERS) {
                let spawned = store.spawn(spawn(i, key())).await?;
                anyhow::ensure!(!spawned.created, "a duplicate was created");
            }
            anyhow::Ok(())
        }));
    }
    for producer in producers {
        producer.await??;
    }
    Ok(per_s(n, started.elapsed()))
}
