//! The database restarted while three workers burn down 5,000 jobs (issue 18, SPEC Part 4
//! "survives its servers"): the workers reconnect on their own, every job completes, and no
//! job completes twice while its lease holds.
//!
//! Shared (through `#[path]`) by `tasque-postgres/tests/restart.rs` and
//! `tasque-mysql/tests/restart.rs`, each with the [`servers`](super::servers) control of its
//! engine. The proof uses the run records: every handler completion records its run id;
//! a job's runs are unique, and a job completed by more than one run must have a
//! `lease expired` attempt recorded for every run but the last.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tasque_durable::{JobFilter, JobId, JobInfo, JobState, PageRequest, RunId, Spawn, Store};
use tasque_worker::{Handlers, JobContext, RunningWorker, Worker};
use tokio::time::Instant;

/// Jobs burned down.
pub const JOBS: usize = 5_000;
const WORKERS: usize = 3;
const CONCURRENCY: usize = 20;
/// How long the burn-down may take in all, restart included, on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(300);

/// Runs that completed in a handler, by job.
type Records = Arc<Mutex<HashMap<JobId, Vec<RunId>>>>;

fn handlers(records: Records) -> Handlers {
    let handlers = Handlers::new();
    handlers.learn("tick", move |ctx: JobContext, _n: u64| {
        let records = records.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            records
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(ctx.job_id())
                .or_default()
                .push(ctx.run_id());
            Ok::<_, std::io::Error>(())
        }
    });
    handlers
}

async fn all_jobs(store: &dyn Store) -> Vec<JobInfo> {
    let mut jobs = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let got = store.scan(JobFilter::all(), page).await.unwrap();
        jobs.extend(got.jobs);
        match got.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => return jobs,
        }
    }
}

/// Counts completed jobs, or `None` while the server is away.
async fn completed(store: &dyn Store) -> Option<u64> {
    store
        .count(JobFilter::all().states([JobState::Completed]))
        .await
        .ok()
}

/// The case. `stores` are the three workers' stores (each with its own pool), `observer` is
/// the test's own; `restart` stops the server and starts it again (it is called once, when
/// about a third of the jobs are done).
pub async fn three_workers_survive_a_restart<F, Fut>(
    stores: Vec<Arc<dyn Store>>,
    observer: Arc<dyn Store>,
    restart: F,
) where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    assert_eq!(stores.len(), WORKERS);
    for chunk in (0..JOBS as u64).collect::<Vec<_>>().chunks(1000) {
        let spawns = chunk
            .iter()
            .map(|n| Spawn::new("default", "tick", json!(n)))
            .collect();
        observer.spawn_many(spawns).await.unwrap();
    }
    let records: Records = Arc::default();
    let workers: Vec<RunningWorker> = stores
        .into_iter()
        .map(|store| {
            Worker::builder(store)
                .handlers(handlers(records.clone()))
                .concurrency(CONCURRENCY)
                .poll_interval(Duration::from_millis(50))
                .lease(Duration::from_secs(5))
                .rescue_interval(Duration::from_millis(500))
                .build()
                .unwrap()
                .start()
                .unwrap()
        })
        .collect();

    let deadline = Instant::now() + PATIENCE;
    let progress =
        |workers: &[RunningWorker]| workers.iter().map(|w| w.stats().completed).sum::<u64>();
    while progress(&workers) < (JOBS / 3) as u64 {
        assert!(Instant::now() < deadline, "no progress before the restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = progress(&workers);
    restart().await;
    eprintln!(
        "restart test: restarted after {before} completions; {} completions by now",
        progress(&workers)
    );

    // Every job completes: rescued ones wait out their lease and a retry backoff.
    loop {
        if completed(&*observer).await == Some(JOBS as u64) {
            break;
        }
        if Instant::now() >= deadline {
            let left: Vec<_> = all_jobs(&*observer)
                .await
                .into_iter()
                .filter(|job| job.state != JobState::Completed)
                .map(|job| (job.id, job.state, job.attempt, job.errors))
                .take(20)
                .collect();
            let stats: Vec<_> = workers.iter().map(|w| w.stats()).collect();
            panic!("not every job completed within {PATIENCE:?}: {left:?}; workers {stats:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats: Vec<_> = workers.iter().map(|w| w.stats()).collect();
    for worker in workers {
        worker.shutdown(Duration::from_secs(10)).await;
    }
    assert!(
        stats.iter().all(|s| s.completed > 0),
        "each worker kept working: {stats:?}"
    );

    let jobs = all_jobs(&*observer).await;
    assert_eq!(jobs.len(), JOBS, "a job was lost");
    let records = records.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut reran = 0;
    for job in &jobs {
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        let runs = records.get(&job.id).cloned().unwrap_or_default();
        assert!(
            runs.contains(&job.run_id),
            "job {} completed by run {} whose handler never finished: {runs:?}",
            job.id,
            job.run_id
        );
        let mut unique = runs.clone();
        unique.sort_by_key(|run| run.seq);
        unique.dedup();
        assert_eq!(unique.len(), runs.len(), "a run completed twice: {runs:?}");
        // Every other run that finished its handler lost its lease first: the rescuer
        // recorded it as a `lease expired` attempt.
        for run in runs.iter().filter(|run| **run != job.run_id) {
            reran += 1;
            assert!(
                job.errors.iter().any(|error| error.run == run.seq
                    && error.reason == json!({"error": "lease expired"})),
                "job {} ran to the end under run {run} and again under {} without that lease expiring: {:?}",
                job.id,
                job.run_id,
                job.errors
            );
        }
    }
    let rescued = jobs.iter().filter(|job| !job.errors.is_empty()).count();
    eprintln!(
        "restart test: all {JOBS} jobs completed; {rescued} rescued after a lease expired, \
         {reran} handler runs repeated; workers {stats:?}"
    );
}
