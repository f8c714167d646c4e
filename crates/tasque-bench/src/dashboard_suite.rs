//! The dashboard suite: the server time of its pages with 1,000,000 jobs (100,000 with
//! `--quick`) in SQLite and in PostgreSQL.
//!
//! The jobs are bulk-copied by SQL from three template jobs made through the store (one
//! completed, one failed, one pending), spread over four queues: 70% completed, 10% failed,
//! 20% pending. Requests go through the dashboard's router in process (no socket), so the time
//! is the server's: routing, access checks, queries and rendering. The snapshot behind the
//! overview is warmed first (pages serve it from the cache; its refresh runs in the
//! background), and its own time is reported too.
//!
//! Figures, per engine (`sqlite`, `postgres`):
//! - `dashboard_{engine}_snapshot_ms`: one refresh of the cached counts (background work);
//! - `dashboard_{engine}_overview_p95_ms`, `..._jobs_page_p95_ms`, `..._job_page_p95_ms`;
//! - `dashboard_jobs_page_p95_ms`: the worse of the two engines' filtered job list (goal < 50);
//! - `dashboard_{engine}_jobs_page_vs_raw_scan`: the page's rate against the bare
//!   `Store::scan` of the same filter (the baseline; below 1 is the cost of the page).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::json;
use tasque_durable::{
    ClaimParams, CompleteParams, JobFilter, JobId, JobState, PageRequest, PollOrder, Spawn,
    SpawnOptions, Store,
};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_sqlite::{SqliteConfig, SqliteStore};
use tasque_web::{Access, Dashboard};
use tower::ServiceExt;

use crate::report::{figure, ratio};

/// Runs the suite.
pub fn run(quick: bool) -> Result<()> {
    let jobs = if quick { 100_000 } else { 1_000_000 };
    let requests = if quick { 50 } else { 200 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let sqlite = SqliteStore::connect(SqliteConfig::file(dir.path().join("dash.db"))).await?;
        sqlite.migrate().await?;
        let made = templates(&sqlite).await?;
        fill_sqlite(&sqlite, &made, jobs).await?;
        let lite = measure("sqlite", Arc::new(sqlite), requests).await?;

        let prefix = format!("tqbenchdash{:06x}_", rand::random::<u32>() & 0xff_ffff);
        let config = PostgresConfig::new(crate::postgres_suite::url())
            .with_schema_prefix(prefix.as_str())
            .with_namespace("dash");
        let postgres = PostgresStore::connect(config).await?;
        postgres.migrate().await?;
        let made = templates(&postgres).await?;
        let filled = fill_postgres(&postgres, &made, jobs).await;
        let measured = match filled {
            Ok(()) => measure("postgres", Arc::new(postgres.clone()), requests).await,
            Err(error) => Err(error),
        };
        postgres.drop_schema().await?;
        let pg = measured?;
        figure("dashboard_jobs_page_p95_ms", lite.max(pg), "ms");
        Ok(())
    })
}

/// The ids of a completed, a failed and a pending job, made through the store.
async fn templates(store: &dyn Store) -> Result<[JobId; 3]> {
    for q in ["q0", "q1", "q2", "q3"] {
        store.create_queue(q).await?;
    }
    let claim = |worker: &str| ClaimParams {
        queues: vec!["q0".into()],
        limit: 1,
        lease: Duration::from_secs(60),
        worker_id: worker.into(),
        order: PollOrder::Age,
    };
    let done = store
        .spawn(Spawn::new("q0", "report", json!({"i": 0})))
        .await?
        .job_id;
    let run = store
        .claim(claim("w1"))
        .await?
        .pop()
        .context("claim")?
        .run_id;
    store
        .complete(CompleteParams::new(run, json!({"rows": 1})))
        .await?;
    let once = SpawnOptions::new().with_max_attempts(1);
    let failed = store
        .spawn(Spawn::new("q0", "report", json!({"i": 0})).with_options(once))
        .await?
        .job_id;
    let run = store
        .claim(claim("w1"))
        .await?
        .pop()
        .context("claim")?
        .run_id;
    store.fail(run, json!({"error": "boom"})).await?;
    let pending = store
        .spawn(Spawn::new("q0", "send", json!({"i": 0})))
        .await?
        .job_id;
    Ok([done, failed, pending])
}

/// (template index, share in tenths) of the bulk copy.
const MIX: [(usize, u64); 3] = [(0, 7), (1, 1), (2, 2)];

