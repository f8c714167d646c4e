//! The client on every engine: typed enqueue, options, batches, wait for output and failures,
//! handler control (fail for good, snooze, progress), cancel and retry.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use support::{on_every_engine, PATIENCE};
use tasque::durable::{FailureKind, JobState, RetryStrategy, SpawnOptions, Store};
use tasque::worker::RunningWorker;
use tasque::{Client, ClientError, Handlers, Job, JobContext, JobOptions, Worker};

#[derive(Serialize, Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

impl Job for Add {
    const KIND: &'static str = "add";
    type Output = i64;

    fn options(&self) -> JobOptions {
        JobOptions::new().queue("math")
    }
}

#[derive(Serialize, Deserialize)]
struct Flaky {
    give_up: bool,
}

impl Job for Flaky {
    const KIND: &'static str = "flaky";
    type Output = ();

    fn options(&self) -> JobOptions {
        JobOptions::new()
            .max_attempts(3)
            .retry(RetryStrategy::Fixed {
                delay: Duration::from_millis(10),
            })
    }
}

#[derive(Serialize, Deserialize)]
struct Snoozy;

impl Job for Snoozy {
    const KIND: &'static str = "snoozy";
    type Output = u32;
}

#[derive(Serialize, Deserialize)]
struct Report {
    pages: u32,
}

impl Job for Report {
    const KIND: &'static str = "report";
    type Output = String;

    fn options(&self) -> JobOptions {
        JobOptions::new().idempotency_key(format!("report-{}", self.pages))
    }
}

#[derive(Serialize, Deserialize)]
struct Idle;

impl Job for Idle {
    const KIND: &'static str = "idle";
    type Output = ();

    fn options(&self) -> JobOptions {
        JobOptions::new().queue("nobody")
    }
}

fn handlers(snoozes: Arc<AtomicU32>) -> Handlers {
    let handlers = Handlers::new();
    handlers.register(|add: Add, _ctx: JobContext| async move { Ok::<_, String>(add.a + add.b) });
    handlers.register(|flaky: Flaky, ctx: JobContext| async move {
        if flaky.give_up {
            ctx.fail_for_good();
        }
        Err::<(), _>(format!("attempt {} failed", ctx.attempt()))
    });
    handlers.register(move |_: Snoozy, ctx: JobContext| {
        let snoozes = snoozes.clone();
        async move {
            if snoozes.fetch_add(1, Ordering::SeqCst) == 0 {
                ctx.snooze(Duration::from_millis(20));
            }
            Ok::<_, String>(ctx.attempt())
        }
    });
    handlers.register(|report: Report, ctx: JobContext| async move {
        ctx.set_progress(json!({ "done": report.pages, "of": report.pages }))
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(format!("{} pages", report.pages))
    });
    handlers
}

