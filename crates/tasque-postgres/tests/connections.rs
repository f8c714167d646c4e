//! Connection loss: a worker whose database connections are terminated (`pg_terminate_backend`)
//! mid-run reconnects and goes on; every job completes and none runs twice while its lease holds.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tasque_durable::{JobFilter, JobId, JobState, PageRequest, Spawn, Store};
use tasque_worker::{Handlers, JobContext, Worker};

const JOBS: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_reconnect_and_lose_or_repeat_nothing() {
    let Some(admin) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("k");
    let app = format!("tasque-terminate-test-{:08x}", rand::random::<u32>());
    let store = fresh
        .store_with(fresh.config("main").with_application_name(&app))
        .await;
    let spawns = (0..JOBS)
        .map(|n| Spawn::new("default", "tick", json!(n)))
        .collect();
    store.spawn_many(spawns).await.unwrap();

    let runs: Arc<Mutex<HashMap<JobId, u32>>> = Arc::default();
    let handlers = Handlers::new();
    let counted = runs.clone();
    handlers.learn("tick", move |ctx: JobContext, _n: i64| {
        let counted = counted.clone();
        async move {
            *counted.lock().unwrap().entry(ctx.job_id()).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok::<_, std::io::Error>(())
        }
    });
    let worker = Worker::builder(support::dyn_store(&store))
        .handlers(handlers)
        .concurrency(20)
        .lease(Duration::from_secs(5))
        .rescue_interval(Duration::from_millis(500))
        .build()
        .unwrap()
        .start()
        .unwrap();

    // Terminate every backend of the worker's store (pool and listener) a few times mid-run.
    let mut terminated = 0;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await; // spacing the faults, not waiting
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&app)
        .fetch_all(&admin)
        .await
        .unwrap();
        terminated += killed.len();
    }
    assert!(terminated >= 5, "terminated {terminated} backends");
    assert!(
        worker
            .wait_until_empty(false, Duration::from_secs(60))
            .await,
        "the worker finished every job"
    );
    let stats = worker.stats();
    worker.shutdown(Duration::from_secs(5)).await;

    let completed = store
        .count(JobFilter::all().states([JobState::Completed]))
        .await
        .unwrap();
    assert_eq!(completed, JOBS as u64, "every job completed ({stats:?})");
    let jobs = store
        .scan(JobFilter::all(), PageRequest::first(JOBS as u32))
        .await
        .unwrap()
        .jobs;
    let runs = runs.lock().unwrap();
    for job in jobs {
        let ran = runs.get(&job.id).copied().unwrap_or(0);
        if job.errors.is_empty() {
            assert_eq!(
                ran, 1,
                "job {} ran {ran} times without a lease expiring",
                job.id
            );
        } else {
            // Only a lease that really expired may run a job again (at-least-once).
            assert!(job
                .errors
                .iter()
                .all(|e| e.reason == json!({"error": "lease expired"})));
            assert!(ran <= 1 + job.errors.len() as u32);
        }
    }
}
