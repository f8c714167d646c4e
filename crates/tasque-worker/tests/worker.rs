//! The worker against the SQLite engine: outcomes, retries, deferral,
//! heartbeats, cancellation, shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tasque_durable::{JobId, JobInfo, JobState, RetryStrategy, Spawn, SpawnOptions, Store};
use tasque_sqlite::SqliteStore;
use tasque_worker::{Handlers, JobContext, RunningWorker, Worker};

const PATIENCE: Duration = Duration::from_secs(20);

struct Fixture {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("jobs.db")).await.unwrap();
    store.migrate().await.unwrap();
    Fixture {
        store: Arc::new(store),
        _dir: dir,
    }
}

fn quick_retry(attempts: u32) -> SpawnOptions {
    SpawnOptions::new()
        .with_max_attempts(attempts)
        .with_retry(RetryStrategy::Fixed {
            delay: Duration::from_millis(10),
        })
}

async fn spawn(store: &Arc<dyn Store>, task: &str, params: Value, options: SpawnOptions) -> JobId {
    let spawn = Spawn::new("default", task, params).with_options(options);
    store.spawn(spawn).await.unwrap().job_id
}

fn start(store: &Arc<dyn Store>, handlers: Handlers) -> RunningWorker {
    Worker::builder(store.clone())
        .handlers(handlers)
        .poll_interval(Duration::from_millis(20))
        .build()
        .unwrap()
        .start()
        .unwrap()
}