fn start(store: &Arc<dyn Store>, snoozes: Arc<AtomicU32>) -> RunningWorker {
    Worker::builder(store.clone())
        .handlers(handlers(snoozes))
        .queues(["default", "math"])
        .poll_interval(Duration::from_millis(50))
        .build()
        .expect("build worker")
        .start()
        .expect("start worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_jobs_run_and_wait_returns_their_output_on_every_engine() {
    on_every_engine(|store| async move {
        let client = Client::new(store.clone());
        let worker = start(&store, Arc::default());
        let job = client.enqueue(Add { a: 2, b: 40 }).await.unwrap();
        assert!(job.created);
        assert_eq!(client.wait(&job, PATIENCE).await.unwrap(), 42);
        let info = client.get(job.job_id).await.unwrap().info;
        assert_eq!((info.queue.as_str(), info.task.as_str()), ("math", "add"));
        assert_eq!(info.params, json!({"a": 2, "b": 40}));
        // Waiting on a bare id names the kind.
        assert_eq!(client.wait::<Add>(job.job_id, PATIENCE).await.unwrap(), 42);
        let many = client
            .enqueue_many((1..=5).map(|a| Add { a, b: 1 }))
            .await
            .unwrap();
        let mut outputs = Vec::new();
        for job in &many {
            outputs.push(client.wait(job, PATIENCE).await.unwrap());
        }
        assert_eq!(outputs, vec![2, 3, 4, 5, 6]);
        worker.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_at_enqueue_override_the_kind_defaults_and_keys_deduplicate() {
    on_every_engine(|store| async move {
        let client = Client::new(store.clone());
        let job = client
            .enqueue_with(
                Add { a: 1, b: 1 },
                JobOptions::new()
                    .queue("elsewhere")
                    .priority(-3)
                    .delay(Duration::from_secs(3600)),
            )
            .await
            .unwrap();
        let info = client.get(job.job_id).await.unwrap().info;
        assert_eq!(info.queue, "elsewhere");
        assert_eq!(info.priority, -3);
        assert_eq!(info.state, JobState::Scheduled);
        let first = client.enqueue(Report { pages: 7 }).await.unwrap();
        let again = client.enqueue(Report { pages: 7 }).await.unwrap();
        assert!(first.created && !again.created);
        assert_eq!(first.job_id, again.job_id);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_come_back_typed_and_fail_for_good_skips_the_remaining_attempts() {
    on_every_engine(|store| async move {
        let client = Client::new(store.clone());
        let worker = start(&store, Arc::default());
        let retried = client.enqueue(Flaky { give_up: false }).await.unwrap();
        let given_up = client.enqueue(Flaky { give_up: true }).await.unwrap();
        match client.wait(&retried, PATIENCE).await {
            Err(ClientError::Failed { reason, .. }) => {
                assert_eq!(reason.kind, FailureKind::Error);
                assert_eq!(reason.message, "attempt 3 failed");
                assert_eq!(reason.attempt, Some(3));
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        match client.wait(&given_up, PATIENCE).await {
            Err(ClientError::Failed { reason, .. }) => {
                assert_eq!(reason.message, "attempt 1 failed");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        let info = client.get(given_up.job_id).await.unwrap().info;
        assert_eq!((info.attempt, info.errors.len()), (1, 1));
        worker.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_args_fail_the_job_for_good_at_once() {
    on_every_engine(|store| async move {
        let client = Client::new(store.clone());
        let worker = start(&store, Arc::default());
        let options = SpawnOptions::new().with_max_attempts(5);
        let raw = client
            .enqueue_raw("math", Add::KIND, json!({"a": "two"}), options)
            .await
            .unwrap();
        match client.wait::<Add>(raw.job_id, PATIENCE).await {
            Err(ClientError::Failed { reason, .. }) => {
                assert_eq!(reason.kind, FailureKind::Undecodable);
                assert!(reason.message.contains("params do not decode"), "{reason}");
                assert_eq!(reason.attempt, Some(1));
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(client.get(raw.job_id).await.unwrap().info.attempt, 1);
        worker.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snoozing_runs_again_without_using_an_attempt_and_progress_is_readable() {
    on_every_engine(|store| async move {
        let client = Client::new(store.clone());
        let snoozes = Arc::new(AtomicU32::new(0));
        let worker = start(&store, snoozes.clone());
        let snoozy = client.enqueue(Snoozy).await.unwrap();
        assert_eq!(client.wait(&snoozy, PATIENCE).await.unwrap(), 1);
        assert_eq!(snoozes.load(Ordering::SeqCst), 2);
        let report = client.enqueue(Report { pages: 3 }).await.unwrap();
        assert_eq!(client.wait(&report, PATIENCE).await.unwrap(), "3 pages");
        let snapshot = client.get(report.job_id).await.unwrap();
        assert_eq!(snapshot.progress, Some(json!({"done": 3, "of": 3})));
        worker.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_times_out_cancel_ends_it_and_retry_revives_the_job() {
    on_every_engine(|store| async move {
        let client = Client::new(store.clone());
        let job = client.enqueue(Idle).await.unwrap();
        match client.wait(&job, Duration::from_millis(100)).await {
            Err(ClientError::TimedOut { state, .. }) => assert_eq!(state, JobState::Available),
            other => panic!("expected a timeout, got {other:?}"),
        }
        // A waiter blocked in `wait` is woken by the cancel.
        let waiter = {
            let client = client.clone();
            tokio::spawn(async move { client.wait(job, PATIENCE).await })
        };
        client.cancel(job.job_id).await.unwrap();
        let waited = waiter.await.unwrap();
        assert!(
            matches!(waited, Err(ClientError::Cancelled { .. })),
            "{waited:?}"
        );
        let again = client.retry(job.job_id, None).await.unwrap();
        assert_eq!(again.job_id, job.job_id);
        let info = client.get(job.job_id).await.unwrap().info;
        assert_eq!(info.state, JobState::Available);
    })
    .await;
}

#[tokio::test]
async fn open_builds_a_client_from_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.db");
    let client = tasque::open(&format!("sqlite:{}", path.display()), "opened")
        .await
        .unwrap();
    assert_eq!(client.store().namespace(), "opened");
    let job = client.enqueue(Add { a: 1, b: 2 }).await.unwrap();
    assert!(job.created);
    let memory = tasque::open("sqlite::memory:", "default").await.unwrap();
    assert!(memory.store().count(Default::default()).await.is_ok());
    let err = tasque::open("redis://u:pw@host/0", "default")
        .await
        .unwrap_err();
    assert!(matches!(err, tasque::OpenError::UnsupportedUrl { .. }));
    assert!(!err.to_string().contains("pw"), "{err}");
}
