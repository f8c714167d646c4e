//! A worker meets jobs whose rows cannot be decoded (issue 12), engine-agnostic: it fails
//! them for good with a clear reason, completes every other job of the same batches, and keeps
//! claiming afterwards. The rows are made undecodable by raw SQL through the engine's
//! [`Backend::corrupt`] (the spawn API refuses such values).
//!
//! Shared by `tasque-worker/tests/undecodable.rs` (SQLite), `tasque-postgres/tests/undecodable.rs`
//! and `tasque-mysql/tests/undecodable.rs`, which include this file.

#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tasque_durable::conformance::{assert_failed_as_undecodable, Backend, Corruption};
use tasque_durable::{JobId, JobState, Spawn, Store};
use tasque_worker::{Handlers, JobContext, Worker};
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PATIENCE: Duration = Duration::from_secs(30);

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn spawn(store: &Arc<dyn Store>, from: u64, count: u64) -> Vec<JobId> {
    let spawns = (from..from + count)
        .map(|n| Spawn::new("default", "echo", json!(n)))
        .collect();
    let spawned = store.spawn_many(spawns).await.expect("spawn");
    spawned.into_iter().map(|s| s.job_id).collect()
}

async fn all_in(store: &Arc<dyn Store>, jobs: &[JobId], state: JobState) -> bool {
    for job in jobs {
        if store.get_result(*job).await.expect("get_result").state != state {
            return false;
        }
    }
    true
}

/// Good jobs around two undecodable ones (one per [`Corruption`]), all due at once: the worker
/// completes the good ones, fails the bad ones for good without running them, and still claims
/// jobs spawned afterwards. No loop dies.
pub async fn worker_fails_undecodable_jobs_and_keeps_working_the_others(b: &dyn Backend) {
    let store = b.open("main").await;
    let mut good = spawn(&store, 0, 3).await;
    let bad = spawn(&store, 100, 2).await;
    good.extend(spawn(&store, 3, 3).await);
    for (job, what) in bad.iter().zip(Corruption::ALL) {
        b.corrupt("main", *job, what).await;
    }
    let ran = Arc::new(Mutex::new(HashSet::new()));
    let handlers = Handlers::new();
    let seen = ran.clone();
    handlers.learn("echo", move |ctx: JobContext, n: u64| {
        let seen = seen.clone();
        async move {
            seen.lock().expect("lock").insert(ctx.job_id());
            Ok::<_, BoxError>(n)
        }
    });
    let worker = Worker::builder(store.clone())
        .handlers(handlers)
        .concurrency(4)
        .poll_interval(Duration::from_millis(20))
        .build()
        .expect("worker")
        .start()
        .expect("start");
    until("the good jobs to complete", || {
        all_in(&store, &good, JobState::Completed)
    })
    .await;
    until("the bad jobs to fail", || {
        all_in(&store, &bad, JobState::Failed)
    })
    .await;
    for (job, what) in bad.iter().zip(Corruption::ALL) {
        assert_failed_as_undecodable(&*store, *job, what).await;
        assert!(!ran.lock().expect("lock").contains(job), "job {job} ran");
    }
    // Still claiming: later jobs run.
    let later = spawn(&store, 200, 4).await;
    until("later jobs to complete", || {
        all_in(&store, &later, JobState::Completed)
    })
    .await;
    let stats = worker.stats();
    assert_eq!(stats.restarts, 0, "no loop died: {stats:?}");
    assert_eq!(stats.completed, 10, "{stats:?}");
    worker.shutdown(Duration::from_secs(5)).await;
}

/// Generates the cases as `#[tokio::test]`s, given an async factory of a fresh [`Backend`]
/// (`None` skips, outside CI, when the engine's server is unreachable).
#[macro_export]
macro_rules! undecodable_cases {
    ($fresh:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn worker_fails_undecodable_jobs_and_keeps_working_the_others_issue_12() {
            if let Some(backend) = $fresh.await {
                undecodable_cases::worker_fails_undecodable_jobs_and_keeps_working_the_others(
                    &backend,
                )
                .await;
            }
        }
    };
}