/// Waits (polling the store) until the job is in `state`.
async fn wait_state(store: &Arc<dyn Store>, job: JobId, state: JobState) -> JobInfo {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let info = store.get_job(job).await.unwrap();
        if info.state == state {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {job} stuck in {:?}, wanted {state:?}",
            info.state
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

#[tokio::test]
async fn typed_handler_completes_job_with_its_result() {
    let f = fixture().await;
    let handlers = Handlers::new();
    handlers.learn("add", |_ctx: JobContext, p: Add| async move {
        Ok::<_, String>(p.a + p.b)
    });
    let job = spawn(
        &f.store,
        "add",
        json!({"a": 2, "b": 3}),
        SpawnOptions::new(),
    )
    .await;
    let worker = start(&f.store, handlers);
    let info = wait_state(&f.store, job, JobState::Completed).await;
    assert_eq!(info.result, Some(json!(5)));
    assert_eq!(info.attempt, 1);
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn handler_error_is_a_failed_attempt_and_the_retry_succeeds() {
    let f = fixture().await;
    let handlers = Handlers::new();
    handlers.learn("flaky", |ctx: JobContext, _: Value| async move {
        if ctx.attempt() == 1 {
            Err("upstream said no".to_owned())
        } else {
            Ok(ctx.attempt())
        }
    });
    let job = spawn(&f.store, "flaky", json!({}), quick_retry(3)).await;
    let worker = start(&f.store, handlers);
    let info = wait_state(&f.store, job, JobState::Completed).await;
    assert_eq!(info.result, Some(json!(2)));
    assert_eq!(info.errors.len(), 1);
    assert_eq!(info.errors[0].reason["error"], json!("upstream said no"));
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn panic_timeout_and_bad_params_are_failed_attempts_with_reasons() {
    let f = fixture().await;
    let handlers = Handlers::new();
    handlers.learn("boom", |_ctx: JobContext, _: Value| async move {
        if true {
            panic!("handler exploded");
        }
        Ok::<(), String>(())
    });
    handlers.learn("slow", |_ctx: JobContext, _: Value| async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<(), String>(())
    });
    handlers.learn("add", |_ctx: JobContext, p: Add| async move {
        Ok::<_, String>(p.a + p.b)
    });
    let boom = spawn(&f.store, "boom", json!({}), quick_retry(1)).await;
    let slow = spawn(
        &f.store,
        "slow",
        json!({}),
        quick_retry(1).with_timeout(Duration::from_millis(50)),
    )
    .await;
    let bad = spawn(&f.store, "add", json!({"a": "two"}), quick_retry(1)).await;
    let worker = start(&f.store, handlers);
    let boom = wait_state(&f.store, boom, JobState::Failed).await;
    assert_eq!(boom.errors[0].reason["kind"], json!("panic"));
    assert_eq!(boom.errors[0].reason["error"], json!("handler exploded"));
    let slow = wait_state(&f.store, slow, JobState::Failed).await;
    assert_eq!(slow.errors[0].reason["kind"], json!("timeout"));
    let bad = wait_state(&f.store, bad, JobState::Failed).await;
    assert_eq!(bad.errors[0].reason["kind"], json!("undecodable_job"));
    assert!(bad.errors[0].reason["error"]
        .as_str()
        .unwrap()
        .contains("params do not decode"));
    // The worker survived all three.
    let stats = worker.stats();
    assert_eq!(stats.failed, 3);
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn unknown_task_is_deferred_without_counting_an_attempt_then_learned() {
    let f = fixture().await;
    let job = spawn(&f.store, "not_yet_deployed", json!({}), SpawnOptions::new()).await;
    let worker = Worker::builder(f.store.clone())
        .poll_interval(Duration::from_millis(20))
        .defer_unknown(Duration::from_millis(200))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let info = wait_state(&f.store, job, JobState::Scheduled).await;
    assert_eq!(info.attempt, 1);
    assert!(info.errors.is_empty(), "deferral counted as a failure");
    worker
        .handlers()
        .learn("not_yet_deployed", |_ctx: JobContext, _: Value| async {
            Ok::<_, String>("now known")
        });
    let info = wait_state(&f.store, job, JobState::Completed).await;
    assert_eq!((info.attempt, info.result), (1, Some(json!("now known"))));
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn never_runs_more_jobs_than_its_concurrency() {
    let f = fixture().await;
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let handlers = Handlers::new();
    let (n, p) = (now.clone(), peak.clone());
    handlers.learn("count", move |_ctx: JobContext, _: Value| {
        let (now, peak) = (n.clone(), p.clone());
        async move {
            let current = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(current, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            Ok::<(), String>(())
        }
    });
    for _ in 0..40 {
        spawn(&f.store, "count", json!({}), SpawnOptions::new()).await;
    }
    let worker = Worker::builder(f.store.clone())
        .handlers(handlers)
        .concurrency(3)
        .poll_interval(Duration::from_millis(10))
        .build()
        .unwrap()
        .start()
        .unwrap();
    assert!(worker.wait_until_empty(false, PATIENCE).await);
    assert_eq!(worker.stats().completed, 40);
    assert!(
        peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn heartbeats_keep_a_long_job_leased_past_its_lease() {
    let f = fixture().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new();
    let counter = runs.clone();
    handlers.learn("long", move |_ctx: JobContext, _: Value| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Ok::<(), String>(())
        }
    });
    let job = spawn(&f.store, "long", json!({}), SpawnOptions::new()).await;
    let worker = Worker::builder(f.store.clone())
        .handlers(handlers)
        .lease(Duration::from_millis(600))
        .poll_interval(Duration::from_millis(10))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let info = wait_state(&f.store, job, JobState::Completed).await;
    assert_eq!(
        info.attempt, 1,
        "the job was rescued although its worker was alive"
    );
    assert!(info.errors.is_empty());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn cancelling_a_running_job_aborts_its_handler() {
    let f = fixture().await;
    let (started_tx, started_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let dropped = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new();
    let flag = dropped.clone();
    handlers.learn("forever", move |_ctx: JobContext, _: Value| {
        let (started, flag) = (started_tx.clone(), flag.clone());
        async move {
            struct OnDrop(Arc<AtomicUsize>);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let _guard = OnDrop(flag);
            let _ = started.send(());
            std::future::pending::<Result<(), String>>().await
        }
    });
    let job = spawn(&f.store, "forever", json!({}), SpawnOptions::new()).await;
    let worker = Worker::builder(f.store.clone())
        .handlers(handlers)
        .lease(Duration::from_millis(300))
        .poll_interval(Duration::from_millis(10))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let mut started_rx = started_rx;
    tokio::time::timeout(PATIENCE, started_rx.recv())
        .await
        .unwrap();
    f.store.cancel(job).await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while worker.stats().aborted == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "handler was not aborted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert_eq!(
        f.store.get_job(job).await.unwrap().state,
        JobState::Cancelled
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn graceful_shutdown_releases_unfinished_jobs_at_once() {
    let f = fixture().await;
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let handlers = Handlers::new();
    handlers.learn("stuck", move |_ctx: JobContext, _: Value| {
        let started = started_tx.clone();
        async move {
            let _ = started.send(());
            std::future::pending::<Result<(), String>>().await
        }
    });
    let job = spawn(&f.store, "stuck", json!({}), SpawnOptions::new()).await;
    let worker = start(&f.store, handlers);
    tokio::time::timeout(PATIENCE, started_rx.recv())
        .await
        .unwrap();
    let report = worker.shutdown(Duration::from_millis(50)).await;
    assert_eq!(report.released, 1);
    let info = f.store.get_job(job).await.unwrap();
    assert_eq!(
        info.state,
        JobState::Available,
        "released job is not claimable at once"
    );
    assert_eq!(info.attempt, 1, "release counted an attempt");
    // A new worker picks it up at once (its lease of 30 s did not have to expire).
    let handlers = Handlers::new();
    handlers.learn("stuck", |_ctx: JobContext, _: Value| async {
        Ok::<_, String>("second worker")
    });
    let second = start(&f.store, handlers);
    let info = wait_state(&f.store, job, JobState::Completed).await;
    assert_eq!(info.result, Some(json!("second worker")));
    second.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn snooze_gives_the_run_back_without_an_attempt() {
    let f = fixture().await;
    let handlers = Handlers::new();
    handlers.learn("snoozy", |ctx: JobContext, _: Value| async move {
        let first_time = ctx.headers().get("seen").is_none() && ctx.run_id().seq == 1;
        if first_time {
            ctx.snooze(Duration::from_millis(50));
        }
        Ok::<_, String>(ctx.run_id().seq)
    });
    let job = spawn(&f.store, "snoozy", json!({}), SpawnOptions::new()).await;
    let worker = start(&f.store, handlers);
    let info = wait_state(&f.store, job, JobState::Completed).await;
    assert_eq!(info.attempt, 1);
    assert!(info.errors.is_empty());
    assert_eq!(
        info.result,
        Some(json!(2)),
        "the snoozed run should have completed on the next run"
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn invalid_worker_options_are_refused_at_build() {
    let f = fixture().await;
    let zero = Worker::builder(f.store.clone()).concurrency(0).build();
    assert!(matches!(
        zero,
        Err(tasque_worker::Error::InvalidOption {
            option: "concurrency",
            ..
        })
    ));
    let no_queue = Worker::builder(f.store.clone())
        .queues(Vec::<String>::new())
        .build();
    assert!(no_queue.is_err());
    let hostile = Worker::builder(f.store.clone())
        .queues(["a'; DROP TABLE jobs; --"])
        .build();
    assert!(hostile.is_err());
    let beat = Worker::builder(f.store.clone())
        .lease(Duration::from_secs(1))
        .heartbeat_interval(Duration::from_secs(2))
        .build();
    assert!(beat.is_err());
}
