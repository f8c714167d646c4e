//! A handler that never returns and ignores cancellation (issue 18): its job times out, its
//! slot is counted as taken until its thread ends, and the worker still shuts down within its
//! grace period. The handler is a blocking one (`Handlers::learn_blocking`): a thread cannot
//! be killed, only told through its cancel token, which this one ignores.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tasque_durable::{JobId, JobInfo, JobState, Spawn, SpawnOptions, Store};
use tasque_sqlite::SqliteStore;
use tasque_worker::{Handlers, RunningWorker, Worker};
use tokio::time::Instant;

const PATIENCE: Duration = Duration::from_secs(20);

async fn store() -> Arc<dyn Store> {
    let store = SqliteStore::memory().await.unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

/// Handlers: `hang` loops until `release` is raised, whatever its cancel token says (it
/// records that it saw the token raised); `quick` returns at once.
fn handlers(release: Arc<AtomicBool>, saw_cancel: Arc<AtomicBool>) -> Handlers {
    let handlers = Handlers::new();
    handlers.learn_blocking("hang", move |_ctx, _: Value, cancel| {
        while !release.load(Ordering::SeqCst) {
            if cancel.is_cancelled() {
                saw_cancel.store(true, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok::<_, String>("finally")
    });
    handlers.learn("quick", |_ctx, _: Value| async { Ok::<_, String>("done") });
    handlers
}

fn start(store: &Arc<dyn Store>, handlers: Handlers, concurrency: usize) -> RunningWorker {
    Worker::builder(store.clone())
        .handlers(handlers)
        .concurrency(concurrency)
        .poll_interval(Duration::from_millis(20))
        .build()
        .unwrap()
        .start()
        .unwrap()
}

async fn spawn(store: &Arc<dyn Store>, task: &str, options: SpawnOptions) -> JobId {
    let spawn = Spawn::new("default", task, json!(null)).with_options(options);
    store.spawn(spawn).await.unwrap().job_id
}

async fn wait_for(
    store: &Arc<dyn Store>,
    job: JobId,
    wanted: impl Fn(&JobInfo) -> bool,
) -> JobInfo {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let info = store.get_job(job).await.unwrap();
        if wanted(&info) {
            return info;
        }
        assert!(Instant::now() < deadline, "job {job} stuck: {info:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_handler_times_out_and_keeps_its_slot_until_its_thread_ends() {
    let store = store().await;
    let (release, saw_cancel) = (Arc::default(), Arc::default());
    let hung = spawn(
        &store,
        "hang",
        SpawnOptions::new()
            .with_max_attempts(1)
            .with_timeout(Duration::from_millis(300)),
    )
    .await;
    let queued = spawn(&store, "quick", SpawnOptions::new()).await;
    let worker = start(
        &store,
        handlers(Arc::clone(&release), Arc::clone(&saw_cancel)),
        1,
    );

    // The attempt times out: the job fails with a timeout reason at its deadline...
    let failed = wait_for(&store, hung, |job| job.state == JobState::Failed).await;
    let reason = failed.failure.clone().unwrap_or_default();
    assert_eq!(reason["kind"], "timeout", "{failed:?}");
    let deadline = Instant::now() + PATIENCE;
    while !saw_cancel.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the cancel token was never raised"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // ...but its thread still runs, so its slot stays taken: the one-slot worker claims
    // nothing else, over many poll intervals.
    let watch_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < watch_until {
        let stats = worker.stats();
        assert_eq!((stats.running, stats.busy_slots), (0, 1), "{stats:?}");
        let job = store.get_job(queued).await.unwrap();
        assert_eq!(job.state, JobState::Available, "claimed into a taken slot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The thread ends: the slot frees and the next job runs.
    release.store(true, Ordering::SeqCst);
    let done = wait_for(&store, queued, |job| job.state == JobState::Completed).await;
    assert_eq!(done.result, Some(json!("done")));
    let stats = worker.stats();
    worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats.busy_slots, 0, "{stats:?}");
    // The late return of the timed-out attempt changed nothing.
    let failed = store.get_job(hung).await.unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.result, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_shuts_down_within_its_grace_while_a_handler_never_returns() {
    let store = store().await;
    let (release, saw_cancel) = (Arc::default(), Arc::default());
    let hung = spawn(&store, "hang", SpawnOptions::new()).await;
    let worker = start(
        &store,
        handlers(Arc::clone(&release), Arc::clone(&saw_cancel)),
        2,
    );
    wait_for(&store, hung, |job| job.state == JobState::Running).await;

    let grace = Duration::from_millis(500);
    let asked = Instant::now();
    let report = worker.shutdown(grace).await;
    let took = asked.elapsed();
    // Generous for a loaded machine, yet far from "waits for the thread" (forever).
    assert!(
        took < grace + Duration::from_secs(5),
        "shutdown took {took:?}"
    );
    assert!(
        took >= grace,
        "shutdown did not give the run its grace: {took:?}"
    );
    assert_eq!(report.released, 1);
    let deadline = Instant::now() + PATIENCE;
    while !saw_cancel.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the cancel token was never raised"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Released: claimable at once, no attempt counted.
    let job = store.get_job(hung).await.unwrap();
    assert_eq!(job.state, JobState::Available, "{job:?}");
    assert!(job.errors.is_empty(), "{job:?}");
    // Let the thread end so that the test's runtime can shut down.
    release.store(true, Ordering::SeqCst);
}