async fn fill_sqlite(store: &SqliteStore, templates: &[JobId; 3], jobs: u64) -> Result<()> {
    let started = Instant::now();
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('tasque_jobs') WHERE name <> 'id'")
            .fetch_all(store.pool())
            .await?;
    for (template, tenths) in MIX {
        let n = jobs * tenths / 10;
        let select: Vec<String> = columns
            .iter()
            .map(|c| match c.as_str() {
                "queue" => "'q' || (s.n % 4)".to_string(),
                "params" => "json_object('i', s.n, 'user', 'u' || s.n)".to_string(),
                other => format!("t.{other}"),
            })
            .collect();
        let sql = format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {n}) \
             INSERT INTO tasque_jobs ({}) SELECT {} FROM s, tasque_jobs t WHERE t.id = {}",
            columns.join(", "),
            select.join(", "),
            templates[template].0
        );
        sqlx::query(&sql).execute(store.pool()).await?;
    }
    sqlx::query("ANALYZE").execute(store.pool()).await?;
    figure(
        "dashboard_sqlite_fill_s",
        started.elapsed().as_secs_f64(),
        "s",
    );
    Ok(())
}

async fn fill_postgres(store: &PostgresStore, templates: &[JobId; 3], jobs: u64) -> Result<()> {
    let started = Instant::now();
    let schema = store.schema().to_string();
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = 'jobs' AND column_name <> 'id' ORDER BY ordinal_position",
    )
    .bind(&schema)
    .fetch_all(store.pool())
    .await?;
    for (template, tenths) in MIX {
        let n = jobs * tenths / 10;
        let select: Vec<String> = columns
            .iter()
            .map(|c| match c.as_str() {
                "queue" => "'q' || (s.n % 4)".to_string(),
                "params" => "jsonb_build_object('i', s.n, 'user', 'u' || s.n)".to_string(),
                other => format!("t.{other}"),
            })
            .collect();
        let sql = format!(
            "INSERT INTO \"{schema}\".jobs ({}) SELECT {} FROM generate_series(1, {n}) AS s(n), \
             \"{schema}\".jobs t WHERE t.id = {}",
            columns.join(", "),
            select.join(", "),
            templates[template].0
        );
        sqlx::query(&sql).execute(store.pool()).await?;
    }
    sqlx::query(&format!("ANALYZE \"{schema}\".jobs"))
        .execute(store.pool())
        .await?;
    figure(
        "dashboard_postgres_fill_s",
        started.elapsed().as_secs_f64(),
        "s",
    );
    Ok(())
}

/// p95 (ms) of `requests` GETs of `path`.
async fn page_p95(router: &axum::Router, path: &str, requests: usize) -> Result<f64> {
    let mut times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let request = axum::http::Request::get(path)
            .header("host", "127.0.0.1")
            .body(Body::empty())?;
        let started = Instant::now();
        let response = router.clone().oneshot(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        times.push(started.elapsed());
        anyhow::ensure!(
            status.is_success(),
            "GET {path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    times.sort();
    let index = (times.len() * 95).div_ceil(100).max(1) - 1;
    Ok(times[index].as_secs_f64() * 1000.0)
}

/// Measures one engine; returns its filtered job list p95 (ms).
async fn measure(engine: &str, store: Arc<dyn Store>, requests: usize) -> Result<f64> {
    let started = Instant::now();
    tasque_web::cache::Snapshot::take(&*store).await?;
    figure(
        &format!("dashboard_{engine}_snapshot_ms"),
        started.elapsed().as_secs_f64() * 1000.0,
        "ms",
    );
    // A long time to live: the pages serve the warmed snapshot, as they do between refreshes.
    let router = Dashboard::new(store.clone(), Access::open())
        .cache_ttl(Duration::from_secs(3600))
        .router();
    page_p95(&router, "/", 1).await?;
    let failed = store
        .scan(
            JobFilter::all().states([JobState::Failed]).queues(["q2"]),
            PageRequest::first(1),
        )
        .await?
        .jobs
        .first()
        .map(|j| j.id)
        .context("a failed job")?;
    let overview = page_p95(&router, "/", requests).await?;
    let jobs_page = page_p95(&router, "/jobs?state=failed&queue=q2", requests).await?;
    let job_page = page_p95(&router, &format!("/jobs/{failed}"), requests).await?;
    figure(
        &format!("dashboard_{engine}_overview_p95_ms"),
        overview,
        "ms",
    );
    figure(
        &format!("dashboard_{engine}_jobs_page_p95_ms"),
        jobs_page,
        "ms",
    );
    figure(
        &format!("dashboard_{engine}_job_page_p95_ms"),
        job_page,
        "ms",
    );

    let mut raw = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        store
            .scan(
                JobFilter::all().states([JobState::Failed]).queues(["q2"]),
                PageRequest::first(50),
            )
            .await?;
        raw.push(started.elapsed());
    }
    raw.sort();
    let raw_p95 = raw[(raw.len() * 95).div_ceil(100).max(1) - 1].as_secs_f64() * 1000.0;
    figure(
        &format!("dashboard_{engine}_raw_scan_p95_ms"),
        raw_p95,
        "ms",
    );
    ratio(
        &format!("dashboard_{engine}_jobs_page_vs_raw_scan"),
        1.0 / jobs_page,
        1.0 / raw_p95,
    );
    Ok(jobs_page)
}
